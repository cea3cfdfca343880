// conformance.md §13 ACL (AC-01 … AC-21). The CLI scenarios (AC-06, 07, 09, 10, 11, 16) are
// covered in cli/; here they are checked through their gRPC equivalents. Also the per-RPC order
// of ACL checks against the other checks (semantics.md §2).
import assert from "node:assert/strict";
import { assertStatus, assertStreamStatus, type FilaClient, grpc } from "./client.ts";
import {
  AUTH_TOML,
  BOOTSTRAP_KEY,
  createKey,
  getAcl,
  keyClient,
  keyWith,
  listKeys,
  revokeKey,
  setAcl,
} from "./auth_helpers.ts";
import { type Broker, fileBroker, PROMPT_MS, scenario, uniq } from "./harness.ts";

const P = { needsProcess: true };
const { PERMISSION_DENIED, INVALID_ARGUMENT, NOT_FOUND } = grpc.status;
const NO_ADMIN = "key does not have admin permission";
const SCOPE = "one or more permissions exceed the caller's admin scope";
const ZERO_ID = "00000000-0000-0000-0000-000000000000";
const denied = (kind: string, q: string) => `key does not have ${kind} permission on queue "${q}"`;

function aclBroker(): Promise<Broker> {
  return fileBroker("acl", { toml: AUTH_TOML });
}

async function boot(): Promise<FilaClient> {
  return keyClient((await aclBroker()).addr, BOOTSTRAP_KEY);
}

/** A fresh queue created by the bootstrap key. */
async function queue(admin: FilaClient, prefix = "q"): Promise<string> {
  const q = uniq(prefix);
  await admin.createQueue(q);
  return q;
}

scenario("AC-01 a key without permissions cannot enqueue", async () => {
  const b = await boot();
  const q = await queue(b);
  const { client } = await keyWith(b, []);
  await assertStatus(client.enqueue(q), PERMISSION_DENIED, denied("produce", q));
}, P);

scenario("AC-02 produce:<q> may enqueue to <q>", async () => {
  const b = await boot();
  const q = await queue(b, "produce-test-q");
  const { client } = await keyWith(b, [`produce:${q}`]);
  await client.enqueue(q);
}, P);

scenario("AC-03 produce:queue-a allows queue-a and refuses queue-b", async () => {
  const b = await boot();
  const qa = await queue(b, "queue-a");
  const qb = await queue(b, "queue-b");
  const { client } = await keyWith(b, [`produce:${qa}`]);
  await client.enqueue(qa);
  await assertStatus(client.enqueue(qb), PERMISSION_DENIED, denied("produce", qb));
}, P);

scenario("AC-04 produce:* may enqueue to any queue", async () => {
  const b = await boot();
  const { client } = await keyWith(b, ["produce:*"]);
  await client.enqueue(await queue(b));
  await client.enqueue(await queue(b));
}, P);

scenario("AC-05 a superadmin key without permissions can enqueue", async () => {
  const b = await boot();
  const q = await queue(b);
  const { client } = await keyWith(b, [], { is_superadmin: true });
  await client.enqueue(q);
}, P);

scenario("AC-06 (gRPC) a produce:* key cannot create a queue", async () => {
  const b = await boot();
  const { client } = await keyWith(b, ["produce:*"]);
  await assertStatus(client.createQueue(uniq("x")), PERMISSION_DENIED, NO_ADMIN);
}, P);

scenario("AC-07 (gRPC) SetAcl then GetAcl returns the permissions in stored order", async () => {
  const b = await boot();
  const k = await createKey(b, "ac07");
  await setAcl(b, k.key_id, ["produce:orders", "consume:orders", "admin:x.*"]);
  assert.deepEqual(await getAcl(b, k.key_id), {
    key_id: k.key_id,
    permissions: [
      { kind: "produce", pattern: "orders" },
      { kind: "consume", pattern: "orders" },
      { kind: "admin", pattern: "x.*" },
    ],
    is_superadmin: false,
  });
  await setAcl(b, k.key_id, []);
  assert.deepEqual((await getAcl(b, k.key_id)).permissions, []);
}, P);

