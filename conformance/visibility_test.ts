// conformance.md §3 Visibility timeout (VT-01, VT-02, VT-03, VT-07).
// Not here: VT-04, VT-05, VT-06 (need on_failure scripts).
import assert from "node:assert/strict";
import type { Message } from "./client.ts";
import {
  EARLY_TOL_MS,
  LATE_TOL_MS,
  newQueue,
  PROMPT_MS,
  scenario,
  sharedBroker,
  waitConsumers,
  waitStats,
} from "./harness.ts";

scenario(
  "VT-01 an unacked lease expires on time and is redelivered with attempt_count 1",
  async () => {
    const { client } = await sharedBroker();
    const q = await newQueue(client, { visibility_timeout_ms: 2000 });
    const id = await client.enqueue(q, { payload: "x" });
    const c = client.consume(q, 1);
    const m = await c.expectNext(PROMPT_MS);
    const t0 = c.times[0];
    assert.equal(m.id, id);
    const again = await c.expectNext(2100 + LATE_TOL_MS + 500, "the redelivery");
    const dt = c.times[1] - t0;
    assert.equal(again.id, id);
    assert.equal(again.metadata!.attempt_count, 1);
    assert.ok(
      dt >= 2000 - EARLY_TOL_MS,
      `redelivered ${dt.toFixed(0)} ms after delivery (< 2.0 s)`,
    );
    assert.ok(dt <= 2100 + LATE_TOL_MS, `redelivered ${dt.toFixed(0)} ms after delivery (> 2.1 s)`);
    c.cancel();
  },
);

scenario("VT-02 a message acked before its deadline is not redelivered", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client, { visibility_timeout_ms: 2000 });
  const id = await client.enqueue(q, { payload: "x" });
  const c = client.consume(q, 1);
  await c.expectNext(PROMPT_MS);
  await new Promise((r) => setTimeout(r, 1000)); // the scenario acks after 1 s
  await client.ack(q, id);
  await c.expectNothing(4000, "no redelivery within 4 s");
  const s = await client.getStats(q);
  assert.equal(s.depth, 0);
  c.cancel();
});

scenario("VT-03 lease expiry happens on time while the queue is busy", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client, { visibility_timeout_ms: 1000 });
  const a = client.consume(q, 1);
  await waitConsumers(client, q, 1);
  const mId = await client.enqueue(q, { payload: "M" });
  const m = await a.expectNext(PROMPT_MS, "M on consumer A");
  assert.equal(m.id, mId);
  const t0 = a.times[0];

  // Consumer B acks everything it gets (except that M is only watched for).
  const b = client.consume(q);
  await waitConsumers(client, q, 2);
  let redeliveredAt = 0;
  let redelivery: Message | null = null;
  const watch = (msg: Message, at: number) => {
    if (msg.id === mId && redeliveredAt === 0) {
      redeliveredAt = at;
      redelivery = msg;
    }
  };
  let stop = false;
  const ackLoop = (async () => {
    while (!stop) {
      const x = await b.next(50);
      if (x === null) continue;
      watch(x, b.times[b.received.indexOf(x)]);
      await client.ack(q, x.id).catch(() => {});
    }
  })();
  const aLoop = (async () => {
    while (!stop) {
      const x = await a.next(50);
      if (x !== null) watch(x, a.times[a.received.indexOf(x)]);
    }
  })();
  // Producer: one message every 10 ms until M is redelivered (or 3 s pass).
  const deadline = performance.now() + 3000;
  while (redeliveredAt === 0 && performance.now() < deadline) {
    await client.enqueue(q, { payload: "busy" });
    await new Promise((r) => setTimeout(r, 10));
  }
  stop = true;
  await Promise.all([ackLoop, aLoop]);
  assert.ok(redelivery, "M was redelivered");
  const dt = redeliveredAt - t0;
  assert.equal((redelivery as Message).metadata!.attempt_count, 1);
  assert.ok(dt >= 1000 - EARLY_TOL_MS, `redelivered ${dt.toFixed(0)} ms after delivery (< 1 s)`);
  assert.ok(dt <= 1100 + LATE_TOL_MS, `redelivered ${dt.toFixed(0)} ms after delivery (> 1.1 s)`);
  a.cancel();
  b.cancel();
});

scenario("VT-07 cancelling a stream releases its message at once as a failed attempt", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  const id = await client.enqueue(q, { payload: "M" });
  const c = client.consume(q, 1);
  await c.expectNext(PROMPT_MS);
  const t0 = performance.now();
  c.cancel();
  const s = await waitStats(
    client,
    q,
    (s) => s.in_flight === 0 && s.pending === 1,
    500 + LATE_TOL_MS,
    "in_flight = 0 and pending = 1 after the cancel",
  );
  assert.ok(performance.now() - t0 <= 500 + LATE_TOL_MS + 100);
  assert.equal(s.depth, 1);
  const c2 = client.consume(q);
  const m = await c2.expectNext(PROMPT_MS);
  assert.equal(m.id, id);
  assert.equal(m.metadata!.attempt_count, 1);
  c2.cancel();
});
