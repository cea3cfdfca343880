/**
 * Where and how the CLI connects (operations.md §5.1): address parsing, TLS material, and a
 * transport probe that turns "cannot connect" into a prompt error with the OS or TLS reason.
 */
import * as grpc from "@grpc/grpc-js";
import * as net from "node:net";
import * as tls from "node:tls";
import { Buffer } from "node:buffer";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { CliError, osReason } from "./errors.ts";

export interface ConnectionOptions {
  addr: string;
  apiKey?: string;
  tls?: boolean;
  tlsCaCert?: string;
  tlsCert?: string;
  tlsKey?: string;
}

export interface Endpoint {
  /** Host name or IP literal, without IPv6 brackets. */
  host: string;
  port: number;
  /** The grpc-js target, `host:port` (IPv6 in brackets). */
  target: string;
  https: boolean;
}

const DEFAULT_PORT = 5555;

/** Parses `http[s]://host[:port]`; a bare `host[:port]` counts as `http://`. */
export function parseAddr(addr: string): Endpoint {
  const invalid = (reason: string) => new CliError(`invalid broker address ${addr}: ${reason}`);
  let url: URL;
  try {
    url = new URL(addr.includes("://") ? addr : `http://${addr}`);
  } catch {
    throw invalid("not a URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw invalid("scheme must be http or https");
  }
  if (url.hostname === "") throw invalid("missing host");
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) {
    throw invalid("only scheme, host and port are allowed");
  }
  const port = url.port === "" ? DEFAULT_PORT : Number(url.port);
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port,
    target: `${url.hostname}:${port}`,
    https: url.protocol === "https:",
  };
}

/** PEM material for a TLS connection; an absent `ca` means the system trust store. */
export interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

function readPem(path: string, what: string): Buffer {
  try {
    return Buffer.from(Deno.readFileSync(path));
  } catch (e) {
    throw new CliError(`cannot read ${what} ${path}: ${osReason(e)}`);
  }
}

/**
 * Reads and checks the TLS files, or returns null for a cleartext connection. Node's
 * createSecureContext accepts any text under Deno, so the PEM contents are parsed here to report
 * bad files before connecting rather than as an opaque handshake failure.
 */
export function loadTlsMaterial(opts: ConnectionOptions, endpoint: Endpoint): TlsMaterial | null {
  if (!endpoint.https && !opts.tls && !opts.tlsCaCert && !opts.tlsCert) return null;
  const material: TlsMaterial = {};
  if (opts.tlsCaCert) material.ca = readPem(opts.tlsCaCert, "CA cert");
  if (opts.tlsCert) material.cert = readPem(opts.tlsCert, "client cert");
  if (opts.tlsKey) material.key = readPem(opts.tlsKey, "client key");
  const failed = (reason: string) => new CliError(`TLS configuration failed: ${reason}`);
  const certificate = (pem: Buffer, what: string, path: string) => {
    try {
      return new X509Certificate(pem);
    } catch (e) {
      throw failed(`invalid ${what} ${path}: ${(e as Error).message}`);
    }
  };
  if (material.ca) certificate(material.ca, "CA cert", opts.tlsCaCert!);
  if (material.cert && material.key) {
    const cert = certificate(material.cert, "client cert", opts.tlsCert!);
    let key;
    try {
      key = createPrivateKey(material.key);
    } catch (e) {
      throw failed(`invalid client key ${opts.tlsKey}: ${(e as Error).message}`);
    }
    if (!cert.checkPrivateKey(key)) {
      throw failed(`client key ${opts.tlsKey} does not match client cert ${opts.tlsCert}`);
    }
  }
  return material;
}

/**
 * Deno's node:tls refuses an IP literal as TLS server name (RFC 6066 forbids it in SNI), yet
 * grpc-js always passes the target host as one. For IP targets the channel therefore sends a
 * placeholder name, and the certificate is still checked against the real IP below.
 */
const IP_SNI_PLACEHOLDER = "fila-broker";

/** grpc-js credentials and channel options for `endpoint`. */
export function channelSetup(
  endpoint: Endpoint,
  material: TlsMaterial | null,
): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  const options: grpc.ChannelOptions = { "grpc.max_receive_message_length": -1 };
  if (!material) return { credentials: grpc.credentials.createInsecure(), options };
  if (net.isIP(endpoint.host)) options["grpc.ssl_target_name_override"] = IP_SNI_PLACEHOLDER;
  const credentials = grpc.credentials.createSsl(material.ca, material.key, material.cert, {
    checkServerIdentity: (_name, cert) => tls.checkServerIdentity(endpoint.host, cert),
  });
  return { credentials, options };
}

/**
 * Opens (and closes) one TCP or TLS connection the way grpc-js will, so that a refused
 * connection or a rejected certificate fails at once with its reason instead of after grpc-js's
 * silent retries until the deadline.
 */
export function probe(
  endpoint: Endpoint,
  material: TlsMaterial | null,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = material
      ? tls.connect({
        host: endpoint.host,
        port: endpoint.port,
        servername: net.isIP(endpoint.host) ? undefined : endpoint.host,
        ca: material.ca,
        cert: material.cert,
        key: material.key,
        ALPNProtocols: ["h2"],
      })
      : net.connect({ host: endpoint.host, port: endpoint.port });
    const timer = setTimeout(() => finish(new Error("timed out")), timeoutMs);
    const finish = (err?: Error) => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on("error", () => {});
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    socket.once("error", (e) => finish(e));
    socket.once(material ? "secureConnect" : "connect", () => finish());
  });
}
