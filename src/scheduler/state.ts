/** In-memory queue state owned by the scheduler loop (nothing else mutates it). */
import type { MessageBody, QueueDef } from "../core/types.ts";
import type { Delivery } from "../core/types.ts";
import type { FilaError } from "../core/errors.ts";
import { Deque } from "./deque.ts";
import { DrrNode, DrrRing } from "./drr.ts";
import { DeliveryWindow } from "./share_window.ts";

/**
 * pending: in its key's pending list. inflight: leased. delayed: waiting for its ready time.
 * moving: its next state is being committed (after a failure or a move); nothing may touch it.
 * gone: acked or deleted.
 */
export type EntryState = "pending" | "inflight" | "delayed" | "moving" | "gone";

/** What the scheduler sends deliveries to; implemented at the edge (a gRPC stream). */
export interface ConsumerSink {
  /** Sends one delivery; returns false when the transport wants no more for now. */
  send(delivery: Delivery): boolean;
  /** Sends several deliveries (batched delivery opt-in); same return as `send`. */
  sendBatch?(deliveries: Delivery[]): boolean;
  /** Ends the stream; `error` absent = normal end. */
  close(error?: FilaError): void;
}

export class Consumer {
  readonly leases = new Set<Entry>();
  blocked = false;
  closed = false;
  /** Deliveries waiting for payloads read back from storage, which later ones queue behind. */
  sending: Promise<void> | undefined = undefined;
  constructor(
    readonly id: number,
    readonly queue: QueueState,
    readonly maxUnacked: number,
    readonly sink: ConsumerSink,
    /** Most messages per send (1 = unbatched delivery). */
    readonly maxBatch = 1,
  ) {}

  canReceive(): boolean {
    return !this.closed && !this.blocked && this.leases.size < this.maxUnacked;
  }
}

export class Entry {
  state: EntryState = "pending";
  /** Lease deadline while in flight (Infinity = never). */
  deadline = 0;
  /** Ready time while delayed. */
  readyAt = 0;
  consumer: Consumer | undefined = undefined;
  /** Neighbours in the queue's lease list, ordered by deadline. */
  leasePrev: Entry | undefined = undefined;
  leaseNext: Entry | undefined = undefined;
  constructor(
    readonly body: MessageBody,
    public attempts: number,
    public key: KeyState,
  ) {}
}

export class KeyState extends DrrNode {
  readonly pending = new Deque<Entry>();
  /** Messages of this key held by the queue in any state; the key is dropped at 0. */
  count = 0;
  /** Deliveries since the key was created (semantics.md §4.6). */
  delivered = 0;
  /** Recent deliveries, for the actual-vs-fair share in GetStats. */
  readonly recent = new DeliveryWindow();
  constructor(readonly name: string, readonly queue: QueueState) {
    super();
  }
}

/** Monotonic event counts of a queue (metrics read them at collection time). */
export interface Counters {
  enqueued: number;
  leased: number;
  acked: number;
  nacked: number;
  expired: number;
  released: number;
  delayed: number;
  deadLettered: number;
  redriven: number;
}

export function newCounters(): Counters {
  return {
    enqueued: 0,
    leased: 0,
    acked: 0,
    nacked: 0,
    expired: 0,
    released: 0,
    delayed: 0,
    deadLettered: 0,
    redriven: 0,
  };
}

export class QueueState {
  readonly counters: Counters = newCounters();
  /** Recent deliveries of the whole queue (the denominator of a key's recent share). */
  readonly recent = new DeliveryWindow();
  readonly keys = new Map<string, KeyState>();
  readonly messages = new Map<string, Entry>();
  readonly ring: DrrRing<KeyState>;
  readonly consumers: Consumer[] = [];
  /** Index of the consumer that received the last delivery. */
  lastRecipient = -1;
  pending = 0;
  inFlight = 0;
  delayed = 0;
  deleted = false;
  dirty = false;
  /** Lease list in deadline order (deadlines only grow: now + a fixed visibility timeout). */
  leaseHead: Entry | undefined = undefined;
  leaseTail: Entry | undefined = undefined;
  /** Due time of this queue's armed timer event (Infinity = none). */
  armedFor = Infinity;

  constructor(readonly def: QueueDef, quantum: number) {
    this.ring = new DrrRing<KeyState>(quantum);
  }

  get name(): string {
    return this.def.name;
  }

  keyFor(name: string): KeyState {
    let k = this.keys.get(name);
    if (!k) {
      k = new KeyState(name, this);
      this.keys.set(name, k);
    }
    return k;
  }

  /** Inserts a lease keeping deadline order; new leases almost always go at the tail. */
  addLease(e: Entry): void {
    let after = this.leaseTail;
    while (after && after.deadline > e.deadline) after = after.leasePrev;
    e.leasePrev = after;
    e.leaseNext = after ? after.leaseNext : this.leaseHead;
    if (e.leaseNext) e.leaseNext.leasePrev = e;
    else this.leaseTail = e;
    if (after) after.leaseNext = e;
    else this.leaseHead = e;
  }

  removeLease(e: Entry): void {
    if (e.leasePrev) e.leasePrev.leaseNext = e.leaseNext;
    else if (this.leaseHead === e) this.leaseHead = e.leaseNext;
    if (e.leaseNext) e.leaseNext.leasePrev = e.leasePrev;
    else if (this.leaseTail === e) this.leaseTail = e.leasePrev;
    e.leasePrev = e.leaseNext = undefined;
  }
}

export type { Delivery };
