import assert from "node:assert/strict";
import { Deque } from "./deque.ts";

Deno.test("Deque keeps FIFO order across growth and head inserts", () => {
  const d = new Deque<number>(2);
  for (let i = 0; i < 10; i++) d.pushBack(i);
  d.pushFront(-1);
  d.pushFront(-2);
  assert.equal(d.length, 12);
  assert.equal(d.peekFront(), -2);
  assert.equal(d.peekBack(), 9);
  const out: number[] = [];
  while (d.length) out.push(d.popFront()!);
  assert.deepEqual(out, [-2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(d.popFront(), undefined);
});

Deno.test("Deque.removeWhere() keeps the order of the rest", () => {
  const d = new Deque<number>();
  for (let i = 0; i < 9; i++) d.pushBack(i);
  d.popFront();
  assert.equal(d.removeWhere((v) => v % 2 === 0), 4);
  assert.deepEqual([...d], [1, 3, 5, 7]);
  d.pushFront(0);
  assert.deepEqual([...d], [0, 1, 3, 5, 7]);
});
