/**
 * The scheduler: the single owner of all queue state (queues, pending lists, DRR rings, leases,
 * consumers, delayed messages, token buckets, runtime config). The gRPC edge calls its command
 * methods and awaits the replies; nothing else reads or writes the state.
 *
 * Commands run to completion synchronously in arrival order (JavaScript's event loop is the
 * command queue); their storage writes are group-committed by the Store and the reply waits for
 * the commit. Changes that make a message deliverable are applied after their commit, so a
 * consumer never sees a message the broker could lose. The lease written at delivery is the
 * one write that is not waited for (semantics.md §1.4).
 */
import { type Clock, systemClock } from "../core/clock.ts";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  FilaError,
  InvalidArgumentError,
  Messages,
  NotFoundError,
  OverloadedError,
  StorageError,
  UnavailableError,
} from "../core/errors.ts";
import { newMessageId } from "../core/ids.ts";
import { type Logger, silentLogger } from "../core/log.ts";
import {
  DEFAULT_MAX_UNACKED,
  DEFAULT_VISIBILITY_TIMEOUT_MS,
  type Delivery,
  DLQ_SUFFIX,
  dlqNameOf,
  isDlqName,
  type MessageBody,
  MIN_VISIBILITY_TIMEOUT_MS,
  type QueueDef,
} from "../core/types.ts";
import {
  checkConfigKey,
  checkConfigPrefix,
  checkConfigValue,
  checkScriptSize,
  compareBytes,
} from "../core/validate.ts";
import type { Mutation, Store } from "../storage/store.ts";
import { declarativeDecision, type PolicyHooks } from "./policy.ts";
import {
  Consumer,
  type ConsumerSink,
  type Counters,
  Entry,
  type KeyState,
  newCounters,
  QueueState,
} from "./state.ts";
import { parseThrottleValue, ThrottleRegistry, type ThrottleStat } from "./throttle.ts";
import { TimerHeap } from "./timers.ts";

export const DELIVERY_SIZE_LIMIT = 4_193_280;
/** Longest retry delay (ms) an on_failure hook can ask for. */
const MAX_DELAY_MS = 4_294_967_295;
/** Failure-path moves per write, well under KV's 1000 mutations per commit. */
const MOVES_PER_WRITE = 200;
/** Lease records per write (one mutation each). */
const LEASES_PER_WRITE = 900;
/** Acks per write (two mutations each, plus chunks of large messages). */
const ACKS_PER_WRITE = 400;
/** Batch-enqueued messages per write: within KV's per-commit mutation and size limits. */
const BODIES_PER_WRITE = 900;
const BYTES_PER_WRITE = 600 * 1024;
const THROTTLE_PREFIX = "throttle.";
const MAX_CONFIG_ENTRIES = 10_000;

export interface SchedulerOptions {
  store: Store;
  /** DRR quantum, ≥ 1. */
  quantum: number;
  /** Most commands waiting at once before RESOURCE_EXHAUSTED. @default 10000 */
  commandCapacity?: number;
  clock?: Clock;
  hooks?: PolicyHooks;
  /** Encoded size of a message as first delivered; Enqueue rejects more than 4,193,280. */
  deliveredSize?: (body: MessageBody, queue: string) => number;
  log?: Logger;
  /** Called for each first delivery with the enqueue → delivery latency (ms); for metrics. */
  onFirstDelivery?: (queue: string, latencyMs: number) => void;
  /**
   * Payload bytes of the queues' messages to hold in memory. A message that would go past it
   * keeps only its index in memory, and its payload is read back from the store just before
   * delivery; this bounds memory with a deep backlog. Needs a store with readPayloads.
   * @default Infinity
   */
  payloadBudgetBytes?: number;
}

/** What the metrics exporter reads at each collection (gauges and monotonic counters). */
export interface QueueMetrics {
  queue: string;
  counters: Readonly<Counters>;
  pending: number;
  inFlight: number;
  delayed: number;
  consumers: number;
  /** DRR rounds started. */
  rounds: number;
  /** Active keys in ring order. */
  keys: KeyStats[];
}

export interface MetricsSnapshot {
  queues: QueueMetrics[];
  throttles: Array<ThrottleStat & { pass: number; hit: number }>;
  /** Payload bytes held in memory (the rest of the backlog's are in storage only). */
  residentPayloadBytes: number;
}

export interface EnqueueItem {
  queue: string;
  headers: Record<string, string>;
  payload: Uint8Array;
}

export interface SettleItem {
  queue: string;
  /** Normalised message id. */
  id: string;
}

export interface NackItem extends SettleItem {
  error: string;
}

export interface CreateQueueInput {
  name: string;
  onEnqueueScript: string;
  onFailureScript: string;
  /** 0 = default. */
  visibilityTimeoutMs: number;
  fairnessKeyHeader: string;
  weightHeader: string;
  throttleKeyHeaders: string[];
}

export interface KeyStats {
  key: string;
  pending: number;
  deficit: number;
  weight: number;
  delivered: number;
  /** Share of the queue's deliveries over the last 10 s that went to this key (0 if none). */
  recentShare: number;
  /** weight ÷ sum of the weights of the active keys: the share DRR aims for. */
  fairShare: number;
}

export interface QueueStats {
  depth: number;
  inFlight: number;
  pending: number;
  delayed: number;
  activeKeys: number;
  consumers: number;
  quantum: number;
  perKey: KeyStats[];
  throttles: ThrottleStat[];
}

export interface QueueSummary {
  name: string;
  depth: number;
  inFlight: number;
  consumers: number;
}

export interface ConsumerHandle {
  /** The client went away: release its leases (a failed attempt each). */
  close(): void;
  /** The transport has room again after `send` returned false. */
  resume(): void;
}

