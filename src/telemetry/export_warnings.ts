/**
 * Export failures are warnings that never reach message handling (operations.md §6.1). An
 * unreachable collector fails every interval, so repeats are folded into one line per minute.
 */
import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import type { Logger } from "../core/log.ts";

export const WARN_EVERY_MS = 60_000;

export class FailureWarner {
  readonly #log: Logger;
  readonly #what: string;
  readonly #now: () => number;
  #lastWarnAt = -Infinity;
  #suppressed = 0;
  #failing = false;

  constructor(log: Logger, what: string, now: () => number = () => performance.now()) {
    this.#log = log;
    this.#what = what;
    this.#now = now;
  }

  failed(error: unknown): void {
    this.#failing = true;
    const now = this.#now();
    if (now - this.#lastWarnAt < WARN_EVERY_MS) {
      this.#suppressed++;
      return;
    }
    this.#log.warn("telemetry export failed", {
      signal: this.#what,
      error: errorText(error),
      suppressed: this.#suppressed || undefined,
    });
    this.#lastWarnAt = now;
    this.#suppressed = 0;
  }

  succeeded(): void {
    if (!this.#failing) return;
    this.#failing = false;
    this.#lastWarnAt = -Infinity;
    this.#suppressed = 0;
    this.#log.info("telemetry export recovered", { signal: this.#what });
  }
}

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return e === undefined ? "unknown error" : String(e);
}

interface Exporter<T> {
  export(items: T, resultCallback: (result: ExportResult) => void): void;
}

/** Makes `exporter` report its failures through `warner`; results still reach the SDK. */
export function warnOnFailure<T, E extends Exporter<T>>(exporter: E, warner: FailureWarner): E {
  const original = exporter.export.bind(exporter);
  exporter.export = (items: T, done: (result: ExportResult) => void) => {
    const report = (result: ExportResult) => {
      if (result.code === ExportResultCode.SUCCESS) warner.succeeded();
      else warner.failed(result.error);
      done(result);
    };
    try {
      original(items, report);
    } catch (e) {
      report({ code: ExportResultCode.FAILED, error: e as Error });
    }
  };
  return exporter;
}
