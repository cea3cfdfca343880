// conformance.md §1 Lifecycle (LC-01 … LC-17).
import assert from "node:assert/strict";
import { assertStatus, FilaClient, grpc, type Message } from "./client.ts";
import {
  newQueue,
  PROMPT_MS,
  scenario,
  sharedBroker,
  sleep,
  text,
  uniq,
  UUIDV7_RE,
  waitConsumers,
  waitFor,
} from "./harness.ts";

scenario("LC-01 enqueue returns a UUIDv7 message id", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  const id = await client.enqueue(q, { headers: { test: "ack-flow" }, payload: "hello" });
  assert.equal(id.length, 36);
  assert.match(id, UUIDV7_RE);
});

scenario(
  "LC-02 a delivered message carries the enqueued id, payload, headers and default metadata",
  async () => {
    const { client } = await sharedBroker();
    const q = await newQueue(client);
    const id = await client.enqueue(q, { headers: { test: "ack-flow" }, payload: "hello" });
    const c = client.consume(q);
    const m = await c.expectNext(PROMPT_MS, "the message");
    assert.equal(m.id, id);
    assert.equal(text(m.payload), "hello");
    assert.deepEqual({ ...m.headers }, { test: "ack-flow" });
    assert.ok(m.metadata, "metadata must be set");
    assert.equal(m.metadata.queue_id, q);
    assert.equal(m.metadata.fairness_key, "default");
    assert.equal(m.metadata.weight, 1);
    assert.deepEqual(m.metadata.throttle_keys, []);
    assert.equal(m.metadata.attempt_count, 0);
    assert.equal(m.timestamps, null, "timestamps must be absent");
    c.cancel();
  },
);

scenario("LC-03 the first Ack is OK and a second Ack is NOT_FOUND", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  const id = await client.enqueue(q, { payload: "x" });
  const c = client.consume(q);
  const m = await c.expectNext(PROMPT_MS);
  assert.equal(m.id, id);
  await client.ack(q, id);
  await assertStatus(
    client.ack(q, id),
    grpc.status.NOT_FOUND,
    `no lease for message ${id} in queue ${q}`,
  );
  c.cancel();
});

scenario(
  "LC-04 a nacked message is redelivered promptly on the same stream with attempt_count + 1",
  async () => {
    const { client } = await sharedBroker();
    const q = await newQueue(client);
    const id = await client.enqueue(q, { payload: "x" });
    const c = client.consume(q);
    const m0 = await c.expectNext(PROMPT_MS);
    assert.equal(m0.id, id);
    assert.equal(m0.metadata!.attempt_count, 0);
    await client.nack(q, id, "transient");
    const m1 = await c.expectNext(PROMPT_MS, "the redelivery after the first Nack");
    assert.equal(m1.id, id);
    assert.equal(m1.metadata!.attempt_count, 1);
    await client.nack(q, id, "transient");
    const m2 = await c.expectNext(PROMPT_MS, "the redelivery after the second Nack");
    assert.equal(m2.id, id);
    assert.equal(m2.metadata!.attempt_count, 2);
    await client.ack(q, id);
    await assertStatus(
      client.nack(q, id, "late"),
      grpc.status.NOT_FOUND,
      `no lease for message ${id} in queue ${q}`,
    );
    c.cancel();
  },
);

scenario("LC-05 messages enqueued before any consumer all arrive promptly", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(await client.enqueue(q, { payload: `m${i}` }));
  const c = client.consume(q);
  const got = await c.take(5, PROMPT_MS);
  assert.deepEqual(got.map((m) => m.id).sort(), [...ids].sort());
  c.cancel();
});

scenario("LC-06 messages of one fairness key arrive in enqueue order", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) ids.push(await client.enqueue(q, { payload: `m${i}` }));
  const c = client.consume(q);
  const got = await c.take(10, PROMPT_MS);
  assert.deepEqual(got.map((m) => m.id), ids);
  c.cancel();
});

scenario(
  "LC-07 an empty payload without headers round-trips as an empty payload and an empty map",
  async () => {
    const { client } = await sharedBroker();
    const q = await newQueue(client);
    const id = await client.enqueue(q, {});
    const c = client.consume(q);
    const m = await c.expectNext(PROMPT_MS);
    assert.equal(m.id, id);
    assert.equal(m.payload.length, 0);
    assert.deepEqual({ ...m.headers }, {});
    c.cancel();
  },
);

scenario("LC-08 Ack or Nack of a pending, never-delivered message is NOT_FOUND", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  const id = await client.enqueue(q, { payload: "x" });
  const msg = `no lease for message ${id} in queue ${q}`;
  await assertStatus(client.ack(q, id), grpc.status.NOT_FOUND, msg);
  await assertStatus(client.nack(q, id, "e"), grpc.status.NOT_FOUND, msg);
  const s = await client.getStats(q);
  assert.equal(s.pending, 1, "the message stays pending");
});

