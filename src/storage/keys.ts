/**
 * The whole Deno KV layout, in one place. Nothing else builds KV keys.
 *
 * | key                    | value                         |
 * |------------------------|-------------------------------|
 * | ["q", name]            | QueueRecord                   |
 * | ["m", qid, id]         | BodyRecord (immutable)        |
 * | ["s", qid, id]         | StateRecord (absent = pending, 0 attempts) |
 * | ["c", id, index]       | Uint8Array payload chunk of a large message |
 * | ["dq", qid]            | tombstone: rows of a deleted queue incarnation still to purge |
 * | ["cfg", key]           | runtime config value (string) |
 *
 * Message rows are keyed by the queue incarnation (`qid`), not its name, so DeleteQueue is one
 * small commit and the purge can run in the background. Ids are UUIDv7 strings, so listing
 * ["m", qid] yields messages in creation order. Chunks are keyed by message id alone so a move
 * to a DLQ never rewrites them.
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
  tombstonePrefix: ["dq"] as const,
  tombstone: (qid: string): Deno.KvKey => ["dq", qid],
  configPrefix: ["cfg"] as const,
  config: (key: string): Deno.KvKey => ["cfg", key],
} as const;
