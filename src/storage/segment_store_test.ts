import assert from "node:assert/strict";
import { join } from "node:path";
import { StorageError } from "../core/errors.ts";
import { newMessageId } from "../core/ids.ts";
import type { MessageBody, QueueDef } from "../core/types.ts";
import { Keys } from "./keys.ts";
import { KvStore } from "./kv_store.ts";
import { MemoryStore } from "./memory_store.ts";
import { SEGMENT_LIMITS, SegmentStore } from "./segment_store.ts";
import type { Mutation, Snapshot, Store } from "./store.ts";

function queue(name: string, qid = `qid-${name}`): QueueDef {
  return {
    name,
    qid,
    onEnqueueScript: "",
    onFailureScript: "",
    visibilityTimeoutMs: 30_000,
    fairnessKeyHeader: "",
    weightHeader: "",
    throttleKeyHeaders: [],
    createdAtMs: 1,
  };
}

const def = queue("q");
const dlq = queue("q.dlq");

let seq = 0;
function body(payloadBytes = 3, id?: string): MessageBody {
  seq++;
  return {
    id: id ?? `0190a1b2-c3d4-7e5f-8a9b-${String(seq).padStart(12, "0")}`,
    headers: { h: "v" },
    payload: new Uint8Array(payloadBytes).fill(seq % 256),
    fairnessKey: "k",
    weight: 1,
    throttleKeys: [],
    enqueuedAtMs: 5,
  };
}

