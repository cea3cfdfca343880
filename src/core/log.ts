/**
 * Structured logs to stderr: one line per event, RFC 3339 UTC timestamp, level, message and
 * `key=value` fields. Callers never pass payloads or tokens.
 */
export type LogLevel = "error" | "warn" | "info" | "debug" | "trace";

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };
const encoder = new TextEncoder();

export type LogFields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  error(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  enabled(level: LogLevel): boolean;
}

function formatValue(v: string | number | boolean): string {
  const s = String(v);
  return /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s);
}

/** A logger writing to stderr at `level` and above. */
export function createLogger(level: LogLevel = "info"): Logger {
  const max = RANK[level];
  const write = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (RANK[lvl] > max) return;
    let line = `${new Date().toISOString()} ${lvl.toUpperCase()} ${msg}`;
    if (fields) {
      for (const [k, v] of Object.entries(fields)) {
        if (v !== undefined) line += ` ${k}=${formatValue(v)}`;
      }
    }
    try {
      Deno.stderr.writeSync(encoder.encode(line + "\n"));
    } catch {
      // stderr closed: nothing sensible left to do with a log line
    }
  };
  return {
    error: (m, f) => write("error", m, f),
    warn: (m, f) => write("warn", m, f),
    info: (m, f) => write("info", m, f),
    debug: (m, f) => write("debug", m, f),
    enabled: (l) => RANK[l] <= max,
  };
}

/** Discards everything; for tests. */
export const silentLogger: Logger = {
  error() {},
  warn() {},
  info() {},
  debug() {},
  enabled: () => false,
};
