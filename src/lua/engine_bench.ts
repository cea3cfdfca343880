// Per-call cost of the hooks with typical scripts.
//   deno bench --allow-all src/lua/engine_bench.ts      Deno's statistics
//   deno run --allow-all src/lua/engine_bench.ts        per-call p50/p90/p99/p99.9
import { createLuaEngine } from "./engine.ts";
import type { EnqueueHookInput, FailureHookInput } from "./types.ts";

const engine = await createLuaEngine({
  configLookup: (key) => key === "tier.weight.pro" ? "3" : undefined,
});

engine.install("tenants", {
  onEnqueue: `function on_enqueue(msg)
    return { fairness_key = msg.headers.tenant or "default", weight = tonumber(msg.headers.weight) or 1 }
  end`,
  onFailure: `function on_failure(msg)
    if msg.attempts >= 12 then
      return { action = "dlq" }
    end
    local delay = 1000 * (1 << (msg.attempts - 1))
    return { action = "retry", delay_ms = math.min(delay, 300000) }
  end`,
});

engine.install("tiers", {
  onEnqueue: `function on_enqueue(msg)
    local keys = {}
    local provider = msg.headers["provider"]
    if provider ~= nil then
      keys[#keys + 1] = "provider:" .. provider
    end
    local tier = msg.headers["tier"] or "free"
    local weight = tonumber(fila.get("tier.weight." .. tier) or "1") or 1
    return { fairness_key = msg.headers["account"] or "anonymous", weight = weight, throttle_keys = keys }
  end`,
  onFailure: "",
});

const headers = {
  tenant: "acme",
  weight: "3",
  account: "acme",
  tier: "pro",
  provider: "smtp",
  "content-type": "application/json",
};
const enqueue: EnqueueHookInput = { headers, payloadSize: 512, queue: "tenants" };
const tiers: EnqueueHookInput = { headers, payloadSize: 512, queue: "tiers" };
const failure: FailureHookInput = {
  headers,
  id: "0190b2a4-6f1e-7c3a-9d2b-1a2b3c4d5e6f",
  attempts: 3,
  queue: "tenants",
  error: "connection reset by peer",
};

const cases: [string, () => unknown][] = [
  ["on_enqueue (tenant and weight from headers)", () => engine.onEnqueue("tenants", enqueue)],
  ["on_enqueue (fila.get, throttle keys)", () => engine.onEnqueue("tiers", tiers)],
  ["on_failure (exponential backoff)", () => engine.onFailure("tenants", failure)],
];

for (const [name, fn] of cases) Deno.bench(name, () => void fn());

if (import.meta.main) {
  const samples = 200_000;
  for (const [name, fn] of cases) {
    for (let i = 0; i < 20_000; i++) fn();
    const times = new Float64Array(samples);
    for (let i = 0; i < samples; i++) {
      const started = performance.now();
      fn();
      times[i] = performance.now() - started;
    }
    times.sort();
    const us = (q: number) => (times[Math.floor(q * (samples - 1))] * 1000).toFixed(2);
    console.log(
      `${name}: p50 ${us(0.5)} µs, p90 ${us(0.9)} µs, p99 ${us(0.99)} µs, p99.9 ${us(0.999)} µs`,
    );
  }
}
