/**
 * A consume stream as an async iterator, with credit-based back-pressure and automatic reopening
 * of the stream after transport failures.
 */
import { Backoff, type BackoffOptions } from "./backoff.ts";
import { realTimers, type Timers } from "./batcher.ts";
import { errorFromStatus, type FilaError, isRetryable } from "./errors.ts";
import type { Headers, Message } from "./types.ts";
import type { WireConsumeResponse, WireMessage } from "./wire.ts";

/**
 * Options of `consume`.
 *
 * @example
 * ```ts
 * const consumer = client.consume("jobs", { maxInFlight: 10 });
 * ```
 */
export interface ConsumeOptions {
  /**
   * Credit: the most messages this consumer holds unsettled (buffered or being processed) at
   * once, sent as `max_unacked` (default 64). The broker sends nothing more until a message is
   * acked or nacked, which is the back-pressure: a slow loop slows delivery down.
   */
  maxInFlight?: number;
  /**
   * Batched delivery: up to this many messages per stream item (`max_batch_size`). Default:
   * `min(maxInFlight, 64)` when `maxInFlight > 1`, else off; 0 turns it off. Brokers without
   * batched delivery ignore it, and both item forms are read either way.
   */
  batchSize?: number;
  /** Reconnect back-off, or false to end the iteration with the error instead. */
  reconnect?: BackoffOptions | false;
  /** Called before each reconnect attempt (logging, metrics). */
  onReconnect?: (info: ReconnectInfo) => void;
  /** Aborting closes the consumer (the iteration then ends normally). */
  signal?: AbortSignal;
}

/**
 * Passed to `ConsumeOptions.onReconnect`.
 *
 * @example
 * ```ts
 * client.consume("jobs", {
 *   onReconnect: ({ attempt, delayMs, error }) =>
 *     console.warn(`stream lost (${error.codeName}), retry #${attempt} in ${delayMs} ms`),
 * });
 * ```
 */
export interface ReconnectInfo {
  queue: string;
  /** Consecutive failed attempts, 1 for the first reconnect. */
  attempt: number;
  /** Delay before the new stream is opened. */
  delayMs: number;
  /** Why the previous stream ended. */
  error: FilaError;
}

/** What a Consumer needs from the client: open a stream, settle a message. */
export interface ConsumeTransport {
  openStream(
    request: { queue: string; max_unacked: number; max_batch_size: number },
    events: {
      data(response: WireConsumeResponse): void;
      end(code: number, details: string): void;
    },
  ): { cancel(): void };
  settle(kind: "ack" | "nack", queue: string, id: string, error?: string): Promise<void>;
  timers?: Timers;
  now?: () => number;
}

/**
 * Default credit of `consume`.
 *
 * @example
 * ```ts
 * client.consume("jobs", { maxInFlight: DEFAULT_MAX_IN_FLIGHT * 2 });
 * ```
 */
export const DEFAULT_MAX_IN_FLIGHT = 64;

/**
 * A delivered message with its settle methods. Each delivery is settled once, by `ack()` or
 * `nack()`; a repeated call of the same kind returns the first call's promise.
 *
 * @example
 * ```ts
 * for await (const msg of client.consume("jobs")) {
 *   try {
 *     await handle(JSON.parse(msg.text()));
 *     await msg.ack();
 *   } catch (e) {
 *     await msg.nack(String(e));
 *   }
 * }
 * ```
 */
export class Delivery implements Message {
  readonly id: string;
  readonly queue: string;
  readonly headers: Headers;
  readonly payload: Uint8Array;
  readonly fairnessKey: string;
  readonly weight: number;
  readonly throttleKeys: string[];
  readonly attemptCount: number;
  readonly #consumer: Consumer;
  #settled: { kind: "ack" | "nack"; done: Promise<void> } | null = null;

