/**
 * Load generators shared by the workloads: pipelined BatchEnqueue (in this process or in
 * several client subprocesses), unary Enqueue with N in flight, drain (Consume with batched
 * delivery + BatchAck), produce → consume → ack lifecycle, and paced producers for latency.
 */
import { fileURLToPath } from "node:url";
import { BenchClient, drain, pipelined, sameBatch } from "./client.ts";
import { batchOf, type Delivered, enqueueRequest } from "./wire.ts";
import { clientMeter, percentile, type Sample } from "./report.ts";
import type { BenchBroker } from "./broker.ts";

export function payloadOf(size: number): Uint8Array {
  return new Uint8Array(size).map((_, i) => 97 + (i % 26));
}

/** Batch size used for a payload size: ≤ ~1 MiB per request, ≤ 1000 items. */
export function batchFor(size: number): number {
  return Math.max(8, Math.min(1000, Math.floor((1024 * 1024) / (size + 64))));
}

export function clients(addr: string, n: number): BenchClient[] {
  return Array.from({ length: n }, () => new BenchClient(addr));
}

export function closeAll(cs: BenchClient[]): void {
  for (const c of cs) c.close();
}

/** Encoded BatchEnqueueRequests spreading messages over `keys` fairness keys (header tenant). */
export function keyedBatches(
  queue: string,
  total: number,
  batch: number,
  payload: Uint8Array,
  keys: number,
  weightOf?: (key: number) => number,
): Uint8Array[] {
  const items = new Map<number, Uint8Array>();
  const item = (k: number) => {
    let it = items.get(k);
    if (!it) {
      const headers: Record<string, string> = { tenant: `t${k}` };
      if (weightOf) headers.weight = String(weightOf(k));
      it = enqueueRequest(queue, headers, payload);
      if (keys <= 10_000) items.set(k, it);
    }
    return it;
  };
  const out: Uint8Array[] = [];
  for (let i = 0; i < total; i += batch) {
    const n = Math.min(batch, total - i);
    out.push(batchOf(Array.from({ length: n }, (_, j) => item((i + j) % keys))));
  }
  return out;
}

export interface ProduceOpts {
  total: number;
  size: number;
  batch?: number;
  inFlight?: number;
  connections?: number;
  /** Client processes (1 = this process). */
  procs?: number;
  /** Pre-built request bodies (cycled); overrides size/batch encoding. */
  bodies?: Uint8Array[];
  onProgress?: (f: number) => void;
}

/** Pipelined BatchEnqueue of `total` messages into `queue`; returns a Sample in msg/s. */
export async function batchProduce(b: BenchBroker, queue: string, o: ProduceOpts): Promise<Sample> {
  const procs = o.procs ?? 1;
  if (procs > 1 && !o.bodies) return await batchProduceProcs(b, queue, o, procs);
  const batch = o.batch ?? batchFor(o.size);
  const cs = clients(b.addr, o.connections ?? 2);
  const bodies = o.bodies ?? [sameBatch(queue, batch, payloadOf(o.size))];
  const perBody = o.bodies ? -1 : batch;
  try {
    await cs[0].call("BatchEnqueue", new Uint8Array()); // warm connection
    for (const c of cs.slice(1)) await c.call("BatchEnqueue", new Uint8Array());
    const server = b.meter().start();
    const client = clientMeter().start();
    const t0 = performance.now();
    if (perBody > 0) {
      await pipelined(
        o.total,
        batch,
        o.inFlight ?? 8,
        (units, i) =>
          cs[i % cs.length].batchEnqueue(
            units === batch ? bodies[0] : sameBatch(queue, units, payloadOf(o.size)),
          ),
        (done) => o.onProgress?.(done / o.total),
      );
    } else {
      let next = 0;
      let done = 0;
      await Promise.all(Array.from({ length: o.inFlight ?? 8 }, async () => {
        while (next < bodies.length) {
          const i = next++;
          done += await cs[i % cs.length].batchEnqueue(bodies[i]);
          o.onProgress?.(done / o.total);
        }
      }));
    }
    const secs = (performance.now() - t0) / 1000;
    return { value: o.total / secs, serverCpu: server.stop(), clientCpu: client.stop() };
  } finally {
    closeAll(cs);
  }
}

const WORKER = fileURLToPath(new URL("./producer_worker.ts", import.meta.url));

