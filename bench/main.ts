/**
 * Fila benchmark suite (docs/benchmarks.md): each workload in bench/workloads/ runs against a
 * fresh broker started from this checkout (or FILA_ADDR); each figure is the median of RUNS runs
 * (≥ 3, default 3) with min/max, plus the CPU the broker and the benchmark used while measuring.
 * Writes bench/results/fila-<date>.json and .md and prints the Markdown summary with the targets.
 *
 *   deno task bench                      # full mode (~15–25 min on 2 cores)
 *   BENCH_QUICK=1 deno task bench        # quick mode: small sizes, 1 run (< 2 min)
 *   BENCH_ONLY=enqueue,latency deno task bench
 *   RUNS=5 deno task bench
 */
import { cardinality } from "./workloads/cardinality.ts";
import { ceiling } from "./workloads/ceiling.ts";
import { enqueue } from "./workloads/enqueue.ts";
import { DRR_KEYS, fairness } from "./workloads/fairness.ts";
import { latency } from "./workloads/latency.ts";
import { lifecycleWorkload } from "./workloads/lifecycle.ts";
import { lua } from "./workloads/lua.ts";
import { memory, PENDING } from "./workloads/memory.ts";
import {
  commitId,
  type Figure,
  figuresTable,
  fmt,
  loadavg,
  machine,
  Progress,
  QUICK,
  type Results,
  RUNS,
  type Target,
  targetsTable,
  writeResults,
} from "./lib/report.ts";
import type { Workload } from "./lib/workload.ts";

export const WORKLOADS: Workload[] = [
  ceiling,
  enqueue,
  lifecycleWorkload,
  latency,
  fairness,
  cardinality,
  lua,
  memory,
];

function get(figs: Figure[], group: string, pred: (name: string) => boolean): Figure | undefined {
  return figs.find((f) => f.group === group && pred(f.name));
}

function cpuNote(f: Figure | undefined): string {
  if (!f || f.serverCpu === undefined) return "";
  return `broker ${fmt(f.serverCpu, "%")} % CPU, bench ${fmt(f.clientCpu, "%")} % CPU`;
}

/** The targets, evaluated on this run's figures (peer comparisons: competitive run). */
export function evaluateTargets(figs: Figure[]): Target[] {
  const t: Target[] = [];
  const batch = figs.filter((f) => f.group === "produce" && /^BatchEnqueue 1 KiB/.test(f.name))
    .sort((a, b) => b.median - a.median)[0];
  if (batch) {
    t.push({
      what: "batch produce, 1 KiB",
      goal: "≥ 100,000 msg/s",
      measured: `${fmt(batch.median)} msg/s (${batch.name})`,
      met: batch.median >= 100_000,
      limitedBy: cpuNote(batch),
    });
  }
  const life = get(figs, "lifecycle", (n) => n.startsWith("produce → consume → ack"));
  if (life) {
    t.push({
      what: "lifecycle produce → consume → ack, 1 KiB",
      goal: "≥ 40,000 msg/s",
      measured: `${fmt(life.median)} msg/s`,
      met: life.median >= 40_000,
      limitedBy: cpuNote(life),
    });
  }
  const unary = get(figs, "produce", (n) => n === "unary Enqueue 1 KiB, 64 in flight");
  if (unary) {
    t.push({
      what: "unary Enqueue, 64 in flight, 1 KiB",
      goal: "≥ 8,000 msg/s",
      measured: `${fmt(unary.median)} msg/s`,
      met: unary.median >= 8_000,
      limitedBy: cpuNote(unary),
    });
  }
  const light = get(figs, "latency", (n) => n.includes("light load"));
  if (light) {
    t.push({
      what: "end-to-end p50 at light load",
      goal: "< 1 ms",
      measured: `${fmt(light.median, "ms")} ms (p95 ${fmt(light.extra?.p95, "ms")}, p99 ${
        fmt(light.extra?.p99, "ms")
      })`,
      met: light.median < 1,
      limitedBy: cpuNote(light),
    });
  }
  const fifo = get(figs, "fairness", (n) => n === "consume → ack, 1 key (FIFO)");
  const drr = get(figs, "fairness", (n) => n === `consume → ack, ${DRR_KEYS} keys (DRR)`);
  const fifoL = get(figs, "fairness", (n) => n === "lifecycle, 1 key (FIFO)");
  const drrL = get(figs, "fairness", (n) => n === `lifecycle, ${DRR_KEYS} keys (DRR)`);
  if (fifo && drr) {
    const o = (1 - drr.median / fifo.median) * 100;
    const oL = fifoL && drrL ? (1 - drrL.median / fifoL.median) * 100 : NaN;
    const fifoM = get(figs, "fairness", (n) => n.startsWith("in-process") && n.endsWith("(FIFO)"));
    const drrM = get(figs, "fairness", (n) => n.startsWith("in-process") && n.endsWith("(DRR)"));
    const oM = fifoM && drrM ? (1 - drrM.median / fifoM.median) * 100 : NaN;
    t.push({
      what: `DRR (${DRR_KEYS} keys) overhead vs single-key FIFO`,
      goal: "< 5 %",
      measured: `${fmt(o, "%")} % on consume → ack; ${fmt(oL, "%")} % on lifecycle; ${
        fmt(oM, "%")
      } % in-process (scheduler alone)`,
      met: o < 5,
      limitedBy: "run-to-run noise of a shared 2-core machine is of the same order (see min/max)",
    });
  }
  const c10 = get(figs, "cardinality", (n) => n === "consume → ack with 10 active keys");
  const c100k = get(figs, "cardinality", (n) => n === "consume → ack with 100,000 active keys");
  if (c10 && c100k) {
    const r = (c100k.median / c10.median) * 100;
    t.push({
      what: "throughput with 100k active keys vs 10",
      goal: "≥ 80 %",
      measured: `${fmt(r, "%")} % (${fmt(c100k.median)} vs ${fmt(c10.median)} msg/s)`,
      // Quick mode fills 100k keys with 10× more messages than 10 keys: not comparable.
      met: QUICK ? null : r >= 80,
      limitedBy: cpuNote(c100k),
    });
  }
  const pendingLabel = PENDING.toLocaleString("en-US");
  const rec = get(figs, "memory", (n) => n.startsWith("recovery of"));
  if (rec) {
    t.push({
      what: `recovery of ${pendingLabel} pending`,
      goal: "< 30 s" + (PENDING < 1_000_000 ? " (for 1M; quick mode measures fewer)" : ""),
      measured: `${fmt(rec.median, "s")} s`,
      met: PENDING >= 1_000_000 ? rec.median < 30 : null,
    });
  }
  const rss = figs.filter((f) => f.group === "memory" && f.name.includes("pending (after"));
  if (rss.length) {
    const worst = Math.max(...rss.map((f) => f.median));
    t.push({
      what: `RSS with ${pendingLabel} pending`,
      goal: "< 1 GiB" + (PENDING < 1_000_000 ? " (for 1M; quick mode measures fewer)" : ""),
      measured: `${fmt(worst, "MiB")} MiB (worse of after-fill / after-recovery)`,
      met: PENDING >= 1_000_000 ? worst < 1024 : null,
    });
  }
  t.push({
    what: "batch produce ≥ 2× best peer; lifecycle ≥ 1.5× best peer",
    goal: "see `deno task bench:competitive`",
    measured: "–",
    met: null,
  });
  return t;
}

