import assert from "node:assert/strict";
import { TimerHeap } from "./timers.ts";
import { ManualClock } from "../core/clock.ts";

Deno.test("TimerHeap fires due events in due order and keeps later ones", () => {
  const clock = new ManualClock(1000);
  const fired: string[] = [];
  const timers = new TimerHeap<string>(() => clock.now(), (v) => fired.push(v));
  try {
    timers.schedule(1300, "c");
    timers.schedule(1100, "a");
    timers.schedule(1200, "b");
    timers.schedule(1100, "a2");
    timers.schedule(Infinity, "never");
    clock.set(1200);
    timers.fireDue();
    assert.deepEqual(fired, ["a", "a2", "b"]);
    assert.equal(timers.size, 1);
  } finally {
    timers.stop();
  }
});

Deno.test("TimerHeap arms a real timer for the earliest due time", async () => {
  const start = Date.now();
  let firedAt = 0;
  const timers = new TimerHeap<number>(Date.now, () => firedAt = Date.now());
  timers.schedule(start + 30, 1);
  await new Promise((r) => setTimeout(r, 80));
  timers.stop();
  assert.ok(firedAt >= start + 30 && firedAt < start + 80, `fired after ${firedAt - start} ms`);
});
