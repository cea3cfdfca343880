// Request-reply: the requester creates a temporary reply queue, sends requests carrying
// `reply-to` and `correlation-id` headers, and matches the replies; a responder worker computes
// each answer and enqueues it to the request's reply queue. The reply queue is deleted at the end.
//
//   FILA_ADDR=127.0.0.1:5555 deno run --allow-all examples/request_reply.ts
import { FilaClient } from "../mod.ts";

const addr = Deno.env.get("FILA_ADDR") ?? "127.0.0.1:5555";
await using client = await FilaClient.connect(addr);

const requests = `calc-requests-${crypto.randomUUID().slice(0, 8)}`;
await client.createQueue(requests);

// Responder (usually another process).
const responder = client.work(requests, async (msg) => {
  const { a, b } = msg.json<{ a: number; b: number }>();
  await client.enqueue(
    msg.headers["reply-to"],
    { "correlation-id": msg.headers["correlation-id"] },
    JSON.stringify({ sum: a + b }),
  );
}, { concurrency: 2 });

// Requester: a reply queue of its own, gone when the requester is done.
const replyQueue = `reply-${crypto.randomUUID()}`;
await client.createQueue(replyQueue);
const questions = [[2, 3], [40, 2], [-7, 7]];
const waiting = new Map<string, number[]>();
for (const [a, b] of questions) {
  const correlationId = crypto.randomUUID();
  waiting.set(correlationId, [a, b]);
  await client.enqueue(
    requests,
    { "reply-to": replyQueue, "correlation-id": correlationId },
    JSON.stringify({ a, b }),
  );
}
console.log(`sent ${questions.length} requests, replies to ${replyQueue}`);

const replies = client.consume(replyQueue);
for await (const reply of replies) {
  const question = waiting.get(reply.headers["correlation-id"]);
  await reply.ack();
  if (!question) continue; // not ours (e.g. a late reply to an earlier run)
  waiting.delete(reply.headers["correlation-id"]);
  console.log(`${question[0]} + ${question[1]} = ${reply.json<{ sum: number }>().sum}`);
  if (waiting.size === 0) break; // leaving the loop closes the consumer
}

await client.deleteQueue(replyQueue);
const left = (await client.listQueues()).some((q) => q.name === replyQueue);
console.log(left ? "reply queue still exists" : "reply queue deleted");

await responder.stop();
await client.deleteQueue(requests);
