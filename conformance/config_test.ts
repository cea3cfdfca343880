// conformance.md §10 Config (CF-02 … CF-10), gRPC side (the CLI output is checked in cli/).
// Keys are unique per scenario on the shared broker; CF-08 needs authentication and CF-09/CF-10
// need an empty store or a restart, so they run on brokers of their own.
import assert from "node:assert/strict";
import { assertStatus, type ConfigEntry, type FilaClient, grpc } from "./client.ts";
import { AUTH_TOML, BOOTSTRAP_KEY, createKey, keyClient } from "./auth_helpers.ts";
import { scenario, sharedBroker, startBroker, uniq } from "./harness.ts";
import { luaStr, metadataOf, onEnqueue, scriptedQueue } from "./lua_helpers.ts";

const P = { needsProcess: true };

/** Compares two strings by their UTF-8 bytes. */
function byteCompare(a: string, b: string): number {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}

async function listed(client: FilaClient, prefix: string): Promise<ConfigEntry[]> {
  const r = await client.listConfig(prefix);
  assert.equal(r.total_count, r.entries.length, "total_count = number of entries returned");
  return r.entries;
}

scenario("CF-02 GetConfig of an unset key is OK with an empty value", async () => {
  const { client } = await sharedBroker();
  assert.equal(await client.getConfig(uniq("nope")), "");
});

scenario("CF-03 key and value size limits", async () => {
  const { client } = await sharedBroker();
  const empty = "config key must not be empty";
  await assertStatus(client.setConfig("", "v"), grpc.status.INVALID_ARGUMENT, empty);
  await assertStatus(client.getConfig(""), grpc.status.INVALID_ARGUMENT, empty);
  const tag = uniq("cf03");
  const k256 = tag + "k".repeat(256 - tag.length);
  const k257 = k256 + "k";
  const long = "config key must not exceed 256 bytes";
  await assertStatus(client.setConfig(k257, "v"), grpc.status.INVALID_ARGUMENT, long);
  await assertStatus(client.getConfig(k257), grpc.status.INVALID_ARGUMENT, long);
  await client.setConfig(k256, "v");
  assert.equal(await client.getConfig(k256), "v");
  // Byte lengths, not characters: 128 × "é" = 256 bytes is fine, one more byte is not.
  const e256 = "é".repeat(128);
  await client.setConfig(e256, "é");
  assert.equal(await client.getConfig(e256), "é");
  await client.setConfig(e256, "");
  await assertStatus(client.setConfig(e256 + "x", "v"), grpc.status.INVALID_ARGUMENT, long);
  const k = uniq("cf03v");
  await assertStatus(
    client.setConfig(k, "v".repeat(1025)),
    grpc.status.INVALID_ARGUMENT,
    "config value must not exceed 1024 bytes",
  );
  assert.equal(await client.getConfig(k), "", "a rejected value is not stored");
  await client.setConfig(k, "v".repeat(1024));
  assert.equal(await client.getConfig(k), "v".repeat(1024));
});

scenario("CF-04 ListConfig prefix limit; a prefix with no match is an empty answer", async () => {
  const { client } = await sharedBroker();
  await assertStatus(
    client.listConfig("p".repeat(257)),
    grpc.status.INVALID_ARGUMENT,
    "config prefix must not exceed 256 bytes",
  );
  const r = await client.listConfig(uniq("zz"));
  assert.deepEqual(r.entries, []);
  assert.equal(r.total_count, 0);
  assert.equal((await client.listConfig("p".repeat(256))).total_count, 0);
});

scenario("CF-05 SetConfig with an empty value deletes the key", async () => {
  const { client } = await sharedBroker();
  const p = uniq("cf05") + ".";
  await client.setConfig(p + "a", "1");
  await client.setConfig(p + "b", "2");
  await client.setConfig(p + "a", "");
  assert.equal(await client.getConfig(p + "a"), "");
  assert.deepEqual(await listed(client, p), [{ key: p + "b", value: "2" }]);
  await client.setConfig(p + "never-set", ""); // deleting a missing key is fine
});

