import assert from "node:assert/strict";
import { DeliveryWindow } from "./share_window.ts";

Deno.test("DeliveryWindow counts what falls inside the window and forgets the rest", () => {
  const w = new DeliveryWindow(1000, 10);
  w.record(0);
  w.record(500, 2);
  w.record(3_000);
  assert.equal(w.count(3_000), 4);
  assert.equal(w.count(9_999), 4);
  assert.equal(w.count(10_000), 1); // the first second left the window
  w.record(13_500); // reuses the slot of second 3
  assert.equal(w.count(13_500), 1);
  assert.equal(w.count(30_000), 0);
});