scenario("AC-08 Nack is refused before the message is looked up", async () => {
  const b = await boot();
  const q = await queue(b, "nack-acl-q");
  const { client } = await keyWith(b, [`produce:${q}`]);
  await assertStatus(client.nack(q, ZERO_ID), PERMISSION_DENIED, denied("consume", q));
  await assertStatus(client.nack(q, "not-a-uuid"), PERMISSION_DENIED, denied("consume", q));
  await assertStatus(client.nack(q, ""), PERMISSION_DENIED, denied("consume", q));
}, P);

scenario("AC-09 (gRPC) SetAcl refuses the kind 'read'", async () => {
  const b = await boot();
  const k = await createKey(b, "ac09");
  await assertStatus(
    setAcl(b, k.key_id, ["read:some-queue"]),
    INVALID_ARGUMENT,
    'invalid permission kind "read"; must be one of: produce, consume, admin',
  );
}, P);

scenario("AC-10 (gRPC) an admin:* key can create API keys", async () => {
  const b = await boot();
  const { client } = await keyWith(b, ["admin:*"]);
  const k = await createKey(client, "x");
  assert.match(k.key, /^[0-9a-f]{32}$/);
}, P);

scenario("AC-11 (gRPC) a key without permissions cannot create API keys", async () => {
  const b = await boot();
  const { client } = await keyWith(b, []);
  await assertStatus(createKey(client, "x"), PERMISSION_DENIED, NO_ADMIN);
}, P);

scenario("AC-12 admin:orders.* can create orders.us but not payments", async () => {
  const b = await boot();
  const p = uniq("orders");
  const { client } = await keyWith(b, [`admin:${p}.*`]);
  await client.createQueue(`${p}.us`);
  const other = uniq("payments");
  await assertStatus(client.createQueue(other), PERMISSION_DENIED, denied("admin", other));
  await assertStatus(client.createQueue(p), PERMISSION_DENIED, denied("admin", p));
  await client.deleteQueue(`${p}.us`);
}, P);

scenario(
  "AC-13 admin:orders grants produce/consume:orders to a key that can then enqueue",
  async () => {
    const b = await boot();
    const q = await queue(b, "orders");
    const admin = await keyWith(b, [`admin:${q}`]);
    const target = await createKey(b, "target");
    await setAcl(admin.client, target.key_id, [`produce:${q}`, `consume:${q}`, `admin:${q}`]);
    const t = keyClient(b.addr, target.key);
    const id = await t.enqueue(q);
    const c = t.consume(q);
    assert.equal((await c.expectNext(PROMPT_MS)).id, id);
    await t.ack(q, id);
    c.cancel();
  },
  P,
);

scenario("AC-14 admin:orders cannot grant produce:payments or produce:*", async () => {
  const b = await boot();
  const admin = await keyWith(b, ["admin:orders"]);
  const target = await createKey(b, "target");
  await assertStatus(
    setAcl(admin.client, target.key_id, ["produce:payments"]),
    PERMISSION_DENIED,
    SCOPE,
  );
  await assertStatus(setAcl(admin.client, target.key_id, ["produce:*"]), PERMISSION_DENIED, SCOPE);
  await assertStatus(
    setAcl(admin.client, target.key_id, ["produce:orders", "produce:payments"]),
    PERMISSION_DENIED,
    SCOPE,
  );
  assert.deepEqual((await getAcl(b, target.key_id)).permissions, []);
}, P);

scenario("AC-15 only superadmins create superadmins", async () => {
  const b = await boot();
  const admin = await keyWith(b, ["admin:*"]);
  await assertStatus(
    createKey(admin.client, "x", { is_superadmin: true }),
    PERMISSION_DENIED,
    "only superadmin keys can create other superadmin keys",
  );
  const sa = await keyWith(b, [], { is_superadmin: true });
  const k = await createKey(sa.client, "x", { is_superadmin: true });
  assert.equal(k.is_superadmin, true);
  await keyClient(b.addr, k.key).listQueues();
}, P);

scenario("AC-16 (gRPC) GetAcl of a superadmin key reports is_superadmin", async () => {
  const b = await boot();
  const k = await createKey(b, "sa", { is_superadmin: true });
  assert.deepEqual(await getAcl(b, k.key_id), {
    key_id: k.key_id,
    permissions: [],
    is_superadmin: true,
  });
}, P);

