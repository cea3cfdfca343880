/**
 * The whole test suite, as CI runs it: format, lint and type checks, then every unit and
 * conformance test. Ends with the line `N passed, N failed` (deno test's own summary has another
 * form); exits non-zero on any failure.
 */
const deno = Deno.execPath();
const env = { NO_COLOR: "1" };

async function run(
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<{ code: number; output: string }> {
  const child = new Deno.Command(deno, {
    args,
    env: { ...env, ...extraEnv },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const decoder = new TextDecoder();
  let output = "";
  const pump = async (stream: ReadableStream<Uint8Array>, sink: typeof Deno.stdout) => {
    for await (const chunk of stream) {
      output += decoder.decode(chunk, { stream: true });
      await sink.write(chunk);
    }
  };
  await Promise.all([pump(child.stdout, Deno.stdout), pump(child.stderr, Deno.stderr)]);
  return { code: (await child.status).code, output };
}

let passed = 0;
let failed = 0;
let ignored = 0;

for (
  const [name, args] of [
    ["fmt", ["fmt", "--check"]],
    ["lint", ["lint"]],
    ["type-check", [
      "check",
      "mod.ts",
      "src/",
      "cli/",
      "conformance/",
      "bench/",
      "scripts/",
      "examples/",
    ]],
  ] as const
) {
  console.log(`--- ${name}`);
  const { code } = await run([...args]);
  if (code === 0) passed++;
  else {
    failed++;
    console.log(`--- ${name} FAILED`);
  }
}

/** Runs `deno test` on `targets` and adds its counts. */
async function test(targets: string[], extraEnv: Record<string, string> = {}): Promise<void> {
  const { code, output } = await run(
    ["test", "--allow-all", "--unstable-kv", ...targets],
    extraEnv,
  );
  const summary = output.match(/(?:ok|FAILED) \| (\d+) passed(?: \([^)]*\))? \| (\d+) failed/);
  const before = failed;
  if (summary) {
    passed += Number(summary[1]);
    failed += Number(summary[2]);
    ignored += Number(output.match(/\| (\d+) ignored/)?.[1] ?? 0);
  } else if (code !== 0) {
    failed++; // the runner itself failed (e.g. a module did not load)
  }
  if (code !== 0 && failed === before) failed++;
}

if (Deno.args.length > 0) {
  await test(Deno.args);
} else {
  await test(["src/", "cli/", "conformance/", "examples/"]);
  // The delivery paths again with no payload held in memory: every payload is read back from
  // storage (storage.payload_cache_mb = 0), which a default-sized cache never reaches here.
  console.log("--- conformance (delivery paths) with storage.payload_cache_mb = 0");
  await test([
    "conformance/lifecycle_test.ts",
    "conformance/batch_test.ts",
    "conformance/dead_letter_test.ts",
    "conformance/recovery_test.ts",
    "conformance/retry_test.ts",
    "conformance/flow_control_test.ts",
    "conformance/fairness_test.ts",
    "conformance/visibility_test.ts",
  ], { FILA_CONFORMANCE_TOML: "[storage]\npayload_cache_mb = 0" });
}

console.log(`${passed} passed, ${failed} failed${ignored ? `, ${ignored} skipped` : ""}`);
Deno.exit(failed > 0 ? 1 : 0);
