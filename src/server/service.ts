/** FilaService handlers: decode, validate, call the scheduler, encode. */
import type * as grpc from "@grpc/grpc-js";
import { requirePermissionOn } from "../auth/acl.ts";
import { FilaError, InvalidArgumentError } from "../core/errors.ts";
import { parseMessageId } from "../core/ids.ts";
import type { Logger } from "../core/log.ts";
import { checkQueueName } from "../core/validate.ts";
import type { Delivery } from "../core/types.ts";
import type {
  ConsumerSink,
  EnqueueItem,
  NackItem,
  Scheduler,
  SettleItem,
} from "../scheduler/mod.ts";
import { deliveryFrameSize, encodeConsumeBatch, encodeConsumeResponse } from "../wire/delivery.ts";
import { type } from "../wire/proto.ts";
import { admitRequest, type Pipeline, unary } from "./rpc.ts";
import { toStatus } from "./status.ts";

const SERVICE = "fila.v1.FilaService";
const ConsumeRequest = type("fila.v1.ConsumeRequest");

interface EnqueueRequest {
  queue: string;
  headers: Record<string, string>;
  payload: Uint8Array;
}
interface AckRequest {
  queue: string;
  messageId: string;
}
interface NackRequest extends AckRequest {
  error: string;
}
interface ConsumeRequestMsg {
  queue: string;
  maxUnacked: number;
  maxBatchSize: number;
}

/** A gRPC client's default receive limit: no ConsumeResponse may be larger. */
const MAX_DELIVERY_ITEM_BYTES = 4_194_304;

/** The wire form of one failed batch item. */
function itemError(e: unknown, pipeline: Pipeline): { code: number; message: string } {
  const s = toStatus(e, pipeline.log);
  return { code: s.code, message: s.details };
}

/**
 * Runs the unary checks of each item (`check` throws the item's error), hands the items that
 * passed to the scheduler in one call, and merges both into one result per item, in order.
 */
async function perItem<In, Item, Out>(
  items: In[],
  check: (item: In) => Item,
  run: (valid: Item[]) => Promise<Array<Out | FilaError | undefined>>,
): Promise<Array<Out | FilaError | undefined>> {
  const results: Array<Out | FilaError | undefined> = new Array(items.length).fill(undefined);
  const valid: Item[] = [];
  const index: number[] = [];
  items.forEach((item, i) => {
    try {
      valid.push(check(item));
      index.push(i);
    } catch (e) {
      results[i] = e instanceof FilaError ? e : new InvalidArgumentError(String(e));
    }
  });
  if (valid.length > 0) {
    const out = await run(valid);
    index.forEach((i, j) => results[i] = out[j]);
  }
  return results;
}

function messageIdOf(raw: string): string {
  if (raw.length === 0) throw new InvalidArgumentError("message_id must not be empty");
  const id = parseMessageId(raw);
  if (!id) throw new InvalidArgumentError("invalid message_id format");
  return id;
}

/** Ack/Nack checks of one item, in the unary order: name, consume-on(queue), message id. */
function settleItem(
  item: AckRequest,
  caller: Parameters<typeof requirePermissionOn>[0],
): SettleItem {
  checkQueueName(item.queue);
  requirePermissionOn(caller, "consume", item.queue);
  return { queue: item.queue, id: messageIdOf(item.messageId) };
}

