/**
 * Competitive benchmark (docs/benchmarks.md): Fila, RabbitMQ (classic and quorum queues),
 * NATS JetStream and Redis + BullMQ, each started on loopback with durable production settings,
 * driven by the same driver and workloads in one run, printed as one table. Peers are installed
 * from Debian packages when missing (root + apt-get) and their clients from npm (bench only:
 * tests and CI never load them). A peer that cannot be installed or started is recorded with the
 * reason and skipped. Every server started here is stopped at the end. Kafka cannot be installed
 * on these machines (no Debian package; no downloads outside npm/Debian), so it is not included.
 *
 *   deno task bench:competitive                 # full: 3 runs per figure
 *   BENCH_QUICK=1 deno task bench:competitive   # quick: small sizes, 1 run
 *   PEERS=fila,nats deno task bench:competitive
 *   COMPETITIVE_NO_INSTALL=1 …                  # never run apt-get
 */
import {
  clientMeter,
  commitId,
  CpuMeter,
  type Figure,
  figure,
  fmt,
  loadavg,
  machine,
  percentile,
  Progress,
  QUICK,
  type Results,
  RUNS,
  type Sample,
  type Target,
  targetsTable,
  writeResults,
} from "../lib/report.ts";
import { fileURLToPath } from "node:url";
import type { Adapter, PeerInfo, RunningPeer } from "./peer.ts";
import { sleep } from "./peer.ts";
import { PEERS } from "./peers/mod.ts";

const SIZE = 1024;
const BATCH = 500;
const BATCH_IN_FLIGHT = 8;
const UNARY_IN_FLIGHT = 64;
const N_UNARY = QUICK ? 2_000 : 10_000;
const N_BATCH = QUICK ? 20_000 : 100_000;
const N_LIFE = QUICK ? 10_000 : 50_000;
const LIGHT_RATE = 200;
const LIGHT_SECS = QUICK ? 2 : 5;
const CLIENT_PROCS = (Deno.env.get("CLIENT_PROCS") ?? "1,2").split(",").map(Number);
const RUN_TIMEOUT_MS = QUICK ? 60_000 : 180_000;

// Latency first: on a fresh server, before the throughput runs leave deleted queues behind
// (whose background clean-up would otherwise show in the tail latency).
const WORKLOADS = [
  { id: "latency", name: `e2e latency p50 at ${LIGHT_RATE} msg/s`, unit: "ms" },
  { id: "unary", name: `produce, 1 msg per call, ${UNARY_IN_FLIGHT} in flight`, unit: "msg/s" },
  {
    id: "batch",
    name: `batch produce (${BATCH}/batch, ${BATCH_IN_FLIGHT} in flight)`,
    unit: "msg/s",
  },
  { id: "lifecycle", name: "lifecycle produce → consume → ack", unit: "msg/s" },
] as const;

function payload(stamp = 0): Uint8Array {
  const p = new Uint8Array(SIZE).fill(120);
  new DataView(p.buffer).setFloat64(0, stamp, true);
  return p;
}

let qseq = 0;
const qname = (w: string) => `cmp-${w}-${Date.now().toString(36)}-${qseq++}`;

function meters(ad: Adapter) {
  return { server: new CpuMeter(() => ad.pids()).start(), client: clientMeter().start() };
}

async function pool(
  total: number,
  per: number,
  inFlight: number,
  task: (n: number) => Promise<void>,
) {
  let next = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < total) {
      const n = Math.min(per, total - next);
      next += n;
      await task(n);
    }
  }));
}

/** Which system a workload runs against, for the in-process and the subprocess producers. */
interface Target0 {
  peerId: string;
  info: PeerInfo;
  label: string;
  ad: Adapter;
}

const WORKER = fileURLToPath(new URL("./worker.ts", import.meta.url));

/**
 * Prepares producers of `total` messages (`batch` per call, `inFlight` calls outstanding in
 * all) in this process (procs = 1) or split over `procs` subprocesses, connected and warmed up;
 * `run()` starts them all and resolves, when every message is confirmed, with the CPU seconds
 * the subprocesses used meanwhile (0 in-process: the caller's meter sees it).
 */