async function main(): Promise<void> {
  const only = Deno.env.get("BENCH_ONLY")?.split(",").map((s) => s.trim()).filter(Boolean);
  const selected = only ? WORKLOADS.filter((w) => only.includes(w.id)) : WORKLOADS;
  if (selected.length === 0) {
    console.error(`no workload matches BENCH_ONLY; ids: ${WORKLOADS.map((w) => w.id).join(", ")}`);
    Deno.exit(2);
  }
  const progress = new Progress(selected.length);
  const figures: Figure[] = [];
  const date = new Date().toISOString();
  const before = loadavg();
  const notes: string[] = [];
  for (const w of selected) {
    progress.update(w.title, 0, true);
    const t0 = performance.now();
    try {
      const figs = await w.run({
        progress,
        figures,
        log: (l) => {
          progress.log(l);
          notes.push(l);
        },
      });
      figures.push(...figs);
    } catch (e) {
      const msg = `workload ${w.id} failed: ${(e as Error).stack ?? e}`;
      progress.log(msg);
      notes.push(msg);
    }
    progress.log(`${w.title}: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    progress.step(w.title);
  }
  progress.finish();
  const targets = evaluateTargets(figures);
  const results: Results = {
    kind: "fila",
    commit: await commitId(),
    date,
    mode: QUICK ? "quick" : "full",
    runsPerFigure: RUNS,
    machine: machine(),
    loadavgBefore: before,
    loadavgAfter: loadavg(),
    figures,
    targets,
    notes,
  };
  const md = [
    `## Fila benchmarks — ${results.mode} mode, ${RUNS} run(s) per figure`,
    "",
    `commit ${results.commit}, ${date}, ${results.machine.cores} cores (${results.machine.cpu}), ` +
    `Deno ${results.machine.deno}; load average before ${before.join(" ")}, after ${
      results.loadavgAfter.join(" ")
    } (shared machine: other jobs may run at the same time)`,
    "",
    figuresTable(figures),
    "",
    "### Targets",
    "",
    targetsTable(targets),
    ...(notes.length ? ["", "### Notes", "", ...notes.map((n) => `- ${n}`)] : []),
    "",
  ].join("\n");
  const file = await writeResults(results);
  await Deno.writeTextFile(file.replace(/\.json$/, ".md"), md);
  console.log(md);
  console.log(`results: ${file}`);
}

if (import.meta.main) await main();
