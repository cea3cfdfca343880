// conformance.md §2 Queue management (QM-01 … QM-07, QM-09, QM-11, QM-12).
// Not here: QM-08 (needs an on_failure script), QM-10 (CLI).
import assert from "node:assert/strict";
import { assertStatus, grpc, type QueueInfo } from "./client.ts";
import {
  EARLY_TOL_MS,
  KEY_WEIGHT_FROM_HEADERS,
  LATE_TOL_MS,
  newQueue,
  PROMPT_MS,
  scenario,
  sharedBroker,
  startBroker,
  uniq,
} from "./harness.ts";

function pick(queues: QueueInfo[], names: string[]): QueueInfo[] {
  return queues.filter((q) => names.includes(q.name));
}

function zeroCounts(q: QueueInfo) {
  assert.equal(q.depth, 0, `${q.name} depth`);
  assert.equal(q.in_flight, 0, `${q.name} in_flight`);
  assert.equal(q.active_consumers, 0, `${q.name} active_consumers`);
  assert.equal(q.leader_node_id, 0, `${q.name} leader_node_id`);
}

scenario(
  "QM-01 CreateQueue returns the name as queue_id and ListQueues shows the queue and its DLQ",
  async () => {
    const { client } = await sharedBroker();
    const name = uniq("orders");
    const res = await client.createQueue(name);
    assert.equal(res.queue_id, name);
    const list = await client.listQueues();
    const names = list.queues.map((q) => q.name);
    const i = names.indexOf(name);
    assert.ok(i >= 0, `${name} listed`);
    assert.equal(names[i + 1], `${name}.dlq`, "the DLQ follows its queue");
    for (const q of pick(list.queues, [name, `${name}.dlq`])) zeroCounts(q);
  },
);

scenario("QM-02 creating an existing queue is ALREADY_EXISTS", async () => {
  const { client } = await sharedBroker();
  const name = await newQueue(client, undefined, "orders");
  await assertStatus(
    client.createQueue(name),
    grpc.status.ALREADY_EXISTS,
    `queue "${name}" already exists`,
  );
});

scenario("QM-03 CreateQueue with an empty name is INVALID_ARGUMENT", async () => {
  const { client } = await sharedBroker();
  await assertStatus(
    client.createQueue(""),
    grpc.status.INVALID_ARGUMENT,
    "queue name must not be empty",
  );
});

scenario(
  "QM-04 visibility_timeout_ms below 1000 is rejected; 1000 and 0 (default 30 s) are accepted",
  async () => {
    const { client } = await sharedBroker();
    const bad = uniq("vt");
    await assertStatus(
      client.createQueue(bad, { visibility_timeout_ms: 500 }),
      grpc.status.INVALID_ARGUMENT,
      "visibility_timeout_ms must be at least 1000 (1 second)",
    );
    const names = (await client.listQueues()).queues.map((q) => q.name);
    assert.ok(!names.includes(bad), "the rejected queue does not exist");
    await client.createQueue(uniq("vt"), { visibility_timeout_ms: 1000 });
    const q = uniq("vt");
    await client.createQueue(q, { visibility_timeout_ms: 0 });
    const id = await client.enqueue(q, { payload: "x" });
    const c = client.consume(q);
    const m = await c.expectNext(PROMPT_MS);
    assert.equal(m.id, id);
    await c.expectNothing(5000, "no redelivery within 5 s (default visibility timeout 30 s)");
    const s = await client.getStats(q);
    assert.equal(s.in_flight, 1);
    c.cancel();
  },
);

scenario("QM-05 creating a .dlq queue creates no .dlq.dlq", async () => {
  const { client } = await sharedBroker();
  const name = uniq("jobs") + ".dlq";
  await client.createQueue(name);
  const names = (await client.listQueues()).queues.map((q) => q.name);
  assert.ok(names.includes(name));
  assert.ok(!names.includes(`${name}.dlq`));
});

