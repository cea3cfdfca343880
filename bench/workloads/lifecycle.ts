/**
 * Lifecycle throughput (produce → consume → ack, 1 KiB): consumers attached first, producers
 * pipeline BatchEnqueue while one consumer (batched delivery) BatchAcks each delivered batch;
 * plus consume + ack alone of a pre-filled queue. Also 1 / 10 / 100 consumers. Each run on a
 * fresh broker.
 */
import { batchProduce, drainRate, lifecycle } from "../lib/load.ts";
import { freshRun } from "../lib/broker.ts";
import { type Figure, figure, repeat } from "../lib/report.ts";
import { type Ctx, size, type Workload } from "../lib/workload.ts";

export const LIFECYCLE_NAME = "produce → consume → ack, 1 KiB, 1 consumer";

export const lifecycleWorkload: Workload = {
  id: "lifecycle",
  title: "Lifecycle throughput and consumer count",
  async run(ctx: Ctx): Promise<Figure[]> {
    const out: Figure[] = [];
    const total = size(200_000, 30_000);
    const runs = await repeat(
      ctx.progress,
      LIFECYCLE_NAME,
      () =>
        freshRun("life", (b, q) =>
          lifecycle(b, q, {
            total,
            size: 1024,
            onProgress: (f) => ctx.progress.update(LIFECYCLE_NAME, f),
          })),
    );
    out.push(figure("lifecycle", LIFECYCLE_NAME, "msg/s", runs));

    const name2 = "consume → ack of a pre-filled queue, 1 KiB";
    const runs2 = await repeat(ctx.progress, name2, () =>
      freshRun("drain", async (b, q) => {
        await batchProduce(b, q, { total, size: 1024 });
        return await drainRate(b, q, {
          total,
          maxUnacked: 4096,
          onProgress: (f) => ctx.progress.update(name2, f),
        });
      }));
    out.push(figure("lifecycle", name2, "msg/s", runs2));

    for (const consumers of [1, 10, 100]) {
      const n = `produce → consume → ack, ${consumers} consumer${consumers > 1 ? "s" : ""}`;
      const runs3 = await repeat(ctx.progress, n, () =>
        freshRun("cons", (b, q) =>
          lifecycle(b, q, {
            total: size(100_000, 20_000),
            size: 1024,
            consumers,
            onProgress: (f) => ctx.progress.update(n, f),
          })));
      out.push(figure("consumers", n, "msg/s", runs3, {
        note: `max_unacked ${Math.max(64, Math.ceil(4096 / consumers))} per consumer, ${
          Math.min(4, consumers)
        } connection(s)`,
      }));
    }
    return out;
  },
};
