// conformance.md §12 Authentication (AU-01 … AU-16, without the CLI parts of AU-05 and AU-12),
// the pipeline position of authentication (semantics.md §1.1), key storage apart from runtime
// config (decisions.md §i) and the API-key part of CR-06.
import assert from "node:assert/strict";
import {
  assertStatus,
  assertStreamStatus,
  type FilaClient,
  grpc,
  rawEnqueueRequest,
} from "./client.ts";
import {
  AUTH_TOML,
  BOOTSTRAP_KEY,
  createKey,
  getAcl,
  headerClient,
  keyClient,
  keyWith,
  listKeys,
  revokeKey,
  setAcl,
} from "./auth_helpers.ts";
import {
  type Broker,
  fileBroker,
  PROMPT_MS,
  scenario,
  sharedBroker,
  startBroker,
  uniq,
} from "./harness.ts";

const P = { needsProcess: true };
const UNAUTH = "invalid or missing api key";
const { UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND, INVALID_ARGUMENT, OUT_OF_RANGE } =
  grpc.status;
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The file's broker with `[auth] bootstrap_apikey = "test-bootstrap-key"`. */
function authBroker(): Promise<Broker> {
  return fileBroker("auth", { toml: AUTH_TOML });
}

async function bootstrap(): Promise<{ b: Broker; boot: FilaClient }> {
  const b = await authBroker();
  return { b, boot: keyClient(b.addr, BOOTSTRAP_KEY) };
}

/** Enqueue, Consume, Ack and Nack round trip with `client` on a fresh queue made by `admin`. */
async function roundTrip(admin: FilaClient, client: FilaClient, prefix: string): Promise<void> {
  const q = uniq(prefix);
  await admin.createQueue(q);
  const id1 = await client.enqueue(q, { payload: "a" });
  const id2 = await client.enqueue(q, { payload: "b" });
  const c = client.consume(q);
  const got = await c.take(2, PROMPT_MS);
  assert.deepEqual(got.map((m) => m.id).sort(), [id1, id2].sort());
  await client.ack(q, id1);
  await client.nack(q, id2, "again");
  c.cancel();
}

scenario("AU-01 without [auth] every RPC succeeds without authorization", async () => {
  const { client } = await sharedBroker();
  await roundTrip(client, client, "au01");
  const q = uniq("au01");
  await client.createQueue(q);
  await client.getStats(q);
  await client.listQueues();
  await client.setConfig(`au01.${q}`, "v");
  assert.equal(await client.getConfig(`au01.${q}`), "v");
  await client.listConfig("au01.");
  assert.equal(await client.redrive(`${q}.dlq`), 0);
  await client.deleteQueue(q);
  const k = await createKey(client, "au01");
  await setAcl(client, k.key_id, ["produce:x"]);
  assert.deepEqual((await getAcl(client, k.key_id)).permissions, [{
    kind: "produce",
    pattern: "x",
  }]);
  assert.ok((await listKeys(client)).some((i) => i.key_id === k.key_id));
  await revokeKey(client, k.key_id);
});

scenario(
  "AU-02 with [auth], Enqueue without a key to a missing queue is UNAUTHENTICATED",
  async () => {
    const { b } = await bootstrap();
    const anon = b.client();
    await assertStatus(anon.enqueue(uniq("missing"), { payload: "x" }), UNAUTHENTICATED, UNAUTH);
  },
  P,
);

