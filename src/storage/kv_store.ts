/**
 * The Deno KV implementation of `Store`, with group commit: writes issued while a commit is in
 * flight are committed together in the next one, split only where KV's per-commit limits
 * require (each write's mutations always stay in one atomic commit).
 */
import { StorageError } from "../core/errors.ts";
import type { MessageBody, MessageState, QueueDef } from "../core/types.ts";
import { decodeBody, encodeBody, maxEncodedBodySize } from "./codec.ts";
import { Keys } from "./keys.ts";
import {
  chunkCountOf,
  type ChunkedBodyRecord,
  deleteOrphanChunks,
  fromQueueRecord,
  fromStateRecord,
  KV_LIMITS,
  purgeRowsOf,
  type QueueRecord,
  readChunks,
  type StateRecord,
  storedChunks,
  toQueueRecord,
  toStateRecord,
  writeChunks,
} from "./kv_records.ts";
import type { Mutation, Snapshot, Store, StoredMessage } from "./store.ts";

export { KV_LIMITS };

interface PendingWrite {
  mutations: Mutation[];
  resolve: () => void;
  reject: (e: Error) => void;
}

/** One atomic commit under construction, with its size accounting. */
class CommitBuilder {
  readonly op: Deno.AtomicOperation;
  mutations = 0;
  bytes = 0;
  readonly writes: PendingWrite[] = [];
  constructor(kv: Deno.Kv) {
    this.op = kv.atomic();
  }
}

export class KvStore implements Store {
  readonly #kv: Deno.Kv;
  #pending: PendingWrite[] = [];
  #flushing: Promise<void> | undefined;
  #closed = false;

  private constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** The underlying database, for stores of other records that share the file (API keys). */
  get kv(): Deno.Kv {
    return this.#kv;
  }

  /** Opens (creating if needed) the KV database at `path`. */
  static async open(path: string): Promise<KvStore> {
    return new KvStore(await Deno.openKv(path));
  }

  write(mutations: Mutation[]): Promise<void> {
    if (this.#closed) return Promise.reject(new StorageError("store is closed"));
    return new Promise((resolve, reject) => {
      this.#pending.push({ mutations, resolve, reject });
      this.#flushing ??= this.#flushLoop();
    });
  }

  async #flushLoop(): Promise<void> {
    // Yield once so that writes issued in the same turn join the first commit.
    await Promise.resolve();
    while (this.#pending.length > 0) {
      const batch = this.#pending;
      this.#pending = [];
      await this.#commitBatch(batch);
    }
    this.#flushing = undefined;
  }

  async #commitBatch(batch: PendingWrite[]): Promise<void> {
    let current = new CommitBuilder(this.#kv);
    const builders = [current];
    for (const w of batch) {
      let cost: { mutations: number; bytes: number };
      try {
        cost = await this.#costAndPrepare(w.mutations);
      } catch (e) {
        w.reject(new StorageError(String((e as Error).message ?? e), { cause: e }));
        continue;
      }
      if (
        current.writes.length > 0 &&
        (current.mutations + cost.mutations > KV_LIMITS.mutationsPerCommit ||
          current.bytes + cost.bytes > KV_LIMITS.bytesPerCommit)
      ) {
        current = new CommitBuilder(this.#kv);
        builders.push(current);
      }
      for (const m of w.mutations) this.#apply(current, m);
      current.writes.push(w);
    }
    for (const b of builders) {
      if (b.writes.length === 0) continue;
      try {
        const result = await b.op.commit();
        if (!result.ok) throw new Error("atomic commit was rejected");
        for (const w of b.writes) w.resolve();
      } catch (e) {
        const err = new StorageError(String((e as Error).message ?? e), { cause: e });
        for (const w of b.writes) w.reject(err);
      }
    }
  }

  /**
   * Estimates a write's size and commits the chunks of any large new body ahead of it: chunk
   * rows are invisible until the body row that names them commits, and recovery deletes
   * orphans.
   */
  async #costAndPrepare(mutations: Mutation[]): Promise<{ mutations: number; bytes: number }> {
    let count = 0;
    let bytes = 0;
    for (const m of mutations) {
      switch (m.op) {
        case "putMessage": {
          const encoded = encodeBody(m.body);
          const chunks = chunkCountOf(encoded.length);
          if (chunks > 0) {
            await writeChunks(this.#kv, m.body.id, encoded, chunks);
            bytes += 64;
          } else {
            bytes += encoded.length + 64;
          }
          this.#encoded.set(m.body, encoded);
          count += m.state ? 2 : 1;
          break;
        }
        case "moveMessage":
          count += 4;
          bytes += Math.min(maxEncodedBodySize(m.body), KV_LIMITS.chunkBytes) + 256;
          break;
        case "deleteMessage":
          count += 2 + storedChunks(m.body);
          bytes += 128;
          break;
        default:
          count += 2;
          bytes += 2048;
      }
    }
    return { mutations: count, bytes };
  }

  /** Encodings computed while sizing a write, reused when it is applied. */
  #encoded = new WeakMap<MessageBody, Uint8Array>();

  #bodyValue(body: MessageBody): Uint8Array | ChunkedBodyRecord {
    const encoded = this.#encoded.get(body) ?? encodeBody(body);
    this.#encoded.delete(body);
    const chunks = chunkCountOf(encoded.length);
    return chunks > 0 ? { chunks } : encoded;
  }

