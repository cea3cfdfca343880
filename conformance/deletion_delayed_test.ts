// conformance.md §15 DQ-02 / DQ-03 with a delayed message (the parts deletion_test.ts leaves
// out): the queue holds pending, in-flight and delayed messages when it is deleted; the delayed
// one must not come back, neither at once nor after its ready time.
import assert from "node:assert/strict";
import { assertStatus, assertStreamStatus, type FilaClient, grpc } from "./client.ts";
import {
  LATE_TOL_MS,
  PROMPT_MS,
  scenario,
  sharedBroker,
  uniq,
  waitConsumers,
  waitStats,
} from "./harness.ts";
import { retryAfter } from "./lua_helpers.ts";

const DELAY_MS = 1000;

/** q with 2 pending, 1 in-flight and 1 delayed message, streams on q and q.dlq; then deleted. */
async function deleteQueueWithDelayed(client: FilaClient) {
  const q = uniq("dqd");
  await client.createQueue(q, { on_failure_script: retryAfter(DELAY_MS) });
  const delayedId = await client.enqueue(q, { payload: "delayed" });
  for (let i = 0; i < 3; i++) await client.enqueue(q, { payload: `p${i}` });
  await client.enqueue(`${q}.dlq`, { payload: "dead" });
  const onQ = client.consume(q, 1);
  const onDlq = client.consume(`${q}.dlq`, 1);
  const first = await onQ.expectNext(PROMPT_MS);
  assert.equal(first.id, delayedId);
  await client.nack(q, delayedId, "later");
  const readyAt = performance.now() + DELAY_MS;
  const inFlight = await onQ.expectNext(PROMPT_MS, "the in-flight message");
  await onDlq.expectNext(PROMPT_MS);
  await waitConsumers(client, q, 1);
  const s = await waitStats(client, q, (s) => s.in_flight === 1, PROMPT_MS, "the lease");
  assert.deepEqual(
    { pending: s.pending, in_flight: s.in_flight, delayed: s.delayed },
    { pending: 2, in_flight: 1, delayed: 1 },
    "before DeleteQueue",
  );
  await client.deleteQueue(q);
  return { q, onQ, onDlq, inFlightId: inFlight.id, delayedId, readyAt };
}

scenario("DQ-02 deleting a queue holding a delayed message ends its streams", async () => {
  const { client } = await sharedBroker();
  const { q, onQ, onDlq, inFlightId, delayedId } = await deleteQueueWithDelayed(client);
  assertStreamStatus(
    await onQ.waitEnd(PROMPT_MS),
    grpc.status.NOT_FOUND,
    `queue "${q}" was deleted`,
  );
  assertStreamStatus(
    await onDlq.waitEnd(PROMPT_MS),
    grpc.status.NOT_FOUND,
    `queue "${q}.dlq" was deleted`,
  );
  for (const id of [inFlightId, delayedId]) {
    await assertStatus(
      client.ack(q, id),
      grpc.status.NOT_FOUND,
      `no lease for message ${id} in queue ${q}`,
    );
  }
});

scenario(
  "DQ-03 a recreated queue stays empty, also after the deleted delayed message's ready time",
  async () => {
    const { client } = await sharedBroker();
    const { q, onQ, onDlq, readyAt } = await deleteQueueWithDelayed(client);
    await onQ.waitEnd(PROMPT_MS);
    await onDlq.waitEnd(PROMPT_MS);
    await client.createQueue(q, { on_failure_script: retryAfter(DELAY_MS) });
    const s = await client.getStats(q);
    assert.deepEqual(
      { depth: s.depth, delayed: s.delayed, pending: s.pending, in_flight: s.in_flight },
      { depth: 0, delayed: 0, pending: 0, in_flight: 0 },
    );
    assert.equal((await client.getStats(`${q}.dlq`)).depth, 0, "the recreated DLQ is empty");
    const c = client.consume(q);
    // At least 2 s, and well past the ready time (+ §4.7's 100 ms + tolerance).
    const window = Math.max(2000, readyAt + 100 + LATE_TOL_MS + 300 - performance.now());
    await c.expectNothing(window, "nothing from the deleted queue");
    const after = await client.getStats(q);
    assert.deepEqual([after.depth, after.delayed], [0, 0]);
  },
);
