/**
 * Fila brokers for the benchmarks: a fresh process from this checkout per workload (via the
 * conformance harness, readiness = health SERVING) in its own temporary directory, removed
 * afterwards; or FILA_ADDR for an external broker (then RSS/recovery figures are skipped).
 */
import { type Broker, startBroker } from "../../conformance/harness.ts";
import type { QueueConfig } from "../../conformance/client.ts";
import { BenchClient } from "./client.ts";
import { CpuMeter, rssBytes } from "./report.ts";

export const EXTERNAL = Deno.env.get("FILA_ADDR") || undefined;

export interface BenchBroker {
  addr: string;
  /** The process (absent with FILA_ADDR). */
  proc?: Broker;
  meter(): CpuMeter;
  rss(): number;
  stop(): Promise<void>;
}

export async function freshBroker(toml?: string): Promise<BenchBroker> {
  if (EXTERNAL) {
    return {
      addr: EXTERNAL,
      meter: () => new CpuMeter(() => []),
      rss: () => NaN,
      stop: () => Promise.resolve(),
    };
  }
  const dir = await Deno.makeTempDir({ prefix: "fila-bench-" });
  const proc = await startBroker({ dir, toml, env: { FILA_LOG: "warn" } });
  return {
    addr: proc.addr,
    proc,
    meter: () => new CpuMeter(() => [proc.pid]),
    rss: () => rssBytes(proc.pid),
    stop: async () => {
      await proc.stop("SIGTERM", 20_000);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Runs `fn` with a fresh broker, stopping it afterwards. */
export async function withBroker<T>(fn: (b: BenchBroker) => Promise<T>, toml?: string) {
  const b = await freshBroker(toml);
  try {
    return await fn(b);
  } finally {
    await b.stop();
  }
}

let seq = 0;
export function qname(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${seq++}`;
}

/**
 * One measured run on a fresh broker (empty data directory) with a fresh queue: no state, no
 * background purge of an earlier run's deleted queue, no warm JIT from earlier workloads.
 */
export async function freshRun<T>(
  prefix: string,
  fn: (b: BenchBroker, queue: string, c: BenchClient) => Promise<T>,
  config?: QueueConfig,
): Promise<T> {
  return await withBroker(async (b) => {
    const c = new BenchClient(b.addr);
    try {
      const q = qname(prefix);
      await c.createQueue(q, config);
      return await fn(b, q, c);
    } finally {
      c.close();
    }
  });
}
