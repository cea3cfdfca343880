/**
 * Test helpers: run the real CLI as a process, count connections to prove that no RPC was sent,
 * and spawn a broker the conformance harness cannot wait for (a TLS listener).
 */
import { fileURLToPath } from "node:url";
import { freePort, MAIN_TS } from "../conformance/harness.ts";

const CLI_MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));
export const TLS_DIR = fileURLToPath(new URL("./testdata/tls/", import.meta.url));

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `fila <args>` and collects its exit status and output. */
export async function fila(...args: string[]): Promise<CliRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", CLI_MAIN, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A successful run printing exactly `stdout`. */
export function ok(stdout: string): CliRun {
  return { code: 0, stdout, stderr: "" };
}

/** A failed run printing exactly `Error: <message>`. */
export function failed(message: string): CliRun {
  return { code: 1, stdout: "", stderr: `Error: ${message}\n` };
}

/** A TCP listener that only counts connection attempts: usage errors must never reach it. */
export class ConnectionCounter implements Disposable {
  readonly addr: string;
  count = 0;
  readonly #listener: Deno.Listener;

  constructor() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#listener = listener;
    this.addr = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
    (async () => {
      for await (const conn of listener) {
        this.count++;
        conn.close();
      }
    })().catch(() => {});
  }

  [Symbol.dispose](): void {
    this.#listener.close();
  }
}

export interface SpawnedBroker extends AsyncDisposable {
  port: number;
  /** Whether the broker reported `tls=true` in its `listening on` log line. */
  tls: boolean;
}

/**
 * Starts src/main.ts with `toml` appended to a `[server]` section and waits for its `listening on`
 * line. The conformance harness probes readiness over cleartext, which a TLS listener never
 * answers, so TLS tests use this instead.
 */
export async function spawnBroker(toml: string): Promise<SpawnedBroker> {
  const dir = await Deno.makeTempDir({ prefix: "fila-cli-test-" });
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/fila.toml`,
    `[server]\nlisten_addr = "127.0.0.1:${port}"\n\n${toml}\n`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--unstable-kv", MAIN_TS],
    cwd: dir,
    env: { FILA_DATA_DIR: `${dir}/data`, NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const dispose = async () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await child.status;
    await Deno.remove(dir, { recursive: true });
  };
  let log = "";
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(() => reader.cancel(), 10_000);
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`broker did not start listening; stderr:\n${log}`);
      log += value;
      const m = log.match(/listening on .* tls=(true|false)/);
      if (m) {
        // Keep draining stderr so that the broker never blocks on a full pipe.
        (async () => {
          while (!(await reader.read()).done);
        })().catch(() => {});
        return { port, tls: m[1] === "true", [Symbol.asyncDispose]: dispose };
      }
    }
  } catch (e) {
    await dispose();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
