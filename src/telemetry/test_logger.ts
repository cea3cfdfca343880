/** A Logger that keeps its lines, for the telemetry tests. */
import type { LogFields, Logger, LogLevel } from "../core/log.ts";

export interface LogLine {
  level: LogLevel;
  msg: string;
  fields?: LogFields;
}

export class RecordingLogger implements Logger {
  readonly lines: LogLine[] = [];
  error(msg: string, fields?: LogFields): void {
    this.lines.push({ level: "error", msg, fields });
  }
  warn(msg: string, fields?: LogFields): void {
    this.lines.push({ level: "warn", msg, fields });
  }
  info(msg: string, fields?: LogFields): void {
    this.lines.push({ level: "info", msg, fields });
  }
  debug(msg: string, fields?: LogFields): void {
    this.lines.push({ level: "debug", msg, fields });
  }
  enabled(): boolean {
    return true;
  }
  find(msg: string): LogLine | undefined {
    return this.lines.find((l) => l.msg === msg);
  }
}