export function filaServiceHandlers(
  scheduler: Scheduler,
  pipeline: Pipeline,
): grpc.UntypedServiceImplementation {
  return {
    Enqueue: unary<EnqueueRequest>(SERVICE, "Enqueue", async (req, caller) => {
      checkQueueName(req.queue);
      requirePermissionOn(caller, "produce", req.queue);
      const id = await scheduler.enqueue(req.queue, req.headers, req.payload);
      return { messageId: id };
    }, pipeline),
    // Ack and Nack belong to consuming; the ACL check precedes any look at the message id.
    Ack: unary<AckRequest>(SERVICE, "Ack", async (req, caller) => {
      checkQueueName(req.queue);
      requirePermissionOn(caller, "consume", req.queue);
      await scheduler.ack(req.queue, messageIdOf(req.messageId));
      return {};
    }, pipeline),
    Nack: unary<NackRequest>(SERVICE, "Nack", async (req, caller) => {
      checkQueueName(req.queue);
      requirePermissionOn(caller, "consume", req.queue);
      await scheduler.nack(req.queue, messageIdOf(req.messageId), req.error);
      return {};
    }, pipeline),
    BatchEnqueue: unary<{ items: EnqueueRequest[] }>(
      SERVICE,
      "BatchEnqueue",
      async (req, caller) => {
        const results = await perItem<EnqueueRequest, EnqueueItem, string>(
          req.items,
          (item) => {
            checkQueueName(item.queue);
            requirePermissionOn(caller, "produce", item.queue);
            return { queue: item.queue, headers: item.headers, payload: item.payload };
          },
          (valid) => scheduler.enqueueBatch(valid),
        );
        return {
          results: results.map((r) =>
            typeof r === "string" ? { messageId: r } : { error: itemError(r, pipeline) }
          ),
        };
      },
      pipeline,
    ),
    BatchAck: unary<{ items: AckRequest[] }>(SERVICE, "BatchAck", async (req, caller) => {
      const results = await perItem<AckRequest, SettleItem, undefined>(
        req.items,
        (item) => settleItem(item, caller),
        (valid) => scheduler.ackBatch(valid),
      );
      return { results: results.map((r) => r ? { error: itemError(r, pipeline) } : {}) };
    }, pipeline),
    BatchNack: unary<{ items: NackRequest[] }>(SERVICE, "BatchNack", async (req, caller) => {
      const results = await perItem<NackRequest, NackItem, undefined>(
        req.items,
        (item) => ({ ...settleItem(item, caller), error: item.error }),
        (valid) => scheduler.nackBatch(valid),
      );
      return { results: results.map((r) => r ? { error: itemError(r, pipeline) } : {}) };
    }, pipeline),
    // Returning the promise lets tracing end the `consume` span when registration does.
    Consume: (call: grpc.ServerWritableStream<Buffer, Uint8Array>) =>
      consume(scheduler, call, pipeline),
  };
}

function fail(call: grpc.ServerWritableStream<Buffer, Uint8Array>, e: unknown, log: Logger) {
  const s = toStatus(e, log);
  call.emit("error", { code: s.code, details: s.details });
}

async function consume(
  scheduler: Scheduler,
  call: grpc.ServerWritableStream<Buffer, Uint8Array>,
  pipeline: Pipeline,
): Promise<void> {
  const log = pipeline.log;
  let ended = false;
  let batched = false;
  const sink: ConsumerSink = {
    send: (d) => call.write(batched ? encodeConsumeBatch([d]) : encodeConsumeResponse(d)),
    sendBatch: (ds) => {
      let more = true;
      for (const chunk of byItemSize(ds)) more = call.write(encodeConsumeBatch(chunk));
      return more;
    },
    close: (err?: FilaError) => {
      if (ended) return;
      ended = true;
      if (err) fail(call, err, log);
      else call.end();
    },
  };
  try {
    const { req, caller } = await admitRequest<ConsumeRequestMsg>(
      ConsumeRequest,
      call.request,
      call.metadata,
      pipeline,
    );
    checkQueueName(req.queue);
    requirePermissionOn(caller, "consume", req.queue);
    if (call.cancelled) return;
    batched = req.maxBatchSize > 0;
    const handle = await scheduler.consume(req.queue, req.maxUnacked, sink, {
      maxBatch: req.maxBatchSize,
    });
    const release = () => {
      ended = true;
      handle.close();
    };
    if (call.cancelled) release();
    call.on("cancelled", release);
    call.on("close", () => {
      if (!ended) release();
    });
    call.on("drain", () => handle.resume());
  } catch (e) {
    ended = true;
    fail(call, e, log);
  }
}

/** Splits deliveries into stream items of at most 4 MiB each (order kept). */
function byItemSize(ds: Delivery[]): Delivery[][] {
  const items: Delivery[][] = [];
  let current: Delivery[] = [];
  let bytes = 0;
  for (const d of ds) {
    const size = deliveryFrameSize(d);
    if (current.length > 0 && bytes + size > MAX_DELIVERY_ITEM_BYTES) {
      items.push(current);
      current = [];
      bytes = 0;
    }
    current.push(d);
    bytes += size;
  }
  if (current.length > 0) items.push(current);
  return items;
}