scenario(
  "AC-17 admin:orders is not admin-all: GetStats and the other global RPCs are refused",
  async () => {
    const b = await boot();
    const q = await queue(b, "orders");
    const { client, key } = await keyWith(b, [`admin:${q}`]);
    const calls: Array<[string, () => Promise<unknown>]> = [
      ["GetStats", () => client.getStats(q)],
      ["ListQueues", () => client.listQueues()],
      ["SetConfig", () => client.setConfig("k", "v")],
      ["GetConfig", () => client.getConfig("k")],
      ["ListConfig", () => client.listConfig()],
      ["Redrive", () => client.redrive(`${q}.dlq`)],
      ["RevokeApiKey", () => revokeKey(client, key.key_id)],
      ["ListApiKeys", () => listKeys(client)],
      ["GetAcl", () => getAcl(client, key.key_id)],
    ];
    for (const [name, call] of calls) {
      await assertStatus(call(), PERMISSION_DENIED, NO_ADMIN).catch((e) => {
        throw new Error(`${name}: ${e.message}`);
      });
    }
    // admin-all is checked before field validation.
    await assertStatus(client.getStats(""), PERMISSION_DENIED, NO_ADMIN);
    await assertStatus(client.setConfig("", "v"), PERMISSION_DENIED, NO_ADMIN);
    await assertStatus(revokeKey(client, ""), PERMISSION_DENIED, NO_ADMIN);
    // ... and admin:* passes them.
    const all = await keyWith(b, ["admin:*"]);
    await all.client.getStats(q);
    await all.client.listQueues();
    await listKeys(all.client);
  },
  P,
);

scenario("AC-18 produce:orders.* allows orders.us and orders.us.east, refuses orders", async () => {
  const b = await boot();
  const p = uniq("orders");
  for (const q of [p, `${p}.us`, `${p}.us.east`]) await b.createQueue(q);
  const { client } = await keyWith(b, [`produce:${p}.*`]);
  await client.enqueue(`${p}.us`);
  await client.enqueue(`${p}.us.east`);
  await assertStatus(client.enqueue(p), PERMISSION_DENIED, denied("produce", p));
}, P);

scenario("AC-19 a produce-only key cannot ack, nack or consume", async () => {
  const b = await boot();
  const q = await queue(b);
  const { client } = await keyWith(b, [`produce:${q}`]);
  const id = await client.enqueue(q);
  await assertStatus(client.ack(q, id), PERMISSION_DENIED, denied("consume", q));
  await assertStatus(client.nack(q, id), PERMISSION_DENIED, denied("consume", q));
  const c = client.consume(q);
  assertStreamStatus(await c.waitEnd(PROMPT_MS), PERMISSION_DENIED, denied("consume", q));
}, P);

scenario(
  "AC-20 admin:orders.* may grant consume:orders.eu and admin:orders.eu.* but not consume:orders",
  async () => {
    const b = await boot();
    const admin = await keyWith(b, ["admin:orders.*"]);
    const target = await createKey(b, "target");
    await setAcl(admin.client, target.key_id, ["consume:orders.eu", "admin:orders.eu.*"]);
    await setAcl(admin.client, target.key_id, ["admin:orders.*"]);
    await assertStatus(
      setAcl(admin.client, target.key_id, ["consume:orders"]),
      PERMISSION_DENIED,
      SCOPE,
    );
    assert.deepEqual((await getAcl(b, target.key_id)).permissions, [{
      kind: "admin",
      pattern: "orders.*",
    }]);
  },
  P,
);

scenario("AC-21 SetAcl: invalid kind 'Admin'; unknown key id", async () => {
  const b = await boot();
  const k = await createKey(b, "ac21");
  await assertStatus(
    setAcl(b, k.key_id, ["produce:q", "Admin:q"]),
    INVALID_ARGUMENT,
    'invalid permission kind "Admin"; must be one of: produce, consume, admin',
  );
  const sa = await keyWith(b, [], { is_superadmin: true });
  await assertStatus(setAcl(sa.client, ZERO_ID, ["produce:q"]), NOT_FOUND, "api key not found");
  await assertStatus(setAcl(sa.client, "", []), INVALID_ARGUMENT, "key_id must not be empty");
}, P);

