/**
 * CPU profile of the broker under one load. The broker (store, scheduler, gRPC server, wired as
 * in src/main.ts) runs in this process; the load runs in a client subprocess; afterwards the
 * broker shuts down cleanly and the process exits naturally, so `--cpu-prof` writes a profile
 * (a broker killed by a signal or Deno.exit writes none). Prints the top functions by self time.
 *
 *   deno task bench:profile unary      # unary Enqueue, 64 in flight, 1 KiB
 *   deno task bench:profile batch      # BatchEnqueue, 1 KiB
 *   deno task bench:profile lifecycle  # produce → consume → ack, 1 KiB
 *   deno task bench:profile drain      # consume → ack of a pre-filled queue
 *   PROFILE_DIR=/tmp/prof TOTAL=100000 deno task bench:profile batch
 */
import { join } from "node:path";
import { Authenticator } from "../src/auth/authenticator.ts";
import { ApiKeyAdmin } from "../src/auth/key_admin.ts";
import { systemClock } from "../src/core/clock.ts";
import { createLogger } from "../src/core/log.ts";
import { createLuaEngine } from "../src/lua/mod.ts";
import { Scheduler } from "../src/scheduler/mod.ts";
import { startServer } from "../src/server/grpc_server.ts";
import { DEFAULTS } from "../src/config/config.ts";
import { tuneNativeMemory } from "../src/core/native_memory.ts";
import { KvApiKeyStore } from "../src/storage/api_key_store.ts";
import { SegmentStore } from "../src/storage/segment_store.ts";
import { deliveredSize } from "../src/wire/delivery.ts";
import { BenchClient } from "./lib/client.ts";
import { batchProduce, drainRate, lifecycle, unaryProduce } from "./lib/load.ts";
import type { BenchBroker } from "./lib/broker.ts";
import { CpuMeter } from "./lib/report.ts";

const MODE = Deno.args[0] ?? "batch";
const TOTAL = Number(Deno.env.get("TOTAL") ?? 100_000);

/** The client side: runs in a subprocess (`profile.ts --client MODE ADDR`). */
async function client(mode: string, addr: string): Promise<void> {
  const b: BenchBroker = {
    addr,
    meter: () => new CpuMeter(() => []),
    rss: () => NaN,
    stop: () => Promise.resolve(),
  };
  const c = new BenchClient(addr);
  const q = `prof-${mode}`;
  await c.createQueue(q);
  let s;
  if (mode === "unary") {
    s = await unaryProduce(b, q, { total: TOTAL / 4, size: 1024, inFlight: 64 });
  } else if (mode === "batch") s = await batchProduce(b, q, { total: TOTAL, size: 1024 });
  else if (mode === "lifecycle") s = await lifecycle(b, q, { total: TOTAL, size: 1024 });
  else if (mode === "drain") {
    await batchProduce(b, q, { total: TOTAL, size: 1024 });
    s = await drainRate(b, q, { total: TOTAL, maxUnacked: 4096 });
  } else throw new Error(`unknown mode ${mode}`);
  console.log(`${mode}: ${Math.round(s.value)} msg/s (client CPU ${s.clientCpu?.toFixed(0)} %)`);
  await c.deleteQueue(q);
  c.close();
}

