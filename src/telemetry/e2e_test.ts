// The telemetry module against real transports, before main.ts wires it: a scheduler on a memory
// store behind a grpc-js server whose services are instrumented, exporting over OTLP/gRPC to a
// test receiver and serving a Prometheus endpoint.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { Authenticator } from "../auth/authenticator.ts";
import { ApiKeyAdmin } from "../auth/key_admin.ts";
import { MemoryApiKeyStore } from "../auth/test_util.ts";
import { systemClock } from "../core/clock.ts";
import { silentLogger } from "../core/log.ts";
import { Scheduler } from "../scheduler/mod.ts";
import { filaAdminHandlers } from "../server/admin.ts";
import { type Pipeline, rawServiceDefinition } from "../server/rpc.ts";
import { filaServiceHandlers } from "../server/service.ts";
import { MemoryStore } from "../storage/memory_store.ts";
import { FilaClient } from "../../conformance/client.ts";
import { OtlpReceiver } from "../../conformance/otlp_receiver.ts";
import { startTelemetry, type Telemetry } from "./mod.ts";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN = "00f067aa0ba902b7";

async function waitFor<T>(probe: () => T | undefined, what: string, ms = 8000): Promise<T> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    const v = probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function startBrokerInProcess(telemetry: Telemetry) {
  const scheduler = new Scheduler({
    store: new MemoryStore(),
    quantum: 1000,
    log: silentLogger,
    onFirstDelivery: telemetry.onFirstDelivery,
  });
  telemetry.observe(scheduler);
  const keys = new MemoryApiKeyStore();
  const pipeline: Pipeline = {
    log: silentLogger,
    authenticator: new Authenticator({ store: keys, clock: systemClock }),
  };
  const server = new grpc.Server();
  server.addService(
    rawServiceDefinition("fila.v1.FilaService"),
    telemetry.instrumentService("fila.v1.FilaService", filaServiceHandlers(scheduler, pipeline)),
  );
  server.addService(
    rawServiceDefinition("fila.v1.FilaAdmin"),
    telemetry.instrumentService(
      "fila.v1.FilaAdmin",
      filaAdminHandlers(scheduler, new ApiKeyAdmin(keys, systemClock, silentLogger), pipeline),
    ),
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (e, p) => e ? reject(e) : resolve(p),
    )
  );
  await scheduler.start();
  return {
    scheduler,
    client: new FilaClient(`127.0.0.1:${port}`),
    async stop() {
      await scheduler.shutdown();
      server.forceShutdown();
    },
  };
}

Deno.test({
  name: "telemetry e2e: OTLP metrics and traces reach a receiver; Prometheus is scraped",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const receiver = await OtlpReceiver.start();
    const telemetry = startTelemetry({
      config: {
        otlpEndpoint: receiver.endpoint,
        serviceName: "fila-e2e",
        metricsIntervalMs: 200,
        prometheusListenAddr: "127.0.0.1:0",
      },
      log: silentLogger,
    });
    const broker = await startBrokerInProcess(telemetry);
    const { client } = broker;
    try {
      await client.createQueue("orders", { fairness_key_header: "tenant" });
      const id = await client.enqueue("orders", { headers: { tenant: "acme" }, payload: "x" }, {
        metadata: { traceparent: `00-${TRACE_ID}-${PARENT_SPAN}-01` },
      });
      // Two more keep the key backlogged, so its per-key counts stay observable.
      for (let i = 0; i < 2; i++) {
        await client.enqueue("orders", { headers: { tenant: "acme" }, payload: "y" });
      }
      const consumer = client.consume("orders", 1);
      const msg = await consumer.expectNext(2000);
      assert.equal(msg.id, id);
      await client.ack("orders", msg.id);
      await consumer.expectNext(2000);

      const enqueued = await waitFor(
        () => receiver.latest("fila.messages.enqueued", { queue_id: "orders" }),
        "fila.messages.enqueued",
      );
      assert.equal(enqueued.value, 3);
      assert.equal(enqueued.kind, "sum");
      assert.equal(enqueued.scope, "fila");
      assert.equal(enqueued.resource["service.name"], "fila-e2e");
      await waitFor(
        () =>
          receiver.latest("fila.messages.leased", { queue_id: "orders" })?.value === 2 || undefined,
        "fila.messages.leased = 2",
      );
      await waitFor(
        () =>
          receiver.latest("fila.leases.active", { queue_id: "orders" })?.value === 1 || undefined,
        "fila.leases.active = 1",
      );
      await waitFor(
        () => receiver.latest("fila.messages.acked", { queue_id: "orders" })?.value || undefined,
        "fila.messages.acked = 1",
      );
      const latency = await waitFor(
        () => receiver.latest("fila.messages.delivery_latency_ms", { queue_id: "orders" }),
        "delivery latency histogram",
      );
      assert.ok(latency.value >= 1, "first deliveries recorded");

      const server = await waitFor(
        () =>
          receiver.spans.find((s) =>
            s.name === "grpc.server" && s.traceId === TRACE_ID &&
            s.attributes["rpc.method"] === "Enqueue"
          ),
        "grpc.server span of the Enqueue",
      );
      assert.equal(server.parentSpanId, PARENT_SPAN);
      assert.equal(server.kind, 2, "SPAN_KIND_SERVER");
      assert.equal(server.attributes["rpc.system"], "grpc");
      assert.equal(server.attributes["rpc.service"], "fila.v1.FilaService");
      assert.equal(server.attributes["rpc.grpc.status_code"], 0);
      const child = await waitFor(
        () => receiver.spans.find((s) => s.name === "enqueue" && s.parentSpanId === server.spanId),
        "enqueue child span",
      );
      assert.equal(child.traceId, TRACE_ID);
      assert.deepEqual(child.attributes, { queue_id: "orders", msg_id: id });
      await waitFor(
        () => receiver.spans.find((s) => s.name === "ack" && s.attributes.msg_id === msg.id),
        "ack span",
      );

      const res = await fetch(`http://127.0.0.1:${telemetry.prometheusPort}/metrics`);
      assert.equal(res.status, 200);
      const body = await res.text();
      assert.match(body, /^fila_messages_enqueued_total\{queue_id="orders"\} 3$/m);
      assert.match(body, /^fila_messages_leased_total\{queue_id="orders"\} 2$/m);
      assert.match(body, /^fila_queue_depth\{queue_id="orders"\} 1$/m);
      assert.match(
        body,
        /^fila_fairness_throughput_total\{queue_id="orders",fairness_key="acme"\} 2$/m,
      );
      // The series names the Grafana dashboard queries.
      assert.match(body, /^fila_messages_delivery_latency_ms_bucket\{queue_id="orders",le="/m);
      assert.match(body, /^fila_scheduler_drr_weight\{queue_id="orders",fairness_key="acme"\} 1$/m);
      consumer.cancel();
    } finally {
      client.close();
      await broker.stop();
      await telemetry.shutdown();
      receiver.close();
    }
  },
});
