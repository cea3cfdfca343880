/**
 * Produce throughput: unary Enqueue (1 and 64 in flight) and pipelined BatchEnqueue at 64 B,
 * 1 KiB and 64 KiB payloads, each run into a fresh queue on a fresh broker; 1 KiB batch also
 * from two client processes, to show whether the client limits the figure.
 */
import { batchFor, batchProduce, unaryProduce } from "../lib/load.ts";
import { freshRun } from "../lib/broker.ts";
import { type Figure, figure, repeat } from "../lib/report.ts";
import { type Ctx, size, type Workload } from "../lib/workload.ts";

const SIZES: Array<[string, number]> = [["64 B", 64], ["1 KiB", 1024], ["64 KiB", 65536]];

export const enqueue: Workload = {
  id: "enqueue",
  title: "Produce throughput (unary and batch)",
  async run(ctx: Ctx): Promise<Figure[]> {
    const out: Figure[] = [];
    const name1 = "unary Enqueue 1 KiB, 1 in flight";
    const runs1 = await repeat(
      ctx.progress,
      name1,
      () =>
        freshRun(
          "u1",
          (b, q) => unaryProduce(b, q, { total: size(3000, 500), size: 1024, inFlight: 1 }),
        ),
    );
    out.push(figure("produce", name1, "msg/s", runs1));
    for (const [label, bytes] of SIZES) {
      const total = bytes >= 65536 ? size(4000, 800) : size(30_000, 5000);
      const name = `unary Enqueue ${label}, 64 in flight`;
      const runs = await repeat(
        ctx.progress,
        name,
        () =>
          freshRun("u64", (b, q) =>
            unaryProduce(b, q, {
              total,
              size: bytes,
              inFlight: 64,
              onProgress: (f) => ctx.progress.update(name, f),
            })),
      );
      out.push(figure("produce", name, "msg/s", runs));
    }
    for (const [label, bytes] of SIZES) {
      const total = bytes >= 65536 ? size(6000, 1000) : size(200_000, 30_000);
      const name = `BatchEnqueue ${label} (batch ${batchFor(bytes)}, 8 in flight)`;
      const runs = await repeat(
        ctx.progress,
        name,
        () =>
          freshRun("b", (b, q) =>
            batchProduce(b, q, {
              total,
              size: bytes,
              onProgress: (f) => ctx.progress.update(name, f),
            })),
      );
      out.push(figure("produce", name, "msg/s", runs));
    }
    const name2 = `BatchEnqueue 1 KiB, 2 client processes`;
    const runs2 = await repeat(
      ctx.progress,
      name2,
      () =>
        freshRun(
          "b2",
          (b, q) => batchProduce(b, q, { total: size(200_000, 30_000), size: 1024, procs: 2 }),
        ),
    );
    out.push(figure("produce", name2, "msg/s", runs2, {
      note: "same load split over 2 Deno client subprocesses (each 8 in flight)",
    }));
    return out;
  },
};
