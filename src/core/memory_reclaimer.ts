/**
 * Gives memory back to the system once the broker goes quiet after growing. A burst (the fill
 * of a deep backlog, a drain) leaves dead request buffers in V8's heap and free pages inside
 * malloc's arenas; V8 collects the first only after some idle time and glibc never returns the
 * second on its own. Measured with 1M pending 1 KiB messages: RSS 1.2 GiB for 10–15 s after the
 * fill, 0.95 GiB after V8's idle collection, 0.6 GiB after a collection and a malloc_trim.
 */
import process from "node:process";
import { collectGarbage, trimNativeMemory } from "./native_memory.ts";

/** What the reclaimer reads and does; injectable for tests. */
export interface ReclaimerProbes {
  /** Resident set size of the process, in bytes. */
  rss(): number;
  /** CPU time the process has used so far (all threads), in seconds. */
  cpuSeconds(): number;
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** A full garbage collection. */
  collectGarbage(): void;
  /** malloc_trim or the allocator's equivalent. */
  trim(): void;
}

export interface ReclaimerOptions {
  /** Growth of the RSS since the last reclaim after which a quiet interval reclaims. */
  growthBytes: number;
  /** CPU use, in cores, under which an interval counts as quiet. */
  quietCores: number;
}

export const DEFAULT_RECLAIMER_OPTIONS: ReclaimerOptions = {
  growthBytes: 64 * 1024 * 1024,
  quietCores: 0.1,
};

export const processProbes: ReclaimerProbes = {
  rss: () => Deno.memoryUsage().rss,
  cpuSeconds: () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  },
  now: () => performance.now(),
  collectGarbage: () => void collectGarbage(),
  trim: () => void trimNativeMemory(),
};

/** One reclaim: RSS before and after, and how long the main thread was held. */
export interface Reclaimed {
  beforeBytes: number;
  afterBytes: number;
  ms: number;
}

export class MemoryReclaimer {
  readonly #probes: ReclaimerProbes;
  readonly #options: ReclaimerOptions;
  /** RSS after the last reclaim, or the lowest seen since. */
  #settled: number;
  #lastCpu: number;
  #lastAt: number;

  constructor(probes: ReclaimerProbes, options: ReclaimerOptions = DEFAULT_RECLAIMER_OPTIONS) {
    this.#probes = probes;
    this.#options = options;
    this.#settled = probes.rss();
    this.#lastCpu = probes.cpuSeconds();
    this.#lastAt = probes.now();
  }

  /**
   * One check, at the end of an interval: reclaims when the RSS has grown by `growthBytes`
   * since the last reclaim and the interval was quiet. A busy broker is left alone: the
   * collection holds the main thread (tens to hundreds of milliseconds with a deep backlog).
   */
  tick(): Reclaimed | undefined {
    const p = this.#probes;
    const now = p.now();
    const cpu = p.cpuSeconds();
    const cores = (cpu - this.#lastCpu) / Math.max((now - this.#lastAt) / 1000, 1e-3);
    this.#lastCpu = cpu;
    this.#lastAt = now;
    const rss = p.rss();
    if (rss < this.#settled) this.#settled = rss;
    if (rss < this.#settled + this.#options.growthBytes || cores >= this.#options.quietCores) {
      return undefined;
    }
    p.collectGarbage();
    p.trim();
    const after = p.rss();
    this.#settled = after;
    const done = p.now();
    // The reclaim's own CPU must not make the next interval look busy.
    this.#lastCpu = p.cpuSeconds();
    this.#lastAt = done;
    return { beforeBytes: rss, afterBytes: after, ms: done - now };
  }

  /** Checks every `intervalMs` without keeping the process alive; returns the stop function. */
  start(intervalMs: number, onReclaim: (r: Reclaimed) => void): () => void {
    const timer = setInterval(() => {
      const r = this.tick();
      if (r) onReclaim(r);
    }, intervalMs);
    Deno.unrefTimer(timer);
    return () => clearInterval(timer);
  }
}