type Phase = "recovering" | "serving" | "stopping";

export class Scheduler {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #hooks: PolicyHooks | undefined;
  readonly #deliveredSize: ((body: MessageBody, queue: string) => number) | undefined;
  readonly #log: Logger;
  readonly #onFirstDelivery: ((queue: string, latencyMs: number) => void) | undefined;
  readonly #capacity: number;
  readonly #payloadBudget: number;
  /** Payload bytes in memory, of messages the queues hold. */
  #residentBytes = 0;
  readonly quantum: number;
  readonly #queues = new Map<string, QueueState>();
  readonly #config = new Map<string, string>();
  readonly throttles = new ThrottleRegistry();
  readonly #timers: TimerHeap<Entry | QueueState>;
  #phase: Phase = "recovering";
  #whenServing: Promise<void>;
  #markServing!: () => void;
  #outstanding = 0;
  #consumerSeq = 0;
  #dirty: QueueState[] = [];
  #pumpScheduled = false;
  #purging: Promise<unknown> | undefined;
  /** Event counts of the live queues since start, summed (per queue: QueueState.counters). */
  get counters(): Counters {
    const sum = newCounters();
    for (const q of this.#queues.values()) {
      for (const k of Object.keys(sum) as Array<keyof Counters>) sum[k] += q.counters[k];
    }
    return sum;
  }

  constructor(options: SchedulerOptions) {
    this.#store = options.store;
    this.#clock = options.clock ?? systemClock;
    this.#hooks = options.hooks;
    this.#deliveredSize = options.deliveredSize;
    this.#log = options.log ?? silentLogger;
    this.#onFirstDelivery = options.onFirstDelivery;
    this.#capacity = options.commandCapacity ?? 10_000;
    this.#payloadBudget = options.store.readPayloads
      ? options.payloadBudgetBytes ?? Infinity
      : Infinity;
    if (!Number.isInteger(options.quantum) || options.quantum < 1) {
      throw new RangeError(`quantum must be a positive integer: got ${options.quantum}`);
    }
    this.quantum = options.quantum;
    this.#timers = new TimerHeap(() => this.#clock.now(), (v) => this.#onTimer(v));
    this.#whenServing = new Promise((resolve) => this.#markServing = resolve);
  }

