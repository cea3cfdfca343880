/**
 * TLS and mTLS for the listener (operations.md §3). The PEM files are parsed and checked here,
 * at startup, so a bad file is a clear startup error instead of a failure at every handshake.
 *
 * grpc-js's ServerCredentials.createSsl is not used: with a null CA list it falls back to the
 * bundle named by GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, and Deno's TLS server then sends a
 * certificate request naming every one of those CAs (even with requestCert = false), which
 * OpenSSL clients reject as "excessive message size". One-way TLS therefore passes no CA at all.
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import type { SecureContextOptions } from "node:tls";

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile?: string;
}

/** The message is the `<reason>` of `error: invalid TLS configuration: <reason>`. */
export class TlsConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TlsConfigError";
  }
}

/** Validated PEM material, ready for the listener. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** Present = mTLS: client certificates are required and must chain to one of these CAs. */
  ca?: Buffer;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
const KEY_LABELS = new Set(["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"]);
/** What rustls (behind Deno's TLS) can sign with; other curves would fail at handshake time. */
const EC_CURVES = new Set(["prime256v1", "secp384r1"]);

interface PemBlock {
  label: string;
  text: string;
}

function pemBlocks(text: string): PemBlock[] {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({ label: m[1], text: m[0] }));
}

async function readPem(what: string, path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new TlsConfigError(`cannot read ${what} ${path}: ${(e as Error).message}`, { cause: e });
  }
}

interface ParsedCertificates {
  certs: X509Certificate[];
  /** Only the certificate blocks, so stray text in the file never reaches the TLS stack. */
  pem: string;
}

function parseCertificates(what: string, path: string, text: string): ParsedCertificates {
  const blocks = pemBlocks(text).filter((b) => b.label === "CERTIFICATE");
  if (blocks.length === 0) {
    throw new TlsConfigError(`${what} ${path} contains no PEM certificate`);
  }
  const certs = blocks.map((b, i) => {
    try {
      return new X509Certificate(b.text);
    } catch (e) {
      throw new TlsConfigError(
        `${what} ${path}: certificate ${i + 1} is invalid: ${(e as Error).message}`,
        { cause: e },
      );
    }
  });
  return { certs, pem: blocks.map((b) => b.text).join("\n") + "\n" };
}

interface ParsedKey {
  key: KeyObject;
  /** The key block alone (e.g. without a leading "EC PARAMETERS" block). */
  pem: string;
}

function parseKey(path: string, text: string): ParsedKey {
  const blocks = pemBlocks(text);
  if (
    blocks.some((b) => b.label === "ENCRYPTED PRIVATE KEY") || /Proc-Type:\s*4,ENCRYPTED/.test(text)
  ) {
    throw new TlsConfigError(`key_file ${path}: encrypted private keys are not supported`);
  }
  const keys = blocks.filter((b) => KEY_LABELS.has(b.label));
  if (keys.length !== 1) {
    throw new TlsConfigError(
      `key_file ${path} must contain exactly one PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC), found ${keys.length}`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keys[0].text);
  } catch (e) {
    throw new TlsConfigError(`key_file ${path}: invalid private key: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const type = key.asymmetricKeyType;
  if (type === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? "unknown";
    if (!EC_CURVES.has(curve)) {
      throw new TlsConfigError(
        `key_file ${path}: unsupported EC curve ${curve} (use P-256 or P-384)`,
      );
    }
  } else if (type !== "rsa") {
    throw new TlsConfigError(`key_file ${path}: unsupported key type ${type} (use RSA or ECDSA)`);
  }
  return { key, pem: keys[0].text + "\n" };
}

/** Reads and checks the configured files; throws TlsConfigError with the reason. */
export async function loadTlsMaterial(files: TlsFiles): Promise<TlsMaterial> {
  const certText = await readPem("cert_file", files.certFile);
  const keyText = await readPem("key_file", files.keyFile);
  const chain = parseCertificates("cert_file", files.certFile, certText);
  const key = parseKey(files.keyFile, keyText);
  if (!chain.certs[0].checkPrivateKey(key.key)) {
    throw new TlsConfigError(
      `key_file ${files.keyFile} does not match the first certificate of cert_file ${files.certFile}`,
    );
  }
  const material: TlsMaterial = {
    cert: Buffer.from(chain.pem),
    key: Buffer.from(key.pem),
  };
  if (files.caFile !== undefined) {
    const caText = await readPem("ca_file", files.caFile);
    material.ca = Buffer.from(parseCertificates("ca_file", files.caFile, caText).pem);
  }
  return material;
}

/** Server credentials with exactly the options we choose (see the module comment). */
class FilaServerCredentials extends grpc.ServerCredentials {
  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/** Insecure credentials without material; one-way TLS without `ca`; mTLS with it. */
export function serverCredentials(material?: TlsMaterial): grpc.ServerCredentials {
  if (!material) return grpc.ServerCredentials.createInsecure();
  const context: SecureContextOptions = { cert: material.cert, key: material.key };
  if (!material.ca) return new FilaServerCredentials({ requestCert: false }, context);
  context.ca = material.ca;
  return new FilaServerCredentials({ requestCert: true, rejectUnauthorized: true }, context);
}