  #apply(b: CommitBuilder, m: Mutation): void {
    const op = b.op;
    switch (m.op) {
      case "putQueue":
        op.set(Keys.queue(m.def.name), toQueueRecord(m.def));
        b.mutations += 1;
        b.bytes += 2048;
        return;
      case "deleteQueue":
        op.delete(Keys.queue(m.def.name));
        op.set(Keys.tombstone(m.def.qid), m.def.name);
        b.mutations += 2;
        b.bytes += 600;
        return;
      case "putMessage": {
        const value = this.#bodyValue(m.body);
        op.set(Keys.body(m.qid, m.body.id), value);
        b.mutations += 1;
        b.bytes += (value instanceof Uint8Array ? value.length : 16) + 64;
        if (m.state) {
          op.set(Keys.state(m.qid, m.body.id), toStateRecord(m.state));
          b.mutations += 1;
          b.bytes += 64;
        }
        return;
      }
      case "setState":
        if (m.state) op.set(Keys.state(m.qid, m.id), toStateRecord(m.state));
        else op.delete(Keys.state(m.qid, m.id));
        b.mutations += 1;
        b.bytes += 64;
        return;
      case "deleteMessage": {
        op.delete(Keys.body(m.qid, m.body.id));
        op.delete(Keys.state(m.qid, m.body.id));
        const chunks = storedChunks(m.body);
        for (let i = 0; i < chunks; i++) op.delete(Keys.chunk(m.body.id, i));
        b.mutations += 2 + chunks;
        b.bytes += 128;
        return;
      }
      case "moveMessage": {
        op.delete(Keys.body(m.fromQid, m.body.id));
        op.delete(Keys.state(m.fromQid, m.body.id));
        const value = this.#bodyValue(m.body);
        op.set(Keys.body(m.toQid, m.body.id), value);
        if (m.state) op.set(Keys.state(m.toQid, m.body.id), toStateRecord(m.state));
        b.mutations += 4;
        b.bytes += (value instanceof Uint8Array ? value.length : 16) + 256;
        return;
      }
      case "putConfig":
        op.set(Keys.config(m.key), m.value);
        b.mutations += 1;
        b.bytes += m.key.length * 3 + m.value.length * 3 + 32;
        return;
      case "deleteConfig":
        op.delete(Keys.config(m.key));
        b.mutations += 1;
        b.bytes += m.key.length * 3 + 32;
        return;
    }
  }

  async load(): Promise<Snapshot> {
    const queues: QueueDef[] = [];
    const nameByQid = new Map<string, string>();
    for await (const e of this.#kv.list<QueueRecord>({ prefix: Keys.queuePrefix })) {
      const def = fromQueueRecord(e.value);
      queues.push(def);
      nameByQid.set(def.qid, def.name);
    }
    const states = new Map<string, MessageState>();
    for await (const e of this.#kv.list<StateRecord>({ prefix: Keys.statePrefix })) {
      const [, qid, id] = e.key as [string, string, string];
      if (nameByQid.has(qid)) states.set(qid + "/" + id, fromStateRecord(e.value));
    }
    const messages = new Map<string, StoredMessage[]>();
    const orphanQids = new Set<string>();
    const liveChunked = new Set<string>();
    for await (
      const e of this.#kv.list<Uint8Array | ChunkedBodyRecord>({ prefix: Keys.bodyPrefix })
    ) {
      const [, qid, id] = e.key as [string, string, string];
      const name = nameByQid.get(qid);
      if (name === undefined) {
        orphanQids.add(qid);
        continue;
      }
      let bytes: Uint8Array;
      if (e.value instanceof Uint8Array) bytes = e.value;
      else {
        bytes = await readChunks(this.#kv, id, e.value.chunks);
        liveChunked.add(id);
      }
      let list = messages.get(name);
      if (!list) messages.set(name, list = []);
      const state = states.get(qid + "/" + id);
      list.push(state ? { body: decodeBody(id, bytes), state } : { body: decodeBody(id, bytes) });
    }
    // Rows of a queue incarnation without a record can only come from a deletion: make sure
    // the purge will find them.
    for (const qid of orphanQids) await this.#kv.set(Keys.tombstone(qid), "");
    await deleteOrphanChunks(this.#kv, liveChunked);
    const config: Array<[string, string]> = [];
    for await (const e of this.#kv.list<string>({ prefix: Keys.configPrefix })) {
      config.push([e.key[1] as string, e.value]);
    }
    return { queues, messages, config };
  }

  async purgeDeleted(): Promise<number> {
    let purged = 0;
    for await (const t of this.#kv.list({ prefix: Keys.tombstonePrefix })) {
      purged += await purgeRowsOf(this.#kv, t.key[1] as string);
      await this.#kv.delete(t.key);
    }
    return purged;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#flushing;
    this.#kv.close();
  }
}
