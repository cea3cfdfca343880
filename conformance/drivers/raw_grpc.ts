// Reference driver "raw": performs every operation with plain gRPC calls (the kit's own raw
// client), so it shows what the wire does without any SDK logic in between. Run by the kit as
// `deno run --allow-all conformance/drivers/raw_grpc.ts`; protocol in conformance/DRIVERS.md.
import {
  authorizationOptions,
  type Consumer,
  FilaClient,
  isCallError,
  type Message,
  statusName,
} from "../client.ts";
import {
  type DriverMessage,
  type ErrorBody,
  fromBase64,
  type QueueConfigArgs,
  serveDriver,
  toBase64,
} from "./driver.ts";

let client = null as FilaClient | null;
const consumers = new Map<string, Consumer>();
let consumerSeq = 0;

function c(): FilaClient {
  if (!client) throw new Error("hello first");
  return client;
}

function toDriverMessage(m: Message): DriverMessage {
  return {
    id: m.id,
    queue: m.metadata?.queue_id ?? "",
    headers: { ...m.headers },
    payload: toBase64(m.payload),
    fairness_key: m.metadata?.fairness_key ?? "",
    weight: m.metadata?.weight ?? 0,
    throttle_keys: m.metadata?.throttle_keys ?? [],
    attempt_count: m.metadata?.attempt_count ?? 0,
  };
}

function statusError(code: number, message: string): ErrorBody {
  return { code: statusName(code), message };
}

function config(cfg: QueueConfigArgs | undefined) {
  return cfg && { ...cfg };
}

await serveDriver("raw_grpc", {
  hello: ({ addr, api_key }) => {
    client = new FilaClient(addr, api_key ? authorizationOptions(`Bearer ${api_key}`) : {});
    return { name: "raw-grpc", version: "1", protocol: 0, ops: [] };
  },
  create_queue: async ({ queue, config: cfg }) => {
    await c().createQueue(queue, config(cfg));
    return {};
  },
  delete_queue: async ({ queue }) => {
    await c().deleteQueue(queue);
    return {};
  },
  list_queues: async () => {
    const r = await c().listQueues();
    return {
      queues: r.queues.map((q) => ({
        name: q.name,
        depth: q.depth,
        in_flight: q.in_flight,
        active_consumers: q.active_consumers,
      })),
    };
  },
  enqueue: async ({ queue, headers, payload }) => ({
    message_id: await c().enqueue(queue, { headers: headers ?? {}, payload: fromBase64(payload) }),
  }),
  batch_enqueue: async ({ items }) => {
    const r = await c().unary<{
      results: { message_id: string; error: { code: number; message: string } | null }[];
    }>("fila.v1.FilaService", "BatchEnqueue", {
      items: items.map((it) => ({
        queue: it.queue,
        headers: it.headers ?? {},
        payload: fromBase64(it.payload),
      })),
    });
    return {
      results: r.results.map((x) =>
        x.error
          ? { error: statusError(x.error.code, x.error.message) }
          : { message_id: x.message_id }
      ),
    };
  },
  consume_open: ({ queue, max_unacked }) => {
    const id = `c${++consumerSeq}`;
    consumers.set(id, c().consume(queue, max_unacked));
    return { consumer: id };
  },
  consume_next: async ({ consumer, timeout_ms }) => {
    const reader = consumers.get(consumer);
    if (!reader) throw new Error(`unknown consumer ${consumer}`);
    const m = await reader.next(timeout_ms);
    if (m) return { message: toDriverMessage(m) };
    if (reader.status && reader.status.code !== 0) {
      throw { code: reader.status.code, details: reader.status.details };
    }
    return { message: null };
  },
  consume_close: ({ consumer }) => {
    consumers.get(consumer)?.cancel();
    consumers.delete(consumer);
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
  list_config: async ({ prefix }) => {
    const r = await c().listConfig(prefix ?? "");
    return { entries: r.entries.map((e) => ({ key: e.key, value: e.value })) };
  },
  get_stats: async ({ queue }) => {
    const s = await c().getStats(queue);
    return {
      depth: s.depth,
      in_flight: s.in_flight,
      pending: s.pending,
      delayed: s.delayed,
      active_fairness_keys: s.active_fairness_keys,
      active_consumers: s.active_consumers,
      quantum: s.quantum,
      per_key_stats: s.per_key_stats.map((k) => ({ ...k })),
    };
  },
  redrive: async ({ dlq_queue, count }) => ({
    redriven: await c().redrive(dlq_queue, count ?? 0),
  }),
}, (e) => {
  if (isCallError(e)) return statusError(e.code, e.details);
  if (typeof e === "object" && e && "code" in e && "details" in e) {
    const s = e as { code: number; details: string };
    return statusError(s.code, s.details);
  }
  return { code: "DRIVER_ERROR", message: e instanceof Error ? e.stack ?? e.message : String(e) };
});

for (const r of consumers.values()) r.cancel();
client?.close();
Deno.exit(0);
