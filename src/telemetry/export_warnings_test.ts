import assert from "node:assert/strict";
import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import { FailureWarner, WARN_EVERY_MS, warnOnFailure } from "./export_warnings.ts";
import { RecordingLogger } from "./test_logger.ts";

Deno.test("repeated export failures fold into one warning per minute", () => {
  const log = new RecordingLogger();
  let now = 0;
  const w = new FailureWarner(log, "metrics", () => now);
  w.failed(new Error("connect ECONNREFUSED"));
  w.failed(new Error("connect ECONNREFUSED"));
  now += WARN_EVERY_MS / 2;
  w.failed(new Error("connect ECONNREFUSED"));
  assert.equal(log.lines.length, 1);
  assert.deepEqual(log.lines[0], {
    level: "warn",
    msg: "telemetry export failed",
    fields: { signal: "metrics", error: "connect ECONNREFUSED", suppressed: undefined },
  });
  now += WARN_EVERY_MS;
  w.failed(new Error("again"));
  assert.equal(log.lines.length, 2);
  assert.equal(log.lines[1].fields?.suppressed, 2);
  w.succeeded();
  assert.equal(log.lines[2].msg, "telemetry export recovered");
  w.succeeded();
  assert.equal(log.lines.length, 3);
});

Deno.test("wrapped exporters report failures, including thrown ones, and pass results on", () => {
  const log = new RecordingLogger();
  const results: ExportResult[] = [];
  const failing = warnOnFailure({
    export(_items: number[], done: (r: ExportResult) => void) {
      done({ code: ExportResultCode.FAILED, error: new Error("unavailable") });
    },
  }, new FailureWarner(log, "traces"));
  failing.export([1], (r) => results.push(r));
  const throwing = warnOnFailure({
    export(_items: number[], _done: (r: ExportResult) => void) {
      throw new Error("boom");
    },
  }, new FailureWarner(log, "metrics"));
  throwing.export([1], (r) => results.push(r));
  assert.deepEqual(results.map((r) => r.code), [ExportResultCode.FAILED, ExportResultCode.FAILED]);
  assert.deepEqual(log.lines.map((l) => l.fields?.error), ["unavailable", "boom"]);
});
