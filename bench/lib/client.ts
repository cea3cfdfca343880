/**
 * A lean benchmark client for Fila: gRPC framing written directly on a node:http2 session
 * (no grpc-js call objects, interceptors or metadata on the measured path — grpc-js costs the
 * client about twice the CPU per unary call under Deno, which on 2 cores starves the broker),
 * requests sent as pre-encoded bytes and responses scanned by `wire.ts`. Admin calls go through
 * the conformance kit's `FilaClient` (they are not on the measured path).
 */
import http2 from "node:http2";
import { Buffer } from "node:buffer";
import { FilaClient, type QueueConfig } from "../../conformance/client.ts";
import { RECEIVE_WINDOW_BYTES } from "../../src/client/client.ts";
import {
  batchAckRequest,
  batchOf,
  consumeRequest,
  countBatchResults,
  type Delivered,
  enqueueRequest,
  scanConsumeResponse,
  utf8,
} from "./wire.ts";

const SVC = "/fila.v1.FilaService/";

/** A gRPC call error (status code and message from the trailers). */
export class GrpcError extends Error {
  constructor(readonly code: number, message: string) {
    super(`gRPC status ${code}: ${message}`);
  }
}

function frame(body: Uint8Array): Buffer {
  const f = Buffer.allocUnsafe(5 + body.length);
  f[0] = 0;
  f.writeUInt32BE(body.length, 1);
  f.set(body, 5);
  return f;
}

/** Splits a DATA byte stream into gRPC messages. */
class Deframer {
  #buf: Buffer | null = null;
  push(chunk: Buffer, emit: (msg: Uint8Array) => void): void {
    let b = this.#buf ? Buffer.concat([this.#buf, chunk]) : chunk;
    while (b.length >= 5) {
      const len = b.readUInt32BE(1);
      if (b.length < 5 + len) break;
      emit(new Uint8Array(b.buffer, b.byteOffset + 5, len));
      b = b.subarray(5 + len);
    }
    this.#buf = b.length ? b : null;
  }
}

function statusOf(h: http2.IncomingHttpHeaders): GrpcError | null | undefined {
  const st = h["grpc-status"];
  if (st === undefined) return undefined;
  if (st === "0") return null;
  return new GrpcError(Number(st), decodeURIComponent(String(h["grpc-message"] ?? "")));
}

export class BenchClient {
  readonly addr: string;
  readonly #session: http2.ClientHttp2Session;
  #admin: FilaClient | undefined;

  constructor(addr: string) {
    this.addr = addr;
    // The receive windows the SDK uses (the 64 KiB default stalls batched delivery).
    this.#session = http2.connect(`http://${addr}`, {
      settings: { initialWindowSize: RECEIVE_WINDOW_BYTES },
    });
    this.#session.once("connect", () => this.#session.setLocalWindowSize(RECEIVE_WINDOW_BYTES));
    this.#session.on("error", () => {});
  }

  get admin(): FilaClient {
    return this.#admin ??= new FilaClient(this.addr);
  }

  close(): void {
    this.#session.close();
    this.#admin?.close();
  }

  #request(method: string): http2.ClientHttp2Stream {
    return this.#session.request({
      ":method": "POST",
      ":path": SVC + method,
      "content-type": "application/grpc",
      te: "trailers",
    });
  }

  /** Unary call with a pre-encoded request; resolves with the response message bytes. */
  call(method: string, body: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const s = this.#request(method);
      const chunks: Buffer[] = [];
      let status: GrpcError | null | undefined;
      s.on("response", (h) => status ??= statusOf(h));
      s.on("trailers", (h) => status ??= statusOf(h));
      s.on("data", (c: Buffer) => chunks.push(c));
      s.on("error", reject);
      s.on("close", () => {
        if (status) return reject(status);
        if (status === undefined) return reject(new GrpcError(2, "stream closed without status"));
        const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
        resolve(new Uint8Array(all.buffer, all.byteOffset + 5, all.length - 5));
      });
      s.end(frame(body));
    });
  }

  /** BatchEnqueue of a pre-encoded BatchEnqueueRequest; throws if any item failed. */
  async batchEnqueue(body: Uint8Array): Promise<number> {
    const [n, errors, first] = countBatchResults(await this.call("BatchEnqueue", body));
    if (errors > 0) throw new Error(`BatchEnqueue: ${errors}/${n} items failed: ${first}`);
    return n;
  }

  async batchAck(queue: Uint8Array, ids: Uint8Array[]): Promise<void> {
    const [n, errors, first] = countBatchResults(
      await this.call("BatchAck", batchAckRequest(queue, ids)),
    );
    if (errors > 0) throw new Error(`BatchAck: ${errors}/${n} items failed: ${first}`);
  }

  /**
   * Opens a Consume stream with batched delivery; `onBatch` gets the scanned messages of each
   * stream item. Returns a handle to cancel it.
   */
  consume(
    queue: string,
    opts: { maxUnacked: number; maxBatch: number; wantKey?: boolean },
    onBatch: (ms: Delivered[]) => void,
    onError: (e: Error) => void = (e) => console.error("consume:", e.message),
  ): { cancel(): void } {
    const s = this.#request("Consume");
    const d = new Deframer();
    let cancelled = false;
    let status: GrpcError | null | undefined;
    s.on("response", (h) => status ??= statusOf(h));
    s.on("trailers", (h) => status ??= statusOf(h));
    s.on("data", (c: Buffer) => d.push(c, (m) => onBatch(scanConsumeResponse(m, opts.wantKey))));
    s.on("error", (e) => cancelled || onError(e));
    s.on("close", () => {
      if (!cancelled) onError(status ?? new Error("consume stream ended"));
    });
    s.end(frame(consumeRequest(queue, opts.maxUnacked, opts.maxBatch)));
    return {
      cancel: () => {
        cancelled = true;
        s.close(http2.constants.NGHTTP2_CANCEL);
      },
    };
  }

  createQueue(name: string, config?: QueueConfig) {
    return this.admin.createQueue(name, config);
  }
  deleteQueue(name: string) {
    return this.admin.deleteQueue(name);
  }
}