scenario("AU-02 every FilaService and FilaAdmin RPC requires a key", async () => {
  const { b, boot } = await bootstrap();
  const q = uniq("au02");
  await boot.createQueue(q);
  const anon = b.client();
  const zero = "00000000-0000-0000-0000-000000000000";
  const calls: Array<[string, () => Promise<unknown>]> = [
    ["Enqueue", () => anon.enqueue(q)],
    ["Ack", () => anon.ack(q, zero)],
    ["Nack", () => anon.nack(q, zero)],
    ["CreateQueue", () => anon.createQueue(uniq("au02"))],
    ["DeleteQueue", () => anon.deleteQueue(q)],
    ["SetConfig", () => anon.setConfig("k", "v")],
    ["GetConfig", () => anon.getConfig("k")],
    ["ListConfig", () => anon.listConfig()],
    ["GetStats", () => anon.getStats(q)],
    ["Redrive", () => anon.redrive(`${q}.dlq`)],
    ["ListQueues", () => anon.listQueues()],
    ["CreateApiKey", () => createKey(anon, "x")],
    ["RevokeApiKey", () => revokeKey(anon, zero)],
    ["ListApiKeys", () => listKeys(anon)],
    ["SetAcl", () => setAcl(anon, zero, [])],
    ["GetAcl", () => getAcl(anon, zero)],
  ];
  for (const [name, call] of calls) {
    await assertStatus(call(), UNAUTHENTICATED, UNAUTH).catch((e) => {
      throw new Error(`${name}: ${e.message}`);
    });
  }
  const c = anon.consume(q);
  assertStreamStatus(await c.waitEnd(PROMPT_MS), UNAUTHENTICATED, UNAUTH);
  // The queue is untouched.
  assert.equal((await boot.getStats(q)).depth, 0);
}, P);

scenario(
  "AU-03 unknown token, lowercase 'bearer' and a missing space are UNAUTHENTICATED",
  async () => {
    const { b, boot } = await bootstrap();
    const q = uniq("au03");
    await boot.createQueue(q);
    const k = await createKey(boot, "au03", { is_superadmin: true });
    for (
      const value of [
        "Bearer 0123456789abcdef0123456789abcdef",
        `bearer ${k.key}`,
        `Bearer${k.key}`,
        `bearer ${BOOTSTRAP_KEY}`,
        `Bearer${BOOTSTRAP_KEY}`,
        `Bearer  ${k.key}`,
        k.key,
        "Bearer ",
      ]
    ) {
      await assertStatus(headerClient(b.addr, value).enqueue(q), UNAUTHENTICATED, UNAUTH);
    }
    await keyClient(b.addr, k.key).enqueue(q);
  },
  P,
);

scenario(
  "AU-04 the bootstrap key can CreateApiKey, CreateQueue, Enqueue, Consume and Ack",
  async () => {
    const { boot } = await bootstrap();
    const k = await createKey(boot, "au04");
    assert.match(k.key, /^[0-9a-f]{32}$/);
    await roundTrip(boot, boot, "au04");
  },
  P,
);

scenario(
  "AU-05 a superadmin key created with the bootstrap key can create a queue and enqueue",
  async () => {
    const { b, boot } = await bootstrap();
    const k = await createKey(boot, "au05", { is_superadmin: true });
    assert.equal(k.is_superadmin, true);
    const sa = keyClient(b.addr, k.key);
    await roundTrip(sa, sa, "au05");
  },
  P,
);

scenario("AU-06 a key that revokes itself gets UNAUTHENTICATED on its next request", async () => {
  const { boot } = await bootstrap();
  const { key, client } = await keyWith(boot, ["admin:*"]);
  await client.listQueues();
  await revokeKey(client, key.key_id);
  await assertStatus(client.listQueues(), UNAUTHENTICATED, UNAUTH);
}, P);

scenario(
  "AU-07 a revoked produce:* key fails its next Enqueue on the same connection",
  async () => {
    const { boot } = await bootstrap();
    const q = uniq("au07");
    await boot.createQueue(q);
    const sa = keyClient(boot.addr, (await createKey(boot, "sa", { is_superadmin: true })).key);
    const { key, client } = await keyWith(boot, ["produce:*"]);
    await client.enqueue(q);
    await revokeKey(sa, key.key_id);
    await assertStatus(client.enqueue(q), UNAUTHENTICATED, UNAUTH);
  },
  P,
);

