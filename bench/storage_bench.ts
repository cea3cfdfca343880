/**
 * Storage throughput: KvStore (one row per message) vs SegmentStore (packed), on 1 KiB messages.
 *
 *   deno run -A --unstable-kv bench/storage_bench.ts [--n=100000] [--inflight=512]
 *     [--recover=200000] [--runs=3] [--payload=1024] [--only=KvStore|SegmentStore]
 *
 * (a) enqueue: `n` writes of one message each, `inflight` of them outstanding at a time.
 * (b) lifecycle: per message put, lease (setState with a deadline), ack (deleteMessage), each
 *     committed before the next; `inflight` messages in their lifecycle at a time.
 * (c) recovery: `recover` pending messages written in batches, then a fresh process opens the
 *     store and loads it; time of open+load and the RSS of that process afterwards.
 * Each figure is the median of `runs` runs, each on a fresh database; prints a Markdown table.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { newMessageId } from "../src/core/ids.ts";
import type { MessageBody, QueueDef } from "../src/core/types.ts";
import { KvStore } from "../src/storage/kv_store.ts";
import { SegmentStore } from "../src/storage/segment_store.ts";
import type { Mutation, Store } from "../src/storage/store.ts";

const KINDS = {
  KvStore: (path: string): Promise<Store> => KvStore.open(path),
  SegmentStore: (path: string): Promise<Store> => SegmentStore.open(path),
};
type Kind = keyof typeof KINDS;

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string", default: "100000" },
    inflight: { type: "string", default: "512" },
    recover: { type: "string", default: "200000" },
    runs: { type: "string", default: "3" },
    payload: { type: "string", default: "1024" },
    only: { type: "string" },
    // Internal: the recovery child process.
    child: { type: "string" },
    path: { type: "string" },
  },
});
const N = Number(args.n);
const INFLIGHT = Number(args.inflight);
const RECOVER = Number(args.recover);
const RUNS = Number(args.runs);
const PAYLOAD = new Uint8Array(Number(args.payload)).map((_, i) => (i * 31) & 0xff);

const def: QueueDef = {
  name: "bench",
  qid: crypto.randomUUID(),
  onEnqueueScript: "",
  onFailureScript: "",
  visibilityTimeoutMs: 30_000,
  fairnessKeyHeader: "",
  weightHeader: "",
  throttleKeyHeaders: [],
  createdAtMs: 1,
};

function body(): MessageBody {
  const now = Date.now();
  return {
    id: newMessageId(now),
    headers: { tenant: "acme" },
    payload: PAYLOAD,
    fairnessKey: "acme",
    weight: 1,
    throttleKeys: [],
    enqueuedAtMs: now,
  };
}

/** Runs `total` tasks with at most `inflight` outstanding; returns tasks per second. */
async function pipelined(total: number, inflight: number, task: () => Promise<void>) {
  let next = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < total) {
      next++;
      await task();
    }
  };
  await Promise.all(Array.from({ length: Math.min(inflight, total) }, worker));
  return total / ((performance.now() - start) / 1000);
}

