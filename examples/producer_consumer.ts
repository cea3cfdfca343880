// Producer / consumer: a producer enqueues orders, a worker pool processes them. A handler that
// throws nacks its message, and the broker delivers it again (attemptCount + 1).
//
//   FILA_ADDR=127.0.0.1:5555 deno run --allow-all examples/producer_consumer.ts
import { FilaClient } from "../mod.ts";

const addr = Deno.env.get("FILA_ADDR") ?? "127.0.0.1:5555";
await using client = await FilaClient.connect(addr);

const queue = `orders-${crypto.randomUUID().slice(0, 8)}`;
await client.createQueue(queue);

// Producer: concurrent enqueues are coalesced into BatchEnqueue requests by the SDK.
const orders = Array.from({ length: 20 }, (_, i) => ({ order: i + 1, amountCents: 500 + i * 10 }));
await Promise.all(
  orders.map((o) =>
    client.enqueue(queue, { "content-type": "application/json" }, JSON.stringify(o))
  ),
);
console.log(`produced ${orders.length} orders`);

// Consumer: four handlers at a time; returning acks, throwing nacks with the error's message.
let processed = 0;
let retried = 0;
let totalCents = 0;
let allDone!: () => void;
const finished = new Promise<void>((resolve) => allDone = resolve);

const worker = client.work(queue, (msg) => {
  const order = msg.json<{ order: number; amountCents: number }>();
  if (order.order === 7 && msg.attemptCount === 0) {
    retried++;
    console.log(`order 7: payment gateway timeout on attempt ${msg.attemptCount}, retrying`);
    throw new Error("payment gateway timeout");
  }
  totalCents += order.amountCents;
  if (++processed === orders.length) allDone();
}, { concurrency: 4 });

await finished;
await worker.stop(); // lets running handlers finish and their acks go out
console.log(`processed ${processed}/${orders.length} orders, retried ${retried}`);
console.log(`total ${(totalCents / 100).toFixed(2)}`);

await client.deleteQueue(queue);
