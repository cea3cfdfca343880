/** FilaAdmin handlers. */
import type * as grpc from "@grpc/grpc-js";
import { FilaError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { checkNewQueueName, checkQueueName } from "../core/validate.ts";
import type { Scheduler } from "../scheduler/mod.ts";
import { toNumber } from "../wire/proto.ts";
import { unary } from "./rpc.ts";

const SERVICE = "fila.v1.FilaAdmin";

interface CreateQueueRequest {
  name: string;
  config?: {
    onEnqueueScript: string;
    onFailureScript: string;
    visibilityTimeoutMs: unknown;
    fairnessKeyHeader: string;
    weightHeader: string;
    throttleKeyHeaders: string[];
  };
}

function notYet(rpc: string): never {
  throw new FilaError("UNIMPLEMENTED", `${rpc} is not implemented yet`);
}

export function filaAdminHandlers(
  scheduler: Scheduler,
  log: Logger,
): grpc.UntypedServiceImplementation {
  const h = <Req>(method: string, fn: (req: Req) => Promise<object> | object) =>
    unary<Req>(SERVICE, method, fn, log);
  return {
    CreateQueue: h<CreateQueueRequest>("CreateQueue", async (req) => {
      checkNewQueueName(req.name);
      const c = req.config;
      await scheduler.createQueue({
        name: req.name,
        onEnqueueScript: c?.onEnqueueScript ?? "",
        onFailureScript: c?.onFailureScript ?? "",
        visibilityTimeoutMs: toNumber(c?.visibilityTimeoutMs ?? 0),
        fairnessKeyHeader: c?.fairnessKeyHeader ?? "",
        weightHeader: c?.weightHeader ?? "",
        throttleKeyHeaders: c?.throttleKeyHeaders ?? [],
      });
      return { queueId: req.name };
    }),
    DeleteQueue: h<{ queue: string }>("DeleteQueue", async (req) => {
      checkQueueName(req.queue);
      await scheduler.deleteQueue(req.queue);
      return {};
    }),
    ListQueues: h("ListQueues", async () => ({
      queues: (await scheduler.listQueues()).map((q) => ({
        name: q.name,
        depth: q.depth,
        inFlight: q.inFlight,
        activeConsumers: q.consumers,
      })),
    })),
    GetStats: h<{ queue: string }>("GetStats", async (req) => {
      checkQueueName(req.queue);
      const s = await scheduler.stats(req.queue);
      return {
        depth: s.depth,
        inFlight: s.inFlight,
        activeFairnessKeys: s.activeKeys,
        activeConsumers: s.consumers,
        quantum: s.quantum,
        perKeyStats: s.perKey.map((k) => ({
          key: k.key,
          pendingCount: k.pending,
          currentDeficit: k.deficit,
          weight: k.weight,
          deliveredCount: k.delivered,
        })),
        perThrottleStats: s.throttles.map((t) => ({
          key: t.key,
          tokens: t.tokens,
          ratePerSecond: t.ratePerSecond,
          burst: t.burst,
        })),
        pending: s.pending,
        delayed: s.delayed,
      };
    }),
    SetConfig: h<{ key: string; value: string }>("SetConfig", async (req) => {
      await scheduler.setConfig(req.key, req.value);
      return {};
    }),
    GetConfig: h<{ key: string }>("GetConfig", async (req) => ({
      value: await scheduler.getConfig(req.key),
    })),
    ListConfig: h<{ prefix: string }>("ListConfig", async (req) => {
      const entries = await scheduler.listConfig(req.prefix);
      return {
        entries: entries.map(([key, value]) => ({ key, value })),
        totalCount: entries.length,
      };
    }),
    Redrive: h<{ dlqQueue: string; count: unknown }>("Redrive", async (req) => {
      checkQueueName(req.dlqQueue, "dlq_queue name");
      return { redriven: await scheduler.redrive(req.dlqQueue, toNumber(req.count)) };
    }),
    CreateApiKey: h("CreateApiKey", () => notYet("CreateApiKey")),
    RevokeApiKey: h("RevokeApiKey", () => notYet("RevokeApiKey")),
    ListApiKeys: h("ListApiKeys", () => notYet("ListApiKeys")),
    SetAcl: h("SetAcl", () => notYet("SetAcl")),
    GetAcl: h("GetAcl", () => notYet("GetAcl")),
  };
}
