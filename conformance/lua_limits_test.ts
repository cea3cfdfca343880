// conformance.md §19 bad input through Lua hooks: BI-06 (looping, allocating, failing and
// garbage-returning hooks), BI-07 (a script growing its global state), BI-08 (SHOULD: a
// pathological pattern is cut by the wall-clock limit), BI-12 (a 1 MiB Nack error text reaches
// on_failure). All on the file's shared broker with default [lua] limits.
import assert from "node:assert/strict";
import { assertStatus, FilaClient, grpc } from "./client.ts";
import { LATE_TOL_MS, PROMPT_MS, scenario, sharedBroker, text } from "./harness.ts";
import {
  assertDefaults,
  drain,
  onEnqueue,
  onFailure,
  percentile,
  scriptedQueue,
  statsProbe,
  timed,
} from "./lua_helpers.ts";

/** "within 1 s" / "within 200 ms" of conformance.md, with §0's +300 ms tolerance. */
const HOOK_BOUND_MS = 1000 + LATE_TOL_MS;
const STATS_BOUND_MS = 200 + LATE_TOL_MS;

const BAD_BODIES: Array<[string, string]> = [
  ["endless loop", "while true do end"],
  ["unbounded allocation", 'local t = {}\nwhile true do t[#t + 1] = string.rep("x", 1024) end'],
  ["error", 'error("bad script")'],
  ["returns 42", "return 42"],
  ["returns { fairness_key = {} }", "return { fairness_key = {} }"],
  ['returns { weight = "x" }', 'return { weight = "x" }'],
];

function fmt(xs: number[]): string {
  return `max ${Math.max(...xs).toFixed(1)} ms, p50 ${
    percentile(xs, 50).toFixed(1)
  } ms, n ${xs.length}`;
}

scenario(
  "BI-06 looping, allocating, failing or garbage hooks: defaults / immediate retry, broker responsive",
  async () => {
    const { client, addr } = await sharedBroker();
    const observer = new FilaClient(addr);
    const watched = await scriptedQueue(client, {}, "bi06-watch");
    const probe = statsProbe(observer, watched);
    const slow: string[] = [];
    try {
      for (const [what, body] of BAD_BODIES) {
        // on_enqueue: three calls (the breaker trips only after the third failure).
        const qe = await scriptedQueue(client, { on_enqueue_script: onEnqueue(body) }, "bi06e");
        for (let i = 0; i < 3; i++) {
          const r = await timed(() => client.enqueue(qe, { payload: `${i}` }));
          if (r.ms > HOOK_BOUND_MS) slow.push(`on_enqueue ${what}: Enqueue ${r.ms.toFixed(0)} ms`);
        }
        for (const m of await drain(client, qe, 3)) assertDefaults(m.metadata!, what);

        // on_failure: three Nacks of one message, each an immediate retry in the same queue.
        const qf = await scriptedQueue(client, { on_failure_script: onFailure(body) }, "bi06f");
        const id = await client.enqueue(qf, { payload: "x" });
        const c = client.consume(qf, 1);
        for (let a = 0; a < 3; a++) {
          const m = await c.expectNext(PROMPT_MS, `${what}: delivery ${a}`);
          assert.equal(m.id, id);
          assert.equal(m.metadata!.attempt_count, a, `${what}: attempt_count`);
          assert.equal(m.metadata!.queue_id, qf, `${what}: queue_id`);
          const r = await timed(() => client.nack(qf, id, "fail"));
          if (r.ms > HOOK_BOUND_MS) slow.push(`on_failure ${what}: Nack ${r.ms.toFixed(0)} ms`);
        }
        const last = await c.expectNext(PROMPT_MS, `${what}: retry after the third Nack`);
        assert.equal(last.metadata!.attempt_count, 3);
        await client.ack(qf, id);
        c.cancel();
        assert.equal((await client.getStats(`${qf}.dlq`)).depth, 0, `${what}: DLQ empty`);
      }
    } finally {
      const lat = await probe.stop();
      assert.deepEqual(slow, [], "hook calls slower than 1 s");
      assert.ok(
        Math.max(...lat) <= STATS_BOUND_MS,
        `GetStats from another client during the hooks: ${fmt(lat)}`,
      );
    }
  },
);

