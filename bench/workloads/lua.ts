/**
 * Lua hook overhead over gRPC: BatchEnqueue (1 KiB, tenant + weight headers) into a queue whose
 * on_enqueue script reads the fairness key and weight from headers vs a queue with the
 * declarative equivalent (fairness_key_header / weight_header); runs interleaved.
 * `deno task bench:lua` measures the same in-process (µs per message, no gRPC).
 */
import { batchFor, batchProduce, keyedBatches, payloadOf } from "../lib/load.ts";
import { freshRun } from "../lib/broker.ts";
import { type Figure, figure, RUNS, type Sample } from "../lib/report.ts";
import { type Ctx, size, type Workload } from "../lib/workload.ts";

export const SCRIPT = `function on_enqueue(msg)
  return { fairness_key = msg.headers.tenant or "default", weight = tonumber(msg.headers.weight) or 1 }
end`;

export const lua: Workload = {
  id: "lua",
  title: "Lua on_enqueue overhead",
  async run(ctx: Ctx): Promise<Figure[]> {
    const total = size(100_000, 20_000);
    const plain: Sample[] = [];
    const hooked: Sample[] = [];
    for (let run = 0; run < RUNS; run++) {
      for (const withScript of [false, true]) {
        const label = `${withScript ? "on_enqueue" : "declarative"} run ${run + 1}/${RUNS}`;
        const s = await freshRun(
          "lua",
          (b, q) =>
            batchProduce(b, q, {
              total,
              size: 1024,
              bodies: keyedBatches(q, total, batchFor(1024), payloadOf(1024), 50, (k) => 1 + k % 5),
              onProgress: (f) => ctx.progress.update(`Lua overhead, ${label}`, f),
            }),
          withScript
            ? { on_enqueue_script: SCRIPT }
            : { fairness_key_header: "tenant", weight_header: "weight" },
        );
        (withScript ? hooked : plain).push(s);
      }
    }
    return [
      figure("lua", "BatchEnqueue 1 KiB, declarative key/weight", "msg/s", plain),
      figure("lua", "BatchEnqueue 1 KiB, on_enqueue script key/weight", "msg/s", hooked),
    ];
  },
};
