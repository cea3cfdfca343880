/** A growable ring-buffer deque: O(1) push/pop at both ends (pending lists need head inserts
 * for released messages). */
export class Deque<T> {
  #buf: (T | undefined)[];
  #head = 0;
  #length = 0;

  constructor(capacity = 4) {
    this.#buf = new Array(capacity);
  }

  get length(): number {
    return this.#length;
  }

  #grow(): void {
    const old = this.#buf;
    const buf = new Array<T | undefined>(old.length * 2);
    for (let i = 0; i < this.#length; i++) buf[i] = old[(this.#head + i) % old.length];
    this.#buf = buf;
    this.#head = 0;
  }

  pushBack(v: T): void {
    if (this.#length === this.#buf.length) this.#grow();
    this.#buf[(this.#head + this.#length) % this.#buf.length] = v;
    this.#length++;
  }

  pushFront(v: T): void {
    if (this.#length === this.#buf.length) this.#grow();
    this.#head = (this.#head - 1 + this.#buf.length) % this.#buf.length;
    this.#buf[this.#head] = v;
    this.#length++;
  }

  peekFront(): T | undefined {
    return this.#length === 0 ? undefined : this.#buf[this.#head];
  }

  peekBack(): T | undefined {
    return this.#length === 0
      ? undefined
      : this.#buf[(this.#head + this.#length - 1) % this.#buf.length];
  }

  popFront(): T | undefined {
    if (this.#length === 0) return undefined;
    const v = this.#buf[this.#head];
    this.#buf[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#buf.length;
    this.#length--;
    return v;
  }

  /** Removes every element matching `pred`, keeping order; O(n). */
  removeWhere(pred: (v: T) => boolean): number {
    const kept: T[] = [];
    for (const v of this) if (!pred(v)) kept.push(v);
    const removed = this.#length - kept.length;
    if (removed > 0) {
      this.#buf = new Array(Math.max(4, kept.length * 2));
      for (let i = 0; i < kept.length; i++) this.#buf[i] = kept[i];
      this.#head = 0;
      this.#length = kept.length;
    }
    return removed;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.#length; i++) {
      yield this.#buf[(this.#head + i) % this.#buf.length] as T;
    }
  }
}
