import assert from "node:assert/strict";
import { type FairnessQueueView, FairnessTracker } from "./fairness.ts";

function view(
  queue: string,
  leased: number,
  keys: Array<[key: string, weight: number, delivered: number]>,
): FairnessQueueView {
  return {
    queue,
    counters: { leased },
    keys: keys.map(([key, weight, delivered]) => ({ key, weight, delivered })),
  };
}

function ratios(t: FairnessTracker): Record<string, number> {
  return Object.fromEntries(t.ratios().map((r) => [`${r.queue}/${r.key}`, r.value]));
}

function throughput(t: FairnessTracker): Record<string, number> {
  return Object.fromEntries([...t.throughput()].map((r) => [`${r.queue}/${r.key}`, r.value]));
}

Deno.test("fair share ratio is 1 for every key when deliveries follow the weights", () => {
  const t = new FairnessTracker();
  t.closeWindow([view("q", 0, [["a", 2, 0], ["b", 1, 0]])], 0);
  t.closeWindow([view("q", 30, [["a", 2, 20], ["b", 1, 10]])], 1000);
  assert.deepEqual(ratios(t), { "q/a": 1, "q/b": 1 });
});

Deno.test("fair share ratio shows a starved key below 1 and a greedy one above", () => {
  const t = new FairnessTracker();
  t.closeWindow([view("q", 0, [["a", 1, 0], ["b", 1, 0]])], 0);
  t.closeWindow([view("q", 10, [["a", 1, 9], ["b", 1, 1]])], 1000);
  const r = ratios(t);
  assert.ok(Math.abs(r["q/a"] - 1.8) < 1e-9);
  assert.ok(Math.abs(r["q/b"] - 0.2) < 1e-9);
});

Deno.test("fair share ratio covers only the last window", () => {
  const t = new FairnessTracker();
  t.closeWindow([view("q", 10, [["a", 1, 10], ["b", 1, 0]])], 0);
  // Next window: 10 more deliveries, 5 each.
  t.closeWindow([view("q", 20, [["a", 1, 15], ["b", 1, 5]])], 1000);
  assert.deepEqual(ratios(t), { "q/a": 1, "q/b": 1 });
});

Deno.test("no ratio for a queue without deliveries in the window", () => {
  const t = new FairnessTracker();
  t.closeWindow([view("q", 5, [["a", 1, 5]])], 0);
  t.closeWindow([view("q", 5, [["a", 1, 5]])], 1000);
  assert.deepEqual(ratios(t), {});
});

Deno.test("deliveries to keys that drained still count for the queue", () => {
  const t = new FairnessTracker();
  t.closeWindow([view("q", 0, [["a", 1, 0]])], 0);
  // 10 deliveries: 4 to a (still active), 6 to keys that are gone by the close.
  t.closeWindow([view("q", 10, [["a", 1, 4]])], 1000);
  assert.ok(Math.abs(ratios(t)["q/a"] - 0.4) < 1e-9);
});

Deno.test("throughput accumulates across re-created keys and observations", () => {
  const t = new FairnessTracker();
  t.observe([view("q", 3, [["a", 1, 3]])], 0);
  t.observe([view("q", 5, [["a", 1, 5]])], 10);
  t.observe([view("q", 5, [["a", 1, 5]])], 20); // repeated collection: no double count
  assert.deepEqual(throughput(t), { "q/a": 5 });
  // Key left the ring, then came back as a new key whose count restarted.
  t.observe([view("q", 5, [])], 30);
  t.observe([view("q", 7, [["a", 1, 2]])], 40);
  assert.deepEqual(throughput(t), { "q/a": 7 });
});

Deno.test("idle keys and deleted queues are forgotten", () => {
  const t = new FairnessTracker(100);
  t.observe([view("q", 1, [["a", 1, 1]]), view("r", 1, [["b", 1, 1]])], 0);
  t.observe([view("q", 1, [])], 50);
  assert.deepEqual(throughput(t), { "q/a": 1 });
  t.observe([view("q", 1, [])], 200);
  assert.deepEqual(throughput(t), {});
});
