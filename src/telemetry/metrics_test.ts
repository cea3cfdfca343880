import assert from "node:assert/strict";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import type { MetricsSnapshot, QueueMetrics } from "../scheduler/mod.ts";
import { FilaMetrics } from "./metrics.ts";
import { ScrapeReader } from "./prometheus.ts";

type Point = { attributes: Record<string, unknown>; value: unknown };

function queue(name: string, over: Partial<QueueMetrics> = {}): QueueMetrics {
  return {
    queue: name,
    counters: {
      enqueued: 0,
      leased: 0,
      acked: 0,
      nacked: 0,
      expired: 0,
      released: 0,
      delayed: 0,
      deadLettered: 0,
      redriven: 0,
    },
    pending: 0,
    inFlight: 0,
    delayed: 0,
    consumers: 0,
    rounds: 0,
    keys: [],
    ...over,
  };
}

function setup(initial: MetricsSnapshot) {
  let snap = initial;
  const reader = new ScrapeReader();
  const provider = new MeterProvider({ readers: [reader] });
  const metrics = new FilaMetrics(provider.getMeter("fila"), () => snap);
  const collect = async () => {
    const { resourceMetrics } = await reader.collect();
    const out = new Map<string, { type: string; points: Point[] }>();
    for (const sm of resourceMetrics.scopeMetrics) {
      for (const m of sm.metrics) {
        out.set(m.descriptor.name, {
          type: m.dataPointType as unknown as string,
          points: m.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value })),
        });
      }
    }
    return out;
  };
  return {
    metrics,
    collect,
    set(s: MetricsSnapshot) {
      snap = s;
    },
    shutdown: () => provider.shutdown(),
  };
}

function valueOf(
  all: Map<string, { points: Point[] }>,
  name: string,
  attrs: Record<string, string>,
): unknown {
  const p = all.get(name)?.points.find((p) =>
    Object.entries(attrs).every(([k, v]) => p.attributes[k] === v) &&
    Object.keys(p.attributes).length === Object.keys(attrs).length
  );
  return p?.value;
}

Deno.test("scheduler counters and gauges are observed with queue_id", async () => {
  const t = setup({
    queues: [queue("orders", {
      counters: {
        enqueued: 7,
        leased: 5,
        acked: 3,
        nacked: 1,
        expired: 1,
        released: 2,
        delayed: 1,
        deadLettered: 1,
        redriven: 4,
      },
      pending: 2,
      inFlight: 1,
      delayed: 1,
      consumers: 2,
      rounds: 9,
      keys: [
        {
          key: "a",
          pending: 1,
          deficit: 500,
          weight: 2,
          delivered: 3,
          recentShare: 0,
          fairShare: 0,
        },
        { key: "b", pending: 1, deficit: 0, weight: 1, delivered: 2, recentShare: 0, fairShare: 0 },
      ],
    })],
    throttles: [{ key: "api", tokens: 2.5, ratePerSecond: 10, burst: 5, pass: 4, hit: 6 }],
    residentPayloadBytes: 4096,
  });
  const all = await t.collect();
  const q = { queue_id: "orders" };
  const expect: Array<[string, number]> = [
    ["fila.messages.enqueued", 7],
    ["fila.messages.leased", 5],
    ["fila.messages.acked", 3],
    ["fila.messages.nacked", 1],
    ["fila.messages.expired", 1],
    ["fila.messages.released", 2],
    ["fila.messages.delayed", 1],
    ["fila.messages.dead_lettered", 1],
    ["fila.messages.redriven", 4],
    ["fila.queue.depth", 2],
    ["fila.leases.active", 1],
    ["fila.queue.delayed", 1],
    ["fila.queue.consumers", 2],
    ["fila.scheduler.drr.rounds", 9],
    ["fila.scheduler.drr.active_keys", 2],
    ["fila.scheduler.drr.keys_processed", 5],
  ];
  for (const [name, v] of expect) assert.equal(valueOf(all, name, q), v, name);
  const a = { queue_id: "orders", fairness_key: "a" };
  assert.equal(valueOf(all, "fila.scheduler.drr.deficit", a), 500);
  assert.equal(valueOf(all, "fila.scheduler.drr.weight", a), 2);
  assert.equal(valueOf(all, "fila.fairness.throughput", a), 3);
  assert.equal(valueOf(all, "fila.throttle.decisions", { throttle_key: "api", result: "pass" }), 4);
  assert.equal(valueOf(all, "fila.throttle.decisions", { throttle_key: "api", result: "hit" }), 6);
  assert.equal(valueOf(all, "fila.throttle.tokens_remaining", { throttle_key: "api" }), 2.5);
  assert.equal(valueOf(all, "fila.storage.payload_cache_bytes", {}), 4096);
  await t.shutdown();
});

