import assert from "node:assert/strict";
import { DrrNode, DrrRing } from "./drr.ts";

class Key extends DrrNode {
  constructor(readonly name: string, public pending: number, public w = 1) {
    super();
  }
}

/** Drives the ring like the scheduler does: activate keys, then deliver `n` messages. */
function simulate(
  ring: DrrRing<Key>,
  n: number,
  blocked: (k: Key) => boolean = () => false,
): string[] {
  const order: string[] = [];
  for (let i = 0; i < n; i++) {
    const k = ring.select(blocked);
    if (!k) break;
    k.pending--;
    ring.delivered(k, k.pending === 0);
    order.push(k.name);
  }
  return order;
}

function ringWith(quantum: number, keys: Key[]): DrrRing<Key> {
  const ring = new DrrRing<Key>(quantum);
  for (const k of keys) ring.activate(k, k.w);
  return ring;
}

Deno.test("DrrRing serves weight-long turns: quantum 1, high(3) low(1)", () => {
  const keys = [new Key("high", 100, 3), new Key("low", 100, 1)];
  const order = simulate(ringWith(1, keys), 8);
  assert.deepEqual(order, ["high", "high", "high", "low", "high", "high", "high", "low"]);
});

Deno.test("DrrRing alternates equal weights whatever the quantum", () => {
  for (const quantum of [1, 2, 1000]) {
    const keys = [new Key("A", 10), new Key("B", 10)];
    assert.deepEqual(
      simulate(ringWith(quantum, keys), 6),
      ["A", "B", "A", "B", "A", "B"],
      `quantum ${quantum}`,
    );
  }
});

Deno.test("DrrRing quantum 2, A(2) B(1) gives A A B A A B", () => {
  const keys = [new Key("A", 100, 2), new Key("B", 100, 1)];
  assert.deepEqual(simulate(ringWith(2, keys), 9), [
    "A",
    "A",
    "B",
    "A",
    "A",
    "B",
    "A",
    "A",
    "B",
  ]);
});

Deno.test("DrrRing K1..K5 with weights 1..5 serve turns of 1..5 messages", () => {
  const keys = [1, 2, 3, 4, 5].map((w) => new Key(`K${w}`, 1000, w));
  const order = simulate(ringWith(1000, keys), 15);
  assert.deepEqual(order, keys.flatMap((k) => Array(k.w).fill(k.name)));
});

Deno.test("DrrRing shares follow weights within 1 point over 5000 deliveries", () => {
  const keys = [1, 2, 3, 4, 5].map((w) => new Key(`K${w}`, 100_000, w));
  const order = simulate(ringWith(1000, keys), 5000);
  for (const k of keys) {
    const share = order.filter((n) => n === k.name).length / order.length;
    assert.ok(Math.abs(share - k.w / 15) < 0.01, `${k.name} share ${share}`);
  }
});

Deno.test("DrrRing serves a late key within one turn of each other key", () => {
  const a = new Key("A", 2000);
  const ring = ringWith(1000, [a]);
  assert.deepEqual(simulate(ring, 10), Array(10).fill("A"));
  const b = new Key("B", 1);
  ring.activate(b, 1);
  const next = simulate(ring, 2);
  assert.ok(next.includes("B"), `next two: ${next}`);
});

Deno.test("DrrRing bounds a mid-turn joiner by the other keys' weights (FA-07)", () => {
  const a = new Key("A", 100, 3);
  const b = new Key("B", 100, 2);
  const ring = ringWith(1000, [a, b]);
  simulate(ring, 1); // mid-turn of A
  const c = new Key("C", 1, 1);
  ring.activate(c, 1);
  const next = simulate(ring, 6);
  assert.ok(next.includes("C"), `next six: ${next}`);
});

Deno.test("DrrRing drains unequal keys round robin (FA-04)", () => {
  const keys = [new Key("k1", 10), new Key("k2", 2), new Key("k3", 10)];
  const order = simulate(ringWith(1000, keys), 100);
  assert.deepEqual(order.slice(0, 6), ["k1", "k2", "k3", "k1", "k2", "k3"]);
  assert.deepEqual(
    order.slice(6),
    Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? "k1" : "k3")),
  );
});

Deno.test("DrrRing skips a blocked key without touching its deficit", () => {
  const a = new Key("A", 10);
  const b = new Key("B", 10);
  const ring = ringWith(1000, [a, b]);
  const order = simulate(ring, 5, (k) => k === a);
  assert.deepEqual(order, ["B", "B", "B", "B", "B"]);
  assert.equal(ring.deficitOf(a), 1000);
  assert.equal(ring.select((k) => k === a || k === b), undefined);
});

Deno.test("DrrRing starts a new round only when deliverable keys are spent", () => {
  const a = new Key("A", 10);
  const b = new Key("B", 10);
  const ring = ringWith(1, [a, b]);
  assert.deepEqual(simulate(ring, 4), ["A", "B", "A", "B"]);
  assert.equal(ring.rounds, 1);
  // With B blocked, A's spent deficit is refilled since A is deliverable.
  assert.deepEqual(simulate(ring, 2, (k) => k === b), ["A", "A"]);
});

Deno.test("DrrRing removes emptied keys at once and re-adds them at the end", () => {
  const a = new Key("A", 1);
  const b = new Key("B", 5);
  const c = new Key("C", 5);
  const ring = ringWith(1000, [a, b, c]);
  assert.deepEqual(simulate(ring, 3), ["A", "B", "C"]);
  assert.deepEqual([...ring].map((k) => k.name), ["B", "C"]);
  a.pending = 1;
  ring.activate(a, 1);
  assert.deepEqual([...ring].map((k) => k.name), ["B", "C", "A"]);
  assert.deepEqual(simulate(ring, 3), ["B", "C", "A"]);
});

Deno.test("DrrRing weight update applies to the current turn", () => {
  const a = new Key("A", 10, 1);
  const b = new Key("B", 10, 1);
  const ring = ringWith(1000, [a, b]);
  ring.updateWeight(a, 3);
  assert.deepEqual(simulate(ring, 4), ["A", "A", "A", "B"]);
  assert.equal(ring.deficitOf(a), 997);
});

Deno.test("DrrRing rejects a non-positive quantum", () => {
  assert.throws(() => new DrrRing(0), RangeError);
});
