import assert from "node:assert/strict";
import { InvalidArgumentError } from "../core/errors.ts";
import {
  parseThrottleValue,
  ThrottleRegistry,
  type ThrottleSetting,
  TokenBucket,
} from "./throttle.ts";

const T0 = 1_700_000_000_000;

function setting(ratePerSecond: number, burst: number): ThrottleSetting {
  return { ratePerSecond, burst };
}

/**
 * Drives a bucket like the scheduler would: deliver whenever a token is there, otherwise sleep
 * exactly msUntilToken. Returns the delivery times relative to T0.
 */
function deliveryTimes(bucket: TokenBucket, count: number, start = T0, horizon = 60_000): number[] {
  const times: number[] = [];
  let now = start;
  while (times.length < count && now - start <= horizon) {
    if (bucket.hasToken(now)) {
      bucket.take(now);
      times.push(now - start);
      continue;
    }
    const wait = bucket.msUntilToken(now);
    if (wait === Infinity) break;
    assert.ok(wait >= 1, `msUntilToken returned ${wait} although no token is available`);
    now += wait;
    assert.ok(bucket.hasToken(now), `no token at the time msUntilToken promised (${now - start})`);
  }
  return times;
}

Deno.test("parseThrottleValue accepts the decimal grammar (TH-13)", () => {
  const cases: [value: string, rate: number, burst: number][] = [
    [" 10 , 20 ", 10, 20],
    ["1e3,5", 1000, 5],
    ["+5,.5", 5, 0.5],
    ["5.,1", 5, 1],
    ["10.5,2E-1", 10.5, 0.2],
    ["0,0", 0, 0],
    ["-0,1", 0, 1],
    ["\t100\n,\t100 ", 100, 100],
    ["007,1e+2", 7, 100],
    ["1.5e-3,3", 0.0015, 3],
  ];
  for (const [value, rate, burst] of cases) {
    assert.deepEqual(parseThrottleValue(value), setting(rate, burst), JSON.stringify(value));
  }
  assert.ok(Object.is(parseThrottleValue("-0,-0").ratePerSecond, 0));
});

Deno.test("parseThrottleValue rejects with the exact messages (TH-12)", () => {
  const cases: [value: string, message: string][] = [
    ["10", "throttle value must be 'rate_per_second,burst', got: 10"],
    ["", "throttle value must be 'rate_per_second,burst', got: "],
    ["1,2,3", "throttle value must be 'rate_per_second,burst', got: 1,2,3"],
    [" 1 ; 2 ", "throttle value must be 'rate_per_second,burst', got:  1 ; 2 "],
    ["abc,5", "invalid rate_per_second: abc"],
    [",5", "invalid rate_per_second: "],
    ["  ,5", "invalid rate_per_second: "],
    ["0x10,5", "invalid rate_per_second: 0x10"],
    ["1_000,5", "invalid rate_per_second: 1_000"],
    ["1 0,5", "invalid rate_per_second: 1 0"],
    [".,5", "invalid rate_per_second: ."],
    ["1e,5", "invalid rate_per_second: 1e"],
    ["e5,5", "invalid rate_per_second: e5"],
    ["++1,5", "invalid rate_per_second: ++1"],
    ["infin,5", "invalid rate_per_second: infin"],
    ["abc,xyz", "invalid rate_per_second: abc"],
    ["-1,5", "rate_per_second must be a finite non-negative number, got: -1"],
    ["-1,xyz", "rate_per_second must be a finite non-negative number, got: -1"],
    ["NaN,1", "rate_per_second must be a finite non-negative number, got: NaN"],
    ["-nan,1", "rate_per_second must be a finite non-negative number, got: -nan"],
    ["inf,1", "rate_per_second must be a finite non-negative number, got: inf"],
    ["+Infinity,1", "rate_per_second must be a finite non-negative number, got: +Infinity"],
    ["-INF,1", "rate_per_second must be a finite non-negative number, got: -INF"],
    ["1e400,1", "rate_per_second must be a finite non-negative number, got: 1e400"],
    ["1,xyz", "invalid burst: xyz"],
    ["1,", "invalid burst: "],
    ["1,0x1", "invalid burst: 0x1"],
    ["1,inf", "burst must be a finite non-negative number, got: inf"],
    ["1, -0.5 ", "burst must be a finite non-negative number, got: -0.5"],
    ["1,nAn", "burst must be a finite non-negative number, got: nAn"],
  ];
  for (const [value, message] of cases) {
    assert.throws(
      () => parseThrottleValue(value),
      (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError, `${value}: ${err}`);
        assert.equal(err.code, "INVALID_ARGUMENT");
        assert.equal(err.message, message);
        return true;
      },
      JSON.stringify(value),
    );
  }
});

