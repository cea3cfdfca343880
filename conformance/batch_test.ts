// conformance.md §18 Batching (BA-01 … BA-09): BatchEnqueue, BatchAck, BatchNack and opt-in
// batched delivery (shapes in docs/wire-additions.md).
import assert from "node:assert/strict";
import protobuf from "protobufjs";
import { fileURLToPath } from "node:url";
import { assertStatus, type FilaClient, grpc, type Message } from "./client.ts";
import { keyClient, keyWith } from "./auth_helpers.ts";
import {
  newQueue,
  PROMPT_MS,
  scenario,
  sharedBroker,
  startBroker,
  uniq,
  waitStats,
} from "./harness.ts";

const SVC = "fila.v1.FilaService";

interface ItemError {
  code: number;
  message: string;
}
interface EnqueueResult {
  message_id: string;
  error: ItemError | null;
}

function batchEnqueue(
  client: FilaClient,
  items: Array<{ queue: string; headers?: Record<string, string>; payload?: string }>,
): Promise<{ results: EnqueueResult[] }> {
  return client.unary(SVC, "BatchEnqueue", {
    items: items.map((i) => ({
      queue: i.queue,
      headers: i.headers ?? {},
      payload: new TextEncoder().encode(i.payload ?? ""),
    })),
  });
}

function settle(
  client: FilaClient,
  method: "BatchAck" | "BatchNack",
  items: Array<{ queue: string; message_id: string; error?: string }>,
): Promise<{ results: Array<{ error: ItemError | null }> }> {
  return client.unary(SVC, method, { items });
}

/** A stream that opted in to batched delivery; each item is the list of its messages. */
function batchedConsume(client: FilaClient, queue: string, maxUnacked: number, size: number) {
  return client.serverStream<Message[]>(
    SVC,
    "Consume",
    { queue, max_unacked: maxUnacked, max_batch_size: size },
    undefined,
    (raw: { message: Message | null; messages: Message[] }) => {
      assert.equal(raw.message, null, "batched items carry messages in field 2 only");
      return raw.messages;
    },
  );
}

scenario("BA-01 batch enqueue reports an id or the unary error per item", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  const missing = uniq("missing");
  const { results } = await batchEnqueue(client, [
    { queue: q, payload: "a" },
    { queue: missing, payload: "b" },
    { queue: q, payload: "c" },
  ]);
  assert.equal(results.length, 3);
  assert.equal(results[0].error, null);
  assert.deepEqual(results[1].error, {
    code: grpc.status.NOT_FOUND,
    message: `queue "${missing}" not found`,
  });
  assert.equal(results[2].error, null);
  const c = client.consume(q, 10);
  const got = await c.take(2, PROMPT_MS);
  assert.deepEqual(got.map((m) => m.id), [results[0].message_id, results[2].message_id]);
  await assertStatus(client.getStats(missing), grpc.status.NOT_FOUND);
});

scenario("BA-02 with auth, items are checked against the key's ACL one by one", async () => {
  const b = await startBroker({ toml: '[auth]\nbootstrap_apikey = "boot"' });
  const admin = keyClient(b.addr, "boot");
  const q = uniq("q");
  const r = uniq("r");
  await admin.createQueue(q);
  await admin.createQueue(r);
  const { client } = await keyWith(admin, [`produce:${q}`]);
  const { results } = await batchEnqueue(client, [{ queue: q }, { queue: r }]);
  assert.equal(results[0].error, null);
  assert.deepEqual(results[1].error, {
    code: grpc.status.PERMISSION_DENIED,
    message: `key does not have produce permission on queue "${r}"`,
  });
  assert.equal((await admin.getStats(q)).depth, 1);
  assert.equal((await admin.getStats(r)).depth, 0);
}, { needsProcess: true });

scenario("BA-03 items of one batch for one key are delivered in request order", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  const items = Array.from({ length: 50 }, (_, i) => ({ queue: q, payload: `m${i}` }));
  const { results } = await batchEnqueue(client, items);
  const c = client.consume(q, 100);
  const got = await c.take(50, PROMPT_MS);
  assert.deepEqual(got.map((m) => m.id), results.map((r) => r.message_id));
});