  /** @internal Deliveries are made by their Consumer. */
  constructor(consumer: Consumer, raw: WireMessage) {
    this.#consumer = consumer;
    this.id = raw.id;
    this.queue = raw.metadata?.queue_id || consumer.queue;
    this.headers = { ...raw.headers };
    this.payload = new Uint8Array(raw.payload);
    this.fairnessKey = raw.metadata?.fairness_key ?? "default";
    this.weight = raw.metadata?.weight ?? 1;
    this.throttleKeys = raw.metadata?.throttle_keys ?? [];
    this.attemptCount = raw.metadata?.attempt_count ?? 0;
  }

  /** The payload decoded as UTF-8. */
  text(): string {
    return new TextDecoder().decode(this.payload);
  }

  /** The payload parsed as JSON. */
  json<T = unknown>(): T {
    return JSON.parse(this.text()) as T;
  }

  /** Whether `ack()` or `nack()` was called. */
  get settled(): boolean {
    return this.#settled !== null;
  }

  /** Acknowledges the message: it is done and removed from the queue. */
  ack(): Promise<void> {
    return this.#settle("ack");
  }

  /** Reports a failed attempt with a reason (passed to `on_failure`); the broker retries it. */
  nack(error: string | Error = ""): Promise<void> {
    return this.#settle("nack", error instanceof Error ? error.message : error);
  }

  #settle(kind: "ack" | "nack", error?: string): Promise<void> {
    if (this.#settled) {
      if (this.#settled.kind === kind) return this.#settled.done;
      return Promise.reject(new Error(`message ${this.id} was already ${this.#settled.kind}ed`));
    }
    const done = this.#consumer._settle(kind, this.id, error);
    this.#settled = { kind, done };
    return done;
  }
}

interface Waiter {
  resolve(r: IteratorResult<Delivery>): void;
  reject(e: unknown): void;
}

/**
 * A consume stream read as an async iterator of `Delivery`. Closing it (or leaving a `for await`
 * loop) waits for the acks and nacks already issued, then cancels the stream; the broker puts
 * messages delivered but not settled back at the head of their key.
 *
 * When the stream fails (connection lost, broker restarted or shutting down) the consumer reopens
 * it after a jittered back-off and keeps yielding; messages that were buffered but not yet
 * yielded are dropped, since the broker redelivers them. Errors that retrying cannot fix
 * (unknown or deleted queue, invalid name, ACL, authentication) end the iteration by throwing.
 *
 * @example
 * ```ts
 * const consumer = client.consume("jobs", { maxInFlight: 8 });
 * for await (const msg of consumer) {
 *   console.log(msg.text());
 *   await msg.ack();
 *   if (msg.text() === "last") break; // closes the stream
 * }
 * ```
 */
export class Consumer implements AsyncIterableIterator<Delivery>, AsyncDisposable {
  readonly queue: string;
  readonly maxInFlight: number;
  readonly batchSize: number;
  readonly #transport: ConsumeTransport;
  readonly #timers: Timers;
  readonly #now: () => number;
  readonly #backoff: Backoff | null;
  readonly #onReconnect?: (info: ReconnectInfo) => void;
  #buffer: Delivery[] = [];
  #waiters: Waiter[] = [];
  #stream: { cancel(): void } | null = null;
  #generation = 0;
  #openedAt = 0;
  #reconnectTimer: unknown = undefined;
  #closed = false;
  #error: FilaError | null = null;
  #settling = new Set<Promise<void>>();
  #closing: Promise<void> | null = null;
  /** Streams opened so far (1 + reconnects). */
  streamsOpened = 0;

  readonly #onClosed?: () => void;

