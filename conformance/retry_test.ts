// Failure path with on_failure scripts: conformance.md §3 VT-04, VT-05, VT-06 (expiry is a failed
// attempt), §4 FC-09 (stream release is a failed attempt), §5 CR-04 (expiry during recovery) and
// CR-07 (a delayed retry survives kill -9). CR-04 and CR-07 restart the file's own broker.
import assert from "node:assert/strict";
import { assertStatus, FilaClient, grpc } from "./client.ts";
import {
  type Broker,
  EARLY_TOL_MS,
  fileBroker,
  LATE_TOL_MS,
  PROMPT_MS,
  scenario,
  sharedBroker,
  sleep,
  text,
  waitConsumers,
  waitStats,
} from "./harness.ts";
import { dlqAfter, lastArrival, onFailure, retryAfter, scriptedQueue } from "./lua_helpers.ts";

const P = { needsProcess: true };

/** on_failure dead-lettering on the first lease expiry only. */
const DLQ_ON_FIRST_EXPIRY = onFailure(
  'if msg.error == "visibility timeout expired" and msg.attempts == 1 then\n' +
    '  return { action = "dlq" }\nend\nreturn { action = "retry" }',
);

scenario("VT-04 an expired lease runs on_failure, which can dead-letter it", async () => {
  const { client } = await sharedBroker();
  const q = await scriptedQueue(client, {
    on_failure_script: DLQ_ON_FIRST_EXPIRY,
    visibility_timeout_ms: 1000,
  }, "vt04");
  const id = await client.enqueue(q, { payload: "slow" });
  const c = client.consume(q, 1);
  assert.equal((await c.expectNext(PROMPT_MS)).id, id);
  const d = client.consume(`${q}.dlq`);
  const m = await d.expectNext(1100 + LATE_TOL_MS + 500, "the expired message in the DLQ");
  assert.equal(m.id, id);
  assert.equal(text(m.payload), "slow");
  assert.equal(m.metadata!.attempt_count, 1);
  assert.equal(m.metadata!.queue_id, `${q}.dlq`);
  await c.expectNothing(200, "no redelivery in the queue");
  assert.equal((await client.getStats(q)).depth, 0);
});

scenario(
  "VT-05 a never-acked message is delivered with attempts 0, 1, 2, then dead-lettered with 3",
  async () => {
    const { client } = await sharedBroker();
    const q = await scriptedQueue(client, {
      on_failure_script: dlqAfter(3),
      visibility_timeout_ms: 1000,
    }, "vt05");
    const id = await client.enqueue(q, { payload: "hang" });
    const c = client.consume(q, 1);
    for (let a = 0; a < 3; a++) {
      const m = await c.expectNext(a === 0 ? PROMPT_MS : 1100 + LATE_TOL_MS + 500, `attempt ${a}`);
      assert.equal(m.id, id);
      assert.equal(m.metadata!.attempt_count, a);
    }
    const d = client.consume(`${q}.dlq`);
    const m = await d.expectNext(1100 + LATE_TOL_MS + 500, "the message in the DLQ");
    assert.equal(m.id, id);
    assert.equal(m.metadata!.attempt_count, 3);
    await c.expectNothing(200, "no fourth delivery in the queue");
  },
);

scenario(
  "VT-06 an expiry with a delayed retry: the old lease is gone and the message is delayed",
  async () => {
    const { client } = await sharedBroker();
    const q = await scriptedQueue(client, {
      on_failure_script: retryAfter(5000),
      visibility_timeout_ms: 1000,
    }, "vt06");
    const id = await client.enqueue(q, { payload: "x" });
    const c = client.consume(q, 1);
    assert.equal((await c.expectNext(PROMPT_MS)).id, id);
    const s = await waitStats(
      client,
      q,
      (s) => s.delayed === 1,
      1100 + LATE_TOL_MS + 500,
      "delayed = 1 after the expiry",
    );
    assert.equal(s.in_flight, 0);
    assert.equal(s.pending, 0);
    assert.equal(s.depth, 0);
    await assertStatus(
      client.ack(q, id),
      grpc.status.NOT_FOUND,
      `no lease for message ${id} in queue ${q}`,
    );
    await c.expectNothing(500, "not redelivered yet");
  },
);