scenario("AU-08 narrowing a key's ACL applies to its next request", async () => {
  const { boot } = await bootstrap();
  const q = uniq("perm-q");
  await boot.createQueue(q);
  const { key, client } = await keyWith(boot, [`produce:${q}`, `consume:${q}`]);
  await client.enqueue(q);
  await setAcl(boot, key.key_id, [`consume:${q}`]);
  await assertStatus(
    client.enqueue(q),
    PERMISSION_DENIED,
    `key does not have produce permission on queue "${q}"`,
  );
}, P);

scenario("AU-09 superadmin sa1 revokes superadmin sa2", async () => {
  const { b, boot } = await bootstrap();
  const sa1 = keyClient(b.addr, (await createKey(boot, "sa1", { is_superadmin: true })).key);
  const k2 = await createKey(boot, "sa2", { is_superadmin: true });
  const sa2 = keyClient(b.addr, k2.key);
  await sa2.listQueues();
  await revokeKey(sa1, k2.key_id);
  await assertStatus(sa2.listQueues(), UNAUTHENTICATED, UNAUTH);
}, P);

scenario("AU-10 an expired key is UNAUTHENTICATED; one expiring later works", async () => {
  const { b, boot } = await bootstrap();
  const past = await createKey(boot, "past", { expires_at_ms: Date.now() - 1000 });
  const future = await createKey(boot, "future", { expires_at_ms: Date.now() + 60_000 });
  for (const k of [past, future]) await setAcl(boot, k.key_id, ["admin:*"]);
  await assertStatus(keyClient(b.addr, past.key).listQueues(), UNAUTHENTICATED, UNAUTH);
  await keyClient(b.addr, future.key).listQueues();
}, P);

scenario("AU-10 a key stops working once its expiry passes", async () => {
  const { b, boot } = await bootstrap();
  const k = await createKey(boot, "soon", { expires_at_ms: Date.now() + 1500 });
  await setAcl(boot, k.key_id, ["admin:*"]);
  const c = keyClient(b.addr, k.key);
  await c.listQueues();
  await new Promise((r) => setTimeout(r, 1700));
  await assertStatus(c.listQueues(), UNAUTHENTICATED, UNAUTH);
}, P);

scenario("AU-11 FILA_BOOTSTRAP_APIKEY enables auth without [auth]", async () => {
  const b = await startBroker({ env: { FILA_BOOTSTRAP_APIKEY: "envkey" } });
  await assertStatus(b.client().listQueues(), UNAUTHENTICATED, UNAUTH);
  await keyClient(b.addr, "envkey").listQueues();
  assert.match(b.stderr(), /listening on .*auth=true/);
}, P);

scenario("AU-11 FILA_BOOTSTRAP_APIKEY wins over [auth] bootstrap_apikey", async () => {
  const b = await startBroker({
    toml: `[auth]\nbootstrap_apikey = "filekey"`,
    env: { FILA_BOOTSTRAP_APIKEY: "envkey" },
  });
  await keyClient(b.addr, "envkey").listQueues();
  await assertStatus(keyClient(b.addr, "filekey").listQueues(), UNAUTHENTICATED, UNAUTH);
}, P);

scenario("AU-11 an empty FILA_BOOTSTRAP_APIKEY counts as unset", async () => {
  const b = await startBroker({ env: { FILA_BOOTSTRAP_APIKEY: "" } });
  await b.client().listQueues();
  assert.match(b.stderr(), /listening on .*auth=false/);
}, P);

