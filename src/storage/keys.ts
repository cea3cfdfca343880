/**
 * The whole Deno KV layout, in one place. Nothing else builds KV keys.
 *
 * | key                    | value                         |
 * |------------------------|-------------------------------|
 * | ["q", name]            | QueueRecord                   |
 * | ["m", qid, id]         | BodyRecord (immutable)        |
 * | ["s", qid, id]         | StateRecord (absent = pending, 0 attempts) |
 * | ["c", id, index]       | Uint8Array payload chunk of a large message |
 * | ["g", qid, n]          | segment: packed bodies of one commit's messages (segment_store.ts) |
 * | ["x", qid, n]          | bitmap of segment n's entries already acked or moved out |
 * | ["t", n]               | state batch: states written in one commit, as (segment, slot, state) |
 * | ["dq", qid]            | tombstone: rows of a deleted queue incarnation still to purge |
 * | ["cfg", key]           | runtime config value (string) |
 * | ["ak", keyId]          | ApiKeyRecord (api_key_store.ts) |
 * | ["akh", sha256hex]     | keyId: index from token hash to key |
 *
 * Message rows are keyed by the queue incarnation (`qid`), not its name, so DeleteQueue is one
 * small commit and the purge can run in the background. Ids are UUIDv7 strings, so listing
 * ["m", qid] yields messages in creation order. Chunks are keyed by message id alone so a move
 * to a DLQ never rewrites them. API keys have their own namespaces, apart from "cfg", so nothing
 * that reads or writes runtime config can reach them (decisions.md §i).
 *
 * The packed layout (SegmentStore) uses "g", "x" and "t" instead of "m" and "s"; both share "q",
 * "c", "dq" and "cfg". Segment and state-batch numbers `n` come from one counter that only grows
 * (it restarts above the largest stored number), so listing ["t"] yields state batches in write
 * order: a later entry for the same message supersedes an earlier one.
 */
export const Keys = {
  queuePrefix: ["q"] as const,
  queue: (name: string): Deno.KvKey => ["q", name],
  bodyPrefix: ["m"] as const,
  bodiesOf: (qid: string): Deno.KvKey => ["m", qid],
  body: (qid: string, id: string): Deno.KvKey => ["m", qid, id],
  statePrefix: ["s"] as const,
  statesOf: (qid: string): Deno.KvKey => ["s", qid],
  state: (qid: string, id: string): Deno.KvKey => ["s", qid, id],
  chunkPrefix: ["c"] as const,
  chunksOf: (id: string): Deno.KvKey => ["c", id],
  chunk: (id: string, index: number): Deno.KvKey => ["c", id, index],
  segmentPrefix: ["g"] as const,
  segmentsOf: (qid: string): Deno.KvKey => ["g", qid],
  segment: (qid: string, n: number): Deno.KvKey => ["g", qid, n],
  gonePrefix: ["x"] as const,
  goneOf: (qid: string): Deno.KvKey => ["x", qid],
  gone: (qid: string, n: number): Deno.KvKey => ["x", qid, n],
  stateBatchPrefix: ["t"] as const,
  stateBatch: (n: number): Deno.KvKey => ["t", n],
  tombstonePrefix: ["dq"] as const,
  tombstone: (qid: string): Deno.KvKey => ["dq", qid],
  configPrefix: ["cfg"] as const,
  config: (key: string): Deno.KvKey => ["cfg", key],
  apiKeyPrefix: ["ak"] as const,
  apiKey: (keyId: string): Deno.KvKey => ["ak", keyId],
  apiKeyHash: (tokenHash: string): Deno.KvKey => ["akh", tokenHash],
} as const;
