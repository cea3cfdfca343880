import assert from "node:assert/strict";
import { enqueueInput, failureInput, onEnqueue, onFailure, testEngine } from "./testing.ts";

const { engine, events } = await testEngine();

function enqueueResult(table: string) {
  engine.install("q", onEnqueue(`return ${table}`));
  return engine.onEnqueue("q", enqueueInput())!;
}

function failureResult(table: string) {
  engine.install("q", onFailure(`return ${table}`));
  return engine.onFailure("q", failureInput())!;
}

Deno.test("fairness_key coercion (LU-04)", () => {
  const cases: [string, string][] = [
    ["42", "42"],
    ["3.0", "3.0"],
    ["0.5", "0.5"],
    ["-7", "-7"],
    ["1e100", "1e+100"],
    ["2^63", "9.2233720368548e+18"],
    ["math.maxinteger", "9223372036854775807"],
    ["true", "default"],
    ["{}", "default"],
    ["print", "default"],
    ["nil", "default"],
    ['""', ""],
    ['"acme"', "acme"],
    ['"héllo wörld ✓"', "héllo wörld ✓"],
    ['"\\u{FEFF}bom"', "\uFEFFbom"],
    ['"a\\0b"', "a\0b"],
  ];
  for (const [lua, expected] of cases) {
    assert.equal(enqueueResult(`{ fairness_key = ${lua} }`).fairnessKey, expected, lua);
  }
  assert.equal(enqueueResult("{}").fairnessKey, "default");
});

Deno.test("fairness_key must be valid UTF-8 of at most 255 bytes (LU-22)", () => {
  assert.equal(
    enqueueResult(`{ fairness_key = string.rep("k", 255) }`).fairnessKey,
    "k".repeat(255),
  );
  assert.equal(enqueueResult(`{ fairness_key = string.rep("k", 256) }`).fairnessKey, "default");
  // 127 two-byte characters = 254 bytes; one more is 256.
  assert.equal(
    enqueueResult(`{ fairness_key = string.rep("é", 127) }`).fairnessKey,
    "é".repeat(127),
  );
  assert.equal(enqueueResult(`{ fairness_key = string.rep("é", 128) }`).fairnessKey, "default");
  for (
    const bad of [
      '"\\xff"',
      '"\\xc0\\x80"',
      '"\\xed\\xa0\\x80"',
      '"\\xf4\\x90\\x80\\x80"',
      '"\\xe2\\x82"',
    ]
  ) {
    assert.equal(enqueueResult(`{ fairness_key = ${bad} }`).fairnessKey, "default", bad);
  }
});

Deno.test("weight coercion (LU-04)", () => {
  const cases: [string, number][] = [
    ['"3"', 3],
    ['" 3 "', 3],
    ['"3.0"', 3],
    ['"0x10"', 16],
    ['"1e2"', 100],
    ["3.0", 3],
    ["0", 0],
    ["-0.0", 0],
    ["4294967295", 4294967295],
    ["2.5", 1],
    ["-1", 1],
    ["4294967296", 1],
    ['"abc"', 1],
    ['"3\\0"', 1],
    ['""', 1],
    ["0/0", 1],
    ["math.huge", 1],
    ["true", 1],
    ["{}", 1],
    ["nil", 1],
  ];
  for (const [lua, expected] of cases) {
    assert.equal(enqueueResult(`{ weight = ${lua} }`).weight, expected, lua);
  }
  assert.ok(Object.is(enqueueResult("{ weight = -0.0 }").weight, 0));
});

Deno.test("throttle_keys coercion (LU-04, LU-22)", () => {
  const cases: [string, string[]][] = [
    ['{"a", 7, true, "b"}', ["a", "7", "b"]],
    ['"x"', []],
    ['{"a", nil, "b"}', ["a"]],
    ['{"a", "a", 2.5}', ["a", "a", "2.5"]],
    ['{"ok", string.rep("k", 256), "\\xff", {}, "end"}', ["ok", "end"]],
    ['{[2] = "b"}', []],
    ['{x = "a"}', []],
    ["{}", []],
    ["nil", []],
  ];
  for (const [lua, expected] of cases) {
    assert.deepEqual(enqueueResult(`{ throttle_keys = ${lua} }`).throttleKeys, expected, lua);
  }
});

