import assert from "node:assert/strict";
import { ManualClock } from "../core/clock.ts";
import type { FilaError } from "../core/errors.ts";
import type { Delivery } from "../core/types.ts";
import { MemoryStore } from "../storage/memory_store.ts";
import { SegmentStore } from "../storage/segment_store.ts";
import { Scheduler } from "./loop.ts";
import type { ConsumerSink } from "./state.ts";
import type { FailureDecision, PolicyHooks } from "./policy.ts";

class Sink implements ConsumerSink {
  readonly got: Delivery[] = [];
  readonly batches: number[] = [];
  sendBatch(ds: Delivery[]): boolean {
    this.batches.push(ds.length);
    this.got.push(...ds);
    return true;
  }
  closedWith: FilaError | undefined | null = null;
  send(d: Delivery): boolean {
    this.got.push(d);
    return true;
  }
  close(err?: FilaError): void {
    this.closedWith = err;
  }
  ids(): string[] {
    return this.got.map((d) => d.body.id);
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

/** Hooks whose on_failure answer the test sets; no Lua involved. */
class FakeHooks implements PolicyHooks {
  failure: FailureDecision | undefined;
  validate() {}
  install() {}
  installLenient() {
    return [];
  }
  remove() {}
  onEnqueue() {
    return undefined;
  }
  onFailure() {
    return this.failure;
  }
}

async function setup(
  opts: {
    quantum?: number;
    store?: MemoryStore;
    clock?: ManualClock;
    capacity?: number;
    hooks?: PolicyHooks;
  } = {},
) {
  const store = opts.store ?? new MemoryStore();
  const clock = opts.clock ?? new ManualClock();
  const s = new Scheduler({
    store,
    clock,
    quantum: opts.quantum ?? 1000,
    commandCapacity: opts.capacity,
    hooks: opts.hooks,
  });
  await s.start();
  return { s, store, clock };
}

function queue(name: string, extra: Partial<Parameters<Scheduler["createQueue"]>[0]> = {}) {
  return {
    name,
    onEnqueueScript: "",
    onFailureScript: "",
    visibilityTimeoutMs: 0,
    fairnessKeyHeader: "tenant",
    weightHeader: "weight",
    throttleKeyHeaders: [],
    ...extra,
  };
}

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("Scheduler delivers, acks and forgets a message", async () => {
  const { s, store } = await setup();
  await s.createQueue(queue("q"));
  const id = await s.enqueue("q", {}, bytes("hi"));
  const sink = new Sink();
  await s.consume("q", 0, sink);
  await tick();
  assert.deepEqual(sink.ids(), [id]);
  assert.equal(sink.got[0].attempts, 0);
  assert.equal((await s.stats("q")).inFlight, 1);
  await s.ack("q", id);
  await assert.rejects(s.ack("q", id), /no lease for message/);
  assert.deepEqual(await s.stats("q").then((x) => [x.depth, x.inFlight]), [0, 0]);
  assert.equal(store.rows.size, 0);
});

Deno.test("Scheduler respects consumer credit", async () => {
  const { s } = await setup();
  await s.createQueue(queue("q"));
  for (let i = 0; i < 5; i++) await s.enqueue("q", {}, bytes(`${i}`));
  const sink = new Sink();
  await s.consume("q", 2, sink);
  await tick();
  assert.equal(sink.got.length, 2);
  await s.ack("q", sink.got[0].body.id);
  await tick();
  assert.equal(sink.got.length, 3);
  const st = await s.stats("q");
  assert.deepEqual([st.inFlight, st.pending, st.depth], [2, 2, 4]);
});

Deno.test("Scheduler retries a nacked message at the tail with attempt + 1", async () => {
  const { s } = await setup();
  await s.createQueue(queue("q"));
  const m = await s.enqueue("q", {}, bytes("m"));
  const p = await s.enqueue("q", {}, bytes("p"));
  const sink = new Sink();
  await s.consume("q", 1, sink);
  await tick();
  await s.nack("q", m, "boom");
  await tick();
  assert.deepEqual(sink.ids(), [m, p]);
  await s.ack("q", p);
  await tick();
  assert.deepEqual(sink.ids(), [m, p, m]);
  assert.equal(sink.got[2].attempts, 1);
});

Deno.test("Scheduler releases a closed stream's messages to the head in delivery order", async () => {
  const { s } = await setup();
  await s.createQueue(queue("q"));
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(await s.enqueue("q", {}, bytes(`${i}`)));
  const first = new Sink();
  const handle = await s.consume("q", 3, first);
  await tick();
  assert.deepEqual(first.ids(), ids.slice(0, 3));
  handle.close();
  await tick();
  const second = new Sink();
  await s.consume("q", 10, second);
  await tick();
  assert.deepEqual(second.ids(), ids);
  assert.deepEqual(second.got.map((d) => d.attempts), [1, 1, 1, 0, 0]);
});

Deno.test("Scheduler expires leases at their deadline as a failed attempt", async () => {
  const { s, clock } = await setup();
  await s.createQueue(queue("q", { visibilityTimeoutMs: 2000 }));
  const id = await s.enqueue("q", {}, bytes("x"));
  const sink = new Sink();
  await s.consume("q", 1, sink);
  await tick();
  clock.advance(1999);
  s.fireDueTimers();
  await tick();
  assert.equal(sink.got.length, 1);
  clock.advance(1);
  s.fireDueTimers();
  await tick();
  assert.deepEqual(sink.ids(), [id, id]);
  assert.equal(sink.got[1].attempts, 1);
  assert.equal(s.counters.expired, 1);
});

Deno.test("Scheduler recovers pending, leased and expired messages from storage", async () => {
  const store = new MemoryStore();
  const clock = new ManualClock();
  const a = await setup({ store, clock });
  await a.s.createQueue(queue("q", { visibilityTimeoutMs: 5000 }));
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) ids.push(await a.s.enqueue("q", { tenant: "t" }, bytes(`${i}`)));
  const sink = new Sink();
  await a.s.consume("q", 2, sink);
  await tick();
  await tick(); // lease writes
  await a.s.ack("q", ids[0]);
  // "Crash": a new scheduler on the same store, 3 s later (lease of ids[1] still valid).
  clock.advance(3000);
  const b = await setup({ store, clock });
  let st = await b.s.stats("q");
  assert.deepEqual([st.pending, st.inFlight], [1, 2]);
  await b.s.ack("q", ids[1]); // a lease survives the restart and can be acked
  clock.advance(3000);
  b.s.fireDueTimers();
  await tick();
  st = await b.s.stats("q");
  assert.deepEqual([st.pending, st.inFlight], [2, 0]);
  const again = new Sink();
  await b.s.consume("q", 10, again);
  await tick();
  assert.deepEqual(again.ids(), [ids[3], ids[2]]);
  assert.deepEqual(again.got.map((d) => d.attempts), [0, 1]);
});

Deno.test("Scheduler shares deliveries by weight from the declared headers", async () => {
  const { s } = await setup({ quantum: 1 });
  await s.createQueue(queue("q"));
  for (let i = 0; i < 20; i++) await s.enqueue("q", { tenant: "high", weight: "3" }, bytes(""));
  for (let i = 0; i < 20; i++) await s.enqueue("q", { tenant: "low" }, bytes(""));
  const sink = new Sink();
  await s.consume("q", 8, sink);
  await tick();
  assert.deepEqual(sink.got.map((d) => d.body.fairnessKey), [
    "high",
    "high",
    "high",
    "low",
    "high",
    "high",
    "high",
    "low",
  ]);
});

Deno.test("Scheduler deletes a queue with its DLQ and ends their streams", async () => {
  const { s, store } = await setup();
  await s.createQueue(queue("q"));
  await s.enqueue("q", {}, bytes("x"));
  const sink = new Sink();
  await s.consume("q.dlq", 0, sink);
  await s.deleteQueue("q");
  assert.equal(sink.closedWith?.message, 'queue "q.dlq" was deleted');
  assert.deepEqual(await s.listQueues(), []);
  await s.createQueue(queue("q"));
  assert.equal((await s.stats("q")).depth, 0);
  await store.purgeDeleted();
  assert.equal(store.rows.size, 0);
});

Deno.test("Scheduler refuses commands beyond its capacity", async () => {
  const { s } = await setup({ capacity: 1 });
  await s.createQueue(queue("q"));
  const results = await Promise.allSettled(
    Array.from({ length: 5 }, () => s.enqueue("q", {}, bytes(""))),
  );
  const ok = results.filter((r) => r.status === "fulfilled").length;
  assert.ok(ok >= 1);
  for (const r of results) {
    if (r.status === "rejected") assert.equal((r.reason as Error).message, "scheduler overloaded");
  }
  assert.equal((await s.stats("q")).depth, ok);
});

Deno.test("Scheduler validates queue creation", async () => {
  const { s } = await setup();
  await assert.rejects(
    s.createQueue(queue("q", { visibilityTimeoutMs: 999 })),
    /visibility_timeout_ms must be at least 1000/,
  );
  await s.createQueue(queue("q"));
  await assert.rejects(s.createQueue(queue("q")), /queue "q" already exists/);
  await assert.rejects(s.enqueue("nope", {}, bytes("")), /queue "nope" not found/);
  assert.deepEqual((await s.listQueues()).map((q) => q.name), ["q", "q.dlq"]);
});

Deno.test("Scheduler dead-letters on a dlq decision and redrives back with attempts reset", async () => {
  const hooks = new FakeHooks();
  const { s } = await setup({ hooks });
  await s.createQueue(queue("q"));
  const ids = [
    await s.enqueue("q", { tenant: "t" }, bytes("1")),
    await s.enqueue("q", { tenant: "t" }, bytes("2")),
  ];
  const sink = new Sink();
  await s.consume("q", 10, sink);
  await tick();
  hooks.failure = { action: "dlq", delayMs: 0 };
  for (const id of ids) await s.nack("q", id, "poison");
  let st = await s.stats("q.dlq");
  assert.equal(st.pending, 2);
  assert.equal((await s.stats("q")).depth, 0);
  const dlqSink = new Sink();
  const handle = await s.consume("q.dlq", 1, dlqSink);
  await tick();
  assert.deepEqual(dlqSink.got.map((d) => [d.body.id, d.attempts, d.queue]), [[
    ids[0],
    1,
    "q.dlq",
  ]]);
  // The leased one stays; the other moves.
  assert.equal(await s.redrive("q.dlq", 0), 1);
  await tick();
  assert.deepEqual(sink.got.slice(2).map((d) => [d.body.id, d.attempts, d.queue]), [[
    ids[1],
    0,
    "q",
  ]]);
  handle.close();
  await tick();
  hooks.failure = undefined;
  st = await s.stats("q.dlq");
  assert.equal(st.depth, 1);
  assert.equal(await s.redrive("q.dlq", 5), 1);
  assert.equal(await s.redrive("q.dlq", 0), 0);
  await assert.rejects(s.redrive("q", 0), /is not a dead-letter queue/);
  await assert.rejects(s.redrive("nope.dlq", 0), /queue "nope.dlq" not found/);
  await s.createQueue(queue("lonely.dlq"));
  await assert.rejects(s.redrive("lonely.dlq", 0), /parent queue "lonely"/);
});

Deno.test("Scheduler holds a delayed retry until its ready time, then appends it", async () => {
  const hooks = new FakeHooks();
  const { s, clock } = await setup({ hooks });
  await s.createQueue(queue("q"));
  const m = await s.enqueue("q", {}, bytes("m"));
  const p = await s.enqueue("q", {}, bytes("p"));
  const sink = new Sink();
  await s.consume("q", 1, sink);
  await tick();
  hooks.failure = { action: "retry", delayMs: 300 };
  await s.nack("q", m, "later");
  let st = await s.stats("q");
  assert.deepEqual([st.delayed, st.pending, st.inFlight, st.depth], [1, 0, 1, 1]);
  await tick();
  await s.ack("q", p);
  clock.advance(299);
  s.fireDueTimers();
  await tick();
  assert.deepEqual(sink.ids(), [m, p]);
  clock.advance(1);
  s.fireDueTimers();
  await tick();
  assert.deepEqual(sink.ids(), [m, p, m]);
  st = await s.stats("q");
  assert.equal(st.delayed, 0);
});

Deno.test("Scheduler never leases a message it cannot deliver because of a limit", async () => {
  const { s } = await setup();
  await s.createQueue(queue("q", { throttleKeyHeaders: ["api"] }));
  await s.setConfig("throttle.slow", "0,2");
  for (let i = 0; i < 5; i++) await s.enqueue("q", { api: "slow" }, bytes(`${i}`));
  for (let i = 0; i < 3; i++) await s.enqueue("q", { tenant: "free" }, bytes(`${i}`));
  const sink = new Sink();
  await s.consume("q", 100, sink);
  await tick();
  assert.equal(sink.got.length, 5); // 2 throttled + 3 free
  await s.setConfig("throttle.slow", ""); // unthrottled now
  await tick();
  assert.equal(sink.got.length, 8);
  // Every lease became a delivery; nothing was handed out and taken back.
  const c = s.counters;
  assert.equal(c.leased, 8);
  assert.equal(c.released + c.expired + c.nacked, 0);
  const st = await s.stats("q");
  assert.deepEqual([st.inFlight, st.pending], [8, 0]);
});

Deno.test("Scheduler batch enqueue reports one result per item in request order", async () => {
  const { s } = await setup();
  await s.createQueue(queue("q"));
  const results = await s.enqueueBatch([
    { queue: "q", headers: { tenant: "a" }, payload: bytes("1") },
    { queue: "missing", headers: {}, payload: bytes("2") },
    { queue: "q", headers: { tenant: "a" }, payload: bytes("3") },
  ]);
  assert.equal(typeof results[0], "string");
  assert.equal((results[1] as Error).message, 'queue "missing" not found');
  assert.ok((results[2] as string) > (results[0] as string));
  const sink = new Sink();
  await s.consume("q", 10, sink);
  await tick();
  assert.deepEqual(sink.ids(), [results[0], results[2]]);
  const acks = await s.ackBatch([
    { queue: "q", id: results[0] as string },
    { queue: "q", id: results[0] as string },
    { queue: "q", id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b" },
  ]);
  assert.equal(acks[0], undefined);
  assert.match(acks[1]!.message, /no lease for message/);
  assert.match(acks[2]!.message, /no lease for message/);
  const nacks = await s.nackBatch([{ queue: "q", id: results[2] as string, error: "x" }]);
  assert.deepEqual(nacks, [undefined]);
  await tick();
  assert.deepEqual(sink.got.map((d) => d.attempts), [0, 0, 1]);
});

Deno.test("Scheduler batched delivery respects batch size and credit", async () => {
  const { s } = await setup();
  await s.createQueue(queue("q"));
  await s.enqueueBatch(
    Array.from({ length: 25 }, (_, i) => ({ queue: "q", headers: {}, payload: bytes(`${i}`) })),
  );
  const sink = new Sink();
  await s.consume("q", 22, sink, { maxBatch: 10 });
  await tick();
  assert.deepEqual(sink.batches, [10, 10, 2]);
  const plain = new Sink();
  await s.consume("q", 5, plain);
  await tick();
  assert.deepEqual(plain.batches, []); // unbatched consumers only ever get send()
  assert.equal(plain.got.length, 3);
});

Deno.test("Scheduler reports each key's recent share next to its fair share", async () => {
  const { s } = await setup({ quantum: 1 });
  await s.createQueue(queue("q"));
  for (let i = 0; i < 20; i++) await s.enqueue("q", { tenant: "high", weight: "3" }, bytes(""));
  for (let i = 0; i < 20; i++) await s.enqueue("q", { tenant: "low" }, bytes(""));
  await s.consume("q", 8, new Sink());
  await tick();
  const keys = (await s.stats("q")).perKey;
  assert.deepEqual(keys.map((k) => [k.key, k.fairShare, k.recentShare]), [
    ["high", 0.75, 0.75],
    ["low", 0.25, 0.25],
  ]);
});

Deno.test("past the payload budget, payloads stay in storage and are read back for delivery, in order", async () => {
  const dir = await Deno.makeTempDir();
  const hooks = new FakeHooks();
  const open = async () => {
    const store = await SegmentStore.open(`${dir}/fila.kv`);
    const s = new Scheduler({ store, quantum: 1, payloadBudgetBytes: 10_000, hooks });
    await s.start();
    return { s };
  };
  // Distinct payloads, so a wrong read shows: the index in the first two bytes.
  const payloadOf = (i: number) => new Uint8Array(1000).fill(7).fill(i >> 8, 0, 1).fill(i, 1, 2);
  const byId = new Map<string, number>();
  /** Consumes `n` messages with batched delivery, checks each payload, acks or nacks them. */
  const drain = async (s: Scheduler, queue: string, n: number, settle: "ack" | "nack") => {
    const sink = new Sink();
    const h = await s.consume(queue, 16, sink, { maxBatch: 5 });
    const order = new Map<string, number[]>();
    let done = 0;
    while (done < n) {
      const until = Date.now() + 5_000;
      while (sink.got.length === done && Date.now() < until) await tick();
      assert.ok(sink.got.length > done, `stalled after ${done} of ${n}: ${sink.closedWith}`);
      for (; done < sink.got.length && done < n; done++) {
        const d = sink.got[done];
        const i = byId.get(d.body.id)!;
        assert.deepEqual(d.body.payload, payloadOf(i));
        const key = d.body.fairnessKey;
        order.set(key, [...order.get(key) ?? [], i]);
        if (settle === "ack") await s.ack(queue, d.body.id);
        else await s.nack(queue, d.body.id, "no");
      }
    }
    h.close();
    for (const list of order.values()) assert.deepEqual(list, list.slice().sort((a, b) => a - b));
    return done;
  };
  try {
    let { s } = await open();
    await s.createQueue(queue("q")); // and its DLQ
    const enqueue = async (from: number, to: number) => {
      const items = [];
      for (let i = from; i < to; i++) {
        items.push({ queue: "q", headers: { tenant: `t${i % 3}` }, payload: payloadOf(i) });
      }
      const ids = await s.enqueueBatch(items);
      ids.forEach((id, j) => byId.set(id as string, from + j));
    };
    await enqueue(0, 300);
    assert.equal(s.residentPayloadBytes, 10_000);
    assert.equal(await drain(s, "q", 150, "ack"), 150);

    // What a restart loads past the budget is read back too; so are moves of such messages
    // (dead-lettered after delivery, then redriven while only in storage).
    await s.shutdown(); // closes the store
    ({ s } = await open());
    assert.equal(s.residentPayloadBytes, 10_000);
    hooks.failure = { action: "dlq", delayMs: 0 };
    assert.equal(await drain(s, "q", 150, "nack"), 150);
    assert.equal((await s.stats("q.dlq")).depth, 150);
    await s.shutdown(); // closes the store
    ({ s } = await open());
    assert.equal(await s.redrive("q.dlq", 0), 150);
    await enqueue(300, 320);
    hooks.failure = undefined;
    assert.equal(await drain(s, "q", 170, "ack"), 170);
    assert.equal(s.residentPayloadBytes, 0);
    assert.equal((await s.stats("q")).depth, 0);
    await s.shutdown(); // closes the store
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
