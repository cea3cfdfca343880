/**
 * Cost of an on_enqueue hook on the enqueue path (issue 3): the in-process scheduler (memory
 * store, no gRPC, so the hook is not lost in transport noise) enqueues the same messages into a
 * queue without a script and into one whose on_enqueue reads the tenant and weight from headers.
 * Reports µs per message for each and the difference (median of RUNS runs), and the hook's own
 * per-call p50/p99 measured inside the scheduler.
 *
 *   deno task bench:lua
 */
import { createLuaEngine } from "../src/lua/mod.ts";
import { Scheduler } from "../src/scheduler/mod.ts";
import { MemoryStore } from "../src/storage/memory_store.ts";

const RUNS = Number(Deno.env.get("RUNS") ?? 5);
const N = Number(Deno.env.get("MESSAGES") ?? 50_000);
const SCRIPT = `function on_enqueue(msg)
  return { fairness_key = msg.headers.tenant or "default", weight = tonumber(msg.headers.weight) or 1 }
end`;

const durations: number[] = [];
const hooks = await createLuaEngine({
  configLookup: () => undefined,
  onEvent: (e) => {
    if (e.type === "hook_executed") durations.push(e.durationUs);
  },
});

function queueInput(name: string, script: string) {
  return {
    name,
    onEnqueueScript: script,
    onFailureScript: "",
    visibilityTimeoutMs: 0,
    fairnessKeyHeader: "",
    weightHeader: "",
    throttleKeyHeaders: [],
  };
}

async function usPerMessage(queue: string): Promise<number> {
  const s = new Scheduler({ store: new MemoryStore(), quantum: 1000, hooks });
  await s.start();
  await s.createQueue(queueInput(queue, queue === "hooked" ? SCRIPT : ""));
  const payload = new Uint8Array(1024);
  const start = performance.now();
  for (let i = 0; i < N; i++) {
    await s.enqueue(queue, { tenant: `t${i % 50}`, weight: "2", "content-type": "json" }, payload);
  }
  const us = ((performance.now() - start) * 1000) / N;
  await s.deleteQueue(queue);
  await s.shutdown();
  return us;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const plain: number[] = [];
const hooked: number[] = [];
for (let i = 0; i < RUNS; i++) {
  plain.push(await usPerMessage("plain"));
  hooked.push(await usPerMessage("hooked"));
}
const sorted = durations.sort((a, b) => a - b);
const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
console.log("| enqueue path (in-process, memory store) | µs/msg median | min | max |");
console.log("|---|---:|---:|---:|");
const row = (name: string, xs: number[]) =>
  console.log(
    `| ${name} | ${median(xs).toFixed(2)} | ${Math.min(...xs).toFixed(2)} | ${
      Math.max(...xs).toFixed(2)
    } |`,
  );
row("no script", plain);
row("on_enqueue (tenant, weight from headers)", hooked);
console.log(`\nhook overhead: ${(median(hooked) - median(plain)).toFixed(2)} µs per message`);
console.log(
  `hook call inside the scheduler: p50 ${pct(0.5).toFixed(2)} µs, p99 ${
    pct(0.99).toFixed(2)
  } µs over ${sorted.length} calls`,
);
