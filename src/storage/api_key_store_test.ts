import assert from "node:assert/strict";
import { type ApiKeyRecord, KvApiKeyStore } from "./api_key_store.ts";
import { Keys } from "./keys.ts";
import { StorageError, UnavailableError } from "../core/errors.ts";

function record(keyId: string, tokenHash = "h-" + keyId): ApiKeyRecord {
  return {
    keyId,
    name: "n-" + keyId,
    tokenHash,
    createdAtMs: 1,
    expiresAtMs: 0,
    isSuperadmin: false,
    permissions: [],
  };
}

async function withStore(fn: (s: KvApiKeyStore, kv: Deno.Kv) => Promise<void>): Promise<void> {
  const kv = await Deno.openKv(":memory:");
  try {
    await fn(new KvApiKeyStore(kv), kv);
  } finally {
    kv.close();
  }
}

Deno.test("api keys: create, find by hash, get", () =>
  withStore(async (s) => {
    await s.create(record("b"));
    assert.deepEqual(await s.findByTokenHash("h-b"), record("b"));
    assert.deepEqual(await s.get("b"), record("b"));
    assert.equal(await s.findByTokenHash("h-x"), undefined);
    assert.equal(await s.get("x"), undefined);
  }));

Deno.test("api keys: create refuses a duplicate id or token hash", () =>
  withStore(async (s) => {
    await s.create(record("a", "h1"));
    await assert.rejects(s.create(record("a", "h2")), StorageError);
    await assert.rejects(s.create(record("b", "h1")), StorageError);
    assert.deepEqual((await s.list()).map((r) => r.keyId), ["a"]);
  }));

Deno.test("api keys: list is ascending by key id", () =>
  withStore(async (s) => {
    for (const id of ["c", "a", "b"]) await s.create(record(id));
    assert.deepEqual((await s.list()).map((r) => r.keyId), ["a", "b", "c"]);
  }));

Deno.test("api keys: delete removes the record and its token index", () =>
  withStore(async (s, kv) => {
    await s.create(record("a"));
    assert.equal(await s.delete("a"), true);
    assert.equal(await s.findByTokenHash("h-a"), undefined);
    assert.equal((await kv.get(Keys.apiKeyHash("h-a"))).value, null);
    assert.equal(await s.delete("a"), false);
  }));

Deno.test("api keys: setPermissions replaces the list and keeps the rest", () =>
  withStore(async (s) => {
    const r = { ...record("a"), isSuperadmin: true };
    await s.create(r);
    const perms = [{ kind: "produce", pattern: "q" }, { kind: "admin", pattern: "x.*" }];
    assert.equal(await s.setPermissions("a", perms), true);
    assert.deepEqual(await s.findByTokenHash("h-a"), { ...r, permissions: perms });
    assert.equal(await s.setPermissions("a", []), true);
    assert.deepEqual((await s.get("a"))!.permissions, []);
    assert.equal(await s.setPermissions("missing", perms), false);
  }));

Deno.test("api keys: concurrent revoke and ACL update never resurrect a key", () =>
  withStore(async (s) => {
    await s.create(record("a"));
    const perms = [{ kind: "produce", pattern: "*" }];
    const results = await Promise.all([
      s.setPermissions("a", perms),
      s.delete("a"),
      s.setPermissions("a", perms),
    ]);
    assert.equal(results[1], true);
    assert.equal(await s.get("a"), undefined);
    assert.equal(await s.findByTokenHash("h-a"), undefined);
  }));

Deno.test("api keys: key records stay out of the runtime config namespace", () =>
  withStore(async (s, kv) => {
    await s.create(record("a"));
    const cfg = [];
    for await (const e of kv.list({ prefix: Keys.configPrefix })) cfg.push(e);
    assert.equal(cfg.length, 0);
  }));

Deno.test("api keys: a stale index entry does not authenticate", () =>
  withStore(async (s, kv) => {
    await s.create(record("a", "h1"));
    await kv.set(Keys.apiKeyHash("h2"), "a");
    assert.equal(await s.findByTokenHash("h2"), undefined);
  }));

Deno.test("api keys: a closed store reports shutdown; KV failures become StorageError", async () => {
  const kv = await Deno.openKv(":memory:");
  const s = new KvApiKeyStore(kv);
  s.close();
  await assert.rejects(s.get("a"), UnavailableError);
  kv.close();
  const s2 = new KvApiKeyStore(kv);
  await assert.rejects(s2.get("a"), StorageError);
});