Deno.test("a new bucket starts full; rate 0 admits floor(burst) (TH-06)", () => {
  const cases: [rate: number, burst: number, admitted: number][] = [
    [0, 5, 5],
    [0, 1, 1],
    [0, 2.5, 2],
    [0, 0, 0],
    [0, 0.999, 0],
    [1000, 0.5, 0],
    [1e9, 0.9999999999, 0],
  ];
  for (const [rate, burst, admitted] of cases) {
    const bucket = new TokenBucket(setting(rate, burst), T0, 0);
    assert.equal(bucket.tokensAt(T0), burst);
    const times = deliveryTimes(bucket, 10);
    assert.equal(times.length, admitted, `${rate},${burst}`);
    assert.ok(times.every((t) => t === 0));
    assert.equal(bucket.msUntilToken(T0 + 3_600_000), Infinity, `${rate},${burst}`);
    assert.equal(bucket.hasToken(T0 + 3_600_000), false);
  }
});

Deno.test("refill schedules are exact and free of drift (TH-08, TH-14)", () => {
  const cases: [rate: number, burst: number, count: number, expected: (i: number) => number][] = [
    // TH-14: 2,1 → second after 0.5 s, third after 1.0 s.
    [2, 1, 3, (i) => i * 500],
    // TH-08: 10,1 → exactly every 100 ms; the 20th at 1.9 s.
    [10, 1, 20, (i) => i * 100],
    [0.1, 1, 4, (i) => i * 10_000],
    [1000, 1, 50, (i) => i],
    // Burst first, then the rate.
    [10, 5, 8, (i) => (i < 5 ? 0 : (i - 4) * 100)],
  ];
  for (const [rate, burst, count, expected] of cases) {
    const times = deliveryTimes(new TokenBucket(setting(rate, burst), T0, 0), count);
    assert.deepEqual(
      times,
      Array.from({ length: count }, (_, i) => expected(i)),
      `${rate},${burst}`,
    );
  }
});

Deno.test("non-integral intervals: burst 1 caps each wait, a deeper bucket keeps the surplus", () => {
  for (const rate of [3, 7, 0.3, 33.3, 1 / 3, 999]) {
    const count = 200;
    // With burst 1 the refill is capped at 1 on each (whole-millisecond) wake-up, so the
    // fraction of a token earned in the rounding is lost: every interval is the rounded-up one.
    const interval = Math.ceil(1000 / rate - 1e-7);
    const capped = deliveryTimes(new TokenBucket(setting(rate, 1), T0, 0), count, T0, 1e9);
    assert.deepEqual(capped, Array.from({ length: count }, (_, i) => i * interval), `rate ${rate}`);

    // With room above one token the surplus carries over, so lateness never adds up.
    const deep = new TokenBucket(setting(rate, 2), T0, 0);
    deep.take(T0);
    deep.take(T0);
    const times = deliveryTimes(deep, count, T0, 1e9);
    assert.equal(times.length, count);
    for (let i = 0; i < count; i++) {
      const ideal = ((i + 1) * 1000) / rate;
      assert.ok(
        times[i] >= ideal - 1e-6 && times[i] < ideal + 1,
        `rate ${rate}: #${i} at ${times[i]}, ideal ${ideal}`,
      );
    }
  }
});

