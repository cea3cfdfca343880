// The conformance driver protocol (see conformance/DRIVERS.md): the kit starts a driver process
// and sends it one JSON request per line on stdin; the driver performs the operation with its SDK
// and answers one JSON line on stdout. This module holds the protocol types, the kit-side client
// that spawns a driver (`DriverProcess`), and `serveDriver`, the request loop of the TypeScript
// reference drivers.
import { Buffer } from "node:buffer";
import { fileURLToPath } from "node:url";

// ---------------------------------------------------------------------------------------------
// Protocol types

/** Version of the protocol described in DRIVERS.md; a driver echoes it in `hello`. */
export const PROTOCOL_VERSION = 1;

/** One request line. */
export interface Request<A = Record<string, unknown>> {
  id: number;
  op: string;
  args: A;
}

/** An error reply: a gRPC status name (`NOT_FOUND`, …) or `UNSUPPORTED` / `DRIVER_ERROR`. */
export interface ErrorBody {
  code: string;
  message: string;
}

/** One reply line. */
export type Response<R = Record<string, unknown>> =
  | { id: number; ok: true; result: R }
  | { id: number; ok: false; error: ErrorBody };

export interface QueueConfigArgs {
  visibility_timeout_ms?: number;
  fairness_key_header?: string;
  weight_header?: string;
  throttle_key_headers?: string[];
  on_enqueue_script?: string;
  on_failure_script?: string;
}

/** A delivered message as the protocol carries it (proto field names; payload in base64). */
export interface DriverMessage {
  id: string;
  queue: string;
  headers: Record<string, string>;
  payload: string;
  fairness_key: string;
  weight: number;
  throttle_keys: string[];
  attempt_count: number;
}

export interface DriverStats {
  depth: number;
  in_flight: number;
  pending: number;
  delayed: number;
  active_fairness_keys: number;
  active_consumers: number;
  quantum: number;
  per_key_stats: {
    key: string;
    pending_count: number;
    current_deficit: number;
    weight: number;
    delivered_count: number;
  }[];
}

export interface EnqueueArgs {
  queue: string;
  headers?: Record<string, string>;
  /** base64 */
  payload?: string;
}

/** Argument and result shapes of every operation. */
export interface Ops {
  hello: {
    args: { addr: string; api_key?: string; protocol: number };
    result: { name: string; version?: string; protocol: number; ops: string[] };
  };
  create_queue: { args: { queue: string; config?: QueueConfigArgs }; result: Record<never, never> };
  delete_queue: { args: { queue: string }; result: Record<never, never> };
  list_queues: {
    args: Record<never, never>;
    result: {
      queues: { name: string; depth: number; in_flight: number; active_consumers: number }[];
    };
  };
  enqueue: { args: EnqueueArgs; result: { message_id: string } };
  batch_enqueue: {
    args: { items: EnqueueArgs[] };
    result: { results: ({ message_id: string } | { error: ErrorBody })[] };
  };
  consume_open: { args: { queue: string; max_unacked?: number }; result: { consumer: string } };
  consume_next: {
    args: { consumer: string; timeout_ms: number };
    result: { message: DriverMessage | null };
  };
  consume_close: { args: { consumer: string }; result: Record<never, never> };
  ack: { args: { queue: string; message_id: string }; result: Record<never, never> };
  nack: {
    args: { queue: string; message_id: string; error?: string };
    result: Record<never, never>;
  };
  set_config: { args: { key: string; value: string }; result: Record<never, never> };
  get_config: { args: { key: string }; result: { value: string } };
  list_config: {
    args: { prefix?: string };
    result: { entries: { key: string; value: string }[] };
  };
  get_stats: { args: { queue: string }; result: DriverStats };
  redrive: { args: { dlq_queue: string; count?: number }; result: { redriven: number } };
  bye: { args: Record<never, never>; result: Record<never, never> };
}

export type Op = keyof Ops;

/** Operations every driver implements; the others are announced in `hello.ops` when present. */
export const REQUIRED_OPS: readonly Op[] = [
  "hello",
  "create_queue",
  "delete_queue",
  "enqueue",
  "consume_open",
  "consume_next",
  "consume_close",
  "ack",
  "nack",
  "set_config",
  "get_config",
  "get_stats",
  "bye",
];

export function toBase64(data: Uint8Array | string): string {
  return Buffer.from(typeof data === "string" ? new TextEncoder().encode(data) : data).toString(
    "base64",
  );
}

