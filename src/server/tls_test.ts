import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { loadTlsMaterial, serverCredentials, TlsConfigError } from "./tls.ts";

const HAVE_OPENSSL = (() => {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}

/** A self-signed certificate for `key.pem` (made with `keyArgs`) in a new directory. */
async function fixture(...keyArgs: string[]): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "fila-tls-unit-" });
  await openssl(dir, ...keyArgs);
  await Deno.writeTextFile(
    `${dir}/req.cnf`,
    "[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=x\n",
  );
  await openssl(
    dir,
    "req",
    "-config",
    "req.cnf",
    "-x509",
    "-new",
    "-key",
    "key.pem",
    "-out",
    "cert.pem",
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
  );
  return dir;
}

async function reason(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof TlsConfigError, String(e));
    return e.message;
  }
  return "OK";
}

Deno.test({
  name: "loadTlsMaterial() accepts PKCS#8, PKCS#1 and SEC1 keys",
  ignore: !HAVE_OPENSSL,
  async fn() {
    const variants = [
      ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "key.pem"],
      ["genrsa", "-traditional", "-out", "key.pem", "2048"],
      ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "key.pem"],
      ["ecparam", "-name", "secp384r1", "-genkey", "-out", "key.pem"],
    ];
    for (const args of variants) {
      const dir = await fixture(...args);
      const m = await loadTlsMaterial({ certFile: `${dir}/cert.pem`, keyFile: `${dir}/key.pem` });
      assert.equal(m.ca, undefined);
      assert.match(m.key.toString(), /^-----BEGIN (RSA |EC )?PRIVATE KEY-----/);
      assert.match(m.cert.toString(), /^-----BEGIN CERTIFICATE-----/);
      const withCa = await loadTlsMaterial({
        certFile: `${dir}/cert.pem`,
        keyFile: `${dir}/key.pem`,
        caFile: `${dir}/cert.pem`,
      });
      assert.ok(withCa.ca);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "loadTlsMaterial() reports unusable files",
  ignore: !HAVE_OPENSSL,
  async fn() {
    const dir = await fixture("genrsa", "-traditional", "-out", "key.pem", "2048");
    await openssl(dir, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "other.pem");
    await openssl(dir, "ecparam", "-name", "secp521r1", "-genkey", "-noout", "-out", "p521.pem");
    await openssl(
      dir,
      "pkey",
      "-in",
      "key.pem",
      "-aes256",
      "-passout",
      "pass:x",
      "-out",
      "enc.pem",
    );
    await openssl(
      dir,
      "rsa",
      "-in",
      "key.pem",
      "-aes256",
      "-passout",
      "pass:x",
      "-traditional",
      "-out",
      "enc1.pem",
    );
    await Deno.writeTextFile(`${dir}/junk.pem`, "junk\n");
    const cert = `${dir}/cert.pem`;
    const key = `${dir}/key.pem`;
    const table: Array<[Parameters<typeof loadTlsMaterial>[0], RegExp]> = [
      [{ certFile: `${dir}/none.pem`, keyFile: key }, /^cannot read cert_file .*none\.pem: /],
      [{ certFile: cert, keyFile: `${dir}/none.pem` }, /^cannot read key_file /],
      [{ certFile: `${dir}/junk.pem`, keyFile: key }, /contains no PEM certificate/],
      [{ certFile: cert, keyFile: `${dir}/junk.pem` }, /exactly one PEM private key/],
      [{ certFile: cert, keyFile: `${dir}/enc.pem` }, /encrypted private keys are not supported/],
      [{ certFile: cert, keyFile: `${dir}/enc1.pem` }, /encrypted private keys are not supported/],
      [{ certFile: cert, keyFile: `${dir}/p521.pem` }, /unsupported EC curve secp521r1/],
      [{ certFile: cert, keyFile: `${dir}/other.pem` }, /does not match the first certificate/],
      [{ certFile: cert, keyFile: key, caFile: `${dir}/junk.pem` }, /ca_file .* no PEM/],
      [{ certFile: cert, keyFile: key, caFile: `${dir}/none.pem` }, /^cannot read ca_file /],
    ];
    for (const [files, want] of table) {
      assert.match(await reason(loadTlsMaterial(files)), want, JSON.stringify(files));
    }
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("serverCredentials(): insecure without material, CA list only for mTLS", () => {
  assert.equal(serverCredentials()._isSecure(), false);
  const cert = Buffer.from("c");
  const key = Buffer.from("k");
  const oneWay = serverCredentials({ cert, key });
  assert.equal(oneWay._isSecure(), true);
  assert.equal(oneWay._getSecureContextOptions()?.ca, undefined);
  assert.equal(oneWay._getConstructorOptions()?.requestCert, false);
  const mtls = serverCredentials({ cert, key, ca: Buffer.from("ca") });
  assert.equal(mtls._getConstructorOptions()?.requestCert, true);
  assert.equal(mtls._getConstructorOptions()?.rejectUnauthorized, true);
  assert.ok(mtls._getSecureContextOptions()?.ca);
});