Deno.test("msUntilToken is never early and at most 1 ms late", () => {
  const rates = [0.001, 0.3, 1, 2, 3, 7, 10, 33.3, 100, 333, 1000, 12345.678, 1e9];
  const offsets = [0, 1, 17, 99, 100, 101, 333, 999, 1234.5];
  for (const rate of rates) {
    for (const offset of offsets) {
      const bucket = new TokenBucket(setting(rate, 1), T0, 0);
      bucket.take(T0);
      const now = T0 + offset;
      const ms = bucket.msUntilToken(now);
      const exact = Math.max(0, (1000 / rate) - offset);
      // Early by no more than the billionth of a token the bucket tolerates.
      const tolerance = (1e-9 * 1000) / rate + 1e-9;
      const latest = exact === 0 ? 0 : Math.max(1, Math.ceil(exact - 1e-6));
      assert.ok(bucket.hasToken(now + ms), `rate ${rate} offset ${offset}: ${ms}`);
      assert.ok(
        ms >= exact - tolerance && ms <= latest,
        `rate ${rate} offset ${offset}: ${ms} vs ${exact}`,
      );
      assert.equal(ms === 0, bucket.hasToken(now));
    }
  }
});

Deno.test("tokens refill continuously and cap at burst", () => {
  const bucket = new TokenBucket(setting(4, 3), T0, 0);
  for (let i = 0; i < 3; i++) bucket.take(T0);
  const cases: [offset: number, tokens: number][] = [
    [0, 0],
    [125, 0.5],
    [250, 1],
    [500, 2],
    [750, 3],
    [10_000, 3],
  ];
  for (const [offset, tokens] of cases) {
    assert.equal(bucket.tokensAt(T0 + offset), tokens, `+${offset}`);
  }
});

Deno.test("taking from an empty bucket leaves it at 0; a clock stepping back changes nothing", () => {
  const bucket = new TokenBucket(setting(10, 1), T0, 0);
  bucket.take(T0);
  bucket.take(T0);
  assert.equal(bucket.tokensAt(T0), 0);
  assert.equal(bucket.tokensAt(T0 - 5_000), 0);
  bucket.take(T0 - 5_000);
  assert.equal(bucket.tokensAt(T0), 0);
  assert.equal(bucket.tokensAt(T0 + 100), 1);
});

Deno.test("update keeps accrued tokens capped at the new burst (TH-11)", () => {
  const cases: [
    from: ThrottleSetting,
    taken: number,
    elapsed: number,
    to: ThrottleSetting,
    tokensAfter: number,
    admittedAfter: number,
  ][] = [
    // TH-11: 0,5 with 3 delivered → 0,10 lets exactly 2 more through.
    [setting(0, 5), 3, 0, setting(0, 10), 2, 2],
    [setting(0, 10), 0, 0, setting(0, 3), 3, 3],
    [setting(0, 5), 5, 0, setting(0, 0), 0, 0],
    // Refill earned under the old rate is kept; the new rate applies from the update on.
    [setting(10, 10), 10, 500, setting(0, 10), 5, 5],
    [setting(0, 1), 1, 1_000, setting(1000, 1), 0, 1],
  ];
  for (const [from, taken, elapsed, to, tokensAfter, admittedAfter] of cases) {
    const bucket = new TokenBucket(from, T0, 0);
    for (let i = 0; i < taken; i++) bucket.take(T0);
    bucket.update(to, T0 + elapsed);
    assert.deepEqual(bucket.setting, to);
    assert.equal(bucket.tokensAt(T0 + elapsed), tokensAfter);
    let admitted = 0;
    const now = T0 + elapsed + (to.ratePerSecond > 0 ? 1 : 0);
    while (admitted < 100 && bucket.hasToken(now)) {
      bucket.take(now);
      admitted++;
    }
    assert.equal(admitted, admittedAfter, `${JSON.stringify(from)} → ${JSON.stringify(to)}`);
  }
});

Deno.test("registry: keys without buckets are ignored; empty key lists pass", () => {
  const registry = new ThrottleRegistry({ timerSlackMs: 0 });
  assert.equal(registry.passes([], T0), true);
  assert.equal(registry.passes(["x"], T0), true);
  registry.consume(["x"], T0);
  assert.equal(registry.msUntilPass(["x"], T0), 0);
  assert.equal(registry.size, 0);
  assert.equal(registry.decisions.size, 0);

  registry.set("x", setting(0, 0), T0);
  assert.equal(registry.passes([], T0), true);
  assert.equal(registry.passes(["other"], T0), true);
  assert.equal(registry.passes(["other", "x"], T0), false);
});

