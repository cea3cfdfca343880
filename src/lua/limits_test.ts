import assert from "node:assert/strict";
import { enqueueInput, failureInput, onEnqueue, onFailure, testEngine } from "./testing.ts";

const DEFAULTS = { fairnessKey: "default", weight: 1, throttleKeys: [] };

function timed<T>(fn: () => T): [T, number] {
  const started = performance.now();
  const result = fn();
  return [result, performance.now() - started];
}

Deno.test("an endless loop hits the instruction budget quickly; the state stays usable (LU-08)", async () => {
  const { engine, failures } = await testEngine({ breakerThreshold: 0 });
  engine.install(
    "q",
    onEnqueue(`
      if msg.headers.loop then while true do end end
      n = (n or 0) + 1
      return { weight = n }`),
  );
  engine.install("other", onEnqueue(`return { fairness_key = "other" }`));
  assert.equal(engine.onEnqueue("q", enqueueInput())!.weight, 1);
  const [looped, ms] = timed(() => engine.onEnqueue("q", enqueueInput("q", { loop: "1" })));
  assert.deepEqual(looped, DEFAULTS);
  assert.ok(ms < 500, `took ${ms} ms`);
  assert.equal(engine.onEnqueue("other", enqueueInput("other"))!.fairnessKey, "other");
  assert.equal(engine.onEnqueue("q", enqueueInput())!.weight, 2);
  assert.deepEqual(failures(), ["instruction limit exceeded"]);
});

Deno.test("the budget covers top-level code, is timeoutMs × 10,000 and restarts every call", async () => {
  const { engine, failures } = await testEngine({ timeoutMs: 1, breakerThreshold: 0 });
  engine.install("q", { onEnqueue: "while true do end", onFailure: "" });
  engine.onEnqueue("q", enqueueInput());
  assert.deepEqual(failures(), ["instruction limit exceeded"]);

  // A numeric for loop costs about one instruction per iteration; the budget is 10,000.
  engine.install("q", onEnqueue(`for i = 1, tonumber(msg.headers.n) do end return { weight = 7 }`));
  for (let i = 0; i < 5; i++) {
    assert.equal(engine.onEnqueue("q", enqueueInput("q", { n: "5000" }))!.weight, 7);
  }
  assert.deepEqual(engine.onEnqueue("q", enqueueInput("q", { n: "20000" })), DEFAULTS);
  assert.equal(failures().length, 2);
});

Deno.test("on_failure that loops retries immediately (BI-06)", async () => {
  const { engine } = await testEngine();
  engine.install("q", onFailure("while true do end"));
  const [decision, ms] = timed(() => engine.onFailure("q", failureInput()));
  assert.deepEqual(decision, { action: "retry", delayMs: 0 });
  assert.ok(ms < 500);
});

Deno.test("unbounded allocation fails with not enough memory (LU-09)", async () => {
  const { engine, failures } = await testEngine({ breakerThreshold: 0, timeoutMs: 1000 });
  const bombs = [
    `local t = {} for i = 1, 1e9 do t[i] = i end`,
    `local t = {} local i = 0 while true do i = i + 1 t["k" .. i] = i end`,
    `local s = string.rep("x", 1e9)`,
    `local s = "x" while true do s = s .. s end`,
    `local t = {} for i = 1, 100 do t[i] = string.rep("y", 1e5) end local s = table.concat(t)`,
  ];
  for (const bomb of bombs) {
    engine.install("q", onEnqueue(`${bomb} return {}`));
    const [decision, ms] = timed(() => engine.onEnqueue("q", enqueueInput()));
    assert.deepEqual(decision, DEFAULTS, bomb);
    assert.ok(ms < 1000, `${bomb} took ${ms} ms`);
  }
  assert.deepEqual(failures(), bombs.map(() => "not enough memory"));
});

Deno.test("the memory allowance is relative to the state's size at the start of the call", async () => {
  const { engine, failures } = await testEngine({ memoryLimitBytes: 1024 * 1024 });
  // Each call keeps 400 KiB (string.rep needs twice that while it builds the string): more
  // than the limit in total, less than it per call.
  engine.install(
    "q",
    onEnqueue(`
      keep = keep or {}
      keep[#keep + 1] = string.rep("x", 400 * 1024)
      return { weight = #keep }`),
  );
  assert.equal(engine.onEnqueue("q", enqueueInput())!.weight, 1);
  assert.equal(engine.onEnqueue("q", enqueueInput())!.weight, 2);
  assert.equal(engine.onEnqueue("q", enqueueInput())!.weight, 3);
  assert.deepEqual(failures(), []);
});

Deno.test("a state above 4 × the memory limit is replaced by a fresh one (BI-07)", async () => {
  const { engine, events, failures } = await testEngine();
  engine.install(
    "q",
    onEnqueue(`
      keep = keep or {}
      keep[#keep + 1] = string.rep("x", 256 * 1024)
      return { weight = #keep }`),
  );
  const weights = Array.from({ length: 100 }, () => engine.onEnqueue("q", enqueueInput())!.weight);
  assert.deepEqual(failures(), []);
  // 4 MiB / 256 KiB = 16 calls fit (barely not the 16th, with the state's own overhead).
  const firstReset = weights.indexOf(1, 1);
  assert.deepEqual(
    weights.slice(0, firstReset),
    Array.from({ length: firstReset }, (_, i) => i + 1),
  );
  assert.ok(firstReset >= 15 && firstReset <= 16, `first reset after ${firstReset} calls`);
  const resets = events.filter((e) => e.type === "state_reset");
  assert.ok(resets.length >= 5);
  assert.match(
    resets[0].type === "state_reset" ? resets[0].reason : "",
    /more than 4 × the memory limit/,
  );
});

