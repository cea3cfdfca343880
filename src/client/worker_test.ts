import assert from "node:assert/strict";
import { Consumer, type Delivery } from "./consumer.ts";
import { NotFoundError } from "./errors.ts";
import { FakeTransport, settle } from "./testing.ts";
import { Worker } from "./worker.ts";

function deferred() {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

Deno.test("a returning handler acks, a throwing one nacks with the error message", async () => {
  const t = new FakeTransport();
  const w = new Worker(new Consumer(t, "q"), (msg: Delivery) => {
    if (msg.id === "bad") throw new Error("cannot parse");
    if (msg.id === "str") return Promise.reject("plain string");
  }, {});
  t.deliver("good", "bad", "str");
  await settle();
  assert.deepEqual(t.settled, [
    { kind: "ack", queue: "q", id: "good", error: undefined },
    { kind: "nack", queue: "q", id: "bad", error: "cannot parse" },
    { kind: "nack", queue: "q", id: "str", error: "plain string" },
  ]);
  assert.equal(w.acked, 1);
  assert.equal(w.nacked, 2);
  await w.stop();
  assert.equal(t.last.cancelled, true);
});

Deno.test("a handler that settled the message itself is not settled again", async () => {
  const t = new FakeTransport();
  const w = new Worker(new Consumer(t, "q"), async (msg: Delivery) => {
    await msg.nack("custom");
    throw new Error("ignored");
  }, {});
  t.deliver("m");
  await settle();
  assert.deepEqual(t.settled, [{ kind: "nack", queue: "q", id: "m", error: "custom" }]);
  await w.stop();
});

Deno.test("at most `concurrency` handlers run at once", async () => {
  const t = new FakeTransport();
  const gates = new Map<string, ReturnType<typeof deferred>>();
  let running = 0;
  let peak = 0;
  const w = new Worker(new Consumer(t, "q", { maxInFlight: 10 }), async (msg: Delivery) => {
    running++;
    peak = Math.max(peak, running);
    const g = deferred();
    gates.set(msg.id, g);
    await g.promise;
    running--;
  }, { concurrency: 2 });
  t.deliver("1", "2", "3", "4", "5");
  await settle();
  assert.deepEqual([...gates.keys()], ["1", "2"]);
  gates.get("1")!.resolve();
  await settle();
  assert.deepEqual([...gates.keys()], ["1", "2", "3"]);
  for (const id of ["2", "3"]) gates.get(id)!.resolve();
  await settle();
  for (const id of ["4", "5"]) gates.get(id)!.resolve();
  await settle();
  assert.equal(peak, 2);
  assert.equal(w.acked, 5);
  await w.stop();
});

Deno.test("stop lets the running handler finish and settle before the stream closes", async () => {
  const t = new FakeTransport();
  const gate = deferred();
  const w = new Worker(new Consumer(t, "q"), () => gate.promise, {});
  t.deliver("m");
  await settle();
  let stopped = false;
  const s = w.stop().then(() => stopped = true);
  await settle();
  assert.equal(stopped, false);
  assert.equal(t.last.cancelled, false, "the lease is still needed for the ack");
  gate.resolve();
  await s;
  assert.deepEqual(t.settled.map((x) => x.kind), ["ack"]);
  assert.equal(t.last.cancelled, true);
});

Deno.test("an unrecoverable stream error rejects done and reaches onError", async () => {
  const t = new FakeTransport();
  const errors: unknown[] = [];
  const w = new Worker(new Consumer(t, "gone"), () => {}, { onError: (e) => errors.push(e) });
  t.last.end(5, 'queue "gone" was deleted');
  await assert.rejects(w.done, NotFoundError);
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof NotFoundError);
});

Deno.test("a failing ack is reported to onError with its message", async () => {
  const t = new FakeTransport();
  t.settleResult = () => Promise.reject(new NotFoundError("no lease"));
  const errors: [unknown, Delivery | undefined][] = [];
  const w = new Worker(new Consumer(t, "q"), () => {}, {
    onError: (e, m) => errors.push([e, m]),
  });
  t.deliver("m");
  await settle();
  assert.equal(errors.length, 1);
  assert.ok(errors[0][0] instanceof NotFoundError);
  assert.equal(errors[0][1]?.id, "m");
  assert.equal(w.acked, 0);
  await w.stop();
});
