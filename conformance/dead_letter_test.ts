// conformance.md §6 Dead letters and redrive: DL-01, DL-04 … DL-08, and the gRPC side of DL-02 /
// DL-03 (Redrive counts and order; the CLI output is checked in cli/). Messages reach the DLQs
// through the failure path (an on_failure script returning "dlq").
import assert from "node:assert/strict";
import { assertStatus, type FilaClient, grpc } from "./client.ts";
import {
  PROMPT_MS,
  scenario,
  sharedBroker,
  text,
  uniq,
  waitConsumers,
  waitStats,
} from "./harness.ts";
import {
  ALWAYS_DLQ,
  dlqAfter,
  KEY_WEIGHT_SCRIPT,
  luaStr,
  onEnqueue,
  retryAfter,
  scriptedQueue,
} from "./lua_helpers.ts";

/** Delivers each of `ids` once on `q` (in order) and nacks it; the ALWAYS_DLQ script moves it. */
async function deadLetter(client: FilaClient, q: string, ids: string[]): Promise<void> {
  const c = client.consume(q, 1);
  for (const id of ids) {
    const m = await c.expectNext(PROMPT_MS, `delivery of ${id}`);
    assert.equal(m.id, id);
    await client.nack(q, id, "dead");
  }
  c.cancel();
  await waitConsumers(client, q, 0);
  await waitStats(
    client,
    `${q}.dlq`,
    (s) => s.pending === ids.length,
    PROMPT_MS,
    `${ids.length} messages in the DLQ`,
  );
}

scenario("DL-01 a dead-lettered message keeps id, payload, headers and key", async () => {
  const { client } = await sharedBroker();
  const q = await scriptedQueue(client, {
    on_enqueue_script: KEY_WEIGHT_SCRIPT,
    on_failure_script: dlqAfter(2),
  }, "dl01");
  const headers = { key: "tenant-7", weight: "2", extra: "kept" };
  const id = await client.enqueue(q, { headers, payload: "body" });
  const c = client.consume(q, 1);
  for (let a = 0; a < 2; a++) {
    const m = await c.expectNext(PROMPT_MS, `attempt ${a}`);
    assert.equal(m.id, id);
    await client.nack(q, id, "failed");
  }
  const d = client.consume(`${q}.dlq`);
  const m = await d.expectNext(PROMPT_MS, "the message in the DLQ");
  assert.equal(m.id, id);
  assert.equal(text(m.payload), "body");
  assert.deepEqual(m.headers, headers);
  assert.equal(m.metadata!.fairness_key, "tenant-7");
  assert.equal(m.metadata!.weight, 2);
  assert.equal(m.metadata!.attempt_count, 2);
  assert.equal(m.metadata!.queue_id, `${q}.dlq`);
  await c.expectNothing(200, "nothing left in the queue");
});

scenario(
  "DL-02 DL-03 Redrive moves the oldest messages first with attempt_count reset (gRPC side)",
  async () => {
    const { client } = await sharedBroker();
    const q = await scriptedQueue(client, { on_failure_script: ALWAYS_DLQ }, "dl03");
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await client.enqueue(q, { payload: `m${i}` }));
    await deadLetter(client, q, ids);
    assert.equal(await client.redrive(`${q}.dlq`, 2), 2);
    let s = await client.getStats(`${q}.dlq`);
    assert.equal(s.pending, 1);
    assert.equal(await client.redrive(`${q}.dlq`, 0), 1);
    assert.equal(await client.redrive(`${q}.dlq`, 0), 0);
    s = await client.getStats(`${q}.dlq`);
    assert.equal(s.depth, 0);
    const c = client.consume(q, 3);
    const got = await c.take(3, PROMPT_MS);
    assert.deepEqual(got.map((m) => m.id), ids, "the two oldest first, then the third");
    for (const m of got) {
      assert.equal(m.metadata!.attempt_count, 0);
      assert.equal(m.metadata!.queue_id, q);
    }
    assert.deepEqual(got.map((m) => text(m.payload)), ["m0", "m1", "m2"]);
  },
);