async function producers(
  t: Target0,
  q: string,
  o: { total: number; batch: number; inFlight: number; procs: number },
): Promise<{ run(): Promise<number> }> {
  const payload = new Uint8Array(SIZE).fill(120);
  const ps = Array.from({ length: o.batch }, () => payload);
  if (o.procs <= 1) {
    return {
      run: async () => {
        await pool(
          o.total,
          o.batch,
          o.inFlight,
          (n) =>
            o.batch === 1
              ? t.ad.sendOne(q, payload)
              : t.ad.sendBatch(q, n === o.batch ? ps : ps.slice(0, n)),
        );
        return 0;
      },
    };
  }
  const children = Array.from({ length: o.procs }, () =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--no-lock", WORKER],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn());
  const readers = children.map((c) => c.stdout.pipeThrough(new TextDecoderStream()).getReader());
  const writers = children.map((c) => c.stdin.getWriter());
  const bufs = children.map(() => "");
  const readLine = async (i: number) => {
    while (!bufs[i].includes("\n")) {
      const { value, done } = await readers[i].read();
      if (done) throw new Error("client subprocess exited early");
      bufs[i] += value;
    }
    const k = bufs[i].indexOf("\n");
    const l = bufs[i].slice(0, k);
    bufs[i] = bufs[i].slice(k + 1);
    return JSON.parse(l);
  };
  const enc = new TextEncoder();
  const cleanup = async () => {
    for (const w of writers) await w.close().catch(() => {});
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch { /* exited */ }
      await c.status;
    }
  };
  try {
    await Promise.all(writers.map((w) =>
      w.write(enc.encode(
        JSON.stringify({
          peer: t.peerId,
          info: t.info,
          label: t.label,
          queue: q,
          size: SIZE,
          total: Math.ceil(o.total / o.procs),
          batch: o.batch,
          inFlight: Math.max(1, Math.round(o.inFlight / o.procs)),
        }) + "\n",
      ))
    ));
    await Promise.all(children.map((_, i) => readLine(i)));
  } catch (e) {
    await cleanup();
    throw e;
  }
  return {
    run: async () => {
      try {
        await Promise.all(writers.map((w) => w.write(enc.encode("go\n"))));
        const done = await Promise.all(children.map((_, i) => readLine(i)));
        return done.reduce((sum: number, d: { cpu: number }) => sum + d.cpu, 0);
      } finally {
        await cleanup();
      }
    },
  };
}

async function runUnary(t: Target0, q: string, procs: number): Promise<Sample> {
  await t.ad.sendOne(q, payload()); // warm-up
  const p = await producers(t, q, { total: N_UNARY, batch: 1, inFlight: UNARY_IN_FLIGHT, procs });
  const m = meters(t.ad);
  const t0 = performance.now();
  m.client.addSeconds(await p.run());
  const secs = (performance.now() - t0) / 1000;
  return { value: N_UNARY / secs, serverCpu: m.server.stop(), clientCpu: m.client.stop() };
}

async function runBatch(t: Target0, q: string, procs: number): Promise<Sample> {
  await t.ad.sendOne(q, payload());
  const p = await producers(t, q, {
    total: N_BATCH,
    batch: BATCH,
    inFlight: BATCH_IN_FLIGHT,
    procs,
  });
  const m = meters(t.ad);
  const t0 = performance.now();
  m.client.addSeconds(await p.run());
  const secs = (performance.now() - t0) / 1000;
  return { value: N_BATCH / secs, serverCpu: m.server.stop(), clientCpu: m.client.stop() };
}

async function runLifecycle(t: Target0, q: string, procs: number): Promise<Sample> {
  let got = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => done = r);
  const c = await t.ad.consume(q, (s) => {
    got += s.length;
    if (got >= N_LIFE) done();
  });
  try {
    const p = await producers(t, q, {
      total: N_LIFE,
      batch: BATCH,
      inFlight: BATCH_IN_FLIGHT,
      procs,
    });
    const m = meters(t.ad);
    const t0 = performance.now();
    m.client.addSeconds(await p.run());
    await all;
    const secs = (performance.now() - t0) / 1000;
    return { value: N_LIFE / secs, serverCpu: m.server.stop(), clientCpu: m.client.stop() };
  } finally {
    await c.stop();
  }
}

async function runLatency(t: Target0, q: string): Promise<Sample> {
  const ad = t.ad;
  const total = LIGHT_RATE * LIGHT_SECS;
  const warm = Math.round(total * 0.1);
  const lat: number[] = [];
  let got = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => done = r);
  const c = await ad.consume(q, (stamps) => {
    const now = performance.now();
    for (const s of stamps) {
      if (got++ >= warm) lat.push(now - s);
    }
    if (got >= total) done();
  });
  try {
    const m = meters(ad);
    const t0 = performance.now();
    const pending: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const due = t0 + (i * 1000) / LIGHT_RATE;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      pending.push(ad.sendOne(q, payload(performance.now())));
    }
    await Promise.all(pending);
    await all;
    lat.sort((a, b) => a - b);
    return {
      value: percentile(lat, 0.5),
      serverCpu: m.server.stop(),
      clientCpu: m.client.stop(),
      extra: { p95: percentile(lat, 0.95), p99: percentile(lat, 0.99) },
    };
  } finally {
    await c.stop();
  }
}

