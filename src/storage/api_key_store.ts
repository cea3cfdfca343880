/**
 * API-key records in their own KV namespaces (decisions.md §i), next to but apart from the
 * queue data. Key writes are rare, so they commit on their own instead of joining the message
 * group commit; every change is one atomic commit guarded by versionstamps, so a revoke racing
 * an ACL update can never resurrect a key or leave the token index pointing at nothing.
 */
import { FilaError, Messages, StorageError, UnavailableError } from "../core/errors.ts";
import { Keys } from "./keys.ts";

export interface StoredPermission {
  kind: string;
  pattern: string;
}

/** The token itself is never stored: only its SHA-256 as lowercase hex. */
export interface ApiKeyRecord {
  keyId: string;
  name: string;
  tokenHash: string;
  createdAtMs: number;
  /** 0 = never expires. */
  expiresAtMs: number;
  isSuperadmin: boolean;
  permissions: StoredPermission[];
}

export interface ApiKeyStore {
  create(record: ApiKeyRecord): Promise<void>;
  findByTokenHash(tokenHash: string): Promise<ApiKeyRecord | undefined>;
  get(keyId: string): Promise<ApiKeyRecord | undefined>;
  /** Ascending by key id. */
  list(): Promise<ApiKeyRecord[]>;
  /** False when no such key exists. */
  delete(keyId: string): Promise<boolean>;
  /** Replaces the permission list; false when no such key exists. */
  setPermissions(keyId: string, permissions: StoredPermission[]): Promise<boolean>;
}

/** Versionstamp conflicts only arise from concurrent changes to one key; a few retries settle them. */
const MAX_ATTEMPTS = 8;

export class KvApiKeyStore implements ApiKeyStore {
  readonly #kv: Deno.Kv;
  #closed = false;

  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /**
   * Refuses further use; the KV handle belongs to the message store, which closes it during
   * shutdown.
   */
  close(): void {
    this.#closed = true;
  }

  create(record: ApiKeyRecord): Promise<void> {
    return this.#run(async () => {
      const r = await this.#kv.atomic()
        .check({ key: Keys.apiKey(record.keyId), versionstamp: null })
        .check({ key: Keys.apiKeyHash(record.tokenHash), versionstamp: null })
        .set(Keys.apiKey(record.keyId), toStored(record))
        .set(Keys.apiKeyHash(record.tokenHash), record.keyId)
        .commit();
      if (!r.ok) throw new StorageError("api key id or token already in use");
    });
  }

  findByTokenHash(tokenHash: string): Promise<ApiKeyRecord | undefined> {
    return this.#run(async () => {
      const idx = await this.#kv.get<string>(Keys.apiKeyHash(tokenHash));
      if (idx.value === null) return undefined;
      const rec = await this.#kv.get<ApiKeyRecord>(Keys.apiKey(idx.value));
      // A record whose hash differs would mean a stale index entry: never let it authenticate.
      if (rec.value === null || rec.value.tokenHash !== tokenHash) return undefined;
      return toStored(rec.value);
    });
  }

  get(keyId: string): Promise<ApiKeyRecord | undefined> {
    return this.#run(async () => {
      const rec = await this.#kv.get<ApiKeyRecord>(Keys.apiKey(keyId));
      return rec.value === null ? undefined : toStored(rec.value);
    });
  }

  list(): Promise<ApiKeyRecord[]> {
    return this.#run(async () => {
      const out: ApiKeyRecord[] = [];
      for await (const e of this.#kv.list<ApiKeyRecord>({ prefix: Keys.apiKeyPrefix })) {
        out.push(toStored(e.value));
      }
      return out;
    });
  }

  delete(keyId: string): Promise<boolean> {
    return this.#update(keyId, (op, rec) => {
      op.delete(Keys.apiKey(keyId)).delete(Keys.apiKeyHash(rec.tokenHash));
    });
  }

  setPermissions(keyId: string, permissions: StoredPermission[]): Promise<boolean> {
    return this.#update(keyId, (op, rec) => {
      op.set(Keys.apiKey(keyId), toStored({ ...rec, permissions }));
    });
  }

  /** Read-check-write of one key record; false when it does not exist. */
  #update(
    keyId: string,
    mutate: (op: Deno.AtomicOperation, rec: ApiKeyRecord) => void,
  ): Promise<boolean> {
    return this.#run(async () => {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const cur = await this.#kv.get<ApiKeyRecord>(Keys.apiKey(keyId));
        if (cur.value === null) return false;
        const op = this.#kv.atomic().check(cur);
        mutate(op, cur.value);
        if ((await op.commit()).ok) return true;
      }
      throw new StorageError(`api key ${keyId} is being changed concurrently`);
    });
  }

  async #run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new UnavailableError(Messages.shuttingDown);
    try {
      return await fn();
    } catch (e) {
      if (e instanceof FilaError) throw e;
      throw new StorageError(String((e as Error)?.message ?? e), { cause: e });
    }
  }
}

/** Copies exactly the record's fields, so nothing extra is persisted or handed out. */
function toStored(r: ApiKeyRecord): ApiKeyRecord {
  return {
    keyId: r.keyId,
    name: r.name,
    tokenHash: r.tokenHash,
    createdAtMs: r.createdAtMs,
    expiresAtMs: r.expiresAtMs,
    isSuperadmin: r.isSuperadmin,
    permissions: r.permissions.map((p) => ({ kind: p.kind, pattern: p.pattern })),
  };
}