scenario(
  "AU-12 ListApiKeys: sorted by key_id, expired included, no bootstrap, no tokens",
  async () => {
    const b = await startBroker({ toml: AUTH_TOML });
    const boot = keyClient(b.addr, BOOTSTRAP_KEY);
    const created = [
      await createKey(boot, "one"),
      await createKey(boot, "expired", { expires_at_ms: Date.now() - 5000 }),
      await createKey(boot, "sa", { is_superadmin: true }),
      await createKey(boot, "later", { expires_at_ms: Date.now() + 3_600_000 }),
    ];
    const raw = await boot.unary("fila.v1.FilaAdmin", "ListApiKeys", {});
    const keys = (raw as { keys: Record<string, unknown>[] }).keys;
    assert.deepEqual(
      keys.map((k) => k.key_id),
      created.map((k) => k.key_id).sort(),
    );
    for (const k of keys) {
      assert.deepEqual(Object.keys(k).sort(), [
        "created_at_ms",
        "expires_at_ms",
        "is_superadmin",
        "key_id",
        "name",
      ]);
    }
    const text = JSON.stringify(raw);
    for (const k of created) assert.ok(!text.includes(k.key), "a token was listed");
    assert.ok(!text.includes(BOOTSTRAP_KEY), "the bootstrap key was listed");
    const byName = new Map(keys.map((k) => [k.name, k]));
    assert.equal(byName.get("one")!.expires_at_ms, 0);
    assert.equal(byName.get("sa")!.is_superadmin, true);
    assert.ok((byName.get("expired")!.expires_at_ms as number) < Date.now());
    const created0 = byName.get("one")!.created_at_ms as number;
    assert.ok(Math.abs(created0 - Date.now()) < 60_000, `created_at_ms ${created0}`);
  },
  P,
);

scenario("AU-13 health and reflection need no key; ListQueues does", async () => {
  const { b } = await bootstrap();
  const anon = b.client();
  assert.equal(await anon.healthCheck(""), "SERVING");
  const s = anon.reflection("v1");
  s.write({ list_services: "" });
  const [r] = await s.take(1, PROMPT_MS + 2000);
  s.end();
  s.cancel();
  const names = r.list_services_response?.service.map((x) => x.name) ?? [];
  assert.ok(names.includes("fila.v1.FilaService"), `listed ${names.join(", ")}`);
  await assertStatus(anon.listQueues(), UNAUTHENTICATED, UNAUTH);
}, P);

scenario("AU-14 RevokeApiKey: unknown id, second revoke and empty id", async () => {
  const { boot } = await bootstrap();
  await assertStatus(
    revokeKey(boot, "00000000-0000-4000-8000-000000000000"),
    NOT_FOUND,
    "api key not found",
  );
  const k = await createKey(boot, "au14");
  await revokeKey(boot, k.key_id);
  await assertStatus(revokeKey(boot, k.key_id), NOT_FOUND, "api key not found");
  await assertStatus(revokeKey(boot, ""), INVALID_ARGUMENT, "key_id must not be empty");
}, P);

scenario("AU-15 CreateApiKey: empty name; key and key_id formats", async () => {
  const { boot } = await bootstrap();
  await assertStatus(createKey(boot, ""), INVALID_ARGUMENT, "name must not be empty");
  const k = await createKey(boot, "au15");
  assert.match(k.key, /^[0-9a-f]{32}$/);
  assert.match(k.key_id, UUID_V4);
  assert.equal(k.is_superadmin, false);
}, P);

scenario(
  "AU-16 with auth disabled CreateApiKey succeeds and keyless requests still work",
  async () => {
    const { client } = await sharedBroker();
    const k = await createKey(client, "au16", { is_superadmin: true });
    assert.match(k.key, /^[0-9a-f]{32}$/);
    await client.listQueues();
    const q = uniq("au16");
    await client.createQueue(q);
    await client.enqueue(q);
    // A key that is stored but not enforced: sending it, or garbage, changes nothing.
    await headerClient(client.addr, "garbage").enqueue(q);
  },
);

