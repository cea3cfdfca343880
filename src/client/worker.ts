/** `client.work()`: a consume loop running a handler with bounded concurrency. */
import type { ConsumeOptions, Consumer, Delivery } from "./consumer.ts";

/**
 * A message handler: return (or resolve) to ack, throw (or reject) to nack with the error's
 * message. It may also settle the message itself (`msg.ack()` / `msg.nack(reason)`).
 *
 * @example
 * ```ts
 * const handler: Handler = async (msg) => {
 *   if (msg.attemptCount > 5) return; // give up: ack
 *   await deliver(msg.json());
 * };
 * ```
 */
export type Handler = (msg: Delivery) => unknown;

/**
 * Options of `work`.
 *
 * @example
 * ```ts
 * const worker = client.work("jobs", handle, { concurrency: 8, onError: console.error });
 * ```
 */
export interface WorkOptions extends ConsumeOptions {
  /** Handlers running at once (default 1). */
  concurrency?: number;
  /**
   * Credit (default = concurrency). More than `concurrency` prefetches messages, which are then
   * leased but idle; with fair scheduling that delays other keys, so keep it close.
   */
  maxInFlight?: number;
  /**
   * Called when an ack or nack fails (e.g. the lease expired meanwhile) and when the consume
   * stream ends with an error. Default: `console.error`.
   */
  onError?: (error: unknown, msg?: Delivery) => void;
}

function reason(e: unknown): string {
  if (e instanceof Error) return e.message;
  return typeof e === "string" ? e : JSON.stringify(e) ?? String(e);
}

/**
 * A running `work()` loop. `stop()` lets running handlers finish (and settle), then closes the
 * stream; `done` settles when the loop has ended (rejecting if the stream failed for good).
 *
 * @example
 * ```ts
 * const worker = client.work("jobs", async (msg) => {
 *   await process(msg.json());
 * }, { concurrency: 4 });
 * Deno.addSignalListener("SIGTERM", () => worker.stop());
 * await worker.done;
 * ```
 */
export class Worker {
  readonly queue: string;
  /** Messages acked after their handler returned. */
  acked = 0;
  /** Messages nacked after their handler threw. */
  nacked = 0;
  /** Resolves when the loop ends after `stop()`; rejects on an unrecoverable stream error. */
  readonly done: Promise<void>;
  readonly #consumer: Consumer;
  readonly #handler: Handler;
  readonly #concurrency: number;
  readonly #onError: (error: unknown, msg?: Delivery) => void;
  #stopping = false;
  #wakeStop: () => void = () => {};
  readonly #stopSignal: Promise<void>;

  constructor(consumer: Consumer, handler: Handler, options: WorkOptions) {
    this.queue = consumer.queue;
    this.#consumer = consumer;
    this.#handler = handler;
    this.#concurrency = Math.max(1, Math.floor(options.concurrency ?? 1));
    this.#onError = options.onError ?? ((e) => console.error(`fila worker (${this.queue}):`, e));
    this.#stopSignal = new Promise((resolve) => this.#wakeStop = resolve);
    options.signal?.addEventListener("abort", () => void this.stop(), { once: true });
    this.done = this.#run();
    // Callers that never await `done` still hear about failures through onError.
    this.done.catch(() => {});
  }

  /** Stops taking messages, waits for running handlers, then closes the stream. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wakeStop();
    try {
      await this.done;
    } catch {
      // reported through `done` and onError
    }
  }

  async #run(): Promise<void> {
    const running = new Set<Promise<void>>();
    try {
      while (!this.#stopping) {
        while (running.size >= this.#concurrency) await Promise.race(running);
        if (this.#stopping) break;
        const next = await Promise.race([this.#consumer.next(), this.#stopSignal]);
        if (!next || next.done) break;
        const task: Promise<void> = this.#handle(next.value).finally(() => running.delete(task));
        running.add(task);
      }
    } catch (e) {
      this.#onError(e);
      throw e;
    } finally {
      await Promise.allSettled([...running]);
      await this.#consumer.close();
    }
  }

  async #handle(msg: Delivery): Promise<void> {
    let failure: { error: unknown } | null = null;
    try {
      await this.#handler(msg);
    } catch (e) {
      failure = { error: e };
    }
    if (msg.settled) return;
    try {
      if (failure) {
        await msg.nack(reason(failure.error));
        this.nacked++;
      } else {
        await msg.ack();
        this.acked++;
      }
    } catch (e) {
      this.#onError(e, msg);
    }
  }
}