scenario("check order: queue name rules come before produce/consume-on", async () => {
  const b = await boot();
  const { client } = await keyWith(b, []);
  await assertStatus(client.enqueue(""), INVALID_ARGUMENT, "queue name must not be empty");
  await assertStatus(client.ack("", ZERO_ID), INVALID_ARGUMENT, "queue name must not be empty");
  const c = client.consume("");
  assertStreamStatus(await c.waitEnd(PROMPT_MS), INVALID_ARGUMENT, "queue name must not be empty");
}, P);

scenario("check order: ACL comes before the queue lookup", async () => {
  const b = await boot();
  const missing = uniq("missing");
  const { client } = await keyWith(b, []);
  await assertStatus(client.enqueue(missing), PERMISSION_DENIED, denied("produce", missing));
  const c = client.consume(missing);
  assertStreamStatus(await c.waitEnd(PROMPT_MS), PERMISSION_DENIED, denied("consume", missing));
  const admin = await keyWith(b, ["admin:other"]);
  await assertStatus(
    admin.client.deleteQueue(missing),
    PERMISSION_DENIED,
    denied("admin", missing),
  );
}, P);

scenario("check order: CreateQueue is any-admin → name rules → admin-on(name)", async () => {
  const b = await boot();
  const none = await keyWith(b, ["produce:*"]);
  await assertStatus(none.client.createQueue(""), PERMISSION_DENIED, NO_ADMIN);
  await assertStatus(none.client.deleteQueue(""), PERMISSION_DENIED, NO_ADMIN);
  const some = await keyWith(b, ["admin:orders"]);
  await assertStatus(some.client.createQueue(""), INVALID_ARGUMENT, "queue name must not be empty");
  await assertStatus(
    some.client.createQueue("x".repeat(252)),
    INVALID_ARGUMENT,
    'queue name must not exceed 251 bytes (its dead-letter queue name adds ".dlq")',
  );
  await assertStatus(some.client.deleteQueue(""), INVALID_ARGUMENT, "queue name must not be empty");
  const q = uniq("nope");
  await assertStatus(
    some.client.createQueue(q, { visibility_timeout_ms: 5 }),
    PERMISSION_DENIED,
    denied("admin", q),
  );
}, P);

scenario("check order: CreateApiKey and SetAcl start with any-admin", async () => {
  const b = await boot();
  const none = await keyWith(b, ["produce:*", "consume:*"]);
  await assertStatus(createKey(none.client, ""), PERMISSION_DENIED, NO_ADMIN);
  await assertStatus(setAcl(none.client, "", ["bad:x"]), PERMISSION_DENIED, NO_ADMIN);
  const some = await keyWith(b, ["admin:orders"]);
  await assertStatus(createKey(some.client, ""), INVALID_ARGUMENT, "name must not be empty");
  // The kind check precedes delegation, which precedes the key lookup.
  await assertStatus(
    setAcl(some.client, ZERO_ID, ["produce:payments", "read:x"]),
    INVALID_ARGUMENT,
    'invalid permission kind "read"; must be one of: produce, consume, admin',
  );
  await assertStatus(setAcl(some.client, ZERO_ID, ["produce:payments"]), PERMISSION_DENIED, SCOPE);
  await assertStatus(setAcl(some.client, ZERO_ID, ["produce:orders"]), NOT_FOUND);
}, P);

scenario("a key with consume on a queue can consume, ack and nack there only", async () => {
  const b = await boot();
  const q = await queue(b);
  const other = await queue(b);
  const { client } = await keyWith(b, [`consume:${q}`]);
  const ids = [await b.enqueue(q), await b.enqueue(q)];
  const c = client.consume(q);
  const got = await c.take(2, PROMPT_MS);
  assert.deepEqual(got.map((m) => m.id).sort(), [...ids].sort());
  await client.ack(q, ids[0]);
  await client.nack(q, ids[1]);
  c.cancel();
  await assertStatus(client.enqueue(q), PERMISSION_DENIED, denied("produce", q));
  const c2 = client.consume(other);
  assertStreamStatus(await c2.waitEnd(PROMPT_MS), PERMISSION_DENIED, denied("consume", other));
}, P);