export function fromBase64(b64: string | undefined): Uint8Array {
  return new Uint8Array(Buffer.from(b64 ?? "", "base64"));
}

/** The payload of a driver message as UTF-8 text. */
export function payloadText(m: DriverMessage): string {
  return new TextDecoder().decode(fromBase64(m.payload));
}

// ---------------------------------------------------------------------------------------------
// Kit side: spawning and talking to a driver

/** How to start a driver. */
export interface DriverSpec {
  /** Short name used in test names, e.g. `ts`. */
  name: string;
  /** Program and arguments. */
  command: string[];
}

const DRIVER_DIR = fileURLToPath(new URL("./", import.meta.url));

/** The reference drivers, by the names FILA_DRIVER accepts. */
export const REFERENCE_DRIVERS: Record<string, DriverSpec> = {
  raw: {
    name: "raw",
    command: [Deno.execPath(), "run", "--allow-all", "--quiet", DRIVER_DIR + "raw_grpc.ts"],
  },
  ts: {
    name: "ts",
    command: [Deno.execPath(), "run", "--allow-all", "--quiet", DRIVER_DIR + "ts_sdk.ts"],
  },
};

/** Splits a command line on spaces, keeping "double" or 'single' quoted parts together. */
export function splitCommandLine(line: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line))) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

/**
 * The drivers selected by FILA_DRIVER: `raw`, `ts`, a comma-separated list of those, or the
 * command line of any other driver; unset = every reference driver.
 */
export function selectedDrivers(
  env: string | undefined = Deno.env.get("FILA_DRIVER"),
): DriverSpec[] {
  const v = env?.trim();
  if (!v || v === "all") return Object.values(REFERENCE_DRIVERS);
  const names = v.split(",").map((s) => s.trim());
  if (names.every((n) => n in REFERENCE_DRIVERS)) return names.map((n) => REFERENCE_DRIVERS[n]);
  const command = splitCommandLine(v);
  // Name it after the script when there is one (`python3 drivers/fila.py` → "fila").
  const script = command.slice(1).findLast((a) => !a.startsWith("-") && /[/.]/.test(a));
  const base = (script ?? command[0]).split("/").pop()!;
  return [{ name: base.replace(/\.[a-z0-9]+$/i, ""), command }];
}

/** A failed operation: `code` is the gRPC status name the driver reported. */
export class DriverCallError extends Error {
  readonly code: string;
  readonly details: string;
  readonly op: string;

  constructor(op: string, body: ErrorBody) {
    super(`${op} failed: ${body.code} ${JSON.stringify(body.message)}`);
    this.op = op;
    this.code = body.code;
    this.details = body.message;
  }
}

/** Extra time a driver gets beyond an operation's own timeout. */
const REPLY_GRACE_MS = 10_000;

/**
 * A running driver process. Requests are sent one at a time, in call order (the protocol has no
 * pipelining, so drivers may process requests strictly sequentially).
 */
export class DriverProcess implements AsyncDisposable {
  readonly spec: DriverSpec;
  /** The driver's `hello` answer (after `hello()`). */
  info: Ops["hello"]["result"] | null = null;
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pending = new Map<number, (r: Response) => void>();
  #nextId = 1;
  #chain: Promise<unknown> = Promise.resolve();
  #stderr = "";
  #exited = false;
  readonly #status: Promise<Deno.CommandStatus>;

