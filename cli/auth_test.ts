// `fila auth …` end to end (conformance.md AU-05, AU-12, AC-06/07/09/10/11/16, CL-02) against one
// broker with `[auth]`. The API-key RPCs and their enforcement are probed first: scenarios that
// need what the broker does not do yet are reported as ignored, with the reason.
import { scenario, startBroker, uniq } from "../conformance/harness.ts";
import { isCallError } from "../conformance/client.ts";
import { assertEquals, assertMatch } from "./assert.ts";
import { failed, fila, ok } from "./testing.ts";

const BOOTSTRAP = "test-bootstrap-key";
const broker = await startBroker({ toml: `[auth]\nbootstrap_apikey = "${BOOTSTRAP}"` });
const client = broker.client();
const ADDR = `http://${broker.addr}`;

const UNIMPLEMENTED = 12;
const UNAUTHENTICATED = 16;

/** The status code of `call`, or 0 when it succeeds. */
function statusOf(call: Promise<unknown>): Promise<number> {
  return call.then(() => 0, (e) => isCallError(e) ? e.code : -1);
}

const keysWork = await statusOf(
  client.unary("fila.v1.FilaAdmin", "ListApiKeys", {}, {
    metadata: { authorization: `Bearer ${BOOTSTRAP}` },
  }),
) !== UNIMPLEMENTED;
const enforced = await statusOf(client.listQueues()) === UNAUTHENTICATED;
const NO_KEYS = keysWork ? undefined : "the broker answers the API-key RPCs with UNIMPLEMENTED";
const NOT_ENFORCED = NO_KEYS ??
  (enforced
    ? undefined
    : "the broker does not enforce [auth] yet (a request without a key passes)");

/** `fila` as the bootstrap key. */
const asAdmin = (...args: string[]) => fila("--addr", ADDR, "--api-key", BOOTSTRAP, ...args);

interface CreatedKey {
  key_id: string;
  key: string;
  is_superadmin: boolean;
}

/** Creates a key through the CLI (`--json`) and gives it `perms`. */
async function createKey(name: string, perms: string[] = [], superadmin = false) {
  const res = await asAdmin(
    "auth",
    "create",
    "--name",
    name,
    "--json",
    ...(superadmin ? ["--superadmin"] : []),
  );
  assertEquals([res.code, res.stderr], [0, ""], `auth create --name ${name}`);
  const key: CreatedKey = JSON.parse(res.stdout);
  if (perms.length > 0) {
    const set = await asAdmin(
      "auth",
      "acl",
      "set",
      key.key_id,
      ...perms.flatMap((p) => ["--perm", p]),
    );
    assertEquals(set, ok(`ACL updated for key ${key.key_id}\n`));
  }
  return key;
}

/** Revokes every key, so that each scenario's `auth list` starts empty. */
async function revokeAll(): Promise<void> {
  const res = await asAdmin("auth", "list", "--json");
  for (const k of JSON.parse(res.stdout).keys as Array<{ key_id: string }>) {
    await asAdmin("auth", "revoke", k.key_id);
  }
}

scenario("AU-12 auth create, list and revoke print the spec's texts", async () => {
  try {
    assertEquals(await asAdmin("auth", "list"), ok("No API keys found.\n"));
    const created = await asAdmin("auth", "create", "--name", "ci-bot");
    assertEquals([created.code, created.stderr], [0, ""]);
    const m = created.stdout.match(
      /^Created API key "ci-bot"\n {2}Key ID {5}: ([0-9a-f-]{36})\n {2}Token {6}: ([0-9a-f]{32})\nStore the token securely — it will not be shown again\.\n$/,
    );
    if (!m) throw new Error(`unexpected auth create output ${JSON.stringify(created.stdout)}`);
    const ciBot = m[1];
    const sa = await asAdmin(
      "auth",
      "create",
      "--name",
      "ops",
      "--expires-at",
      "4102444800000",
      "--superadmin",
    );
    assertMatch(sa.stdout, /\n {2}Superadmin : yes\nStore the token securely/);
    const ops = sa.stdout.split("\n")[1].split(": ")[1];

    const keys = JSON.parse((await asAdmin("auth", "list", "--json")).stdout).keys as Array<
      { key_id: string; name: string; created_at_ms: number; expires_at_ms: number }
    >;
    assertEquals(keys.map((k) => k.key_id), [ciBot, ops].sort());
    const row = (k: (typeof keys)[number]) =>
      `${k.key_id}  ${k.name.padEnd(6)}  ${String(k.created_at_ms).padStart(13)}  ${
        k.expires_at_ms === 0 ? "never" : k.expires_at_ms
      }`;
    assertEquals(
      await asAdmin("auth", "list"),
      ok(
        [
          "KEY_ID                                NAME    CREATED_AT_MS  EXPIRES_AT_MS",
          ...keys.map(row),
        ].map((l) => l + "\n").join(""),
      ),
    );
    assertEquals(keys.find((k) => k.key_id === ops)?.expires_at_ms, 4102444800000);

    assertEquals(await asAdmin("auth", "revoke", ciBot), ok(`Revoked API key ${ciBot}\n`));
    assertEquals(
      await asAdmin("auth", "revoke", ciBot),
      failed(`api key "${ciBot}" does not exist`),
    );
  } finally {
    await revokeAll();
  }
}, { ignore: NO_KEYS });

