/**
 * Server configuration: `fila.toml` plus the three environment variables of operations.md §1–§2.
 * Validation is complete at startup so that a bad value is reported once, with the key and the
 * allowed range, instead of surfacing later as a crash deep inside the broker.
 */
import { isIPv4, isIPv6 } from "node:net";
import { resolve } from "node:path";
import { parse as parseToml, TomlError } from "smol-toml";

export type LogLevel = "error" | "warn" | "info" | "debug" | "trace";

export const LOG_LEVELS: readonly LogLevel[] = ["error", "warn", "info", "debug", "trace"];

export interface FilaConfig {
  server: { listenAddr: string };
  scheduler: { commandChannelCapacity: number; idleTimeoutMs: number; quantum: number };
  /** Payload bytes of stored messages held in memory; the rest are read back to deliver. */
  storage: { payloadCacheBytes: number };
  lua: {
    defaultTimeoutMs: number;
    defaultMemoryLimitBytes: number;
    circuitBreakerThreshold: number;
    circuitBreakerCooldownMs: number;
  };
  telemetry: {
    otlpEndpoint?: string;
    serviceName: string;
    metricsIntervalMs: number;
    prometheusListenAddr?: string;
  };
  /** Paths are absolute (resolved against the working directory). */
  tls?: { certFile: string; keyFile: string; caFile?: string };
  auth?: { bootstrapApiKey: string };
  dataDir: string;
  logLevel: LogLevel;
  /** The file that was read, as named in error messages; absent when running on defaults. */
  configPath?: string;
  /** Non-fatal problems for the caller to log once logging is set up. */
  warnings: string[];
}

export const DEFAULTS = {
  server: { listenAddr: "0.0.0.0:5555" },
  scheduler: { commandChannelCapacity: 10_000, idleTimeoutMs: 100, quantum: 1_000 },
  storage: { payloadCacheMb: 64 },
  lua: {
    defaultTimeoutMs: 10,
    defaultMemoryLimitBytes: 1_048_576,
    circuitBreakerThreshold: 3,
    circuitBreakerCooldownMs: 10_000,
  },
  telemetry: { serviceName: "fila", metricsIntervalMs: 10_000 },
  dataDir: "data",
  logLevel: "info",
  candidates: ["./fila.toml", "/etc/fila/fila.toml"],
} as const;

/** The message is the complete stderr line main prints before exiting with status 1. */
export class ConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConfigError";
  }
}

export interface ParseConfigOptions {
  /** Used only to name the file in error messages. */
  path: string;
  env: Record<string, string | undefined>;
  cwd: string;
}

export interface LoadConfigOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Tried in order; relative entries are resolved against `cwd`. */
  candidates?: readonly string[];
}

interface IntRule {
  min: number;
  max: number;
}

const INT_RULES = {
  "scheduler.command_channel_capacity": { min: 1, max: 10_000_000 },
  "scheduler.idle_timeout_ms": { min: 1, max: 60_000 },
  "scheduler.quantum": { min: 1, max: 4_294_967_295 },
  "storage.payload_cache_mb": { min: 0, max: 1_048_576 },
  "lua.default_timeout_ms": { min: 1, max: 60_000 },
  "lua.default_memory_limit_bytes": { min: 65_536, max: 1_073_741_824 },
  "lua.circuit_breaker_threshold": { min: 0, max: 1_000_000 },
  "lua.circuit_breaker_cooldown_ms": { min: 0, max: 86_400_000 },
  "telemetry.metrics_interval_ms": { min: 100, max: 3_600_000 },
} as const satisfies Record<string, IntRule>;

type IntKey = keyof typeof INT_RULES;

type Table = Record<string, unknown>;

/** Thrown inside the validators; turned into a ConfigError that names the file. */
class Invalid extends Error {}

export function parseConfig(text: string, options: ParseConfigOptions): FilaConfig {
  let doc: Table;
  try {
    // Integers as bigint keep TOML integers and floats apart, so `quantum = 1.0` can be refused.
    doc = parseToml(text, { integersAsBigInt: true }) as Table;
  } catch (err) {
    throw new ConfigError(`error parsing ${options.path}: ${describeTomlError(err)}`, {
      cause: err,
    });
  }
  try {
    return build(doc, options.env, options.cwd, options.path);
  } catch (err) {
    if (err instanceof Invalid) {
      throw new ConfigError(`error parsing ${options.path}: ${err.message}`);
    }
    throw err;
  }
}

/** The configuration when no file exists: every default, plus the environment. */
export function defaultConfig(
  env: Record<string, string | undefined> = {},
  cwd = ".",
): FilaConfig {
  return build(Object.create(null), env, cwd, undefined);
}

export async function loadConfig(options: LoadConfigOptions = {}): Promise<FilaConfig> {
  const cwd = options.cwd ?? Deno.cwd();
  const env = options.env ?? readEnv();
  for (const candidate of options.candidates ?? DEFAULTS.candidates) {
    const full = resolve(cwd, candidate);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(full);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      throw new ConfigError(`error reading ${candidate}: ${errorText(err)}`, { cause: err });
    }
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch (err) {
      throw new ConfigError(`error parsing ${candidate}: file is not valid UTF-8`, {
        cause: err,
      });
    }
    return parseConfig(text, { path: candidate, env, cwd });
  }
  return defaultConfig(env, cwd);
}

