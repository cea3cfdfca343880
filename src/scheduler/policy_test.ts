import assert from "node:assert/strict";
import { declarativeDecision } from "./policy.ts";
import type { QueueDef } from "../core/types.ts";

const base: QueueDef = {
  name: "q",
  qid: "x",
  onEnqueueScript: "",
  onFailureScript: "",
  visibilityTimeoutMs: 30_000,
  fairnessKeyHeader: "tenant",
  weightHeader: "weight",
  throttleKeyHeaders: ["provider", "region"],
  createdAtMs: 0,
};

Deno.test("declarativeDecision() reads key, weight and throttle keys from headers", () => {
  assert.deepEqual(
    declarativeDecision(base, { tenant: "acme", weight: "3", provider: "stripe", region: "eu" }),
    { fairnessKey: "acme", weight: 3, throttleKeys: ["stripe", "eu"] },
  );
});

Deno.test("declarativeDecision() falls back per field", () => {
  assert.deepEqual(declarativeDecision(base, {}), {
    fairnessKey: "default",
    weight: 1,
    throttleKeys: [],
  });
  for (const bad of ["-1", "2.5", "abc", "4294967296", ""]) {
    assert.equal(declarativeDecision(base, { weight: bad }).weight, 1, bad);
  }
  assert.equal(declarativeDecision(base, { weight: "0" }).weight, 0);
  assert.equal(declarativeDecision(base, { tenant: "k".repeat(256) }).fairnessKey, "default");
  assert.deepEqual(
    declarativeDecision(base, { provider: "p".repeat(256), region: "eu" }).throttleKeys,
    ["eu"],
  );
});

Deno.test("declarativeDecision() without header settings gives the defaults", () => {
  const plain = { ...base, fairnessKeyHeader: "", weightHeader: "", throttleKeyHeaders: [] };
  assert.deepEqual(declarativeDecision(plain, { tenant: "acme" }), {
    fairnessKey: "default",
    weight: 1,
    throttleKeys: [],
  });
});
