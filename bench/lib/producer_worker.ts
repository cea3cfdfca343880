/**
 * A client subprocess for multi-process load (bench/lib/load.ts): reads one JSON job line on
 * stdin, connects and warms up, prints "{}" (ready), waits for "go", runs pipelined
 * BatchEnqueue of job.total messages, prints {"secs": …, "cpu": CPU seconds since "go"} and
 * exits.
 */
import { BenchClient, pipelined, sameBatch } from "./client.ts";
import { payloadOf } from "./load.ts";
import { cpuSeconds } from "./report.ts";
import { line } from "./stdin_line.ts";

const job = JSON.parse(await line());
const cs = Array.from({ length: job.connections }, () => new BenchClient(job.addr));
const body = sameBatch(job.queue, job.batch, payloadOf(job.size));
for (const c of cs) await c.call("BatchEnqueue", new Uint8Array());
console.log("{}");
await line();
const cpu0 = cpuSeconds(Deno.pid);
const t0 = performance.now();
await pipelined(job.total, job.batch, job.inFlight, (units, i) =>
  cs[i % cs.length].batchEnqueue(
    units === job.batch ? body : sameBatch(job.queue, units, payloadOf(job.size)),
  ));
console.log(
  JSON.stringify({ secs: (performance.now() - t0) / 1000, cpu: cpuSeconds(Deno.pid) - cpu0 }),
);
for (const c of cs) c.close();
