// conformance.md §14 TLS (TL-01 … TL-11). Certificates are made with `openssl` at run time. The
// harness's readiness probe speaks cleartext, so TLS brokers are run by a small launcher here.
//
// Deno's node:tls client refuses an IP address as TLS server name, so the grpc-js clients below
// dial 127.0.0.1 but verify the server as "localhost"; the IP SAN is checked with openssl.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { assertStatus, authorizationOptions, FilaClient, grpc } from "./client.ts";
import { AUTH_TOML, BOOTSTRAP_KEY } from "./auth_helpers.ts";
import {
  brokerStderr,
  freePort,
  MAIN_TS,
  PROMPT_MS,
  READY_TIMEOUT_MS,
  runBrokerExpectingExit,
  scenario,
  sleep,
  uniq,
} from "./harness.ts";

const OPENSSL_MISSING = (() => {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
        .outputSync().success
      ? undefined
      : "openssl does not run";
  } catch {
    return "openssl not found (apt-get install -y openssl)";
  }
})();
const P = { needsProcess: true, ignore: OPENSSL_MISSING };

// ---------------------------------------------------------------------------------------------
// Certificates

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(
      `openssl ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

const REQ_CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
`;

/** A minimal `openssl ca` setup, only needed for certificates with dates in the past. */
const CA_CNF = `[ca]
default_ca = ca_default
[ca_default]
database = db/index.txt
serial = db/serial
new_certs_dir = db
default_md = sha256
policy = policy_any
copy_extensions = none
unique_subject = no
[policy_any]
commonName = supplied
[server_ext]
basicConstraints = critical,CA:FALSE
subjectAltName = DNS:localhost,IP:127.0.0.1
[client_ext]
basicConstraints = critical,CA:FALSE
`;

const SERVER_EXT = "basicConstraints=critical,CA:FALSE\n" +
  "keyUsage=critical,digitalSignature,keyEncipherment\n" +
  "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n";

/** Paths of the generated files (absolute). */
interface Certs {
  dir: string;
  ca: string;
  otherCa: string;
  /** Server certificate and key signed by `ca`, one pair per key encoding. */
  server: Record<"pkcs8" | "pkcs1" | "sec1" | "sec1p384", { cert: string; key: string }>;
  selfSigned: { cert: string; key: string };
  expired: { cert: string; key: string };
  /** Client certificates for mTLS: v3 without EKU, with clientAuth, from otherCa, expired. */
  client: Record<"noEku" | "clientAuth" | "otherCa" | "expired", { cert: string; key: string }>;
  encryptedKey: string;
}

let certsPromise: Promise<Certs> | undefined;

function certs(): Promise<Certs> {
  certsPromise ??= makeCerts();
  return certsPromise;
}

async function makeCerts(): Promise<Certs> {
  const dir = await Deno.makeTempDir({ prefix: "fila-tls-certs-" });
  tempDirs.push(dir);
  const o = (...args: string[]) => openssl(dir, ...args);
  await Deno.writeTextFile(`${dir}/req.cnf`, REQ_CNF);
  await Deno.writeTextFile(`${dir}/ca.cnf`, CA_CNF);
  await Deno.writeTextFile(`${dir}/server.ext`, SERVER_EXT);
  await Deno.writeTextFile(`${dir}/noeku.ext`, "basicConstraints=critical,CA:FALSE\n");
  await Deno.writeTextFile(
    `${dir}/clientauth.ext`,
    "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n",
  );
  const ca = async (name: string) => {
    await o(
      "genpkey",
      "-algorithm",
      "RSA",
      "-pkeyopt",
      "rsa_keygen_bits:2048",
      "-out",
      `${name}.key`,
    );
    await o(
      "req",
      "-config",
      "req.cnf",
      "-x509",
      "-new",
      "-key",
      `${name}.key`,
      "-out",
      `${name}.pem`,
      "-days",
      "30",
      "-subj",
      `/CN=Fila Test ${name}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    );
  };
  await ca("ca");
  await ca("other-ca");
  const sign = async (name: string, caName: string, ext: string, cn: string) => {
    await o(
      "req",
      "-config",
      "req.cnf",
      "-new",
      "-key",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${cn}`,
    );
    await o(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${caName}.pem`,
      "-CAkey",
      `${caName}.key`,
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "30",
      "-extfile",
      ext,
    );
  };
  // Key encodings of operations.md §3.
  await o(
    "genpkey",
    "-algorithm",
    "RSA",
    "-pkeyopt",
    "rsa_keygen_bits:2048",
    "-out",
    "s-pkcs8.key",
  );
  await o("genrsa", "-traditional", "-out", "s-pkcs1.key", "2048");
  await o("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "s-sec1.key");
  await o("ecparam", "-name", "secp384r1", "-genkey", "-out", "s-sec1p384.key");
  for (const k of ["pkcs8", "pkcs1", "sec1", "sec1p384"]) {
    await sign(`s-${k}`, "ca", "server.ext", "localhost");
  }
  // Self-signed (TL-01).
  await o(
    "req",
    "-config",
    "req.cnf",
    "-x509",
    "-new",
    "-key",
    "s-pkcs8.key",
    "-out",
    "self.pem",
    "-days",
    "30",
    "-subj",
    "/CN=localhost",
    "-addext",
    "basicConstraints=critical,CA:FALSE",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
  );
  // Valid only 2020-01-01 … 2021-01-01 (TL-06).
  await Deno.mkdir(`${dir}/db`);
  await Deno.writeTextFile(`${dir}/db/index.txt`, "");
  await Deno.writeTextFile(`${dir}/db/serial`, "1000\n");
  await o(
    "ca",
    "-batch",
    "-config",
    "ca.cnf",
    "-cert",
    "ca.pem",
    "-keyfile",
    "ca.key",
    "-in",
    "s-pkcs8.csr",
    "-out",
    "expired.pem",
    "-extensions",
    "server_ext",
    "-notext",
    "-startdate",
    "20200101000000Z",
    "-enddate",
    "20210101000000Z",
  );
  // Client certificates.
  await o(
    "genpkey",
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-out",
    "c-noeku.key",
  );
  await o(
    "genpkey",
    "-algorithm",
    "RSA",
    "-pkeyopt",
    "rsa_keygen_bits:2048",
    "-out",
    "c-clientauth.key",
  );
  await o(
    "genpkey",
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-out",
    "c-other.key",
  );
  await sign("c-noeku", "ca", "noeku.ext", "client-no-eku");
  await sign("c-clientauth", "ca", "clientauth.ext", "client-auth");
  await sign("c-other", "other-ca", "noeku.ext", "client-other");
  await o(
    "ca",
    "-batch",
    "-config",
    "ca.cnf",
    "-cert",
    "ca.pem",
    "-keyfile",
    "ca.key",
    "-in",
    "c-noeku.csr",
    "-out",
    "c-expired.pem",
    "-extensions",
    "client_ext",
    "-notext",
    "-startdate",
    "20200101000000Z",
    "-enddate",
    "20210101000000Z",
  );
  await o("pkey", "-in", "s-pkcs8.key", "-aes256", "-passout", "pass:secret", "-out", "enc.key");
  const p = (f: string) => `${dir}/${f}`;
  const pair = (cert: string, key: string) => ({ cert: p(cert), key: p(key) });
  return {
    dir,
    ca: p("ca.pem"),
    otherCa: p("other-ca.pem"),
    server: {
      pkcs8: pair("s-pkcs8.pem", "s-pkcs8.key"),
      pkcs1: pair("s-pkcs1.pem", "s-pkcs1.key"),
      sec1: pair("s-sec1.pem", "s-sec1.key"),
      sec1p384: pair("s-sec1p384.pem", "s-sec1p384.key"),
    },
    selfSigned: pair("self.pem", "s-pkcs8.key"),
    expired: pair("expired.pem", "s-pkcs8.key"),
    client: {
      noEku: pair("c-noeku.pem", "c-noeku.key"),
      clientAuth: pair("c-clientauth.pem", "c-clientauth.key"),
      otherCa: pair("c-other.pem", "c-other.key"),
      expired: pair("c-expired.pem", "c-noeku.key"),
    },
    encryptedKey: p("enc.key"),
  };
}

// ---------------------------------------------------------------------------------------------
// TLS clients and brokers

function read(path: string): Buffer {
  return Buffer.from(Deno.readFileSync(path));
}

/** Channel credentials trusting `ca`, optionally presenting a client certificate. */
function tlsCreds(ca: string, client?: { cert: string; key: string }): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(
    read(ca),
    client ? read(client.key) : null,
    client ? read(client.cert) : null,
  );
}

const VERIFY_AS_LOCALHOST: grpc.ChannelOptions = {
  "grpc.ssl_target_name_override": "localhost",
  "grpc.default_authority": "localhost",
};

function tlsClient(addr: string, creds: grpc.ChannelCredentials, extra = {}): FilaClient {
  return new FilaClient(addr, { ...VERIFY_AS_LOCALHOST, ...extra }, creds);
}

const tempDirs: string[] = [];
const liveTls = new Set<TlsBroker>();

function childEnv(dir: string, extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (!k.startsWith("FILA_")) env[k] = v;
  }
  return { ...env, NO_COLOR: "1", FILA_DATA_DIR: `${dir}/data`, ...extra };
}

/** A broker with a TLS listener; ready when a health check over TLS with `ready` answers. */
class TlsBroker {
  readonly addr: string;
  readonly #child: Deno.ChildProcess;
  readonly #status: Promise<Deno.CommandStatus>;
  stderr = "";

  private constructor(addr: string, child: Deno.ChildProcess) {
    this.addr = addr;
    this.#child = child;
    const dec = new TextDecoder();
    const pump = (async () => {
      try {
        for await (const chunk of child.stderr) this.stderr += dec.decode(chunk, { stream: true });
      } catch {
        // closed
      }
    })();
    this.#status = child.status.then(async (s) => {
      await pump;
      return s;
    });
    liveTls.add(this);
  }

  static async start(
    tlsToml: string,
    ready: grpc.ChannelCredentials,
    opts: { extraToml?: string; env?: Record<string, string> } = {},
  ): Promise<TlsBroker> {
    const dir = await Deno.makeTempDir({ prefix: "fila-tls-" });
    tempDirs.push(dir);
    const port = freePort();
    await Deno.writeTextFile(
      `${dir}/fila.toml`,
      `[server]\nlisten_addr = "127.0.0.1:${port}"\n\n${tlsToml}\n${opts.extraToml ?? ""}\n`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--unstable-kv", MAIN_TS],
      cwd: dir,
      env: childEnv(dir, opts.env ?? {}),
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const b = new TlsBroker(`127.0.0.1:${port}`, child);
    try {
      await b.#waitReady(ready);
    } catch (e) {
      await b.stop();
      throw e;
    }
    return b;
  }

  async #waitReady(creds: grpc.ChannelCredentials): Promise<void> {
    const deadline = performance.now() + READY_TIMEOUT_MS;
    const c = tlsClient(this.addr, creds);
    let exited = false;
    this.#status.then(() => exited = true);
    try {
      while (true) {
        if (exited) throw new Error(`broker exited:\n${this.stderr}`);
        try {
          if (await c.healthCheck("", { deadlineMs: 1000 }) === "SERVING") return;
        } catch (e) {
          if (performance.now() > deadline) {
            throw new Error(`TLS broker not ready: ${(e as Error).message}\n${this.stderr}`);
          }
        }
        await sleep(50);
      }
    } finally {
      c.close();
    }
  }

  client(creds: grpc.ChannelCredentials, extra = {}): FilaClient {
    return tlsClient(this.addr, creds, extra);
  }

  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await this.#status;
    liveTls.delete(this);
  }
}

Deno.test.afterAll(async () => {
  for (const b of [...liveTls]) await b.stop();
  for (const d of tempDirs) {
    try {
      Deno.removeSync(d, { recursive: true });
    } catch {
      // ignore
    }
  }
});

function tlsSection(pair: { cert: string; key: string }, ca?: string): string {
  return `[tls]\ncert_file = "${pair.cert}"\nkey_file = "${pair.key}"\n` +
    (ca ? `ca_file = "${ca}"\n` : "");
}

/** Runs `fn` with a TLS broker that is stopped afterwards. */
async function withBroker(
  tlsToml: string,
  ready: grpc.ChannelCredentials,
  fn: (b: TlsBroker) => Promise<void>,
  opts: { extraToml?: string; env?: Record<string, string> } = {},
): Promise<void> {
  const b = await TlsBroker.start(tlsToml, ready, opts);
  try {
    await fn(b);
  } finally {
    await b.stop();
  }
}

/** Asserts that a call over a connection that cannot be established fails (UNAVAILABLE). */
async function assertConnectFails(client: FilaClient, withinMs = 5000): Promise<void> {
  const started = performance.now();
  await assertStatus(client.listQueues({ deadlineMs: withinMs }), grpc.status.UNAVAILABLE);
  const took = performance.now() - started;
  assert.ok(took < withinMs, `failed after ${Math.round(took)} ms, expected promptly`);
}

/** openssl s_client against the broker; resolves with its combined output. */
async function sClient(addr: string, ...args: string[]): Promise<string> {
  const child = new Deno.Command("openssl", {
    args: ["s_client", "-connect", addr, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.close();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited
    }
  }, 10_000);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return dec.decode(out.stdout) + dec.decode(out.stderr);
}

async function enqueueConsumeAck(admin: FilaClient, client: FilaClient): Promise<void> {
  const q = uniq("tls");
  await admin.createQueue(q);
  const id = await client.enqueue(q, { payload: "over tls" });
  const c = client.consume(q);
  const m = await c.expectNext(PROMPT_MS);
  assert.equal(m.id, id);
  assert.equal(new TextDecoder().decode(m.payload), "over tls");
  await client.ack(q, id);
  c.cancel();
}

// ---------------------------------------------------------------------------------------------
// Scenarios

scenario("TL-01 a client trusting a self-signed certificate connects and enqueues", async () => {
  const c = await certs();
  const creds = tlsCreds(c.selfSigned.cert);
  await withBroker(tlsSection(c.selfSigned), creds, async (b) => {
    const client = b.client(creds);
    const q = uniq("tl01");
    await client.createQueue(q);
    await client.enqueue(q, { payload: "hello" });
    assert.equal((await client.getStats(q)).depth, 1);
    assert.match(b.stderr, /listening on .*tls=true/);
    // The certificate also verifies for the address itself (IP SAN 127.0.0.1).
    const out = await sClient(
      b.addr,
      "-CAfile",
      c.selfSigned.cert,
      "-verify_ip",
      "127.0.0.1",
      "-verify_return_error",
    );
    assert.match(out, /Verify return code: 0 \(ok\)/, out);
  });
}, P);

scenario("TL-02 a plaintext client against the TLS listener fails within 5 s", async () => {
  const c = await certs();
  const creds = tlsCreds(c.ca);
  await withBroker(tlsSection(c.server.pkcs8), creds, async (b) => {
    await assertConnectFails(new FilaClient(b.addr));
  });
}, P);

scenario("TL-03 a client trusting a different CA fails", async () => {
  const c = await certs();
  const creds = tlsCreds(c.ca);
  await withBroker(tlsSection(c.server.pkcs8), creds, async (b) => {
    await assertConnectFails(b.client(tlsCreds(c.otherCa)));
    await b.client(creds).listQueues();
  });
}, P);

scenario(
  "TL-04 mTLS: a client presenting its certificate can enqueue, consume and ack",
  async () => {
    const c = await certs();
    const creds = tlsCreds(c.ca, c.client.noEku);
    await withBroker(tlsSection(c.server.pkcs8, c.ca), creds, async (b) => {
      const client = b.client(creds);
      await enqueueConsumeAck(client, client);
    });
  },
  P,
);

scenario(
  "TL-05 mTLS: no client certificate, one from another CA or an expired one fails",
  async () => {
    const c = await certs();
    const good = tlsCreds(c.ca, c.client.noEku);
    await withBroker(tlsSection(c.server.pkcs8, c.ca), good, async (b) => {
      await assertConnectFails(b.client(tlsCreds(c.ca)));
      await assertConnectFails(b.client(tlsCreds(c.ca, c.client.otherCa)));
      await assertConnectFails(b.client(tlsCreds(c.ca, c.client.expired)));
      await assertConnectFails(new FilaClient(b.addr));
      // The broker is unaffected by the refused handshakes.
      await b.client(good).listQueues();
      const out = await sClient(b.addr, "-CAfile", c.ca, "-msg");
      assert.match(out, /CertificateRequest/, "mTLS requests a client certificate");
    });
  },
  P,
);

scenario("TL-05 without ca_file the server does not request client certificates", async () => {
  const c = await certs();
  const creds = tlsCreds(c.ca);
  // grpc-js reads GRPC_DEFAULT_SSL_ROOTS_FILE_PATH; the broker must not turn it into a CA list.
  const env: Record<string, string> = {};
  try {
    Deno.statSync("/etc/ssl/certs/ca-certificates.crt");
    env.GRPC_DEFAULT_SSL_ROOTS_FILE_PATH = "/etc/ssl/certs/ca-certificates.crt";
  } catch {
    // no system bundle: nothing to provoke
  }
  await withBroker(tlsSection(c.server.pkcs8), creds, async (b) => {
    const out = await sClient(b.addr, "-CAfile", c.ca, "-msg", "-verify_return_error");
    assert.doesNotMatch(out, /CertificateRequest/, "one-way TLS sent a CertificateRequest");
    assert.doesNotMatch(out, /excessive message size/);
    assert.match(out, /Verify return code: 0 \(ok\)/, out);
    // A client that offers a certificate anyway is fine.
    await b.client(tlsCreds(c.ca, c.client.otherCa)).listQueues();
  }, { env });
}, P);

scenario("TL-06 a server certificate valid only 2020–2021 fails a verifying client", async () => {
  const c = await certs();
  const readyWithoutVerify = grpc.credentials.createSsl(read(c.ca), null, null, {
    rejectUnauthorized: false,
  });
  await withBroker(tlsSection(c.expired), readyWithoutVerify, async (b) => {
    await assertConnectFails(b.client(tlsCreds(c.ca)));
    // The server still presents the certificate as configured.
    const out = await sClient(b.addr, "-CAfile", c.ca);
    assert.match(out, /certificate has expired|Verify return code: 10/, out);
  });
}, P);

for (
  const [name, label] of [
    ["pkcs8", "PKCS#8 RSA"],
    ["pkcs1", "PKCS#1 RSA"],
    ["sec1", "SEC1 EC P-256"],
    ["sec1p384", "SEC1 EC P-384 (with EC PARAMETERS block)"],
  ] as const
) {
  scenario(`TL-07 the server starts and serves with a ${label} key`, async () => {
    const c = await certs();
    const creds = tlsCreds(c.ca);
    await withBroker(tlsSection(c.server[name]), creds, async (b) => {
      const client = b.client(creds);
      const q = uniq("tl07");
      await client.createQueue(q);
      await client.enqueue(q);
    });
  }, P);
}

scenario("TL-08 ALPN h2 is negotiated over TLS 1.2 and TLS 1.3", async () => {
  const c = await certs();
  const creds = tlsCreds(c.ca);
  await withBroker(tlsSection(c.server.pkcs8), creds, async (b) => {
    for (const version of ["-tls1_3", "-tls1_2"]) {
      const out = await sClient(b.addr, "-CAfile", c.ca, "-alpn", "h2", version);
      assert.match(out, /ALPN protocol: h2/, `${version}: ${out}`);
      assert.match(out, /Verify return code: 0 \(ok\)/, `${version}: ${out}`);
    }
  });
}, P);

scenario("TL-09 mTLS accepts client certificates without EKU and with clientAuth", async () => {
  const c = await certs();
  const noEku = tlsCreds(c.ca, c.client.noEku);
  await withBroker(tlsSection(c.server.sec1, c.ca), noEku, async (b) => {
    await b.client(noEku).listQueues();
    await b.client(tlsCreds(c.ca, c.client.clientAuth)).listQueues();
  });
}, P);

scenario("TL-10 TLS with [auth]: a request without key is UNAUTHENTICATED", async () => {
  const c = await certs();
  const creds = tlsCreds(c.ca, c.client.clientAuth);
  await withBroker(tlsSection(c.server.pkcs1, c.ca), creds, async (b) => {
    await assertStatus(
      b.client(creds).listQueues(),
      grpc.status.UNAUTHENTICATED,
      "invalid or missing api key",
    );
    const authed = b.client(creds, authorizationOptions(`Bearer ${BOOTSTRAP_KEY}`));
    await enqueueConsumeAck(authed, authed);
    assert.match(b.stderr, /listening on .*tls=true.*auth=true/);
  }, { extraToml: AUTH_TOML });
}, P);

async function expectTlsStartupError(tlsToml: string, reason: RegExp): Promise<void> {
  const r = await runBrokerExpectingExit({ toml: tlsToml });
  const err = brokerStderr(r.stderr).trimStart();
  assert.equal(r.code, 1, `exit status; stderr:\n${r.stderr}`);
  assert.ok(err.startsWith("error: invalid TLS configuration:"), err);
  assert.match(err, reason);
}

scenario("TL-11 an unreadable cert_file is an invalid TLS configuration", async () => {
  const c = await certs();
  await expectTlsStartupError(
    tlsSection({ cert: `${c.dir}/does-not-exist.pem`, key: c.server.pkcs8.key }),
    /cert_file/,
  );
}, P);

scenario("TL-11 [tls] without cert_file is a config parse error", async () => {
  const c = await certs();
  const r = await runBrokerExpectingExit({ toml: `[tls]\nkey_file = "${c.server.pkcs8.key}"` });
  assert.equal(r.code, 1);
  assert.ok(brokerStderr(r.stderr).trimStart().startsWith("error parsing"), r.stderr);
}, P);

scenario(
  "TL-11 bad TLS files: encrypted key, mismatched key, not PEM, missing CA file",
  async () => {
    const c = await certs();
    const garbage = `${c.dir}/garbage.pem`;
    await Deno.writeTextFile(garbage, "this is not a certificate\n");
    await expectTlsStartupError(
      tlsSection({ cert: c.server.pkcs8.cert, key: c.encryptedKey }),
      /encrypted/,
    );
    await expectTlsStartupError(
      tlsSection({ cert: c.server.pkcs8.cert, key: c.server.sec1.key }),
      /does not match/,
    );
    await expectTlsStartupError(
      tlsSection({ cert: garbage, key: c.server.pkcs8.key }),
      /cert_file/,
    );
    await expectTlsStartupError(
      tlsSection({ cert: c.server.pkcs8.cert, key: garbage }),
      /key_file/,
    );
    await expectTlsStartupError(
      tlsSection(c.server.pkcs8, `${c.dir}/no-such-ca.pem`),
      /ca_file/,
    );
  },
  P,
);