scenario("QM-06 creating a queue whose DLQ already exists keeps the DLQ's messages", async () => {
  const { client } = await sharedBroker();
  const foo = uniq("foo");
  await client.createQueue(`${foo}.dlq`);
  const id = await client.enqueue(`${foo}.dlq`, { payload: "kept" });
  await client.createQueue(foo);
  const s = await client.getStats(`${foo}.dlq`);
  assert.equal(s.depth, 1);
  assert.equal(s.pending, 1);
  const c = client.consume(`${foo}.dlq`);
  const m = await c.expectNext(PROMPT_MS);
  assert.equal(m.id, id);
  c.cancel();
});

scenario(
  "QM-07 DeleteQueue removes the queue and its DLQ; a second delete is NOT_FOUND",
  async () => {
    const { client } = await sharedBroker();
    const name = await newQueue(client, undefined, "orders");
    await client.deleteQueue(name);
    const names = (await client.listQueues()).queues.map((q) => q.name);
    assert.ok(!names.includes(name));
    assert.ok(!names.includes(`${name}.dlq`));
    await assertStatus(
      client.deleteQueue(name),
      grpc.status.NOT_FOUND,
      `queue "${name}" not found`,
    );
  },
);

scenario(
  "QM-09 a fresh broker lists no queues; then queues are listed in byte order with DLQs",
  async () => {
    await using b = await startBroker();
    const client = b.client();
    const empty = await client.listQueues();
    assert.deepEqual(empty.queues, []);
    await client.createQueue("beta");
    await client.createQueue("alpha");
    const list = await client.listQueues();
    assert.deepEqual(list.queues.map((q) => q.name), ["alpha", "alpha.dlq", "beta", "beta.dlq"]);
  },
  { needsProcess: true },
);

scenario(
  "QM-11 queue config (header scheduling, visibility timeout 1 s) survives a restart",
  async () => {
    await using b = await startBroker();
    let client = b.client();
    const q = "scripted";
    await client.createQueue(q, { ...KEY_WEIGHT_FROM_HEADERS, visibility_timeout_ms: 1000 });
    await client.createQueue("plain");
    const before = await client.listQueues();
    await b.restart();
    client = b.client();
    const after = await client.listQueues();
    assert.deepEqual(after, before, "ListQueues unchanged by the restart");
    const id = await client.enqueue(q, { headers: { key: "acme", weight: "3" }, payload: "x" });
    const c = client.consume(q, 1);
    const m = await c.expectNext(PROMPT_MS);
    const t0 = c.times[c.received.length - 1];
    assert.equal(m.id, id);
    assert.equal(m.metadata!.fairness_key, "acme");
    assert.equal(m.metadata!.weight, 3);
    const again = await c.expectNext(1000 + 100 + LATE_TOL_MS + 500, "the redelivery after 1 s");
    const dt = c.times[c.received.length - 1] - t0;
    assert.equal(again.id, id);
    assert.equal(again.metadata!.attempt_count, 1);
    assert.ok(dt >= 1000 - EARLY_TOL_MS, `redelivered after ${dt.toFixed(0)} ms, before 1 s`);
    assert.ok(dt <= 1100 + LATE_TOL_MS, `redelivered after ${dt.toFixed(0)} ms, later than 1.1 s`);
    c.cancel();
  },
  { needsProcess: true },
);

scenario(
  "QM-12 names with spaces, slashes and colons are accepted; names are case-sensitive",
  async () => {
    const { client } = await sharedBroker();
    const base = uniq("x");
    const odd = `a b/c:d ${base}`;
    await client.createQueue(odd);
    const id = await client.enqueue(odd, { payload: "x" });
    assert.ok(id);
    const upper = `Q${base}`;
    const lower = `q${base}`;
    await client.createQueue(upper);
    await client.createQueue(lower);
    await client.enqueue(upper, { payload: "x" });
    assert.equal((await client.getStats(upper)).depth, 1);
    assert.equal((await client.getStats(lower)).depth, 0);
    const names = (await client.listQueues()).queues.map((q) => q.name);
    assert.ok(names.includes(odd) && names.includes(upper) && names.includes(lower));
  },
);
