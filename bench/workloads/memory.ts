/**
 * Memory and recovery: broker RSS idle; RSS with N pending 1 KiB messages (N = 1,000,000 in full
 * mode, filled with pipelined BatchEnqueue); then kill -9 and restart, timing spawn → health
 * SERVING (recovery of N pending, depth verified), and RSS after recovery; the restart is
 * repeated RUNS times. The broker process is managed here rather than by the conformance
 * harness, whose readiness timeout (10 s) is shorter than a large recovery may take.
 */
import { FilaClient } from "../../conformance/client.ts";
import { MAIN_TS } from "../../conformance/harness.ts";
import { BenchClient } from "../lib/client.ts";
import { batchProduce } from "../lib/load.ts";
import { type BenchBroker, EXTERNAL, qname } from "../lib/broker.ts";
import { CpuMeter, type Figure, figure, rssBytes, RUNS, type Sample } from "../lib/report.ts";
import { type Ctx, size, type Workload } from "../lib/workload.ts";

const MiB = 1024 * 1024;
export const PENDING = size(1_000_000, 50_000);
/** How long a recovery may take before the run is declared failed. */
const READY_TIMEOUT_MS = 300_000;

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Peak RSS of a process (VmHWM) in bytes. */
function hwm(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** A broker process on a fixed directory and port that can be killed and started again. */
class Restartable {
  child: Deno.ChildProcess | null = null;
  readonly addr: string;
  constructor(readonly dir: string, readonly port: number) {
    this.addr = `127.0.0.1:${port}`;
    Deno.writeTextFileSync(`${dir}/fila.toml`, `[server]\nlisten_addr = "${this.addr}"\n`);
  }

  get pid(): number {
    return this.child!.pid;
  }

  /** Spawns the broker and resolves with milliseconds from spawn to health SERVING. */
  async start(): Promise<number> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(Deno.env.toObject())) {
      if (!k.startsWith("FILA_")) env[k] = v;
    }
    Object.assign(env, { NO_COLOR: "1", FILA_DATA_DIR: `${this.dir}/data`, FILA_LOG: "warn" });
    const t0 = performance.now();
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--unstable-kv", MAIN_TS],
      cwd: this.dir,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    let exited = false;
    this.child.status.then(() => exited = true);
    const c = new FilaClient(this.addr);
    try {
      while (true) {
        if (exited) throw new Error("broker exited during recovery");
        if (performance.now() - t0 > READY_TIMEOUT_MS) {
          throw new Error(`broker not SERVING after ${READY_TIMEOUT_MS} ms`);
        }
        try {
          if (await c.healthCheck("", { deadlineMs: 1000 }) === "SERVING") break;
        } catch { /* not up yet */ }
        await sleep(20);
      }
    } finally {
      c.close();
    }
    return performance.now() - t0;
  }

  async kill(signal: Deno.Signal = "SIGKILL"): Promise<void> {
    if (!this.child) return;
    try {
      this.child.kill(signal);
    } catch { /* exited */ }
    await this.child.status;
    this.child = null;
  }

  asBench(): BenchBroker {
    return {
      addr: this.addr,
      meter: () => new CpuMeter(() => [this.pid]),
      rss: () => rssBytes(this.pid),
      stop: () => this.kill("SIGTERM"),
    };
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export const memory: Workload = {
  id: "memory",
  title: "RSS and recovery",
  async run(ctx: Ctx): Promise<Figure[]> {
    if (EXTERNAL) {
      ctx.log("memory/recovery: skipped with FILA_ADDR (needs its own broker process)");
      return [];
    }
    const out: Figure[] = [];
    const n = PENDING.toLocaleString("en-US");
    const dir = await Deno.makeTempDir({ prefix: "fila-bench-mem-" });
    const b = new Restartable(dir, freePort());
    try {
      // Idle RSS: a fresh broker (empty data directory), RUNS times, 2 s after SERVING.
      const idle: Sample[] = [];
      for (let i = 0; i < RUNS; i++) {
        ctx.progress.update(`RSS idle (run ${i + 1}/${RUNS})`, 0, true);
        await Deno.remove(`${dir}/data`, { recursive: true }).catch(() => {});
        await b.start();
        await sleep(2000);
        idle.push({ value: rssBytes(b.pid) / MiB });
        await b.kill("SIGTERM");
      }
      out.push(figure("memory", "broker RSS idle", "MiB", idle, { better: "lower" }));

      await Deno.remove(`${dir}/data`, { recursive: true }).catch(() => {});
      await b.start();
      const c = new BenchClient(b.addr);
      const q = qname("pending");
      try {
        await c.createQueue(q);
        const label = `fill ${n} pending`;
        const fill = await batchProduce(b.asBench(), q, {
          total: PENDING,
          size: 1024,
          inFlight: 8,
          onProgress: (f) => ctx.progress.update(label, f),
        });
        out.push(figure("memory", `BatchEnqueue fill of ${n} pending`, "msg/s", [fill], {
          note: "one fill (a single run)",
        }));
      } finally {
        c.close();
      }
      // V8 gives back the fill's garbage once the process has been idle for ~8 s: report the
      // settled figure, with the first one in the note.
      const trace: number[] = [];
      for (let i = 0; i < 15; i++) {
        ctx.progress.update("RSS after the fill", i / 15, true);
        await sleep(1000);
        trace.push(rssBytes(b.pid) / MiB);
      }
      const rssFull: Sample[] = trace.slice(-3).map((value) => ({ value }));
      out.push(
        figure("memory", `broker RSS with ${n} pending (after fill, 15 s idle)`, "MiB", rssFull, {
          better: "lower",
          note: `last 3 of 15 samples 1 s apart; ${trace[0].toFixed(0)} MiB 1 s after the fill; ` +
            `peak (VmHWM) ${(hwm(b.pid) / MiB).toFixed(0)} MiB`,
        }),
      );
      const rec: Sample[] = [];
      const rssRec: Sample[] = [];
      try {
        for (let i = 0; i < RUNS; i++) {
          ctx.progress.update(`recovery of ${n} pending (run ${i + 1}/${RUNS})`, 0, true);
          await b.kill("SIGKILL");
          const ms = await b.start();
          rec.push({ value: ms / 1000 });
          const probe = new FilaClient(b.addr);
          const st = await probe.getStats(q);
          probe.close();
          if (st.depth !== PENDING) {
            throw new Error(`after recovery depth ${st.depth}, expected ${PENDING}`);
          }
          await sleep(1000);
          const early = rssBytes(b.pid) / MiB;
          await sleep(14_000); // settled, as after the fill
          rssRec.push({
            value: rssBytes(b.pid) / MiB,
            extra: { "MiB 1 s after SERVING": early, "peak MiB": hwm(b.pid) / MiB },
          });
        }
      } finally {
        if (rec.length) {
          out.push(
            figure("memory", `recovery of ${n} pending (kill -9 → SERVING)`, "s", rec, {
              better: "lower",
              note: "spawn of the Deno process to health SERVING, depth verified after",
            }),
          );
        }
        if (rssRec.length) {
          out.push(
            figure(
              "memory",
              `broker RSS with ${n} pending (after recovery, 15 s idle)`,
              "MiB",
              rssRec,
              {
                better: "lower",
              },
            ),
          );
        }
      }
    } catch (e) {
      ctx.log(`memory workload: ${(e as Error).message}`);
      if (out.length === 0) throw e;
    } finally {
      await b.kill("SIGKILL");
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
    return out;
  },
};
