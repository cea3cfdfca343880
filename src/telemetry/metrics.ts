/**
 * The metric set of operations.md §6.2 plus latency, Lua and storage instruments. Scheduler
 * counters and gauges are observable instruments reading `metricsSnapshot()` at collection, so
 * the scheduler's hot path carries no metric code at all; only the few events the snapshot cannot
 * show (first-delivery latency, Lua hook calls, storage commits) are recorded as they happen.
 */
import {
  type Attributes,
  type BatchObservableResult,
  type Counter,
  type Histogram,
  type Meter,
  type Observable,
  ValueType,
} from "@opentelemetry/api";
import type { LuaEvent } from "../lua/types.ts";
import type { MetricsSnapshot } from "../scheduler/mod.ts";
import { FairnessTracker } from "./fairness.ts";

export type SnapshotSource = () => MetricsSnapshot;

type CounterName = keyof MetricsSnapshot["queues"][number]["counters"];

/** Message counters of the snapshot, by metric name. */
const MESSAGE_COUNTERS: ReadonlyArray<[string, CounterName, string]> = [
  ["fila.messages.enqueued", "enqueued", "Messages committed by Enqueue (each batch item counts)"],
  ["fila.messages.leased", "leased", "Messages sent to a consumer"],
  ["fila.messages.acked", "acked", "Successful acks"],
  ["fila.messages.nacked", "nacked", "Nacks accepted"],
  ["fila.messages.expired", "expired", "Leases expired"],
  ["fila.messages.released", "released", "Leases released on stream close"],
  ["fila.messages.delayed", "delayed", "Retries scheduled with a delay"],
  ["fila.messages.dead_lettered", "deadLettered", "Messages moved to a dead-letter queue"],
  ["fila.messages.redriven", "redriven", "Messages moved out of a dead-letter queue by Redrive"],
];

const LUA_BUCKETS_US = [10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000];
const LATENCY_BUCKETS_MS = [
  1,
  2,
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1_000,
  2_500,
  5_000,
  10_000,
  30_000,
  60_000,
  300_000,
  1_800_000,
];
const COMMIT_BUCKETS_MS = [0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1_000];
const MUTATION_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 200, 400, 900];

/** Attribute objects of the event-driven instruments, reused to keep recording allocation-free. */
class AttributeCache {
  readonly #map = new Map<string, Attributes>();

  get(key: string, make: () => Attributes): Attributes {
    let a = this.#map.get(key);
    if (!a) {
      // Queue names come and go; a bound keeps a churn of names from growing this forever.
      if (this.#map.size >= 10_000) this.#map.clear();
      this.#map.set(key, a = make());
    }
    return a;
  }
}

export class FilaMetrics {
  readonly #source: SnapshotSource;
  readonly #now: () => number;
  readonly #fairness = new FairnessTracker();
  readonly #attrs = new AttributeCache();
  readonly #latency: Histogram;
  readonly #luaDuration: Histogram;
  readonly #luaErrors: Counter;
  readonly #breakerTrips: Counter;
  readonly #commitDuration: Histogram;
  readonly #commitMutations: Histogram;