scenario(
  "BI-07 a script appending 512 KiB to a global table per call: 100 Enqueues succeed",
  async () => {
    const { client, addr } = await sharedBroker();
    const observer = new FilaClient(addr);
    const q = await scriptedQueue(client, {
      on_enqueue_script: onEnqueue(`big = big or {}
        big[#big + 1] = string.rep("x", 512 * 1024)
        return { fairness_key = "n" .. #big }`),
    }, "bi07");
    const probe = statsProbe(observer, q);
    const times: number[] = [];
    for (let i = 0; i < 100; i++) {
      times.push((await timed(() => client.enqueue(q, { payload: `${i}` }))).ms);
    }
    const lat = await probe.stop();
    assert.equal((await client.getStats(q)).depth, 100, "all 100 messages stored");
    assert.ok(Math.max(...times) <= HOOK_BOUND_MS, `Enqueue latencies: ${fmt(times)}`);
    assert.ok(Math.max(...lat) <= STATS_BOUND_MS, `GetStats latencies: ${fmt(lat)}`);
    // The state is reset when it outgrows 4 × 1 MiB: the counter never gets far.
    const keys = (await drain(client, q, 100)).map((m) => m.metadata!.fairness_key);
    const counts = keys.filter((k) => k !== "default").map((k) => Number(k.slice(1)));
    assert.ok(
      counts.every((n) => n <= 8),
      `state reset by size: the global table reached ${Math.max(...counts)} entries`,
    );
  },
);

scenario(
  "BI-08 (SHOULD) a pathological pattern is cut off: Enqueue within 2 s with the defaults",
  async () => {
    const { client } = await sharedBroker();
    const q = await scriptedQueue(client, {
      on_enqueue_script: onEnqueue(`string.find(string.rep("a", 300), ".-.-.-b")
        return { fairness_key = "finished" }`),
    }, "bi08");
    const r = await timed(() => client.enqueue(q, { payload: "x" }));
    assert.ok(r.ms <= 2000 + LATE_TOL_MS, `Enqueue took ${r.ms.toFixed(0)} ms`);
    const [m] = await drain(client, q, 1);
    assertDefaults(m.metadata!);
  },
);

scenario("BI-12 a 1 MiB Nack error text reaches on_failure in full", async () => {
  const { client } = await sharedBroker();
  const q = await scriptedQueue(client, {
    on_failure_script: onFailure(`if #msg.error == 1048576 and msg.error:sub(1, 5) == "start"
        and msg.error:sub(-3) == "end" then
        return { action = "dlq" }
      end
      return { action = "retry" }`),
  }, "bi12");
  const id = await client.enqueue(q, { payload: "x" });
  const c = client.consume(q, 1);
  assert.equal((await c.expectNext(PROMPT_MS)).id, id);
  const error = "start" + "e".repeat(1048576 - 8) + "end";
  await client.nack(q, id, error);
  const d = client.consume(`${q}.dlq`);
  const m = await d.expectNext(PROMPT_MS, "the message in the DLQ (on_failure saw 1 MiB)");
  assert.equal(m.id, id);
  assert.equal(text(m.payload), "x");
  await c.expectNothing(200, "no retry");
});

scenario(
  "BI-03 the delivered-size limit counts on_enqueue's outputs (17,000 throttle keys of 255 bytes)",
  async () => {
    const { client } = await sharedBroker();
    const q = await scriptedQueue(client, {
      on_enqueue_script: onEnqueue(`local s = string.rep("t", 255)
        local t = {}
        for i = 1, tonumber(msg.headers.n) do t[i] = s end
        return { throttle_keys = t }`),
    }, "bi03");
    await assertStatus(
      client.enqueue(q, { headers: { n: "17000" }, payload: "x" }),
      grpc.status.INVALID_ARGUMENT,
      /^message too large: \d+ bytes encoded, the limit is 4193280 bytes$/,
    );
    assert.equal((await client.getStats(q)).depth, 0, "nothing stored");
    const id = await client.enqueue(q, { headers: { n: "100" }, payload: "x" });
    const [m] = await drain(client, q, 1);
    assert.equal(m.id, id);
    assert.equal(m.metadata!.throttle_keys.length, 100);
  },
);
