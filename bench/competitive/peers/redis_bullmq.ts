/**
 * Redis (Debian `redis-server`) with BullMQ: appendonly yes, appendfsync everysec, no RDB
 * snapshots. Producing = Queue.add / Queue.addBulk; consuming = a BullMQ Worker (concurrency
 * 256) whose processor completes each job (removeOnComplete), which is BullMQ's ack.
 */
import { createRequire } from "node:module";
import {
  type Adapter,
  commandOutput,
  freePort,
  type Peer,
  type RunningPeer,
  runningPeer,
  ServerProc,
  stampOf,
  stopAndRemove,
} from "../peer.ts";

export const BULLMQ = "bullmq@5.81.5";

/**
 * BullMQ from a private npm install (~/.cache/fila-bench/npm): Deno's own npm resolver fails on
 * msgpackr-extract's optional platform packages (msgpackr-extract 3.0.7 asks for platform
 * builds 3.0.7 that the registry does not list), which npm skips as optional.
 */
// deno-lint-ignore no-explicit-any
async function bullmq(): Promise<any> {
  const home = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/tmp"}/.cache`;
  const dir = `${home}/fila-bench/npm`;
  const entry = `${dir}/node_modules/bullmq/dist/cjs/index.js`;
  try {
    await Deno.stat(entry);
  } catch {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(`${dir}/package.json`, '{"name":"fila-bench-peers","private":true}\n');
    const out = await new Deno.Command("npm", {
      args: ["install", "--no-audit", "--no-fund", "--prefix", dir, BULLMQ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `npm install ${BULLMQ} failed: ${new TextDecoder().decode(out.stderr).slice(-800)}`,
      );
    }
  }
  return createRequire(entry)(entry);
}
const PAYLOAD_FIELD = "x".repeat(1024 - 8);

export const redisBullmq: Peer = {
  name: "Redis + BullMQ",
  version: "",
  durability:
    "appendonly yes, appendfsync everysec: Redis replies after the write reaches the AOF " +
    "buffer/page cache; a background fsync runs once per second, so up to ~1 s of " +
    "acknowledged jobs can be lost on power failure or kernel crash (a process crash alone " +
    "loses nothing written to the OS). Nobody fsyncs before the ack.",
  async start(): Promise<RunningPeer> {
    const v = await commandOutput("redis-server", ["--version"]);
    this.version = /v=([\d.]+)/.exec(v)?.[1] ?? v.trim();
    const dir = await Deno.makeTempDir({ prefix: "bench-redis-" });
    const port = freePort();
    const proc = new ServerProc("redis-server", [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--appendonly",
      "yes",
      "--appendfsync",
      "everysec",
      "--save",
      "",
      "--daemonize",
      "no",
      "--protected-mode",
      "yes",
      "--maxmemory-policy",
      "noeviction",
    ], {});
    return runningPeer({
      proc,
      port,
      startupMs: 15_000,
      stopServer: () => stopAndRemove(proc, dir),
      connect: () => connectRedis(port, () => [proc.pid]),
    });
  },
  connect: async (info) => (await connectRedis(info.port, () => [])).labeled,
};

async function connectRedis(port: number, pids: () => number[]) {
  const { Queue, Worker } = await bullmq();
  const connection = { host: "127.0.0.1", port, maxRetriesPerRequest: null };
  const queues = new Map<string, InstanceType<typeof Queue>>();
  const queueOf = (q: string) => {
    let x = queues.get(q);
    if (!x) {
      x = new Queue(q, { connection, defaultJobOptions: { removeOnComplete: true } });
      queues.set(q, x);
    }
    return x;
  };
  const data = (p: Uint8Array) => ({ t: stampOf(p), p: PAYLOAD_FIELD });
  const workers = new Set<{ close(): Promise<void> }>();
  const adapter: Adapter = {
    pids,
    createQueue: async (q) => void await queueOf(q).waitUntilReady(),
    deleteQueue: async (q) => {
      const x = queueOf(q);
      await x.obliterate({ force: true });
      await x.close();
      queues.delete(q);
    },
    sendOne: async (q, p) => void await queueOf(q).add("j", data(p)),
    sendBatch: async (q, ps) =>
      void await queueOf(q).addBulk(ps.map((p) => ({ name: "j", data: data(p) }))),
    consume: async (q, onMessages) => {
      // Counted once the job completes (the worker moves it to completed = the ack).
      const w = new Worker(q, () => Promise.resolve(), {
        connection,
        concurrency: 256,
        removeOnComplete: { count: 0 },
      });
      w.on("completed", (job: { data: { t: number } }) => onMessages([job.data.t]));
      await w.waitUntilReady();
      workers.add(w);
      return {
        stop: async () => {
          await w.close();
          workers.delete(w);
        },
      };
    },
    close: async () => {
      for (const x of queues.values()) await x.close();
      queues.clear();
    },
  };
  return {
    labeled: [{ label: "Redis + BullMQ", adapter }],
    closeAll: async () => {
      for (const w of workers) await w.close().catch(() => {});
      for (const x of queues.values()) await x.close().catch(() => {});
    },
  };
}