Deno.test("output fields are read raw, unknown fields ignored", () => {
  const decision = enqueueResult(
    `setmetatable({ extra = 1 }, { __index = function() error("no metamethods") end })`,
  );
  assert.deepEqual(decision, { fairnessKey: "default", weight: 1, throttleKeys: [] });
});

Deno.test("on_failure action and delay_ms coercion (LU-10)", () => {
  events.length = 0;
  assert.deepEqual(failureResult('{ action = "dlq" }'), { action: "dlq", delayMs: 0 });
  assert.deepEqual(failureResult('{ action = "retry", delay_ms = 1500 }'), {
    action: "retry",
    delayMs: 1500,
  });
  assert.deepEqual(failureResult("{}"), { action: "retry", delayMs: 0 });
  assert.equal(events.filter((e) => e.type === "hook_warning").length, 0);

  for (const bad of ['"DLQ"', "42", '"dlq "', "true"]) {
    assert.equal(failureResult(`{ action = ${bad} }`).action, "retry", bad);
  }
  assert.equal(events.filter((e) => e.type === "hook_warning").length, 4);
  assert.equal(events.filter((e) => e.type === "hook_failed").length, 0);

  const delays: [string, number][] = [
    ['"250"', 250],
    ["3.0", 3],
    ["1e15", 4294967295],
    ["4294967296", 4294967295],
    ["math.maxinteger", 4294967295],
    ["-1", 0],
    ["2.5", 0],
    ['"soon"', 0],
    ["math.huge", 0],
    ["{}", 0],
  ];
  for (const [lua, expected] of delays) {
    assert.equal(failureResult(`{ delay_ms = ${lua} }`).delayMs, expected, lua);
  }
});

Deno.test("on_enqueue sees a copy of the headers, the payload size and the queue (LU-05)", () => {
  engine.install(
    "q",
    onEnqueue(`
      msg.headers.x = "changed"
      return { fairness_key = msg.queue .. ":" .. msg.payload_size, throttle_keys = { msg.headers.y } }`),
  );
  const headers = { x: "orig", y: "ÿ✓" };
  const decision = engine.onEnqueue("q", enqueueInput("q", headers, 5))!;
  assert.equal(decision.fairnessKey, "q:5");
  assert.deepEqual(decision.throttleKeys, ["ÿ✓"]);
  assert.deepEqual(headers, { x: "orig", y: "ÿ✓" });
});

Deno.test("on_failure sees headers, id, attempts, queue and error (LU-03)", () => {
  engine.install(
    "q",
    onFailure(`
      local ok = msg.error == "boom" and msg.attempts == 1 and math.type(msg.attempts) == "integer"
        and msg.queue == "q" and msg.headers.h == "v" and #msg.id == 36
      return { action = ok and "dlq" or "retry" }`),
  );
  assert.equal(engine.onFailure("q", failureInput({ headers: { h: "v" } }))!.action, "dlq");
  assert.equal(engine.onFailure("q", failureInput({ attempts: 2 }))!.action, "retry");
});

Deno.test("a 1 MiB error text reaches on_failure intact (BI-12)", () => {
  engine.install("q", onFailure(`return { delay_ms = #msg.error }`));
  const error = "é".repeat(512 * 1024);
  assert.equal(engine.onFailure("q", failureInput({ error }))!.delayMs, 1024 * 1024);
});

Deno.test("10,000 headers are passed (BI-11)", () => {
  engine.install(
    "q",
    onEnqueue(`local n = 0 for _ in pairs(msg.headers) do n = n + 1 end return { weight = n }`),
  );
  const headers: Record<string, string> = {};
  for (let i = 0; i < 10_000; i++) headers[`h${i}`] = `v${i}`;
  assert.equal(engine.onEnqueue("q", enqueueInput("q", headers))!.weight, 10_000);
});
