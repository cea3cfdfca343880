// conformance.md §11 Stats (ST-01, ST-02, ST-04 … ST-07).
// ST-02 uses the declarative weight header instead of a script. Not here: ST-03 (nack/redelivery
// counter lifecycle is covered later with the Lua scenarios), ST-08 (CLI).
import assert from "node:assert/strict";
import { assertStatus, grpc } from "./client.ts";
import {
  KEY_WEIGHT_FROM_HEADERS,
  LATE_TOL_MS,
  newQueue,
  PROMPT_MS,
  scenario,
  sharedBroker,
  startBroker,
  uniq,
  waitConsumers,
  waitFor,
  waitStats,
} from "./harness.ts";

scenario("ST-01 depth, in_flight and pending follow deliveries and acks", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  for (let i = 0; i < 3; i++) await client.enqueue(q, { payload: `m${i}` });
  const c = client.consume(q, 1);
  const m = await c.expectNext(PROMPT_MS);
  let s = await client.getStats(q);
  assert.deepEqual([s.depth, s.in_flight, s.pending], [3, 1, 2], "depth, in_flight, pending");
  await client.ack(q, m.id);
  // The open consumer(1) regains its credit and leases the next message; closing it releases
  // that lease, leaving 2 pending and none in flight.
  await c.expectNext(PROMPT_MS);
  s = await client.getStats(q);
  assert.deepEqual([s.depth, s.in_flight, s.pending], [2, 1, 1], "after the Ack");
  c.cancel();
  // From here on depth stays 2 while the release moves the message from in flight to pending:
  // sample GetStats for 300 ms; no sample may show the message in neither state.
  const samples: string[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < 300) {
    s = await client.getStats(q);
    samples.push(`depth ${s.depth} in_flight ${s.in_flight} pending ${s.pending}`);
  }
  const allowed = ["depth 2 in_flight 1 pending 1", "depth 2 in_flight 0 pending 2"];
  const bad = samples.filter((x) => !allowed.includes(x));
  assert.deepEqual(bad, [], `GetStats samples during the release (of ${samples.length})`);
  assert.deepEqual([s.depth, s.in_flight, s.pending], [2, 0, 2], "depth, in_flight, pending");
});

scenario(
  "ST-02 per_key_stats show pending, deficit, weight and delivered count in ring order",
  async () => {
    await using b = await startBroker({ toml: "[scheduler]\nquantum = 10" });
    const client = b.client();
    const q = await newQueue(client, KEY_WEIGHT_FROM_HEADERS);
    await client.enqueue(q, { headers: { key: "a", weight: "2" }, payload: "a1" });
    await client.enqueue(q, { headers: { key: "b", weight: "1" }, payload: "b1" });
    await client.enqueue(q, { headers: { key: "a", weight: "2" }, payload: "a2" });
    const s = await client.getStats(q);
    assert.equal(s.quantum, 10);
    assert.equal(s.active_fairness_keys, 2);
    assert.deepEqual(s.per_key_stats, [
      // recent_share / fair_share: additions (docs/wire-additions.md).
      {
        key: "a",
        pending_count: 2,
        current_deficit: 20,
        weight: 2,
        delivered_count: 0,
        recent_share: 0,
        fair_share: 2 / 3,
      },
      {
        key: "b",
        pending_count: 1,
        current_deficit: 10,
        weight: 1,
        delivered_count: 0,
        recent_share: 0,
        fair_share: 1 / 3,
      },
    ]);
  },
  { needsProcess: true },
);

scenario(
  "ST-04 GetStats on a missing queue is NOT_FOUND, on an empty name INVALID_ARGUMENT",
  async () => {
    const { client } = await sharedBroker();
    const nope = uniq("nope");
    await assertStatus(client.getStats(nope), grpc.status.NOT_FOUND, `queue "${nope}" not found`);
    await assertStatus(
      client.getStats(""),
      grpc.status.INVALID_ARGUMENT,
      "queue name must not be empty",
    );
  },
);

scenario("ST-05 cluster fields are always 0", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  await client.enqueue(q, { payload: "x" });
  const s = await client.getStats(q);
  assert.equal(s.leader_node_id, 0);
  assert.equal(s.replication_count, 0);
  const l = await client.listQueues();
  assert.equal(l.cluster_node_count, 0);
  for (const qi of l.queues) assert.equal(qi.leader_node_id, 0);
});

scenario("ST-06 active_consumers counts open streams and drops promptly on cancel", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  const c1 = client.consume(q);
  const c2 = client.consume(q);
  await waitConsumers(client, q, 2);
  const listed = (await client.listQueues()).queues.find((x) => x.name === q)!;
  assert.equal(listed.active_consumers, 2, "ListQueues agrees");
  c1.cancel();
  await waitStats(
    client,
    q,
    (s) => s.active_consumers === 1,
    500 + LATE_TOL_MS,
    "active_consumers = 1 within 500 ms of the cancel",
  );
  await waitFor(
    () => client.listQueues(),
    (l) => l.queues.find((x) => x.name === q)?.active_consumers === 1,
    500,
    "ListQueues active_consumers = 1",
  );
  c2.cancel();
});

scenario("ST-07 quantum equals [scheduler].quantum from fila.toml", async () => {
  await using b = await startBroker({ toml: "[scheduler]\nquantum = 7" });
  const client = b.client();
  const q = await newQueue(client);
  const s = await client.getStats(q);
  assert.equal(s.quantum, 7);
}, { needsProcess: true });
