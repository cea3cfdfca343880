/**
 * Figures, repetition, progress bar, machine description, JSON results and the Markdown summary
 * shared by `bench/main.ts` and `bench/competitive/main.ts`.
 */
import { fileURLToPath } from "node:url";

export const QUICK = Deno.env.get("BENCH_QUICK") === "1";
/** Runs per figure: ≥ 3 by default, 1 in quick mode. */
export const RUNS = Number(Deno.env.get("RUNS") ?? (QUICK ? 1 : 3));

/** One measured run: the value, plus what the processes involved spent. */
export interface Sample {
  value: number;
  /** CPU used by the broker (or peer) during the measured window, % of one core. */
  serverCpu?: number;
  /** CPU used by the benchmark's own process(es), % of one core. */
  clientCpu?: number;
  /** Extra numbers of the run (e.g. p95, p99 for a latency run). */
  extra?: Record<string, number>;
}

export interface Figure {
  group: string;
  name: string;
  unit: string;
  /** "higher" or "lower" is better. */
  better: "higher" | "lower";
  runs: Sample[];
  median: number;
  min: number;
  max: number;
  serverCpu?: number;
  clientCpu?: number;
  extra?: Record<string, number>;
  note?: string;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** Summarizes runs; the median run's CPU figures and extras are the medians over runs. */
export function figure(
  group: string,
  name: string,
  unit: string,
  runs: Sample[],
  opts: { better?: "higher" | "lower"; note?: string } = {},
): Figure {
  const values = runs.map((r) => r.value);
  const med = (f: (r: Sample) => number | undefined) => {
    const xs = runs.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
    return xs.length ? median(xs) : undefined;
  };
  let extra: Record<string, number> | undefined;
  for (const k of Object.keys(runs[0]?.extra ?? {})) {
    extra ??= {};
    extra[k] = med((r) => r.extra?.[k])!;
  }
  return {
    group,
    name,
    unit,
    better: opts.better ?? "higher",
    runs,
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    serverCpu: med((r) => r.serverCpu),
    clientCpu: med((r) => r.clientCpu),
    extra,
    note: opts.note,
  };
}

// --------------------------------------------------------------------------------------------
// Progress bar (stderr)

const te = new TextEncoder();
const isTty = Deno.stderr.isTerminal();

export class Progress {
  total: number;
  done = 0;
  label = "";
  #start = performance.now();
  #last = 0;
  constructor(total: number) {
    this.total = total;
  }
  /** Sets the current step's label and the fraction of the step done (0..1). */
  update(label: string, fraction = 0, force = false): void {
    this.label = label;
    const now = performance.now();
    if (!force && now - this.#last < (isTty ? 100 : 5000)) return;
    this.#last = now;
    const f = Math.min(1, (this.done + Math.min(1, fraction)) / this.total);
    const width = 30;
    const filled = Math.round(f * width);
    const bar = "#".repeat(filled) + ".".repeat(width - filled);
    const secs = Math.round((now - this.#start) / 1000);
    const line = `[${bar}] ${(f * 100).toFixed(0).padStart(3)}% ${secs}s ${label}`;
    Deno.stderr.writeSync(te.encode(isTty ? `\r\x1b[K${line.slice(0, 150)}` : line + "\n"));
  }
  step(label: string): void {
    this.done++;
    this.update(label, 0, true);
  }
  log(line: string): void {
    Deno.stderr.writeSync(te.encode((isTty ? "\r\x1b[K" : "") + line + "\n"));
    this.update(this.label, 0, true);
  }
  finish(): void {
    this.done = this.total;
    this.update("done", 0, true);
    if (isTty) Deno.stderr.writeSync(te.encode("\n"));
  }
}

// --------------------------------------------------------------------------------------------
// CPU accounting (Linux /proc)

const TICKS = 100;

/** CPU seconds (user + system, all threads) of a process so far; NaN when unknown. */
export function cpuSeconds(pid: number): number {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / TICKS;
  } catch {
    return NaN;
  }
}

/** Resident set size of a process in bytes (VmRSS), NaN when unknown. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** All descendants of `pid` (for peers started through wrapper scripts). */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const kids = (p: number): number[] => {
    try {
      const tasks = [...Deno.readDirSync(`/proc/${p}/task`)].map((e) => e.name);
      const res: number[] = [];
      for (const t of tasks) {
        try {
          const c = Deno.readTextFileSync(`/proc/${p}/task/${t}/children`).trim();
          if (c) res.push(...c.split(/\s+/).map(Number));
        } catch { /* gone */ }
      }
      return res;
    } catch {
      return [];
    }
  };
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    for (const k of kids(p)) {
      out.push(k);
      stack.push(k);
    }
  }
  return out;
}

/** Measures CPU % of one core of a set of processes over a window. */
export class CpuMeter {
  #pids: () => number[];
  #start = 0;
  #cpu = 0;
  #extra = 0;
  constructor(pids: () => number[]) {
    this.#pids = pids;
  }
  /** Adds CPU seconds used by processes that are not (or no longer) in the pid list. */
  addSeconds(s: number): this {
    this.#extra += s;
    return this;
  }
  #total(): number {
    return this.#pids().reduce((s, p) => s + (cpuSeconds(p) || 0), 0);
  }
  start(): this {
    this.#start = performance.now();
    this.#cpu = this.#total();
    return this;
  }
  /** % of one core since start(). */
  stop(): number {
    const secs = (performance.now() - this.#start) / 1000;
    return (100 * (this.#total() - this.#cpu + this.#extra)) / secs;
  }
}

/**
 * CPU of this benchmark process. Client subprocesses report the CPU they used while measuring
 * themselves (they may be gone when the meter stops); add it with addSeconds().
 */
export function clientMeter(): CpuMeter {
  return new CpuMeter(() => [Deno.pid]);
}

// --------------------------------------------------------------------------------------------
// Machine and run description

function readOr(path: string, fallback = ""): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return fallback;
  }
}

export function loadavg(): number[] {
  return readOr("/proc/loadavg", "0 0 0").split(" ").slice(0, 3).map(Number);
}

export async function commitId(): Promise<string> {
  try {
    const root = fileURLToPath(new URL("../../", import.meta.url));
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "--short", "HEAD"],
      cwd: root,
      stderr: "null",
    }).output();
    const id = new TextDecoder().decode(out.stdout).trim();
    if (!id) return "unknown";
    const dirty = await new Deno.Command("git", {
      args: ["status", "--porcelain", "--untracked-files=no"],
      cwd: root,
      stderr: "null",
    }).output();
    return new TextDecoder().decode(dirty.stdout).trim() ? `${id}+dirty` : id;
  } catch {
    return "unknown";
  }
}