scenario("AC-07 AC-09 AC-16 auth acl set and get", async () => {
  try {
    const k = await createKey(uniq("acl"));
    assertEquals(
      await asAdmin(
        "auth",
        "acl",
        "set",
        k.key_id,
        "--perm",
        "produce:orders",
        "--perm",
        "consume:orders",
      ),
      ok(`ACL updated for key ${k.key_id}\n`),
    );
    assertEquals(
      await asAdmin("auth", "acl", "get", k.key_id),
      ok(`Key ID : ${k.key_id}\nPermissions:\n  produce:orders\n  consume:orders\n`),
    );
    await asAdmin("auth", "acl", "set", k.key_id, "--perm", "admin:orders:us");
    assertEquals(JSON.parse((await asAdmin("auth", "acl", "get", k.key_id, "--json")).stdout), {
      key_id: k.key_id,
      permissions: [{ kind: "admin", pattern: "orders:us" }],
      is_superadmin: false,
    });
    assertEquals(
      await asAdmin("auth", "acl", "set", k.key_id),
      ok(`ACL updated for key ${k.key_id}\n`),
    );
    assertEquals(
      await asAdmin("auth", "acl", "get", k.key_id),
      ok(`Key ID : ${k.key_id}\nPermissions: (none)\n`),
    );

    const bad = await asAdmin("auth", "acl", "set", k.key_id, "--perm", "read:some-queue");
    assertEquals([bad.code, bad.stdout], [1, ""]);
    assertMatch(bad.stderr, /^Error: .*invalid permission kind "read".*\n$/);

    const sa = await createKey(uniq("sa"), [], true);
    assertEquals(
      await asAdmin("auth", "acl", "get", sa.key_id),
      ok(`Key ID : ${sa.key_id}\nSuperadmin: yes (all permissions granted)\n`),
    );
    assertEquals(
      await asAdmin("auth", "acl", "get", "nope"),
      failed('api key "nope" does not exist'),
    );
  } finally {
    await revokeAll();
  }
}, { ignore: NO_KEYS });

scenario("CL-02 AU-05 AC-06 AC-10 AC-11 keys and permissions as seen by the CLI", async () => {
  const q = uniq("authq");
  try {
    assertEquals(
      await fila("--addr", ADDR, "queue", "list"),
      failed("invalid or missing api key"),
    );
    assertEquals(
      await fila("--addr", ADDR, "--api-key", "wrong", "queue", "list"),
      failed("invalid or missing api key"),
    );

    const sa = await createKey(uniq("sa"), [], true);
    assertEquals(
      await fila("--addr", ADDR, "--api-key", sa.key, "queue", "create", q),
      ok(`Created queue "${q}"\n`),
    );

    const producer = await createKey(uniq("producer"), ["produce:*"]);
    const denied = await fila(
      "--addr",
      ADDR,
      "--api-key",
      producer.key,
      "queue",
      "create",
      uniq("x"),
    );
    assertEquals([denied.code, denied.stdout], [1, ""]);
    assertMatch(denied.stderr, /^Error: .*admin permission.*\n$/);

    const admin = await createKey(uniq("admin"), ["admin:*"]);
    const made = await fila(
      "--addr",
      ADDR,
      "--api-key",
      admin.key,
      "auth",
      "create",
      "--name",
      "x",
    );
    assertEquals([made.code, made.stderr], [0, ""]);
    assertMatch(made.stdout, /^Created API key "x"\n/);

    const nobody = await createKey(uniq("nobody"));
    assertEquals(
      await fila("--addr", ADDR, "--api-key", nobody.key, "auth", "create", "--name", "x"),
      failed("key does not have admin permission"),
    );
  } finally {
    await asAdmin("queue", "delete", q);
    await revokeAll();
  }
}, { ignore: NOT_ENFORCED });
