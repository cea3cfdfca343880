/** In-memory ApiKeyStore for unit tests, with an injectable failure. */
import type { ApiKeyRecord, ApiKeyStore, StoredPermission } from "../storage/api_key_store.ts";

export class MemoryApiKeyStore implements ApiKeyStore {
  readonly records = new Map<string, ApiKeyRecord>();
  failWith: Error | undefined;

  #check(): void {
    if (this.failWith) throw this.failWith;
  }

  create(record: ApiKeyRecord): Promise<void> {
    this.#check();
    this.records.set(record.keyId, structuredClone(record));
    return Promise.resolve();
  }

  findByTokenHash(tokenHash: string): Promise<ApiKeyRecord | undefined> {
    this.#check();
    const r = [...this.records.values()].find((r) => r.tokenHash === tokenHash);
    return Promise.resolve(r && structuredClone(r));
  }

  get(keyId: string): Promise<ApiKeyRecord | undefined> {
    this.#check();
    const r = this.records.get(keyId);
    return Promise.resolve(r && structuredClone(r));
  }

  list(): Promise<ApiKeyRecord[]> {
    this.#check();
    const all = [...this.records.values()].sort((a, b) => a.keyId < b.keyId ? -1 : 1);
    return Promise.resolve(structuredClone(all));
  }

  delete(keyId: string): Promise<boolean> {
    this.#check();
    return Promise.resolve(this.records.delete(keyId));
  }

  setPermissions(keyId: string, permissions: StoredPermission[]): Promise<boolean> {
    this.#check();
    const r = this.records.get(keyId);
    if (!r) return Promise.resolve(false);
    r.permissions = structuredClone(permissions);
    return Promise.resolve(true);
  }
}