  private constructor(spec: DriverSpec, env?: Record<string, string>) {
    this.spec = spec;
    this.#child = new Deno.Command(spec.command[0], {
      args: spec.command.slice(1),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...env },
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#status = this.#child.status.then((s) => {
      this.#exited = true;
      for (const [id, resolve] of this.#pending) {
        resolve({
          id,
          ok: false,
          error: { code: "DRIVER_ERROR", message: `driver exited with code ${s.code}` },
        });
      }
      this.#pending.clear();
      return s;
    });
    this.#readLines();
    this.#readStderr();
  }

  /** Starts a driver process (call `hello` next). */
  static spawn(spec: DriverSpec, env?: Record<string, string>): DriverProcess {
    return new DriverProcess(spec, env);
  }

  /** What the driver wrote on stderr so far. */
  stderr(): string {
    return this.#stderr;
  }

  async #readLines(): Promise<void> {
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of this.#child.stdout) {
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) this.#onLine(line);
        }
      }
    } catch {
      // stdout closed
    }
  }

  async #readStderr(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.#child.stderr) {
        this.#stderr += decoder.decode(chunk, { stream: true });
      }
    } catch {
      // closed
    }
  }

  #onLine(line: string): void {
    let res: Response;
    try {
      res = JSON.parse(line);
    } catch {
      this.#stderr += `[kit] driver wrote a non-JSON line on stdout: ${line}\n`;
      return;
    }
    const resolve = this.#pending.get(res.id);
    if (!resolve) {
      this.#stderr += `[kit] reply to an unknown request id: ${line}\n`;
      return;
    }
    this.#pending.delete(res.id);
    resolve(res);
  }

  /** Sends one request and resolves with its result; rejects with DriverCallError on `ok: false`. */
  call<O extends Op>(op: O, args: Ops[O]["args"], timeoutMs = 10_000): Promise<Ops[O]["result"]> {
    const run = () => this.#send(op, args, timeoutMs);
    const p = this.#chain.then(run, run);
    this.#chain = p.catch(() => {});
    return p;
  }

  async #send<O extends Op>(
    op: O,
    args: Ops[O]["args"],
    timeoutMs: number,
  ): Promise<Ops[O]["result"]> {
    if (this.#exited) throw new Error(`driver ${this.spec.name} has exited${this.#tail()}`);
    const id = this.#nextId++;
    const reply = new Promise<Response>((resolve) => this.#pending.set(id, resolve));
    const line = JSON.stringify({ id, op, args } satisfies Request<typeof args>) + "\n";
    await this.#writer.write(new TextEncoder().encode(line));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          new Error(
            `driver ${this.spec.name}: no reply to ${op} within ${timeoutMs} ms${this.#tail()}`,
          ),
        );
      }, timeoutMs);
    });
    try {
      const res = await Promise.race([reply, timeout]);
      if (!res.ok) {
        if (res.error.code === "DRIVER_ERROR") {
          throw new Error(`driver ${this.spec.name}: ${op}: ${res.error.message}${this.#tail()}`);
        }
        throw new DriverCallError(op, res.error);
      }
      return res.result as Ops[O]["result"];
    } finally {
      clearTimeout(timer);
    }
  }

  #tail(): string {
    const lines = this.#stderr.trimEnd().split("\n").slice(-20).join("\n");
    return lines ? `\n--- driver stderr (last 20 lines) ---\n${lines}` : "";
  }

  /** Connects the driver to a broker; resolves with its name and supported operations. */
  async hello(addr: string, apiKey?: string): Promise<Ops["hello"]["result"]> {
    const args: Ops["hello"]["args"] = { addr, protocol: PROTOCOL_VERSION };
    if (apiKey) args.api_key = apiKey;
    this.info = await this.call("hello", args, 30_000);
    const missing = REQUIRED_OPS.filter((o) => !this.info!.ops.includes(o));
    if (missing.length > 0) {
      throw new Error(`driver ${this.spec.name} lacks required operations: ${missing.join(", ")}`);
    }
    return this.info;
  }

  /** Whether the driver announced `op`. */
  supports(op: Op): boolean {
    return this.info?.ops.includes(op) ?? false;
  }

  // Typed helpers ---------------------------------------------------------------------------------

  async createQueue(queue: string, config?: QueueConfigArgs): Promise<void> {
    await this.call("create_queue", config ? { queue, config } : { queue });
  }

  async deleteQueue(queue: string): Promise<void> {
    await this.call("delete_queue", { queue });
  }

  async enqueue(
    queue: string,
    headers: Record<string, string> = {},
    payload: Uint8Array | string = "",
  ): Promise<string> {
    const r = await this.call("enqueue", { queue, headers, payload: toBase64(payload) });
    return r.message_id;
  }

  /** Opens a consume stream; errors of the stream surface on `next`. */
  async consume(queue: string, maxUnacked?: number): Promise<DriverConsumer> {
    const args: Ops["consume_open"]["args"] = { queue };
    if (maxUnacked !== undefined) args.max_unacked = maxUnacked;
    const r = await this.call("consume_open", args);
    return new DriverConsumer(this, r.consumer);
  }

  async ack(queue: string, messageId: string): Promise<void> {
    await this.call("ack", { queue, message_id: messageId });
  }

  async nack(queue: string, messageId: string, error = ""): Promise<void> {
    await this.call("nack", { queue, message_id: messageId, error });
  }

  async setConfig(key: string, value: string): Promise<void> {
    await this.call("set_config", { key, value });
  }

  async getConfig(key: string): Promise<string> {
    return (await this.call("get_config", { key })).value;
  }

  getStats(queue: string): Promise<DriverStats> {
    return this.call("get_stats", { queue });
  }

  /** Sends `bye`, waits for the exit (killing the process after 5 s). */
  async close(): Promise<void> {
    if (!this.#exited) {
      try {
        await Promise.race([
          this.call("bye", {}, 5000),
          new Promise((r) => setTimeout(r, 5000)),
        ]);
      } catch {
        // the driver may exit before replying
      }
    }
    try {
      await this.#writer.close();
    } catch {
      // already closed
    }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // gone
      }
    }, 5000);
    await this.#status;
    clearTimeout(timer);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** A consumer opened through a driver. */