Deno.test("a pathological pattern is stopped by the wall clock (BI-08)", async () => {
  const { engine, failures } = await testEngine({ timeoutMs: 2 });
  const patterns = [
    `string.find(string.rep("a", 300), ".-.-.-b")`,
    `string.match(string.rep("a", 300), "(.*)(.*)(.*)b")`,
    `string.gsub(string.rep("a", 300), ".-.-.-b", "")`,
    `for _ in string.gmatch(string.rep("a", 300), ".-.-.-b") do end`,
    `string.find(string.rep("a", 2e5), string.rep("a", 1e5) .. "b", 1, true)`,
  ];
  for (const pattern of patterns) {
    engine.install("q", onEnqueue(`${pattern} return {}`));
    const [decision, ms] = timed(() => engine.onEnqueue("q", enqueueInput()));
    assert.deepEqual(decision, DEFAULTS);
    assert.ok(ms < 1000, `${pattern} took ${ms} ms`);
  }
  assert.deepEqual(failures(), patterns.map(() => "execution time limit exceeded"));
});

Deno.test("library loops that would run for hours natively are cut short", async () => {
  const { engine, failures } = await testEngine({ timeoutMs: 2, breakerThreshold: 0 });
  engine.install(
    "q",
    onEnqueue(`return { weight = #string.rep("", 1e15) + #string.rep("", 1e15, "") }`),
  );
  assert.equal(engine.onEnqueue("q", enqueueInput())!.weight, 0);
  engine.install("q", onEnqueue(`table.move({}, 1, 1e12, 1, {}) return {}`));
  const [decision, ms] = timed(() => engine.onEnqueue("q", enqueueInput()));
  assert.deepEqual(decision, DEFAULTS);
  assert.ok(ms < 1000);
  assert.deepEqual(failures(), ["execution time limit exceeded"]);
});

Deno.test("__gc metamethods are refused, so no script code runs outside a call", async () => {
  const { engine, failures } = await testEngine();
  engine.install(
    "q",
    onEnqueue(`setmetatable({}, { __gc = function() while true do end end }) return {}`),
  );
  assert.deepEqual(engine.onEnqueue("q", enqueueInput()), DEFAULTS);
  assert.deepEqual(failures(), [`[string "on_enqueue"]:1: __gc metamethods are not supported`]);
});

Deno.test("deep recursion through C functions fails cleanly", async () => {
  const { engine, failures } = await testEngine({ breakerThreshold: 0 });
  engine.install(
    "q",
    onEnqueue(`
      local function f(n)
        if n == 0 then return "x" end
        return (string.gsub("a", "a", function() return f(n - 1) end))
      end
      local function g(n) return tostring(setmetatable({}, { __tostring = function() return g(n + 1) end })) end
      if msg.headers.g then g(0) end
      return { fairness_key = f(tonumber(msg.headers.depth)) }`),
  );
  assert.deepEqual(engine.onEnqueue("q", enqueueInput("q", { depth: "500" })), DEFAULTS);
  assert.deepEqual(engine.onEnqueue("q", enqueueInput("q", { depth: "1", g: "1" })), DEFAULTS);
  assert.equal(engine.onEnqueue("q", enqueueInput("q", { depth: "100" }))!.fairnessKey, "x");
  assert.equal(failures().length, 2);
  assert.ok(failures().every((f) => /stack overflow/.test(f)), failures().join("; "));
});

Deno.test("garbage, errors and loops in bulk keep the engine responsive (BI-06)", async () => {
  const { engine } = await testEngine();
  const bodies = [
    "while true do end",
    'error("x")',
    "return 42",
    "return { fairness_key = {} }",
    'return { weight = "x" }',
  ];
  engine.install("healthy", onEnqueue(`return { fairness_key = "fine" }`));
  for (const [i, body] of bodies.entries()) {
    engine.install(`q${i}`, onEnqueue(body));
    for (let n = 0; n < 5; n++) {
      const [, ms] = timed(() => engine.onEnqueue(`q${i}`, enqueueInput(`q${i}`)));
      assert.ok(ms < 1000);
      assert.equal(engine.onEnqueue("healthy", enqueueInput("healthy"))!.fairnessKey, "fine");
    }
  }
});

Deno.test("a state wrecked outside a protected call is replaced, not fatal", async () => {
  const { engine, events } = await testEngine();
  engine.install("q", onEnqueue(`n = (n or 0) + 1 return { weight = n }`));
  assert.equal(engine.onEnqueue("q", enqueueInput())!.weight, 1);
  // Building this message exceeds what a state may hold even outside a call (64 MiB): Lua
  // panics, which the engine turns into a failed call and a fresh state.
  const huge = { big: "x".repeat(65 * 1024 * 1024) };
  assert.deepEqual(engine.onEnqueue("q", enqueueInput("q", huge)), DEFAULTS);
  assert.ok(events.some((e) => e.type === "state_reset" && /panic/.test(e.reason)));
  assert.equal(engine.onEnqueue("q", enqueueInput())!.weight, 1);
  assert.equal(engine.onEnqueue("q", enqueueInput())!.weight, 2);
});
