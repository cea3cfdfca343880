/** Test doubles of the SDK's unit tests: a manual clock and an in-memory consume transport. */
import type { Timers } from "./batcher.ts";
import type { ConsumeTransport } from "./consumer.ts";
import type { WireConsumeResponse, WireMessage } from "./wire.ts";

/** Timers driven by `advance(ms)` instead of the wall clock. */
export class FakeClock implements Timers {
  now = 0;
  #seq = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.now + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** Moves time forward, firing due timers in order (and letting microtasks run after each). */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    while (true) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (!next || e[1].at < next[1].at) next = e;
      if (!next || next[1].at > end) break;
      this.#timers.delete(next[0]);
      this.now = next[1].at;
      next[1].fn();
      await settle();
    }
    this.now = end;
    await settle();
  }
}

/** Lets every pending promise callback run (one macrotask turn drains the microtask queue). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

export function wireMessage(id: string, attempt = 0, queue = "q"): WireMessage {
  return {
    id,
    headers: { h: "v" },
    payload: new TextEncoder().encode(`payload-${id}`),
    metadata: {
      fairness_key: "default",
      weight: 1,
      throttle_keys: [],
      attempt_count: attempt,
      queue_id: queue,
    },
  };
}

interface FakeStream {
  request: { queue: string; max_unacked: number; max_batch_size: number };
  data(r: WireConsumeResponse): void;
  end(code: number, details: string): void;
  cancelled: boolean;
}

/** A consume transport whose streams the test drives by hand. */
export class FakeTransport implements ConsumeTransport {
  readonly clock = new FakeClock();
  readonly timers = this.clock;
  readonly now = () => this.clock.now;
  readonly streams: FakeStream[] = [];
  readonly settled: { kind: string; queue: string; id: string; error?: string }[] = [];
  settleResult: () => Promise<void> = () => Promise.resolve();

  openStream(
    request: FakeStream["request"],
    events: { data(r: WireConsumeResponse): void; end(code: number, details: string): void },
  ): { cancel(): void } {
    const s: FakeStream = { request, ...events, cancelled: false };
    this.streams.push(s);
    return { cancel: () => s.cancelled = true };
  }

  settle(kind: "ack" | "nack", queue: string, id: string, error?: string): Promise<void> {
    this.settled.push({ kind, queue, id, error });
    return this.settleResult();
  }

  get last(): FakeStream {
    return this.streams[this.streams.length - 1];
  }

  /** Delivers messages on the newest stream, one per item. */
  deliver(...ids: string[]): void {
    for (const id of ids) this.last.data({ message: wireMessage(id), messages: [] });
  }
}
