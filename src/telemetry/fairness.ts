/**
 * Per-key delivery accounting derived from scheduler snapshots, so the delivery loop pays nothing:
 * `fila.fairness.throughput` (cumulative deliveries per key) and `fila.fairness.fair_share_ratio`
 * (operations.md §6.2) over fixed windows.
 *
 * The scheduler's per-key `delivered` count is visible only while the key is in the DRR ring, so
 * deliveries a key receives after the last observation and before it drains are not seen. Keys
 * that matter for fairness are backlogged (they stay in the ring), so the ratio is exact for them.
 */

/** The slice of a scheduler snapshot this module reads. */
export interface FairnessQueueView {
  queue: string;
  counters: { readonly leased: number };
  keys: ReadonlyArray<{ key: string; weight: number; delivered: number }>;
}

export interface KeyValue {
  queue: string;
  key: string;
  value: number;
}

interface KeyTrack {
  /** Last `delivered` seen; a smaller value later means the key was dropped and re-created. */
  last: number;
  total: number;
  /** `total` when the current window opened. */
  windowStart: number;
  seenAtMs: number;
}

interface QueueTrack {
  keys: Map<string, KeyTrack>;
  leasedAtWindowStart: number;
}

/** Keys idle this long are forgotten (their throughput series ends). */
export const KEY_IDLE_TTL_MS = 60 * 60 * 1000;

export class FairnessTracker {
  readonly #queues = new Map<string, QueueTrack>();
  #ratios: KeyValue[] = [];
  readonly #idleTtlMs: number;

  constructor(idleTtlMs = KEY_IDLE_TTL_MS) {
    this.#idleTtlMs = idleTtlMs;
  }

  /** Folds a snapshot into the cumulative per-key totals; safe to call any number of times. */
  observe(queues: readonly FairnessQueueView[], nowMs: number): void {
    const live = new Set<string>();
    for (const q of queues) {
      live.add(q.queue);
      let qt = this.#queues.get(q.queue);
      if (!qt) {
        // Counters start at 0 with the queue (or the process), so all of them belong to this window.
        qt = { keys: new Map(), leasedAtWindowStart: 0 };
        this.#queues.set(q.queue, qt);
      }
      for (const k of q.keys) {
        const kt = qt.keys.get(k.key);
        if (!kt) {
          qt.keys.set(k.key, {
            last: k.delivered,
            total: k.delivered,
            windowStart: 0,
            seenAtMs: nowMs,
          });
          continue;
        }
        kt.total += k.delivered >= kt.last ? k.delivered - kt.last : k.delivered;
        kt.last = k.delivered;
        kt.seenAtMs = nowMs;
      }
      for (const [name, kt] of qt.keys) {
        if (nowMs - kt.seenAtMs > this.#idleTtlMs) qt.keys.delete(name);
      }
    }
    for (const name of this.#queues.keys()) if (!live.has(name)) this.#queues.delete(name);
  }

  /**
   * Ends the current window: ratio = (key's deliveries ÷ queue's deliveries) ÷ (key weight ÷ sum
   * of the active keys' weights), for active keys of queues with at least one delivery.
   */
  closeWindow(queues: readonly FairnessQueueView[], nowMs: number): void {
    this.observe(queues, nowMs);
    const ratios: KeyValue[] = [];
    for (const q of queues) {
      const qt = this.#queues.get(q.queue)!;
      const deliveries = q.counters.leased - qt.leasedAtWindowStart;
      qt.leasedAtWindowStart = q.counters.leased;
      let weights = 0;
      for (const k of q.keys) weights += k.weight;
      if (deliveries > 0 && weights > 0) {
        for (const k of q.keys) {
          const kt = qt.keys.get(k.key)!;
          const share = (kt.total - kt.windowStart) / deliveries;
          ratios.push({ queue: q.queue, key: k.key, value: share / (k.weight / weights) });
        }
      }
      for (const kt of qt.keys.values()) kt.windowStart = kt.total;
    }
    this.#ratios = ratios;
  }

  /** Ratios of the last closed window. */
  ratios(): readonly KeyValue[] {
    return this.#ratios;
  }

  /** Cumulative deliveries per key (including recently drained keys). */
  *throughput(): Generator<KeyValue> {
    for (const [queue, qt] of this.#queues) {
      for (const [key, kt] of qt.keys) yield { queue, key, value: kt.total };
    }
  }
}
