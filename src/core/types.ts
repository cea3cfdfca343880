/**
 * Domain vocabulary shared by storage, scheduler and server. No wire (protobuf) types here:
 * the server converts at the edge.
 */

/** A queue definition as stored. `qid` names this incarnation of the queue: every message row
 * is keyed by it, so deleting a queue is one small commit and a recreated queue with the same
 * name can never see the old incarnation's rows, even before they are purged. */
export interface QueueDef {
  name: string;
  qid: string;
  onEnqueueScript: string;
  onFailureScript: string;
  visibilityTimeoutMs: number;
  /** Declarative scheduling without Lua ("" = unused). */
  fairnessKeyHeader: string;
  weightHeader: string;
  throttleKeyHeaders: string[];
  createdAtMs: number;
}

/** Immutable part of a message, fixed at enqueue. */
export interface MessageBody {
  id: string;
  headers: Record<string, string>;
  /**
   * The bytes, or their length when they are not held in memory: past the scheduler's payload
   * budget a pending message keeps only its index in memory, and the store reads the bytes back
   * before delivery (Store.readPayloads).
   */
  payload: Uint8Array | number;
  fairnessKey: string;
  /** As assigned (may be 0); scheduling uses max(1, weight). */
  weight: number;
  throttleKeys: string[];
  enqueuedAtMs: number;
}

/** One shared, frozen list for the many messages with no throttle key. */
export const NO_THROTTLE_KEYS: string[] = Object.freeze([]) as unknown as string[];

export function payloadLength(body: MessageBody): number {
  const p = body.payload;
  return typeof p === "number" ? p : p.length;
}

/** The payload bytes of a body that must be in memory here (an encoder's input). */
export function residentPayload(body: MessageBody): Uint8Array {
  const p = body.payload;
  if (typeof p === "number") throw new Error(`payload of message ${body.id} is not in memory`);
  return p;
}

/** Mutable, persisted part of a message. A pending message with no failed attempt has none. */
export interface MessageState {
  attempts: number;
  /** Lease deadline (Unix ms) while in flight; `Infinity` = never expires. */
  leaseDeadline?: number;
  /** Ready time (Unix ms) while delayed. */
  readyAt?: number;
}

/** A message as the scheduler hands it to a consumer. */
export interface Delivery {
  body: MessageBody;
  attempts: number;
  queue: string;
}

/** Default credit when a consumer asks for 0. */
export const DEFAULT_MAX_UNACKED = 256;
/** Default and minimum visibility timeouts (ms). */
export const DEFAULT_VISIBILITY_TIMEOUT_MS = 30_000;
export const MIN_VISIBILITY_TIMEOUT_MS = 1_000;
export const DLQ_SUFFIX = ".dlq";
export const DEFAULT_FAIRNESS_KEY = "default";

export function dlqNameOf(queue: string): string {
  return queue + DLQ_SUFFIX;
}

export function isDlqName(queue: string): boolean {
  return queue.endsWith(DLQ_SUFFIX);
}