scenario("authentication comes after the size check and before the UTF-8 check", async () => {
  const { b, boot } = await bootstrap();
  const q = uniq("order");
  await boot.createQueue(q);
  const anon = b.client();
  const badUtf8 = rawEnqueueRequest(new Uint8Array([0x71, 0xff]));
  await assertStatus(
    anon.rawUnary("/fila.v1.FilaService/Enqueue", badUtf8),
    UNAUTHENTICATED,
    UNAUTH,
  );
  await assertStatus(
    boot.rawUnary("/fila.v1.FilaService/Enqueue", badUtf8),
    INVALID_ARGUMENT,
    'invalid UTF-8 in field "queue"',
  );
  const huge = rawEnqueueRequest(q, [], new Uint8Array(4_194_305));
  await assertStatus(
    anon.rawUnary("/fila.v1.FilaService/Enqueue", huge),
    OUT_OF_RANGE,
    /^Error, decoded message length too large/,
  );
  // An empty (invalid) queue name is still UNAUTHENTICATED without a key.
  await assertStatus(anon.enqueue(""), UNAUTHENTICATED, UNAUTH);
}, P);

scenario(
  "[i] key records never appear in runtime config; SetConfig cannot touch them",
  async () => {
    const { b, boot } = await bootstrap();
    const k = await createKey(boot, "cfg-probe");
    await setAcl(boot, k.key_id, ["admin:*"]);
    const entries = (await boot.listConfig("")).entries;
    const text = JSON.stringify(entries);
    assert.ok(!text.includes(k.key_id), "key id listed in ListConfig");
    assert.equal(await boot.getConfig(`auth:key:${k.key_id}`), "");
    await boot.setConfig(`auth:key:${k.key_id}`, "overwritten");
    const c = keyClient(b.addr, k.key);
    await c.listQueues();
    assert.deepEqual((await getAcl(boot, k.key_id)).permissions, [{ kind: "admin", pattern: "*" }]);
    await boot.setConfig(`auth:key:${k.key_id}`, "");
  },
  P,
);

scenario("logs never contain tokens or the bootstrap key", async () => {
  const { b, boot } = await bootstrap();
  const k = await createKey(boot, "log-probe", { is_superadmin: true });
  const c = keyClient(b.addr, k.key);
  await c.listQueues();
  await assertStatus(
    headerClient(b.addr, "Bearer not-a-real-token-xyz").listQueues(),
    UNAUTHENTICATED,
  );
  await revokeKey(c, k.key_id);
  const logs = b.allStderr();
  assert.ok(!logs.includes(k.key), "token in logs");
  assert.ok(!logs.includes(BOOTSTRAP_KEY), "bootstrap key in logs");
  assert.ok(!logs.includes("not-a-real-token-xyz"), "presented token in logs");
}, P);

scenario("CR-06 API keys and their ACLs survive a restart", async () => {
  const b = await startBroker({ toml: AUTH_TOML });
  let boot = keyClient(b.addr, BOOTSTRAP_KEY);
  const q = uniq("cr06");
  await boot.createQueue(q);
  const producer = await keyWith(boot, [`produce:${q}`]);
  const sa = await createKey(boot, "sa", { is_superadmin: true });
  const revoked = await keyWith(boot, ["admin:*"]);
  await revokeKey(boot, revoked.key.key_id);
  const before = await listKeys(boot);
  await b.restart();
  boot = keyClient(b.addr, BOOTSTRAP_KEY);
  assert.deepEqual(await listKeys(boot), before);
  await keyClient(b.addr, producer.key.key).enqueue(q);
  await assertStatus(
    keyClient(b.addr, producer.key.key).enqueue(uniq("other")),
    PERMISSION_DENIED,
  );
  assert.deepEqual((await getAcl(boot, producer.key.key_id)).permissions, [{
    kind: "produce",
    pattern: q,
  }]);
  await keyClient(b.addr, sa.key).listQueues();
  await assertStatus(keyClient(b.addr, revoked.key.key).listQueues(), UNAUTHENTICATED, UNAUTH);
}, P);
