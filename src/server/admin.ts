/**
 * FilaAdmin handlers. ACL checks run here, in each RPC's order from semantics.md §2, before the
 * scheduler is involved: the scheduler knows nothing about callers.
 */
import type * as grpc from "@grpc/grpc-js";
import { type Caller, requireAdminAll, requireAnyAdmin, requirePermissionOn } from "../auth/acl.ts";
import type { ApiKeyAdmin } from "../auth/key_admin.ts";
import { checkNewQueueName, checkQueueName } from "../core/validate.ts";
import type { Scheduler } from "../scheduler/mod.ts";
import { toNumber } from "../wire/proto.ts";
import { type Pipeline, unary } from "./rpc.ts";

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

interface AclPermissionMsg {
  kind: string;
  pattern: string;
}

export function filaAdminHandlers(
  scheduler: Scheduler,
  keys: ApiKeyAdmin,
  pipeline: Pipeline,
): grpc.UntypedServiceImplementation {
  const h = <Req>(method: string, fn: (req: Req, caller: Caller) => Promise<object> | object) =>
    unary<Req>(SERVICE, method, fn, pipeline);
  /** For the RPCs whose only ACL step is admin-all, and it comes first. */
  const adminAll = <Req>(method: string, fn: (req: Req) => Promise<object> | object) =>
    h<Req>(method, (req, caller) => {
      requireAdminAll(caller);
      return fn(req);
    });
  return {
    CreateQueue: h<CreateQueueRequest>("CreateQueue", async (req, caller) => {
      requireAnyAdmin(caller);
      checkNewQueueName(req.name);
      requirePermissionOn(caller, "admin", req.name);
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
    DeleteQueue: h<{ queue: string }>("DeleteQueue", async (req, caller) => {
      requireAnyAdmin(caller);
      checkQueueName(req.queue);
      requirePermissionOn(caller, "admin", req.queue);
      await scheduler.deleteQueue(req.queue);
      return {};
    }),
    ListQueues: adminAll("ListQueues", async () => ({
      queues: (await scheduler.listQueues()).map((q) => ({
        name: q.name,
        depth: q.depth,
        inFlight: q.inFlight,
        activeConsumers: q.consumers,
      })),
    })),
    GetStats: adminAll<{ queue: string }>("GetStats", async (req) => {
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
          recentShare: k.recentShare,
          fairShare: k.fairShare,
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
    SetConfig: adminAll<{ key: string; value: string }>("SetConfig", async (req) => {
      await scheduler.setConfig(req.key, req.value);
      return {};
    }),
    GetConfig: adminAll<{ key: string }>("GetConfig", async (req) => ({
      value: await scheduler.getConfig(req.key),
    })),
    ListConfig: adminAll<{ prefix: string }>("ListConfig", async (req) => {
      const entries = await scheduler.listConfig(req.prefix);
      return {
        entries: entries.map(([key, value]) => ({ key, value })),
        totalCount: entries.length,
      };
    }),
    Redrive: adminAll<{ dlqQueue: string; count: unknown }>("Redrive", async (req) => {
      checkQueueName(req.dlqQueue, "dlq_queue name");
      return { redriven: await scheduler.redrive(req.dlqQueue, toNumber(req.count)) };
    }),
    CreateApiKey: h<{ name: string; expiresAtMs: unknown; isSuperadmin: boolean }>(
      "CreateApiKey",
      async (req, caller) => {
        const k = await keys.create(caller, {
          name: req.name,
          expiresAtMs: toNumber(req.expiresAtMs),
          isSuperadmin: req.isSuperadmin,
        });
        return { keyId: k.keyId, key: k.token, isSuperadmin: k.isSuperadmin };
      },
    ),
    RevokeApiKey: h<{ keyId: string }>("RevokeApiKey", async (req, caller) => {
      await keys.revoke(caller, req.keyId);
      return {};
    }),
    ListApiKeys: h("ListApiKeys", async (_req, caller) => ({ keys: await keys.list(caller) })),
    SetAcl: h<{ keyId: string; permissions: AclPermissionMsg[] }>(
      "SetAcl",
      async (req, caller) => {
        const perms = req.permissions.map((p) => ({ kind: p.kind, pattern: p.pattern }));
        await keys.setAcl(caller, req.keyId, perms);
        return {};
      },
    ),
    GetAcl: h<{ keyId: string }>("GetAcl", async (req, caller) => {
      const acl = await keys.getAcl(caller, req.keyId);
      return { keyId: acl.keyId, permissions: acl.permissions, isSuperadmin: acl.isSuperadmin };
    }),
  };
}