scenario("CF-06 on_enqueue sees a config change on its next call", async () => {
  const { client } = await sharedBroker();
  const x = uniq("x");
  const q = await scriptedQueue(client, {
    on_enqueue_script: onEnqueue(`return { fairness_key = fila.get(${luaStr(x)}) }`),
  }, "cf06");
  await client.setConfig(x, "1");
  assert.equal((await metadataOf(client, q)).fairness_key, "1");
  await client.setConfig(x, "2");
  assert.equal((await metadataOf(client, q)).fairness_key, "2");
});

scenario("CF-07 API keys never appear in the runtime config", async () => {
  const { client } = await sharedBroker();
  const key = await createKey(client, "cf07");
  const all = await listed(client, "");
  assert.deepEqual(all.filter((e) => e.key.startsWith("auth:")), [], "no auth: entries");
  assert.deepEqual(await listed(client, "auth:"), []);
  assert.equal(await client.getConfig(`auth:key:${key.key_id}`), "");
});

scenario("CF-08 a config entry named auth:key:<id> does not touch the API key", async () => {
  await using b = await startBroker({ toml: AUTH_TOML });
  const admin = keyClient(b.addr, BOOTSTRAP_KEY);
  const key = await createKey(admin, "cf08", { is_superadmin: true });
  await admin.setConfig(`auth:key:${key.key_id}`, "{}");
  assert.equal(await admin.getConfig(`auth:key:${key.key_id}`), "{}");
  const user = keyClient(b.addr, key.key);
  await user.createQueue("cf08");
  await user.enqueue("cf08", { payload: "still works" });
  assert.equal((await user.getStats("cf08")).depth, 1);
}, P);

scenario("CF-09 ListConfig is in byte order and returns at most 10,000 entries", async () => {
  await using b = await startBroker();
  const client = b.client();
  // Byte order differs from UTF-16 order for keys above U+FFFF vs. U+E000…U+FFFF.
  const keys = ["b", "B", "a", "é", "\uffff", "😀", "~", "a.b", "a-b", "ab", "a"].map((k) =>
    `order.${k}`
  );
  for (const [i, k] of keys.entries()) await client.setConfig(k, `v${i}`);
  const unique = [...new Set(keys)].sort(byteCompare);
  const got = await listed(client, "order.");
  assert.deepEqual(got.map((e) => e.key), unique);
  assert.equal(got.find((e) => e.key === "order.a")!.value, "v10", "upsert keeps the last value");

  // 10,001 keys: the answer stops at the first 10,000 in byte order.
  const N = 10_001;
  const names = Array.from({ length: N }, (_, i) => `bulk.${String(i).padStart(5, "0")}`);
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < names.length) await client.setConfig(names[next++], "x");
  }));
  const bulk = await listed(client, "bulk.");
  assert.equal(bulk.length, 10_000);
  assert.deepEqual(bulk.map((e) => e.key), names.slice(0, 10_000));
  const all = await listed(client, "");
  assert.equal(all.length, 10_000);
  const sorted = [...all].sort((x, y) => byteCompare(x.key, y.key));
  assert.deepEqual(all.map((e) => e.key), sorted.map((e) => e.key));
}, { ...P, timeoutMs: 120_000 });

scenario("CF-10 config entries survive a restart", async () => {
  await using b = await startBroker();
  let client = b.client();
  await client.setConfig("app.region", "us-east-1");
  await client.setConfig("app.env", "prod");
  await client.setConfig("app.gone", "x");
  await client.setConfig("app.gone", "");
  await client.setConfig("throttle.cf10", "5,10");
  const before = await listed(client, "");
  await b.restart();
  client = b.client();
  assert.deepEqual(await listed(client, ""), before);
  assert.equal(await client.getConfig("app.region"), "us-east-1");
  assert.equal(await client.getConfig("app.gone"), "");
}, P);
