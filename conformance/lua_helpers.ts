// Helpers shared by the Lua, retry, dead-letter and config scenarios: script builders, queues
// with scripts, and small consume / measure utilities. Scripts are plain Lua source handed to
// CreateQueue (lua.md); nothing here imports broker code.
import assert from "node:assert/strict";
import type { Consumer, FilaClient, Message, MessageMetadata, QueueConfig } from "./client.ts";
import { PROMPT_MS, uniq, waitStats } from "./harness.ts";

/** "key/weight from headers" of conformance.md §0 as the on_enqueue script it names. */
export const KEY_WEIGHT_SCRIPT = `function on_enqueue(msg)
  return { fairness_key = msg.headers.key, weight = msg.headers.weight }
end`;

/** An on_enqueue script whose function body is `body` (it sees `msg`). */
export function onEnqueue(body: string): string {
  return `function on_enqueue(msg)\n${body}\nend`;
}

/** An on_failure script whose function body is `body` (it sees `msg`). */
export function onFailure(body: string): string {
  return `function on_failure(msg)\n${body}\nend`;
}

/** on_failure returning `dlq` when `attempts >= n`, else an immediate retry. */
export function dlqAfter(n: number): string {
  return onFailure(
    `if msg.attempts >= ${n} then return { action = "dlq" } end\nreturn { action = "retry" }`,
  );
}

/** on_failure returning `{ action = "retry", delay_ms = <delay> }` (delay is Lua source). */
export function retryAfter(delay: string | number): string {
  return onFailure(`return { action = "retry", delay_ms = ${delay} }`);
}

/** on_failure that always dead-letters. */
export const ALWAYS_DLQ = onFailure(`return { action = "dlq" }`);

/** Lua string literal for `s` (ASCII-safe: every non-printable byte escaped). */
export function luaStr(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let out = '"';
  for (const b of bytes) {
    if (b === 0x22 || b === 0x5c) out += "\\" + String.fromCharCode(b);
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\${b.toString().padStart(3, "0")}`;
  }
  return out + '"';
}

/** Creates a fresh uniquely named queue with the given config; returns its name. */
export async function scriptedQueue(
  client: FilaClient,
  config: QueueConfig,
  prefix = "lu",
): Promise<string> {
  const q = uniq(prefix);
  await client.createQueue(q, config);
  return q;
}

/**
 * Consumes `n` messages from `q` with a fresh consumer(n), acks each, closes the stream and waits
 * until the broker no longer counts it. Resolves with the messages in arrival order.
 */
export async function drain(
  client: FilaClient,
  q: string,
  n: number,
  timeoutMs = PROMPT_MS,
): Promise<Message[]> {
  const c = client.consume(q, n);
  try {
    const got = await c.take(n, timeoutMs);
    await Promise.all(got.map((m) => client.ack(q, m.id)));
    return got;
  } finally {
    c.cancel();
    await waitStats(client, q, (s) => s.active_consumers === 0, 2000, "the consumer to go");
  }
}

/** Enqueues one message and returns its delivered metadata (consumed and acked). */
export async function metadataOf(
  client: FilaClient,
  q: string,
  headers: Record<string, string> = {},
  payload: string = "x",
): Promise<MessageMetadata> {
  const id = await client.enqueue(q, { headers, payload });
  const [m] = await drain(client, q, 1);
  assert.equal(m.id, id);
  return m.metadata!;
}

/** The default scheduling metadata (lua.md §2). */
export function assertDefaults(md: MessageMetadata, what = "the message"): void {
  assert.equal(md.fairness_key, "default", `${what}: fairness_key`);
  assert.equal(md.weight, 1, `${what}: weight`);
  assert.deepEqual(md.throttle_keys, [], `${what}: throttle_keys`);
}

/** Runs `f` and resolves with its result and the elapsed milliseconds. */
export async function timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await f();
  return { value, ms: performance.now() - t0 };
}

/** Arrival time (performance.now()) of the most recently received item of `c`. */
export function lastArrival(c: Consumer): number {
  return c.times[c.times.length - 1];
}

/**
 * Calls GetStats on `q` back to back from `client` until `stop()` is called; `stop` resolves with
 * the latencies (ms) of every call. A failing call counts as Infinity.
 */
export function statsProbe(
  client: FilaClient,
  q: string,
): { stop: () => Promise<number[]> } {
  const lat: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        await client.getStats(q, { deadlineMs: 5000 });
        lat.push(performance.now() - t0);
      } catch {
        lat.push(Infinity);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return lat;
    },
  };
}

/** Percentile (0 … 100) of `xs`. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