  constructor(meter: Meter, source: SnapshotSource, now: () => number = Date.now) {
    this.#source = source;
    this.#now = now;
    this.#latency = meter.createHistogram("fila.messages.delivery_latency_ms", {
      description: "Enqueue to first delivery",
      unit: "ms",
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_MS },
    });
    this.#luaDuration = meter.createHistogram("fila.lua.execution_duration_us", {
      description: "Executed Lua hook calls, successful or not",
      unit: "us",
      advice: { explicitBucketBoundaries: LUA_BUCKETS_US },
    });
    this.#luaErrors = meter.createCounter("fila.lua.errors", {
      description: "Lua hook failures",
      valueType: ValueType.INT,
    });
    this.#breakerTrips = meter.createCounter("fila.lua.circuit_breaker.activations", {
      description: "Lua circuit breakers tripped",
      valueType: ValueType.INT,
    });
    this.#commitDuration = meter.createHistogram("fila.storage.commit_duration_ms", {
      description: "Storage commit latency",
      unit: "ms",
      advice: { explicitBucketBoundaries: COMMIT_BUCKETS_MS },
    });
    this.#commitMutations = meter.createHistogram("fila.storage.commit_mutations", {
      description: "Mutations per storage commit",
      valueType: ValueType.INT,
      advice: { explicitBucketBoundaries: MUTATION_BUCKETS },
    });
    this.#registerObservables(meter);
    this.closeWindow();
  }

  /** For SchedulerOptions.onFirstDelivery. */
  readonly onFirstDelivery = (queue: string, latencyMs: number): void => {
    this.#latency.record(Math.max(0, latencyMs), this.#queueAttrs(queue));
  };

  /** Metrics of a Lua engine event (LuaEngineOptions.onEvent); logging is done elsewhere. */
  readonly onLuaEvent = (e: LuaEvent): void => {
    switch (e.type) {
      case "hook_executed":
        this.#luaDuration.record(
          e.durationUs,
          this.#attrs.get(`${e.queue}\0${e.hook}`, () => ({ queue_id: e.queue, hook: e.hook })),
        );
        break;
      case "hook_failed":
        this.#luaErrors.add(1, this.#queueAttrs(e.queue));
        break;
      case "breaker_tripped":
        this.#breakerTrips.add(1, this.#queueAttrs(e.queue));
        break;
    }
  };

  /** One storage commit: its latency and how many mutations it carried. */
  readonly recordCommit = (latencyMs: number, mutations: number): void => {
    this.#commitDuration.record(latencyMs);
    this.#commitMutations.record(mutations);
  };

  /** Ends the fair-share window (called every metrics interval). */
  closeWindow(): void {
    this.#fairness.closeWindow(this.#source().queues, this.#now());
  }

  #queueAttrs(queue: string): Attributes {
    return this.#attrs.get(queue, () => ({ queue_id: queue }));
  }

  #registerObservables(meter: Meter): void {
    const int = { valueType: ValueType.INT };
    const messageCounters = MESSAGE_COUNTERS.map(([name, field, description]) =>
      [meter.createObservableCounter(name, { description, ...int }), field] as const
    );
    const gauge = (name: string, description: string, valueType = ValueType.INT) =>
      meter.createObservableGauge(name, { description, valueType });
    const counter = (name: string, description: string) =>
      meter.createObservableCounter(name, { description, ...int });

    const depth = gauge("fila.queue.depth", "Pending messages (in flight and delayed excluded)");
    const leases = gauge("fila.leases.active", "Messages in flight");
    const delayed = gauge("fila.queue.delayed", "Messages waiting for a retry delay");
    const consumers = gauge("fila.queue.consumers", "Open Consume streams");
    const activeKeys = gauge("fila.scheduler.drr.active_keys", "Fairness keys in the DRR ring");
    const deficit = gauge("fila.scheduler.drr.deficit", "Current DRR deficit per active key");
    const weight = gauge("fila.scheduler.drr.weight", "Current scheduling weight per active key");
    const ratio = gauge(
      "fila.fairness.fair_share_ratio",
      "Actual over fair share of deliveries in the last metrics interval (1 = fair)",
      ValueType.DOUBLE,
    );
    const tokens = gauge(
      "fila.throttle.tokens_remaining",
      "Tokens in each throttle bucket",
      ValueType.DOUBLE,
    );
    const payloadBytes = gauge(
      "fila.storage.payload_cache_bytes",
      "Payload bytes held in memory; past storage.payload_cache_mb they are read back to deliver",
    );
    const rounds = counter("fila.scheduler.drr.rounds", "DRR rounds started");
    const keysProcessed = counter(
      "fila.scheduler.drr.keys_processed",
      "Key selections that led to a delivery attempt",
    );
    const throughput = counter("fila.fairness.throughput", "Deliveries per fairness key");
    const decisions = counter("fila.throttle.decisions", "Throttle checks by result");

    const observables: Observable[] = [
      ...messageCounters.map(([c]) => c),
      depth,
      leases,
      delayed,
      consumers,
      activeKeys,
      deficit,
      weight,
      ratio,
      tokens,
      rounds,
      keysProcessed,
      throughput,
      decisions,
      payloadBytes,
    ];
    meter.addBatchObservableCallback((r: BatchObservableResult) => {
      const snap = this.#source();
      this.#fairness.observe(snap.queues, this.#now());
      r.observe(payloadBytes, snap.residentPayloadBytes);
      for (const q of snap.queues) {
        const a = { queue_id: q.queue };
        for (const [c, field] of messageCounters) r.observe(c, q.counters[field], a);
        r.observe(depth, q.pending, a);
        r.observe(leases, q.inFlight, a);
        r.observe(delayed, q.delayed, a);
        r.observe(consumers, q.consumers, a);
        r.observe(activeKeys, q.keys.length, a);
        r.observe(rounds, q.rounds, a);
        // The DRR ring hands out a key only when it delivers from it, so every selection that
        // led to a delivery attempt is one lease.
        r.observe(keysProcessed, q.counters.leased, a);
        for (const k of q.keys) {
          const ka = { queue_id: q.queue, fairness_key: k.key };
          r.observe(deficit, k.deficit, ka);
          r.observe(weight, k.weight, ka);
        }
      }
      for (const t of this.#fairness.throughput()) {
        r.observe(throughput, t.value, { queue_id: t.queue, fairness_key: t.key });
      }
      for (const t of this.#fairness.ratios()) {
        r.observe(ratio, t.value, { queue_id: t.queue, fairness_key: t.key });
      }
      for (const t of snap.throttles) {
        r.observe(decisions, t.pass, { throttle_key: t.key, result: "pass" });
        r.observe(decisions, t.hit, { throttle_key: t.key, result: "hit" });
        r.observe(tokens, t.tokens, { throttle_key: t.key });
      }
    }, observables);
  }
}
