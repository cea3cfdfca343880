/**
 * Span attributes `queue_id` and `msg_id` (operations.md §6.3) read straight from the raw request
 * and response bytes, so the handlers need no tracing code. Only the few string fields needed are
 * scanned; payloads and headers are skipped, never decoded.
 */
import protobuf from "protobufjs";
import { service } from "../wire/proto.ts";

export interface AttributePlan {
  /** Request field holding the queue name. */
  queue?: number;
  /** Request field holding a message id. */
  msgId?: number;
  /** Repeated request field of items, each with its queue name in field `queue`. */
  items?: { field: number; queue: number };
  /** Response field holding the new message id. */
  responseMsgId?: number;
}

type Fields = Record<string, protobuf.Field>;

function fieldId(fields: Fields, ...names: string[]): number | undefined {
  for (const n of names) if (fields[n]) return fields[n].id;
  return undefined;
}

/** Which fields carry the attributes of `service/method`; undefined for unknown methods. */
export function attributePlan(serviceName: string, method: string): AttributePlan | undefined {
  const m = service(serviceName).methods[method];
  if (!m) return undefined;
  const req = m.resolvedRequestType!.fields;
  // CreateQueue names its queue `name`; CreateApiKey's `name` is a key name, so only there.
  const queue = method === "CreateQueue"
    ? fieldId(req, "name")
    : fieldId(req, "queue", "dlqQueue", "dlq_queue");
  const plan: AttributePlan = { queue, msgId: fieldId(req, "messageId", "message_id") };
  for (const f of Object.values(req)) {
    const itemQueue = f.repeated && f.resolvedType instanceof protobuf.Type
      ? fieldId(f.resolvedType.fields, "queue")
      : undefined;
    if (itemQueue !== undefined) plan.items = { field: f.id, queue: itemQueue };
  }
  const res = m.resolvedResponseType!.fields;
  if (!m.responseStream) plan.responseMsgId = fieldId(res, "messageId", "message_id");
  return plan;
}

/** Last value of each wanted string field at the top level of `bytes`. */
function scanStrings(bytes: Uint8Array, wanted: readonly number[]): Map<number, string> {
  const out = new Map<number, string>();
  const r = protobuf.Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === 2 && wanted.includes(field)) out.set(field, r.string());
    else r.skipType(wire);
  }
  return out;
}

function itemQueues(bytes: Uint8Array, items: { field: number; queue: number }): Set<string> {
  const queues = new Set<string>();
  const r = protobuf.Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === items.field && (tag & 7) === 2) {
      const q = scanStrings(r.bytes(), [items.queue]).get(items.queue);
      queues.add(q ?? "");
    } else {
      r.skipType(tag & 7);
    }
  }
  return queues;
}

export type SpanAttributes = Record<string, string>;

/** `queue_id` / `msg_id` of a request; a malformed request simply yields fewer attributes. */
export function requestAttributes(plan: AttributePlan, raw: Uint8Array): SpanAttributes {
  const attrs: SpanAttributes = {};
  try {
    const wanted = [plan.queue, plan.msgId].filter((f): f is number => f !== undefined);
    if (wanted.length > 0) {
      const found = scanStrings(raw, wanted);
      if (plan.queue !== undefined) attrs.queue_id = found.get(plan.queue) ?? "";
      const msgId = plan.msgId !== undefined ? found.get(plan.msgId) : undefined;
      if (msgId) attrs.msg_id = msgId;
    }
    if (plan.items) {
      const queues = itemQueues(raw, plan.items);
      if (queues.size === 1) attrs.queue_id = [...queues][0];
    }
  } catch {
    // Decoding errors are the handler's to report.
  }
  return attrs;
}

/** The message id an Enqueue response carries, if any. */
export function responseMsgId(plan: AttributePlan, raw: Uint8Array): string | undefined {
  if (plan.responseMsgId === undefined) return undefined;
  try {
    return scanStrings(raw, [plan.responseMsgId]).get(plan.responseMsgId) || undefined;
  } catch {
    return undefined;
  }
}
