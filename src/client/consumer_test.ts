import assert from "node:assert/strict";
import { Consumer, type ReconnectInfo } from "./consumer.ts";
import { NotFoundError, UnavailableError } from "./errors.ts";
import { FakeTransport, settle, wireMessage } from "./testing.ts";

const UNAVAILABLE = 14;
const NOT_FOUND = 5;

async function nextId(c: Consumer): Promise<string> {
  const r = await c.next();
  assert.ok(!r.done, "expected a delivery");
  return r.value.id;
}

Deno.test("request fields, delivery fields and both stream item forms", async () => {
  const t = new FakeTransport();
  const c = new Consumer(t, "q", { maxInFlight: 10 });
  assert.deepEqual(t.last.request, { queue: "q", max_unacked: 10, max_batch_size: 10 });
  const other = new FakeTransport();
  assert.equal(new Consumer(other, "q", { maxInFlight: 1 }).batchSize, 0);
  assert.equal(new Consumer(other, "q", { maxInFlight: 500 }).batchSize, 64);
  assert.equal(new Consumer(other, "q", { maxInFlight: 500, batchSize: 0 }).batchSize, 0);
  assert.throws(() => new Consumer(other, "q", { maxInFlight: 0 }), RangeError);

  t.last.data({ message: wireMessage("a", 2), messages: [] });
  t.last.data({ message: null, messages: [wireMessage("b"), wireMessage("c")] });
  const a = (await c.next()).value!;
  assert.equal(a.id, "a");
  assert.equal(a.queue, "q");
  assert.equal(a.text(), "payload-a");
  assert.deepEqual(a.headers, { h: "v" });
  assert.equal(a.attemptCount, 2);
  assert.equal(a.fairnessKey, "default");
  assert.equal(a.weight, 1);
  assert.deepEqual([await nextId(c), await nextId(c)], ["b", "c"]);
  assert.equal(c.buffered, 0);
  await c.close();
});

Deno.test("a waiting next() is woken by the next delivery", async () => {
  const t = new FakeTransport();
  const c = new Consumer(t, "q");
  const p = c.next();
  t.deliver("late");
  assert.equal((await p).value!.id, "late");
  await c.close();
});

Deno.test("ack and nack settle once through the transport with the consumer's queue", async () => {
  const t = new FakeTransport();
  const c = new Consumer(t, "q");
  t.deliver("a", "b");
  const a = (await c.next()).value!;
  const b = (await c.next()).value!;
  const p1 = a.ack();
  assert.equal(a.ack(), p1, "a second ack returns the first promise");
  await assert.rejects(a.nack("x"), /already acked/);
  await b.nack(new Error("boom"));
  assert.ok(a.settled && b.settled);
  assert.deepEqual(t.settled, [
    { kind: "ack", queue: "q", id: "a", error: undefined },
    { kind: "nack", queue: "q", id: "b", error: "boom" },
  ]);
  await c.close();
});

Deno.test("a failed stream is reopened after a back-off; unyielded messages are dropped", async () => {
  const t = new FakeTransport();
  const infos: ReconnectInfo[] = [];
  const c = new Consumer(t, "q", {
    reconnect: { initialMs: 100, jitter: 0 },
    onReconnect: (i) => infos.push(i),
  });
  t.deliver("a", "b", "c");
  assert.equal(await nextId(c), "a");
  t.last.end(UNAVAILABLE, "Connection dropped");
  assert.equal(c.buffered, 0, "b and c will be redelivered by the broker");
  assert.equal(infos.length, 1);
  assert.equal(infos[0].attempt, 1);
  assert.equal(infos[0].delayMs, 100);
  assert.ok(infos[0].error instanceof UnavailableError);
  const waiting = c.next();
  await t.clock.advance(99);
  assert.equal(t.streams.length, 1, "not before the back-off");
  await t.clock.advance(1);
  assert.equal(t.streams.length, 2);
  // A second failure without data backs off longer.
  t.last.end(UNAVAILABLE, "");
  assert.equal(infos[1].delayMs, 200);
  await t.clock.advance(200);
  assert.equal(t.streams.length, 3);
  t.deliver("b");
  assert.equal((await waiting).value!.id, "b");
  // Data proved the stream healthy: the back-off starts over.
  t.last.end(UNAVAILABLE, "");
  assert.equal(infos[2].delayMs, 100);
  // Events of a replaced stream are ignored.
  t.streams[0].data({ message: wireMessage("ghost"), messages: [] });
  assert.equal(c.buffered, 0);
  await c.close();
  assert.equal(t.clock.pendingTimers, 0, "closing cancels the pending reconnect");
});

Deno.test("errors that retrying cannot fix end the iteration with a typed error", async () => {
  const t = new FakeTransport();
  const c = new Consumer(t, "gone");
  const p = c.next();
  t.last.end(NOT_FOUND, 'queue "gone" was deleted');
  await assert.rejects(p, (e) => e instanceof NotFoundError && e.message.includes("deleted"));
  assert.deepEqual(await c.next(), { value: undefined, done: true });
  assert.equal(t.streams.length, 1);

  // The error is kept for the next call when nobody is waiting.
  const t2 = new FakeTransport();
  const c2 = new Consumer(t2, "nope");
  t2.last.end(NOT_FOUND, 'queue "nope" not found');
  await assert.rejects(c2.next(), NotFoundError);
  assert.deepEqual(await c2.next(), { value: undefined, done: true });
});

Deno.test("reconnect: false and maxAttempts surface transport errors", async () => {
  const t = new FakeTransport();
  const c = new Consumer(t, "q", { reconnect: false });
  t.last.end(UNAVAILABLE, "down");
  await assert.rejects(c.next(), UnavailableError);

  const t2 = new FakeTransport();
  const c2 = new Consumer(t2, "q", { reconnect: { maxAttempts: 1, initialMs: 10, jitter: 0 } });
  t2.last.end(UNAVAILABLE, "down");
  await t2.clock.advance(10);
  t2.last.end(UNAVAILABLE, "still down");
  await assert.rejects(c2.next(), /still down/);
});

Deno.test("close waits for issued acks before cancelling the stream", async () => {
  const t = new FakeTransport();
  let release!: () => void;
  t.settleResult = () => new Promise((r) => release = r);
  const c = new Consumer(t, "q");
  t.deliver("a");
  const a = (await c.next()).value!;
  const acked = a.ack();
  const pendingNext = c.next();
  const closed = c.close();
  await settle();
  assert.deepEqual(await pendingNext, { value: undefined, done: true });
  assert.equal(t.last.cancelled, false, "the lease must still be held while the ack is sent");
  release();
  await acked;
  await closed;
  assert.equal(t.last.cancelled, true);
  assert.deepEqual(await c.next(), { value: undefined, done: true });
});

Deno.test("leaving a for-await loop closes the consumer; an aborted signal too", async () => {
  const t = new FakeTransport();
  const c = new Consumer(t, "q");
  t.deliver("a", "b");
  for await (const d of c) {
    await d.ack();
    break;
  }
  assert.ok(c.closed);
  assert.equal(t.last.cancelled, true);

  const ac = new AbortController();
  const t2 = new FakeTransport();
  const c2 = new Consumer(t2, "q", { signal: ac.signal });
  const p = c2.next();
  ac.abort();
  assert.deepEqual(await p, { value: undefined, done: true });
  await settle();
  assert.equal(t2.last.cancelled, true);
});
