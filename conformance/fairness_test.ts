// conformance.md §7 Fairness (FA-01 … FA-10) plus the fairness acceptance tests.
// "key/weight from headers" (conformance.md §0) is done with the declarative QueueConfig fields
// fairness_key_header = "key", weight_header = "weight" instead of an on_enqueue script.
// Scenarios whose result does not depend on the quantum run on the shared broker; FA-01 and
// FA-03 start brokers with the quantum they name.
import assert from "node:assert/strict";
import type { FilaClient, Message } from "./client.ts";
import {
  fileBroker,
  KEY_WEIGHT_FROM_HEADERS,
  newQueue,
  PROMPT_MS,
  scenario,
  sharedBroker,
  waitConsumers,
  waitFor,
} from "./harness.ts";

/** Enqueue `n` messages of key `key` (weight `weight`) one after another. */
async function enqueueKey(
  client: FilaClient,
  q: string,
  key: string,
  n: number,
  weight?: number,
  concurrency = 32,
): Promise<string[]> {
  const headers: Record<string, string> = { key };
  if (weight !== undefined) headers.weight = String(weight);
  return await client.enqueueMany(q, n, (i) => ({ headers, payload: `${key}-${i}` }), concurrency);
}

/** consumer(1) acking each message: the keys of the first `n` deliveries, in order. */
async function deliveryOrder(client: FilaClient, q: string, n: number): Promise<Message[]> {
  const c = client.consume(q, 1);
  const out: Message[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const m = await c.expectNext(PROMPT_MS, `delivery #${i + 1}`);
      out.push(m);
      await client.ack(q, m.id);
    }
  } finally {
    c.cancel();
  }
  return out;
}

const keys = (ms: Message[]) => ms.map((m) => m.metadata!.fairness_key);

scenario("FA-01 quantum 1: weights 3 and 1 give high, high, high, low repeated", async () => {
  const b = await fileBroker("quantum1", { toml: "[scheduler]\nquantum = 1" });
  const client = b.client();
  const q = await newQueue(client, KEY_WEIGHT_FROM_HEADERS);
  await enqueueKey(client, q, "high", 100, 3);
  await enqueueKey(client, q, "low", 100, 1);
  const got = keys(await deliveryOrder(client, q, 60));
  const expected = Array.from({ length: 15 }, () => ["high", "high", "high", "low"]).flat();
  assert.deepEqual(got, expected);
}, { needsProcess: true });

scenario("FA-02 two keys of weight 1 alternate one by one", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client, KEY_WEIGHT_FROM_HEADERS);
  await enqueueKey(client, q, "A", 10);
  await enqueueKey(client, q, "B", 10);
  const got = keys(await deliveryOrder(client, q, 20));
  assert.deepEqual(got, Array.from({ length: 10 }, () => ["A", "B"]).flat());
});

scenario("FA-03 quantum 2: weights 2 and 1 give A, A, B repeated", async () => {
  const b = await fileBroker("quantum2", { toml: "[scheduler]\nquantum = 2" });
  const client = b.client();
  const q = await newQueue(client, KEY_WEIGHT_FROM_HEADERS);
  await enqueueKey(client, q, "A", 20, 2);
  await enqueueKey(client, q, "B", 10, 1);
  const got = keys(await deliveryOrder(client, q, 15));
  assert.deepEqual(got, Array.from({ length: 5 }, () => ["A", "A", "B"]).flat());
}, { needsProcess: true });

scenario("FA-04 an emptied key leaves the ring and the others keep alternating", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client, KEY_WEIGHT_FROM_HEADERS);
  await enqueueKey(client, q, "k1", 10);
  await enqueueKey(client, q, "k2", 2);
  await enqueueKey(client, q, "k3", 10);
  const got = keys(await deliveryOrder(client, q, 22));
  const expected = [
    ...["k1", "k2", "k3", "k1", "k2", "k3"],
    ...Array.from({ length: 8 }, () => ["k1", "k3"]).flat(),
  ];
  assert.deepEqual(got, expected);
});

