/** Public data shapes of the SDK (camelCase views of the fila.v1 messages). */
import type { FilaError } from "./errors.ts";

/** Message headers: string keys and values, delivered verbatim. */
export type Headers = Record<string, string>;

/** A payload: bytes, or a string sent as UTF-8. */
export type Payload = Uint8Array | string;

/**
 * A message as delivered to a consumer.
 *
 * @example
 * ```ts
 * for await (const msg of client.consume("jobs")) {
 *   console.log(msg.id, msg.fairnessKey, msg.attemptCount, msg.text());
 *   await msg.ack();
 * }
 * ```
 */
export interface Message {
  /** Message id (UUIDv7, lowercase hyphenated); stable across retries and dead-lettering. */
  id: string;
  /** Queue the message was delivered from (the DLQ name once dead-lettered). */
  queue: string;
  headers: Headers;
  payload: Uint8Array;
  /** Fairness key assigned at enqueue (`"default"` without configuration). */
  fairnessKey: string;
  /** Weight assigned at enqueue. */
  weight: number;
  /** Throttle keys assigned at enqueue. */
  throttleKeys: string[];
  /** Failed attempts so far (0 on the first delivery). */
  attemptCount: number;
}

/**
 * Queue settings for `createQueue`.
 *
 * @example
 * ```ts
 * await client.createQueue("jobs", { fairnessKeyHeader: "tenant", visibilityTimeoutMs: 60_000 });
 * ```
 */
export interface QueueConfig {
  /** Lua source of the `on_enqueue` hook. */
  onEnqueueScript?: string;
  /** Lua source of the `on_failure` hook. */
  onFailureScript?: string;
  /** Lease duration in ms (minimum 1000; 0 = default 30000). */
  visibilityTimeoutMs?: number;
  /** Header whose value becomes the fairness key. */
  fairnessKeyHeader?: string;
  /** Header whose value (decimal integer) becomes the weight. */
  weightHeader?: string;
  /** Headers whose values become throttle keys, in this order. */
  throttleKeyHeaders?: string[];
}

/** One fairness key in `Stats.perKeyStats`. */
export interface FairnessKeyStats {
  key: string;
  pendingCount: number;
  currentDeficit: number;
  weight: number;
  deliveredCount: number;
}

/** One token bucket in `Stats.perThrottleStats`. */
export interface ThrottleKeyStats {
  key: string;
  tokens: number;
  ratePerSecond: number;
  burst: number;
}

/**
 * Queue statistics (GetStats).
 *
 * @example
 * ```ts
 * const s = await client.getStats("jobs");
 * console.log(s.pending, s.inFlight, s.delayed);
 * ```
 */
export interface Stats {
  /** pending + in flight. */
  depth: number;
  inFlight: number;
  pending: number;
  delayed: number;
  activeFairnessKeys: number;
  activeConsumers: number;
  quantum: number;
  perKeyStats: FairnessKeyStats[];
  perThrottleStats: ThrottleKeyStats[];
}

/** One queue in `listQueues()`. */
export interface QueueInfo {
  name: string;
  depth: number;
  inFlight: number;
  activeConsumers: number;
}

/** One runtime config entry. */
export interface ConfigEntry {
  key: string;
  value: string;
}

/**
 * One item of `batchEnqueue`.
 *
 * @example
 * ```ts
 * const item: EnqueueItem = { queue: "jobs", headers: { tenant: "acme" }, payload: "hello" };
 * ```
 */
export interface EnqueueItem {
  queue: string;
  headers?: Headers;
  payload?: Payload;
}

/**
 * Result of one `batchEnqueue` item: the new id, or the error the unary Enqueue would have given.
 *
 * @example
 * ```ts
 * for (const r of await client.batchEnqueue(items)) {
 *   if (!r.ok) console.error(r.error.codeName, r.error.message);
 * }
 * ```
 */
export type EnqueueResult =
  | { ok: true; messageId: string }
  | { ok: false; error: FilaError };

/** Options of `createApiKey`. */
export interface CreateApiKeyOptions {
  /** Unix time in ms after which the key is rejected (default: never). */
  expiresAtMs?: number;
  /** The key bypasses every ACL check. */
  superadmin?: boolean;
}

/** A newly created API key; `key` (the token) is returned only here. */
export interface CreatedApiKey {
  keyId: string;
  key: string;
  superadmin: boolean;
}

/** An API key as listed (without its token). */
export interface ApiKeyInfo {
  keyId: string;
  name: string;
  createdAtMs: number;
  expiresAtMs: number;
  superadmin: boolean;
}

/** An ACL entry: `kind` is `produce`, `consume` or `admin`; `pattern` `*`, `prefix.*` or a name. */
export interface Permission {
  kind: "produce" | "consume" | "admin" | string;
  pattern: string;
}

/** A key's ACL. */
export interface Acl {
  keyId: string;
  permissions: Permission[];
  superadmin: boolean;
}
