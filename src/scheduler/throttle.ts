/**
 * Token buckets for throttle keys (semantics.md §4.5). Pure: every method takes `now` in
 * milliseconds so that the scheduler owns the clock and tests need no sleeps.
 */
import { InvalidArgumentError } from "../core/errors.ts";

export interface ThrottleSetting {
  ratePerSecond: number;
  burst: number;
}

export interface ThrottleStat {
  key: string;
  tokens: number;
  ratePerSecond: number;
  burst: number;
}

/** Monotonic counts behind the `fila.throttle.decisions` metric (operations.md §6.2). */
export interface ThrottleDecisions {
  pass: number;
  hit: number;
}

/**
 * Floating-point refill can land a hair below a whole token at the exact moment the arithmetic
 * says it is whole (e.g. 0.1 × 3). A billionth of a token is far below anything observable, and
 * tolerating it keeps admissions on their exact schedule instead of one timer tick late.
 */
const EPSILON = 1e-9;

/** Typical lateness of a wake-up timer (ms); see TokenBucket's slack. */
const TIMER_SLACK_MS = 2;

const DECIMAL = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const SPECIAL = /^[+-]?(?:inf|infinity|nan)$/i;

/** Parses a `throttle.<name>` config value `"<rate_per_second>,<burst>"`. */
export function parseThrottleValue(value: string): ThrottleSetting {
  const parts = value.split(",");
  if (parts.length !== 2) {
    throw new InvalidArgumentError(
      `throttle value must be 'rate_per_second,burst', got: ${value}`,
    );
  }
  return {
    ratePerSecond: parseNonNegative(parts[0].trim(), "rate_per_second"),
    burst: parseNonNegative(parts[1].trim(), "burst"),
  };
}

function parseNonNegative(part: string, name: string): number {
  let n: number;
  if (DECIMAL.test(part)) {
    n = Number(part);
  } else if (SPECIAL.test(part)) {
    const negative = part.startsWith("-");
    n = /nan$/i.test(part) ? NaN : negative ? -Infinity : Infinity;
  } else {
    throw new InvalidArgumentError(`invalid ${name}: ${part}`);
  }
  if (!Number.isFinite(n) || n < 0) {
    throw new InvalidArgumentError(`${name} must be a finite non-negative number, got: ${part}`);
  }
  // `-0` is accepted as zero; normalise so stats never show a negative zero.
  return n === 0 ? 0 : n;
}

export class TokenBucket {
  #setting: ThrottleSetting;
  readonly #slackMs: number;
  /** Tokens as of `#at`; refill since then is computed, never accumulated step by step. */
  #tokens: number;
  #at: number;

  /** A new bucket starts full. `slackMs`: see `#slack` (0 = exact arithmetic). */
  constructor(setting: ThrottleSetting, now: number, slackMs = TIMER_SLACK_MS) {
    this.#slackMs = slackMs;
    this.#setting = { ratePerSecond: setting.ratePerSecond, burst: setting.burst };
    this.#tokens = setting.burst;
    this.#at = now;
  }

  get setting(): Readonly<ThrottleSetting> {
    return this.#setting;
  }

  tokensAt(now: number): number {
    const { ratePerSecond, burst } = this.#setting;
    // A wall clock stepping backwards must neither refill nor drain the bucket.
    const elapsed = now > this.#at ? now - this.#at : 0;
    if (elapsed === 0 || ratePerSecond === 0) return this.#tokens;
    const tokens = this.#tokens + (elapsed * ratePerSecond) / 1000;
    return tokens < burst ? tokens : burst;
  }

  /**
   * How far below one token a bucket may admit, as a debt repaid by the refill. Wake-up timers
   * fire a millisecond or two late and refill above the burst is lost, so without this a bucket
   * with a small burst would run measurably slower than its rate (about 12 % at 100/s with
   * burst 1). The debt is at most `slackMs` of refill (and half a token), so deliveries
   * are never more than that early and the long-run rate is exact; rate 0 gets none.
   */
  #slack(): number {
    const slack = (this.#setting.ratePerSecond * this.#slackMs) / 1000;
    return slack < 0.5 ? slack : 0.5;
  }

  hasToken(now: number): boolean {
    return this.#setting.burst >= 1 && this.tokensAt(now) >= 1 - this.#slack() - EPSILON;
  }

