/**
 * Fair scheduling: DRR cost vs single-key FIFO (same queue config, messages on 1 fairness key
 * vs spread over 100 keys; consume + ack of a pre-filled queue and the full lifecycle, runs
 * interleaved), and fairness accuracy with 5 backlogged keys of weights 1..5.
 */
import {
  batchFor,
  batchProduce,
  drainRate,
  keyedBatches,
  lifecycle,
  payloadOf,
} from "../lib/load.ts";
import { freshRun } from "../lib/broker.ts";
import { Scheduler } from "../../src/scheduler/mod.ts";
import { MemoryStore } from "../../src/storage/memory_store.ts";
import type { Delivery } from "../../src/core/types.ts";
import { type Figure, figure, QUICK, RUNS, type Sample } from "../lib/report.ts";
import { type Ctx, size, type Workload } from "../lib/workload.ts";

const CONFIG = { fairness_key_header: "tenant", weight_header: "weight" };
export const DRR_KEYS = 100;

/**
 * Deliveries + acks per second of the scheduler alone (memory store, this process): `total`
 * messages pre-enqueued over `keys` fairness keys, drained by one consumer with batched
 * delivery acking each batch.
 */
async function schedulerDrain(keys: number, total: number): Promise<Sample> {
  const s = new Scheduler({ store: new MemoryStore(), quantum: 1000 });
  await s.start();
  await s.createQueue({
    name: "q",
    onEnqueueScript: "",
    onFailureScript: "",
    visibilityTimeoutMs: 0,
    fairnessKeyHeader: "tenant",
    weightHeader: "",
    throttleKeyHeaders: [],
  });
  const payload = payloadOf(1024);
  for (let i = 0; i < total; i += 1000) {
    await s.enqueueBatch(
      Array.from({ length: Math.min(1000, total - i) }, (_, j) => ({
        queue: "q",
        headers: { tenant: `t${(i + j) % keys}` },
        payload,
      })),
    );
  }
  let acked = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => done = r);
  const ack = (ds: Delivery[]) => {
    s.ackBatch(ds.map((d) => ({ queue: "q", id: d.body.id }))).then(() => {
      acked += ds.length;
      if (acked >= total) done();
    });
  };
  const t0 = performance.now();
  const h = await s.consume("q", 4096, {
    send: (d) => (ack([d]), true),
    sendBatch: (ds) => (ack(ds), true),
    close: () => {},
  }, { maxBatch: 256 });
  await finished;
  const value = total / ((performance.now() - t0) / 1000);
  h.close();
  await s.shutdown();
  return { value };
}

export const fairness: Workload = {
  id: "fairness",
  title: "DRR overhead and fairness accuracy",
  async run(ctx: Ctx): Promise<Figure[]> {
    const out: Figure[] = [];
    const runs = QUICK ? 1 : Math.max(RUNS, 5);
    const total = size(100_000, 20_000);
    const batch = batchFor(1024);
    const samples: Record<string, Sample[]> = {};
    const add = (k: string, s: Sample) => (samples[k] ??= []).push(s);
    // FIFO and DRR runs alternate, each on a fresh broker, so drift of the shared machine
    // affects both alike.
    for (let run = 0; run < runs; run++) {
      for (const keys of [1, DRR_KEYS]) {
        const label = `keys=${keys} run ${run + 1}/${runs}`;
        ctx.progress.update(`DRR vs FIFO consume → ack, ${label}`, 0, true);
        add(
          `drain-${keys}`,
          await freshRun("fair", async (b, q) => {
            await batchProduce(b, q, {
              total,
              size: 1024,
              bodies: keyedBatches(q, total, batch, payloadOf(1024), keys),
            });
            return await drainRate(b, q, { total, maxUnacked: 4096 });
          }, CONFIG),
        );
        ctx.progress.update(`DRR vs FIFO lifecycle, ${label}`, 0, true);
        add(
          `life-${keys}`,
          await freshRun("fairl", (b, q) =>
            lifecycle(b, q, {
              total,
              size: 1024,
              bodies: keyedBatches(q, total, batch, payloadOf(1024), keys),
            }), CONFIG),
        );
      }
    }
    out.push(figure("fairness", "consume → ack, 1 key (FIFO)", "msg/s", samples["drain-1"]));
    out.push(
      figure(
        "fairness",
        `consume → ack, ${DRR_KEYS} keys (DRR)`,
        "msg/s",
        samples[`drain-${DRR_KEYS}`],
      ),
    );
    out.push(figure("fairness", "lifecycle, 1 key (FIFO)", "msg/s", samples["life-1"]));
    out.push(
      figure("fairness", `lifecycle, ${DRR_KEYS} keys (DRR)`, "msg/s", samples[`life-${DRR_KEYS}`]),
    );

    // The same comparison without transport or storage: the scheduler alone (memory store) in
    // this process, so the DRR bookkeeping is not lost in gRPC noise.
    const mem: Record<number, Sample[]> = { 1: [], [DRR_KEYS]: [] };
    for (let run = 0; run < runs; run++) {
      for (const keys of [1, DRR_KEYS]) {
        ctx.progress.update(`DRR vs FIFO in-process, keys=${keys} run ${run + 1}/${runs}`, 0, true);
        mem[keys].push(await schedulerDrain(keys, size(200_000, 50_000)));
      }
    }
    out.push(
      figure("fairness", "in-process scheduler consume → ack, 1 key (FIFO)", "msg/s", mem[1], {
        note: "memory store, no gRPC",
      }),
    );
    out.push(
      figure(
        "fairness",
        `in-process scheduler consume → ack, ${DRR_KEYS} keys (DRR)`,
        "msg/s",
        mem[DRR_KEYS],
        { note: "memory store, no gRPC" },
      ),
    );

    // Accuracy: 5 keys with weights 1..5, all backlogged; shares of the first D deliveries.
    const perKey = size(6000, 2000);
    const deliveries = Math.floor(perKey * 15 / 5 * 0.8); // key 5 gets 1/3: stays backlogged
    const acc: Sample[] = [];
    for (let run = 0; run < runs; run++) {
      ctx.progress.update(`fairness accuracy run ${run + 1}/${runs}`, 0, true);
      acc.push(
        await freshRun("acc", async (b, q) => {
          await batchProduce(b, q, {
            total: perKey * 5,
            size: 1024,
            bodies: keyedBatches(q, perKey * 5, batch, payloadOf(1024), 5, (k) => k + 1),
          });
          const counts = [0, 0, 0, 0, 0];
          let seen = 0;
          await drainRate(b, q, {
            total: deliveries,
            maxUnacked: 256,
            wantKey: true,
            onMessage: (d) => {
              if (seen++ < deliveries) counts[Number(d.fairnessKey.slice(1))]++;
            },
          });
          const errs = counts.map((n, k) => {
            const expected = (k + 1) / 15;
            return Math.abs(n / deliveries - expected) / expected * 100;
          });
          const extra: Record<string, number> = {};
          counts.forEach((n, k) => extra[`w${k + 1} share %`] = (n / deliveries) * 100);
          return { value: Math.max(...errs), extra };
        }, CONFIG),
      );
    }
    out.push(
      figure("fairness", "accuracy, weights 1..5: max relative share error", "%", acc, {
        better: "lower",
        note: `first ${deliveries} deliveries of ${perKey} msgs/key backlogged; ideal shares ${
          [1, 2, 3, 4, 5].map((w) => (w / 15 * 100).toFixed(1)).join("/")
        } %`,
      }),
    );
    return out;
  },
};
