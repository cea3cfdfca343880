/**
 * Fairness-key cardinality: 10 / 1k / 10k / 100k keys. A queue is filled with N messages spread
 * round-robin over K keys (fairness_key_header), then one consumer receives and BatchAcks the
 * first 2N/3 (all K keys stay active throughout); also the fill rate.
 */
import { batchFor, batchProduce, drainRate, keyedBatches, payloadOf } from "../lib/load.ts";
import { freshRun } from "../lib/broker.ts";
import { type Figure, figure, repeat, type Sample } from "../lib/report.ts";
import { type Ctx, size, type Workload } from "../lib/workload.ts";

export const CARDINALITIES = [10, 1_000, 10_000, 100_000];

export const cardinality: Workload = {
  id: "cardinality",
  title: "Fairness-key cardinality",
  async run(ctx: Ctx): Promise<Figure[]> {
    const out: Figure[] = [];
    for (const keys of CARDINALITIES) {
      const total = Math.max(size(300_000, 30_000), keys * 3);
      const measured = Math.floor(total * 2 / 3);
      const fills: Sample[] = [];
      const name = `consume → ack with ${keys.toLocaleString("en-US")} active keys`;
      const runs = await repeat(ctx.progress, name, () =>
        freshRun("card", async (b, q) => {
          fills.push(
            await batchProduce(b, q, {
              total,
              size: 1024,
              bodies: keyedBatches(q, total, batchFor(1024), payloadOf(1024), keys),
              onProgress: (f) => ctx.progress.update(`${name} (fill)`, f / 2),
            }),
          );
          return await drainRate(b, q, {
            total: measured,
            maxUnacked: 4096,
            onProgress: (f) => ctx.progress.update(name, 0.5 + f / 2),
          });
        }, { fairness_key_header: "tenant" }));
      out.push(figure("cardinality", name, "msg/s", runs, {
        note: `${total.toLocaleString("en-US")} msgs of 1 KiB, first ${
          measured.toLocaleString("en-US")
        } drained`,
      }));
      out.push(
        figure(
          "cardinality",
          `BatchEnqueue over ${keys.toLocaleString("en-US")} keys`,
          "msg/s",
          fills,
        ),
      );
    }
    return out;
  },
};