/** Encodes a batch of `n` identical messages (the common case: encode once, send many times). */
export function sameBatch(
  queue: string,
  n: number,
  payload: Uint8Array,
  headers: Record<string, string> = {},
): Uint8Array {
  const one = enqueueRequest(queue, headers, payload);
  return batchOf(Array.from({ length: n }, () => one));
}

export { batchOf, enqueueRequest, utf8 };

/**
 * Runs `total` units of work as tasks of `per` units each with `inFlight` tasks outstanding.
 * `task(units)` sends one request. Calls `tick(done)` after each task.
 */
export async function pipelined(
  total: number,
  per: number,
  inFlight: number,
  task: (units: number, index: number) => Promise<unknown>,
  tick?: (done: number) => void,
): Promise<void> {
  let next = 0;
  let done = 0;
  let index = 0;
  const worker = async () => {
    while (next < total) {
      const units = Math.min(per, total - next);
      next += units;
      await task(units, index++);
      done += units;
      tick?.(done);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}

/**
 * Consumes `total` messages from `queue` with `consumers` batched streams, acking each delivered
 * batch with BatchAck (`ackInFlight` BatchAck calls outstanding per consumer at most is not
 * enforced: the broker's max_unacked is the back-pressure). Resolves when all are acked.
 */
export function drain(
  clients: BenchClient[],
  queue: string,
  total: number,
  opts: {
    consumers?: number;
    maxUnacked?: number;
    maxBatch?: number;
    wantKey?: boolean;
    onMessage?: (d: Delivered, now: number) => void;
    tick?: (acked: number) => void;
  } = {},
): Promise<void> {
  const consumers = opts.consumers ?? 1;
  const q = utf8(queue);
  let acked = 0;
  const handles: Array<{ cancel(): void }> = [];
  return new Promise<void>((resolve, reject) => {
    let finished = false;
    const fail = (e: Error) => {
      if (finished) return;
      finished = true;
      for (const h of handles) h.cancel();
      reject(e);
    };
    for (let i = 0; i < consumers; i++) {
      const c = clients[i % clients.length];
      handles.push(c.consume(queue, {
        maxUnacked: opts.maxUnacked ?? 1024,
        maxBatch: opts.maxBatch ?? 256,
        wantKey: opts.wantKey,
      }, (ms) => {
        if (opts.onMessage) {
          const now = performance.now();
          for (const m of ms) opts.onMessage(m, now);
        }
        c.batchAck(q, ms.map((m) => m.id)).then(() => {
          acked += ms.length;
          opts.tick?.(acked);
          if (acked >= total && !finished) {
            finished = true;
            for (const h of handles) h.cancel();
            resolve();
          }
        }, fail);
      }, fail));
    }
  });
}
