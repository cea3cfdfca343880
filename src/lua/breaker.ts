import type { Clock } from "../core/clock.ts";

/**
 * A queue's circuit breaker (lua.md §7): `threshold` consecutive failures open it for `cooldownMs`;
 * the first call after that closes it again with a fresh count (half-open in name only: one
 * failure does not reopen it). A threshold of 0 disables it.
 */
export class CircuitBreaker {
  readonly #threshold: number;
  readonly #cooldownMs: number;
  readonly #clock: Clock;
  #failures = 0;
  #openUntil: number | undefined;

  constructor(threshold: number, cooldownMs: number, clock: Clock) {
    this.#threshold = threshold;
    this.#cooldownMs = cooldownMs;
    this.#clock = clock;
  }

  /** Whether a hook call may run now. False means: bypass it and use the defaults. */
  allow(): boolean {
    if (this.#openUntil === undefined) return true;
    if (this.#clock.now() < this.#openUntil) return false;
    this.#openUntil = undefined;
    this.#failures = 0;
    return true;
  }

  recordSuccess(): void {
    this.#failures = 0;
  }

  /** Counts a failure; true when it trips the breaker. */
  recordFailure(): boolean {
    if (this.#threshold === 0) return false;
    this.#failures++;
    if (this.#failures < this.#threshold) return false;
    this.#openUntil = this.#clock.now() + this.#cooldownMs;
    return true;
  }
}