  /** Takes one token, possibly into the bounded debt that `hasToken` allows. */
  take(now: number): void {
    const tokens = this.tokensAt(now) - 1;
    const slack = this.#slack();
    const floor = slack > 0 ? -slack : 0;
    this.#tokens = tokens > floor ? tokens : floor;
    if (now > this.#at) this.#at = now;
  }

  /** Applies a new setting, keeping the tokens accrued so far capped at the new burst. */
  update(setting: ThrottleSetting, now: number): void {
    const tokens = this.tokensAt(now);
    this.#setting = { ratePerSecond: setting.ratePerSecond, burst: setting.burst };
    this.#tokens = tokens < setting.burst ? tokens : setting.burst;
    if (now > this.#at) this.#at = now;
  }

  /**
   * Milliseconds from `now` until the bucket holds a token (0 if it does now); Infinity if it
   * never will without a new setting. Rounded up so that a wake-up at `now + result` finds it.
   */
  msUntilToken(now: number): number {
    const { ratePerSecond, burst } = this.#setting;
    if (burst < 1) return Infinity;
    const tokens = this.tokensAt(now);
    const need = 1 - this.#slack();
    if (tokens >= need - EPSILON) return 0;
    if (ratePerSecond === 0) return Infinity;
    // `1 - tokens` and the division can overshoot a whole millisecond by one ulp (0.999 tokens
    // at rate 1 gives 1.0000000000000009 ms); shaving a hair before rounding up avoids waking a
    // tick late, and the check below catches any undershoot.
    let ms = Math.ceil(((need - tokens) * 1000) / ratePerSecond - 1e-7);
    if (ms < 1) ms = 1;
    // Bounded because for huge waits `ms + 1 === ms`.
    for (let i = 0; i < 4 && this.tokensAt(now + ms) < need - EPSILON; i++) ms++;
    return ms;
  }
}

interface Entry {
  bucket: TokenBucket;
  decisions: ThrottleDecisions;
}

/**
 * The broker-wide set of buckets, keyed by throttle key name (global across queues). Buckets
 * come and go with `throttle.<name>` config entries; decision counters outlive them because the
 * metric they feed is monotonic.
 */
export class ThrottleRegistry {
  readonly #slackMs: number;

  /** `timerSlackMs`: early admission allowed per bucket (TokenBucket); 0 = exact. */
  constructor(options: { timerSlackMs?: number } = {}) {
    this.#slackMs = options.timerSlackMs ?? TIMER_SLACK_MS;
  }
  readonly #entries = new Map<string, Entry>();
  readonly #decisions = new Map<string, ThrottleDecisions>();

  get size(): number {
    return this.#entries.size;
  }

  /** Per throttle key: `pass` per delivered message, `hit` per blocked head-message check. */
  get decisions(): ReadonlyMap<string, Readonly<ThrottleDecisions>> {
    return this.#decisions;
  }

  /** Creates the bucket full, or updates it keeping its tokens capped at the new burst. */
  set(key: string, setting: ThrottleSetting, now: number): void {
    const entry = this.#entries.get(key);
    if (entry !== undefined) {
      entry.bucket.update(setting, now);
      return;
    }
    let decisions = this.#decisions.get(key);
    if (decisions === undefined) {
      decisions = { pass: 0, hit: 0 };
      this.#decisions.set(key, decisions);
    }
    this.#entries.set(key, {
      bucket: new TokenBucket(setting, now, this.#slackMs),
      decisions,
    });
  }

  delete(key: string): boolean {
    return this.#entries.delete(key);
  }

  get(key: string): TokenBucket | undefined {
    return this.#entries.get(key)?.bucket;
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /**
   * Whether a message with these throttle keys may be delivered now; nothing is consumed. When
   * it may not, counts a `hit` for each distinct configured key lacking a token, so call this
   * once per head-message decision and use `check` for anything else.
   */
  passes(keys: readonly string[], now: number): boolean {
    if (this.check(keys, now)) return true;
    const n = keys.length;
    if (n > SMALL) {
      for (const key of new Set(keys)) this.#countHit(key, now);
    } else {
      for (let i = 0; i < n; i++) if (!isRepeat(keys, i)) this.#countHit(keys[i], now);
    }
    return false;
  }

  #countHit(key: string, now: number): void {
    const entry = this.#entries.get(key);
    if (entry !== undefined && !entry.bucket.hasToken(now)) entry.decisions.hit++;
  }

  /** Like `passes`, without touching the decision counters. */
  check(keys: readonly string[], now: number): boolean {
    const n = keys.length;
    if (n === 0 || this.#entries.size === 0) return true;
    // Repeated keys need no deduplication here: checking a bucket twice gives the same answer.
    for (let i = 0; i < n; i++) {
      const entry = this.#entries.get(keys[i]);
      if (entry !== undefined && !entry.bucket.hasToken(now)) return false;
    }
    return true;
  }

  /** Takes one token from each distinct configured key and counts a `pass` for it. */
  consume(keys: readonly string[], now: number): void {
    const n = keys.length;
    if (n === 0 || this.#entries.size === 0) return;
    if (n > SMALL) {
      for (const key of new Set(keys)) this.#take(key, now);
      return;
    }
    for (let i = 0; i < n; i++) {
      if (!isRepeat(keys, i)) this.#take(keys[i], now);
    }
  }

  #take(key: string, now: number): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    entry.bucket.take(now);
    entry.decisions.pass++;
  }

  /**
   * Milliseconds until every configured key of the message holds a token (0 if it passes now;
   * Infinity if some bucket never refills). Buckets refill independently, so it is the latest
   * of the per-bucket times.
   */
  msUntilPass(keys: readonly string[], now: number): number {
    const n = keys.length;
    if (n === 0 || this.#entries.size === 0) return 0;
    let wait = 0;
    for (let i = 0; i < n; i++) {
      const entry = this.#entries.get(keys[i]);
      if (entry === undefined) continue;
      const ms = entry.bucket.msUntilToken(now);
      if (ms > wait) wait = ms;
    }
    return wait;
  }

  /** Every bucket, ascending byte order of key (UTF-8 byte order = code point order). */
  stats(now: number): ThrottleStat[] {
    const out: ThrottleStat[] = [];
    for (const [key, { bucket }] of this.#entries) {
      const { ratePerSecond, burst } = bucket.setting;
      const tokens = bucket.tokensAt(now);
      out.push({ key, tokens: tokens > 0 ? tokens : 0, ratePerSecond, burst });
    }
    out.sort((a, b) => compareCodePoints(a.key, b.key));
    return out;
  }
}

/**
 * Up to this many keys, duplicates are found by a quadratic scan: messages usually carry one or
 * two keys, and the scan avoids allocating a Set on the delivery path.
 */
const SMALL = 8;

/** Whether keys[i] already occurred earlier. */
function isRepeat(keys: readonly string[], i: number): boolean {
  const key = keys[i];
  for (let j = 0; j < i; j++) if (keys[j] === key) return true;
  return false;
}

/** `<` on strings compares UTF-16 code units, which disagrees with byte order past U+FFFF. */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (U+D800–DFFF) encode code points above every BMP unit, including U+E000–FFFF.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}
