import assert from "node:assert/strict";
import { ManualClock } from "../core/clock.ts";
import { CircuitBreaker } from "./breaker.ts";
import { enqueueInput, failureInput, onEnqueue, testEngine } from "./testing.ts";

Deno.test("CircuitBreaker trips after threshold consecutive failures", () => {
  const clock = new ManualClock();
  const breaker = new CircuitBreaker(3, 1000, clock);
  assert.equal(breaker.recordFailure(), false);
  assert.equal(breaker.recordFailure(), false);
  breaker.recordSuccess();
  assert.equal(breaker.recordFailure(), false);
  assert.equal(breaker.recordFailure(), false);
  assert.equal(breaker.allow(), true);
  assert.equal(breaker.recordFailure(), true);
  assert.equal(breaker.allow(), false);
  clock.advance(999);
  assert.equal(breaker.allow(), false);
  clock.advance(1);
  assert.equal(breaker.allow(), true);
  // Closed again with a fresh count: one failure does not reopen it.
  assert.equal(breaker.recordFailure(), false);
  assert.equal(breaker.allow(), true);
});

Deno.test("CircuitBreaker with threshold 0 never trips", () => {
  const breaker = new CircuitBreaker(0, 1000, new ManualClock());
  for (let i = 0; i < 100; i++) assert.equal(breaker.recordFailure(), false);
  assert.equal(breaker.allow(), true);
});

const SCRIPT = onEnqueue(
  `if fila.get("fail") == "1" then error("failing") end return { fairness_key = "ok" }`,
);

Deno.test("an open breaker bypasses the hook until the cooldown ends (LU-11)", async () => {
  const { engine, config, clock, events } = await testEngine({
    breakerThreshold: 3,
    breakerCooldownMs: 1000,
  });
  engine.install("q", SCRIPT);
  const key = () => engine.onEnqueue("q", enqueueInput())!.fairnessKey;
  config.set("fail", "1");
  assert.deepEqual([key(), key(), key()], ["default", "default", "default"]);
  assert.deepEqual(events.filter((e) => e.type === "breaker_tripped"), [
    { type: "breaker_tripped", queue: "q" },
  ]);
  config.delete("fail");
  const before = events.length;
  clock.advance(500);
  assert.equal(key(), "default");
  assert.equal(events.length, before, "a bypassed call is neither executed nor failed");
  clock.advance(600);
  assert.equal(key(), "ok");
});

Deno.test("after the cooldown it takes threshold new failures to trip again (LU-12)", async () => {
  const { engine, config, clock, events } = await testEngine({
    breakerThreshold: 3,
    breakerCooldownMs: 1000,
  });
  engine.install("q", SCRIPT);
  const key = () => engine.onEnqueue("q", enqueueInput())!.fairnessKey;
  config.set("fail", "1");
  key(), key(), key();
  clock.advance(1100);
  assert.deepEqual([key(), key()], ["default", "default"]);
  config.delete("fail");
  assert.equal(key(), "ok");
  config.set("fail", "1");
  key(), key(), key();
  config.delete("fail");
  assert.equal(key(), "default");
  assert.equal(events.filter((e) => e.type === "breaker_tripped").length, 2);
});

Deno.test("the breaker is per queue and shared by its two hooks (LU-13)", async () => {
  const { engine } = await testEngine({ breakerThreshold: 2, breakerCooldownMs: 1000 });
  engine.install("q1", {
    onEnqueue: `function on_enqueue() error("always") end`,
    onFailure: `function on_failure() return { action = "dlq" } end`,
  });
  engine.install("q2", onEnqueue(`return { fairness_key = "mine" }`));
  engine.onEnqueue("q1", enqueueInput("q1"));
  engine.onEnqueue("q1", enqueueInput("q1"));
  // q1's on_failure is bypassed too: an immediate retry instead of its "dlq".
  assert.deepEqual(engine.onFailure("q1", failureInput({ queue: "q1" })), {
    action: "retry",
    delayMs: 0,
  });
  assert.equal(engine.onEnqueue("q2", enqueueInput("q2"))!.fairnessKey, "mine");
});

Deno.test("reinstalling a queue gives it a closed breaker", async () => {
  const { engine } = await testEngine({ breakerThreshold: 1, breakerCooldownMs: 60_000 });
  engine.install("q", onEnqueue(`error("x")`));
  engine.onEnqueue("q", enqueueInput());
  engine.install("q", onEnqueue(`return { fairness_key = "ok" }`));
  assert.equal(engine.onEnqueue("q", enqueueInput())!.fairnessKey, "ok");
});
