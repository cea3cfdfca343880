// Runs every example as a subprocess against a broker (FILA_ADDR, or one started here) and checks
// what it prints.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { scenario, sharedBroker } from "../conformance/harness.ts";

const EXAMPLES = fileURLToPath(new URL("./", import.meta.url));

async function run(file: string): Promise<string> {
  const { addr } = await sharedBroker();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", EXAMPLES + file],
    env: { FILA_ADDR: addr, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const out = await child.output();
  clearTimeout(timer);
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `${file} exited with ${out.code}\n${stdout}\n${stderr}`);
  return stdout;
}

scenario("example producer_consumer: every order processed once, one retried", async () => {
  const out = await run("producer_consumer.ts");
  assert.match(out, /^produced 20 orders$/m);
  assert.match(out, /^order 7: payment gateway timeout on attempt 0, retrying$/m);
  assert.match(out, /^processed 20\/20 orders, retried 1$/m);
  assert.match(out, /^total 119\.00$/m);
});

scenario("example fanout_fairness: small tenants are served despite a big backlog", async () => {
  const out = await run("fanout_fairness.ts");
  assert.match(out, /^enqueued 110 jobs: big-corp=100, small-shop=5, startup=5$/m);
  assert.match(
    out,
    /^first 12 deliveries: big-corp small-shop startup big-corp small-shop startup big-corp small-shop startup big-corp small-shop startup$/m,
  );
  assert.match(out, /^small-shop: 5 jobs, last one was delivery 14 of 110$/m);
  assert.match(out, /^startup: 5 jobs, last one was delivery 15 of 110$/m);
  assert.match(out, /^big-corp: 100 jobs, last one was delivery 110 of 110$/m);
});

scenario("example request_reply: replies matched, reply queue removed", async () => {
  const out = await run("request_reply.ts");
  assert.match(out, /^sent 3 requests, replies to reply-[0-9a-f-]{36}$/m);
  for (const line of ["2 + 3 = 5", "40 + 2 = 42", "-7 + 7 = 0"]) {
    assert.ok(out.includes(line + "\n"), `missing "${line}" in:\n${out}`);
  }
  assert.match(out, /^reply queue deleted$/m);
});

const DOCS = fileURLToPath(new URL("../docs/sdk.md", import.meta.url));
const MOD = new URL("../mod.ts", import.meta.url).href;
const CONFIG = fileURLToPath(new URL("../deno.json", import.meta.url));

/** The ```ts blocks of docs/sdk.md (```ts ignore blocks are fragments, not programs). */
function docSnippets(): string[] {
  const md = Deno.readTextFileSync(DOCS);
  return [...md.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
}

scenario("docs/sdk.md: every snippet type-checks and runs against the broker", async () => {
  const { addr } = await sharedBroker();
  const snippets = docSnippets();
  assert.ok(snippets.length >= 6, `found ${snippets.length} snippets`);
  const dir = await Deno.makeTempDir({ prefix: "fila-sdk-docs-" });
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  const deno = (args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args,
      env: { FILA_ADDR: addr, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
  try {
    const files = snippets.map((_, i) => `${dir}/snippet_${i + 1}.ts`);
    await Promise.all(
      snippets.map((code, i) =>
        Deno.writeTextFile(files[i], code.replaceAll('"../mod.ts"', JSON.stringify(MOD)))
      ),
    );
    // One type-check for all (they share the SDK's module graph), then run them side by side.
    const checked = await deno(["check", "--quiet", "--config", CONFIG, ...files]);
    assert.equal(checked.code, 0, `snippets do not type-check:\n${text(checked.stderr)}`);
    await Promise.all(snippets.map(async (code, i) => {
      const out = await deno(["run", "--allow-all", "--quiet", "--config", CONFIG, files[i]]);
      assert.equal(
        out.code,
        0,
        `snippet ${i + 1} failed:\n${code}\n--- stdout ---\n${text(out.stdout)}\n--- stderr ---\n${
          text(out.stderr)
        }`,
      );
    }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
