/**
 * The API-key and ACL RPCs (semantics.md §2.13–2.17), each with its checks in the spec's order.
 * Independent of gRPC: the server layer decodes the request and passes the authenticated caller.
 */
import type { Clock } from "../core/clock.ts";
import { InvalidArgumentError, Messages, NotFoundError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { ApiKeyRecord, ApiKeyStore } from "../storage/api_key_store.ts";
import {
  type Caller,
  firstInvalidKind,
  type Permission,
  requireAdminAll,
  requireAnyAdmin,
  requireMayCreateSuperadmin,
  requireWithinAdminScope,
} from "./acl.ts";
import { hashToken, newToken } from "./token.ts";

export interface NewKeyRequest {
  name: string;
  /** 0 = never expires. */
  expiresAtMs: number;
  isSuperadmin: boolean;
}

export interface NewKey {
  keyId: string;
  /** The plaintext token: returned here once and never again. */
  token: string;
  isSuperadmin: boolean;
}

/** What ListApiKeys may reveal: no token, no hash. */
export interface KeyInfo {
  keyId: string;
  name: string;
  createdAtMs: number;
  expiresAtMs: number;
  isSuperadmin: boolean;
}

export interface KeyAcl {
  keyId: string;
  permissions: Permission[];
  isSuperadmin: boolean;
}

function requireKeyId(keyId: string): void {
  if (keyId.length === 0) throw new InvalidArgumentError("key_id must not be empty");
}

export class ApiKeyAdmin {
  readonly #store: ApiKeyStore;
  readonly #clock: Clock;
  readonly #log: Logger;

  constructor(store: ApiKeyStore, clock: Clock, log: Logger) {
    this.#store = store;
    this.#clock = clock;
    this.#log = log;
  }

  async create(caller: Caller, req: NewKeyRequest): Promise<NewKey> {
    requireAnyAdmin(caller);
    if (req.name.length === 0) throw new InvalidArgumentError("name must not be empty");
    if (req.isSuperadmin) requireMayCreateSuperadmin(caller);
    const token = newToken();
    const record: ApiKeyRecord = {
      keyId: crypto.randomUUID(),
      name: req.name,
      tokenHash: hashToken(token),
      createdAtMs: this.#clock.now(),
      expiresAtMs: req.expiresAtMs,
      isSuperadmin: req.isSuperadmin,
      permissions: [],
    };
    await this.#store.create(record);
    this.#log.info("api key created", {
      key_id: record.keyId,
      superadmin: record.isSuperadmin,
      by: describe(caller),
    });
    return { keyId: record.keyId, token, isSuperadmin: record.isSuperadmin };
  }

  async revoke(caller: Caller, keyId: string): Promise<void> {
    requireAdminAll(caller);
    requireKeyId(keyId);
    if (!await this.#store.delete(keyId)) throw new NotFoundError(Messages.apiKeyNotFound);
    this.#log.info("api key revoked", { key_id: keyId, by: describe(caller) });
  }

  async list(caller: Caller): Promise<KeyInfo[]> {
    requireAdminAll(caller);
    return (await this.#store.list()).map((r) => ({
      keyId: r.keyId,
      name: r.name,
      createdAtMs: r.createdAtMs,
      expiresAtMs: r.expiresAtMs,
      isSuperadmin: r.isSuperadmin,
    }));
  }

  async setAcl(caller: Caller, keyId: string, permissions: Permission[]): Promise<void> {
    requireAnyAdmin(caller);
    requireKeyId(keyId);
    const bad = firstInvalidKind(permissions);
    if (bad !== undefined) throw new InvalidArgumentError(Messages.invalidPermissionKind(bad));
    requireWithinAdminScope(caller, permissions);
    const stored = permissions.map((p) => ({ kind: p.kind, pattern: p.pattern }));
    if (!await this.#store.setPermissions(keyId, stored)) {
      throw new NotFoundError(Messages.apiKeyNotFound);
    }
    this.#log.info("acl updated", {
      key_id: keyId,
      permissions: stored.length,
      by: describe(caller),
    });
  }

  async getAcl(caller: Caller, keyId: string): Promise<KeyAcl> {
    requireAdminAll(caller);
    requireKeyId(keyId);
    const rec = await this.#store.get(keyId);
    if (!rec) throw new NotFoundError(Messages.apiKeyNotFound);
    return { keyId: rec.keyId, permissions: rec.permissions, isSuperadmin: rec.isSuperadmin };
  }
}

/** For logs: who made a change, never with any secret. */
function describe(caller: Caller): string {
  return caller.kind === "key" ? caller.keyId : caller.kind;
}
