import assert from "node:assert/strict";
import { MemoryReclaimer, type ReclaimerProbes } from "./memory_reclaimer.ts";
import { trimNativeMemory } from "./native_memory.ts";

const MiB = 1024 * 1024;

/** A process whose RSS and CPU time the test sets; reclaiming drops the RSS to `freedTo`. */
function fakeProcess() {
  const s = { rss: 100 * MiB, cpu: 0, now: 0, freedTo: 0, calls: [] as string[] };
  const probes: ReclaimerProbes = {
    rss: () => s.rss,
    cpuSeconds: () => s.cpu,
    now: () => s.now,
    collectGarbage: () => s.calls.push("gc"),
    trim: () => {
      s.calls.push("trim");
      s.rss = s.freedTo;
    },
  };
  /** The next 2 s interval: RSS at its end and the CPU it used, in cores. */
  const interval = (rss: number, cores: number) => {
    s.rss = rss;
    s.now += 2000;
    s.cpu += 2 * cores;
  };
  return { s, probes, interval };
}

Deno.test("MemoryReclaimer waits for a quiet interval after the RSS grew, then reclaims once", () => {
  const { s, probes, interval } = fakeProcess();
  const r = new MemoryReclaimer(probes, { growthBytes: 64 * MiB, quietCores: 0.1 });
  interval(120 * MiB, 0.05);
  assert.equal(r.tick(), undefined, "quiet but grown by less than 64 MiB");
  interval(1200 * MiB, 1.3);
  assert.equal(r.tick(), undefined, "grown but busy (a fill)");
  interval(1200 * MiB, 0.6);
  assert.equal(r.tick(), undefined, "the fill ended inside this interval");
  assert.deepEqual(s.calls, []);
  s.freedTo = 600 * MiB;
  interval(1200 * MiB, 0.01);
  assert.deepEqual(r.tick(), { beforeBytes: 1200 * MiB, afterBytes: 600 * MiB, ms: 0 });
  assert.deepEqual(s.calls, ["gc", "trim"]);
  interval(610 * MiB, 0);
  assert.equal(r.tick(), undefined, "settled: measured from the RSS after the reclaim");
  assert.equal(s.calls.length, 2);
});

Deno.test("MemoryReclaimer measures growth from the lowest RSS seen", () => {
  const { s, probes, interval } = fakeProcess();
  const r = new MemoryReclaimer(probes, { growthBytes: 64 * MiB, quietCores: 0.1 });
  interval(40 * MiB, 0); // V8 gave memory back by itself
  assert.equal(r.tick(), undefined);
  s.freedTo = 40 * MiB;
  interval(110 * MiB, 0); // +70 MiB over the low point, +10 over the start
  assert.ok(r.tick());
});

Deno.test("trimNativeMemory() calls glibc's malloc_trim on Linux", () => {
  assert.equal(trimNativeMemory(), Deno.build.os === "linux");
});
