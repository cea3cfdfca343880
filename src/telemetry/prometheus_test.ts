import assert from "node:assert/strict";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { silentLogger } from "../core/log.ts";
import { parseListenAddr, ScrapeReader, serveScrapeEndpoint } from "./prometheus.ts";
import { RecordingLogger } from "./test_logger.ts";

Deno.test("listen addresses: IPv4 and bracketed IPv6", () => {
  assert.deepEqual(parseListenAddr("0.0.0.0:9464"), { hostname: "0.0.0.0", port: 9464 });
  assert.deepEqual(parseListenAddr("[::1]:9464"), { hostname: "::1", port: 9464 });
  assert.throws(() => parseListenAddr("localhost"));
  assert.throws(() => parseListenAddr("1.2.3.4:70000"));
});

Deno.test("scrape endpoint serves the text format with Prometheus names", async () => {
  const reader = new ScrapeReader();
  const provider = new MeterProvider({ readers: [reader] });
  const meter = provider.getMeter("fila");
  meter.createObservableCounter("fila.messages.enqueued").addCallback((r) =>
    r.observe(3, { queue_id: "orders" })
  );
  meter.createObservableGauge("fila.queue.depth").addCallback((r) =>
    r.observe(2, { queue_id: "orders" })
  );
  const ep = serveScrapeEndpoint(reader, "127.0.0.1:0", silentLogger)!;
  try {
    const res = await fetch(`http://127.0.0.1:${ep.port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    assert.match(body, /^# TYPE fila_messages_enqueued_total counter$/m);
    assert.match(body, /^fila_messages_enqueued_total\{queue_id="orders"\} 3$/m);
    assert.match(body, /^fila_queue_depth\{queue_id="orders"\} 2$/m);
    const other = await fetch(`http://127.0.0.1:${ep.port}/`);
    await other.body?.cancel();
    assert.equal(other.status, 404);
  } finally {
    await ep.close();
    await provider.shutdown();
  }
});

Deno.test("a port in use is a warning, not an error", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const log = new RecordingLogger();
  try {
    const ep = serveScrapeEndpoint(
      new ScrapeReader(),
      `127.0.0.1:${(busy.addr as Deno.NetAddr).port}`,
      log,
    );
    assert.equal(ep, undefined);
    assert.equal(log.find("prometheus endpoint not started")?.level, "warn");
  } finally {
    busy.close();
  }
  await Promise.resolve();
});