  constructor(
    transport: ConsumeTransport,
    queue: string,
    options: ConsumeOptions = {},
    onClosed?: () => void,
  ) {
    this.queue = queue;
    this.#onClosed = onClosed;
    this.#transport = transport;
    this.#timers = transport.timers ?? realTimers;
    this.#now = transport.now ?? (() => Date.now());
    const maxInFlight = Math.floor(options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT);
    if (!(maxInFlight >= 1 && maxInFlight <= 0xffffffff)) {
      throw new RangeError(`maxInFlight must be 1…4294967295, got ${options.maxInFlight}`);
    }
    this.maxInFlight = maxInFlight;
    this.batchSize = Math.max(
      0,
      Math.floor(options.batchSize ?? (maxInFlight > 1 ? Math.min(maxInFlight, 64) : 0)),
    );
    this.#backoff = options.reconnect === false ? null : new Backoff(options.reconnect ?? {});
    this.#onReconnect = options.onReconnect;
    if (options.signal) {
      if (options.signal.aborted) this.#closed = true;
      else options.signal.addEventListener("abort", () => void this.close(), { once: true });
    }
    if (!this.#closed) this.#open();
  }

  /** Messages received and not yet yielded. */
  get buffered(): number {
    return this.#buffer.length;
  }

  get closed(): boolean {
    return this.#closed;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Delivery>> {
    const d = this.#buffer.shift();
    if (d) return Promise.resolve({ value: d, done: false });
    if (this.#error) {
      const e = this.#error;
      this.#error = null;
      this.#closed = true;
      return Promise.reject(e);
    }
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  async return(): Promise<IteratorResult<Delivery>> {
    await this.close();
    return { value: undefined, done: true };
  }

  /** Stops consuming: waits for issued acks/nacks, then cancels the stream. */
  close(): Promise<void> {
    if (!this.#closing) this.#closing = this.#doClose();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #doClose(): Promise<void> {
    this.#closed = true;
    if (this.#reconnectTimer !== undefined) {
      this.#timers.clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = undefined;
    }
    this.#finishWaiters();
    // Cancelling first would release the leases these acks are about to settle.
    while (this.#settling.size > 0) await Promise.allSettled([...this.#settling]);
    this.#generation++;
    this.#stream?.cancel();
    this.#stream = null;
    this.#buffer = [];
    this.#onClosed?.();
  }

  /** @internal Settles a message of this consumer (used by Delivery). */
  _settle(kind: "ack" | "nack", id: string, error?: string): Promise<void> {
    const p = this.#transport.settle(kind, this.queue, id, error);
    const tracked = p.then(() => {}, () => {}).finally(() => this.#settling.delete(tracked));
    this.#settling.add(tracked);
    return p;
  }

  #open(): void {
    const gen = ++this.#generation;
    this.#openedAt = this.#now();
    this.streamsOpened++;
    this.#stream = this.#transport.openStream(
      { queue: this.queue, max_unacked: this.maxInFlight, max_batch_size: this.batchSize },
      {
        data: (res) => {
          if (gen !== this.#generation || this.#closed) return;
          this.#backoff?.reset();
          if (res.message) this.#push(res.message);
          for (const m of res.messages ?? []) this.#push(m);
        },
        end: (code, details) => {
          if (gen !== this.#generation) return;
          this.#stream = null;
          this.#ended(code, details);
        },
      },
    );
  }

  #push(raw: WireMessage): void {
    const d = new Delivery(this, raw);
    const w = this.#waiters.shift();
    if (w) w.resolve({ value: d, done: false });
    else this.#buffer.push(d);
  }

  #ended(code: number, details: string): void {
    if (this.#closed) return;
    // The broker releases (or, after a crash, lets expire) the leases of unyielded messages and
    // delivers them again; keeping them would only produce acks that fail.
    this.#buffer = [];
    const error = errorFromStatus(code, details || "consume stream ended");
    const backoff = this.#backoff;
    if (!backoff || !isRetryable(code)) return this.#fail(error);
    // A stream that stayed up for a while was healthy: start the back-off over.
    if (this.#now() - this.#openedAt > backoff.maxMs) backoff.reset();
    if (backoff.exhausted) return this.#fail(error);
    const delayMs = backoff.next();
    try {
      this.#onReconnect?.({ queue: this.queue, attempt: backoff.attempt, delayMs, error });
    } catch {
      // a throwing observer must not stop the consumer
    }
    this.#reconnectTimer = this.#timers.setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (!this.#closed) this.#open();
    }, delayMs);
  }

  #fail(error: FilaError): void {
    this.#onClosed?.();
    const w = this.#waiters.shift();
    if (w) {
      w.reject(error);
      this.#closed = true;
      this.#finishWaiters();
    } else {
      this.#error = error;
    }
  }

  #finishWaiters(): void {
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) w.resolve({ value: undefined, done: true });
  }
}
