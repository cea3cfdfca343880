/** Broker address parsing and the grpc-js credentials / channel options of a connection. */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import * as net from "node:net";
import * as tls from "node:tls";
import { InvalidArgumentError } from "./errors.ts";

/**
 * TLS settings. PEM contents (`ca`, `cert`, `key`) or file paths (`caFile`, `certFile`,
 * `keyFile`); without a CA the system trust store is used.
 *
 * @example
 * ```ts
 * const client = await FilaClient.connect("https://broker.internal:5555", {
 *   tls: { caFile: "ca.pem", certFile: "client.pem", keyFile: "client.key" },
 * });
 * ```
 */
export interface TlsOptions {
  ca?: string | Uint8Array;
  caFile?: string;
  /** Client certificate chain (mTLS). */
  cert?: string | Uint8Array;
  certFile?: string;
  /** Client private key (mTLS). */
  key?: string | Uint8Array;
  keyFile?: string;
  /** Name to verify the server certificate against (default: the host of the address). */
  serverName?: string;
}

export interface Endpoint {
  /** Host without IPv6 brackets. */
  host: string;
  port: number;
  /** grpc-js target `host:port` (IPv6 in brackets). */
  target: string;
  /** `https://` was given. */
  https: boolean;
}

const DEFAULT_PORT = 5555;

/**
 * Parses `host:port`, `http://host[:port]` or `https://host[:port]` (https implies TLS; the port
 * defaults to 5555).
 *
 * @example
 * ```ts
 * parseAddress("https://fila.internal"); // { host: "fila.internal", port: 5555, https: true, … }
 * ```
 */
export function parseAddress(addr: string): Endpoint {
  let url: URL;
  try {
    url = new URL(addr.includes("://") ? addr : `http://${addr}`);
  } catch {
    throw new InvalidArgumentError(`invalid broker address ${JSON.stringify(addr)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InvalidArgumentError(
      `invalid broker address ${JSON.stringify(addr)}: scheme must be http or https`,
    );
  }
  if (!url.hostname) {
    throw new InvalidArgumentError(`invalid broker address ${JSON.stringify(addr)}: no host`);
  }
  // URL drops a port equal to the scheme's default (https://h:443), which is still meant here.
  const explicit = /^(?:[a-z]+:\/\/)?(?:\[[^\]]*\]|[^:/\[]+):(\d+)(?:\/|$)/i.exec(addr);
  const port = explicit ? Number(explicit[1]) : DEFAULT_PORT;
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port,
    target: `${url.hostname}:${port}`,
    https: url.protocol === "https:",
  };
}

function pem(value: string | Uint8Array | undefined, file: string | undefined): Buffer | null {
  if (value !== undefined) return Buffer.from(value);
  if (file !== undefined) return readFileSync(file);
  return null;
}

/**
 * Deno's node:tls refuses an IP literal as TLS server name (RFC 6066 keeps IPs out of SNI) while
 * grpc-js passes the target host as one; IP targets therefore send a placeholder name and the
 * certificate is checked against the real IP by checkServerIdentity.
 */
const IP_SNI_PLACEHOLDER = "fila-broker";

/** Credentials and channel options for `endpoint`; `tlsOpts` null = cleartext h2c. */
export function channelSetup(
  endpoint: Endpoint,
  tlsOpts: TlsOptions | null,
): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  if (!tlsOpts) return { credentials: grpc.credentials.createInsecure(), options: {} };
  const options: grpc.ChannelOptions = {};
  const verifyAs = tlsOpts.serverName ?? endpoint.host;
  if (tlsOpts.serverName) options["grpc.ssl_target_name_override"] = tlsOpts.serverName;
  else if (net.isIP(endpoint.host)) options["grpc.ssl_target_name_override"] = IP_SNI_PLACEHOLDER;
  const credentials = grpc.credentials.createSsl(
    pem(tlsOpts.ca, tlsOpts.caFile),
    pem(tlsOpts.key, tlsOpts.keyFile),
    pem(tlsOpts.cert, tlsOpts.certFile),
    { checkServerIdentity: (_name, cert) => tls.checkServerIdentity(verifyAs, cert) },
  );
  return { credentials, options };
}
