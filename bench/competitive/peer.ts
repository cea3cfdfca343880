/**
 * What the competitive driver needs from a broker: durable send of one message, durable send of
 * a batch (each system's own batching facility), and a consumer that acks what it receives.
 * Every adapter reports a message as sent only once the broker has confirmed it under the
 * durability contract documented in `durability`.
 */

export interface Consumer {
  stop(): Promise<void>;
}

export interface Adapter {
  /** Server processes whose CPU is counted as "server CPU". */
  pids(): number[];
  createQueue(name: string): Promise<void>;
  deleteQueue(name: string): Promise<void>;
  /** One message, resolved when the broker confirmed it. */
  sendOne(queue: string, payload: Uint8Array): Promise<void>;
  /** A batch, resolved when the broker confirmed every message of it. */
  sendBatch(queue: string, payloads: Uint8Array[]): Promise<void>;
  /**
   * Starts a consumer; `onMessages` gets the first 8 payload bytes of each delivered message as
   * a float64 (the producer's send stamp) once the message is acked (or its ack is sent, where
   * the protocol has no ack confirmation).
   */
  consume(queue: string, onMessages: (stamps: number[]) => void): Promise<Consumer>;
  close(): Promise<void>;
}

export interface Peer {
  /** Short name in the table. */
  name: string;
  /** Version actually run. */
  version: string;
  /** Durable settings used and who fsyncs before acknowledging. */
  durability: string;
  /** Starts the server (and connects); throws with the reason when it cannot. */
  start(): Promise<RunningPeer>;
  /**
   * Connects to a running server described by `info` (from RunningPeer.info): used by client
   * subprocesses (bench/competitive/worker.ts), which have no server process of their own.
   */
  connect(info: PeerInfo): Promise<Labeled[]>;
}

// deno-lint-ignore no-explicit-any
export type PeerInfo = Record<string, any>;

export interface Labeled {
  label: string;
  adapter: Adapter;
}

export interface RunningPeer {
  /** JSON-serializable connection details for client subprocesses. */
  info: PeerInfo;
  adapters: Labeled[];
  stop(): Promise<void>;
}

/** Reads the producer's stamp (first 8 bytes, little-endian float64). */
export function stampOf(b: Uint8Array): number {
  if (b.length < 8) return NaN;
  return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until a TCP port on 127.0.0.1 accepts connections. */
export async function waitPort(port: number, timeoutMs: number, alive: () => boolean) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (!alive()) throw new Error("server process exited during startup");
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`port ${port} not accepting connections after ${timeoutMs} ms`);
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A server process we started, with its output kept for error messages. */
export class ServerProc {
  readonly child: Deno.ChildProcess;
  exited = false;
  output = "";
  readonly status: Promise<Deno.CommandStatus>;

  constructor(cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string }) {
    this.child = new Deno.Command(cmd, {
      args,
      env: opts.env,
      cwd: opts.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const dec = new TextDecoder();
    const pump = async (s: ReadableStream<Uint8Array>) => {
      try {
        for await (const c of s) this.output = (this.output + dec.decode(c)).slice(-20_000);
      } catch { /* closed */ }
    };
    const pumps = [pump(this.child.stdout), pump(this.child.stderr)];
    this.status = this.child.status.then(async (s) => {
      this.exited = true;
      await Promise.all(pumps);
      return s;
    });
  }

  get pid(): number {
    return this.child.pid;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (this.exited) return;
    try {
      this.child.kill("SIGTERM");
    } catch { /* gone */ }
    const t = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch { /* gone */ }
    }, graceMs);
    await this.status;
    clearTimeout(t);
  }
}

/** What a peer's connect step returns: its adapters, and how to close them all. */
export interface Connected {
  labeled: Labeled[];
  closeAll(): Promise<void>;
}

/**
 * The common end of a peer's start(): waits until the server started as `proc` accepts
 * connections on `port`, runs `onUp` (reading the version from its output, say), connects, and
 * returns the running peer. If any step fails, the server is stopped with `stopServer` (which
 * also removes its files) and the error carries the end of the server's output.
 */
export async function runningPeer(o: {
  proc: ServerProc;
  port: number;
  startupMs: number;
  stopServer: () => Promise<void>;
  connect: () => Promise<Connected>;
  onUp?: () => Promise<void>;
}): Promise<RunningPeer> {
  let conn: Connected;
  try {
    await waitPort(o.port, o.startupMs, () => !o.proc.exited);
  } catch (e) {
    const out = o.proc.output.slice(-2000);
    await o.stopServer();
    throw new Error(`${(e as Error).message}\n${out}`);
  }
  try {
    await o.onUp?.();
    conn = await o.connect();
  } catch (e) {
    await o.stopServer();
    throw e;
  }
  return {
    info: { port: o.port },
    adapters: conn.labeled,
    stop: async () => {
      await conn.closeAll();
      await o.stopServer();
    },
  };
}

/** Stops a server we started and removes its temporary directory. */
export async function stopAndRemove(proc: ServerProc, dir: string): Promise<void> {
  await proc.stop();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

/** Dynamic import of an npm package that `deno check` does not resolve (bench-only clients). */
// deno-lint-ignore no-explicit-any
export async function npm(spec: string): Promise<any> {
  const name = "npm:" + spec;
  const mod = await import(name);
  return mod.default && Object.keys(mod).length <= 2 ? { ...mod.default, ...mod } : mod;
}

export async function commandOutput(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  } catch (e) {
    return String(e);
  }
}