/** Same as batchProduce, split over `procs` Deno subprocesses started together. */
async function batchProduceProcs(
  b: BenchBroker,
  queue: string,
  o: ProduceOpts,
  procs: number,
): Promise<Sample> {
  const per = Math.ceil(o.total / procs);
  const children = Array.from({ length: procs }, () =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", WORKER],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn());
  const readers = children.map((c) => c.stdout.pipeThrough(new TextDecoderStream()).getReader());
  const readLine = async (i: number) => {
    let buf = "";
    while (!buf.includes("\n")) {
      const { value, done } = await readers[i].read();
      if (done) throw new Error("producer worker exited early");
      buf += value;
    }
    return JSON.parse(buf.trim());
  };
  try {
    const writers = children.map((c) => c.stdin.getWriter());
    const job = {
      addr: b.addr,
      queue,
      total: per,
      size: o.size,
      batch: o.batch ?? batchFor(o.size),
      inFlight: o.inFlight ?? 8,
      connections: o.connections ?? 2,
    };
    const enc = new TextEncoder();
    await Promise.all(writers.map((w) => w.write(enc.encode(JSON.stringify(job) + "\n"))));
    await Promise.all(children.map((_, i) => readLine(i))); // ready (connected, warmed up)
    const server = b.meter().start();
    const client = clientMeter().start();
    const t0 = performance.now();
    await Promise.all(writers.map((w) => w.write(enc.encode("go\n"))));
    const done = await Promise.all(children.map((_, i) => readLine(i)));
    const secs = (performance.now() - t0) / 1000;
    for (const d of done) client.addSeconds(d.cpu);
    const sample = {
      value: (per * procs) / secs,
      serverCpu: server.stop(),
      clientCpu: client.stop(),
    };
    await Promise.all(writers.map((w) => w.close()));
    return sample;
  } finally {
    for (const c of children) await c.status;
  }
}

/** Unary Enqueue of `total` messages with `inFlight` outstanding; msg/s. */
export async function unaryProduce(
  b: BenchBroker,
  queue: string,
  o: { total: number; size: number; inFlight: number; onProgress?: (f: number) => void },
): Promise<Sample> {
  const cs = clients(b.addr, 1);
  const body = enqueueRequest(queue, {}, payloadOf(o.size));
  try {
    await cs[0].call("Enqueue", body);
    const server = b.meter().start();
    const client = clientMeter().start();
    const t0 = performance.now();
    await pipelined(
      o.total,
      1,
      o.inFlight,
      () => cs[0].call("Enqueue", body),
      (done) => done % 500 === 0 && o.onProgress?.(done / o.total),
    );
    const secs = (performance.now() - t0) / 1000;
    return { value: o.total / secs, serverCpu: server.stop(), clientCpu: client.stop() };
  } finally {
    closeAll(cs);
  }
}

export interface DrainOpts {
  total: number;
  consumers?: number;
  connections?: number;
  maxUnacked?: number;
  maxBatch?: number;
  wantKey?: boolean;
  onMessage?: (d: Delivered, now: number) => void;
  onProgress?: (f: number) => void;
}

/** Consume + BatchAck `total` already-enqueued messages; msg/s. */
export async function drainRate(b: BenchBroker, queue: string, o: DrainOpts): Promise<Sample> {
  const cs = clients(b.addr, o.connections ?? 1);
  try {
    const server = b.meter().start();
    const client = clientMeter().start();
    const t0 = performance.now();
    await drain(cs, queue, o.total, {
      consumers: o.consumers,
      maxUnacked: o.maxUnacked,
      maxBatch: o.maxBatch,
      wantKey: o.wantKey,
      onMessage: o.onMessage,
      tick: (n) => o.onProgress?.(n / o.total),
    });
    const secs = (performance.now() - t0) / 1000;
    return { value: o.total / secs, serverCpu: server.stop(), clientCpu: client.stop() };
  } finally {
    closeAll(cs);
  }
}

/**
 * Lifecycle: consumers are attached first, then producers batch-enqueue `total` messages while
 * the consumers receive and BatchAck them; the rate is total / (time until the last ack).
 */
export async function lifecycle(
  b: BenchBroker,
  queue: string,
  o: {
    total: number;
    size: number;
    consumers?: number;
    maxUnacked?: number;
    maxBatch?: number;
    batch?: number;
    inFlight?: number;
    bodies?: Uint8Array[];
    onProgress?: (f: number) => void;
  },
): Promise<Sample> {
  const consumers = o.consumers ?? 1;
  const prod = clients(b.addr, 2);
  const cons = clients(b.addr, Math.min(4, consumers));
  const batch = o.batch ?? batchFor(o.size);
  const body = sameBatch(queue, batch, payloadOf(o.size));
  try {
    for (const c of cons) await c.admin.getStats(queue); // connect
    const server = b.meter().start();
    const client = clientMeter().start();
    const t0 = performance.now();
    const drained = drain(cons, queue, o.total, {
      consumers,
      maxUnacked: o.maxUnacked ?? Math.max(64, Math.ceil(4096 / consumers)),
      maxBatch: o.maxBatch ?? 256,
      tick: (n) => o.onProgress?.(n / o.total),
    });
    if (o.bodies) {
      let next = 0;
      await Promise.all(Array.from({ length: o.inFlight ?? 8 }, async () => {
        while (next < o.bodies!.length) {
          const i = next++;
          await prod[i % 2].batchEnqueue(o.bodies![i]);
        }
      }));
    } else {
      await pipelined(
        o.total,
        batch,
        o.inFlight ?? 8,
        (units, i) =>
          prod[i % 2].batchEnqueue(
            units === batch ? body : sameBatch(queue, units, payloadOf(o.size)),
          ),
      );
    }
    await drained;
    const secs = (performance.now() - t0) / 1000;
    return { value: o.total / secs, serverCpu: server.stop(), clientCpu: client.stop() };
  } finally {
    closeAll(prod);
    closeAll(cons);
  }
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * End-to-end latency at a fixed offered rate: a paced producer stamps performance.now() into
 * each payload just before sending (unary Enqueue below 500 msg/s, else a BatchEnqueue every
 * 5 ms holding the messages due), one consumer (batched delivery, BatchAck) records
 * receive time − stamp. The first 10 % of the window is discarded as warm-up.
 * Value = p50 in ms; extra: p95, p99, achieved rate.
 */
export async function latencyAt(
  b: BenchBroker,
  queue: string,
  o: { rate: number; seconds: number; size: number; onProgress?: (f: number) => void },
): Promise<Sample> {
  const prod = clients(b.addr, 1)[0];
  const cons = clients(b.addr, 1);
  const template = enqueueRequest(queue, {}, payloadOf(Math.max(8, o.size)));
  const stampAt = template.length - Math.max(8, o.size);
  const lat: number[] = [];
  const total = Math.round(o.rate * o.seconds);
  const warm = Math.round(total * 0.1);
  let received = 0;
  let errors = 0;
  const unaryMode = o.rate < 500;
  try {
    await prod.call("Enqueue", template);
    const drained = drain(cons, queue, total + 1, {
      maxUnacked: 4096,
      maxBatch: 256,
      onMessage: (d, now) => {
        if (received++ >= warm + 1) lat.push(now - d.stamp);
      },
      tick: (n) => o.onProgress?.(n / (total + 1)),
    });
    const server = b.meter().start();
    const client = clientMeter().start();
    const t0 = performance.now();
    let sent = 0;
    const outstanding = new Set<Promise<unknown>>();
    const stamped = () => {
      const it = template.slice();
      new DataView(it.buffer).setFloat64(stampAt, performance.now(), true);
      return it;
    };
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * o.rate) + 1);
      if (due > sent) {
        if (unaryMode) {
          for (; sent < due; sent++) {
            const p = prod.call("Enqueue", stamped()).catch(() => errors++);
            outstanding.add(p);
            p.finally(() => outstanding.delete(p));
          }
        } else {
          const n = due - sent;
          sent = due;
          const items = Array.from({ length: n }, stamped);
          const p = prod.batchEnqueue(batchOf(items)).catch(() => errors++);
          outstanding.add(p);
          p.finally(() => outstanding.delete(p));
        }
      }
      await sleep(unaryMode ? Math.max(1, 1000 / o.rate / 2) : 5);
    }
    await Promise.all(outstanding);
    await drained;
    const secs = (performance.now() - t0) / 1000;
    if (errors) throw new Error(`${errors} enqueue calls failed during the latency run`);
    lat.sort((a, b) => a - b);
    return {
      value: percentile(lat, 0.5),
      serverCpu: server.stop(),
      clientCpu: client.stop(),
      extra: {
        p95: percentile(lat, 0.95),
        p99: percentile(lat, 0.99),
        "offered msg/s": total / secs,
      },
    };
  } finally {
    prod.close();
    closeAll(cons);
  }
}