scenario(
  "LC-09 an Ack naming another queue is NOT_FOUND and the right queue then acks",
  async () => {
    const { client } = await sharedBroker();
    const q1 = await newQueue(client);
    const q2 = await newQueue(client);
    const id = await client.enqueue(q1, { payload: "x" });
    const c = client.consume(q1);
    await c.expectNext(PROMPT_MS);
    await assertStatus(
      client.ack(q2, id),
      grpc.status.NOT_FOUND,
      `no lease for message ${id} in queue ${q2}`,
    );
    await client.ack(q1, id);
    c.cancel();
  },
);

scenario("LC-10 100 enqueued ids are distinct and strictly increasing", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  const ids: string[] = [];
  for (let i = 0; i < 100; i++) ids.push(await client.enqueue(q, { payload: `m${i}` }));
  assert.equal(new Set(ids).size, 100);
  for (let i = 1; i < ids.length; i++) {
    assert.ok(ids[i - 1] < ids[i], `id ${i} (${ids[i]}) not after id ${i - 1} (${ids[i - 1]})`);
  }
});

scenario("LC-11 every accepted message_id form acks and nothing is redelivered", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  for (let i = 0; i < 4; i++) await client.enqueue(q, { payload: `m${i}` });
  const c = client.consume(q);
  const ms = await c.take(4, PROMPT_MS);
  const forms = [
    (id: string) => id.toUpperCase(),
    (id: string) => id.replaceAll("-", ""),
    (id: string) => `{${id}}`,
    (id: string) => `urn:uuid:${id}`,
  ];
  for (let i = 0; i < 4; i++) await client.ack(q, forms[i](ms[i].id));
  const s = await client.getStats(q);
  assert.equal(s.depth, 0);
  assert.equal(s.in_flight, 0);
  await c.expectNothing(300, "no redelivery");
  c.cancel();
});

scenario("LC-12 a different client connection can ack a delivered message", async () => {
  const { client, addr } = await sharedBroker();
  const q = await newQueue(client);
  const id = await client.enqueue(q, { payload: "x" });
  const c = client.consume(q);
  await c.expectNext(PROMPT_MS);
  const other = new FilaClient(addr);
  await other.ack(q, id);
  const s = await client.getStats(q);
  assert.equal(s.depth, 0);
  await c.expectNothing(300, "no redelivery");
  c.cancel();
});

scenario("LC-13 an idle consumer gets nothing for 2 s, then a new message promptly", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  const c = client.consume(q);
  await c.expectNothing(2000, "no item on an empty queue");
  const id = await client.enqueue(q, { payload: "late" });
  const m = await c.expectNext(PROMPT_MS);
  assert.equal(m.id, id);
  c.cancel();
});

scenario("LC-14 two consumer(1000) streams share 20 messages exactly once, 10 each", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  const c1 = client.consume(q, 1000);
  const c2 = client.consume(q, 1000);
  await waitConsumers(client, q, 2);
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) ids.push(await client.enqueue(q, { payload: `m${i}` }));
  await waitFor(
    () => c1.received.length + c2.received.length,
    (n) => n >= 20,
    PROMPT_MS,
    "20 deliveries",
    10,
  );
  await sleep(200); // a duplicate delivery would show up here
  const all = [...c1.received, ...c2.received].map((m: Message) => m.id);
  assert.equal(all.length, 20, `expected 20 deliveries, got ${all.length}`);
  assert.deepEqual([...all].sort(), [...ids].sort(), "each message delivered exactly once");
  assert.equal(c1.received.length, 10, "first stream gets 10");
  assert.equal(c2.received.length, 10, "second stream gets 10");
  c1.cancel();
  c2.cancel();
});

scenario("LC-15 Enqueue to a missing queue is NOT_FOUND", async () => {
  const { client } = await sharedBroker();
  const nope = uniq("nope");
  await assertStatus(
    client.enqueue(nope, { payload: "x" }),
    grpc.status.NOT_FOUND,
    `queue "${nope}" not found`,
  );
});

scenario(
  "LC-16 a message enqueued directly into a .dlq queue can be consumed from it",
  async () => {
    const { client } = await sharedBroker();
    const d = uniq("d") + ".dlq";
    await client.createQueue(d);
    const id = await client.enqueue(d, { payload: "direct" });
    const c = client.consume(d);
    const m = await c.expectNext(PROMPT_MS);
    assert.equal(m.id, id);
    assert.equal(m.metadata!.queue_id, d);
    await client.ack(d, id);
    c.cancel();
  },
);

scenario("LC-17 a nacked message goes to the tail of its key", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  const mId = await client.enqueue(q, { payload: "M" });
  const pId = await client.enqueue(q, { payload: "P" });
  const c = client.consume(q, 1);
  const first = await c.expectNext(PROMPT_MS);
  assert.equal(first.id, mId);
  await client.nack(q, mId, "retry");
  const second = await c.expectNext(PROMPT_MS);
  assert.equal(second.id, pId, "P is delivered before the retried M");
  await client.ack(q, pId);
  const third = await c.expectNext(PROMPT_MS);
  assert.equal(third.id, mId);
  assert.equal(third.metadata!.attempt_count, 1);
  await client.ack(q, mId);
  c.cancel();
});
