import assert from "node:assert/strict";
import { Backoff } from "./backoff.ts";

Deno.test("back-off doubles up to the cap and starts over after reset", () => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0 });
  assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()], [
    100,
    200,
    400,
    800,
    1000,
    1000,
  ]);
  assert.equal(b.attempt, 6);
  b.reset();
  assert.equal(b.attempt, 0);
  assert.equal(b.next(), 100);
});

Deno.test("jitter draws each delay from [base × (1 − jitter), base]", () => {
  const low = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.5 }, () => 0.999999);
  const high = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.5 }, () => 0);
  assert.deepEqual([low.next(), low.next()], [50, 100]);
  assert.deepEqual([high.next(), high.next()], [100, 200]);
  const real = new Backoff({ initialMs: 1000, maxMs: 1000, jitter: 0.3 });
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const d = real.next();
    assert.ok(d >= 700 && d <= 1000, `delay ${d}`);
    seen.add(d);
  }
  assert.ok(seen.size > 10, "delays are spread");
});

Deno.test("maxAttempts bounds the attempts and options are clamped", () => {
  const b = new Backoff({ maxAttempts: 2, initialMs: 10, jitter: 0 });
  assert.ok(!b.exhausted);
  b.next();
  b.next();
  assert.ok(b.exhausted);
  const odd = new Backoff({ initialMs: 500, maxMs: 100, multiplier: 0.5, jitter: 7 });
  assert.equal(odd.maxMs, 500);
  assert.equal(odd.multiplier, 1);
  assert.equal(odd.jitter, 1);
});
