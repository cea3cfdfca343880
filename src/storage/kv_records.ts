/**
 * Record formats and chunk handling shared by the two Deno KV stores (kv_store.ts, one row per
 * message; segment_store.ts, packed). Both keep queue records, legacy state rows and large-body
 * chunks in the same form, so a database written by one layout stays readable by the other.
 */
import { StorageError } from "../core/errors.ts";
import type { MessageBody, MessageState, QueueDef } from "../core/types.ts";
import { encodeBody, maxEncodedBodySize } from "./codec.ts";
import { Keys } from "./keys.ts";

/** KV allows 1000 mutations and 800 KiB per commit and 64 KiB per value; keep a margin. */
export const KV_LIMITS = {
  mutationsPerCommit: 1000,
  bytesPerCommit: 780 * 1024,
  /** Encoded bodies above this are split into chunks of this size. */
  chunkBytes: 60 * 1024,
} as const;

/** Stored form of a queue definition. */
export interface QueueRecord {
  name: string;
  qid: string;
  onEnqueue: string;
  onFailure: string;
  visibilityTimeoutMs: number;
  fairnessKeyHeader: string;
  weightHeader: string;
  throttleKeyHeaders: string[];
  createdAtMs: number;
}

/** Stored form of a message's mutable state (short field names: one per message). */
export interface StateRecord {
  a: number;
  l?: number;
  r?: number;
}

/** A body too large for one value is stored as chunks ["c", id, i]; its row holds the count. */
export interface ChunkedBodyRecord {
  chunks: number;
}

export function toStateRecord(s: MessageState): StateRecord {
  const r: StateRecord = { a: s.attempts };
  if (s.leaseDeadline !== undefined) r.l = s.leaseDeadline;
  if (s.readyAt !== undefined) r.r = s.readyAt;
  return r;
}

export function fromStateRecord(r: StateRecord): MessageState {
  const s: MessageState = { attempts: r.a };
  if (r.l !== undefined) s.leaseDeadline = r.l;
  if (r.r !== undefined) s.readyAt = r.r;
  return s;
}

export function toQueueRecord(d: QueueDef): QueueRecord {
  return {
    name: d.name,
    qid: d.qid,
    onEnqueue: d.onEnqueueScript,
    onFailure: d.onFailureScript,
    visibilityTimeoutMs: d.visibilityTimeoutMs,
    fairnessKeyHeader: d.fairnessKeyHeader,
    weightHeader: d.weightHeader,
    throttleKeyHeaders: d.throttleKeyHeaders,
    createdAtMs: d.createdAtMs,
  };
}

export function fromQueueRecord(r: QueueRecord): QueueDef {
  return {
    name: r.name,
    qid: r.qid,
    onEnqueueScript: r.onEnqueue,
    onFailureScript: r.onFailure,
    visibilityTimeoutMs: r.visibilityTimeoutMs,
    fairnessKeyHeader: r.fairnessKeyHeader ?? "",
    weightHeader: r.weightHeader ?? "",
    throttleKeyHeaders: r.throttleKeyHeaders ?? [],
    createdAtMs: r.createdAtMs,
  };
}

export function chunkCountOf(encodedLength: number): number {
  return encodedLength > KV_LIMITS.chunkBytes ? Math.ceil(encodedLength / KV_LIMITS.chunkBytes) : 0;
}

/** Chunk count of a body as stored, without encoding it when it is clearly small. */
export function storedChunks(body: MessageBody): number {
  if (maxEncodedBodySize(body) <= KV_LIMITS.chunkBytes) return 0;
  return chunkCountOf(encodeBody(body).length);
}

/**
 * Commits the chunks of a large body ahead of the commit that references them: chunk rows are
 * invisible until a record names them, and recovery deletes orphans.
 */
export async function writeChunks(
  kv: Deno.Kv,
  id: string,
  encoded: Uint8Array,
  chunks: number,
): Promise<void> {
  const perCommit = Math.floor(KV_LIMITS.bytesPerCommit / KV_LIMITS.chunkBytes) - 1;
  for (let first = 0; first < chunks; first += perCommit) {
    const op = kv.atomic();
    for (let i = first; i < Math.min(chunks, first + perCommit); i++) {
      const start = i * KV_LIMITS.chunkBytes;
      op.set(Keys.chunk(id, i), encoded.subarray(start, start + KV_LIMITS.chunkBytes));
    }
    const r = await op.commit();
    if (!r.ok) throw new Error("chunk commit was rejected");
  }
}

export async function readChunks(kv: Deno.Kv, id: string, count: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const e of kv.list<Uint8Array>({ prefix: Keys.chunksOf(id) })) {
    parts.push(e.value);
    total += e.value.length;
  }
  if (parts.length !== count) {
    throw new StorageError(`message ${id} has ${parts.length} of ${count} chunks`);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Deletes every chunk whose message id is not in `live`. */
export async function deleteOrphanChunks(kv: Deno.Kv, live: Set<string>): Promise<void> {
  let op = kv.atomic();
  let n = 0;
  for await (const e of kv.list({ prefix: Keys.chunkPrefix }, { batchSize: 500 })) {
    if (live.has(e.key[1] as string)) continue;
    op.delete(e.key);
    if (++n % 500 === 0) {
      await op.commit();
      op = kv.atomic();
    }
  }
  if (n % 500 !== 0) await op.commit();
}

/**
 * Deletes the one-row-layout rows (bodies with their chunks, states) of a queue incarnation,
 * a few hundred per commit to stay under KV's 1000 mutations. Returns the keys deleted.
 */
export async function purgeRowsOf(kv: Deno.Kv, qid: string): Promise<number> {
  let purged = 0;
  for (const prefix of [Keys.bodiesOf(qid), Keys.statesOf(qid)]) {
    for (;;) {
      const op = kv.atomic();
      let n = 0;
      for await (
        const e of kv.list<Uint8Array | ChunkedBodyRecord>({ prefix }, { limit: 200 })
      ) {
        op.delete(e.key);
        n++;
        if (prefix[0] === "m" && !(e.value instanceof Uint8Array) && e.value?.chunks) {
          for (let i = 0; i < e.value.chunks; i++) op.delete(Keys.chunk(e.key[2] as string, i));
          n += e.value.chunks;
        }
        if (n > 800) break;
      }
      if (n === 0) break;
      await op.commit();
      purged += n;
    }
  }
  return purged;
}
