// Fan-out by fairness key: jobs of many tenants share one queue, and the broker serves the
// tenants in turn (Deficit Round Robin over the `tenant` header), so a tenant that enqueues a
// large backlog cannot starve the others. No Lua needed: the queue names the header.
//
//   FILA_ADDR=127.0.0.1:5555 deno run --allow-all examples/fanout_fairness.ts
import { FilaClient } from "../mod.ts";

const addr = Deno.env.get("FILA_ADDR") ?? "127.0.0.1:5555";
await using client = await FilaClient.connect(addr);

const queue = `jobs-${crypto.randomUUID().slice(0, 8)}`;
await client.createQueue(queue, { fairnessKeyHeader: "tenant", weightHeader: "weight" });

// A noisy tenant enqueues 100 jobs first; two small tenants arrive behind it.
const plan: [tenant: string, jobs: number][] = [
  ["big-corp", 100],
  ["small-shop", 5],
  ["startup", 5],
];
for (const [tenant, jobs] of plan) {
  await client.batchEnqueue(
    Array.from({ length: jobs }, (_, i) => ({
      queue,
      headers: { tenant },
      payload: `${tenant} job ${i + 1}`,
    })),
  );
}
const total = plan.reduce((n, [, jobs]) => n + jobs, 0);
console.log(`enqueued ${total} jobs: ${plan.map(([t, n]) => `${t}=${n}`).join(", ")}`);

// One worker handling one job at a time makes the broker's order visible.
const order: string[] = [];
const lastDelivery = new Map<string, number>();
let allDone!: () => void;
const finished = new Promise<void>((resolve) => allDone = resolve);
const worker = client.work(queue, (msg) => {
  order.push(msg.fairnessKey);
  lastDelivery.set(msg.fairnessKey, order.length);
  if (order.length === total) allDone();
}, { concurrency: 1 });
await finished;
await worker.stop();

console.log(`first 12 deliveries: ${order.slice(0, 12).join(" ")}`);
for (const [tenant, jobs] of plan) {
  console.log(
    `${tenant}: ${jobs} jobs, last one was delivery ${lastDelivery.get(tenant)} of ${total}`,
  );
}

await client.deleteQueue(queue);
