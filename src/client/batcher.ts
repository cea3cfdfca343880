/**
 * Coalescing of independent calls (enqueue, ack, nack) into batch requests. Each caller keeps its
 * own promise and gets its own result or error.
 *
 * Policy: when nothing is in flight, whatever was submitted in the current tick goes out at the
 * end of it (a lone sequential caller pays no added latency, a `Promise.all` burst becomes one
 * batch). While a batch is in flight ("under load"), new items wait at most `lingerMs` so that
 * they share the next request. A batch is sent at once when it reaches `maxItems` or `maxBytes`.
 */

/** Timer functions the batcher uses; tests inject a fake clock. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The global timers. */
export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as number),
};

/** Result of one item of a batch, in request order. */
export type Outcome<R> = { ok: true; value: R } | { ok: false; error: Error };

/**
 * Client-side batching settings.
 *
 * @example
 * ```ts
 * const client = await FilaClient.connect("127.0.0.1:5555", {
 *   batching: { lingerMs: 0.5, maxItems: 200 },
 * });
 * ```
 */
export interface BatchingOptions {
  /** Set false to send every enqueue/ack/nack as its own unary call (default true). */
  enabled?: boolean;
  /** Longest an item waits for companions while a batch is in flight, in ms (default 1). */
  lingerMs?: number;
  /** Most items per batch request (default 500). */
  maxItems?: number;
  /**
   * Estimated encoded bytes per batch request (default 1 MiB; the broker rejects requests over
   * 4 MiB as a whole). An item larger than this travels alone.
   */
  maxBytes?: number;
}

export interface BatcherConfig<I> {
  lingerMs: number;
  maxItems: number;
  maxBytes: number;
  /** Estimated encoded size of an item. */
  sizeOf: (item: I) => number;
  timers?: Timers;
}

interface Pending<I, R> {
  item: I;
  resolve: (v: R) => void;
  reject: (e: Error) => void;
}

/**
 * Collects submitted items into batches and hands each batch to `send`, which returns one
 * outcome per item in order (or rejects, failing every item of the batch).
 *
 * @example
 * ```ts
 * const b = new Batcher<number, number>(async (xs) => xs.map((x) => ({ ok: true, value: x * 2 })), {
 *   lingerMs: 1, maxItems: 100, maxBytes: 1 << 20, sizeOf: () => 8,
 * });
 * const [a, c] = await Promise.all([b.submit(1), b.submit(2)]); // one send([1, 2])
 * ```
 */
export class Batcher<I, R> {
  readonly #send: (items: I[]) => Promise<Outcome<R>[]>;
  readonly #cfg: BatcherConfig<I>;
  readonly #timers: Timers;
  #pending: Pending<I, R>[] = [];
  #pendingBytes = 0;
  /** A flush is scheduled (microtask or timer) for the current pending items. */
  #scheduled = false;
  #timer: unknown = undefined;
  #inFlight = new Set<Promise<void>>();
  /** Requests not yet answered; drops before the callers are resumed (unlike #inFlight). */
  #awaiting = 0;
  /** Requests sent so far (for tests and metrics). */
  batchesSent = 0;

  constructor(send: (items: I[]) => Promise<Outcome<R>[]>, cfg: BatcherConfig<I>) {
    this.#send = send;
    this.#cfg = cfg;
    this.#timers = cfg.timers ?? realTimers;
  }

  /** Items waiting to be sent. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Batch requests sent and not yet answered. */
  get inFlight(): number {
    return this.#awaiting;
  }

  submit(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const size = this.#cfg.sizeOf(item);
      if (this.#pending.length > 0 && this.#pendingBytes + size > this.#cfg.maxBytes) {
        this.#sendPending();
      }
      this.#pending.push({ item, resolve, reject });
      this.#pendingBytes += size;
      if (
        this.#pending.length >= this.#cfg.maxItems || this.#pendingBytes >= this.#cfg.maxBytes
      ) {
        this.#sendPending();
      } else if (!this.#scheduled) {
        this.#scheduled = true;
        if (this.#awaiting === 0 || this.#cfg.lingerMs <= 0) {
          queueMicrotask(() => {
            if (this.#scheduled && this.#timer === undefined) this.#sendPending();
          });
        } else {
          this.#timer = this.#timers.setTimeout(() => {
            this.#timer = undefined;
            this.#sendPending();
          }, this.#cfg.lingerMs);
        }
      }
    });
  }

  /** Sends whatever is pending now and waits until every request in flight is answered. */
  async flush(): Promise<void> {
    this.#sendPending();
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  #sendPending(): void {
    if (this.#timer !== undefined) {
      this.#timers.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#scheduled = false;
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.batchesSent++;
    const done = this.#dispatch(batch).finally(() => this.#inFlight.delete(done));
    this.#inFlight.add(done);
  }

  async #dispatch(batch: Pending<I, R>[]): Promise<void> {
    let outcomes: Outcome<R>[];
    this.#awaiting++;
    try {
      outcomes = await this.#send(batch.map((p) => p.item));
    } catch (e) {
      this.#awaiting--;
      const err = e instanceof Error ? e : new Error(String(e));
      for (const p of batch) p.reject(err);
      return;
    }
    // A caller resumed below that submits again must see the broker idle, or it would linger.
    this.#awaiting--;
    batch.forEach((p, i) => {
      const o = outcomes[i];
      if (!o) p.reject(new Error(`batch answered ${outcomes.length} results for ${batch.length}`));
      else if (o.ok) p.resolve(o.value);
      else p.reject(o.error);
    });
  }
}

/** UTF-8 length of a string without encoding it. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