  get #stopping(): boolean {
    return this.#phase === "stopping";
  }

  get serving(): boolean {
    return this.#phase === "serving";
  }

  // ---------------------------------------------------------------- lifecycle

  /** Startup recovery (semantics.md §6): rebuild every queue from storage, then serve. */
  async start(): Promise<void> {
    const snapshot = await this.#store.load({ payloadBudgetBytes: this.#payloadBudget });
    const now = this.#clock.now();
    for (const [key, value] of snapshot.config) {
      this.#config.set(key, value);
      if (key.startsWith(THROTTLE_PREFIX) && key.length > THROTTLE_PREFIX.length) {
        try {
          this.throttles.set(key.slice(THROTTLE_PREFIX.length), parseThrottleValue(value), now);
        } catch (e) {
          this.#log.warn("skipping unparsable throttle setting", { key, error: String(e) });
        }
      }
    }
    for (const def of snapshot.queues) {
      const q = new QueueState(def, this.quantum);
      this.#queues.set(def.name, q);
      for (const err of this.#hooks?.installLenient(def.name, scriptsOf(def)) ?? []) {
        this.#log.error("stored script no longer compiles; hook disabled", {
          queue: def.name,
          error: err,
        });
      }
    }
    const expired: Array<[QueueState, Entry[]]> = [];
    for (const [name, messages] of snapshot.messages) {
      const q = this.#queues.get(name);
      if (!q) continue;
      const leased: Entry[] = [];
      const lapsed: Entry[] = [];
      for (const m of messages) {
        const k = q.keyFor(m.body.fairnessKey);
        const e = new Entry(m.body, m.state?.attempts ?? 0, k);
        k.count++;
        q.messages.set(m.body.id, e);
        this.#admitPayload(m.body);
        const s = m.state;
        if (s?.leaseDeadline !== undefined) {
          e.state = "inflight";
          e.deadline = s.leaseDeadline;
          q.inFlight++;
          (s.leaseDeadline > now ? leased : lapsed).push(e);
        } else if (s?.readyAt !== undefined && s.readyAt > now) {
          e.state = "delayed";
          e.readyAt = s.readyAt;
          q.delayed++;
          this.#timers.schedule(e.readyAt, e);
        } else {
          this.#makePending(q, e, false);
        }
      }
      leased.sort((a, b) => a.deadline - b.deadline);
      for (const e of leased) q.addLease(e);
      this.#armLeaseTimer(q);
      if (lapsed.length > 0) {
        for (const e of lapsed) q.addLease(e);
        expired.push([q, lapsed]);
      }
    }
    for (const [q, entries] of expired) {
      await this.#fail(q, entries, "visibility timeout expired", false);
    }
    this.#phase = "serving";
    this.#markServing();
    this.#purgeInBackground();
    for (const q of this.#queues.values()) this.#markDirty(q);
  }

  /**
   * Graceful shutdown: refuse new commands, end every stream with UNAVAILABLE without
   * releasing its leases (they survive the restart), finish pending commits.
   */
  async shutdown(): Promise<void> {
    if (this.#phase === "stopping") return;
    this.#phase = "stopping";
    this.#markServing(); // wake commands waiting for recovery so they fail
    this.#timers.stop();
    const err = new UnavailableError(Messages.shuttingDown);
    for (const q of this.#queues.values()) {
      for (const c of q.consumers) {
        c.closed = true;
        c.sink.close(err);
      }
      q.consumers.length = 0;
    }
    await this.#purging?.catch(() => {});
    await this.#store.close();
  }

  /**
   * Admission (semantics.md §1.1 step 5): bounded command queue, waiting for recovery,
   * refusing during shutdown.
   */
  async #command<T>(fn: () => T | Promise<T>): Promise<T> {
    if (this.#phase === "stopping") throw new UnavailableError(Messages.shuttingDown);
    if (this.#outstanding >= this.#capacity) throw new OverloadedError();
    this.#outstanding++;
    try {
      if (this.#phase === "recovering") {
        await this.#whenServing;
        if (this.#stopping) throw new UnavailableError(Messages.shuttingDown);
      }
      return await fn();
    } finally {
      this.#outstanding--;
    }
  }

  // ---------------------------------------------------------------- data plane

  /** Enqueue (semantics.md §2.1 steps 3–8). Resolves with the id once committed. */
  enqueue(queue: string, headers: Record<string, string>, payload: Uint8Array): Promise<string> {
    return this.#command(async () => {
      const q = this.#queues.get(queue);
      if (!q) throw new NotFoundError(Messages.queueNotFound(queue));
      const body = this.#newBody(q, headers, payload, this.#clock.now());
      await this.#store.write([{ op: "putMessage", qid: q.def.qid, body }]);
      q.counters.enqueued++;
      if (!q.deleted) this.#addMessage(q, body, 0);
      return body.id;
    });
  }

  /**
   * Batch enqueue (decision l): one result per item in order, an id or the error the unary
   * Enqueue would give. Items are committed in writes that fit one KV commit each, so an item
   * reported successful is durable and a failed one had no effect.
   */
  enqueueBatch(items: readonly EnqueueItem[]): Promise<Array<string | FilaError>> {
    return this.#command(async () => {
      const now = this.#clock.now();
      const results: Array<string | FilaError> = new Array(items.length);
      const groups: Array<{ queues: QueueState[]; bodies: MessageBody[]; index: number[] }> = [];
      let group = {
        queues: [] as QueueState[],
        bodies: [] as MessageBody[],
        index: [] as number[],
      };
      let groupBytes = 0;
      items.forEach((item, i) => {
        try {
          const q = this.#queues.get(item.queue);
          if (!q) throw new NotFoundError(Messages.queueNotFound(item.queue));
          const body = this.#newBody(q, item.headers, item.payload, now);
          const bytes = item.payload.length + 256;
          if (group.bodies.length >= BODIES_PER_WRITE || groupBytes + bytes > BYTES_PER_WRITE) {
            groups.push(group);
            group = { queues: [], bodies: [], index: [] };
            groupBytes = 0;
          }
          group.queues.push(q);
          group.bodies.push(body);
          group.index.push(i);
          groupBytes += bytes;
        } catch (e) {
          results[i] = asFilaError(e);
        }
      });
      if (group.bodies.length > 0) groups.push(group);
      const outcomes = await Promise.allSettled(
        groups.map((g) =>
          this.#store.write(g.bodies.map((body, j) => ({
            op: "putMessage" as const,
            qid: g.queues[j].def.qid,
            body,
          })))
        ),
      );
      outcomes.forEach((outcome, gi) => {
        const g = groups[gi];
        g.bodies.forEach((body, j) => {
          if (outcome.status === "rejected") {
            results[g.index[j]] = asFilaError(outcome.reason);
            return;
          }
          const q = g.queues[j];
          q.counters.enqueued++;
          if (!q.deleted) this.#addMessage(q, body, 0);
          results[g.index[j]] = body.id;
        });
      });
      return results;
    });
  }

  /** Builds a message for `q`: its id, and key, weight and throttle keys from the policy. */
  #newBody(
    q: QueueState,
    headers: Record<string, string>,
    payload: Uint8Array,
    now: number,
  ): MessageBody {
    const queue = q.name;
    const decision =
      this.#hooks?.onEnqueue(queue, { headers, payloadSize: payload.length, queue }) ??
        declarativeDecision(q.def, headers);
    const body: MessageBody = {
      id: newMessageId(now),
      headers,
      payload,
      fairnessKey: decision.fairnessKey,
      weight: decision.weight,
      throttleKeys: decision.throttleKeys,
      enqueuedAtMs: now,
    };
    if (this.#deliveredSize) {
      const size = this.#deliveredSize(body, queue);
      if (size > DELIVERY_SIZE_LIMIT) {
        throw new InvalidArgumentError(
          `message too large: ${size} bytes encoded, the limit is ${DELIVERY_SIZE_LIMIT} bytes`,
        );
      }
    }
    return body;
  }

  /** A committed message joins `q` as pending at the tail of its key. */
  #addMessage(q: QueueState, body: MessageBody, attempts: number): void {
    this.#admitPayload(body);
    const k = q.keyFor(body.fairnessKey);
    const e = new Entry(body, attempts, k);
    k.count++;
    q.messages.set(body.id, e);
    this.#makePending(q, e, false);
  }

  /**
   * Registers a consumer (Consume steps 3–4). `maxBatch` > 1 opts in to batched delivery: up to
   * that many messages per `sink.sendBatch` call.
   */
  consume(
    queue: string,
    maxUnacked: number,
    sink: ConsumerSink,
    options: { maxBatch?: number } = {},
  ): Promise<ConsumerHandle> {
    return this.#command(() => {
      const q = this.#queues.get(queue);
      if (!q) throw new NotFoundError(Messages.queueNotFound(queue));
      const c = new Consumer(
        ++this.#consumerSeq,
        q,
        maxUnacked === 0 ? DEFAULT_MAX_UNACKED : maxUnacked,
        sink,
        Math.max(1, options.maxBatch ?? 1),
      );
      q.consumers.push(c);
      this.#log.debug("consumer registered", { queue, consumer: c.id });
      this.#markDirty(q);
      return {
        close: () => this.#closeConsumer(c),
        resume: () => {
          if (c.blocked) {
            c.blocked = false;
            this.#markDirty(c.queue);
          }
        },
      };
    });
  }

  /** Ack (§2.3 steps 5–6); `id` is already normalised. */
  ack(queue: string, id: string): Promise<void> {
    return this.#command(() => {
      const { q, e } = this.#leased(queue, id);
      this.#settleAck(q, e);
      return this.#store.write([{ op: "deleteMessage", qid: q.def.qid, body: e.body }]);
    });
  }

  /** Batch ack: one result per item (undefined = OK), as the unary Ack for each. */
  ackBatch(items: readonly SettleItem[]): Promise<Array<FilaError | undefined>> {
    return this.#command(async () => {
      const results: Array<FilaError | undefined> = new Array(items.length).fill(undefined);
      const mutations: Mutation[] = [];
      const index: number[] = [];
      items.forEach((item, i) => {
        try {
          const { q, e } = this.#leased(item.queue, item.id);
          this.#settleAck(q, e);
          mutations.push({ op: "deleteMessage", qid: q.def.qid, body: e.body });
          index.push(i);
        } catch (err) {
          results[i] = asFilaError(err);
        }
      });
      const writes: Promise<void>[] = [];
      for (let i = 0; i < mutations.length; i += ACKS_PER_WRITE) {
        writes.push(this.#store.write(mutations.slice(i, i + ACKS_PER_WRITE)));
      }
      const outcomes = await Promise.allSettled(writes);
      index.forEach((itemIndex, j) => {
        const outcome = outcomes[Math.floor(j / ACKS_PER_WRITE)];
        if (outcome.status === "rejected") results[itemIndex] = asFilaError(outcome.reason);
      });
      return results;
    });
  }

  /** Nack (§2.4 steps 5–7): the failure path with the client's error text. */
  nack(queue: string, id: string, error: string): Promise<void> {
    return this.#command(() => {
      const { q, e } = this.#leased(queue, id);
      q.counters.nacked++;
      return this.#fail(q, [e], error, false);
    });
  }

  /** Batch nack: the failure path for each item in order; one result per item. */
  nackBatch(items: readonly NackItem[]): Promise<Array<FilaError | undefined>> {
    return this.#command(async () => {
      const results: Array<FilaError | undefined> = new Array(items.length).fill(undefined);
      const pending: Array<Promise<void>> = [];
      const index: number[] = [];
      items.forEach((item, i) => {
        try {
          const { q, e } = this.#leased(item.queue, item.id);
          q.counters.nacked++;
          pending.push(this.#fail(q, [e], item.error, false));
          index.push(i);
        } catch (err) {
          results[i] = asFilaError(err);
        }
      });
      const outcomes = await Promise.allSettled(pending);
      outcomes.forEach((o, j) => {
        if (o.status === "rejected") results[index[j]] = asFilaError(o.reason);
      });
      return results;
    });
  }

  /** The queue and entry of a leased message, or the NOT_FOUND of Ack/Nack step 5. */
  #leased(queue: string, id: string): { q: QueueState; e: Entry } {
    const q = this.#queues.get(queue);
    const e = q?.messages.get(id);
    if (!q || !e || e.state !== "inflight") throw new NotFoundError(Messages.noLease(id, queue));
    return { q, e };
  }

  #settleAck(q: QueueState, e: Entry): void {
    this.#endLease(q, e);
    q.inFlight--;
    this.#forget(q, e);
    q.counters.acked++;
  }

  // ---------------------------------------------------------------- admin

  createQueue(input: CreateQueueInput): Promise<void> {
    return this.#command(async () => {
      let vt = input.visibilityTimeoutMs;
      if (vt === 0) vt = DEFAULT_VISIBILITY_TIMEOUT_MS;
      else if (vt < MIN_VISIBILITY_TIMEOUT_MS) {
        throw new InvalidArgumentError("visibility_timeout_ms must be at least 1000 (1 second)");
      }
      if (this.#queues.has(input.name)) {
        throw new AlreadyExistsError(Messages.queueExists(input.name));
      }
      checkScriptSize("on_enqueue_script", input.onEnqueueScript);
      checkScriptSize("on_failure_script", input.onFailureScript);
      const scripts = { onEnqueue: input.onEnqueueScript, onFailure: input.onFailureScript };
      if (this.#hooks && (scripts.onEnqueue || scripts.onFailure)) {
        try {
          this.#hooks.validate(scripts);
        } catch (e) {
          throw new InvalidArgumentError(`lua compilation error: ${(e as Error).message}`);
        }
      }
      const now = this.#clock.now();
      const defs: QueueDef[] = [{
        name: input.name,
        qid: crypto.randomUUID(),
        onEnqueueScript: input.onEnqueueScript,
        onFailureScript: input.onFailureScript,
        visibilityTimeoutMs: vt,
        fairnessKeyHeader: input.fairnessKeyHeader,
        weightHeader: input.weightHeader,
        throttleKeyHeaders: input.throttleKeyHeaders,
        createdAtMs: now,
      }];
      const dlq = dlqNameOf(input.name);
      if (!isDlqName(input.name) && !this.#queues.has(dlq)) {
        defs.push({
          name: dlq,
          qid: crypto.randomUUID(),
          onEnqueueScript: "",
          onFailureScript: "",
          visibilityTimeoutMs: DEFAULT_VISIBILITY_TIMEOUT_MS,
          fairnessKeyHeader: "",
          weightHeader: "",
          throttleKeyHeaders: [],
          createdAtMs: now,
        });
      }
      // Visible at once so commands behind this one see the queue; undone if the commit fails.
      const states = defs.map((d) => new QueueState(d, this.quantum));
      for (const s of states) this.#queues.set(s.name, s);
      if (scripts.onEnqueue || scripts.onFailure) this.#hooks?.install(input.name, scripts);
      try {
        await this.#store.write(defs.map((def) => ({ op: "putQueue", def })));
      } catch (e) {
        for (const s of states) {
          if (this.#queues.get(s.name) === s) this.#queues.delete(s.name);
        }
        this.#hooks?.remove(input.name);
        throw e;
      }
    });
  }

  deleteQueue(name: string): Promise<void> {
    return this.#command(async () => {
      const q = this.#queues.get(name);
      if (!q) throw new NotFoundError(Messages.queueNotFound(name));
      const targets = [q];
      const dlq = isDlqName(name) ? undefined : this.#queues.get(dlqNameOf(name));
      if (dlq) targets.push(dlq);
      // Gone for every later command at once; the reply waits for the commit.
      for (const t of targets) {
        this.#queues.delete(t.name);
        t.deleted = true;
      }
      try {
        await this.#store.write(targets.map((t) => ({ op: "deleteQueue", def: t.def })));
      } catch (e) {
        for (const t of targets) {
          if (!this.#queues.has(t.name)) {
            this.#queues.set(t.name, t);
            t.deleted = false;
          }
        }
        throw e;
      }
      for (const t of targets) {
        for (const e of t.messages.values()) this.#dropPayload(e.body);
        this.#hooks?.remove(t.name);
        const err = new NotFoundError(Messages.queueDeleted(t.name));
        for (const c of t.consumers) {
          c.closed = true;
          c.sink.close(err);
        }
        t.consumers.length = 0;
      }
      this.#purgeInBackground();
    });
  }

  listQueues(): Promise<QueueSummary[]> {
    return this.#command(() =>
      [...this.#queues.values()]
        .map((q) => ({
          name: q.name,
          depth: q.pending + q.inFlight,
          inFlight: q.inFlight,
          consumers: q.consumers.length,
        }))
        .sort((a, b) => compareBytes(a.name, b.name))
    );
  }

  stats(name: string): Promise<QueueStats> {
    return this.#command(() => {
      const q = this.#queues.get(name);
      if (!q) throw new NotFoundError(Messages.queueNotFound(name));
      const perKey = keyStats(q, this.#clock.now());
      return {
        depth: q.pending + q.inFlight,
        inFlight: q.inFlight,
        pending: q.pending,
        delayed: q.delayed,
        activeKeys: q.ring.size,
        consumers: q.consumers.length,
        quantum: this.quantum,
        perKey,
        throttles: this.throttles.stats(this.#clock.now()),
      };
    });
  }

  /**
   * Redrive (§2.11, §5.7): moves up to `count` (0 = all) pending or delayed messages of a DLQ,
   * oldest id first, to the tail of their keys in the parent with attempt_count 0. Each move
   * is atomic; a storage failure midway leaves the moved ones moved.
   */
  redrive(dlqName: string, count: number): Promise<number> {
    return this.#command(async () => {
      const d = this.#queues.get(dlqName);
      if (!d) throw new NotFoundError(Messages.queueNotFound(dlqName));
      if (!isDlqName(dlqName)) {
        throw new InvalidArgumentError(
          `queue "${dlqName}" is not a dead-letter queue (name must end with ".dlq")`,
        );
      }
      const parentName = dlqName.slice(0, -DLQ_SUFFIX.length);
      const parent = this.#queues.get(parentName);
      if (!parent) {
        throw new FailedPreconditionError(
          `parent queue "${parentName}" of dead-letter queue "${dlqName}" does not exist`,
        );
      }
      let picked: Entry[] = [];
      for (const e of d.messages.values()) {
        if (e.state === "pending" || e.state === "delayed") picked.push(e);
      }
      picked.sort((a, b) => (a.body.id < b.body.id ? -1 : 1));
      if (count > 0) picked = picked.slice(0, count);
      if (picked.length === 0) return 0;
      this.#takeOut(d, picked);
      const batches: Entry[][] = [];
      for (let i = 0; i < picked.length; i += MOVES_PER_WRITE) {
        batches.push(picked.slice(i, i + MOVES_PER_WRITE));
      }
      const results = await Promise.allSettled(
        batches.map((batch) =>
          this.#store.write(batch.map((e) => ({
            op: "moveMessage" as const,
            fromQid: d.def.qid,
            toQid: parent.def.qid,
            body: e.body,
            state: null,
          })))
        ),
      );
      let moved = 0;
      let failure: unknown;
      results.forEach((r, i) => {
        for (const e of batches[i]) {
          if (r.status === "rejected") {
            failure = r.reason;
            if (!d.deleted) this.#makePending(d, e, false);
            continue;
          }
          moved++;
          this.#forget(d, e);
          if (!parent.deleted) this.#addMessage(parent, e.body, 0);
        }
      });
      d.counters.redriven += moved;
      if (failure) throw failure;
      return moved;
    });
  }

  /** Takes pending or delayed messages out of a queue's lists ahead of a move. */
  #takeOut(q: QueueState, entries: Entry[]): void {
    const leaving = new Set<Entry>();
    const keys = new Set<KeyState>();
    for (const e of entries) {
      if (e.state === "pending") {
        leaving.add(e);
        keys.add(e.key);
      } else q.delayed--;
      e.state = "moving";
    }
    for (const k of keys) {
      q.pending -= k.pending.removeWhere((e) => leaving.has(e));
      if (k.pending.length === 0) q.ring.deactivate(k);
    }
  }

  // ---------------------------------------------------------------- runtime config

  /** SetConfig (§2.7 steps 2–8). */
  setConfig(key: string, value: string): Promise<void> {
    return this.#command(async () => {
      checkConfigKey(key);
      checkConfigValue(value);
      const throttleKey = key.startsWith(THROTTLE_PREFIX) ? key.slice(THROTTLE_PREFIX.length) : "";
      if (value === "") {
        await this.#store.write([{ op: "deleteConfig", key }]);
        this.#config.delete(key);
        if (throttleKey && this.throttles.delete(throttleKey)) this.#markAllDirty();
        return;
      }
      let setting;
      if (key.startsWith(THROTTLE_PREFIX)) {
        if (!throttleKey) throw new InvalidArgumentError("throttle key name must not be empty");
        setting = parseThrottleValue(value);
      }
      await this.#store.write([{ op: "putConfig", key, value }]);
      this.#config.set(key, value);
      if (setting) {
        this.throttles.set(throttleKey, setting, this.#clock.now());
        this.#markAllDirty();
      }
    });
  }

  getConfig(key: string): Promise<string> {
    return this.#command(() => {
      checkConfigKey(key);
      return this.#config.get(key) ?? "";
    });
  }

  listConfig(prefix: string): Promise<Array<[string, string]>> {
    return this.#command(() => {
      checkConfigPrefix(prefix);
      const out: Array<[string, string]> = [];
      for (const entry of this.#config) if (entry[0].startsWith(prefix)) out.push(entry);
      out.sort((a, b) => compareBytes(a[0], b[0]));
      return out.slice(0, MAX_CONFIG_ENTRIES);
    });
  }

  /** Synchronous read for Lua's `fila.get` (always the current value). */
  readonly lookupConfig = (key: string): string | undefined => this.#config.get(key);

  /** Gauges and counters of every queue and bucket, read at metric collection. */
  metricsSnapshot(): MetricsSnapshot {
    const now = this.#clock.now();
    const queues: QueueMetrics[] = [];
    for (const q of this.#queues.values()) {
      queues.push({
        queue: q.name,
        counters: q.counters,
        pending: q.pending,
        inFlight: q.inFlight,
        delayed: q.delayed,
        consumers: q.consumers.length,
        rounds: q.ring.rounds,
        keys: keyStats(q, now),
      });
    }
    const decisions = this.throttles.decisions;
    const throttles = this.throttles.stats(now).map((t) => ({
      ...t,
      pass: decisions.get(t.key)?.pass ?? 0,
      hit: decisions.get(t.key)?.hit ?? 0,
    }));
    return { queues, throttles, residentPayloadBytes: this.#residentBytes };
  }

  /** Acts on every timer due by the clock now; for tests driving a manual clock. */
  fireDueTimers(): void {
    this.#timers.fireDue();
  }

  // ---------------------------------------------------------------- internals

  #makePending(q: QueueState, e: Entry, atHead: boolean): void {
    e.state = "pending";
    const k = e.key;
    if (atHead) k.pending.pushFront(e);
    else k.pending.pushBack(e);
    q.pending++;
    if (k.inRing) q.ring.updateWeight(k, e.body.weight);
    else q.ring.activate(k, e.body.weight);
    this.#markDirty(q);
  }

  /**
   * Accounts a message's payload as held in memory, or leaves it to the store when that would
   * go past the budget (the message is committed by then, so the store can give it back).
   */
  #admitPayload(body: MessageBody): void {
    const p = body.payload;
    if (typeof p === "number") return;
    if (this.#residentBytes + p.length > this.#payloadBudget) body.payload = p.length;
    else this.#residentBytes += p.length;
  }

  #dropPayload(body: MessageBody): void {
    if (typeof body.payload !== "number") this.#residentBytes -= body.payload.length;
  }

  /** Payload bytes held in memory (metrics). */
  get residentPayloadBytes(): number {
    return this.#residentBytes;
  }

  /** Drops a message that left the queue (acked, moved away). */
  #forget(q: QueueState, e: Entry): void {
    e.state = "gone";
    this.#dropPayload(e.body);
    q.messages.delete(e.body.id);
    const k = e.key;
    if (--k.count === 0 && !k.inRing) q.keys.delete(k.name);
  }

  /**
   * Ends a lease (ack, nack, expiry, release) and gives the consumer its credit back. The
   * caller moves the message out of `inFlight` when its new state takes effect, so that stats
   * never show a message in no state while its change commits.
   */
  #endLease(q: QueueState, e: Entry): void {
    q.removeLease(e);
    const c = e.consumer;
    e.consumer = undefined;
    if (c) {
      c.leases.delete(e);
      if (!c.closed) this.#markDirty(q);
    }
  }

  /**
   * The failure path (§5.2) for leased messages of one queue: attempt + 1, on_failure, then
   * dead-letter, delayed retry or immediate retry (at the head of the key for a release).
   * Each message's update and lease removal commit together; the new state applies after.
   */
  async #fail(q: QueueState, entries: Entry[], error: string, release: boolean): Promise<void> {
    const now = this.#clock.now();
    type Outcome = { e: Entry; dlq?: QueueState; readyAt?: number };
    const outcomes: Outcome[] = [];
    const mutations: Mutation[] = [];
    for (const e of entries) {
      this.#endLease(q, e);
      e.attempts++;
      e.state = "moving";
      const decision = this.#hooks?.onFailure(q.name, {
        headers: e.body.headers,
        id: e.body.id,
        attempts: e.attempts,
        queue: q.name,
        error,
      });
      const dlq = decision?.action === "dlq" && !isDlqName(q.name)
        ? this.#queues.get(dlqNameOf(q.name))
        : undefined;
      if (dlq) {
        mutations.push({
          op: "moveMessage",
          fromQid: q.def.qid,
          toQid: dlq.def.qid,
          body: e.body,
          state: { attempts: e.attempts },
        });
        outcomes.push({ e, dlq });
      } else if (decision && decision.delayMs > 0) {
        const readyAt = now + Math.min(decision.delayMs, MAX_DELAY_MS);
        mutations.push({
          op: "setState",
          qid: q.def.qid,
          id: e.body.id,
          state: { attempts: e.attempts, readyAt },
        });
        outcomes.push({ e, readyAt });
      } else {
        mutations.push({
          op: "setState",
          qid: q.def.qid,
          id: e.body.id,
          state: { attempts: e.attempts },
        });
        outcomes.push({ e });
      }
    }
    const writes: Promise<void>[] = [];
    for (let i = 0; i < mutations.length; i += MOVES_PER_WRITE) {
      writes.push(this.#store.write(mutations.slice(i, i + MOVES_PER_WRITE)));
    }
    let failure: unknown;
    try {
      await Promise.all(writes);
    } catch (e) {
      // The stored lease stays, so a restart redelivers; in memory the message is retried.
      failure = e;
      this.#log.error("storage error on failure path", { queue: q.name, error: String(e) });
    }
    if (q.deleted) {
      if (failure) throw failure;
      return;
    }
    // Released messages go back to the head in delivery order: push the last one first.
    const ordered = release ? outcomes.slice().reverse() : outcomes;
    for (const { e, dlq, readyAt } of ordered) {
      q.inFlight--;
      if (dlq && !failure) {
        this.#forget(q, e);
        q.counters.deadLettered++;
        if (!dlq.deleted) this.#addMessage(dlq, e.body, e.attempts);
      } else if (readyAt !== undefined && !failure) {
        e.state = "delayed";
        e.readyAt = readyAt;
        q.delayed++;
        q.counters.delayed++;
        this.#timers.schedule(readyAt, e);
      } else {
        this.#makePending(q, e, release);
      }
    }
    if (failure) throw failure;
  }

  #closeConsumer(c: Consumer): void {
    if (c.closed) return;
    c.closed = true;
    const q = c.queue;
    const i = q.consumers.indexOf(c);
    if (i >= 0) {
      q.consumers.splice(i, 1);
      if (q.lastRecipient >= i) q.lastRecipient--;
    }
    this.#log.debug("consumer unregistered", { queue: q.name, consumer: c.id });
    if (c.leases.size === 0 || q.deleted || this.#phase === "stopping") return;
    const held = [...c.leases];
    q.counters.released += held.length;
    this.#fail(q, held, "consumer stream closed", true).catch((e) =>
      this.#log.error("release failed", { queue: q.name, error: String(e) })
    );
  }

  #onTimer(v: Entry | QueueState): void {
    if (this.#phase === "stopping") return;
    if (v instanceof QueueState) {
      v.armedFor = Infinity;
      if (v.deleted) return;
      this.#expireLeases(v);
      this.#markDirty(v);
      return;
    }
    const e = v;
    if (e.state !== "delayed" || e.readyAt > this.#clock.now()) return;
    const q = e.key.queue;
    if (q.deleted) return;
    q.delayed--;
    this.#makePending(q, e, false);
  }

  #expireLeases(q: QueueState): void {
    const now = this.#clock.now();
    const due: Entry[] = [];
    for (let e = q.leaseHead; e && e.deadline <= now; e = e.leaseNext) due.push(e);
    if (due.length > 0) {
      q.counters.expired += due.length;
      this.#log.debug("leases expired", { queue: q.name, count: due.length });
      this.#fail(q, due, "visibility timeout expired", false).catch((err) =>
        this.#log.error("lease expiry failed", { queue: q.name, error: String(err) })
      );
    }
    this.#armLeaseTimer(q);
  }

  #armLeaseTimer(q: QueueState): void {
    const head = q.leaseHead;
    if (head && head.deadline < q.armedFor) {
      q.armedFor = head.deadline;
      this.#timers.schedule(head.deadline, q);
    }
  }

  #markDirty(q: QueueState): void {
    if (q.dirty) return;
    q.dirty = true;
    this.#dirty.push(q);
    if (!this.#pumpScheduled) {
      this.#pumpScheduled = true;
      queueMicrotask(() => this.#pumpAll());
    }
  }

  #markAllDirty(): void {
    for (const q of this.#queues.values()) this.#markDirty(q);
  }

  #pumpAll(): void {
    this.#pumpScheduled = false;
    const dirty = this.#dirty;
    this.#dirty = [];
    for (const q of dirty) {
      q.dirty = false;
      if (!q.deleted && this.#phase === "serving") this.#pump(q);
    }
  }

  /**
   * Delivery loop (§4.4): next consumer with credit, next message by DRR, lease, send. A
   * consumer that opted in to batched delivery gets up to its batch size per send. The lease
   * records of one pass share a write, which is not waited for (§1.4).
   */
  #pump(q: QueueState): void {
    if (q.pending === 0 || q.consumers.length === 0) return;
    const now = this.#clock.now();
    const throttles = this.throttles;
    const blocked = throttles.size === 0
      ? () => false
      : (k: KeyState) => !throttles.passes(k.pending.peekFront()!.body.throttleKeys, now);
    const vt = q.def.visibilityTimeoutMs;
    const deadline = now + vt > Number.MAX_SAFE_INTEGER ? Infinity : now + vt;
    const leases: Mutation[] = [];
    let throttled = false;
    while (q.pending > 0 && !throttled) {
      const ci = this.#nextConsumer(q);
      if (ci < 0) break;
      const c = q.consumers[ci];
      q.lastRecipient = ci;
      const batch: Delivery[] = [];
      let cold = false;
      while (batch.length < c.maxBatch && c.leases.size < c.maxUnacked && q.pending > 0) {
        const k = q.ring.select(blocked);
        if (!k) {
          throttled = true;
          break;
        }
        const e = k.pending.popFront()!;
        q.pending--;
        q.ring.delivered(k, k.pending.length === 0);
        if (e.body.throttleKeys.length > 0) throttles.consume(e.body.throttleKeys, now);
        e.state = "inflight";
        e.deadline = deadline;
        e.consumer = c;
        c.leases.add(e);
        q.inFlight++;
        q.addLease(e);
        k.delivered++;
        k.recent.record(now);
        leases.push({
          op: "setState",
          qid: q.def.qid,
          id: e.body.id,
          state: { attempts: e.attempts, leaseDeadline: deadline },
        });
        batch.push({ body: e.body, attempts: e.attempts, queue: q.name });
        if (typeof e.body.payload === "number") cold = true;
        if (e.attempts === 0 && this.#onFirstDelivery) {
          this.#onFirstDelivery(q.name, now - e.body.enqueuedAtMs);
        }
      }
      if (batch.length === 0) break;
      q.counters.leased += batch.length;
      q.recent.record(now, batch.length);
      if (cold || c.sending) this.#sendAfterRead(q, c, batch);
      else this.#send(c, batch);
    }
    if (throttled) this.#armThrottleWakeup(q, now);
    for (let i = 0; i < leases.length; i += LEASES_PER_WRITE) {
      this.#store.write(leases.slice(i, i + LEASES_PER_WRITE)).catch((err) =>
        // Within at-least-once: a crash before this commit leaves the messages pending.
        this.#log.warn("lease write failed", { queue: q.name, error: String(err) })
      );
    }
    this.#armLeaseTimer(q);
  }

  #send(c: Consumer, batch: Delivery[]): void {
    const more = c.maxBatch > 1 && c.sink.sendBatch
      ? c.sink.sendBatch(batch)
      : c.sink.send(batch[0]);
    if (!more) c.blocked = true;
  }

  /**
   * Sends a batch once the payloads it lacks are read back from the store, after any batch
   * still waiting for this consumer, so that a stream keeps delivery order. A message whose
   * lease ended meanwhile (its consumer went away) is not sent. A failed read ends the stream,
   * which releases its leases.
   */
  #sendAfterRead(q: QueueState, c: Consumer, batch: Delivery[]): void {
    const cold = batch.filter((d) => typeof d.body.payload === "number");
    const read = cold.length === 0
      ? undefined
      : this.#store.readPayloads!(q.def.qid, cold.map((d) => d.body.id)).then((payloads) => {
        cold.forEach((d, i) => {
          const e = q.messages.get(d.body.id);
          if (typeof d.body.payload !== "number" || e?.body !== d.body) return;
          d.body.payload = payloads[i];
          this.#residentBytes += payloads[i].length;
        });
      });
    const sending: Promise<void> = Promise.all([c.sending, read]).then(() => {
      if (c.closed || this.#stopping) return;
      const live = batch.filter((d) => {
        const e = q.messages.get(d.body.id);
        return e?.consumer === c && e.state === "inflight" && typeof d.body.payload !== "number";
      });
      if (live.length > 0) this.#send(c, live);
    }, (err) => {
      if (c.closed) return;
      this.#log.error("reading payloads for delivery failed", {
        queue: q.name,
        error: String(err),
      });
      c.sink.close(asFilaError(err));
      this.#closeConsumer(c);
    }).finally(() => {
      if (c.sending === sending) c.sending = undefined;
    });
    c.sending = sending;
  }

  /** Round robin from the consumer after the last recipient; -1 when none can receive. */
  #nextConsumer(q: QueueState): number {
    const n = q.consumers.length;
    for (let j = 1; j <= n; j++) {
      const i = (q.lastRecipient + j) % n;
      if (q.consumers[i].canReceive()) return i;
    }
    return -1;
  }

  /** Every active key is throttled: wake the queue when the first head could pass. */
  #armThrottleWakeup(q: QueueState, now: number): void {
    let wait = Infinity;
    for (const k of q.ring) {
      const head = k.pending.peekFront();
      if (head) wait = Math.min(wait, this.throttles.msUntilPass(head.body.throttleKeys, now));
    }
    if (wait !== Infinity && now + wait < q.armedFor) {
      q.armedFor = now + wait;
      this.#timers.schedule(now + wait, q);
    }
  }

  #purgeInBackground(): void {
    if (this.#purging) return;
    this.#purging = this.#store.purgeDeleted()
      .catch((e) => this.#log.warn("purge of deleted queues failed", { error: String(e) }))
      .finally(() => this.#purging = undefined);
  }
}

function keyStats(q: QueueState, now: number): KeyStats[] {
  let weights = 0;
  for (const k of q.ring) weights += k.weight;
  const recent = q.recent.count(now);
  const out: KeyStats[] = [];
  for (const k of q.ring) {
    out.push({
      key: k.name,
      pending: k.pending.length,
      deficit: q.ring.deficitOf(k),
      weight: k.weight,
      delivered: k.delivered,
      recentShare: recent > 0 ? k.recent.count(now) / recent : 0,
      fairShare: k.weight / weights,
    });
  }
  return out;
}

function asFilaError(e: unknown): FilaError {
  return e instanceof FilaError ? e : new StorageError(String((e as Error)?.message ?? e));
}

function scriptsOf(def: QueueDef) {
  return { onEnqueue: def.onEnqueueScript, onFailure: def.onFailureScript };
}
