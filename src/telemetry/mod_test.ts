import assert from "node:assert/strict";
import type * as grpc from "@grpc/grpc-js";
import { Metadata } from "@grpc/grpc-js";
import { type } from "../wire/proto.ts";
import { SHUTDOWN_TIMEOUT_MS, startTelemetry } from "./mod.ts";
import { RecordingLogger } from "./test_logger.ts";

const answer = ((_c, cb) => cb(null, new Uint8Array())) as grpc.handleUnaryCall<
  Uint8Array,
  Uint8Array
>;

function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function callAck(impl: grpc.UntypedServiceImplementation): Promise<void> {
  const request = type("fila.v1.AckRequest").encode({ queue: "q", messageId: "m" }).finish();
  return new Promise((resolve, reject) =>
    (impl.Ack as grpc.handleUnaryCall<Uint8Array, Uint8Array>)(
      { request, metadata: new Metadata() } as grpc.ServerUnaryCall<Uint8Array, Uint8Array>,
      (err) => err ? reject(err) : resolve(),
    )
  );
}

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!pred()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("without [telemetry] settings nothing is installed", async () => {
  const log = new RecordingLogger();
  const t = startTelemetry({
    config: { serviceName: "fila", metricsIntervalMs: 10_000 },
    log,
  });
  assert.equal(t.onFirstDelivery, undefined, "the scheduler skips the latency callback");
  const impl = { Ack: answer };
  assert.equal(t.instrumentService("fila.v1.FilaService", impl), impl, "no span wrappers");
  assert.equal(t.prometheusPort, undefined);
  t.recordCommit(1, 1);
  t.observe({ metricsSnapshot: () => ({ queues: [], throttles: [], residentPayloadBytes: 0 }) });
  await t.shutdown();
  assert.deepEqual(log.lines, []);
});

Deno.test("Lua events become the log lines of operations.md §6.4", async () => {
  const log = new RecordingLogger();
  const t = startTelemetry({ config: { serviceName: "fila", metricsIntervalMs: 10_000 }, log });
  t.onLuaEvent({ type: "hook_failed", queue: "q", hook: "on_failure", error: "oops" });
  t.onLuaEvent({ type: "breaker_tripped", queue: "q" });
  t.onLuaEvent({ type: "print", queue: "q", hook: "on_enqueue", message: "a\nb" });
  t.onLuaEvent({ type: "hook_executed", queue: "q", hook: "on_enqueue", durationUs: 5, ok: true });
  assert.deepEqual(log.lines, [
    {
      level: "warn",
      msg: "lua hook failed",
      fields: { queue: "q", hook: "on_failure", error: "oops" },
    },
    { level: "warn", msg: "circuit breaker tripped", fields: { queue: "q" } },
    {
      level: "debug",
      msg: "lua print",
      fields: { queue: "q", hook: "on_enqueue", message: "a\nb" },
    },
  ]);
  await t.shutdown();
});

Deno.test({
  name: "an unreachable OTLP endpoint: calls go on, failures are warnings, shutdown is bounded",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const log = new RecordingLogger();
    const t = startTelemetry({
      config: {
        otlpEndpoint: `http://127.0.0.1:${closedPort()}`,
        serviceName: "fila",
        metricsIntervalMs: 100,
      },
      log,
    });
    t.observe({ metricsSnapshot: () => ({ queues: [], throttles: [], residentPayloadBytes: 0 }) });
    assert.ok(t.onFirstDelivery);
    t.onFirstDelivery!("q", 3);
    const impl = t.instrumentService("fila.v1.FilaService", { Ack: answer });
    for (let i = 0; i < 20; i++) await callAck(impl);
    await until(
      () => log.lines.some((l) => l.msg === "telemetry export failed" && l.level === "warn"),
      5000,
      "an export warning",
    );
    const started = performance.now();
    await t.shutdown();
    assert.ok(performance.now() - started < SHUTDOWN_TIMEOUT_MS + 1000, "shutdown is bounded");
    assert.ok(!log.lines.some((l) => l.level === "error"));
  },
});

Deno.test({
  name: "a collector that accepts connections but never answers does not stall calls",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      try {
        for await (const c of silent) held.push(c);
      } catch {
        // listener closed
      }
    })();
    const log = new RecordingLogger();
    const t = startTelemetry({
      config: {
        otlpEndpoint: `http://127.0.0.1:${(silent.addr as Deno.NetAddr).port}`,
        serviceName: "fila",
        metricsIntervalMs: 100,
      },
      log,
    });
    try {
      const impl = t.instrumentService("fila.v1.FilaService", { Ack: answer });
      const started = performance.now();
      for (let i = 0; i < 200; i++) await callAck(impl);
      assert.ok(performance.now() - started < 1000, "calls are not held up by the exporter");
      await new Promise((r) => setTimeout(r, 300));
      const s = performance.now();
      await t.shutdown();
      assert.ok(performance.now() - s < SHUTDOWN_TIMEOUT_MS + 1000, "shutdown is bounded");
    } finally {
      silent.close();
      for (const c of held) c.close();
      await accepting;
    }
  },
});
