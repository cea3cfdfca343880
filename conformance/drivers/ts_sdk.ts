// Reference driver "ts": performs every operation with the TypeScript SDK (mod.ts), including
// its batching (enqueue/ack/nack go through the coalescing batchers) and its reconnecting
// consumers. Run by the kit as `deno run --allow-all conformance/drivers/ts_sdk.ts`; protocol in
// conformance/DRIVERS.md.
import {
  type Consumer,
  type Delivery,
  FilaClient,
  FilaError,
  type QueueConfig,
  statusName,
} from "../../mod.ts";
import {
  type DriverMessage,
  type ErrorBody,
  fromBase64,
  type QueueConfigArgs,
  serveDriver,
  toBase64,
} from "./driver.ts";

/** `consumer()` in conformance.md leaves max_unacked unset, which the broker reads as 256. */
const BROKER_DEFAULT_CREDIT = 256;

let client = null as FilaClient | null;

interface OpenConsumer {
  consumer: Consumer;
  /** A next() that outlived the timeout of its consume_next; the following call takes it over. */
  pending: Promise<IteratorResult<Delivery>> | null;
}
const consumers = new Map<string, OpenConsumer>();
let consumerSeq = 0;

function c(): FilaClient {
  if (!client) throw new Error("hello first");
  return client;
}

function toDriverMessage(m: Delivery): DriverMessage {
  return {
    id: m.id,
    queue: m.queue,
    headers: m.headers,
    payload: toBase64(m.payload),
    fairness_key: m.fairnessKey,
    weight: m.weight,
    throttle_keys: m.throttleKeys,
    attempt_count: m.attemptCount,
  };
}

function queueConfig(cfg: QueueConfigArgs | undefined): QueueConfig | undefined {
  if (!cfg) return undefined;
  return {
    visibilityTimeoutMs: cfg.visibility_timeout_ms,
    fairnessKeyHeader: cfg.fairness_key_header,
    weightHeader: cfg.weight_header,
    throttleKeyHeaders: cfg.throttle_key_headers,
    onEnqueueScript: cfg.on_enqueue_script,
    onFailureScript: cfg.on_failure_script,
  };
}

function errorBody(e: unknown): ErrorBody {
  if (e instanceof FilaError) return { code: statusName(e.code), message: e.details };
  return { code: "DRIVER_ERROR", message: e instanceof Error ? e.stack ?? e.message : String(e) };
}

await serveDriver("ts_sdk", {
  hello: async ({ addr, api_key }) => {
    client = await FilaClient.connect(addr, { apiKey: api_key });
    return { name: "ts-sdk", version: "1", protocol: 0, ops: [] };
  },
  create_queue: async ({ queue, config }) => {
    await c().createQueue(queue, queueConfig(config));
    return {};
  },
  delete_queue: async ({ queue }) => {
    await c().deleteQueue(queue);
    return {};
  },
  list_queues: async () => ({
    queues: (await c().listQueues()).map((q) => ({
      name: q.name,
      depth: q.depth,
      in_flight: q.inFlight,
      active_consumers: q.activeConsumers,
    })),
  }),
  enqueue: async ({ queue, headers, payload }) => ({
    message_id: await c().enqueue(queue, headers ?? {}, fromBase64(payload)),
  }),
  batch_enqueue: async ({ items }) => {
    const results = await c().batchEnqueue(
      items.map((it) => ({
        queue: it.queue,
        headers: it.headers,
        payload: fromBase64(it.payload),
      })),
    );
    return {
      results: results.map((r) =>
        r.ok ? { message_id: r.messageId } : { error: errorBody(r.error) }
      ),
    };
  },
  consume_open: ({ queue, max_unacked }) => {
    const id = `c${++consumerSeq}`;
    const consumer = c().consume(queue, { maxInFlight: max_unacked || BROKER_DEFAULT_CREDIT });
    consumers.set(id, { consumer, pending: null });
    return { consumer: id };
  },
  consume_next: async ({ consumer, timeout_ms }) => {
    const open = consumers.get(consumer);
    if (!open) throw new Error(`unknown consumer ${consumer}`);
    const next = open.pending ?? open.consumer.next();
    // A wait that times out leaves `next` pending; if the stream then fails before the following
    // consume_next, its rejection must not count as unhandled (which would end the driver).
    next.catch(() => {});
    open.pending = next;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = Symbol("timeout");
    const r = await Promise.race([
      next,
      new Promise<typeof timedOut>((resolve) =>
        timer = setTimeout(() => resolve(timedOut), timeout_ms)
      ),
    ]).finally(() => clearTimeout(timer));
    if (r === timedOut) return { message: null };
    open.pending = null;
    return { message: r.done ? null : toDriverMessage(r.value) };
  },
  consume_close: async ({ consumer }) => {
    const open = consumers.get(consumer);
    consumers.delete(consumer);
    await open?.consumer.close();
    return {};
  },
  ack: async ({ queue, message_id }) => {
    await c().ack(queue, message_id);
    return {};
  },
  nack: async ({ queue, message_id, error }) => {
    await c().nack(queue, message_id, error ?? "");
    return {};
  },
  set_config: async ({ key, value }) => {
    await c().setConfig(key, value);
    return {};
  },
  get_config: async ({ key }) => ({ value: await c().getConfig(key) }),
  list_config: async ({ prefix }) => ({ entries: await c().listConfig(prefix ?? "") }),
  get_stats: async ({ queue }) => {
    const s = await c().getStats(queue);
    return {
      depth: s.depth,
      in_flight: s.inFlight,
      pending: s.pending,
      delayed: s.delayed,
      active_fairness_keys: s.activeFairnessKeys,
      active_consumers: s.activeConsumers,
      quantum: s.quantum,
      per_key_stats: s.perKeyStats.map((k) => ({
        key: k.key,
        pending_count: k.pendingCount,
        current_deficit: k.currentDeficit,
        weight: k.weight,
        delivered_count: k.deliveredCount,
      })),
    };
  },
  redrive: async ({ dlq_queue, count }) => ({ redriven: await c().redrive(dlq_queue, count ?? 0) }),
}, errorBody);

await client?.close();
Deno.exit(0);
