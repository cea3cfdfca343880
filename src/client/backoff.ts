/** Jittered exponential back-off for reconnecting consume streams. */

/**
 * Reconnect back-off settings.
 *
 * @example
 * ```ts
 * const client = await FilaClient.connect("127.0.0.1:5555", {
 *   reconnect: { initialMs: 50, maxMs: 2000 },
 * });
 * ```
 */
export interface BackoffOptions {
  /** First delay in ms (default 100). */
  initialMs?: number;
  /** Upper bound of a delay in ms (default 5000). */
  maxMs?: number;
  /** Growth factor per failed attempt (default 2). */
  multiplier?: number;
  /**
   * Fraction of each delay that is randomised, 0…1 (default 0.5): a delay is drawn uniformly
   * from `[base × (1 − jitter), base]`. Spreads the reconnects of many clients after a restart.
   */
  jitter?: number;
  /** Give up after this many consecutive failed attempts (default: never). */
  maxAttempts?: number;
}

/**
 * Delay sequence of one reconnecting stream: `next()` for each failure, `reset()` once the stream
 * works again.
 *
 * @example
 * ```ts
 * const b = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0 });
 * b.next(); // 100
 * b.next(); // 200
 * b.reset();
 * ```
 */
export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier: number;
  readonly jitter: number;
  readonly maxAttempts: number;
  #attempt = 0;
  readonly #random: () => number;

  constructor(options: BackoffOptions = {}, random: () => number = Math.random) {
    this.initialMs = Math.max(0, options.initialMs ?? 100);
    this.maxMs = Math.max(this.initialMs, options.maxMs ?? 5000);
    this.multiplier = Math.max(1, options.multiplier ?? 2);
    this.jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5));
    this.maxAttempts = options.maxAttempts ?? Infinity;
    this.#random = random;
  }

  /** Consecutive failures so far. */
  get attempt(): number {
    return this.#attempt;
  }

  /** Whether another attempt is allowed. */
  get exhausted(): boolean {
    return this.#attempt >= this.maxAttempts;
  }

  /** The delay before the next attempt (and counts the failure). */
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * this.multiplier ** this.#attempt);
    this.#attempt++;
    return Math.round(base * (1 - this.jitter * this.#random()));
  }

  reset(): void {
    this.#attempt = 0;
  }
}