/**
 * Splits `<IPv4>:<port>` or `[<IPv6>]:<port>`; null when the text is not exactly that.
 * Host names are refused so that the address bound is the address configured.
 */
export function parseSocketAddr(value: string): { host: string; port: number } | null {
  let host: string;
  let portText: string;
  if (value.startsWith("[")) {
    const close = value.indexOf("]");
    if (close < 0 || value[close + 1] !== ":") return null;
    host = value.slice(1, close);
    portText = value.slice(close + 2);
    // Zone identifiers are interface-specific and not portable between hosts.
    if (host.includes("%") || !isIPv6(host)) return null;
  } else {
    const colon = value.lastIndexOf(":");
    if (colon < 0) return null;
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
    if (!isIPv4(host)) return null;
  }
  if (!/^[0-9]{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  if (port > 65_535) return null;
  return { host, port };
}

function readEnv(): Record<string, string | undefined> {
  // Only the documented variables are read, which also keeps --allow-env narrowable.
  const env: Record<string, string | undefined> = {};
  for (const name of ["FILA_DATA_DIR", "FILA_BOOTSTRAP_APIKEY", "FILA_LOG"]) {
    env[name] = Deno.env.get(name);
  }
  return env;
}

function build(
  doc: Table,
  env: Record<string, string | undefined>,
  cwd: string,
  path: string | undefined,
): FilaConfig {
  const warnings: string[] = [];

  const cluster = section(doc, "cluster");
  if (cluster !== undefined) {
    const enabled = cluster.enabled;
    if (enabled !== undefined && typeof enabled !== "boolean") {
      throw new Invalid(`cluster.enabled must be a boolean, got ${describeValue(enabled)}`);
    }
    if (enabled === true) throw new Invalid("clustering is not supported");
  }

  const server = section(doc, "server");
  const scheduler = section(doc, "scheduler");
  const lua = section(doc, "lua");
  const storage = section(doc, "storage");
  const telemetry = section(doc, "telemetry");
  const tlsTable = section(doc, "tls");
  const authTable = section(doc, "auth");

  const config: FilaConfig = {
    server: {
      listenAddr: socketAddr(server, "server", "listen_addr") ?? DEFAULTS.server.listenAddr,
    },
    scheduler: {
      commandChannelCapacity: int(scheduler, "scheduler.command_channel_capacity") ??
        DEFAULTS.scheduler.commandChannelCapacity,
      idleTimeoutMs: int(scheduler, "scheduler.idle_timeout_ms") ??
        DEFAULTS.scheduler.idleTimeoutMs,
      quantum: int(scheduler, "scheduler.quantum") ?? DEFAULTS.scheduler.quantum,
    },
    storage: {
      payloadCacheBytes: (int(storage, "storage.payload_cache_mb") ??
        DEFAULTS.storage.payloadCacheMb) * 1_048_576,
    },
    lua: {
      defaultTimeoutMs: int(lua, "lua.default_timeout_ms") ?? DEFAULTS.lua.defaultTimeoutMs,
      defaultMemoryLimitBytes: int(lua, "lua.default_memory_limit_bytes") ??
        DEFAULTS.lua.defaultMemoryLimitBytes,
      circuitBreakerThreshold: int(lua, "lua.circuit_breaker_threshold") ??
        DEFAULTS.lua.circuitBreakerThreshold,
      circuitBreakerCooldownMs: int(lua, "lua.circuit_breaker_cooldown_ms") ??
        DEFAULTS.lua.circuitBreakerCooldownMs,
    },
    telemetry: {
      serviceName: DEFAULTS.telemetry.serviceName,
      metricsIntervalMs: int(telemetry, "telemetry.metrics_interval_ms") ??
        DEFAULTS.telemetry.metricsIntervalMs,
    },
    dataDir: nonEmpty(env.FILA_DATA_DIR) ?? DEFAULTS.dataDir,
    logLevel: DEFAULTS.logLevel,
    warnings,
  };

  const otlp = str(telemetry, "telemetry", "otlp_endpoint");
  if (otlp !== undefined && otlp !== "") {
    if (!URL.canParse(otlp)) {
      throw new Invalid(`telemetry.otlp_endpoint must be a URL, got ${JSON.stringify(otlp)}`);
    }
    config.telemetry.otlpEndpoint = otlp;
  }
  const serviceName = str(telemetry, "telemetry", "service_name");
  if (serviceName !== undefined) {
    if (serviceName === "") throw new Invalid("telemetry.service_name must not be empty");
    config.telemetry.serviceName = serviceName;
  }
  const prometheus = str(telemetry, "telemetry", "prometheus_listen_addr");
  if (prometheus !== undefined && prometheus !== "") {
    config.telemetry.prometheusListenAddr = socketAddr(
      telemetry,
      "telemetry",
      "prometheus_listen_addr",
    );
  }

  if (tlsTable !== undefined) {
    const certFile = requiredPath(tlsTable, "cert_file");
    const keyFile = requiredPath(tlsTable, "key_file");
    const tls: NonNullable<FilaConfig["tls"]> = {
      certFile: resolve(cwd, certFile),
      keyFile: resolve(cwd, keyFile),
    };
    const caFile = str(tlsTable, "tls", "ca_file");
    if (caFile !== undefined) {
      // An empty path silently downgrading mTLS to one-way TLS would be a security surprise.
      if (caFile === "") throw new Invalid("tls.ca_file must not be empty");
      tls.caFile = resolve(cwd, caFile);
    }
    config.tls = tls;
  }

  // The file must be valid on its own even when the environment supplies the key.
  let fileKey: string | undefined;
  if (authTable !== undefined) {
    fileKey = str(authTable, "auth", "bootstrap_apikey");
    if (fileKey === undefined) {
      throw new Invalid("auth.bootstrap_apikey is required when [auth] is present");
    }
    if (fileKey === "") throw new Invalid("auth.bootstrap_apikey must not be empty");
  }
  const bootstrapApiKey = nonEmpty(env.FILA_BOOTSTRAP_APIKEY) ?? fileKey;
  if (bootstrapApiKey !== undefined) config.auth = { bootstrapApiKey };

  const logText = env.FILA_LOG;
  if (logText !== undefined && logText !== "") {
    const level = logText.trim().toLowerCase();
    if ((LOG_LEVELS as readonly string[]).includes(level)) {
      config.logLevel = level as LogLevel;
    } else {
      warnings.push(
        `unknown FILA_LOG value ${JSON.stringify(logText)}; using "info" ` +
          `(expected one of ${LOG_LEVELS.join(", ")})`,
      );
    }
  }

  if (path !== undefined) config.configPath = path;
  return config;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

function isTable(value: unknown): value is Table {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof Date);
}

function section(doc: Table, name: string): Table | undefined {
  if (!Object.hasOwn(doc, name)) return undefined;
  const value = doc[name];
  if (!isTable(value)) {
    throw new Invalid(`[${name}] must be a table, got ${describeValue(value)}`);
  }
  return value;
}

function int(table: Table | undefined, key: IntKey): number | undefined {
  const field = key.slice(key.indexOf(".") + 1);
  if (table === undefined || !Object.hasOwn(table, field)) return undefined;
  const value = table[field];
  const { min, max } = INT_RULES[key];
  if (typeof value !== "bigint") {
    throw new Invalid(
      `${key} must be an integer between ${min} and ${max}, got ${describeValue(value)}`,
    );
  }
  if (value < BigInt(min) || value > BigInt(max)) {
    throw new Invalid(`${key} must be between ${min} and ${max}, got ${value}`);
  }
  return Number(value);
}

function str(table: Table | undefined, sectionName: string, field: string): string | undefined {
  if (table === undefined || !Object.hasOwn(table, field)) return undefined;
  const value = table[field];
  if (typeof value !== "string") {
    throw new Invalid(`${sectionName}.${field} must be a string, got ${describeValue(value)}`);
  }
  return value;
}

function socketAddr(
  table: Table | undefined,
  sectionName: string,
  field: string,
): string | undefined {
  const value = str(table, sectionName, field);
  if (value === undefined) return undefined;
  if (parseSocketAddr(value) === null) {
    throw new Invalid(
      `${sectionName}.${field} must be "<IPv4>:<port>" or "[<IPv6>]:<port>" with an IP ` +
        `address (not a host name) and a port between 0 and 65535, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function requiredPath(table: Table, field: string): string {
  const value = str(table, "tls", field);
  if (value === undefined) throw new Invalid(`tls.${field} is required when [tls] is present`);
  if (value === "") throw new Invalid(`tls.${field} must not be empty`);
  return value;
}

function describeValue(value: unknown): string {
  if (typeof value === "string") return `string ${JSON.stringify(value)}`;
  if (typeof value === "bigint") return `integer ${value}`;
  if (typeof value === "number") {
    // A float that happens to be whole (e.g. `100.0`) must still read as a float.
    const text = Number.isInteger(value) && Math.abs(value) < 1e21
      ? value.toFixed(1)
      : String(value);
    return `float ${text}`;
  }
  if (typeof value === "boolean") return `boolean ${value}`;
  if (value instanceof Date) return "a date-time";
  if (Array.isArray(value)) return "an array";
  return "a table";
}

function describeTomlError(err: unknown): string {
  if (err instanceof TomlError) {
    // smol-toml appends a multi-line code excerpt; stderr gets one line with the position.
    const reason = err.message.split("\n", 1)[0].replace(/^Invalid TOML document: /, "");
    return `invalid TOML at line ${err.line}, column ${err.column}: ${reason}`;
  }
  return `invalid TOML: ${errorText(err)}`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
