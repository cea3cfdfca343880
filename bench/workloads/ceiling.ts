/**
 * In-process ceilings: the broker's scheduler over the real storage (SegmentStore on Deno KV in
 * a temporary directory) driven directly in this process — no gRPC, no HTTP/2, no client. What
 * the broker can do at best on this machine before any transport cost: batch enqueue (963 ×
 * 1 KiB per call, 8 calls in flight) and lifecycle (batch enqueue while a consumer with batched
 * delivery acks each delivered batch with ackBatch). The gRPC figures are read against these.
 */
import { join } from "node:path";
import { Scheduler } from "../../src/scheduler/mod.ts";
import { SegmentStore } from "../../src/storage/segment_store.ts";
import { deliveredSize } from "../../src/wire/delivery.ts";
import type { Delivery } from "../../src/core/types.ts";
import { batchFor, payloadOf } from "../lib/load.ts";
import { CpuMeter, type Figure, figure, repeat, type Sample } from "../lib/report.ts";
import { type Ctx, size, type Workload } from "../lib/workload.ts";

async function withScheduler<T>(fn: (s: Scheduler) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "fila-bench-inproc-" });
  const store = await SegmentStore.open(join(dir, "fila.kv"));
  const s = new Scheduler({ store, quantum: 1000, deliveredSize });
  await s.start();
  try {
    await s.createQueue({
      name: "q",
      onEnqueueScript: "",
      onFailureScript: "",
      visibilityTimeoutMs: 0,
      fairnessKeyHeader: "",
      weightHeader: "",
      throttleKeyHeaders: [],
    });
    return await fn(s);
  } finally {
    await s.shutdown();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function enqueueAll(s: Scheduler, total: number, batch: number, inFlight: number) {
  const payload = payloadOf(1024);
  const items = Array.from({ length: batch }, () => ({ queue: "q", headers: {}, payload }));
  let next = 0;
  return Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < total) {
      const n = Math.min(batch, total - next);
      next += n;
      const res = await s.enqueueBatch(n === batch ? items : items.slice(0, n));
      if (typeof res[0] !== "string") throw res[0];
    }
  }));
}

export const ceiling: Workload = {
  id: "ceiling",
  title: "In-process ceilings (no gRPC)",
  async run(ctx: Ctx): Promise<Figure[]> {
    const total = size(200_000, 30_000);
    const batch = batchFor(1024);
    const self = () => new CpuMeter(() => [Deno.pid]);
    const enq = await repeat(
      ctx.progress,
      "in-process enqueueBatch",
      () =>
        withScheduler(async (s): Promise<Sample> => {
          const m = self().start();
          const t0 = performance.now();
          await enqueueAll(s, total, batch, 8);
          return { value: total / ((performance.now() - t0) / 1000), serverCpu: m.stop() };
        }),
    );
    const life = await repeat(
      ctx.progress,
      "in-process lifecycle",
      () =>
        withScheduler(async (s): Promise<Sample> => {
          let acked = 0;
          let done!: () => void;
          const finished = new Promise<void>((r) => done = r);
          const m = self().start();
          const t0 = performance.now();
          const ack = (ds: Delivery[]) => {
            s.ackBatch(ds.map((d) => ({ queue: "q", id: d.body.id }))).then(() => {
              acked += ds.length;
              if (acked >= total) done();
            });
          };
          const handle = await s.consume("q", 4096, {
            send: (d) => (ack([d]), true),
            sendBatch: (ds) => (ack(ds), true),
            close: () => {},
          }, { maxBatch: 256 });
          await enqueueAll(s, total, batch, 8);
          await finished;
          const value = total / ((performance.now() - t0) / 1000);
          handle.close();
          return { value, serverCpu: m.stop() };
        }),
    );
    const note = "scheduler + SegmentStore in the bench process; CPU column = that process";
    return [
      figure(
        "ceiling",
        `in-process enqueueBatch 1 KiB (batch ${batch}, 8 in flight)`,
        "msg/s",
        enq,
        {
          note,
        },
      ),
      figure(
        "ceiling",
        "in-process lifecycle 1 KiB (enqueueBatch + consume + ackBatch)",
        "msg/s",
        life,
        {
          note,
        },
      ),
    ];
  },
};