async function withStore<T>(kind: Kind, fn: (s: Store, path: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "fila-bench-" });
  const path = join(dir, "fila.kv");
  try {
    const store = await KINDS[kind](path);
    await store.load();
    await store.write([{ op: "putQueue", def }]);
    try {
      return await fn(store, path);
    } finally {
      await store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function enqueue(kind: Kind): Promise<number> {
  return withStore(
    kind,
    (store) =>
      pipelined(N, INFLIGHT, () => store.write([{ op: "putMessage", qid: def.qid, body: body() }])),
  );
}

function lifecycle(kind: Kind): Promise<number> {
  return withStore(kind, (store) =>
    pipelined(N, INFLIGHT, async () => {
      const b = body();
      await store.write([{ op: "putMessage", qid: def.qid, body: b }]);
      // The broker does not wait for the lease, but the ack follows a consumer round trip,
      // which is usually longer than a commit: the lease is committed on its own.
      await store.write([{
        op: "setState",
        qid: def.qid,
        id: b.id,
        state: { attempts: 0, leaseDeadline: Date.now() + 30_000 },
      }]);
      await store.write([{ op: "deleteMessage", qid: def.qid, body: b }]);
    }));
}

async function recovery(kind: Kind): Promise<{ ms: number; rssMiB: number; dbMiB: number }> {
  const dir = await Deno.makeTempDir({ prefix: "fila-bench-" });
  const path = join(dir, "fila.kv");
  try {
    const store = await KINDS[kind](path);
    await store.load();
    await store.write([{ op: "putQueue", def }]);
    // Batches like the broker's batch produce: 500 messages per write, a few in flight.
    const writes: Promise<void>[] = [];
    for (let i = 0; i < RECOVER; i += 500) {
      const m: Mutation[] = [];
      for (let j = i; j < Math.min(RECOVER, i + 500); j++) {
        m.push({ op: "putMessage", qid: def.qid, body: body() });
      }
      writes.push(store.write(m));
      if (writes.length >= 8) await writes.shift();
    }
    await Promise.all(writes);
    await store.close();
    let dbBytes = 0;
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile) dbBytes += (await Deno.stat(join(dir, e.name))).size;
    }
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--unstable-kv",
        import.meta.filename!,
        `--child=${kind}`,
        `--path=${path}`,
        `--recover=${RECOVER}`,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error("recovery child failed");
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    return { ...r, dbMiB: dbBytes / 2 ** 20 };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function recoveryChild(kind: Kind, path: string): Promise<void> {
  const start = performance.now();
  const store = await KINDS[kind](path);
  const snap = await store.load();
  const ms = performance.now() - start;
  const count = snap.messages.get("bench")?.length ?? 0;
  if (count !== RECOVER) throw new Error(`recovered ${count} of ${RECOVER} messages`);
  const rssMiB = Deno.memoryUsage().rss / 2 ** 20;
  await store.close();
  console.log(JSON.stringify({ ms, rssMiB }));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  if (args.child) return recoveryChild(args.child as Kind, args.path!);
  const kinds = (args.only ? [args.only] : Object.keys(KINDS)) as Kind[];
  const results = new Map<Kind, {
    enqueue: number[];
    lifecycle: number[];
    ms: number[];
    rss: number[];
    db: number[];
  }>();
  for (const k of kinds) results.set(k, { enqueue: [], lifecycle: [], ms: [], rss: [], db: [] });
  // Interleaved, so that a noisy neighbour hurts both kinds alike.
  for (let run = 0; run < RUNS; run++) {
    for (const k of kinds) {
      const r = results.get(k)!;
      r.enqueue.push(await enqueue(k));
      r.lifecycle.push(await lifecycle(k));
      if (RECOVER > 0) {
        const rec = await recovery(k);
        r.ms.push(rec.ms);
        r.rss.push(rec.rssMiB);
        r.db.push(rec.dbMiB);
      }
      console.error(
        `run ${run + 1}/${RUNS} ${k}: enqueue ${r.enqueue.at(-1)!.toFixed(0)}/s, ` +
          `lifecycle ${r.lifecycle.at(-1)!.toFixed(0)}/s` +
          (RECOVER > 0 ? `, recovery ${r.ms.at(-1)!.toFixed(0)} ms` : ""),
      );
    }
  }
  const cpus = navigator.hardwareConcurrency;
  console.log(
    `\nStorage benchmark: ${PAYLOAD.length} B payloads, ${N} messages, ${INFLIGHT} in flight, ` +
      `${RECOVER} recovered; median of ${RUNS}; ${cpus} CPUs, Deno ${Deno.version.deno}\n`,
  );
  console.log(
    "| store | enqueue msg/s | lifecycle msg/s | recovery ms | recovery RSS MiB | db size MiB |",
  );
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const [k, r] of results) {
    const f = (xs: number[], d = 0) => (xs.length ? median(xs).toFixed(d) : "–");
    console.log(
      `| ${k} | ${f(r.enqueue)} | ${f(r.lifecycle)} | ${f(r.ms)} | ${f(r.rss)} | ${f(r.db)} |`,
    );
  }
}

await main();
