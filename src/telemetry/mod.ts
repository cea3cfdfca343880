/**
 * Telemetry (operations.md §6): OTLP/gRPC traces and metrics when `[telemetry] otlp_endpoint` is
 * set, a Prometheus scrape endpoint when `prometheus_listen_addr` is set, logs always. Nothing
 * here can fail message handling: export and start-up problems are warnings.
 *
 * Integration (each call is one line at its site):
 *
 * ```ts
 * // main.ts, right after the logger exists:
 * const telemetry = startTelemetry({ config: config.telemetry, log });
 * // Lua engine:     createLuaEngine({ ..., onEvent: telemetry.onLuaEvent })
 * // Scheduler:      new Scheduler({ ..., onFirstDelivery: telemetry.onFirstDelivery })
 * // after that:     telemetry.observe(scheduler)
 * // Store commits:  telemetry.recordCommit(latencyMs, mutationCount)   (after each commit)
 * // grpc_server.ts: server.addService(def, telemetry.instrumentService("fila.v1.FilaService", impl))
 * //                 (same for "fila.v1.FilaAdmin"; not for health or reflection)
 * // service.ts:     `Consume: (call) => consume(...)` returning the promise, so that the
 * //                 `consume` span ends when registration does
 * // shutdown:       await telemetry.shutdown()   (flushes; bounded by SHUTDOWN_TIMEOUT_MS)
 * ```
 *
 * `onLuaEvent` also writes the Lua log lines (`lua hook failed`, `circuit breaker tripped`, …),
 * so nothing else should log those events.
 */
import type * as grpc from "@grpc/grpc-js";
import { type Meter, type Tracer } from "@opentelemetry/api";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-grpc";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  type IMetricReader,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import { BatchSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import type { FilaConfig } from "../config/mod.ts";
import type { Logger } from "../core/log.ts";
import type { LuaEvent } from "../lua/types.ts";
import type { MetricsSnapshot } from "../scheduler/mod.ts";
import { FailureWarner, warnOnFailure } from "./export_warnings.ts";
import { logLuaEvent } from "../lua/mod.ts";
import { FilaMetrics } from "./metrics.ts";
import { type ScrapeEndpoint, ScrapeReader, serveScrapeEndpoint } from "./prometheus.ts";
import { instrumentService } from "./tracing.ts";

/** Meter and tracer name (operations.md §6.1). */
export const INSTRUMENTATION_NAME = "fila";
/** Most an export may take, and what shutdown waits for the final flush. */
export const EXPORT_TIMEOUT_MS = 10_000;
export const SHUTDOWN_TIMEOUT_MS = 3_000;
const SPAN_BATCH_DELAY_MS = 5_000;

export interface TelemetryOptions {
  config: FilaConfig["telemetry"];
  log: Logger;
}

/** Anything with a metrics snapshot; the Scheduler. */
export interface MetricsSource {
  metricsSnapshot(): MetricsSnapshot;
}

export interface Telemetry {
  /** For SchedulerOptions.onFirstDelivery; undefined when no metrics are exported. */
  readonly onFirstDelivery: ((queue: string, latencyMs: number) => void) | undefined;
  /** For LuaEngineOptions.onEvent: metrics and the Lua log lines. */
  readonly onLuaEvent: (e: LuaEvent) => void;
  /** After each storage commit (a no-op when no metrics are exported). */
  readonly recordCommit: (latencyMs: number, mutations: number) => void;
  /** Starts reading scheduler gauges and counters at each collection. */
  observe(source: MetricsSource): void;
  /** Adds server spans to a FilaService/FilaAdmin implementation (unchanged without OTLP). */
  instrumentService(
    serviceName: string,
    impl: grpc.UntypedServiceImplementation,
  ): grpc.UntypedServiceImplementation;
  /** Bound port of the Prometheus endpoint, if it is serving. */
  readonly prometheusPort: number | undefined;
  /** Final export and release of listeners and timers. Never throws. */
  shutdown(): Promise<void>;
}

const EMPTY_SNAPSHOT: MetricsSnapshot = { queues: [], throttles: [], residentPayloadBytes: 0 };

