/**
 * Deficit Round Robin over a queue's active fairness keys, exactly as semantics.md §4.3:
 * turns are `weight` messages long, a round gives each key `weight × quantum`, a newly active
 * key joins the current round at the end of the ring with a full deficit, and blocked keys are
 * skipped without losing anything.
 *
 * The ring is an intrusive doubly-linked list and rounds are refilled lazily (a key's deficit
 * belongs to the round it was last set in), so activation, deactivation, a delivery and a new
 * round are all O(1); only selection walks past keys that cannot be served.
 */

/** The fields DRR keeps on each key; the scheduler's per-key state extends this. */
export class DrrNode {
  /** Scheduling weight, max(1, weight of the newest pending message). */
  weight = 1;
  deficit = 0;
  round = 0;
  prev: DrrNode | undefined = undefined;
  next: DrrNode | undefined = undefined;
  inRing = false;
}

const MAX_DEFICIT = Number.MAX_SAFE_INTEGER;

export class DrrRing<K extends DrrNode> {
  readonly quantum: number;
  #head: K | undefined;
  #tail: K | undefined;
  #cursor: K | undefined;
  #size = 0;
  #round = 0;
  #turnKey: K | undefined;
  #turnServed = 0;
  /** New rounds started (a metric). */
  rounds = 0;

  constructor(quantum: number) {
    if (!Number.isInteger(quantum) || quantum < 1) {
      throw new RangeError(`DRR quantum must be a positive integer: got ${quantum}`);
    }
    this.quantum = quantum;
  }

  get size(): number {
    return this.#size;
  }

  #full(k: K): number {
    return Math.min(k.weight * this.quantum, MAX_DEFICIT);
  }

  /** The key's deficit in the current round. */
  deficitOf(k: K): number {
    return k.round === this.#round ? k.deficit : this.#full(k);
  }

  #materialize(k: K): void {
    if (k.round !== this.#round) {
      k.deficit = this.#full(k);
      k.round = this.#round;
    }
  }

  /** A key received a pending message while not active: append it with a full deficit. */
  activate(k: K, weight: number): void {
    if (k.inRing) throw new Error("DRR key is already active");
    k.weight = Math.max(1, weight);
    k.deficit = this.#full(k);
    k.round = this.#round;
    k.inRing = true;
    k.next = undefined;
    k.prev = this.#tail;
    if (this.#tail) this.#tail.next = k;
    else this.#head = k;
    this.#tail = k;
    if (this.#size === 0) this.#cursor = k;
    this.#size++;
  }

  /** A message was added to an already active key: the new weight applies, deficit unchanged. */
  updateWeight(k: K, weight: number): void {
    this.#materialize(k);
    k.weight = Math.max(1, weight);
  }

  /** The key's pending list became empty. */
  deactivate(k: K): void {
    if (!k.inRing) return;
    if (this.#turnKey === k) this.#turnKey = undefined;
    const next = k.next as K | undefined;
    if (this.#cursor === k) this.#cursor = next ?? (this.#head === k ? next : this.#head);
    if (k.prev) k.prev.next = k.next;
    else this.#head = next;
    if (k.next) k.next.prev = k.prev;
    else this.#tail = k.prev as K | undefined;
    k.prev = k.next = undefined;
    k.inRing = false;
    this.#size--;
    if (this.#size === 0) this.#cursor = undefined;
    else if (this.#cursor === undefined) this.#cursor = this.#head;
  }

  /**
   * Picks the key to serve next and moves the cursor to it, or returns undefined when every
   * active key is blocked (or none is active). `blocked` is asked about keys with deficit left.
   */
  select(blocked: (k: K) => boolean): K | undefined {
    if (this.#size === 0) return undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      let k = this.#cursor as K;
      for (let j = 0; j < this.#size; j++) {
        if (this.deficitOf(k) > 0 && !blocked(k)) {
          this.#cursor = k;
          return k;
        }
        k = (k.next ?? this.#head) as K;
      }
      if (!this.#anyUnblocked(blocked)) return undefined;
      // Every deliverable key has used its deficit: new round (the cursor stays).
      this.#round++;
      this.rounds++;
      this.#turnKey = undefined;
    }
    return undefined;
  }

  #anyUnblocked(blocked: (k: K) => boolean): boolean {
    for (let k = this.#head; k; k = k.next as K | undefined) if (!blocked(k)) return true;
    return false;
  }

  /**
   * Accounts for one message of `k` (the key just returned by select) having been delivered.
   * `nowEmpty` says its pending list is now empty, which deactivates it.
   */
  delivered(k: K, nowEmpty: boolean): void {
    if (this.#turnKey !== k) {
      this.#turnKey = k;
      this.#turnServed = 0;
    }
    this.#materialize(k);
    k.deficit--;
    this.#turnServed++;
    if (nowEmpty) {
      this.deactivate(k);
    } else if (this.#turnServed >= k.weight || k.deficit === 0) {
      this.#turnKey = undefined;
      this.#cursor = (k.next ?? this.#head) as K;
    }
  }

  /** Active keys in ring order. */
  *[Symbol.iterator](): IterableIterator<K> {
    for (let k = this.#head; k; k = k.next as K | undefined) yield k;
  }
}
