/** FilaService handlers: decode, validate, call the scheduler, encode. */
import type * as grpc from "@grpc/grpc-js";
import { requirePermissionOn } from "../auth/acl.ts";
import { type FilaError, InvalidArgumentError } from "../core/errors.ts";
import { parseMessageId } from "../core/ids.ts";
import type { Logger } from "../core/log.ts";
import { checkQueueName } from "../core/validate.ts";
import type { ConsumerSink, Scheduler } from "../scheduler/mod.ts";
import { encodeConsumeResponse } from "../wire/delivery.ts";
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
}

function messageIdOf(raw: string): string {
  if (raw.length === 0) throw new InvalidArgumentError("message_id must not be empty");
  const id = parseMessageId(raw);
  if (!id) throw new InvalidArgumentError("invalid message_id format");
  return id;
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
    Consume: (call: grpc.ServerWritableStream<Buffer, Uint8Array>) => {
      consume(scheduler, call, pipeline);
    },
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
  const sink: ConsumerSink = {
    send: (d) => call.write(encodeConsumeResponse(d)),
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
    const handle = await scheduler.consume(req.queue, req.maxUnacked, sink);
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
