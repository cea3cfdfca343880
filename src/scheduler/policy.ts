/**
 * How a message gets its fairness key, weight and throttle keys at enqueue, and what happens on
 * failure: the queue's Lua hooks when present, else the declarative header settings of its
 * QueueConfig, else the defaults.
 */
import { DEFAULT_FAIRNESS_KEY, NO_THROTTLE_KEYS, type QueueDef } from "../core/types.ts";
import { MAX_KEY_BYTES, utf8Length } from "../core/validate.ts";

export interface EnqueueDecision {
  fairnessKey: string;
  weight: number;
  throttleKeys: string[];
}

export interface FailureDecision {
  action: "retry" | "dlq";
  delayMs: number;
}

export interface QueueScripts {
  onEnqueue: string;
  onFailure: string;
}

/** The narrow view of the Lua engine the scheduler depends on (src/lua implements it). */
export interface PolicyHooks {
  /** Throws an error whose message is the compile error detail. */
  validate(scripts: QueueScripts): void;
  install(queue: string, scripts: QueueScripts): void;
  installLenient(queue: string, scripts: QueueScripts): string[];
  remove(queue: string): void;
  onEnqueue(
    queue: string,
    input: { headers: Record<string, string>; payloadSize: number; queue: string },
  ): EnqueueDecision | undefined;
  onFailure(
    queue: string,
    input: {
      headers: Record<string, string>;
      id: string;
      attempts: number;
      queue: string;
      error: string;
    },
  ): FailureDecision | undefined;
}

const DEFAULT_DECISION: EnqueueDecision = {
  fairnessKey: DEFAULT_FAIRNESS_KEY,
  weight: 1,
  throttleKeys: NO_THROTTLE_KEYS,
};
const MAX_WEIGHT = 4_294_967_295;

function validKey(v: string | undefined): v is string {
  return v !== undefined && utf8Length(v) <= MAX_KEY_BYTES;
}

/** The no-scripting path: header names from the queue's config. */
export function declarativeDecision(
  def: QueueDef,
  headers: Record<string, string>,
): EnqueueDecision {
  if (!def.fairnessKeyHeader && !def.weightHeader && def.throttleKeyHeaders.length === 0) {
    return DEFAULT_DECISION;
  }
  const key = def.fairnessKeyHeader ? headers[def.fairnessKeyHeader] : undefined;
  let weight = 1;
  if (def.weightHeader) {
    const raw = headers[def.weightHeader];
    if (raw !== undefined && /^\d{1,10}$/.test(raw)) {
      const n = Number(raw);
      if (n <= MAX_WEIGHT) weight = n;
    }
  }
  const throttleKeys: string[] = [];
  for (const h of def.throttleKeyHeaders) {
    const v = headers[h];
    if (validKey(v)) throttleKeys.push(v);
  }
  return {
    fairnessKey: validKey(key) ? key : DEFAULT_FAIRNESS_KEY,
    weight,
    throttleKeys: throttleKeys.length > 0 ? throttleKeys : NO_THROTTLE_KEYS,
  };
}