async function withDir(fn: (path: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await fn(join(dir, "fila.kv"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function kvKeys(path: string): Promise<Deno.KvKey[]> {
  const kv = await Deno.openKv(path);
  const keys = (await Array.fromAsync(kv.list({ prefix: [] }))).map((e) => e.key);
  kv.close();
  return keys;
}

/** A store kind under test; `open` of the same path sees what was written before. */
interface Kind {
  name: string;
  open(path: string): Promise<Store>;
  persistent: boolean;
}

const memories = new Map<string, MemoryStore>();
const kinds: Kind[] = [
  { name: "KvStore", open: (p) => KvStore.open(p), persistent: true },
  { name: "SegmentStore", open: (p) => SegmentStore.open(p), persistent: true },
  {
    name: "MemoryStore",
    open: (p) => {
      let m = memories.get(p);
      if (!m) memories.set(p, m = new MemoryStore());
      return Promise.resolve(m);
    },
    persistent: false,
  },
];

/** Messages as [queue, id, state] triples, for comparisons. */
function flatten(snap: Snapshot): Array<[string, string, unknown]> {
  const out: Array<[string, string, unknown]> = [];
  for (const [name, list] of [...snap.messages].sort(([a], [b]) => (a < b ? -1 : 1))) {
    for (const m of list) out.push([name, m.body.id, m.state]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The contract, for every store

for (const kind of kinds) {
  const reopen = async (store: Store, path: string) => {
    await store.close();
    return await kind.open(path);
  };

  Deno.test(`${kind.name}: group-commits concurrent writes and recovers them in id order`, async () => {
    await withDir(async (path) => {
      const store = await kind.open(path);
      await store.load();
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
      const again = await reopen(store, path);
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

  Deno.test(`${kind.name}: keeps every state form and moves messages atomically`, async () => {
    await withDir(async (path) => {
      let store = await kind.open(path);
      await store.load();
      await store.write([{ op: "putQueue", def }, { op: "putQueue", def: dlq }]);
      const [a, b, c, d] = [body(), body(), body(), body()];
      await store.write([
        { op: "putMessage", qid: def.qid, body: a },
        { op: "putMessage", qid: def.qid, body: b, state: { attempts: 0, readyAt: 1234 } },
        { op: "putMessage", qid: def.qid, body: c },
        { op: "putMessage", qid: def.qid, body: d },
      ]);
      await store.write([{
        op: "setState",
        qid: def.qid,
        id: a.id,
        state: { attempts: 1, leaseDeadline: Infinity },
      }]);
      await store.write([{
        op: "setState",
        qid: def.qid,
        id: c.id,
        state: { attempts: 3, leaseDeadline: 5, readyAt: 6 },
      }]);
      await store.write([{ op: "setState", qid: def.qid, id: c.id, state: null }]);
      await store.write([{
        op: "moveMessage",
        fromQid: def.qid,
        toQid: dlq.qid,
        body: d,
        state: { attempts: 4 },
      }]);
      store = await reopen(store, path);
      assert.deepEqual(flatten(await store.load()), [
        ["q", a.id, { attempts: 1, leaseDeadline: Infinity }],
        ["q", b.id, { attempts: 0, readyAt: 1234 }],
        ["q", c.id, undefined],
        ["q.dlq", d.id, { attempts: 4 }],
      ]);
      // Redrive: back to the parent as plain pending, then to the DLQ again.
      await store.write([{
        op: "moveMessage",
        fromQid: dlq.qid,
        toQid: def.qid,
        body: d,
        state: null,
      }]);
      store = await reopen(store, path);
      assert.deepEqual((await store.load()).messages.get("q")!.map((m) => m.state), [
        { attempts: 1, leaseDeadline: Infinity },
        { attempts: 0, readyAt: 1234 },
        undefined,
        undefined,
      ]);
      await store.write([{
        op: "moveMessage",
        fromQid: def.qid,
        toQid: dlq.qid,
        body: d,
        state: null,
      }]);
      store = await reopen(store, path);
      const snap = await store.load();
      assert.deepEqual(snap.messages.get("q.dlq"), [{ body: d }]);
      assert.equal(snap.messages.get("q")!.length, 3);
      await store.close();
    });
  });

  Deno.test(`${kind.name}: stores a 4 MiB message in chunks and deletes them all`, async () => {
    await withDir(async (path) => {
      const store = await kind.open(path);
      await store.load();
      await store.write([{ op: "putQueue", def }]);
      const big = body(4_190_000);
      const small = body();
      await store.write([{ op: "putMessage", qid: def.qid, body: big }]);
      await store.write([{ op: "putMessage", qid: def.qid, body: small }]);
      const again = await reopen(store, path);
      const msgs = (await again.load()).messages.get("q")!;
      assert.deepEqual(msgs.map((m) => m.body), [big, small]);
      await again.write([{ op: "deleteMessage", qid: def.qid, body: big }]);
      await again.write([{ op: "deleteMessage", qid: def.qid, body: small }]);
      await again.close();
      if (kind.persistent) assert.deepEqual((await kvKeys(path)).map((k) => k[0]), ["q"]);
    });
  });

  Deno.test(`${kind.name}: deletes a queue at once and purges its rows later`, async () => {
    await withDir(async (path) => {
      const store = await kind.open(path);
      await store.load();
      await store.write([{ op: "putQueue", def }]);
      for (let i = 0; i < 50; i++) {
        await store.write([{
          op: "putMessage",
          qid: def.qid,
          body: body(),
          state: { attempts: 1 },
        }]);
      }
      await store.write([{ op: "putMessage", qid: def.qid, body: body(200_000) }]);
      await store.write([{ op: "deleteQueue", def }]);
      const snap = await store.load();
      assert.equal(snap.queues.length, 0);
      assert.equal(snap.messages.size, 0);
      assert.ok((await store.purgeDeleted()) >= 51);
      await store.close();
      if (kind.persistent) assert.deepEqual(await kvKeys(path), []);
    });
  });

  Deno.test(`${kind.name}: a write KV cannot take fails alone, with no effect`, async () => {
    if (kind.name === "MemoryStore") return;
    await withDir(async (path) => {
      const store = await kind.open(path);
      await store.load();
      await store.write([{ op: "putQueue", def }]);
      const ok = body();
      const results = await Promise.allSettled([
        store.write([{ op: "putMessage", qid: def.qid, body: ok }]),
        store.write([
          { op: "putMessage", qid: def.qid, body: body() },
          { op: "putConfig", key: "big", value: "x".repeat(70_000) },
        ]),
      ]);
      const again = await reopen(store, path);
      const snap = await again.load();
      await again.close();
      assert.equal(results[1].status, "rejected");
      assert.ok((results[1] as PromiseRejectedResult).reason instanceof StorageError);
      assert.deepEqual(snap.config, []);
      if (kind.name === "SegmentStore") {
        // KvStore fails the whole commit the bad write shares; SegmentStore only the write.
        assert.equal(results[0].status, "fulfilled");
        assert.deepEqual(flatten(snap), [["q", ok.id, undefined]]);
      } else {
        assert.ok(flatten(snap).length <= 1);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Model-based: random concurrent writes against MemoryStore, reopening at random points

function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// 112 and 122 once found a message moved out and back within one commit left undeletable.
for (const seed of [1, 2, 3, 112, 122]) {
  Deno.test(`SegmentStore matches MemoryStore under random writes and reopens (seed ${seed})`, async () => {
    await withDir(async (path) => {
      const rand = rng(seed);
      const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
      const model = new MemoryStore();
      let store = await SegmentStore.open(path);
      await store.load();
      const queues = [queue("a"), queue("a.dlq"), queue("b")];
      const setup: Mutation[] = queues.map((d) => ({ op: "putQueue", def: d }));
      await Promise.all([store.write(setup), model.write(setup)]);
      // Where each message lives, as the scheduler would know it.
      const where = new Map<string, { qid: string; body: MessageBody }>();
      const randomState = () =>
        pick([
          null,
          { attempts: Math.floor(rand() * 5) },
          { attempts: 1, leaseDeadline: Math.floor(rand() * 1e12) },
          { attempts: 2, readyAt: 77 },
        ]);
      for (let round = 0; round < 40; round++) {
        if (rand() < 0.1) {
          // Delete queue "b" and create it again as a new incarnation; purge concurrently.
          const old = queues[2];
          const fresh = queue("b", crypto.randomUUID());
          queues[2] = fresh;
          for (const [id, m] of where) if (m.qid === old.qid) where.delete(id);
          const w: Mutation[] = [{ op: "deleteQueue", def: old }, { op: "putQueue", def: fresh }];
          await Promise.all([store.write(w), model.write(w)]);
          await Promise.all([store.purgeDeleted(), model.purgeDeleted()]);
        }
        const batch: Mutation[][] = [];
        const n = 1 + Math.floor(rand() * 60);
        for (let i = 0; i < n; i++) {
          const live = [...where.entries()];
          const r = rand();
          if (r < 0.4 || live.length === 0) {
            const qid = pick(queues).qid;
            const count = 1 + Math.floor(rand() * 3);
            const w: Mutation[] = [];
            for (let j = 0; j < count; j++) {
              const big = rand() < 0.01;
              const b = body(big ? 70_000 : Math.floor(rand() * 2000), newMessageId());
              const state = rand() < 0.1 ? randomState() ?? undefined : undefined;
              w.push(
                state ? { op: "putMessage", qid, body: b, state } : {
                  op: "putMessage",
                  qid,
                  body: b,
                },
              );
              where.set(b.id, { qid, body: b });
            }
            batch.push(w);
          } else if (r < 0.65) {
            const [id, m] = pick(live);
            batch.push([{ op: "setState", qid: m.qid, id, state: randomState() }]);
          } else if (r < 0.9) {
            const [id, m] = pick(live);
            where.delete(id);
            batch.push([{ op: "deleteMessage", qid: m.qid, body: m.body }]);
          } else {
            const [id, m] = pick(live);
            const toQid = pick(queues.filter((q) => q.qid !== m.qid)).qid;
            where.set(id, { qid: toQid, body: m.body });
            batch.push([{
              op: "moveMessage",
              fromQid: m.qid,
              toQid,
              body: m.body,
              state: randomState(),
            }]);
          }
        }
        await Promise.all(batch.flatMap((w) => [store.write(w), model.write(w)]));
        if (rand() < 0.3) {
          await store.close();
          store = await SegmentStore.open(path);
        }
        if (rand() < 0.3 || round === 39) {
          const [got, want] = await Promise.all([store.load(), model.load()]);
          assert.deepEqual(flatten(got), flatten(want), `round ${round}`);
          for (const [name, list] of want.messages) {
            assert.deepEqual(got.messages.get(name)!.map((m) => m.body), list.map((m) => m.body));
          }
        }
      }
      // Everything acked: nothing of the packed layout is left once idle work is done.
      await Promise.all(
        [...where].map(([, m]) => store.write([{ op: "deleteMessage", qid: m.qid, body: m.body }])),
      );
      await store.close();
      store = await SegmentStore.open(path);
      assert.equal(flatten(await store.load()).length, 0);
      await store.close();
      const left = (await kvKeys(path)).filter((k) => k[0] !== "q");
      assert.deepEqual(left, []);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Packed layout specifics

Deno.test("SegmentStore: a failed commit changes nothing, and later writes build on the last good one", async () => {
  await withDir(async (path) => {
    const store = await SegmentStore.open(path);
    await store.load();
    await store.write([{ op: "putQueue", def }, { op: "putQueue", def: dlq }]);
    const [a, b, c] = [body(), body(), body()];
    await store.write([
      { op: "putMessage", qid: def.qid, body: a },
      { op: "putMessage", qid: def.qid, body: b },
    ]);
    await store.write([{
      op: "setState",
      qid: def.qid,
      id: a.id,
      state: { attempts: 1, leaseDeadline: 7 },
    }]);
    const kv = store.kv;
    const atomic = kv.atomic;
    kv.atomic = () => {
      const op = atomic.call(kv);
      op.commit = () => Promise.reject(new Error("injected I/O error"));
      return op;
    };
    const failed = await Promise.allSettled([
      store.write([{ op: "deleteMessage", qid: def.qid, body: a }]),
      store.write([{ op: "moveMessage", fromQid: def.qid, toQid: dlq.qid, body: b, state: null }]),
      store.write([{ op: "putMessage", qid: def.qid, body: c }]),
      store.write([{ op: "setState", qid: def.qid, id: a.id, state: null }]),
    ]);
    kv.atomic = atomic;
    for (const r of failed) {
      assert.equal(r.status, "rejected");
      assert.ok((r as PromiseRejectedResult).reason instanceof StorageError);
    }
    // The same writes again succeed, as if the failed ones had never been issued.
    await store.write([{ op: "setState", qid: def.qid, id: a.id, state: { attempts: 2 } }]);
    await store.write([{
      op: "moveMessage",
      fromQid: def.qid,
      toQid: dlq.qid,
      body: b,
      state: null,
    }]);
    await store.close();
    const again = await SegmentStore.open(path);
    assert.deepEqual(flatten(await again.load()), [
      ["q", a.id, { attempts: 2 }],
      ["q.dlq", b.id, undefined],
    ]);
    await again.write([{ op: "deleteMessage", qid: def.qid, body: a }]);
    await again.write([{ op: "deleteMessage", qid: dlq.qid, body: b }]);
    await again.close();
    assert.deepEqual((await kvKeys(path)).map((k) => k[0]), ["q", "q"]);
  });
});

async function countPrefix(path: string, prefix: string): Promise<number> {
  return (await kvKeys(path)).filter((k) => k[0] === prefix).length;
}

Deno.test("SegmentStore packs one commit's bodies into a few segments and deletes them when acked", async () => {
  await withDir(async (path) => {
    const store = await SegmentStore.open(path);
    await store.load();
    await store.write([{ op: "putQueue", def }]);
    const bodies = Array.from({ length: 600 }, () => body(1024));
    await Promise.all(
      bodies.map((b) => store.write([{ op: "putMessage", qid: def.qid, body: b }])),
    );
    await store.close();
    const segments = await countPrefix(path, "g");
    // ~1.07 KiB per entry, ~59 per 63 KiB segment: at least 11 segments, and few more.
    assert.ok(segments >= 10 && segments <= 14, `${segments} segments`);
    const again = await SegmentStore.open(path);
    await again.load();
    await Promise.all(bodies.map((b) =>
      again.write([{
        op: "setState",
        qid: def.qid,
        id: b.id,
        state: { attempts: 0, leaseDeadline: 1 },
      }])
    ));
    await Promise.all(
      bodies.slice(0, 599).map((b) =>
        again.write([{ op: "deleteMessage", qid: def.qid, body: b }])
      ),
    );
    await again.close();
    assert.equal(await countPrefix(path, "g"), 1);
    assert.equal(await countPrefix(path, "t"), 1);
    const last = await SegmentStore.open(path);
    assert.deepEqual(flatten(await last.load()), [[
      "q",
      bodies[599].id,
      { attempts: 0, leaseDeadline: 1 },
    ]]);
    await last.write([{ op: "deleteMessage", qid: def.qid, body: bodies[599] }]);
    await last.close();
    assert.deepEqual((await kvKeys(path)).map((k) => k[0]), ["q"]);
  });
});

Deno.test("SegmentStore rewrites a state batch once few of its entries are current", async () => {
  await withDir(async (path) => {
    const store = await SegmentStore.open(path);
    await store.load();
    await store.write([{ op: "putQueue", def }]);
    const bodies = Array.from({ length: 64 }, () => body());
    await store.write(bodies.map((b) => ({ op: "putMessage", qid: def.qid, body: b })));
    await store.write(bodies.map((b, i) => ({
      op: "setState",
      qid: def.qid,
      id: b.id,
      state: { attempts: i, leaseDeadline: 1000 + i },
    })));
    const kv = await Deno.openKv(path);
    const before = (await Array.fromAsync(kv.list({ prefix: Keys.stateBatchPrefix })))
      .map((e) => e.key[1]);
    assert.equal(before.length, 1);
    // 60 of 64 acked: 4 current entries ≤ 64/8, so the batch moves into a newer one.
    await store.write(
      bodies.slice(0, 60).map((b) => ({ op: "deleteMessage", qid: def.qid, body: b })),
    );
    const after = (await Array.fromAsync(kv.list({ prefix: Keys.stateBatchPrefix })))
      .map((e) => e.key[1]);
    kv.close();
    assert.equal(after.length, 1);
    assert.notEqual(after[0], before[0]);
    await store.close();
    const again = await SegmentStore.open(path);
    assert.deepEqual(
      (await again.load()).messages.get("q")!.map((m) => m.state),
      [60, 61, 62, 63].map((i) => ({ attempts: i, leaseDeadline: 1000 + i })),
    );
    await again.close();
  });
});

Deno.test("SegmentStore splits commits only between writes, under every KV limit", async () => {
  await withDir(async (path) => {
    const store = await SegmentStore.open(path);
    await store.load();
    const queues = Array.from({ length: 30 }, (_, i) => queue(`q${i}`, crypto.randomUUID()));
    await store.write(queues.map((d) => ({ op: "putQueue", def: d })));
    // Writes of 40 tiny messages over 30 queues (one segment each per commit) and of 400
    // acks: every one must fit, and together they need several commits.
    const writes: Mutation[][] = [];
    for (let i = 0; i < 60; i++) {
      writes.push(queues.map((d) => ({ op: "putMessage", qid: d.qid, body: body(1) })));
    }
    await Promise.all(writes.map((w) => store.write(w)));
    const acks: Mutation[][] = [];
    for (let i = 0; i < 60; i += 10) {
      acks.push(
        writes.slice(i, i + 10).flat().map((m) => ({
          op: "deleteMessage",
          qid: (m as { qid: string }).qid,
          body: (m as { body: MessageBody }).body,
        })),
      );
    }
    await Promise.all(acks.map((w) => store.write(w)));
    await store.close();
    const again = await SegmentStore.open(path);
    assert.equal(flatten(await again.load()).length, 0);
    await again.close();
    assert.equal(await countPrefix(path, "g"), 0);
    assert.ok(SEGMENT_LIMITS.mutationsPerCommit <= 1000);
  });
});

Deno.test("SegmentStore spreads one commit's many states over several batch values", async () => {
  await withDir(async (path) => {
    const store = await SegmentStore.open(path);
    await store.load();
    await store.write([{ op: "putQueue", def }]);
    const bodies = Array.from({ length: 4000 }, () => body(0));
    for (let i = 0; i < bodies.length; i += 500) {
      await store.write(
        bodies.slice(i, i + 500).map((b) => ({ op: "putMessage", qid: def.qid, body: b })),
      );
    }
    // 4000 lease writes issued at once: one commit (no row each), ~90 KiB of states.
    await Promise.all(bodies.map((b, i) =>
      store.write([{
        op: "setState",
        qid: def.qid,
        id: b.id,
        state: { attempts: i, leaseDeadline: 1e12 + i, readyAt: i },
      }])
    ));
    await store.close();
    assert.ok((await countPrefix(path, "t")) >= 2);
    const again = await SegmentStore.open(path);
    const msgs = (await again.load()).messages.get("q")!;
    assert.deepEqual(
      msgs.map((m) => m.state),
      bodies.map((_, i) => ({ attempts: i, leaseDeadline: 1e12 + i, readyAt: i })),
    );
    await again.write(bodies.map((b) => ({ op: "deleteMessage", qid: def.qid, body: b })));
    await again.close();
    assert.deepEqual((await kvKeys(path)).map((k) => k[0]), ["q"]);
  });
});

Deno.test("SegmentStore reads and converts a database written by KvStore", async () => {
  await withDir(async (path) => {
    const old = await KvStore.open(path);
    await old.write([{ op: "putQueue", def }, { op: "putQueue", def: dlq }]);
    const bodies = Array.from({ length: 300 }, () => body(100));
    const big = body(100_000);
    await old.write(bodies.map((b) => ({ op: "putMessage", qid: def.qid, body: b })));
    await old.write([{ op: "putMessage", qid: dlq.qid, body: big, state: { attempts: 3 } }]);
    await old.write([{
      op: "setState",
      qid: def.qid,
      id: bodies[5].id,
      state: { attempts: 1, leaseDeadline: 9 },
    }]);
    await old.write([{ op: "putConfig", key: "k", value: "v" }]);
    const want = flatten(await old.load());
    await old.close();

    const store = await SegmentStore.open(path);
    assert.deepEqual(flatten(await store.load()), want);
    await store.write([{ op: "deleteMessage", qid: def.qid, body: bodies[5] }]);
    await store.write([{ op: "deleteMessage", qid: dlq.qid, body: big }]);
    await store.close();
    const prefixes = new Set((await kvKeys(path)).map((k) => k[0]));
    assert.ok(!prefixes.has("m") && !prefixes.has("s") && !prefixes.has("c"));
    const again = await SegmentStore.open(path);
    const snap = await again.load();
    assert.deepEqual(flatten(snap), want.filter(([, id]) => id !== bodies[5].id && id !== big.id));
    assert.deepEqual(snap.config, [["k", "v"]]);
    await again.close();
  });
});

Deno.test("SegmentStore never resurrects an acked message nor loses a committed one across kill -9", async () => {
  await withDir(async (path) => {
    const storeUrl = import.meta.resolve("./segment_store.ts");
    // A child that enqueues, leases and acks in pipelined writes, printing each outcome once it
    // is durable; it is killed mid-stream, several times over the same database.
    const child = `
      import { SegmentStore } from ${JSON.stringify(storeUrl)};
      const qid = "qid-q";
      const def = { name: "q", qid, onEnqueueScript: "", onFailureScript: "",
        visibilityTimeoutMs: 1000, fairnessKeyHeader: "", weightHeader: "",
        throttleKeyHeaders: [], createdAtMs: 1 };
      const store = await SegmentStore.open(${JSON.stringify(path)});
      const snap = await store.load();
      await store.write([{ op: "putQueue", def }]);
      const out = (s) => Deno.stdout.writeSync(new TextEncoder().encode(s + "\\n"));
      const live = (snap.messages.get("q") ?? []).map((m) => m.body);
      let n = 0;
      const body = () => ({ id: crypto.randomUUID().replace(/^.{8}/, (n++).toString(16).padStart(8, "0")),
        headers: {}, payload: new Uint8Array(500), fairnessKey: "k", weight: 1,
        throttleKeys: [], enqueuedAtMs: 1 });
      const lifecycle = async (b, fresh) => {
        if (fresh) {
          await store.write([{ op: "putMessage", qid, body: b }]);
          out("P " + b.id);
        }
        await store.write([{ op: "setState", qid, id: b.id, state: { attempts: 1, leaseDeadline: 5 } }]);
        out("I " + b.id);
        await store.write([{ op: "deleteMessage", qid, body: b }]);
        out("A " + b.id);
      };
      for (const b of live) out("L " + b.id);
      const work = live.map((b) => lifecycle(b, false));
      for (;;) {
        const batch = [];
        for (let i = 0; i < 64; i++) batch.push(lifecycle(body(), true));
        out("X " + (await Promise.allSettled(batch)).length);
      }
    `;
    const acked = new Set<string>();
    // Committed and certainly never acked: the ack is issued only after "I" is printed.
    const mustSurvive = new Set<string>();
    for (let run = 0; run < 4; run++) {
      const proc = new Deno.Command(Deno.execPath(), {
        args: ["eval", "--unstable-kv", child],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = "";
      let lines = 0;
      let killed = false;
      const target = 500 + run * 700;
      for (;;) {
        if (!killed && lines >= target) {
          proc.kill("SIGKILL");
          killed = true;
        }
        // After the kill, drain what the child printed before it died.
        const { value, done } = await reader.read();
        if (done) break;
        buffered += value;
        const parts = buffered.split("\n");
        buffered = parts.pop()!;
        for (const line of parts) {
          lines++;
          const [kind, id] = line.split(" ");
          if (kind === "P") mustSurvive.add(id);
          if (kind === "I") mustSurvive.delete(id);
          if (kind === "A") acked.add(id);
          if (kind === "L") assert.ok(!acked.has(id), `acked message ${id} came back`);
        }
      }
      await proc.status;
      const store = await SegmentStore.open(path);
      const snap = await store.load();
      await store.close();
      const ids = new Set((snap.messages.get("q") ?? []).map((m) => m.body.id));
      for (const id of ids) assert.ok(!acked.has(id), `acked message ${id} came back`);
      for (const id of mustSurvive) assert.ok(ids.has(id), `committed message ${id} was lost`);
      // What survived and is not leased yet must survive the next run too.
      for (const id of ids) mustSurvive.add(id);
    }
    assert.ok(acked.size > 100);
  });
});

Deno.test("SegmentStore keeps payloads past the load budget in storage and reads them back", async () => {
  await withDir(async (path) => {
    const s = await SegmentStore.open(path);
    await s.load();
    await s.write([{ op: "putQueue", def }, { op: "putQueue", def: dlq }]);
    // 300 small ones (several segments, one with an id in no UUID form), and one chunked.
    const bodies = Array.from({ length: 300 }, () => body(1000));
    bodies[7] = { ...bodies[7], id: bodies[7].id + "-x" }; // still sorts in place
    const big = body(150_000);
    await s.write(bodies.map((b) => ({ op: "putMessage", qid: def.qid, body: b })));
    await s.write([{ op: "putMessage", qid: def.qid, body: big }]);
    bodies.push(big);
    const ids = bodies.map((b) => b.id);
    assert.deepEqual(await s.readPayloads(def.qid, ids), bodies.map((b) => b.payload));
    await s.close();

    const r = await SegmentStore.open(path);
    const snap = await r.load({ payloadBudgetBytes: 50_500 });
    const loaded = snap.messages.get("q")!.map((m) => m.body);
    assert.equal(loaded.length, 301);
    // Oldest first within the budget; the rest carry their length.
    assert.deepEqual(
      loaded.slice(0, 50).map((b) => b.payload),
      bodies.slice(0, 50).map((b) => b.payload),
    );
    assert.deepEqual(
      loaded.slice(50).map((b) => b.payload),
      bodies.slice(50).map((b) => (b.payload as Uint8Array).length),
    );
    for (const [i, b] of loaded.entries()) {
      assert.deepEqual({ ...b, payload: 0 }, { ...bodies[i], payload: 0 });
    }
    // Reverse order, twice: the cache and the reads agree.
    const rev = ids.slice().reverse();
    const want = bodies.map((b) => b.payload).reverse();
    assert.deepEqual(await r.readPayloads(def.qid, rev), want);
    assert.deepEqual(await r.readPayloads(def.qid, rev), want);

    // A move of a body whose payload is not in memory copies the stored encoding (a small one
    // and the chunked one); an acked message can no longer be read.
    const [cold, coldBig] = [loaded[120], loaded[300]];
    assert.equal(typeof cold.payload, "number");
    await r.write([
      { op: "moveMessage", fromQid: def.qid, toQid: dlq.qid, body: cold, state: { attempts: 2 } },
      { op: "moveMessage", fromQid: def.qid, toQid: dlq.qid, body: coldBig, state: null },
      { op: "deleteMessage", qid: def.qid, body: loaded[0] },
    ]);
    assert.deepEqual(await r.readPayloads(dlq.qid, [cold.id, coldBig.id]), [
      bodies[120].payload,
      big.payload,
    ]);
    await assert.rejects(r.readPayloads(def.qid, [loaded[0].id]), StorageError);
    await r.close();

    const again = await SegmentStore.open(path);
    const snap2 = await again.load();
    const moved = snap2.messages.get("q.dlq")!;
    assert.deepEqual(moved.map((m) => m.body), [bodies[120], big]);
    assert.deepEqual(moved[0].state, { attempts: 2 });
    assert.equal(snap2.messages.get("q")!.length, 298);
    await again.close();
  });
});

Deno.test("SegmentStore commits large batches of new messages while another commit is in flight", async () => {
  await withDir(async (path) => {
    const s = await SegmentStore.open(path);
    await s.load();
    await s.write([{ op: "putQueue", def }]);
    // Count KV commits in flight at once.
    const kv = s.kv;
    const atomic = kv.atomic.bind(kv);
    let inFlight = 0;
    let most = 0;
    kv.atomic = () => {
      const op = atomic();
      const commit = op.commit.bind(op);
      op.commit = async () => {
        most = Math.max(most, ++inFlight);
        try {
          return await commit();
        } finally {
          inFlight--;
        }
      };
      return op;
    };
    const early = Array.from({ length: 50 }, () => body(1000));
    await s.write(early.map((b) => ({ op: "putMessage", qid: def.qid, body: b })));
    // Big writes of new messages, interleaved with acks and leases of earlier ones.
    const batches = Array.from({ length: 8 }, () => Array.from({ length: 300 }, () => body(1000)));
    const writes: Promise<void>[] = [];
    batches.forEach((batch, i) => {
      writes.push(s.write(batch.map((b) => ({ op: "putMessage", qid: def.qid, body: b }))));
      writes.push(s.write([
        { op: "deleteMessage", qid: def.qid, body: early[i] },
        { op: "setState", qid: def.qid, id: early[20 + i].id, state: { attempts: i + 1 } },
      ]));
    });
    await Promise.all(writes);
    assert.ok(most >= 2, `at most ${most} commit in flight`);
    kv.atomic = atomic;
    await s.close();

    const r = await SegmentStore.open(path);
    const snap = await r.load();
    const got = snap.messages.get("q")!;
    const want = [...early.slice(8), ...batches.flat()];
    assert.deepEqual(got.map((m) => m.body.id), want.map((b) => b.id).sort());
    for (let i = 0; i < 8; i++) {
      const m = got.find((m) => m.body.id === early[20 + i].id)!;
      assert.deepEqual(m.state, { attempts: i + 1 });
    }
    assert.deepEqual(got[got.length - 1].body, want[want.length - 1]);
    await r.close();
  });
});