export function machine(): Record<string, unknown> {
  const cpuinfo = readOr("/proc/cpuinfo");
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? "unknown";
  const mem = /MemTotal:\s+(\d+) kB/.exec(readOr("/proc/meminfo"))?.[1];
  return {
    cores: navigator.hardwareConcurrency,
    cpu: model,
    memGiB: mem ? Math.round(Number(mem) / 1024 / 1024) : undefined,
    os: Deno.build.os,
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    hostname: Deno.hostname(),
  };
}

export interface Results {
  kind: string;
  commit: string;
  date: string;
  mode: "quick" | "full";
  runsPerFigure: number;
  machine: Record<string, unknown>;
  loadavgBefore: number[];
  loadavgAfter: number[];
  figures: Figure[];
  targets?: Target[];
  notes?: string[];
}

export interface Target {
  what: string;
  goal: string;
  measured: string;
  met: boolean | null;
  limitedBy?: string;
}

export async function writeResults(r: Results): Promise<string> {
  const dir = new URL("../results/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  const file = new URL(`${r.kind}-${r.date.replaceAll(":", "-")}.json`, dir);
  await Deno.writeTextFile(file, JSON.stringify(r, null, 2) + "\n");
  return fileURLToPath(file);
}

export function fmt(n: number | undefined, unit = ""): string {
  if (n === undefined || !Number.isFinite(n)) return "–";
  const abs = Math.abs(n);
  let s: string;
  if (unit === "ms" || unit === "%" || unit === "s" || unit === "µs") {
    s = abs >= 100 ? n.toFixed(0) : abs >= 10 ? n.toFixed(1) : n.toFixed(2);
  } else if (unit === "MiB") s = n.toFixed(0);
  else s = Math.round(n).toLocaleString("en-US");
  return s;
}

/** The Markdown table of figures, grouped. */
export function figuresTable(figures: Figure[]): string {
  const lines = [
    "| group | workload | median | min | max | unit | server CPU | bench CPU | notes |",
    "|---|---|---:|---:|---:|---|---:|---:|---|",
  ];
  for (const f of figures) {
    const extra = f.extra
      ? Object.entries(f.extra).map(([k, v]) =>
        `${k} ${fmt(v, k.includes("/s") ? "" : k.includes("%") ? "%" : f.unit)}`
      ).join(", ")
      : "";
    const note = [extra, f.note ?? ""].filter(Boolean).join("; ");
    lines.push(
      `| ${f.group} | ${f.name} | ${fmt(f.median, f.unit)} | ${fmt(f.min, f.unit)} | ${
        fmt(f.max, f.unit)
      } | ${f.unit} | ${f.serverCpu !== undefined ? fmt(f.serverCpu, "%") + " %" : "–"} | ${
        f.clientCpu !== undefined ? fmt(f.clientCpu, "%") + " %" : "–"
      } | ${note} |`,
    );
  }
  return lines.join("\n");
}

export function targetsTable(targets: Target[]): string {
  const lines = [
    "| target | goal | measured | met | limited by |",
    "|---|---|---|:---:|---|",
  ];
  for (const t of targets) {
    const met = t.met === null ? "n/a" : t.met ? "yes" : "**no**";
    lines.push(`| ${t.what} | ${t.goal} | ${t.measured} | ${met} | ${t.limitedBy ?? ""} |`);
  }
  return lines.join("\n");
}

/** Runs `fn` RUNS times (with a progress label) and summarizes. */
export async function repeat(
  progress: Progress,
  label: string,
  fn: (run: number) => Promise<Sample>,
  runs = RUNS,
): Promise<Sample[]> {
  const out: Sample[] = [];
  for (let i = 0; i < runs; i++) {
    progress.update(`${label} (run ${i + 1}/${runs})`, 0, true);
    out.push(await fn(i));
  }
  return out;
}
