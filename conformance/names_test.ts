// conformance.md §16 Names and validation (NV-01 … NV-05).
import assert from "node:assert/strict";
import { assertStatus, grpc, rawEnqueueRequest } from "./client.ts";
import { PROMPT_MS, scenario, sharedBroker, uniq } from "./harness.ts";

const bytes = (s: string) => new TextEncoder().encode(s).length;

/** A unique ASCII name of exactly `len` bytes ending with `suffix`. */
function nameOfLength(len: number, suffix = ""): string {
  const base = uniq("nv") + "-";
  const name = base + "x".repeat(len - base.length - suffix.length) + suffix;
  assert.equal(bytes(name), len);
  return name;
}

scenario("NV-01 queue name length limits (255 bytes, 251 for queues that get a DLQ)", async () => {
  const { client } = await sharedBroker();
  const dlq255 = nameOfLength(255, ".dlq");
  await client.createQueue(dlq255);
  await assertStatus(
    client.createQueue(nameOfLength(256)),
    grpc.status.INVALID_ARGUMENT,
    "queue name must not exceed 255 bytes",
  );
  await assertStatus(
    client.createQueue(nameOfLength(252)),
    grpc.status.INVALID_ARGUMENT,
    'queue name must not exceed 251 bytes (its dead-letter queue name adds ".dlq")',
  );
  const q251 = nameOfLength(251);
  await client.createQueue(q251);
  const names = (await client.listQueues()).queues.map((q) => q.name);
  assert.ok(names.includes(dlq255));
  assert.ok(names.includes(q251));
  assert.ok(names.includes(`${q251}.dlq`), "the 255-byte DLQ exists");
});

scenario("NV-02 the byte limit counts UTF-8 bytes (128 × é = 256 bytes)", async () => {
  const { client } = await sharedBroker();
  const name = "é".repeat(128);
  assert.equal(bytes(name), 256);
  await assertStatus(
    client.createQueue(name),
    grpc.status.INVALID_ARGUMENT,
    "queue name must not exceed 255 bytes",
  );
});

scenario("NV-03 control characters in queue names are rejected everywhere", async () => {
  const { client } = await sharedBroker();
  const msg = "queue name must not contain control characters";
  for (const name of ["a\tb", "a\nb", "a\u0085b"]) {
    await assertStatus(client.createQueue(name), grpc.status.INVALID_ARGUMENT, msg);
    await assertStatus(client.enqueue(name, { payload: "x" }), grpc.status.INVALID_ARGUMENT, msg);
    const c = client.consume(name);
    const st = await c.waitEnd(PROMPT_MS);
    assert.equal(st.code, grpc.status.INVALID_ARGUMENT, `Consume(${JSON.stringify(name)})`);
    assert.equal(st.details, msg);
    await assertStatus(client.getStats(name), grpc.status.INVALID_ARGUMENT, msg);
  }
});

scenario("NV-04 invalid UTF-8 in string fields is INVALID_ARGUMENT naming the field", async () => {
  const { client } = await sharedBroker();
  const q = uniq("nv4");
  await client.createQueue(q);
  await assertStatus(
    client.rawUnary(
      "/fila.v1.FilaService/Enqueue",
      rawEnqueueRequest(new Uint8Array([0xff, 0xfe])),
    ),
    grpc.status.INVALID_ARGUMENT,
    'invalid UTF-8 in field "queue"',
  );
  await assertStatus(
    client.rawUnary(
      "/fila.v1.FilaService/Enqueue",
      rawEnqueueRequest(
        q,
        [["h", new Uint8Array([0x61, 0xff, 0x62])]],
        new TextEncoder().encode("x"),
      ),
    ),
    grpc.status.INVALID_ARGUMENT,
    'invalid UTF-8 in field "headers"',
  );
  assert.equal((await client.getStats(q)).depth, 0, "nothing was stored");
  // The broker keeps serving.
  await client.listQueues();
  const id = await client.enqueue(q, { payload: "ok" });
  assert.ok(id);
});

scenario("NV-05 Redrive with a 256-byte dlq_queue is rejected", async () => {
  const { client } = await sharedBroker();
  await assertStatus(
    client.redrive(nameOfLength(256, ".dlq")),
    grpc.status.INVALID_ARGUMENT,
    "dlq_queue name must not exceed 255 bytes",
  );
});
