// conformance.md §5 Crash recovery (CR-01, 02, 03, 05, 08, 09, 10) and the crash-recovery
// acceptance test. Every scenario here needs process control, so all are skipped with FILA_ADDR.
// Not here: CR-04 (on_failure script), CR-06 (throttles, API keys, scripts), CR-07 (delayed retry).
import assert from "node:assert/strict";
import { assertStreamStatus, grpc } from "./client.ts";
import {
  type Broker,
  fileBroker,
  LATE_TOL_MS,
  PROMPT_MS,
  scenario,
  sleep,
  startBroker,
  uniq,
  waitConsumers,
  waitStats,
} from "./harness.ts";

const P = { needsProcess: true };

/** The file's broker, restarted by the scenarios (SIGKILL = "restart" of conformance.md §0). */
function broker(): Promise<Broker> {
  return fileBroker("recovery");
}

scenario("CR-01 enqueued messages survive kill -9", async () => {
  const b = await broker();
  const client = b.client();
  const q = uniq("cr01");
  await client.createQueue(q);
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(await client.enqueue(q, { payload: `m${i}` }));
  await b.restart();
  const c2 = b.client();
  const c = c2.consume(q);
  const got = await c.take(5, PROMPT_MS);
  assert.deepEqual(got.map((m) => m.id).sort(), [...ids].sort());
  c.cancel();
}, P);

scenario("CR-02 after a restart messages of one key are delivered in enqueue order", async () => {
  const b = await broker();
  const client = b.client();
  const q = uniq("cr02");
  await client.createQueue(q);
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) ids.push(await client.enqueue(q, { payload: `m${i}` }));
  await b.restart();
  const c = b.client().consume(q);
  const got = await c.take(10, PROMPT_MS);
  assert.deepEqual(got.map((m) => m.id), ids);
  c.cancel();
}, P);

scenario("CR-03 an acked message is never delivered after a restart", async () => {
  const b = await broker();
  const client = b.client();
  const q = uniq("cr03");
  await client.createQueue(q);
  const acked = await client.enqueue(q, { payload: "acked" });
  const c = client.consume(q);
  await c.expectNext(PROMPT_MS);
  await client.ack(q, acked);
  c.cancel();
  const kept = await client.enqueue(q, { payload: "kept" });
  await b.restart();
  const client2 = b.client();
  const s = await client2.getStats(q);
  assert.equal(s.depth, 1);
  const c2 = client2.consume(q);
  const m = await c2.expectNext(PROMPT_MS);
  assert.equal(m.id, kept);
  await c2.expectNothing(1000, "the acked message is not delivered");
  c2.cancel();
}, P);

scenario(
  "CR-05 a lease held at kill time stays in flight after the restart and can be acked",
  async () => {
    const b = await broker();
    const client = b.client();
    const q = uniq("cr05");
    await client.createQueue(q, { visibility_timeout_ms: 30000 });
    const id = await client.enqueue(q, { payload: "M" });
    const c = client.consume(q);
    await c.expectNext(PROMPT_MS);
    await waitStats(client, q, (s) => s.in_flight === 1, 1000, "the lease");
    // §1.4: the lease record may be committed just after the send; give it a moment.
    await sleep(200);
    await b.restart();
    const client2 = b.client();
    const c2 = client2.consume(q);
    await c2.expectNothing(3000, "no delivery of the leased message within 3 s");
    const s = await client2.getStats(q);
    assert.equal(s.in_flight, 1);
    await client2.ack(q, id);
    assert.equal((await client2.getStats(q)).depth, 0);
    c2.cancel();
  },
  P,
);

async function shutdownCase(signal: Deno.Signal, withStreams: boolean) {
  await using b = await startBroker();
  const client = b.client();
  const streams = [];
  if (withStreams) {
    await client.createQueue("sd");
    await client.enqueue("sd", { payload: "held" });
    streams.push(client.consume("sd"), client.consume("sd"));
    await waitConsumers(client, "sd", 2);
  } else {
    client.close();
  }
  const t0 = performance.now();
  const code = await b.stop(signal, 15_000);
  const dt = performance.now() - t0;
  assert.equal(code, 0, `exit status after ${signal}`);
  const bound = withStreams ? 10_000 : 1000;
  assert.ok(dt <= bound + LATE_TOL_MS, `exited ${dt.toFixed(0)} ms after ${signal} (> ${bound})`);
  for (const s of streams) {
    const st = await s.waitEnd(2000);
    assertStreamStatus(st, grpc.status.UNAVAILABLE, "broker is shutting down");
  }
}

scenario("CR-08 SIGTERM on an idle broker exits 0 within 1 s", async () => {
  await shutdownCase("SIGTERM", false);
}, P);

scenario("CR-08 SIGTERM ends open streams with UNAVAILABLE and exits 0 within 10 s", async () => {
  await shutdownCase("SIGTERM", true);
}, P);

scenario("CR-08 SIGINT on an idle broker exits 0 within 1 s", async () => {
  await shutdownCase("SIGINT", false);
}, P);

scenario("CR-08 SIGINT ends open streams with UNAVAILABLE and exits 0 within 10 s", async () => {
  await shutdownCase("SIGINT", true);
}, P);

