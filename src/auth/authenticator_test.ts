import assert from "node:assert/strict";
import { Authenticator } from "./authenticator.ts";
import { hashToken } from "./token.ts";
import { MemoryApiKeyStore } from "./test_util.ts";
import { ManualClock } from "../core/clock.ts";
import { FilaError, UnavailableError } from "../core/errors.ts";
import type { ApiKeyRecord } from "../storage/api_key_store.ts";

const BOOT = "test-bootstrap-key";

function setup(bootstrapKey: string | null = BOOT) {
  const store = new MemoryApiKeyStore();
  const clock = new ManualClock(1_000_000);
  const auth = new Authenticator({ bootstrapKey: bootstrapKey ?? undefined, store, clock });
  const add = (token: string, extra: Partial<ApiKeyRecord> = {}) =>
    store.create({
      keyId: "id-" + token,
      name: token,
      tokenHash: hashToken(token),
      createdAtMs: 0,
      expiresAtMs: 0,
      isSuperadmin: false,
      permissions: [{ kind: "produce", pattern: "q" }],
      ...extra,
    });
  return { store, clock, auth, add };
}

async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof FilaError, String(e));
    return `${e.code} ${e.message}`;
  }
  return "OK";
}

const UNAUTH = "UNAUTHENTICATED invalid or missing api key";

Deno.test("authentication disabled: every request is the open caller", async () => {
  const { auth } = setup(null);
  assert.equal(auth.enabled, false);
  assert.deepEqual(await auth.authenticate(undefined), { kind: "open" });
  assert.deepEqual(await auth.authenticate("garbage"), { kind: "open" });
});

Deno.test("empty bootstrap key counts as unset", () => {
  assert.equal(setup("").auth.enabled, false);
});

Deno.test("header format: exactly 'Bearer ' then the token", async () => {
  const { auth } = setup();
  const table: Array<[string | undefined, string]> = [
    [undefined, UNAUTH],
    ["", UNAUTH],
    [BOOT, UNAUTH],
    [`bearer ${BOOT}`, UNAUTH],
    [`Bearer${BOOT}`, UNAUTH],
    [`Bearer  ${BOOT}`, UNAUTH],
    [`Basic ${BOOT}`, UNAUTH],
    [`Bearer ${BOOT} `, UNAUTH],
    ["Bearer ", UNAUTH],
    [`Bearer ${BOOT}`, "OK"],
  ];
  for (const [header, want] of table) {
    assert.equal(await failure(auth.authenticate(header)), want, String(header));
  }
});

Deno.test("the bootstrap key is a superadmin", async () => {
  const { auth } = setup();
  assert.deepEqual(await auth.authenticate(`Bearer ${BOOT}`), { kind: "bootstrap" });
});

Deno.test("stored keys authenticate by token hash with their permissions", async () => {
  const { auth, add } = setup();
  await add("tok1", { isSuperadmin: true });
  assert.deepEqual(await auth.authenticate("Bearer tok1"), {
    kind: "key",
    keyId: "id-tok1",
    isSuperadmin: true,
    permissions: [{ kind: "produce", pattern: "q" }],
  });
  assert.equal(await failure(auth.authenticate("Bearer tok2")), UNAUTH);
  assert.equal(await failure(auth.authenticate(`Bearer ${hashToken("tok1")}`)), UNAUTH);
});

Deno.test("expiry: a key is rejected once expires_at_ms is in the past", async () => {
  const { auth, add, clock } = setup();
  await add("t", { expiresAtMs: clock.now() + 10 });
  assert.equal(await failure(auth.authenticate("Bearer t")), "OK");
  clock.advance(10);
  assert.equal(await failure(auth.authenticate("Bearer t")), "OK");
  clock.advance(1);
  assert.equal(await failure(auth.authenticate("Bearer t")), UNAUTH);
});

Deno.test("revocation and ACL changes apply to the next request", async () => {
  const { auth, add, store } = setup();
  await add("t");
  await auth.authenticate("Bearer t");
  await store.setPermissions("id-t", []);
  const c = await auth.authenticate("Bearer t");
  assert.ok(c.kind === "key" && c.permissions.length === 0);
  await store.delete("id-t");
  assert.equal(await failure(auth.authenticate("Bearer t")), UNAUTH);
});

Deno.test("storage failure → INTERNAL; the bootstrap key still works", async () => {
  const { auth, store } = setup();
  store.failWith = new Error("disk on fire");
  assert.equal(
    await failure(auth.authenticate("Bearer t")),
    "INTERNAL authentication service unavailable",
  );
  assert.equal(await failure(auth.authenticate(`Bearer ${BOOT}`)), "OK");
  store.failWith = new UnavailableError("broker is shutting down");
  assert.equal(await failure(auth.authenticate("Bearer t")), "UNAVAILABLE broker is shutting down");
});