scenario("BA-04 batch ack: OK, NOT_FOUND and INVALID_ARGUMENT per item", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  await client.enqueueMany(q, 2);
  const c = client.consume(q, 1);
  const m = await c.expectNext(PROMPT_MS);
  const unknown = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
  const { results } = await settle(client, "BatchAck", [
    { queue: q, message_id: m.id },
    { queue: q, message_id: unknown },
    { queue: q, message_id: "abc" },
  ]);
  assert.deepEqual(results.map((r) => r.error), [
    null,
    { code: grpc.status.NOT_FOUND, message: `no lease for message ${unknown} in queue ${q}` },
    { code: grpc.status.INVALID_ARGUMENT, message: "invalid message_id format" },
  ]);
  await waitStats(client, q, (s) => s.depth === 1, 2000, "only the acked message removed");
});

scenario("BA-05 batch nack runs the failure path once per message", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client, {
    on_failure_script: `function on_failure(msg) return { action = "retry" } end`,
  });
  await client.enqueueMany(q, 2);
  const c = client.consume(q, 2);
  const [a, b] = await c.take(2, PROMPT_MS);
  const { results } = await settle(client, "BatchNack", [
    { queue: q, message_id: a.id, error: "x" },
    { queue: q, message_id: b.id, error: "y" },
  ]);
  assert.deepEqual(results.map((r) => r.error), [null, null]);
  const again = await c.take(2, PROMPT_MS);
  assert.deepEqual(again.map((m) => m.metadata!.attempt_count), [1, 1]);
});

scenario("BA-06 batched delivery honours the batch size and the credit", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  await batchEnqueue(
    client,
    Array.from({ length: 150 }, (_, i) => ({ queue: q, payload: `${i}` })),
  );
  const c = batchedConsume(client, q, 100, 10);
  let total = 0;
  let multi = 0;
  while (total < 100) {
    const item = await c.expectNext(PROMPT_MS, "a batched item");
    assert.ok(item.length >= 1 && item.length <= 10, `item of ${item.length}`);
    if (item.length > 1) multi++;
    total += item.length;
  }
  assert.equal(total, 100);
  assert.ok(multi > 0, "some items carry several messages");
  await c.expectNothing(500, "nothing beyond the credit of 100");
  const s = await client.getStats(q);
  assert.equal(s.in_flight, 100);
});

scenario("BA-07 a stream that did not opt in gets one message per item in field 1", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  const c = client.serverStream<{ message: Message | null; messages: Message[] }>(
    SVC,
    "Consume",
    { queue: q, max_unacked: 100 },
  );
  await batchEnqueue(client, Array.from({ length: 30 }, (_, i) => ({ queue: q, payload: `${i}` })));
  for (let i = 0; i < 30; i++) {
    const item = await c.expectNext(PROMPT_MS);
    assert.ok(item.message, "field 1 set");
    assert.equal(item.messages.length, 0);
  }
});

scenario("BA-08 an oversized or unauthenticated batch stores nothing", async () => {
  const b = await startBroker({ toml: '[auth]\nbootstrap_apikey = "boot"' });
  const admin = keyClient(b.addr, "boot");
  const q = uniq("q");
  await admin.createQueue(q);
  const root = new protobuf.Root();
  const protoDir = fileURLToPath(new URL("../proto/", import.meta.url));
  root.resolvePath = (_origin, target) =>
    target.startsWith("google/protobuf/") ? target : protoDir + target;
  root.loadSync("fila/v1/service.proto");
  const Req = root.lookupType("fila.v1.BatchEnqueueRequest");
  const body = Req.encode({
    items: [
      { queue: q, payload: new Uint8Array(3_000_000) },
      { queue: q, payload: new Uint8Array(1_500_000) },
    ],
  }).finish();
  await assertStatus(
    admin.rawUnary(`/${SVC}/BatchEnqueue`, body),
    grpc.status.OUT_OF_RANGE,
    /^Error, decoded message length too large: found \d+ bytes, the limit is: 4194304 bytes$/,
  );
  const anonymous = b.client();
  await assertStatus(batchEnqueue(anonymous, [{ queue: q }]), grpc.status.UNAUTHENTICATED);
  assert.equal((await admin.getStats(q)).depth, 0);
}, { needsProcess: true });

scenario("BA-09 batched items stay within 4 MiB with 1.5 MiB messages", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client);
  const big = "x".repeat(1_500_000);
  for (let i = 0; i < 5; i++) await client.enqueue(q, { payload: big });
  const c = batchedConsume(client, q, 100, 10);
  let total = 0;
  while (total < 5) {
    const item = await c.expectNext(5000, "a batched item");
    assert.ok(item.length <= 2, `item of ${item.length} messages`);
    total += item.length;
  }
});
