/**
 * Due-time events (lease expiry, delay expiry, throttle wake-ups) on one min-heap with a
 * single armed timer: timers are set for the due time rather than found by polling, so they
 * fire on time whatever the load. Cancellation is lazy: the owner checks an event is still
 * current when it fires.
 */

/** setTimeout's longest delay; longer waits re-arm. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

interface Item<T> {
  due: number;
  seq: number;
  value: T;
}

export class TimerHeap<T> {
  #heap: Item<T>[] = [];
  #seq = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #armedFor = Infinity;
  readonly #now: () => number;
  readonly #onDue: (value: T) => void;
  #stopped = false;

  constructor(now: () => number, onDue: (value: T) => void) {
    this.#now = now;
    this.#onDue = onDue;
  }

  get size(): number {
    return this.#heap.length;
  }

  schedule(due: number, value: T): void {
    if (!Number.isFinite(due) || this.#stopped) return;
    const item = { due, seq: this.#seq++, value };
    const h = this.#heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
    if (due < this.#armedFor) this.#arm();
  }

  #less(a: Item<T>, b: Item<T>): boolean {
    return a.due < b.due || (a.due === b.due && a.seq < b.seq);
  }

  #pop(): Item<T> {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l], h[m])) m = l;
        if (r < h.length && this.#less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }

  #arm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
    if (this.#heap.length === 0 || this.#stopped) return;
    const due = this.#heap[0].due;
    this.#armedFor = due;
    const delay = Math.min(MAX_TIMEOUT_MS, Math.max(0, due - this.#now()));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#armedFor = Infinity;
      this.fireDue();
    }, delay);
  }

  /** Fires every event due by now, then re-arms; tests call it after moving a fake clock. */
  fireDue(): void {
    const now = this.#now();
    while (this.#heap.length > 0 && this.#heap[0].due <= now) {
      this.#onDue(this.#pop().value);
    }
    this.#arm();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#heap = [];
  }
}
