/**
 * A producer subprocess of the competitive driver: reads one JSON job line on stdin, connects
 * to the running server through the peer's own client, prints "{}" when ready, waits for "go",
 * sends job.total messages (one per call or in batches, job.inFlight outstanding), prints
 * {"secs": …, "cpu": CPU seconds since "go"} and exits.
 */
import { peerById } from "./peers/mod.ts";
import { cpuSeconds } from "../lib/report.ts";
import { line } from "../lib/stdin_line.ts";

const job = JSON.parse(await line());
const labeled = await peerById(job.peer).connect(job.info);
const ad = labeled.find((l) => l.label === job.label)!.adapter;
const payload = new Uint8Array(job.size).fill(120);
const batch = Array.from({ length: job.batch }, () => payload);
await ad.sendBatch(job.queue, []); // connect lazily-connecting clients
console.log("{}");
await line();
const cpu0 = cpuSeconds(Deno.pid);
const t0 = performance.now();
let next = 0;
await Promise.all(Array.from({ length: job.inFlight }, async () => {
  while (next < job.total) {
    const n = Math.min(job.batch, job.total - next);
    next += n;
    if (job.batch === 1) await ad.sendOne(job.queue, payload);
    else await ad.sendBatch(job.queue, n === job.batch ? batch : batch.slice(0, n));
  }
}));
console.log(
  JSON.stringify({ secs: (performance.now() - t0) / 1000, cpu: cpuSeconds(Deno.pid) - cpu0 }),
);
await ad.close();
Deno.exit(0);