const RUNNERS: Record<string, (t: Target0, q: string, procs: number) => Promise<Sample>> = {
  unary: runUnary,
  batch: runBatch,
  lifecycle: runLifecycle,
  latency: runLatency,
};

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, rej) =>
      t = setTimeout(() => rej(new Error(`${what}: timeout after ${ms} ms`)), ms)
    ),
  ]).finally(() => clearTimeout(t));
}

async function which(bin: string): Promise<boolean> {
  try {
    const out = await new Deno.Command("sh", {
      args: ["-c", `command -v ${bin}`],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/** Installs the Debian packages of the peers that are missing (root only, unless disabled). */
async function ensureInstalled(
  progress: Progress,
  wanted: string[],
): Promise<Record<string, string>> {
  const pkgs: Record<string, [string, string]> = {
    rabbitmq: ["rabbitmq-server", "/usr/lib/rabbitmq/bin/rabbitmq-server"],
    nats: ["nats-server", "nats-server"],
    redis: ["redis-server", "redis-server"],
  };
  const need: string[] = [];
  for (const p of wanted) if (pkgs[p] && !(await which(pkgs[p][1]))) need.push(p);
  const problems: Record<string, string> = {};
  if (need.length === 0) return problems;
  if (Deno.env.get("COMPETITIVE_NO_INSTALL") || Deno.uid?.() !== 0) {
    for (const p of need) {
      problems[p] = `${pkgs[p][0]} is not installed (and installing is disabled or needs root)`;
    }
    return problems;
  }
  progress.log(`installing ${need.map((p) => pkgs[p][0]).join(", ")} with apt-get …`);
  const env = { ...Deno.env.toObject(), DEBIAN_FRONTEND: "noninteractive" };
  const run = (args: string[]) =>
    new Deno.Command("apt-get", { args, env, stdout: "piped", stderr: "piped" }).output();
  let out = await run(["install", "-y", "--no-install-recommends", ...need.map((p) => pkgs[p][0])]);
  if (!out.success) {
    await run(["update"]);
    out = await run(["install", "-y", "--no-install-recommends", ...need.map((p) => pkgs[p][0])]);
  }
  for (const p of need) {
    if (!(await which(pkgs[p][1]))) {
      problems[p] = `apt-get install ${pkgs[p][0]} failed: ${
        new TextDecoder().decode(out.stderr).slice(-500)
      }`;
    }
  }
  return problems;
}

async function main(): Promise<void> {
  const only = Deno.env.get("PEERS")?.split(",").map((s) => s.trim());
  const peers = PEERS.filter(([id]) => !only || only.includes(id));
  const date = new Date().toISOString();
  const before = loadavg();
  const progress = new Progress(peers.length);
  const problems = await ensureInstalled(progress, peers.map(([id]) => id));
  const figures: Figure[] = [];
  /** Every (system, workload, client processes) figure, including the ones not in the table. */
  const allFigures: Figure[] = [];
  const notes: string[] = [
    "Kafka is not included: it has no Debian package and these machines can download nothing " +
    "but npm and Debian packages (no Apache/Confluent archives, no JVM tarballs).",
  ];
  const columns: string[] = [];
  const durability: Record<string, string> = {};
  const versions: Record<string, string> = {};
  for (const [id, peer] of peers) {
    progress.update(`${peer.name}: starting`, 0, true);
    if (problems[id]) {
      notes.push(`${peer.name}: skipped — ${problems[id]}`);
      progress.step(peer.name);
      continue;
    }
    let running: RunningPeer;
    try {
      running = await peer.start();
    } catch (e) {
      notes.push(`${peer.name}: could not start — ${(e as Error).message.slice(0, 600)}`);
      progress.log(`${peer.name}: could not start: ${(e as Error).message}`);
      progress.step(peer.name);
      continue;
    }
    try {
      for (const { label, adapter } of running.adapters) {
        columns.push(label);
        durability[label] = peer.durability;
        versions[label] = peer.version;
        const t: Target0 = { peerId: id, info: running.info, label, ad: adapter };
        for (const w of WORKLOADS) {
          // Throughput workloads run with 1 and with 2 client processes; the table keeps the
          // better median per system (the client must not be what limits a system).
          const procsList = w.id === "latency" ? [1] : CLIENT_PROCS;
          const candidates: Figure[] = [];
          for (const procs of procsList) {
            const samples: Sample[] = [];
            for (let r = 0; r < RUNS; r++) {
              progress.update(
                `${label}: ${w.name}, ${procs} client proc(s) (run ${r + 1}/${RUNS})`,
                0,
                true,
              );
              const q = qname(w.id);
              try {
                await adapter.createQueue(q);
                samples.push(
                  await withTimeout(RUNNERS[w.id](t, q, procs), RUN_TIMEOUT_MS, `${label} ${w.id}`),
                );
              } catch (e) {
                const msg = `${label}, ${w.name}, ${procs} client proc(s): run ${r + 1} failed — ${
                  (e as Error).message.slice(0, 300)
                }`;
                notes.push(msg);
                progress.log(msg);
                break;
              } finally {
                await adapter.deleteQueue(q).catch(() => {});
              }
            }
            if (samples.length) {
              const f = figure(label, w.name, w.unit, samples, {
                better: w.unit === "ms" ? "lower" : "higher",
                note: `${procs} client process${procs > 1 ? "es" : ""}`,
              });
              candidates.push(f);
              allFigures.push({ ...f, name: `${w.name} [${procs} client proc(s)]` });
            }
          }
          if (candidates.length) {
            figures.push(
              candidates.sort((a, b) =>
                a.better === "higher" ? b.median - a.median : a.median - b.median
              )[0],
            );
          }
        }
      }
    } finally {
      progress.update(`${peer.name}: stopping`, 0, true);
      await running.stop().catch((e) => notes.push(`${peer.name}: stop failed — ${e}`));
    }
    progress.step(peer.name);
  }
  progress.finish();

  // One table: workloads × systems.
  const cell = (f: Figure | undefined) =>
    f
      ? `${fmt(f.median, f.unit)} (${fmt(f.min, f.unit)}–${fmt(f.max, f.unit)})${
        f.note?.startsWith("2") ? " ²" : ""
      }`
      : "–";
  const lines = [
    `| workload (1 KiB, durable) | ${columns.join(" | ")} |`,
    `|---|${columns.map(() => "---:").join("|")}|`,
  ];
  for (const w of WORKLOADS) {
    lines.push(
      `| ${w.name} [${w.unit}] | ${
        columns.map((c) => cell(figures.find((f) => f.group === c && f.name === w.name))).join(
          " | ",
        )
      } |`,
    );
  }
  lines.push(`| e2e latency p99 at ${LIGHT_RATE} msg/s [ms] | ${
    columns.map((c) => {
      const f = figures.find((x) => x.group === c && x.name === WORKLOADS[0].name);
      return f ? fmt(f.extra?.p99, "ms") : "–";
    }).join(" | ")
  } |`);
  for (const w of WORKLOADS.slice(1)) {
    lines.push(`| server CPU during ${w.id} [% of a core] | ${
      columns.map((c) => {
        const f = figures.find((x) => x.group === c && x.name === w.name);
        return f ? fmt(f.serverCpu, "%") : "–";
      }).join(" | ")
    } |`);
  }
  const table = lines.join("\n");

  const best = (wname: string) =>
    figures.filter((f) => f.group !== "Fila" && f.name === wname).sort((a, b) =>
      b.median - a.median
    )[0];
  const mine = (wname: string) => figures.find((f) => f.group === "Fila" && f.name === wname);
  const targets: Target[] = [];
  for (const [w, factor] of [[WORKLOADS[2].name, 2], [WORKLOADS[3].name, 1.5]] as const) {
    const b = best(w);
    const m = mine(w);
    if (b && m) {
      targets.push({
        what: `Fila ${w} vs best peer`,
        goal: `≥ ${factor}×`,
        measured: `${(m.median / b.median).toFixed(2)}× (${fmt(m.median)} vs ${b.group} ${
          fmt(b.median)
        } msg/s)`,
        met: m.median >= factor * b.median,
      });
    }
  }
  const results: Results = {
    kind: "competitive",
    commit: await commitId(),
    date,
    mode: QUICK ? "quick" : "full",
    runsPerFigure: RUNS,
    machine: { ...machine(), versions },
    loadavgBefore: before,
    loadavgAfter: loadavg(),
    figures: allFigures,
    targets,
    notes,
  };
  const md = [
    `## Competitive benchmark — ${results.mode} mode, ${RUNS} run(s) per figure, median (min–max)`,
    "",
    `commit ${results.commit}, ${date}, ${results.machine.cores} cores (${results.machine.cpu}); ` +
    `load average before ${before.join(" ")}, after ${
      results.loadavgAfter.join(" ")
    } (shared machine)`,
    "",
    table,
    "",
    "Cells: median (min–max) of the better of 1 and 2 client processes; ² = 2 client processes " +
    "were better. Server CPU is the broker's processes only (% of one core; 200 % = both cores).",
    "",
    "### Targets",
    "",
    targetsTable(targets),
    "",
    "### Systems and durability",
    "",
    ...columns.map((c) => `- **${c}** (${versions[c]}): ${durability[c]}`),
    "",
    ...(notes.length ? ["### Notes", "", ...notes.map((n) => `- ${n}`), ""] : []),
  ].join("\n");
  const file = await writeResults(results);
  await Deno.writeTextFile(file.replace(/\.json$/, ".md"), md);
  console.log(md);
  console.log(`results: ${file}`);
}

if (import.meta.main) await main();
