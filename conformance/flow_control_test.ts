// conformance.md §4 Flow control (FC-01 … FC-08).
// Not here: FC-09 (needs an on_failure script).
import assert from "node:assert/strict";
import { assertStreamStatus, grpc } from "./client.ts";
import {
  newQueue,
  PROMPT_MS,
  scenario,
  sharedBroker,
  startBroker,
  waitConsumers,
  waitStats,
} from "./harness.ts";

scenario("FC-01 consumer(2) gets exactly 2 messages, and one more after each Ack", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  await client.enqueueMany(q, 10);
  const c = client.consume(q, 2);
  const first = await c.take(2, PROMPT_MS);
  await c.expectNothing(300, "no third message while 2 are held");
  let s = await client.getStats(q);
  assert.equal(s.in_flight, 2);
  assert.equal(s.pending, 8);
  await client.ack(q, first[0].id);
  await c.expectNext(PROMPT_MS, "one more message after the Ack");
  await c.expectNothing(300, "exactly one more message");
  s = await client.getStats(q);
  assert.equal(s.in_flight, 2);
  assert.equal(s.pending, 7);
  c.cancel();
});

scenario("FC-02 consumer() holds at most 256 messages by default", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  await client.enqueueMany(q, 300);
  const c = client.consume(q);
  await c.waitCount(256, 5000);
  await c.expectNothing(300, "nothing beyond 256 unacked messages");
  // expectNothing consumed nothing; received holds what arrived.
  assert.equal(c.received.length, 256);
  const s = await client.getStats(q);
  assert.equal(s.in_flight, 256);
  assert.equal(s.pending, 44);
  c.cancel();
});

scenario("FC-03 consumer(1) and consumer(3) receive 1 and 3 messages", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  const c1 = client.consume(q, 1);
  const c3 = client.consume(q, 3);
  await waitConsumers(client, q, 2);
  await client.enqueueMany(q, 10, undefined, 1);
  await c1.waitCount(1, PROMPT_MS);
  await c3.waitCount(3, PROMPT_MS);
  await c1.expectNothing(300);
  assert.equal(c1.received.length, 1);
  assert.equal(c3.received.length, 3);
  const s = await client.getStats(q);
  assert.equal(s.in_flight, 4);
  assert.equal(s.pending, 6);
  c1.cancel();
  c3.cancel();
});

scenario(
  "FC-04 a cancelled stream's messages return to the head of their key in delivery order",
  async () => {
    const { client } = await sharedBroker();
    const q = await newQueue(client);
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) ids.push(await client.enqueue(q, { payload: `A${i}` }));
    const c = client.consume(q, 3);
    const held = await c.take(3, PROMPT_MS);
    assert.deepEqual(held.map((m) => m.id), ids.slice(0, 3));
    c.cancel();
    await waitStats(client, q, (s) => s.in_flight === 0 && s.pending === 5, 2000, "release");
    const c2 = client.consume(q, 10);
    const all = await c2.take(5, PROMPT_MS);
    assert.deepEqual(all.map((m) => m.id), ids, "A1…A5 in order");
    assert.deepEqual(all.map((m) => m.metadata!.attempt_count), [1, 1, 1, 0, 0]);
    c2.cancel();
  },
);

scenario("FC-05 pending messages without a consumer are not in flight", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  await client.enqueueMany(q, 3);
  const s = await client.getStats(q);
  assert.equal(s.in_flight, 0);
  assert.equal(s.pending, 3);
  assert.equal(s.depth, 3);
});

scenario("FC-06 a nacked message comes back on the same consumer(1) stream", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  const id = await client.enqueue(q, { payload: "M" });
  const c = client.consume(q, 1);
  await c.expectNext(PROMPT_MS);
  await client.nack(q, id, "again");
  const m = await c.expectNext(PROMPT_MS);
  assert.equal(m.id, id);
  assert.equal(m.metadata!.attempt_count, 1);
  c.cancel();
});

scenario("FC-07 leases survive a graceful restart and can be acked afterwards", async () => {
  await using b = await startBroker();
  const client = b.client();
  const q = "fc07";
  await client.createQueue(q, { visibility_timeout_ms: 30000 });
  const id = await client.enqueue(q, { payload: "M" });
  const c = client.consume(q);
  await c.expectNext(PROMPT_MS);
  await waitStats(client, q, (s) => s.in_flight === 1, 1000, "the lease");
  const restarted = b.restart({ graceful: true });
  const status = await c.waitEnd(10_000);
  assertStreamStatus(status, grpc.status.UNAVAILABLE, "broker is shutting down");
  await restarted;
  const client2 = b.client();
  const s = await client2.getStats(q);
  assert.equal(s.in_flight, 1, "the lease is still there after the restart");
  await client2.ack(q, id);
  const s2 = await client2.getStats(q);
  assert.equal(s2.depth, 0);
}, { needsProcess: true });

scenario("FC-08 a consumer that stops reading never holds more than its credit", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  const c = client.consume(q, 5);
  await waitConsumers(client, q, 1);
  c.pause();
  let max = 0;
  for (let batch = 0; batch < 10; batch++) {
    await client.enqueueMany(q, 10, (i) => ({ payload: `m${batch * 10 + i}` }), 10);
    const s = await client.getStats(q);
    max = Math.max(max, s.in_flight);
  }
  for (let i = 0; i < 5; i++) {
    const s = await client.getStats(q);
    max = Math.max(max, s.in_flight);
  }
  assert.ok(max <= 5, `GetStats showed ${max} in flight (credit 5)`);
  const s = await client.getStats(q);
  assert.equal(s.depth, 100);
  c.cancel();
});
