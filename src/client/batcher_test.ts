import assert from "node:assert/strict";
import { Batcher, type Outcome, utf8Length } from "./batcher.ts";
import { FakeClock, settle } from "./testing.ts";

/** A batcher whose sends the test answers by hand. */
function harness(opts: { lingerMs?: number; maxItems?: number; maxBytes?: number } = {}) {
  const clock = new FakeClock();
  const sends: { items: string[]; answer(o: Outcome<string>[]): void; fail(e: Error): void }[] = [];
  const batcher = new Batcher<string, string>(
    (items) =>
      new Promise((resolve, reject) => {
        sends.push({ items, answer: resolve, fail: reject });
      }),
    {
      lingerMs: opts.lingerMs ?? 1,
      maxItems: opts.maxItems ?? 100,
      maxBytes: opts.maxBytes ?? 1000,
      sizeOf: (s) => s.length,
      timers: clock,
    },
  );
  const echo = (i: number) => sends[i].answer(sends[i].items.map((v) => ({ ok: true, value: v })));
  return { clock, sends, batcher, echo };
}

Deno.test("idle: calls of one tick go out together at its end, with no timer", async () => {
  const { clock, sends, batcher, echo } = harness();
  const ps = ["a", "b", "c"].map((x) => batcher.submit(x));
  assert.equal(sends.length, 0, "nothing is sent synchronously");
  await settle();
  assert.deepEqual(sends.map((s) => s.items), [["a", "b", "c"]]);
  assert.equal(clock.pendingTimers, 0);
  echo(0);
  assert.deepEqual(await Promise.all(ps), ["a", "b", "c"]);
});

Deno.test("under load: items wait for the linger, then share one batch", async () => {
  const { clock, sends, batcher, echo } = harness({ lingerMs: 1 });
  const first = batcher.submit("a");
  await settle();
  assert.equal(sends.length, 1);
  const later = [batcher.submit("b")];
  await clock.advance(0.5);
  later.push(batcher.submit("c"));
  await settle();
  assert.equal(sends.length, 1, "held back while the first batch is in flight");
  await clock.advance(0.5);
  assert.deepEqual(sends.map((s) => s.items), [["a"], ["b", "c"]], "sent when the linger ends");
  echo(1);
  echo(0);
  assert.deepEqual(await Promise.all([first, ...later]), ["a", "b", "c"]);
  // Idle again: the next call goes out at the end of its tick.
  const again = batcher.submit("d");
  await settle();
  assert.deepEqual(sends[2].items, ["d"]);
  echo(2);
  assert.equal(await again, "d");
});

Deno.test("a sequential caller resumed by its answer finds the batcher idle", async () => {
  const { clock, sends, batcher, echo } = harness({ lingerMs: 5 });
  const first = batcher.submit("a").then(() => batcher.submit("b"));
  await settle();
  echo(0);
  await settle();
  assert.deepEqual(sends.map((s) => s.items), [["a"], ["b"]], "no linger for the next call");
  assert.equal(clock.pendingTimers, 0);
  echo(1);
  assert.equal(await first, "b");
});

Deno.test("a full batch is sent at once, without waiting for the linger", async () => {
  const { clock, sends, batcher } = harness({ lingerMs: 50, maxItems: 3 });
  batcher.submit("busy");
  await settle();
  for (const x of ["a", "b", "c", "d"]) batcher.submit(x);
  assert.deepEqual(sends.map((s) => s.items), [["busy"], ["a", "b", "c"]]);
  await clock.advance(49);
  assert.equal(sends.length, 2);
  await clock.advance(1);
  assert.deepEqual(sends[2].items, ["d"]);
});

Deno.test("maxBytes splits batches and an oversized item travels alone", async () => {
  const { clock, sends, batcher } = harness({ maxBytes: 10 });
  batcher.submit("aaaa");
  batcher.submit("bbbb");
  batcher.submit("cccc"); // would make 12 bytes: the first two go out first
  batcher.submit("x".repeat(25));
  batcher.submit("d");
  await clock.advance(1); // batches are in flight, so "d" waits for the linger
  assert.deepEqual(sends.map((s) => s.items), [
    ["aaaa", "bbbb"],
    ["cccc"],
    ["x".repeat(25)],
    ["d"],
  ]);
});

Deno.test("each caller gets its own result or error; a failed request fails its items", async () => {
  const { sends, batcher } = harness();
  const ok = batcher.submit("ok");
  const bad = batcher.submit("bad");
  await settle();
  sends[0].answer([{ ok: true, value: "id-1" }, { ok: false, error: new Error("item failed") }]);
  assert.equal(await ok, "id-1");
  await assert.rejects(bad, /item failed/);

  const x = batcher.submit("x");
  const y = batcher.submit("y");
  await settle();
  sends[1].fail(new Error("connection lost"));
  await assert.rejects(x, /connection lost/);
  await assert.rejects(y, /connection lost/);

  const z = batcher.submit("z");
  await settle();
  sends[2].answer([]);
  await assert.rejects(z, /0 results for 1/);
});

Deno.test("flush sends pending items now and waits for every answer", async () => {
  const { clock, sends, batcher, echo } = harness({ lingerMs: 100 });
  batcher.submit("a");
  await settle();
  const b = batcher.submit("b");
  assert.equal(batcher.pending, 1);
  let flushed = false;
  const f = batcher.flush().then(() => flushed = true);
  assert.deepEqual(sends.map((s) => s.items), [["a"], ["b"]]);
  assert.equal(clock.pendingTimers, 0, "the linger timer is cancelled");
  echo(1);
  await settle();
  assert.equal(flushed, false, "still waiting for the first batch");
  echo(0);
  await f;
  assert.equal(await b, "b");
  assert.equal(batcher.inFlight, 0);
});

Deno.test("lingerMs 0 never waits for a timer", async () => {
  const { clock, sends, batcher } = harness({ lingerMs: 0 });
  batcher.submit("a");
  await settle();
  batcher.submit("b");
  batcher.submit("c");
  await settle();
  assert.deepEqual(sends.map((s) => s.items), [["a"], ["b", "c"]]);
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("utf8Length counts encoded bytes", () => {
  for (const s of ["", "abc", "é", "€", "😀", "a😀é€", "\ud800"]) {
    assert.equal(utf8Length(s), new TextEncoder().encode(s).length, JSON.stringify(s));
  }
});