/** CPU seconds per thread of this process: tid → [thread name, seconds]. */
function threadCpu(): Map<string, [string, number]> {
  const out = new Map<string, [string, number]>();
  for (const e of Deno.readDirSync("/proc/self/task")) {
    try {
      const st = Deno.readTextFileSync(`/proc/self/task/${e.name}/stat`);
      const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
      const name = Deno.readTextFileSync(`/proc/self/task/${e.name}/comm`).trim();
      out.set(e.name, [name, (Number(f[11]) + Number(f[12])) / 100]);
    } catch { /* thread ended */ }
  }
  return out;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/** Coarse area of a profile frame. */
function areaOf(fn: string, url: string): string {
  if (fn === "(idle)") return "idle (main thread waiting: I/O, storage commits)";
  if (fn === "(garbage collector)") return "garbage collection";
  if (url.includes("@grpc/grpc-js")) return "grpc-js server layers";
  if (url.includes("/src/storage/")) return "Fila storage (encode, index, commit)";
  if (url.includes("/src/scheduler/")) return "Fila scheduler";
  if (url.includes("/src/")) return "Fila server / wire / other";
  if (fn.startsWith("op_kv")) return "Deno KV ops (main-thread part)";
  if (url.startsWith("ext:") || url === "") {
    return "Deno runtime: node:http2, buffers, timers, natives";
  }
  return "other";
}

/** Top functions by self time of a .cpuprofile. */
export function summarize(file: string, top = 30): string {
  const prof = JSON.parse(Deno.readTextFileSync(file)) as {
    nodes: ProfileNode[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const category = new Map<string, number>();
  let total = 0;
  prof.samples.forEach((id, i) => {
    const dt = prof.timeDeltas[i] ?? 0;
    total += dt;
    const n = byId.get(id)!;
    const url = n.callFrame.url.replace(/^.*\/(node_modules|src|bench|ext|npm)\//, "$1/");
    const key = `${n.callFrame.functionName || "(anonymous)"} ${url}:${n.callFrame.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    const cat = areaOf(n.callFrame.functionName, n.callFrame.url);
    category.set(cat, (category.get(cat) ?? 0) + dt);
  });
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  const cats = [...category.entries()].sort((a, b) => b[1] - a[1]);
  return "by area:\n" +
    cats.map(([k, v]) => `${(v / total * 100).toFixed(1).padStart(5)} %  ${k}`).join("\n") +
    "\n\ntop functions:\n" +
    rows.map(([k, v]) => `${(v / total * 100).toFixed(1).padStart(5)} %  ${k}`).join("\n");
}

async function broker(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "fila-profile-" });
  const log = createLogger("warn");
  const store = await SegmentStore.open(join(dir, "fila.kv"));
  const hooks = await createLuaEngine({ configLookup: (k) => scheduler.lookupConfig(k) });
  // As src/main.ts runs it: default payload cache and malloc tuning.
  tuneNativeMemory();
  const scheduler = new Scheduler({
    store,
    hooks,
    quantum: 1000,
    deliveredSize,
    log,
    payloadBudgetBytes: DEFAULTS.storage.payloadCacheMb * 1_048_576,
  });
  const apiKeys = new KvApiKeyStore(store.kv);
  const authenticator = new Authenticator({ store: apiKeys, clock: systemClock });
  const keyAdmin = new ApiKeyAdmin(apiKeys, systemClock, log);
  const server = await startServer({
    scheduler,
    listenAddr: "127.0.0.1:0",
    log,
    authenticator,
    keyAdmin,
  });
  await scheduler.start();
  server.health.setServing(true);
  const meter = new CpuMeter(() => [Deno.pid]).start();
  const threads0 = threadCpu();
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      new URL(import.meta.url).pathname,
      "--client",
      MODE,
      `127.0.0.1:${server.port}`,
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const st = await child.status;
  console.log(`broker CPU during the run: ${meter.stop().toFixed(0)} % of one core`);
  const secs = (performance.now() - t0) / 1000;
  const threads1 = threadCpu();
  const byName = new Map<string, number>();
  for (const [tid, [name, cpu]] of threads1) {
    const before = threads0.get(tid)?.[1] ?? 0;
    byName.set(name, (byName.get(name) ?? 0) + (cpu - before));
  }
  console.log(
    "broker threads (% of one core): " +
      [...byName.entries()].filter(([, v]) => v / secs > 0.01).sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${(100 * v / secs).toFixed(0)} %`).join(", "),
  );
  server.health.endWatches();
  apiKeys.close();
  await scheduler.shutdown();
  await server.stop(1000);
  await Deno.remove(dir, { recursive: true });
  if (!st.success) throw new Error("client failed");
}

if (Deno.args[0] === "--client") {
  await client(Deno.args[1], Deno.args[2]);
} else if (Deno.args[0] === "--summarize") {
  console.log(summarize(Deno.args[1], Number(Deno.args[2] ?? 30)));
} else if (!Deno.env.get("FILA_PROFILE_CHILD")) {
  // Re-run this script as the profiled broker, then summarize the newest profile.
  const profDir = Deno.env.get("PROFILE_DIR") ?? await Deno.makeTempDir({ prefix: "fila-prof-" });
  const st = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--unstable-kv",
      "--cpu-prof",
      `--cpu-prof-dir=${profDir}`,
      new URL(import.meta.url).pathname,
      MODE,
    ],
    env: { FILA_PROFILE_CHILD: "1" },
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!st.success) Deno.exit(1);
  const files = [...Deno.readDirSync(profDir)].filter((e) => e.name.endsWith(".cpuprofile"))
    .map((e) => join(profDir, e.name))
    .sort((a, b) => Deno.statSync(b).mtime!.getTime() - Deno.statSync(a).mtime!.getTime());
  console.log(`profile: ${files[0]}\n\ntop functions by self time (broker process):`);
  console.log(summarize(files[0]));
} else {
  await broker();
}
