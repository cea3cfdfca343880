import assert from "node:assert/strict";
import { ApiKeyAdmin } from "./key_admin.ts";
import { BOOTSTRAP_CALLER, type Caller, OPEN_CALLER } from "./acl.ts";
import { hashToken } from "./token.ts";
import { MemoryApiKeyStore } from "./test_util.ts";
import { ManualClock } from "../core/clock.ts";
import { FilaError } from "../core/errors.ts";
import { silentLogger } from "../core/log.ts";

function setup() {
  const store = new MemoryApiKeyStore();
  const clock = new ManualClock(5_000);
  return { store, clock, admin: new ApiKeyAdmin(store, clock, silentLogger) };
}

function key(perms: string[], isSuperadmin = false): Caller {
  return {
    kind: "key",
    keyId: "caller",
    isSuperadmin,
    permissions: perms.map((p) => ({ kind: p.split(":")[0], pattern: p.split(":")[1] })),
  };
}

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "OK";
  } catch (e) {
    assert.ok(e instanceof FilaError, String(e));
    return `${e.code} ${e.message}`;
  }
}

const NO_ADMIN = "PERMISSION_DENIED key does not have admin permission";
const NOT_FOUND = "NOT_FOUND api key not found";

Deno.test("create: stores only the hash and returns the token once", async () => {
  const { admin, store } = setup();
  const k = await admin.create(BOOTSTRAP_CALLER, { name: "n", expiresAtMs: 0, isSuperadmin: true });
  assert.match(k.keyId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.match(k.token, /^[0-9a-f]{32}$/);
  assert.equal(k.isSuperadmin, true);
  const rec = store.records.get(k.keyId)!;
  assert.equal(rec.tokenHash, hashToken(k.token));
  assert.equal(rec.createdAtMs, 5_000);
  assert.ok(!JSON.stringify(rec).includes(k.token));
  assert.deepEqual(rec.permissions, []);
});

Deno.test("create: check order any-admin → name → superadmin", async () => {
  const { admin } = setup();
  const req = (name: string, isSuperadmin = false) => ({ name, expiresAtMs: 0, isSuperadmin });
  const table: Array<[Caller, ReturnType<typeof req>, string]> = [
    [key([]), req("", true), NO_ADMIN],
    [key(["admin:orders"]), req("", true), "INVALID_ARGUMENT name must not be empty"],
    [
      key(["admin:*"]),
      req("x", true),
      "PERMISSION_DENIED only superadmin keys can create other superadmin keys",
    ],
    [key(["admin:orders"]), req("x"), "OK"],
    [key([], true), req("x", true), "OK"],
    [OPEN_CALLER, req("x", true), "OK"],
  ];
  for (const [caller, r, want] of table) {
    assert.equal(await outcome(admin.create(caller, r)), want, JSON.stringify([caller, r]));
  }
});

Deno.test("create: a past expiry is accepted", async () => {
  const { admin, store } = setup();
  const k = await admin.create(OPEN_CALLER, { name: "x", expiresAtMs: 1, isSuperadmin: false });
  assert.equal(store.records.get(k.keyId)!.expiresAtMs, 1);
});

Deno.test("revoke: admin-all → key_id → exists", async () => {
  const { admin } = setup();
  const k = await admin.create(OPEN_CALLER, { name: "x", expiresAtMs: 0, isSuperadmin: false });
  assert.equal(await outcome(admin.revoke(key(["admin:orders"]), "")), NO_ADMIN);
  assert.equal(
    await outcome(admin.revoke(key(["admin:*"]), "")),
    "INVALID_ARGUMENT key_id must not be empty",
  );
  assert.equal(await outcome(admin.revoke(key(["admin:*"]), "nope")), NOT_FOUND);
  assert.equal(await outcome(admin.revoke(key(["admin:*"]), k.keyId)), "OK");
  assert.equal(await outcome(admin.revoke(key(["admin:*"]), k.keyId)), NOT_FOUND);
});

Deno.test("list: admin-all; no tokens or hashes", async () => {
  const { admin } = setup();
  await admin.create(OPEN_CALLER, { name: "a", expiresAtMs: 7, isSuperadmin: false });
  await admin.create(OPEN_CALLER, { name: "b", expiresAtMs: 0, isSuperadmin: true });
  assert.equal(await outcome(admin.list(key(["admin:x"]))), NO_ADMIN);
  const keys = await admin.list(key(["admin:*"]));
  assert.equal(keys.length, 2);
  assert.deepEqual(keys.map((k) => k.keyId), keys.map((k) => k.keyId).sort());
  for (const k of keys) {
    assert.deepEqual(Object.keys(k).sort(), [
      "createdAtMs",
      "expiresAtMs",
      "isSuperadmin",
      "keyId",
      "name",
    ]);
  }
});

Deno.test("setAcl: check order any-admin → key_id → kinds → scope → exists", async () => {
  const { admin } = setup();
  const target = await admin.create(OPEN_CALLER, { name: "t", expiresAtMs: 0, isSuperadmin: true });
  const p = (...s: string[]) => s.map((x) => ({ kind: x.split(":")[0], pattern: x.split(":")[1] }));
  const table: Array<[Caller, string, ReturnType<typeof p>, string]> = [
    [key(["produce:*"]), "", p("Admin:x"), NO_ADMIN],
    [key(["admin:orders"]), "", p("Admin:x"), "INVALID_ARGUMENT key_id must not be empty"],
    [
      key(["admin:orders"]),
      "nope",
      p("produce:payments", "Admin:x"),
      'INVALID_ARGUMENT invalid permission kind "Admin"; must be one of: produce, consume, admin',
    ],
    [
      key(["admin:orders"]),
      "nope",
      p("produce:payments"),
      "PERMISSION_DENIED one or more permissions exceed the caller's admin scope",
    ],
    [key(["admin:orders"]), "nope", p("produce:orders"), NOT_FOUND],
    [BOOTSTRAP_CALLER, "nope", p("produce:*"), NOT_FOUND],
    [key(["admin:orders"]), target.keyId, p("produce:orders", "consume:orders"), "OK"],
  ];
  for (const [caller, id, perms, want] of table) {
    assert.equal(await outcome(admin.setAcl(caller, id, perms)), want, JSON.stringify(perms));
  }
  assert.deepEqual(await admin.getAcl(BOOTSTRAP_CALLER, target.keyId), {
    keyId: target.keyId,
    permissions: p("produce:orders", "consume:orders"),
    isSuperadmin: true,
  });
  await admin.setAcl(BOOTSTRAP_CALLER, target.keyId, []);
  assert.deepEqual((await admin.getAcl(BOOTSTRAP_CALLER, target.keyId)).permissions, []);
});

Deno.test("getAcl: admin-all → key_id → exists", async () => {
  const { admin } = setup();
  assert.equal(await outcome(admin.getAcl(key(["admin:q"]), "")), NO_ADMIN);
  assert.equal(
    await outcome(admin.getAcl(key(["admin:*"]), "")),
    "INVALID_ARGUMENT key_id must not be empty",
  );
  assert.equal(await outcome(admin.getAcl(key(["admin:*"]), "nope")), NOT_FOUND);
});
