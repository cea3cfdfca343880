// The TLS flags end to end (operations.md §5.1, conformance.md TL-01…TL-05 as seen by the CLI)
// against brokers with `[tls]`, using the certificates in testdata/tls (CA-signed, SANs localhost
// and 127.0.0.1, valid until 2126). Skipped, with the reason, while the broker ignores `[tls]`.
import { scenario } from "../conformance/harness.ts";
import { assertEquals, assertMatch } from "./assert.ts";
import { fila, ok, spawnBroker, TLS_DIR } from "./testing.ts";

const SERVER_TLS = `[tls]\ncert_file = "${TLS_DIR}server.pem"\nkey_file = "${TLS_DIR}server.key"`;
const CA = `${TLS_DIR}ca.pem`;
const CLIENT = ["--tls-cert", `${TLS_DIR}client.pem`, "--tls-key", `${TLS_DIR}client.key`];

const tlsBroker = await spawnBroker(SERVER_TLS);
const NO_TLS = tlsBroker.tls ? undefined : "the broker ignores [tls] yet (it logs tls=false)";
const mtlsBroker = tlsBroker.tls ? await spawnBroker(`${SERVER_TLS}\nca_file = "${CA}"`) : null;

Deno.test.afterAll(async () => {
  await tlsBroker[Symbol.asyncDispose]();
  await mtlsBroker?.[Symbol.asyncDispose]();
});

const cannotConnect = (addr: string) =>
  new RegExp(`^Error: cannot connect to broker at ${addr.replaceAll(".", "\\.")}: [^\\n]+\\n$`);

scenario("TLS: https:// or a CA cert verifies the broker, by IP or by name", async () => {
  const port = tlsBroker.port;
  const runs = await Promise.all([
    fila("--addr", `https://127.0.0.1:${port}`, "--tls-ca-cert", CA, "queue", "list"),
    fila("--addr", `https://localhost:${port}`, "--tls-ca-cert", CA, "queue", "list"),
    // --tls-ca-cert implies TLS even with an http:// address.
    fila("--addr", `http://127.0.0.1:${port}`, "--tls-ca-cert", CA, "queue", "list"),
  ]);
  for (const res of runs) assertEquals(res, ok("No queues found.\n"));
}, { ignore: NO_TLS });

scenario("TLS: an untrusted certificate or a cleartext client fails with exit 1", async () => {
  const addr = `https://127.0.0.1:${tlsBroker.port}`;
  const untrusted = await fila("--addr", addr, "--tls", "queue", "list");
  assertEquals([untrusted.code, untrusted.stdout], [1, ""]);
  assertMatch(untrusted.stderr, cannotConnect(addr));

  const plainAddr = `http://127.0.0.1:${tlsBroker.port}`;
  const started = performance.now();
  const plain = await fila("--addr", plainAddr, "queue", "list");
  assertEquals([plain.code, plain.stdout], [1, ""]);
  assertMatch(plain.stderr, cannotConnect(plainAddr));
  if (performance.now() - started > 5000) throw new Error("cleartext failure was not prompt");
}, { ignore: NO_TLS });

scenario("mTLS: the client certificate is presented; without it the broker refuses", async () => {
  const addr = `https://127.0.0.1:${mtlsBroker?.port}`;
  assertEquals(
    await fila("--addr", addr, "--tls-ca-cert", CA, ...CLIENT, "queue", "list"),
    ok("No queues found.\n"),
  );
  const res = await fila("--addr", addr, "--tls-ca-cert", CA, "queue", "list");
  assertEquals([res.code, res.stdout], [1, ""]);
  assertMatch(res.stderr, cannotConnect(addr));
}, { ignore: NO_TLS });