scenario("FA-05 weight 0 is scheduled as 1 and delivered as 0", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client, KEY_WEIGHT_FROM_HEADERS);
  await enqueueKey(client, q, "zero", 6, 0);
  await enqueueKey(client, q, "one", 6, 1);
  const got = await deliveryOrder(client, q, 12);
  assert.deepEqual(keys(got), Array.from({ length: 6 }, () => ["zero", "one"]).flat());
  for (const m of got) {
    assert.equal(m.metadata!.weight, m.metadata!.fairness_key === "zero" ? 0 : 1);
  }
});

scenario(
  "FA-06 a new key is served within the next 2 deliveries despite a large backlog",
  async () => {
    const { client } = await sharedBroker();
    const q = await newQueue(client, KEY_WEIGHT_FROM_HEADERS);
    await enqueueKey(client, q, "A", 2000, undefined, 64);
    const c = client.consume(q, 1);
    let last: Message | null = null;
    for (let i = 0; i < 10; i++) {
      if (last) await client.ack(q, last.id);
      last = await c.expectNext(PROMPT_MS);
      assert.equal(last.metadata!.fairness_key, "A");
    }
    await client.enqueue(q, { headers: { key: "B" }, payload: "B" });
    await client.ack(q, last!.id);
    const next: string[] = [];
    for (let i = 0; i < 2; i++) {
      const m = await c.expectNext(PROMPT_MS);
      next.push(m.metadata!.fairness_key);
      await client.ack(q, m.id);
    }
    assert.ok(next.includes("B"), `next 2 deliveries after B arrived: ${next.join(", ")}`);
    c.cancel();
    await client.deleteQueue(q);
  },
);

scenario("FA-07 a key activated mid-turn waits at most one turn of each other key", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client, KEY_WEIGHT_FROM_HEADERS);
  await enqueueKey(client, q, "A", 30, 3);
  await enqueueKey(client, q, "B", 30, 2);
  const c = client.consume(q, 1);
  const first = await c.expectNext(PROMPT_MS);
  await client.ack(q, first.id);
  const second = await c.expectNext(PROMPT_MS); // A is mid-turn (2 of 3)
  assert.deepEqual(keys([first, second]), ["A", "A"]);
  await client.enqueue(q, { headers: { key: "C", weight: "1" }, payload: "C" });
  await client.ack(q, second.id);
  const next: string[] = [];
  for (let i = 0; i < 6; i++) {
    const m = await c.expectNext(PROMPT_MS);
    next.push(m.metadata!.fairness_key);
    await client.ack(q, m.id);
  }
  assert.ok(next.includes("C"), `next 6 deliveries after C arrived: ${next.join(", ")}`);
  c.cancel();
});

scenario(
  "FA-08 five keys of weights 1…5 get turns of 1…5 messages in activation order",
  async () => {
    const { client } = await sharedBroker();
    const q = await newQueue(client, KEY_WEIGHT_FROM_HEADERS);
    for (let w = 1; w <= 5; w++) await enqueueKey(client, q, `K${w}`, 20, w);
    const got = keys(await deliveryOrder(client, q, 15));
    const expected = [1, 2, 3, 4, 5].flatMap((w) => Array.from({ length: w }, () => `K${w}`));
    assert.deepEqual(got, expected);
  },
);

scenario("FA-09 GetStats lists only keys with pending messages", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client, KEY_WEIGHT_FROM_HEADERS);
  await client.enqueue(q, { headers: { key: "b" }, payload: "b" });
  const c = client.consume(q, 1);
  await c.expectNext(PROMPT_MS);
  await enqueueKey(client, q, "a", 2, undefined, 1);
  const s = await client.getStats(q);
  assert.equal(s.active_fairness_keys, 1);
  assert.deepEqual(s.per_key_stats.map((k) => [k.key, k.pending_count]), [["a", 2]]);
  c.cancel();
});