function startTracing(endpoint: string, config: TelemetryOptions["config"], log: Logger) {
  const exporter = warnOnFailure(
    new OTLPTraceExporter({ url: endpoint, timeoutMillis: EXPORT_TIMEOUT_MS }),
    new FailureWarner(log, "traces"),
  );
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": config.serviceName }),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter,
        exportTimeoutMillis: EXPORT_TIMEOUT_MS,
        // A short metrics period asks for fresh data; spans follow it (5 s at most).
        scheduledDelayMillis: Math.min(config.metricsIntervalMs, SPAN_BATCH_DELAY_MS),
      }),
    ],
  });
  return { provider, tracer: provider.getTracer(INSTRUMENTATION_NAME) };
}

function metricReaders(
  config: TelemetryOptions["config"],
  log: Logger,
): { readers: IMetricReader[]; scrape?: ScrapeEndpoint } {
  const readers: IMetricReader[] = [];
  if (config.otlpEndpoint) {
    readers.push(
      new PeriodicExportingMetricReader({
        exporter: warnOnFailure(
          new OTLPMetricExporter({ url: config.otlpEndpoint, timeoutMillis: EXPORT_TIMEOUT_MS }),
          new FailureWarner(log, "metrics"),
        ),
        exportIntervalMillis: config.metricsIntervalMs,
        exportTimeoutMillis: Math.min(config.metricsIntervalMs, EXPORT_TIMEOUT_MS),
      }),
    );
  }
  let scrape: ScrapeEndpoint | undefined;
  if (config.prometheusListenAddr) {
    const reader = new ScrapeReader();
    scrape = serveScrapeEndpoint(reader, config.prometheusListenAddr, log);
    if (scrape) readers.push(reader);
  }
  return { readers, scrape };
}

async function settle(what: string, p: Promise<unknown>, log: Logger): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      p,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("timed out")), SHUTDOWN_TIMEOUT_MS);
      }),
    ]);
  } catch (e) {
    log.warn("telemetry shutdown incomplete", { part: what, error: (e as Error)?.message });
  } finally {
    clearTimeout(timer);
  }
}

/** Starts exporters and endpoints per `[telemetry]`; never throws for telemetry problems. */
export function startTelemetry({ config, log }: TelemetryOptions): Telemetry {
  const endpoint = config.otlpEndpoint || undefined;
  let source: MetricsSource | undefined;
  const snapshot = () => source?.metricsSnapshot() ?? EMPTY_SNAPSHOT;

  let tracing: ReturnType<typeof startTracing> | undefined;
  let meterProvider: MeterProvider | undefined;
  let metrics: FilaMetrics | undefined;
  let scrape: ScrapeEndpoint | undefined;
  let windowTimer: ReturnType<typeof setInterval> | undefined;
  try {
    if (endpoint) tracing = startTracing(endpoint, config, log);
    const r = metricReaders(config, log);
    scrape = r.scrape;
    if (r.readers.length > 0) {
      meterProvider = new MeterProvider({
        resource: resourceFromAttributes({ "service.name": config.serviceName }),
        readers: r.readers,
      });
      const meter: Meter = meterProvider.getMeter(INSTRUMENTATION_NAME);
      const m = metrics = new FilaMetrics(meter, snapshot);
      // Fair-share windows follow the export period whichever reader collects, and how often.
      const timer = windowTimer = setInterval(() => m.closeWindow(), config.metricsIntervalMs);
      Deno.unrefTimer(timer);
    }
  } catch (e) {
    log.warn("telemetry initialisation failed", { error: (e as Error)?.message ?? String(e) });
  }
  if (endpoint) log.info("telemetry export enabled", { endpoint, service: config.serviceName });

  const tracer: Tracer | undefined = tracing?.tracer;
  return {
    onFirstDelivery: metrics?.onFirstDelivery,
    onLuaEvent: (e) => {
      metrics?.onLuaEvent(e);
      logLuaEvent(log, e);
    },
    recordCommit: metrics?.recordCommit ?? (() => {}),
    observe(s) {
      source = s;
    },
    instrumentService: (name, impl) => tracer ? instrumentService(tracer, name, impl) : impl,
    prometheusPort: scrape?.port,
    async shutdown() {
      clearInterval(windowTimer);
      await Promise.all([
        tracing && settle("traces", tracing.provider.shutdown(), log),
        meterProvider && settle("metrics", meterProvider.shutdown(), log),
        scrape && settle("prometheus", scrape.close(), log),
      ]);
    },
  };
}

export { FilaMetrics } from "./metrics.ts";
export { instrumentService } from "./tracing.ts";
