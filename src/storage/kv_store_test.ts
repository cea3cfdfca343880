import assert from "node:assert/strict";
import { join } from "node:path";
import { KvStore } from "./kv_store.ts";
import type { MessageBody, QueueDef } from "../core/types.ts";

const def: QueueDef = {
  name: "q",
  qid: "qid-1",
  onEnqueueScript: "",
  onFailureScript: "",
  visibilityTimeoutMs: 30_000,
  fairnessKeyHeader: "",
  weightHeader: "",
  throttleKeyHeaders: [],
  createdAtMs: 1,
};

let seq = 0;
function body(payloadBytes = 3): MessageBody {
  seq++;
  return {
    id: `0190a1b2-c3d4-7e5f-8a9b-${String(seq).padStart(12, "0")}`,
    headers: { h: "v" },
    payload: new Uint8Array(payloadBytes).fill(seq % 256),
    fairnessKey: "k",
    weight: 1,
    throttleKeys: [],
    enqueuedAtMs: 5,
  };
}

async function withStore(fn: (path: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await fn(join(dir, "fila.kv"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("KvStore group-commits concurrent writes and recovers them in id order", async () => {
  await withStore(async (path) => {
    const store = await KvStore.open(path);
    await store.write([{ op: "putQueue", def }]);
    const bodies = Array.from({ length: 1500 }, () => body());
    // 1500 concurrent writes exceed one commit's 1000 mutations: split, all durable.
    await Promise.all(
      bodies.map((b) => store.write([{ op: "putMessage", qid: def.qid, body: b }])),
    );
    await store.write([{
      op: "setState",
      qid: def.qid,
      id: bodies[1].id,
      state: { attempts: 2, leaseDeadline: 99 },
    }]);
    await store.write([{ op: "deleteMessage", qid: def.qid, body: bodies[0] }]);
    await store.write([{ op: "putConfig", key: "a", value: "1" }]);
    await store.close();

    const again = await KvStore.open(path);
    const snap = await again.load();
    assert.deepEqual(snap.queues, [def]);
    const msgs = snap.messages.get("q")!;
    assert.equal(msgs.length, 1499);
    assert.deepEqual(msgs.map((m) => m.body.id), bodies.slice(1).map((b) => b.id));
    assert.deepEqual(msgs[0].state, { attempts: 2, leaseDeadline: 99 });
    assert.deepEqual(msgs[1].body, bodies[2]);
    assert.deepEqual(snap.config, [["a", "1"]]);
    await again.close();
  });
});

Deno.test("KvStore stores a 4 MiB message in chunks and deletes them all", async () => {
  await withStore(async (path) => {
    const store = await KvStore.open(path);
    await store.write([{ op: "putQueue", def }]);
    const big = body(4_190_000);
    await store.write([{ op: "putMessage", qid: def.qid, body: big }]);
    await store.close();
    const again = await KvStore.open(path);
    const msgs = (await again.load()).messages.get("q")!;
    assert.deepEqual(msgs[0].body, big);
    await again.write([{ op: "deleteMessage", qid: def.qid, body: big }]);
    await again.close();
    const kv = await Deno.openKv(path);
    const left = await Array.fromAsync(kv.list({ prefix: [] }));
    kv.close();
    assert.deepEqual(left.map((e) => e.key[0]), ["q"]);
  });
});

Deno.test("KvStore deletes a queue at once and purges its rows later", async () => {
  await withStore(async (path) => {
    const store = await KvStore.open(path);
    await store.write([{ op: "putQueue", def }]);
    for (let i = 0; i < 50; i++) {
      await store.write([{ op: "putMessage", qid: def.qid, body: body(), state: { attempts: 1 } }]);
    }
    await store.write([{ op: "putMessage", qid: def.qid, body: body(200_000) }]);
    await store.write([{ op: "deleteQueue", def }]);
    const snap = await store.load();
    assert.equal(snap.queues.length, 0);
    assert.equal(snap.messages.size, 0);
    assert.ok((await store.purgeDeleted()) >= 100);
    await store.close();
    const kv = await Deno.openKv(path);
    const left = await Array.fromAsync(kv.list({ prefix: [] }));
    kv.close();
    assert.deepEqual(left, []);
  });
});