scenario("FA-10 two consumers of one key together see the enqueue order", async () => {
  const { client } = await sharedBroker();
  const q = await newQueue(client, KEY_WEIGHT_FROM_HEADERS);
  // Both streams share one connection, so arrival order across them is the broker's send order.
  const c1 = client.consume(q);
  const c2 = client.consume(q);
  await waitConsumers(client, q, 2);
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) {
    ids.push(await client.enqueue(q, { headers: { key: "one" }, payload: `m${i}` }));
  }
  await waitFor(
    () => c1.received.length + c2.received.length,
    (n) => n >= 20,
    PROMPT_MS,
    "20 deliveries",
    10,
  );
  const merged = [
    ...c1.received.map((m, i) => ({ id: m.id, seq: c1.seqs[i] })),
    ...c2.received.map((m, i) => ({ id: m.id, seq: c2.seqs[i] })),
  ].sort((a, b) => a.seq - b.seq).map((x) => x.id);
  assert.deepEqual(merged, ids);
  c1.cancel();
  c2.cancel();
});

scenario(
  "FA-ACCEPTANCE-a a noisy key with 1,000 pending does not delay newly arriving quiet keys",
  async () => {
    const { client } = await sharedBroker();
    const q = await newQueue(client, KEY_WEIGHT_FROM_HEADERS);
    await enqueueKey(client, q, "noisy", 1000, undefined, 64);
    const c = client.consume(q, 1);
    let held = await c.expectNext(PROMPT_MS);
    let delivered = 1;
    const waits: number[] = [];
    for (const at of [20, 60, 100, 150]) {
      while (delivered < at) {
        await client.ack(q, held.id);
        held = await c.expectNext(PROMPT_MS);
        delivered++;
        assert.equal(held.metadata!.fairness_key, "noisy");
      }
      const quiet = `quiet-${at}`;
      await client.enqueue(q, { headers: { key: quiet }, payload: quiet });
      let n = 0;
      do {
        await client.ack(q, held.id);
        held = await c.expectNext(PROMPT_MS);
        delivered++;
        n++;
      } while (held.metadata!.fairness_key !== quiet && n < 50);
      waits.push(n);
    }
    c.cancel();
    await client.deleteQueue(q);
    // Bound of semantics.md §4.3: at most Σ other weights (1) deliveries before the new key.
    assert.ok(
      waits.every((n) => n <= 2),
      `quiet key delivered as delivery #${waits.join(", #")} after its arrival`,
    );
  },
);

scenario(
  "FA-ACCEPTANCE-b weights 1:2:3:4:5 give shares within 1 point of weight/15 over 5,000 deliveries",
  async () => {
    const { client } = await sharedBroker();
    const q = await newQueue(client, KEY_WEIGHT_FROM_HEADERS);
    const WINDOW = 5000;
    for (let w = 1; w <= 5; w++) {
      // Enough that no key runs dry inside the window if the shares are right.
      await enqueueKey(client, q, `w${w}`, Math.ceil(WINDOW * w / 15) + 60, w, 64);
    }
    const c = client.consume(q, WINDOW);
    await c.waitCount(WINDOW, 60_000);
    const counts = new Map<string, number>();
    for (const m of c.received.slice(0, WINDOW)) {
      const k = m.metadata!.fairness_key;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    c.cancel();
    await client.deleteQueue(q);
    const report: string[] = [];
    let ok = true;
    for (let w = 1; w <= 5; w++) {
      const share = (counts.get(`w${w}`) ?? 0) / WINDOW * 100;
      const want = w / 15 * 100;
      report.push(`w${w}: ${share.toFixed(2)}% (want ${want.toFixed(2)}%)`);
      if (Math.abs(share - want) > 1) ok = false;
    }
    assert.ok(ok, `shares off by more than 1 point: ${report.join("; ")}`);
  },
  { timeoutMs: 180_000 },
);
