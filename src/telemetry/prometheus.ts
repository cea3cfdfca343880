/**
 * Prometheus scrape endpoint (`[telemetry] prometheus_listen_addr`): a pull reader collected on
 * each request to `/metrics`, rendered in the text exposition format. Served with Deno.serve so a
 * bind failure is ours to report as a warning.
 */
import { PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { MetricReader } from "@opentelemetry/sdk-metrics";
import type { Logger } from "../core/log.ts";

/** A reader that exports nothing by itself; the HTTP handler collects on demand. */
export class ScrapeReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }

  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/** `"IP:port"` or `"[IPv6]:port"` → Deno.serve's hostname and port. */
export function parseListenAddr(addr: string): { hostname: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(addr) ?? /^([^:]+):(\d+)$/.exec(addr);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port > 65_535) {
    throw new Error(`invalid listen address "${addr}"`);
  }
  return { hostname: m[1], port };
}

export interface ScrapeEndpoint {
  /** Bound port (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Serves `reader` at `http://<addr>/metrics`; undefined (after a warning) if it cannot bind. */
export function serveScrapeEndpoint(
  reader: ScrapeReader,
  addr: string,
  log: Logger,
): ScrapeEndpoint | undefined {
  // No otel_scope_* labels: everything is scope "fila", and shorter series read better in PromQL.
  const serializer = new PrometheusSerializer("", false, undefined, false, true);
  const handler = async (req: Request): Promise<Response> => {
    if (new URL(req.url).pathname !== "/metrics") return new Response(null, { status: 404 });
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response(null, { status: 405, headers: { allow: "GET, HEAD" } });
    }
    try {
      const { resourceMetrics, errors } = await reader.collect();
      if (errors.length > 0) {
        log.debug("metrics collection errors", { error: errors.map(String).join("; ") });
      }
      return new Response(serializer.serialize(resourceMetrics), {
        headers: { "content-type": CONTENT_TYPE },
      });
    } catch (e) {
      log.warn("prometheus scrape failed", { error: (e as Error)?.message ?? String(e) });
      return new Response(`# failed to collect metrics: ${e}\n`, { status: 500 });
    }
  };
  try {
    const server = Deno.serve({ ...parseListenAddr(addr), onListen() {} }, handler);
    // The scrape listener must never keep a shutting-down broker alive.
    server.unref();
    return {
      port: (server.addr as Deno.NetAddr).port,
      close: () => server.shutdown(),
    };
  } catch (e) {
    log.warn("prometheus endpoint not started", {
      addr,
      error: (e as Error)?.message ?? String(e),
    });
    return undefined;
  }
}