scenario(
  "FC-09 a message whose consumers keep closing their streams is dead-lettered",
  async () => {
    const { client, addr } = await sharedBroker();
    const q = await scriptedQueue(client, {
      on_failure_script: onFailure(
        'if msg.error == "consumer stream closed" and msg.attempts >= 3 then\n' +
          '  return { action = "dlq" }\nend\nreturn { action = "retry" }',
      ),
    }, "fc09");
    const id = await client.enqueue(q, { payload: "poison" });
    for (let a = 0; a < 3; a++) {
      // Each "consumer" is its own connection that receives M and then closes its stream.
      const conn = new FilaClient(addr);
      const c = conn.consume(q, 1);
      const m = await c.expectNext(PROMPT_MS, `delivery ${a + 1}`);
      assert.equal(m.id, id);
      assert.equal(m.metadata!.attempt_count, a);
      c.cancel();
      await c.waitEnd(PROMPT_MS);
      await waitConsumers(client, q, 0);
    }
    const s = await waitStats(
      client,
      `${q}.dlq`,
      (s) => s.pending === 1,
      PROMPT_MS,
      "the message in the DLQ",
    );
    assert.equal(s.depth, 1);
    assert.equal((await client.getStats(q)).depth, 0);
    const d = client.consume(`${q}.dlq`);
    const m = await d.expectNext(PROMPT_MS);
    assert.equal(m.id, id);
    assert.equal(m.metadata!.attempt_count, 3);
  },
);

// ---------------------------------------------------------------------------------------------
// Restarts

function broker(): Promise<Broker> {
  return fileBroker("retry-restarts");
}

scenario(
  "CR-04 a lease that expired while the broker was down runs on_failure at recovery",
  async () => {
    const b = await broker();
    const client = b.client();
    const q = await scriptedQueue(client, {
      on_failure_script: DLQ_ON_FIRST_EXPIRY,
      visibility_timeout_ms: 1000,
    }, "cr04");
    const id = await client.enqueue(q, { payload: "held" });
    const c = client.consume(q, 1);
    assert.equal((await c.expectNext(PROMPT_MS)).id, id);
    await waitStats(client, q, (s) => s.in_flight === 1, 1000, "the lease");
    // §1.4: the lease record may be committed just after the send; give it a moment.
    await sleep(200);
    await b.kill("SIGKILL");
    await sleep(2000); // "restarted 2 s later"
    await b.start();
    const client2 = b.client();
    const s = await client2.getStats(`${q}.dlq`);
    assert.equal(s.pending, 1, "the message is in the DLQ right after recovery");
    assert.equal((await client2.getStats(q)).depth, 0);
    const d = client2.consume(`${q}.dlq`);
    const m = await d.expectNext(PROMPT_MS);
    assert.equal(m.id, id);
    assert.equal(m.metadata!.attempt_count, 1);
    assert.equal(text(m.payload), "held");
  },
  P,
);

scenario(
  "CR-07 a delayed retry keeps its ready time across kill -9",
  async () => {
    const b = await broker();
    const client = b.client();
    const q = await scriptedQueue(client, { on_failure_script: retryAfter(3000) }, "cr07");
    const id = await client.enqueue(q, { payload: "x" });
    const c = client.consume(q, 1);
    assert.equal((await c.expectNext(PROMPT_MS)).id, id);
    const tSend = performance.now();
    await client.nack(q, id, "later");
    const tReply = performance.now();
    c.cancel();
    await sleep(Math.max(0, tReply + 1000 - performance.now())); // killed after 1 s
    await b.restart();
    const ready = performance.now();
    const client2 = b.client();
    assert.equal((await client2.getStats(q)).delayed, 1, "still delayed after the restart");
    const c2 = client2.consume(q, 1);
    const m = await c2.expectNext(
      Math.max(tReply + 3100, ready + 1000) + LATE_TOL_MS + 500 - performance.now(),
      "the delayed message",
    );
    const at = lastArrival(c2);
    assert.equal(m.id, id);
    assert.equal(m.metadata!.attempt_count, 1);
    assert.ok(
      at - tSend >= 3000 - EARLY_TOL_MS,
      `delivered ${(at - tSend).toFixed(0)} ms after the Nack (< 3 s)`,
    );
    const bound = Math.max(tReply + 3100, ready + 1000) + LATE_TOL_MS;
    assert.ok(
      at <= bound,
      `delivered ${(at - tReply).toFixed(0)} ms after the Nack reply, restart ready after ${
        (ready - tReply).toFixed(0)
      } ms`,
    );
  },
  P,
);

scenario(
  "CR-07 a delay that elapsed while the broker was down: pending right after recovery",
  async () => {
    const b = await broker();
    const client = b.client();
    const q = await scriptedQueue(client, { on_failure_script: retryAfter(500) }, "cr07b");
    const id = await client.enqueue(q, { payload: "x" });
    const c = client.consume(q, 1);
    assert.equal((await c.expectNext(PROMPT_MS)).id, id);
    await client.nack(q, id, "later");
    const tReply = performance.now();
    c.cancel();
    await b.kill("SIGKILL");
    await sleep(Math.max(0, tReply + 1000 - performance.now())); // ready time passes while down
    await b.start();
    const client2 = b.client();
    const s = await client2.getStats(q);
    assert.deepEqual([s.pending, s.delayed, s.depth], [1, 0, 1], "pending, delayed, depth");
    const c2 = client2.consume(q);
    const m = await c2.expectNext(PROMPT_MS);
    assert.equal(m.id, id);
    assert.equal(m.metadata!.attempt_count, 1);
  },
  P,
);