scenario("CR-09 a deleted queue's messages do not reappear after a restart", async () => {
  const b = await broker();
  const client = b.client();
  const q = uniq("cr09");
  await client.createQueue(q);
  await client.enqueueMany(q, 100);
  await client.deleteQueue(q);
  await b.restart();
  const client2 = b.client();
  await client2.createQueue(q);
  const s = await client2.getStats(q);
  assert.equal(s.depth, 0);
  const c = client2.consume(q);
  await c.expectNothing(2000, "nothing from the deleted queue");
  c.cancel();
}, P);

scenario("CR-10 a committed Nack survives a restart (attempt_count 1)", async () => {
  const b = await broker();
  const client = b.client();
  const q = uniq("cr10");
  await client.createQueue(q);
  const id = await client.enqueue(q, { payload: "M" });
  // P keeps the consumer's single credit busy after the Nack, so M stays pending at the kill.
  const pId = await client.enqueue(q, { payload: "P" });
  const c = client.consume(q, 1);
  assert.equal((await c.expectNext(PROMPT_MS)).id, id);
  await client.nack(q, id, "retry");
  assert.equal((await c.expectNext(PROMPT_MS)).id, pId);
  await b.restart();
  const c2 = b.client().consume(q);
  const m = await c2.expectNext(PROMPT_MS);
  assert.equal(m.id, id);
  assert.equal(m.metadata!.attempt_count, 1);
  c2.cancel();
}, P);

scenario(
  "CR-ACCEPTANCE kill -9 with hundreds of acked, in-flight and pending messages loses nothing",
  async () => {
    const b = await broker();
    const client = b.client();
    const q = uniq("cr-accept");
    const N = 300;
    await client.createQueue(q, { visibility_timeout_ms: 120_000 });
    const ids = await client.enqueueMany(q, 3 * N, (i) => ({ payload: `m${i}` }));
    const c = client.consume(q, N);
    // First N deliveries: ack them all (acked set). Their credit brings the next N (in-flight set).
    const first = await c.take(N, 10_000);
    await Promise.all(first.map((m) => client.ack(q, m.id)));
    const second = await c.take(N, 10_000);
    await waitStats(
      client,
      q,
      (s) => s.in_flight === N && s.pending === N,
      5000,
      "in_flight = N and pending = N",
    );
    // §1.4 allows the lease record to trail the send slightly; let the last leases commit.
    await sleep(300);
    const acked = new Set(first.map((m) => m.id));
    const inFlight = new Set(second.map((m) => m.id));
    const pending = new Set(ids.filter((id) => !acked.has(id) && !inFlight.has(id)));
    assert.equal(pending.size, N);

    await b.restart();
    const client2 = b.client();
    const s = await client2.getStats(q);
    assert.equal(s.in_flight, N, "in-flight messages are still leased");
    assert.equal(s.pending, N, "pending messages are still pending");
    assert.equal(s.depth, 2 * N, "nothing acknowledged is lost, nothing acked is back");

    const c2 = client2.consume(q, 2 * N);
    const got = await c2.take(N, 10_000);
    await c2.expectNothing(500, "only the pending messages are delivered");
    for (const m of got) {
      assert.ok(!acked.has(m.id), `acked message ${m.id} delivered again`);
      assert.ok(!inFlight.has(m.id), `still-leased message ${m.id} delivered again`);
      assert.ok(pending.has(m.id));
      assert.equal(m.metadata!.attempt_count, 0);
    }
    assert.equal(new Set(got.map((m) => m.id)).size, N);
    // The in-flight ones are ackable after the restart.
    await Promise.all([...inFlight].map((id) => client2.ack(q, id)));
    await Promise.all(got.map((m) => client2.ack(q, m.id)));
    const end = await client2.getStats(q);
    assert.equal(end.depth, 0);
    c2.cancel();
  },
  { ...P, timeoutMs: 120_000 },
);

scenario(
  "with storage.payload_cache_mb = 0 every payload is read back from storage, before and after kill -9",
  async () => {
    const b = await fileBroker("payload-cache-0", { toml: "[storage]\npayload_cache_mb = 0\n" });
    const client = b.client();
    const q = uniq("pc0");
    // Leases held at the crash expire a second after the restart and are delivered again.
    await client.createQueue(q, { visibility_timeout_ms: 1000 });
    // Distinct bytes per message, sizes from empty to chunked (over 60 KiB).
    const sizes = [
      0,
      1,
      1000,
      70_000,
      5000,
      200_000,
      ...Array.from({ length: 40 }, (_, i) => i * 97),
    ];
    const want = new Map<string, Uint8Array>();
    for (const [i, size] of sizes.entries()) {
      const payload = new Uint8Array(size).map((_, j) => (i * 31 + j * 7) & 0xff);
      want.set(await client.enqueue(q, { payload }), payload);
    }
    const check = (got: { id: string; payload: Uint8Array }[]) => {
      for (const m of got) {
        assert.deepEqual(new Uint8Array(m.payload), want.get(m.id), `payload of ${m.id}`);
      }
    };
    // 20 consumed and acked before the crash; the rest (all leased by then) after it.
    const c = client.consume(q);
    const first = await c.take(23, PROMPT_MS);
    check(first);
    for (const m of first.slice(0, 20)) await client.ack(q, m.id);
    await b.restart();
    const client2 = b.client();
    const c2 = client2.consume(q);
    const rest = await c2.take(sizes.length - 20, PROMPT_MS * 4);
    check(rest);
    assert.deepEqual(
      [...first.slice(0, 20), ...rest].map((m) => m.id).sort(),
      [...want.keys()].sort(),
    );
    c2.cancel();
  },
  P,
);