export class DriverConsumer {
  readonly driver: DriverProcess;
  readonly id: string;
  constructor(driver: DriverProcess, id: string) {
    this.driver = driver;
    this.id = id;
  }

  /** The next message, or null if none arrives within timeoutMs. */
  async next(timeoutMs: number): Promise<DriverMessage | null> {
    const r = await this.driver.call(
      "consume_next",
      { consumer: this.id, timeout_ms: timeoutMs },
      timeoutMs + REPLY_GRACE_MS,
    );
    return r.message;
  }

  /** The next message; throws if none arrives within timeoutMs. */
  async expectNext(timeoutMs: number, what = "a message"): Promise<DriverMessage> {
    const m = await this.next(timeoutMs);
    if (!m) throw new Error(`expected ${what} within ${timeoutMs} ms, got none`);
    return m;
  }

  /** The next n messages within timeoutMs in total. */
  async take(n: number, timeoutMs: number): Promise<DriverMessage[]> {
    const deadline = performance.now() + timeoutMs;
    const out: DriverMessage[] = [];
    while (out.length < n) {
      const m = await this.next(Math.max(0, Math.round(deadline - performance.now())));
      if (!m) throw new Error(`expected ${n} messages within ${timeoutMs} ms, got ${out.length}`);
      out.push(m);
    }
    return out;
  }

  /** Asserts that no message arrives within ms. */
  async expectNothing(ms: number, what = "no message"): Promise<void> {
    const m = await this.next(ms);
    if (m) throw new Error(`expected ${what} within ${ms} ms, got ${JSON.stringify(m)}`);
  }

  async close(): Promise<void> {
    await this.driver.call("consume_close", { consumer: this.id });
  }
}

// ---------------------------------------------------------------------------------------------
// Driver side: the request loop of the TypeScript reference drivers

/** A driver's operations: each receives the request's args and returns the result object. */
export type Handlers = {
  [O in Op]?: (args: Ops[O]["args"]) => Promise<Ops[O]["result"]> | Ops[O]["result"];
};

/** Maps an exception of an operation to the protocol's error body. */
export type ErrorMapper = (e: unknown) => ErrorBody;

/**
 * Reads requests from stdin until `bye` or end of input, runs them one at a time and writes the
 * replies to stdout. `hello` is answered by the handler (its result gets `protocol` and `ops`).
 */
export async function serveDriver(
  name: string,
  handlers: Handlers,
  mapError: ErrorMapper,
): Promise<void> {
  const encoder = new TextEncoder();
  const out = Deno.stdout.writable.getWriter();
  const write = (r: Response) => out.write(encoder.encode(JSON.stringify(r) + "\n"));
  const ops = Object.keys(handlers).concat("bye");
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of Deno.stdin.readable) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      let req: Request;
      try {
        req = JSON.parse(line);
      } catch {
        console.error(`${name}: not a JSON request: ${line}`);
        continue;
      }
      if (req.op === "bye") {
        await write({ id: req.id, ok: true, result: {} });
        return;
      }
      const handler = (handlers as Record<string, (a: unknown) => unknown>)[req.op];
      if (!handler) {
        await write({
          id: req.id,
          ok: false,
          error: { code: "UNSUPPORTED", message: `unknown op ${req.op}` },
        });
        continue;
      }
      try {
        let result = await handler(req.args ?? {}) as Record<string, unknown>;
        if (req.op === "hello") result = { ...result, protocol: PROTOCOL_VERSION, ops };
        await write({ id: req.id, ok: true, result });
      } catch (e) {
        await write({ id: req.id, ok: false, error: mapError(e) });
      }
    }
  }
}