scenario("DL-04 Redrive skips messages leased from the DLQ", async () => {
  const { client } = await sharedBroker();
  const q = await scriptedQueue(client, { on_failure_script: ALWAYS_DLQ }, "dl04");
  const ids = [];
  for (let i = 0; i < 2; i++) ids.push(await client.enqueue(q, { payload: `m${i}` }));
  await deadLetter(client, q, ids);
  const d = client.consume(`${q}.dlq`, 1);
  const leased = await d.expectNext(PROMPT_MS, "a message leased from the DLQ");
  await waitStats(client, `${q}.dlq`, (s) => s.in_flight === 1, PROMPT_MS, "the DLQ lease");
  assert.equal(await client.redrive(`${q}.dlq`), 1);
  const s = await client.getStats(`${q}.dlq`);
  assert.deepEqual([s.depth, s.in_flight, s.pending], [1, 1, 0], "DLQ depth, in_flight, pending");
  const other = ids.find((id) => id !== leased.id)!;
  const c = client.consume(q);
  const m = await c.expectNext(PROMPT_MS, "the redriven message");
  assert.equal(m.id, other);
  assert.equal(m.metadata!.attempt_count, 0);
  await c.expectNothing(200, "the leased one is not redriven");
  await client.ack(`${q}.dlq`, leased.id); // still leased in the DLQ
});

scenario("DL-05 Redrive argument errors", async () => {
  const { client } = await sharedBroker();
  const src = await scriptedQueue(client, {}, "src");
  await assertStatus(
    client.redrive(src),
    grpc.status.INVALID_ARGUMENT,
    `queue "${src}" is not a dead-letter queue (name must end with ".dlq")`,
  );
  const nope = `${uniq("nope")}.dlq`;
  await assertStatus(client.redrive(nope), grpc.status.NOT_FOUND, `queue "${nope}" not found`);
  const lonely = uniq("lonely");
  await client.createQueue(`${lonely}.dlq`);
  await assertStatus(
    client.redrive(`${lonely}.dlq`),
    grpc.status.FAILED_PRECONDITION,
    `parent queue "${lonely}" of dead-letter queue "${lonely}.dlq" does not exist`,
  );
  await assertStatus(
    client.redrive(""),
    grpc.status.INVALID_ARGUMENT,
    "dlq_queue name must not be empty",
  );
});

scenario("DL-06 a .dlq queue never dead-letters: dlq falls back to a retry", async () => {
  const { client } = await sharedBroker();
  const x = `${uniq("x")}.dlq`;
  await client.createQueue(x, { on_failure_script: ALWAYS_DLQ });
  const id = await client.enqueue(x, { payload: "x" });
  const c = client.consume(x, 1);
  assert.equal((await c.expectNext(PROMPT_MS)).id, id);
  await client.nack(x, id, "e");
  const m = await c.expectNext(PROMPT_MS, "the retry");
  assert.equal(m.id, id);
  assert.equal(m.metadata!.attempt_count, 1);
  assert.equal(m.metadata!.queue_id, x);
  await assertStatus(client.getStats(`${x}.dlq`), grpc.status.NOT_FOUND);
});

scenario("DL-07 Redrive does not run the parent's on_enqueue again", async () => {
  const { client } = await sharedBroker();
  const k = uniq("k");
  await client.setConfig(k, "one");
  const q = await scriptedQueue(client, {
    on_enqueue_script: onEnqueue(`return { fairness_key = fila.get(${luaStr(k)}) }`),
    on_failure_script: ALWAYS_DLQ,
  }, "dl07");
  const id = await client.enqueue(q, { payload: "x" });
  await deadLetter(client, q, [id]);
  await client.setConfig(k, "two");
  assert.equal(await client.redrive(`${q}.dlq`), 1);
  const c = client.consume(q);
  const m = await c.expectNext(PROMPT_MS, "the redriven message");
  assert.equal(m.id, id);
  assert.equal(m.metadata!.fairness_key, "one");
  // A new message does see the new value.
  await client.enqueue(q, { payload: "y" });
  assert.equal((await c.expectNext(PROMPT_MS)).metadata!.fairness_key, "two");
});

scenario("DL-08 Redrive moves a delayed DLQ message, which loses its delay", async () => {
  const { client } = await sharedBroker();
  const x = uniq("x");
  await client.createQueue(`${x}.dlq`, { on_failure_script: retryAfter(60000) });
  await client.createQueue(x, { on_failure_script: ALWAYS_DLQ });
  const id = await client.enqueue(x, { payload: "x" });
  await deadLetter(client, x, [id]);
  const d = client.consume(`${x}.dlq`, 1);
  assert.equal((await d.expectNext(PROMPT_MS)).id, id);
  await client.nack(`${x}.dlq`, id, "still failing");
  const s = await waitStats(client, `${x}.dlq`, (s) => s.delayed === 1, PROMPT_MS, "delayed");
  assert.equal(s.depth, 0);
  assert.equal(await client.redrive(`${x}.dlq`), 1);
  const c = client.consume(x);
  const m = await c.expectNext(PROMPT_MS, "the redriven message, promptly");
  assert.equal(m.id, id);
  assert.equal(m.metadata!.attempt_count, 0);
  const sd = await client.getStats(`${x}.dlq`);
  assert.deepEqual([sd.delayed, sd.depth], [0, 0]);
});