Deno.test("registry: a key listed twice is charged once (TH-05)", () => {
  const registry = new ThrottleRegistry({ timerSlackMs: 0 });
  registry.set("x", setting(0, 2), T0);
  let delivered = 0;
  for (let i = 0; i < 3; i++) {
    if (!registry.passes(["x", "x"], T0)) break;
    registry.consume(["x", "x"], T0);
    delivered++;
  }
  assert.equal(delivered, 2);
  assert.equal(registry.get("x")?.tokensAt(T0), 0);
});

Deno.test("registry: deduplication also holds for long key lists", () => {
  const registry = new ThrottleRegistry({ timerSlackMs: 0 });
  registry.set("a", setting(0, 100), T0);
  registry.set("b", setting(0, 100), T0);
  const keys = ["a", "u1", "b", "u2", "a", "u3", "b", "u4", "a", "u5", "b", "u6", "a"];
  assert.equal(registry.passes(keys, T0), true);
  registry.consume(keys, T0);
  assert.equal(registry.get("a")?.tokensAt(T0), 99);
  assert.equal(registry.get("b")?.tokensAt(T0), 99);
  assert.deepEqual(registry.decisions.get("a"), { pass: 1, hit: 0 });
  assert.equal(registry.decisions.has("u1"), false);
});

Deno.test("registry: every configured key must hold a token (TH-03)", () => {
  const registry = new ThrottleRegistry({ timerSlackMs: 0 });
  registry.set("a", setting(0, 0), T0);
  registry.set("b", setting(100, 100), T0);
  const cases: [keys: string[], passes: boolean, wait: number][] = [
    [["a", "b"], false, Infinity],
    [["b", "a"], false, Infinity],
    [["b"], true, 0],
    [["b", "free"], true, 0],
    [["a"], false, Infinity],
  ];
  for (const [keys, passes, wait] of cases) {
    assert.equal(registry.check(keys, T0), passes, keys.join());
    assert.equal(registry.msUntilPass(keys, T0), wait, keys.join());
  }
});

Deno.test("registry: msUntilPass is the latest of the blocking buckets", () => {
  const registry = new ThrottleRegistry({ timerSlackMs: 0 });
  registry.set("slow", setting(1, 1), T0);
  registry.set("fast", setting(4, 1), T0);
  registry.set("open", setting(0, 10), T0);
  registry.consume(["slow", "fast", "open"], T0);
  const cases: [keys: string[], offset: number, wait: number][] = [
    [["fast"], 0, 250],
    [["slow"], 0, 1000],
    [["fast", "slow"], 0, 1000],
    [["slow", "fast", "open"], 0, 1000],
    [["open"], 0, 0],
    [["fast", "slow"], 300, 700],
    [["fast", "slow"], 1000, 0],
  ];
  for (const [keys, offset, wait] of cases) {
    assert.equal(registry.msUntilPass(keys, T0 + offset), wait, `${keys} +${offset}`);
  }
});

Deno.test("registry: buckets are global, set/delete follow the config entry (TH-07, TH-10)", () => {
  const registry = new ThrottleRegistry({ timerSlackMs: 0 });
  registry.set("g", setting(0, 3), T0);
  let delivered = 0;
  // Two queues sharing the registry, three messages each.
  for (let i = 0; i < 6; i++) {
    if (registry.passes(["g"], T0)) {
      registry.consume(["g"], T0);
      delivered++;
    }
  }
  assert.equal(delivered, 3);

  assert.equal(registry.delete("g"), true);
  assert.equal(registry.delete("g"), false);
  assert.equal(registry.has("g"), false);
  assert.equal(registry.passes(["g"], T0), true);

  // Re-created (as on restart) it starts full again.
  registry.set("g", setting(0, 3), T0 + 1);
  assert.equal(registry.get("g")?.tokensAt(T0 + 1), 3);

  // Setting an existing key updates the bucket in place.
  registry.consume(["g"], T0 + 1);
  registry.set("g", setting(5, 10), T0 + 1);
  assert.equal(registry.get("g")?.tokensAt(T0 + 1), 2);
  assert.equal(registry.size, 1);
});

