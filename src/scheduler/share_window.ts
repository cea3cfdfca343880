/**
 * Deliveries over a sliding window (the last `buckets` × `bucketMs`), kept as a ring of
 * per-bucket counts: recording is O(1) and allocation-free, and reading sums a few buckets.
 * It answers "what share of the recent deliveries did this key get?".
 */
export class DeliveryWindow {
  readonly #bucketMs: number;
  readonly #stamps: Float64Array;
  readonly #counts: Float64Array;

  constructor(bucketMs = 1000, buckets = 10) {
    this.#bucketMs = bucketMs;
    this.#stamps = new Float64Array(buckets).fill(-1);
    this.#counts = new Float64Array(buckets);
  }

  record(now: number, n = 1): void {
    const idx = Math.floor(now / this.#bucketMs);
    const slot = idx % this.#stamps.length;
    if (this.#stamps[slot] !== idx) {
      this.#stamps[slot] = idx;
      this.#counts[slot] = 0;
    }
    this.#counts[slot] += n;
  }

  /** Deliveries recorded in the window ending at `now`. */
  count(now: number): number {
    const idx = Math.floor(now / this.#bucketMs);
    const oldest = idx - this.#stamps.length;
    let sum = 0;
    for (let i = 0; i < this.#stamps.length; i++) {
      if (this.#stamps[i] > oldest && this.#stamps[i] <= idx) sum += this.#counts[i];
    }
    return sum;
  }
}