Deno.test("fair_share_ratio is reported after a window with deliveries", async () => {
  const keys = (a: number, b: number) => [
    { key: "a", pending: 5, deficit: 0, weight: 1, delivered: a, recentShare: 0, fairShare: 0 },
    { key: "b", pending: 5, deficit: 0, weight: 1, delivered: b, recentShare: 0, fairShare: 0 },
  ];
  const t = setup({
    queues: [queue("q", { keys: keys(0, 0) })],
    throttles: [],
    residentPayloadBytes: 0,
  });
  let all = await t.collect();
  assert.equal(all.get("fila.fairness.fair_share_ratio")?.points.length ?? 0, 0);
  const q = queue("q", { keys: keys(3, 1) });
  t.set({
    queues: [{ ...q, counters: { ...q.counters, leased: 4 } }],
    throttles: [],
    residentPayloadBytes: 0,
  });
  t.metrics.closeWindow();
  all = await t.collect();
  assert.equal(
    valueOf(all, "fila.fairness.fair_share_ratio", { queue_id: "q", fairness_key: "a" }),
    1.5,
  );
  assert.equal(
    valueOf(all, "fila.fairness.fair_share_ratio", { queue_id: "q", fairness_key: "b" }),
    0.5,
  );
  await t.shutdown();
});

Deno.test("latency, Lua and storage events are recorded", async () => {
  const t = setup({ queues: [], throttles: [], residentPayloadBytes: 0 });
  t.metrics.onFirstDelivery("q", 12);
  t.metrics.onFirstDelivery("q", 40);
  t.metrics.onLuaEvent({
    type: "hook_executed",
    queue: "q",
    hook: "on_enqueue",
    durationUs: 80,
    ok: true,
  });
  t.metrics.onLuaEvent({ type: "hook_failed", queue: "q", hook: "on_enqueue", error: "boom" });
  t.metrics.onLuaEvent({ type: "breaker_tripped", queue: "q" });
  t.metrics.onLuaEvent({ type: "print", queue: "q", message: "ignored by metrics" });
  t.metrics.recordCommit(1.5, 12);
  const all = await t.collect();
  const hist = (name: string, attrs: Record<string, string>) =>
    valueOf(all, name, attrs) as { count: number; sum: number };
  assert.deepEqual(
    [
      hist("fila.messages.delivery_latency_ms", { queue_id: "q" }).count,
      hist("fila.messages.delivery_latency_ms", { queue_id: "q" }).sum,
    ],
    [2, 52],
  );
  assert.equal(
    hist("fila.lua.execution_duration_us", { queue_id: "q", hook: "on_enqueue" }).sum,
    80,
  );
  assert.equal(valueOf(all, "fila.lua.errors", { queue_id: "q" }), 1);
  assert.equal(valueOf(all, "fila.lua.circuit_breaker.activations", { queue_id: "q" }), 1);
  assert.equal(hist("fila.storage.commit_duration_ms", {}).sum, 1.5);
  assert.equal(hist("fila.storage.commit_mutations", {}).sum, 12);
  await t.shutdown();
});