Deno.test("registry: pass and hit decisions per configured key", () => {
  const registry = new ThrottleRegistry({ timerSlackMs: 0 });
  registry.set("x", setting(0, 1), T0);
  registry.set("y", setting(0, 0), T0);
  registry.set("z", setting(0, 5), T0);

  assert.equal(registry.passes(["x", "z", "unconfigured"], T0), true);
  registry.consume(["x", "z", "unconfigured", "x"], T0);
  // x is now empty, y always was, z has tokens: a blocked check counts x and y once each.
  assert.equal(registry.passes(["x", "y", "z", "x", "y"], T0), false);
  assert.equal(registry.check(["x", "y"], T0), false);
  assert.equal(registry.passes(["y"], T0), false);

  assert.deepEqual(registry.decisions.get("x"), { pass: 1, hit: 1 });
  assert.deepEqual(registry.decisions.get("y"), { pass: 0, hit: 2 });
  assert.deepEqual(registry.decisions.get("z"), { pass: 1, hit: 0 });
  assert.equal(registry.decisions.has("unconfigured"), false);

  // Counters are monotonic: they survive the bucket being deleted and re-created.
  registry.delete("x");
  assert.deepEqual(registry.decisions.get("x"), { pass: 1, hit: 1 });
  registry.set("x", setting(0, 1), T0);
  registry.consume(["x"], T0);
  assert.deepEqual(registry.decisions.get("x"), { pass: 2, hit: 1 });
});

Deno.test("registry: stats in ascending byte order of key (TH-15)", () => {
  const registry = new ThrottleRegistry({ timerSlackMs: 0 });
  const keys = ["b", "\u{1F600}", "a", "\uE000", "B", "ab", "é"];
  for (const key of keys) registry.set(key, setting(2, 4), T0);
  registry.consume(["a", "a"], T0);
  const stats = registry.stats(T0 + 250);
  assert.deepEqual(stats.map((s) => s.key), ["B", "a", "ab", "b", "é", "\uE000", "\u{1F600}"]);
  const encoder = new TextEncoder();
  const bytes = stats.map((s) => encoder.encode(s.key));
  for (let i = 1; i < bytes.length; i++) {
    assert.ok(compareBytes(bytes[i - 1], bytes[i]) < 0);
  }
  assert.deepEqual(stats.find((s) => s.key === "a"), {
    key: "a",
    tokens: 3.5,
    ratePerSecond: 2,
    burst: 4,
  });
  for (const s of stats) assert.ok(s.tokens >= 0 && s.tokens <= s.burst);
});

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

Deno.test("timer slack: a bucket admits up to slackMs early and repays the debt", () => {
  const b = new TokenBucket({ ratePerSecond: 100, burst: 1 }, 0, 2);
  assert.ok(b.hasToken(0));
  b.take(0);
  // Exact arithmetic says the next token is due at 10 ms; 2 ms of slack admits from 8 ms.
  assert.equal(b.msUntilToken(0), 8);
  assert.ok(!b.hasToken(7));
  assert.ok(b.hasToken(8));
  b.take(8); // 0.8 - 1 = -0.2 tokens: the debt
  assert.ok(Math.abs(b.tokensAt(8) + 0.2) < 1e-9);
  // The long-run rate stays exact: the next admission is 10 ms after the previous due time.
  assert.equal(b.msUntilToken(8), 10);
});

Deno.test("timer slack: rate 0 gets none and stats never show a debt", () => {
  const b = new TokenBucket({ ratePerSecond: 0, burst: 1 }, 0, 2);
  b.take(0);
  assert.ok(!b.hasToken(1_000_000));
  const r = new ThrottleRegistry({ timerSlackMs: 2 });
  r.set("k", { ratePerSecond: 100, burst: 1 }, 0);
  r.consume(["k"], 0);
  r.consume(["k"], 8);
  assert.equal(r.stats(8)[0].tokens, 0);
});
