/**
 * End-to-end latency (producer send → consumer receive), 1 KiB: at light load (200 msg/s,
 * unary Enqueue) and at 50 % of the lifecycle throughput measured earlier in this run
 * (BatchEnqueue every 5 ms); plus round trips at 1 in flight that split the light-load figure
 * into transport and commit. Each run on a fresh broker.
 */
import { latencyAt, payloadOf } from "../lib/load.ts";
import { freshRun } from "../lib/broker.ts";
import { enqueueRequest } from "../lib/wire.ts";
import { type Figure, figure, percentile, repeat } from "../lib/report.ts";
import { type Ctx, find, size, type Workload } from "../lib/workload.ts";
import { LIFECYCLE_NAME } from "./lifecycle.ts";

export const LIGHT_RATE = 200;

export const latency: Workload = {
  id: "latency",
  title: "End-to-end latency",
  async run(ctx: Ctx): Promise<Figure[]> {
    const out: Figure[] = [];
    // Round trips at 1 in flight: transport alone (an empty BatchEnqueue touches no storage)
    // vs one Enqueue (one commit with its fsync).
    for (
      const [label, method, empty] of [
        ["unary RTT p50, empty BatchEnqueue (transport only)", "BatchEnqueue", true],
        ["unary RTT p50, Enqueue 1 KiB (one commit + fsync)", "Enqueue", false],
      ] as const
    ) {
      const runs = await repeat(ctx.progress, label, () =>
        freshRun("rtt", async (_b, q, c) => {
          const req = empty ? new Uint8Array() : enqueueRequest(q, {}, payloadOf(1024));
          for (let i = 0; i < 50; i++) await c.call(method, req); // warm-up
          const times: number[] = [];
          for (let i = 0; i < size(2000, 500); i++) {
            const t0 = performance.now();
            await c.call(method, req);
            times.push(performance.now() - t0);
          }
          times.sort((a, b) => a - b);
          return { value: percentile(times, 0.5), extra: { p99: percentile(times, 0.99) } };
        }));
      out.push(figure("latency", label, "ms", runs, { better: "lower" }));
    }
    const max = find(ctx.figures, "lifecycle", LIFECYCLE_NAME)?.median ?? 20_000;
    const loads: Array<[string, number]> = [
      [`light load (${LIGHT_RATE} msg/s, unary Enqueue)`, LIGHT_RATE],
      [`50 % of max lifecycle (${Math.round(max / 2)} msg/s, batches every 5 ms)`, max / 2],
    ];
    for (const [label, rate] of loads) {
      const name = `e2e latency p50, ${label}`;
      const runs = await repeat(
        ctx.progress,
        name,
        () =>
          freshRun("lat", (b, q) =>
            latencyAt(b, q, {
              rate,
              seconds: size(8, 3),
              size: 1024,
              onProgress: (f) => ctx.progress.update(name, f),
            })),
      );
      out.push(figure("latency", name, "ms", runs, { better: "lower" }));
    }
    return out;
  },
};
