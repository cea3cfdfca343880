// conformance.md §22 Observability (OB-01, OB-02) and the Prometheus endpoint of operations.md §2
// (`telemetry.prometheus_listen_addr`). OB-01 runs against a test OTLP/gRPC receiver
// (otlp_receiver.ts) that decodes what the broker exports.
import assert from "node:assert/strict";
import {
  freePort,
  KEY_WEIGHT_FROM_HEADERS,
  LATE_TOL_MS,
  newQueue,
  PROMPT_MS,
  scenario,
  startBroker,
  waitFor,
  waitStats,
} from "./harness.ts";
import { OtlpReceiver } from "./otlp_receiver.ts";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN = "00f067aa0ba902b7";
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_SPAN}-01`;

/**
 * Until src/main.ts and src/server/grpc_server.ts call into src/telemetry (see the integration
 * notes at the top of src/telemetry/mod.ts) the broker exports nothing; set to "" once wired.
 */

function telemetryToml(settings: Record<string, string | number>): string {
  const lines = Object.entries(settings).map(([k, v]) =>
    `${k} = ${typeof v === "string" ? JSON.stringify(v) : v}`
  );
  return `[telemetry]\n${lines.join("\n")}`;
}

scenario(
  "OB-01 an OTLP receiver gets fila.messages.enqueued/leased with queue_id and the enqueue spans of the traceparent's trace",
  async () => {
    const receiver = await OtlpReceiver.start();
    try {
      await using b = await startBroker({
        toml: telemetryToml({
          otlp_endpoint: receiver.endpoint,
          service_name: "fila-ob01",
          metrics_interval_ms: 200,
        }),
      });
      const client = b.client();
      const q = await newQueue(client);
      const id = await client.enqueue(q, { payload: "ob-01" }, {
        metadata: { traceparent: TRACEPARENT },
      });
      const c = client.consume(q, 1);
      const m = await c.expectNext(PROMPT_MS);
      assert.equal(m.id, id);

      const within = 5000;
      await waitFor(
        () => receiver.latest("fila.messages.enqueued", { queue_id: q })?.value,
        (v) => v === 1,
        within,
        `fila.messages.enqueued{queue_id=${q}} = 1`,
      );
      await waitFor(
        () => receiver.latest("fila.messages.leased", { queue_id: q })?.value,
        (v) => v === 1,
        within,
        `fila.messages.leased{queue_id=${q}} = 1`,
      );
      const point = receiver.latest("fila.messages.enqueued", { queue_id: q })!;
      assert.equal(point.kind, "sum");
      assert.equal(point.scope, "fila");
      assert.equal(point.resource["service.name"], "fila-ob01");

      const server = await waitFor(
        () =>
          receiver.spans.find((s) =>
            s.name === "grpc.server" && s.traceId === TRACE_ID &&
            s.attributes["rpc.method"] === "Enqueue"
          ),
        (s) => s !== undefined,
        within,
        "a grpc.server span for Enqueue in the traceparent's trace",
      );
      assert.equal(server!.parentSpanId, PARENT_SPAN, "child of the caller's span");
      assert.equal(server!.attributes["rpc.system"], "grpc");
      assert.equal(server!.attributes["rpc.service"], "fila.v1.FilaService");
      assert.equal(server!.attributes["rpc.grpc.status_code"], 0);
      const child = await waitFor(
        () => receiver.spans.find((s) => s.name === "enqueue" && s.parentSpanId === server!.spanId),
        (s) => s !== undefined,
        within,
        "an enqueue span under the grpc.server span",
      );
      assert.equal(child!.traceId, TRACE_ID);
      assert.equal(child!.attributes.queue_id, q);
      assert.equal(child!.attributes.msg_id, id);
      for (const s of receiver.spans) {
        assert.ok(
          !Object.values(s.attributes).includes("ob-01"),
          "spans never carry payloads",
        );
      }
    } finally {
      receiver.close();
    }
  },
  { needsProcess: true },
);

scenario(
  "OB-02 with an unreachable otlp_endpoint the broker serves normally",
  async () => {
    await using b = await startBroker({
      toml: telemetryToml({
        otlp_endpoint: `http://127.0.0.1:${freePort()}`,
        metrics_interval_ms: 100,
      }),
    });
    const client = b.client();
    const q = await newQueue(client, KEY_WEIGHT_FROM_HEADERS);
    const ids = await client.enqueueMany(q, 20, (i) => ({
      headers: { key: `k${i % 3}` },
      payload: `m${i}`,
    }), 4);
    const c = client.consume(q, 5);
    for (let i = 0; i < ids.length; i++) {
      const m = await c.expectNext(PROMPT_MS);
      await client.ack(q, m.id, { metadata: { traceparent: TRACEPARENT } });
    }
    await waitStats(client, q, (s) => s.depth === 0 && s.in_flight === 0, 1000, "all acked");
    // Several failed export periods later the broker still answers promptly.
    await new Promise((r) => setTimeout(r, 500));
    const started = performance.now();
    await client.enqueue(q, { payload: "after" });
    assert.ok(performance.now() - started < PROMPT_MS, "enqueue is prompt");
    c.cancel();
    const code = await b.stop("SIGTERM", 10_000 + LATE_TOL_MS);
    assert.equal(code, 0, "graceful exit");
    assert.doesNotMatch(b.stderr(), / ERROR /, "export failures are not errors");
  },
  { needsProcess: true },
);

scenario(
  "prometheus_listen_addr serves /metrics with fila_* series named as Prometheus expects",
  async () => {
    const promPort = freePort();
    await using b = await startBroker({
      toml: telemetryToml({ prometheus_listen_addr: `127.0.0.1:${promPort}` }),
    });
    const client = b.client();
    const q = await newQueue(client, KEY_WEIGHT_FROM_HEADERS);
    await client.enqueue(q, { headers: { key: "tenant-a" }, payload: "1" });
    await client.enqueue(q, { headers: { key: "tenant-a" }, payload: "2" });
    const c = client.consume(q, 1);
    await c.expectNext(PROMPT_MS);

    const scrape = async () => {
      const res = await fetch(`http://127.0.0.1:${promPort}/metrics`);
      assert.equal(res.status, 200);
      return await res.text();
    };
    const body = await waitFor(
      scrape,
      (t) => new RegExp(`^fila_messages_leased_total\\{queue_id="${q}"\\} 1$`, "m").test(t),
      3000,
      "fila_messages_leased_total = 1",
    );
    const series = (name: string, labels: string, value: string) =>
      assert.match(body, new RegExp(`^${name}\\{${labels}\\} ${value}$`, "m"), name);
    series("fila_messages_enqueued_total", `queue_id="${q}"`, "2");
    series("fila_queue_depth", `queue_id="${q}"`, "1");
    series("fila_leases_active", `queue_id="${q}"`, "1");
    series("fila_queue_consumers", `queue_id="${q}"`, "1");
    series("fila_scheduler_drr_active_keys", `queue_id="${q}"`, "1");
    series("fila_scheduler_drr_weight", `queue_id="${q}",fairness_key="tenant-a"`, "1");
    series("fila_fairness_throughput_total", `queue_id="${q}",fairness_key="tenant-a"`, "1");
    assert.match(body, /^# TYPE fila_messages_enqueued_total counter$/m);
    const missing = await fetch(`http://127.0.0.1:${promPort}/nope`);
    await missing.body?.cancel();
    assert.equal(missing.status, 404);
    c.cancel();
  },
  { needsProcess: true },
);
