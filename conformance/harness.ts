// Conformance harness: starts broker processes the way conformance.md §0 describes, shares one
// broker per test file where a scenario needs no special config or process control, and wraps
// Deno.test with the kit's conventions (sanitizers, timeouts, diagnostics, FILA_ADDR skipping).
import { type CallError, FilaClient, liveClients, liveReaders, type Stats } from "./client.ts";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../", import.meta.url));
export const MAIN_TS = REPO_ROOT + "src/main.ts";

/** Address of an external broker (FILA_ADDR), if the kit runs against one. */
export const EXTERNAL_ADDR: string | undefined = Deno.env.get("FILA_ADDR") || undefined;

// Timing conventions of conformance.md §0.
/** "promptly" = within 1 s, checked with the +300 ms tolerance. */
export const PROMPT_MS = 1300;
/** Tolerance added to "by T" bounds. */
export const LATE_TOL_MS = 300;
/** Tolerance subtracted from "not before T" bounds. */
export const EARLY_TOL_MS = 50;
/** How long a broker may take to become ready. */
export const READY_TIMEOUT_MS = 10_000;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

let uniqCounter = 0;
const runTag = crypto.randomUUID().slice(0, 6);

/** A fresh, unique queue name: `<prefix>-<run>-<n>`. */
export function uniq(prefix = "q"): string {
  return `${prefix}-${runTag}-${++uniqCounter}`;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Polls `probe` until `pred` holds; throws with the last value on timeout. */
export async function waitFor<T>(
  probe: () => Promise<T> | T,
  pred: (v: T) => boolean,
  timeoutMs: number,
  what: string,
  intervalMs = 20,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: T | undefined;
  let lastErr: unknown;
  while (true) {
    try {
      last = await probe();
      lastErr = undefined;
      if (pred(last)) return last;
    } catch (e) {
      lastErr = e;
    }
    if (performance.now() >= deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last value: ${
          lastErr ? String(lastErr) : JSON.stringify(last)
        }`,
      );
    }
    await sleep(intervalMs);
  }
}

/** Polls GetStats until `pred` holds. */
export function waitStats(
  client: FilaClient,
  queue: string,
  pred: (s: Stats) => boolean,
  timeoutMs: number,
  what: string,
): Promise<Stats> {
  return waitFor(() => client.getStats(queue), pred, timeoutMs, `${what} (queue ${queue})`);
}

/** Waits until the queue has `n` registered consumers. */
export function waitConsumers(client: FilaClient, queue: string, n: number): Promise<Stats> {
  return waitStats(
    client,
    queue,
    (s) => s.active_consumers === n,
    3000,
    `active_consumers = ${n}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Broker processes

export interface BrokerOptions {
  /** Extra fila.toml sections appended after the [server] section. */
  toml?: string;
  /** The whole fila.toml text instead of the generated one (listen_addr is then up to the caller). */
  rawToml?: string;
  /** Extra environment (FILA_DATA_DIR defaults to <dir>/data). */
  env?: Record<string, string>;
  /** Working directory to (re)use; a new temporary directory by default. */
  dir?: string;
  /** Port to listen on; a free port by default. */
  port?: number;
  /**
   * Readiness probe: "health" (default, conformance.md §0) or "tcp" (the port accepts
   * connections; no gRPC call, so the scenario's own connection is the broker's first).
   */
  readyProbe?: "health" | "tcp";
}

const liveBrokers = new Set<Broker>();
const tempDirs = new Set<string>();

function childEnv(extra: Record<string, string> | undefined, dir: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (!k.startsWith("FILA_")) env[k] = v;
  }
  env.NO_COLOR = "1";
  env.FILA_DATA_DIR = `${dir}/data`;
  Object.assign(env, extra ?? {});
  return env;
}

async function pump(stream: ReadableStream<Uint8Array>, sink: (s: string) => void) {
  const dec = new TextDecoder();
  try {
    for await (const chunk of stream) sink(dec.decode(chunk, { stream: true }));
  } catch {
    // stream closed
  }
}

/** One broker process (one generation; Broker.restart starts a new one). */
class Proc {
  readonly child: Deno.ChildProcess;
  readonly status: Promise<Deno.CommandStatus>;
  readonly startedAt = performance.now();
  stderr = "";
  stdout = "";
  exitStatus: Deno.CommandStatus | null = null;
  readonly #pumps: Promise<void>[];

  constructor(dir: string, env: Record<string, string>) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--unstable-kv", MAIN_TS],
      cwd: dir,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#pumps = [
      pump(this.child.stderr, (s) => this.stderr += s),
      pump(this.child.stdout, (s) => this.stdout += s),
    ];
    this.status = this.child.status.then(async (st) => {
      this.exitStatus = st;
      await Promise.all(this.#pumps);
      return st;
    });
  }

  get running(): boolean {
    return this.exitStatus === null;
  }

  signal(sig: Deno.Signal): void {
    try {
      this.child.kill(sig);
    } catch {
      // already exited
    }
  }
}

/** Output of a broker run that was expected to exit by itself. */
export interface ExitResult {
  code: number;
  signal: Deno.Signal | null;
  stderr: string;
  stdout: string;
  /** Milliseconds from spawn to exit. */
  elapsedMs: number;
}

/**
 * Deno's own lines that may precede the broker's output on stderr (npm download notices on a
 * cold cache); they are not the broker's and are stripped before "stderr starts with" checks.
 */
export function brokerStderr(s: string): string {
  return s.split("\n").filter((l) => !/^(Download|Warning|Initialize) |^[╭│╰]/.test(l)).join(
    "\n",
  );
}

/**
 * FILA_CONFORMANCE_TOML: sections added to every generated fila.toml, to run the kit against
 * another broker configuration (scripts/run_tests.ts runs part of it with no payload cache). A
 * scenario's own section of the same name wins.
 */
const EXTRA_TOML = Deno.env.get("FILA_CONFORMANCE_TOML") ?? "";

function writeToml(dir: string, port: number, opts: BrokerOptions) {
  const own = opts.toml ?? "";
  const sections = EXTRA_TOML.match(/^\[[^\]]+\]/gm) ?? [];
  const extra = sections.some((h) => own.includes(h)) ? "" : EXTRA_TOML;
  const text = opts.rawToml ??
    `[server]\nlisten_addr = "127.0.0.1:${port}"\n` + (own ? `\n${own}\n` : "") +
      (extra ? `\n${extra}\n` : "");
  Deno.writeTextFileSync(`${dir}/fila.toml`, text);
}

async function prepareDir(opts: BrokerOptions): Promise<string> {
  if (opts.dir) return opts.dir;
  const dir = await Deno.makeTempDir({ prefix: "fila-conformance-" });
  tempDirs.add(dir);
  return dir;
}

/**
 * Runs a broker that is expected to exit on its own (startup errors); kills it after timeoutMs.
 */
export async function runBrokerExpectingExit(
  opts: BrokerOptions = {},
  timeoutMs = 10_000,
): Promise<ExitResult> {
  const dir = await prepareDir(opts);
  const port = opts.port ?? freePort();
  writeToml(dir, port, opts);
  const proc = new Proc(dir, childEnv(opts.env, dir));
  const timer = setTimeout(() => proc.signal("SIGKILL"), timeoutMs);
  const st = await proc.status;
  clearTimeout(timer);
  return {
    code: st.code,
    signal: st.signal,
    stderr: proc.stderr,
    stdout: proc.stdout,
    elapsedMs: performance.now() - proc.startedAt,
  };
}

export class Broker implements AsyncDisposable {
  readonly dir: string;
  readonly port: number;
  readonly addr: string;
  readonly options: BrokerOptions;
  /** Milliseconds from the last spawn to readiness. */
  readyMs = 0;
  #proc: Proc;
  #history = "";

  private constructor(dir: string, port: number, options: BrokerOptions, proc: Proc) {
    this.dir = dir;
    this.port = port;
    this.addr = `127.0.0.1:${port}`;
    this.options = options;
    this.#proc = proc;
    liveBrokers.add(this);
  }

  static async start(opts: BrokerOptions = {}): Promise<Broker> {
    const dir = await prepareDir(opts);
    const port = opts.port ?? freePort();
    writeToml(dir, port, opts);
    const proc = new Proc(dir, childEnv(opts.env, dir));
    const b = new Broker(dir, port, { ...opts, dir, port }, proc);
    try {
      await b.#waitReady();
    } catch (e) {
      proc.signal("SIGKILL");
      await proc.status;
      liveBrokers.delete(b);
      throw e;
    }
    return b;
  }

  get running(): boolean {
    return this.#proc.running;
  }

  get pid(): number {
    return this.#proc.child.pid;
  }

  /** stderr of the current process. */
  stderr(): string {
    return this.#proc.stderr;
  }

  /** stderr of every process generation of this broker so far. */
  allStderr(): string {
    return this.#history + this.#proc.stderr;
  }

  /** Resolves with the exit status of the current process. */
  exited(): Promise<Deno.CommandStatus> {
    return this.#proc.status;
  }

  /** A new client connection to this broker (closed by the harness after the file). */
  client(): FilaClient {
    return new FilaClient(this.addr);
  }

  async #waitReady(): Promise<void> {
    const proc = this.#proc;
    const deadline = proc.startedAt + READY_TIMEOUT_MS;
    const fail = (why: string) =>
      new Error(
        `broker not ready: ${why}\n--- broker stderr ---\n${tail(proc.stderr, 40)}\n---`,
      );
    // 1. Wait for the port to accept connections.
    while (true) {
      if (!proc.running) throw fail(`process exited with ${JSON.stringify(proc.exitStatus)}`);
      if (performance.now() > deadline) throw fail(`timeout after ${READY_TIMEOUT_MS} ms`);
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: this.port });
        conn.close();
        break;
      } catch {
        await Promise.race([sleep(25), proc.status]);
      }
    }
    if (this.options.readyProbe === "tcp") {
      this.readyMs = performance.now() - proc.startedAt;
      return;
    }
    // 2. Health Check("") == SERVING (or ListQueues OK when health is not served).
    const c = new FilaClient(this.addr);
    try {
      while (true) {
        if (!proc.running) throw fail(`process exited with ${JSON.stringify(proc.exitStatus)}`);
        if (performance.now() > deadline) throw fail(`timeout after ${READY_TIMEOUT_MS} ms`);
        try {
          const st = await c.healthCheck("", { deadlineMs: 1000 });
          if (st === "SERVING") break;
        } catch (e) {
          if ((e as CallError).code === 12 /* UNIMPLEMENTED */) {
            try {
              await c.listQueues({ deadlineMs: 1000 });
              break;
            } catch {
              // not ready
            }
          }
        }
        await sleep(25);
      }
    } finally {
      c.close();
    }
    this.readyMs = performance.now() - proc.startedAt;
  }

  /** Sends `signal` (default SIGKILL) and waits for the process to exit. */
  async kill(signal: Deno.Signal = "SIGKILL"): Promise<Deno.CommandStatus> {
    this.#proc.signal(signal);
    return await this.#proc.status;
  }

  /** SIGTERM (or `signal`), wait for exit (SIGKILL after timeoutMs); resolves with the exit code. */
  async stop(signal: Deno.Signal = "SIGTERM", timeoutMs = 15_000): Promise<number> {
    if (!this.#proc.running) return this.#proc.exitStatus!.code;
    this.#proc.signal(signal);
    const timer = setTimeout(() => this.#proc.signal("SIGKILL"), timeoutMs);
    const st = await this.#proc.status;
    clearTimeout(timer);
    return st.code;
  }

  /**
   * "restart" (SIGKILL) or "graceful restart" (SIGTERM, wait for exit), then start again with the
   * same directory, data dir, port and config; resolves when ready.
   */
  async restart(opts: { graceful?: boolean; env?: Record<string, string> } = {}): Promise<void> {
    if (this.#proc.running) {
      if (opts.graceful) await this.stop("SIGTERM");
      else await this.kill("SIGKILL");
    }
    this.#history += this.#proc.stderr + "\n--- restart ---\n";
    if (opts.env) this.options.env = { ...this.options.env, ...opts.env };
    writeToml(this.dir, this.port, this.options);
    this.#proc = new Proc(this.dir, childEnv(this.options.env, this.dir));
    await this.#waitReady();
  }

  /** Starts the process again after it exited (no signal sent). */
  async start(): Promise<void> {
    if (this.#proc.running) throw new Error("broker is still running");
    await this.restart();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#proc.running) await this.kill("SIGKILL");
    liveBrokers.delete(this);
  }
}

/** Starts a broker per conformance.md §0 and waits until it is ready. */
export function startBroker(opts: BrokerOptions = {}): Promise<Broker> {
  return Broker.start(opts);
}

function tail(s: string, lines: number): string {
  const ls = s.trimEnd().split("\n");
  return ls.slice(-lines).join("\n");
}

// ---------------------------------------------------------------------------------------------
// Shared broker (one per test file) and FILA_ADDR

export interface Shared {
  addr: string;
  client: FilaClient;
  /** The broker process, or null when running against FILA_ADDR. */
  broker: Broker | null;
}

let shared: Promise<Shared> | null = null;
/** Brokers and clients that outlive a single scenario (the shared ones). */
const persistent = new Set<unknown>();

/**
 * The broker shared by the scenarios of this test file that need no special config or process
 * control: FILA_ADDR when set, otherwise one broker started lazily for the file.
 */
export function sharedBroker(): Promise<Shared> {
  if (!shared) {
    shared = (async () => {
      if (EXTERNAL_ADDR) {
        const client = new FilaClient(EXTERNAL_ADDR);
        persistent.add(client);
        return { addr: EXTERNAL_ADDR, client, broker: null };
      }
      const broker = await startBroker();
      const client = broker.client();
      persistent.add(broker);
      persistent.add(client);
      return { addr: broker.addr, client, broker };
    })();
  }
  return shared;
}

const fileBrokers = new Map<string, Promise<Broker>>();

/**
 * A dedicated broker kept for the whole test file under `key` (started on first use with `opts`),
 * for scenarios that need special config or restarts but can share a process with each other.
 */
export function fileBroker(key: string, opts: BrokerOptions = {}): Promise<Broker> {
  let p = fileBrokers.get(key);
  if (!p) {
    p = startBroker(opts).then((b) => {
      persistent.add(b);
      return b;
    });
    fileBrokers.set(key, p);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Test wrapper

export interface ScenarioOptions {
  /** Needs its own broker process (restart, signals) or special fila.toml: skipped with FILA_ADDR. */
  needsProcess?: boolean;
  /** Per-scenario timeout (default 60 s). */
  timeoutMs?: number;
  /** Skip with this reason. */
  ignore?: string;
}

export function scenario(
  name: string,
  fn: () => Promise<void>,
  opts: ScenarioOptions = {},
): void {
  let ignore = false;
  let fullName = name;
  if (opts.ignore) {
    ignore = true;
    fullName = `${name} [skipped: ${opts.ignore}]`;
  } else if (opts.needsProcess && EXTERNAL_ADDR) {
    ignore = true;
    fullName = `${name} [skipped: needs its own broker process or config; FILA_ADDR is set]`;
  }
  Deno.test({
    name: fullName,
    ignore,
    // grpc-js keeps timers and sockets alive between calls; the harness closes them itself.
    sanitizeOps: false,
    sanitizeResources: false,
    sanitizeExit: false,
    async fn() {
      const brokersBefore = new Set(liveBrokers);
      const readersBefore = new Set(liveReaders());
      const clientsBefore = new Set(liveClients());
      const timeoutMs = opts.timeoutMs ?? 60_000;
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          fn(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`scenario timed out after ${timeoutMs} ms`)),
              timeoutMs,
            );
          }),
        ]);
      } catch (e) {
        const diag: string[] = [];
        for (const b of liveBrokers) {
          if (!brokersBefore.has(b) || persistent.has(b)) {
            diag.push(
              `--- stderr of broker ${b.addr} (last 30 lines) ---\n${tail(b.allStderr(), 30)}`,
            );
          }
        }
        if (diag.length > 0 && e instanceof Error) e.message += "\n" + diag.join("\n");
        throw e;
      } finally {
        clearTimeout(timer);
        for (const r of liveReaders()) if (!readersBefore.has(r)) r.cancel();
        for (const c of liveClients()) {
          if (!clientsBefore.has(c) && !persistent.has(c)) c.close();
        }
        for (const b of [...liveBrokers]) {
          if (!brokersBefore.has(b) && !persistent.has(b)) await b[Symbol.asyncDispose]();
        }
      }
    },
  });
}

// After every test of the file: close clients and streams, stop brokers, remove temp dirs.
Deno.test.afterAll(async () => {
  for (const r of liveReaders()) r.cancel();
  for (const c of liveClients()) c.close();
  for (const b of [...liveBrokers]) await b[Symbol.asyncDispose]();
  if (!Deno.env.get("FILA_CONFORMANCE_KEEP")) {
    for (const d of tempDirs) {
      try {
        Deno.removeSync(d, { recursive: true });
      } catch {
        // ignore
      }
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Small helpers shared by the scenario files

/** UUIDv7, lowercase hyphenated (wire-contract.md §6). */
export const UUIDV7_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export function text(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

/** Creates a fresh uniquely named queue and returns its name. */
export async function newQueue(
  client: FilaClient,
  config?: import("./client.ts").QueueConfig,
  prefix = "q",
): Promise<string> {
  const name = uniq(prefix);
  await client.createQueue(name, config);
  return name;
}

/** The declarative equivalent of the "key/weight from headers" script of conformance.md §0. */
export const KEY_WEIGHT_FROM_HEADERS = { fairness_key_header: "key", weight_header: "weight" };
