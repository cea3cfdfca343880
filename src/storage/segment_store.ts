/**
 * The packed Deno KV implementation of `Store`. One row per message costs a KV row write, a
 * B-tree insert and (at 1 KiB) an overflow page per message; packing the bodies of a commit into
 * a few large values, and the states of a commit into one value, makes the cost per commit
 * nearly independent of the number of messages in it.
 *
 * - Segment ["g", qid, n]: the encoded bodies of messages written to one queue in one commit,
 *   up to ~63 KiB. An entry is never rewritten; bodies above 60 KiB stay in chunks ["c", id, i]
 *   as in the one-row layout, the entry holding the chunk count.
 * - Gone bitmap ["x", qid, n]: which entries of segment n are acked or moved out. It is rewritten
 *   in the commit that acks or moves an entry, so recovery can never resurrect one. When no
 *   entry is left the segment and its bitmap are deleted together, in that commit when it has
 *   room for two more mutations, else in a later one (a fully-gone segment reads as empty).
 * - State batch ["t", n]: the states written in one commit, as (segment n, slot, state). Batches
 *   are read in ascending n and a later entry for the same message supersedes an earlier one;
 *   "pending with no attempt" is a clear entry when an older entry has to be superseded. A batch
 *   is deleted when none of its entries is current any more, and rewritten into a newer batch
 *   when only a few are, so a long lease cannot pin a large batch.
 *
 * States refer to a message by segment and slot rather than by id, so the copy a move leaves
 * behind (gone in its segment) can never pick up a state meant for the new copy.
 *
 * The store holds an index built by load(): message id → segment, and per segment its ids, gone
 * bitmap, live count and the batch holding each entry's current state. Every write is applied
 * to a commit under construction without touching the index, and to the index only after KV
 * confirms the commit, so a failed commit leaves no trace. Writes must follow a load() (the
 * scheduler always loads first); a write before it loads the index itself.
 *
 * Group commit as in KvStore: writes issued while a commit is in flight all go into the next
 * one, split only where KV's limits require; each write's mutations stay in one commit.
 */
import { StorageError } from "../core/errors.ts";
import {
  type MessageBody,
  type MessageState,
  payloadLength,
  type QueueDef,
} from "../core/types.ts";
import {
  decodeBody,
  decodePayload,
  encodeBody,
  encodeBodyInto,
  maxEncodedBodySize,
} from "./codec.ts";
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
  toQueueRecord,
  writeChunks,
} from "./kv_records.ts";
import type { LoadOptions, Mutation, Snapshot, Store, StoredMessage } from "./store.ts";

export const SEGMENT_LIMITS = {
  /** Bytes of one segment value (KV's limit is 64 KiB). */
  segmentBytes: 63 * 1024,
  /** Entries of one segment, which bounds its gone bitmap to 512 bytes. */
  segmentEntries: 4096,
  /**
   * Payload bytes of new messages waiting that make a commit worth building while another is
   * in flight (smaller amounts join the next commit, as in plain group commit).
   */
  overlapBytes: 256 * 1024,
  /** Bytes of one state batch value. */
  stateBatchBytes: 60 * 1024,
  /** KV allows 1000 mutations, 800 KiB and 80 KiB of keys per commit; keep a margin. */
  mutationsPerCommit: 1000,
  bytesPerCommit: 780 * 1024,
  keyBytesPerCommit: 76 * 1024,
  /** A state batch is rewritten when at most this fraction of its entries is still current. */
  compactFraction: 1 / 8,
} as const;

const VERSION = 1;
/** Segment entry flags. */
const ID_STRING = 1;
const CHUNKED = 2;
/** State entry flags. */
const HAS_LEASE = 1;
const HAS_READY = 2;
/** Pending with no attempt, superseding an older entry (a stored `{attempts: 0}` is not this). */
const CLEAR = 4;
/** Bound of an encoded state entry: n, slot, attempts as varints, flags, two f64. */
const STATE_ENTRY_MAX = 8 + 2 + 8 + 1 + 16;
/** KV's limit for one value. */
const MAX_VALUE_BYTES = 65536;
/** Segments kept by the payload read-back cache (~63 KiB each). */
const READ_CACHE_SEGMENTS = 32;
/** Per-mutation allowance on top of key and value bytes. */
const OVERHEAD = 32;

// ---------------------------------------------------------------------------------------------
// Binary helpers

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const NIBBLE = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) NIBBLE[48 + i] = i;
for (let i = 0; i < 6; i++) NIBBLE[97 + i] = 10 + i;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Whether `id` is a lowercase hyphenated UUID, the form stored in 16 bytes. */
function isCanonicalId(id: string): boolean {
  if (id.length !== 36) return false;
  for (let i = 0; i < 36; i++) {
    const c = id.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
    } else if (c >= 128 || NIBBLE[c] < 0) return false;
  }
  return true;
}

function writeCanonicalId(id: string, buf: Uint8Array, pos: number): void {
  for (let i = 0; i < 36; i += 2) {
    if (i === 8 || i === 13 || i === 18 || i === 23) i++;
    buf[pos++] = (NIBBLE[id.charCodeAt(i)] << 4) | NIBBLE[id.charCodeAt(i + 1)];
  }
}

function readCanonicalId(b: Uint8Array, p: number): string {
  return HEX[b[p]] + HEX[b[p + 1]] + HEX[b[p + 2]] + HEX[b[p + 3]] + "-" +
    HEX[b[p + 4]] + HEX[b[p + 5]] + "-" + HEX[b[p + 6]] + HEX[b[p + 7]] + "-" +
    HEX[b[p + 8]] + HEX[b[p + 9]] + "-" + HEX[b[p + 10]] + HEX[b[p + 11]] +
    HEX[b[p + 12]] + HEX[b[p + 13]] + HEX[b[p + 14]] + HEX[b[p + 15]];
}

function varintSize(n: number): number {
  let s = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    s++;
  }
  return s;
}

function putVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

class Reader {
  pos = 0;
  readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get done(): boolean {
    return this.pos >= this.bytes.length;
  }
  u8(): number {
    return this.bytes[this.pos++];
  }
  varint(): number {
    let n = 0;
    let mul = 1;
    for (;;) {
      const b = this.bytes[this.pos++];
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 128;
    }
  }
  f64(): number {
    const v = this.view.getFloat64(this.pos);
    this.pos += 8;
    return v;
  }
}

function bitmapBytes(entries: number): number {
  return (entries + 7) >>> 3;
}

function isSet(bits: Uint8Array | null, i: number): boolean {
  return bits !== null && (bits[i >>> 3] & (1 << (i & 7))) !== 0;
}

/** Bytes of a key part holding `s` (an upper bound for non-ASCII text). */
function strKeyBytes(s: string): number {
  // deno-lint-ignore no-control-regex
  return (/^[\x01-\x7f]*$/.test(s) ? s.length : s.length * 3) + 2;
}

function storageError(e: unknown): StorageError {
  if (e instanceof StorageError) return e;
  return new StorageError(String((e as Error)?.message ?? e), { cause: e });
}

/** One entry of a segment as parsed from its bytes. */
interface ParsedEntry {
  id: string;
  /** The encoded body, or undefined when it is chunked. */
  body: Uint8Array | undefined;
  chunks: number;
}

function* parseSegment(bytes: Uint8Array): Generator<ParsedEntry> {
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== VERSION) throw new StorageError(`unknown segment version ${version}`);
  while (!r.done) {
    const flags = r.u8();
    let id: string;
    if (flags & ID_STRING) {
      const len = r.varint();
      id = decoder.decode(bytes.subarray(r.pos, r.pos + len));
      r.pos += len;
    } else {
      id = readCanonicalId(bytes, r.pos);
      r.pos += 16;
    }
    if (flags & CHUNKED) {
      yield { id, body: undefined, chunks: r.varint() };
    } else {
      const len = r.varint();
      yield { id, body: bytes.subarray(r.pos, r.pos + len), chunks: 0 };
      r.pos += len;
    }
  }
}

interface ParsedState {
  segN: number;
  slot: number;
  state: MessageState | null;
}

function* parseStateBatch(bytes: Uint8Array): Generator<ParsedState> {
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== VERSION) throw new StorageError(`unknown state batch version ${version}`);
  while (!r.done) {
    const segN = r.varint();
    const slot = r.varint();
    const attempts = r.varint();
    const flags = r.u8();
    let state: MessageState | null = null;
    if (!(flags & CLEAR)) {
      state = { attempts };
      if (flags & HAS_LEASE) state.leaseDeadline = r.f64();
      if (flags & HAS_READY) state.readyAt = r.f64();
    }
    yield { segN, slot, state };
  }
}

// ---------------------------------------------------------------------------------------------
// Index

/** A state batch as committed; its bytes are kept to rewrite its current entries elsewhere. */
class StateBatch {
  /** Entries that are still the current state of a live message. */
  live = 0;
  /** Set once the batch is deleted from KV. */
  dropped = false;
  constructor(readonly n: number, readonly bytes: Uint8Array, readonly total: number) {}
}

/** A committed segment. */
class Seg {
  gone: Uint8Array | null = null;
  /** Per slot, the batch holding the entry's current state. */
  st: Array<StateBatch | undefined> | null = null;
  constructor(
    readonly qid: string,
    readonly n: number,
    readonly ids: string[],
    /** Whether ids ascend, which allows a binary search. */
    readonly sorted: boolean,
    public live: number,
    /** Slot → chunk count, for the few entries whose body is chunked. */
    readonly chunked: Map<number, number> | null,
  ) {}

  /**
   * The slot of the live copy: a message that left and came back within one commit also has an
   * earlier, gone copy in this segment.
   */
  slotOf(id: string): number {
    const ids = this.ids;
    if (!this.sorted) return ids.lastIndexOf(id);
    let lo = 0;
    let hi = ids.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = ids[mid];
      if (v === id) return mid;
      if (v < id) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}

/** A segment being filled by the commit under construction. */
class SegB {
  readonly ids: string[] = [];
  pos = 1;
  sorted = true;
  dead: Uint8Array | null = null;
  deadCount = 0;
  chunked: Map<number, number> | null = null;
  /** The committed segment, once the commit has succeeded. */
  seg: Seg | undefined;
  constructor(readonly qid: string, readonly n: number, readonly buf: Uint8Array) {
    buf[0] = VERSION;
  }
}

type Target = Seg | SegB;

/** A write of new messages only, which reads and changes nothing a concurrent commit does. */
function isPurePut(w: PendingWrite): boolean {
  for (const m of w.mutations) if (m.op !== "putMessage" || m.state !== undefined) return false;
  return w.mutations.length > 0;
}

/**
 * A body as a write carries it into a commit: to encode into its segment, already encoded
 * (a large body, or a stored encoding being moved), or the chunk count of a chunked one.
 */
type Encoded = MessageBody | Uint8Array | number;

/** Store-internal mutations: purge drops a deleted queue's segment; migration deletes rows. */
type Internal = { op: "drop"; seg: Seg } | { op: "rawDelete"; key: Deno.KvKey };

interface PendingWrite {
  mutations: ReadonlyArray<Mutation | Internal>;
  resolve: () => void;
  reject: (e: Error) => void;
  /** Per mutation: the encoded body, or its chunk count when chunked (computed once). */
  enc?: Array<Encoded | undefined>;
}

/** One KV commit under construction. Nothing here touches the index until the commit is done. */
class Build {
  readonly writes: PendingWrite[] = [];
  /** Mandatory costs so far (optional deletions and rewrites are added at finalisation). */
  mut = 0;
  bytes = 0;
  keyBytes = 0;
  readonly open = new Map<string, SegB>();
  readonly segs: SegB[] = [];
  /** Id → segment of this commit holding its latest copy. */
  readonly fresh = new Map<string, SegB>();
  /** Committed segment → its slots gone in this commit. */
  readonly gone = new Map<Seg, number[]>();
  readonly goneIds = new Set<string>();
  /** New states by target and slot (null = clear entry). */
  readonly states = new Map<Target, Map<number, MessageState | null>>();
  stateCount = 0;
  stateValues = 0;
  /** Committed batches → their entries superseded or gone in this commit. */
  readonly dec = new Map<StateBatch, number>();
  /** Chunks of acked messages, deleted once the commit is durable. */
  readonly chunkDeletes: Array<[string, number]> = [];
  readonly raw: Array<{ key: Deno.KvKey; value?: unknown }> = [];
}

/** What finalisation decided, applied to the index once the commit succeeds. */
interface Plan {
  op: Deno.AtomicOperation;
  mutations: number;
  /** Committed segment → its new gone bitmap, or null when it is deleted. */
  newGone: Map<Seg, Uint8Array | null>;
  deletedBatches: StateBatch[];
  reapedSegs: Seg[];
  batches: Array<{ batch: StateBatch; targets: Target[]; slots: number[] }>;
}

export class SegmentStore implements Store {
  readonly #kv: Deno.Kv;
  #pending: PendingWrite[] = [];
  #flushing: Promise<void> | undefined;
  #loading: Promise<void> | undefined;
  #indexed = false;
  #closed = false;
  #cleanup: Promise<void> = Promise.resolve();

  /** Message id → committed segment holding its live copy. */
  #loc = new Map<string, Seg>();
  #segs = new Map<number, Seg>();
  /** Fully gone segments and batches whose deletion did not fit in their commit. */
  #reapSegs: Seg[] = [];
  #reapBatches: StateBatch[] = [];
  /** Segments read back for payloads, most recently used last (an LRU of READ_CACHE_SEGMENTS). */
  #readCache = new Map<Seg, Array<Uint8Array | undefined>>();
  /** Sparse batches found by load(), to rewrite when a commit has room. */
  #compactQueue: StateBatch[] = [];
  #nextN = 1;
  #pool: Uint8Array[] = [];
  /** Result of resolve(). */
  #rT: Target | undefined;
  #rSlot = -1;

  private constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** The underlying database, for stores of other records that share the file (API keys). */
  get kv(): Deno.Kv {
    return this.#kv;
  }

  /** Called after each successful group commit with its latency and mutation count (metrics). */
  onCommit: ((latencyMs: number, mutations: number) => void) | undefined;

  /** Opens (creating if needed) the KV database at `path`. */
  static async open(path: string): Promise<SegmentStore> {
    return new SegmentStore(await Deno.openKv(path));
  }

  write(mutations: Mutation[]): Promise<void> {
    return this.#enqueue(mutations);
  }

  #enqueue(mutations: ReadonlyArray<Mutation | Internal>): Promise<void> {
    if (this.#closed) return Promise.reject(new StorageError("store is closed"));
    return new Promise((resolve, reject) => {
      this.#pending.push({ mutations, resolve, reject });
      this.#flushing ??= this.#flushLoop();
    });
  }

  async #flushLoop(): Promise<void> {
    // Yield once so that writes issued in the same turn join the first commit.
    await Promise.resolve();
    try {
      while (this.#loading) await this.#loading;
      if (!this.#indexed) await this.#load(0); // for the index alone: no payload is kept
    } catch (e) {
      const err = storageError(e);
      for (const w of this.#pending.splice(0)) w.reject(err);
      this.#flushing = undefined;
      return;
    }
    // The commit in flight, if any. While it runs, a commit of new messages only may be built
    // and handed to KV behind it: it writes new segments alone and reads nothing the first one
    // changes, so it is independent of it. Everything else waits until no commit is in flight,
    // so that it builds on the index as KV has it.
    let inFlight: Promise<void> | undefined;
    try {
      while (this.#pending.length > 0) {
        if (inFlight !== undefined && !this.#worthOverlapping(this.#pending)) {
          await inFlight;
          inFlight = undefined;
          continue;
        }
        const overlap = inFlight !== undefined;
        const b = await this.#build(this.#pending, overlap);
        const commit = this.#commit(b, overlap);
        if (inFlight !== undefined) await inFlight;
        inFlight = commit;
        if (this.#pending.length === 0) {
          await inFlight;
          inFlight = undefined;
          if (this.#pending.length === 0 && this.#hasReapWork()) {
            // Idle: spend a commit on deferred deletions, once.
            await this.#commit(new Build(), false);
          }
        }
      }
      if (inFlight !== undefined) await inFlight;
    } catch (e) {
      // Not expected (each write's failure is handled where it occurs), but never leave a
      // caller waiting.
      const err = storageError(e);
      for (const w of this.#pending.splice(0)) w.reject(err);
    }
    this.#flushing = undefined;
  }

  /**
   * Whether the writes at the head of the queue are new messages only, and enough of them to
   * be worth a commit of their own rather than joining the next one.
   */
  #worthOverlapping(queue: PendingWrite[]): boolean {
    let bytes = 0;
    for (const w of queue) {
      if (!isPurePut(w)) break;
      for (const m of w.mutations) bytes += payloadLength((m as { body: MessageBody }).body) + 64;
      if (bytes >= SEGMENT_LIMITS.overlapBytes) return true;
    }
    return false;
  }

  #hasReapWork(): boolean {
    return this.#reapSegs.length > 0 || this.#reapBatches.length > 0 ||
      this.#compactQueue.length > 0;
  }

  /**
   * Takes writes off `queue` into one commit, as many as KV's limits allow; with `putsOnly`,
   * up to the first that is not new messages only.
   */
  async #build(queue: PendingWrite[], putsOnly: boolean): Promise<Build> {
    let b = new Build();
    while (queue.length > 0) {
      const w = queue[0];
      if (putsOnly && !isPurePut(w)) break;
      if (w.enc === undefined) {
        try {
          const p = this.#prepare(w);
          if (p) await p;
        } catch (e) {
          queue.shift();
          w.reject(storageError(e));
          continue;
        }
      }
      try {
        this.#fill(b, w);
      } catch (e) {
        queue.shift();
        w.reject(storageError(e));
        b = this.#rebuild(b);
        continue;
      }
      if (this.#over(b)) {
        b = this.#rebuild(b);
        if (b.writes.length > 0) break;
        queue.shift();
        w.reject(new StorageError("write exceeds the limits of one commit"));
        continue;
      }
      queue.shift();
      b.writes.push(w);
    }
    return b;
  }

  #over(b: Build): boolean {
    return b.mut > SEGMENT_LIMITS.mutationsPerCommit ||
      b.bytes > SEGMENT_LIMITS.bytesPerCommit ||
      b.keyBytes > SEGMENT_LIMITS.keyBytesPerCommit;
  }

  /** A fresh commit holding the writes of `b` (not the one that did not fit). */
  #rebuild(b: Build): Build {
    this.#release(b);
    const nb = new Build();
    for (const w of b.writes) {
      this.#fill(nb, w);
      nb.writes.push(w);
    }
    return nb;
  }

  #release(b: Build): void {
    for (const s of b.segs) if (this.#pool.length < 64) this.#pool.push(s.buf);
  }

  /**
   * Encodes the bodies of a write once (small ones are only sized: they are encoded straight into
   * their segment), commits the chunks of any large new body ahead of it, and reads the stored
   * encoding of moved bodies whose payload is not in memory. Returns a promise only when there
   * is such I/O to wait for.
   */
  #prepare(w: PendingWrite): Promise<void> | undefined {
    const enc: Array<Encoded | undefined> = new Array(w.mutations.length);
    let io: Promise<void>[] | undefined;
    const cold: number[] = [];
    w.mutations.forEach((m, i) => {
      if (m.op !== "putMessage" && m.op !== "moveMessage") return;
      const body = m.body;
      if (m.op === "moveMessage" && typeof body.payload === "number") {
        // Its payload is only in storage: copy the stored encoding as it is.
        cold.push(i);
        return;
      }
      if (maxEncodedBodySize(body) <= KV_LIMITS.chunkBytes) {
        enc[i] = body; // encoded straight into its segment
        return;
      }
      const encoded = encodeBody(body);
      const chunks = chunkCountOf(encoded.length);
      if (chunks === 0) {
        enc[i] = encoded;
        return;
      }
      enc[i] = chunks;
      // A move keeps the chunks already stored under the message id.
      if (m.op === "putMessage") {
        (io ??= []).push(writeChunks(this.#kv, body.id, encoded, chunks));
      }
    });
    w.enc = enc;
    if (cold.length > 0) {
      const ids = cold.map((i) => (w.mutations[i] as { body: MessageBody }).body.id);
      (io ??= []).push(
        this.#readEncoded(ids).then((stored) => {
          cold.forEach((i, j) => enc[i] = stored[j]);
        }),
      );
    }
    return io ? Promise.all(io).then(() => {}) : undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Applying mutations to a commit under construction

  #fill(b: Build, w: PendingWrite): void {
    const ms = w.mutations;
    const enc = w.enc!;
    for (let i = 0; i < ms.length; i++) {
      const m = ms[i];
      switch (m.op) {
        case "putQueue": {
          const key = Keys.queue(m.def.name);
          const size = encoder.encode(m.def.onEnqueueScript + m.def.onFailureScript).length +
            m.def.name.length * 3 + 1024;
          if (size > MAX_VALUE_BYTES) throw new StorageError("queue definition too large");
          this.#raw(b, key, toQueueRecord(m.def), strKeyBytes(m.def.name) + 3, size);
          break;
        }
        case "deleteQueue": {
          const k = strKeyBytes(m.def.name) + 3;
          this.#raw(b, Keys.queue(m.def.name), undefined, k, 0);
          this.#raw(b, Keys.tombstone(m.def.qid), m.def.name, strKeyBytes(m.def.qid) + 4, k * 3);
          break;
        }
        case "putMessage": {
          // As a row would be, a second put of one id replaces the first.
          if (this.#resolve(b, m.qid, m.body.id)) this.#kill(b, this.#rT!, this.#rSlot, false);
          const sb = this.#append(b, m.qid, m.body.id, enc[i]!);
          if (m.state) this.#setState(b, sb, sb.ids.length - 1, m.state);
          break;
        }
        case "setState":
          if (this.#resolve(b, m.qid, m.id)) this.#setState(b, this.#rT!, this.#rSlot, m.state);
          break;
        case "deleteMessage":
          if (this.#resolve(b, m.qid, m.body.id)) this.#kill(b, this.#rT!, this.#rSlot, true);
          break;
        case "moveMessage": {
          if (this.#resolve(b, m.fromQid, m.body.id)) {
            this.#kill(b, this.#rT!, this.#rSlot, false);
          }
          const sb = this.#append(b, m.toQid, m.body.id, enc[i]!);
          if (m.state) this.#setState(b, sb, sb.ids.length - 1, m.state);
          break;
        }
        case "putConfig": {
          const size = encoder.encode(m.value).length + 16;
          // Fail this write alone rather than the whole commit KV would reject.
          if (size > MAX_VALUE_BYTES) throw new StorageError("config value too large");
          this.#raw(b, Keys.config(m.key), m.value, strKeyBytes(m.key) + 5, size);
          break;
        }
        case "deleteConfig":
          this.#raw(b, Keys.config(m.key), undefined, strKeyBytes(m.key) + 5, 0);
          break;
        case "drop": {
          const seg = m.seg;
          if (this.#segs.get(seg.n) !== seg) break;
          for (let slot = 0; slot < seg.ids.length; slot++) {
            if (isSet(seg.gone, slot) || b.goneIds.has(seg.ids[slot])) continue;
            this.#kill(b, seg, slot, false);
          }
          break;
        }
        case "rawDelete":
          this.#raw(b, m.key, undefined, 128, 0);
          break;
      }
    }
  }

  #raw(b: Build, key: Deno.KvKey, value: unknown, keyBytes: number, valueBytes: number): void {
    b.raw.push(value === undefined ? { key } : { key, value });
    b.mut++;
    b.keyBytes += keyBytes;
    b.bytes += keyBytes + valueBytes + OVERHEAD;
  }

  /** Finds the live copy of (qid, id) as of this commit into #rT/#rSlot. */
  #resolve(b: Build, qid: string, id: string): boolean {
    const f = b.fresh.get(id);
    if (f !== undefined && f.qid === qid) {
      const slot = f.ids.lastIndexOf(id);
      if (slot >= 0 && !isSet(f.dead, slot)) {
        this.#rT = f;
        this.#rSlot = slot;
        return true;
      }
    }
    const s = this.#loc.get(id);
    if (s !== undefined && s.qid === qid && !b.goneIds.has(id)) {
      const slot = s.slotOf(id);
      if (slot >= 0 && !isSet(s.gone, slot)) {
        this.#rT = s;
        this.#rSlot = slot;
        return true;
      }
    }
    return false;
  }

  #append(b: Build, qid: string, id: string, enc: Encoded): SegB {
    const canonical = isCanonicalId(id);
    const idBytes = canonical ? undefined : encoder.encode(id);
    const idSize = idBytes ? varintSize(idBytes.length) + idBytes.length : 16;
    const chunked = typeof enc === "number";
    const encLength = chunked
      ? 0
      : enc instanceof Uint8Array
      ? enc.length
      : maxEncodedBodySize(enc);
    // At most: the actual size is known once a body is encoded into the segment.
    const bodySize = chunked ? varintSize(enc) : varintSize(encLength) + encLength;
    const size = 1 + idSize + bodySize;
    const L = SEGMENT_LIMITS;
    if (size > L.segmentBytes - 1) throw new StorageError(`message ${id} does not fit a segment`);
    let sb = b.open.get(qid);
    if (sb === undefined || sb.pos + size > L.segmentBytes || sb.ids.length >= L.segmentEntries) {
      const buf = this.#pool.pop() ?? new Uint8Array(L.segmentBytes);
      sb = new SegB(qid, this.#nextN++, buf);
      b.open.set(qid, sb);
      b.segs.push(sb);
      const k = strKeyBytes(qid) + 12;
      b.mut++;
      b.keyBytes += k;
      b.bytes += k + 1 + OVERHEAD;
    }
    const buf = sb.buf;
    let p = sb.pos;
    buf[p++] = (idBytes ? ID_STRING : 0) | (chunked ? CHUNKED : 0);
    if (idBytes) {
      p = putVarint(buf, p, idBytes.length);
      buf.set(idBytes, p);
      p += idBytes.length;
    } else {
      writeCanonicalId(id, buf, p);
      p += 16;
    }
    if (chunked) {
      p = putVarint(buf, p, enc);
    } else if (enc instanceof Uint8Array) {
      p = putVarint(buf, p, enc.length);
      buf.set(enc, p);
      p += enc.length;
    } else {
      // Room for the largest length prefix; closed up if the actual length needs fewer bytes.
      const reserved = varintSize(encLength);
      const end = encodeBodyInto(enc, buf, p + reserved);
      const length = end - p - reserved;
      const used = varintSize(length);
      if (used < reserved) buf.copyWithin(p + used, p + reserved, end);
      p = putVarint(buf, p, length) + length;
    }
    b.bytes += p - sb.pos;
    sb.pos = p;
    const slot = sb.ids.length;
    if (slot > 0 && !(sb.ids[slot - 1] < id)) sb.sorted = false;
    sb.ids.push(id);
    if (chunked) (sb.chunked ??= new Map()).set(slot, enc);
    b.fresh.set(id, sb);
    return sb;
  }

  /** Marks an entry gone (acked, moved out, replaced or dropped). */
  #kill(b: Build, t: Target, slot: number, deleteChunks: boolean): void {
    const id = t.ids[slot];
    if (t instanceof SegB) {
      if (t.dead === null) {
        t.dead = new Uint8Array(SEGMENT_LIMITS.segmentEntries >>> 3);
        const k = strKeyBytes(t.qid) + 12;
        b.mut++;
        b.keyBytes += k;
        b.bytes += k + t.dead.length + OVERHEAD;
      }
      t.dead[slot >>> 3] |= 1 << (slot & 7);
      t.deadCount++;
      if (b.fresh.get(id) === t) b.fresh.delete(id);
    } else {
      let list = b.gone.get(t);
      if (list === undefined) {
        b.gone.set(t, list = []);
        const k = strKeyBytes(t.qid) + 12;
        b.mut++;
        b.keyBytes += k;
        b.bytes += k + bitmapBytes(t.ids.length) + OVERHEAD;
      }
      list.push(slot);
      b.goneIds.add(id);
    }
    const pend = b.states.get(t);
    if (pend !== undefined && pend.has(slot)) {
      // A committed state it superseded was already counted out when the entry was added.
      pend.delete(slot);
    } else if (t instanceof Seg) {
      const old = t.st?.[slot];
      if (old) this.#dec(b, old);
    }
    if (deleteChunks) {
      const c = t.chunked?.get(slot);
      if (c) b.chunkDeletes.push([id, c]);
    }
  }

  #setState(b: Build, t: Target, slot: number, state: MessageState | null): void {
    let pend = b.states.get(t);
    const old = t instanceof Seg ? t.st?.[slot] : undefined;
    if (pend !== undefined && pend.has(slot)) {
      if (state === null && old === undefined) pend.delete(slot);
      else pend.set(slot, state);
      return;
    }
    // Pending with no attempt is what a message without any state entry is.
    if (state === null && old === undefined) return;
    if (old) this.#dec(b, old);
    if (pend === undefined) b.states.set(t, pend = new Map());
    pend.set(slot, state);
    b.stateCount++;
    b.bytes += STATE_ENTRY_MAX;
    const values = Math.ceil(
      b.stateCount * STATE_ENTRY_MAX / (SEGMENT_LIMITS.stateBatchBytes - STATE_ENTRY_MAX),
    );
    while (b.stateValues < values) {
      b.stateValues++;
      b.mut++;
      b.keyBytes += 12;
      b.bytes += 12 + 1 + OVERHEAD;
    }
  }

  #dec(b: Build, batch: StateBatch): void {
    b.dec.set(batch, (b.dec.get(batch) ?? 0) + 1);
  }

  // -------------------------------------------------------------------------------------------
  // Committing

  /** Turns a commit under construction into one KV atomic operation, adding optional work. */
  #finalize(b: Build, overlapped: boolean): Plan {
    const L = SEGMENT_LIMITS;
    const op = this.#kv.atomic();
    let mutations = 0;
    let mut = b.mut;
    let bytes = b.bytes;
    let keyBytes = b.keyBytes;
    const fits = (m: number, by: number, k: number) =>
      mut + m <= L.mutationsPerCommit && bytes + by <= L.bytesPerCommit &&
      keyBytes + k <= L.keyBytesPerCommit;
    const take = (m: number, by: number, k: number) => {
      mut += m;
      bytes += by;
      keyBytes += k;
    };

    for (const r of b.raw) {
      if (r.value === undefined) op.delete(r.key);
      else op.set(r.key, r.value);
      mutations++;
    }
    for (const s of b.segs) {
      if (s.deadCount === s.ids.length) continue;
      op.set(Keys.segment(s.qid, s.n), s.buf.subarray(0, s.pos));
      mutations++;
      if (s.dead) {
        op.set(Keys.gone(s.qid, s.n), s.dead.slice(0, bitmapBytes(s.ids.length)));
        mutations++;
      }
    }
    const newGone = new Map<Seg, Uint8Array | null>();
    for (const [seg, slots] of b.gone) {
      const k = strKeyBytes(seg.qid) + 12;
      if (seg.live === slots.length && fits(1, k + OVERHEAD, k)) {
        take(1, k + OVERHEAD, k);
        op.delete(Keys.segment(seg.qid, seg.n));
        op.delete(Keys.gone(seg.qid, seg.n));
        mutations += 2;
        newGone.set(seg, null);
        continue;
      }
      const bm = new Uint8Array(bitmapBytes(seg.ids.length));
      if (seg.gone) bm.set(seg.gone);
      for (const slot of slots) bm[slot >>> 3] |= 1 << (slot & 7);
      op.set(Keys.gone(seg.qid, seg.n), bm);
      mutations++;
      newGone.set(seg, bm);
    }

    // Batches that lose entries here, and sparse ones found at load: delete or rewrite.
    const deletedBatches: StateBatch[] = [];
    const batchKey = 12;
    const candidates = new Set<StateBatch>(b.dec.keys());
    for (const sb of overlapped ? [] : this.#compactQueue) candidates.add(sb);
    for (const sb of candidates) {
      if (sb.dropped) continue;
      const left = sb.live - (b.dec.get(sb) ?? 0);
      if (left > sb.total * L.compactFraction) continue;
      if (left === 0) {
        if (!fits(1, batchKey + OVERHEAD, batchKey)) continue;
        take(1, batchKey + OVERHEAD, batchKey);
      } else {
        // Room for the rewritten entries and possibly one more batch value.
        const extraBytes = left * STATE_ENTRY_MAX + 2 * (batchKey + OVERHEAD);
        if (!fits(2, extraBytes, 2 * batchKey)) continue;
        if (!this.#reemit(b, sb)) continue;
        take(2, extraBytes, 2 * batchKey);
      }
      op.delete(Keys.stateBatch(sb.n));
      mutations++;
      deletedBatches.push(sb);
    }

    const reapedSegs: Seg[] = [];
    for (const seg of overlapped ? [] : this.#reapSegs) {
      const k = strKeyBytes(seg.qid) + 12;
      if (!fits(2, 2 * (k + OVERHEAD), 2 * k)) break;
      take(2, 2 * (k + OVERHEAD), 2 * k);
      op.delete(Keys.segment(seg.qid, seg.n));
      op.delete(Keys.gone(seg.qid, seg.n));
      mutations += 2;
      reapedSegs.push(seg);
    }
    for (const sb of overlapped ? [] : this.#reapBatches) {
      if (sb.dropped || deletedBatches.includes(sb)) continue;
      if (!fits(1, batchKey + OVERHEAD, batchKey)) break;
      take(1, batchKey + OVERHEAD, batchKey);
      op.delete(Keys.stateBatch(sb.n));
      mutations++;
      deletedBatches.push(sb);
    }

    // State entries, split into values of at most stateBatchBytes.
    const batches: Plan["batches"] = [];
    let buf = new Uint8Array(L.stateBatchBytes);
    let view = new DataView(buf.buffer);
    let pos = 1;
    let targets: Target[] = [];
    let slots: number[] = [];
    const flush = () => {
      if (targets.length === 0) return;
      buf[0] = VERSION;
      const batch = new StateBatch(this.#nextN++, buf.slice(0, pos), targets.length);
      op.set(Keys.stateBatch(batch.n), batch.bytes);
      mutations++;
      batches.push({ batch, targets, slots });
      buf = new Uint8Array(L.stateBatchBytes);
      view = new DataView(buf.buffer);
      pos = 1;
      targets = [];
      slots = [];
    };
    for (const [t, pend] of b.states) {
      for (const [slot, state] of pend) {
        if (pos + STATE_ENTRY_MAX > L.stateBatchBytes) flush();
        pos = putVarint(buf, pos, t.n);
        pos = putVarint(buf, pos, slot);
        const attempts = state?.attempts ?? 0;
        if (!Number.isSafeInteger(attempts) || attempts < 0) {
          throw new StorageError(`invalid attempt count ${attempts}`);
        }
        pos = putVarint(buf, pos, attempts);
        const flagsAt = pos++;
        let flags = state === null ? CLEAR : 0;
        if (state?.leaseDeadline !== undefined) {
          flags |= HAS_LEASE;
          view.setFloat64(pos, state.leaseDeadline);
          pos += 8;
        }
        if (state?.readyAt !== undefined) {
          flags |= HAS_READY;
          view.setFloat64(pos, state.readyAt);
          pos += 8;
        }
        buf[flagsAt] = flags;
        targets.push(t);
        slots.push(slot);
      }
    }
    flush();
    return { op, mutations, newGone, deletedBatches, reapedSegs, batches };
  }

  /** Moves the current entries of `sb` into this commit's states; false if none can move. */
  #reemit(b: Build, sb: StateBatch): boolean {
    for (const e of parseStateBatch(sb.bytes)) {
      const seg = this.#segs.get(e.segN);
      if (seg === undefined || seg.st?.[e.slot] !== sb) continue;
      if (b.gone.get(seg)?.includes(e.slot)) continue;
      let pend = b.states.get(seg);
      if (pend?.has(e.slot)) continue;
      if (pend === undefined) b.states.set(seg, pend = new Map());
      pend.set(e.slot, e.state);
    }
    return true;
  }

  /** `overlapped`: another commit is in flight, so no deferred work may join this one. */
  async #commit(b: Build, overlapped: boolean): Promise<void> {
    let plan: Plan;
    try {
      plan = this.#finalize(b, overlapped);
    } catch (e) {
      this.#release(b);
      const err = storageError(e);
      for (const w of b.writes) w.reject(err);
      return;
    }
    let failure: unknown;
    if (plan.mutations > 0) {
      const started = performance.now();
      try {
        const result = await plan.op.commit();
        if (!result.ok) failure = new Error("atomic commit was rejected");
        else this.onCommit?.(performance.now() - started, plan.mutations);
      } catch (e) {
        failure = e;
      }
    }
    this.#release(b);
    if (failure !== undefined) {
      const err = storageError(failure);
      for (const w of b.writes) w.reject(err);
      return;
    }
    this.#applyCommitted(b, plan);
    for (const w of b.writes) w.resolve();
  }

  /** Brings the index in line with a commit that KV has confirmed. */
  #applyCommitted(b: Build, plan: Plan): void {
    for (const [seg, slots] of b.gone) {
      seg.live -= slots.length;
      for (const slot of slots) {
        const id = seg.ids[slot];
        if (this.#loc.get(id) === seg) this.#loc.delete(id);
        if (seg.st) seg.st[slot] = undefined;
      }
      const bm = plan.newGone.get(seg)!;
      if (bm !== null) seg.gone = bm;
      if (seg.live === 0) {
        this.#segs.delete(seg.n);
        if (bm !== null) this.#reapSegs.push(seg);
      }
    }
    for (const [sb, d] of b.dec) sb.live -= d;
    for (const sb of plan.deletedBatches) {
      sb.dropped = true;
      sb.live = 0;
    }
    for (const [sb] of b.dec) if (sb.live === 0 && !sb.dropped) this.#reapBatches.push(sb);
    if (plan.deletedBatches.length > 0) {
      this.#reapBatches = this.#reapBatches.filter((sb) => !sb.dropped);
    }
    if (this.#compactQueue.length > 0) {
      // What is left could not fit this commit; what is no longer sparse needs nothing.
      this.#compactQueue = this.#compactQueue.filter((sb) =>
        !sb.dropped && sb.live <= sb.total * SEGMENT_LIMITS.compactFraction
      );
    }
    if (plan.reapedSegs.length > 0) {
      const reaped = new Set(plan.reapedSegs);
      this.#reapSegs = this.#reapSegs.filter((s) => !reaped.has(s));
    }
    for (const s of b.segs) {
      if (s.deadCount === s.ids.length) continue;
      const seg = new Seg(s.qid, s.n, s.ids, s.sorted, s.ids.length - s.deadCount, s.chunked);
      if (s.dead) seg.gone = s.dead.slice(0, bitmapBytes(s.ids.length));
      s.seg = seg;
      this.#segs.set(seg.n, seg);
      const ids = s.ids;
      for (let i = 0; i < ids.length; i++) {
        if (!isSet(s.dead, i)) this.#loc.set(ids[i], seg);
      }
    }
    for (const { batch, targets, slots } of plan.batches) {
      batch.live = targets.length;
      for (let i = 0; i < targets.length; i++) {
        const t = targets[i];
        const seg = t instanceof SegB ? t.seg! : t;
        (seg.st ??= new Array(seg.ids.length))[slots[i]] = batch;
      }
    }
    if (b.chunkDeletes.length > 0) this.#deleteChunks(b.chunkDeletes);
  }

  /** Chunks of acked messages are unreachable once the ack is durable; delete them later. */
  #deleteChunks(list: Array<[string, number]>): void {
    this.#cleanup = this.#cleanup.then(async () => {
      let op = this.#kv.atomic();
      let n = 0;
      for (const [id, count] of list) {
        for (let i = 0; i < count; i++) {
          op.delete(Keys.chunk(id, i));
          if (++n % 500 === 0) {
            await op.commit();
            op = this.#kv.atomic();
          }
        }
      }
      if (n % 500 !== 0) await op.commit();
    }).catch(() => {
      // Left-over chunks are orphans, deleted at the next load.
    });
  }

  // -------------------------------------------------------------------------------------------
  // Reading payloads back

  async readPayloads(_qid: string, ids: readonly string[]): Promise<Uint8Array[]> {
    const encoded = await this.#readEncoded(ids);
    return Promise.all(
      encoded.map(async (e, i) =>
        decodePayload(typeof e === "number" ? await readChunks(this.#kv, ids[i], e) : e)
      ),
    );
  }

  /**
   * The stored encoding of each live message (ids are unique across queues), or its chunk count
   * when it is chunked. A segment is read once for all the ids it holds and kept in a small
   * cache, since deliveries walk through a segment in order.
   */
  async #readEncoded(ids: readonly string[]): Promise<Array<Uint8Array | number>> {
    for (let attempt = 0;; attempt++) {
      const out: Array<Uint8Array | number> = new Array(ids.length);
      const missing = new Map<Seg, number[]>();
      for (let i = 0; i < ids.length; i++) {
        const seg = this.#loc.get(ids[i]);
        const slot = seg ? seg.slotOf(ids[i]) : -1;
        if (seg === undefined || slot < 0) {
          throw new StorageError(`message ${ids[i]} is no longer stored`);
        }
        const chunks = seg.chunked?.get(slot);
        if (chunks !== undefined) {
          out[i] = chunks;
          continue;
        }
        const cached = this.#readCache.get(seg);
        if (cached !== undefined) {
          this.#readCache.delete(seg);
          this.#readCache.set(seg, cached);
          out[i] = cached[slot]!;
          continue;
        }
        const waiting = missing.get(seg);
        if (waiting) waiting.push(i);
        else missing.set(seg, [i]);
      }
      if (missing.size === 0) return out;
      const segs = [...missing.keys()];
      const read = new Map<Seg, Array<Uint8Array | undefined>>();
      let vanished = false;
      for (let from = 0; from < segs.length; from += 10) {
        const part = segs.slice(from, from + 10);
        const values = await this.#kv.getMany<Uint8Array[]>(
          part.map((seg) => Keys.segment(seg.qid, seg.n)),
        );
        part.forEach((seg, j) => {
          const value = values[j].value;
          if (value === null) {
            vanished = true;
            return;
          }
          const entries = Array.from(parseSegment(value), (e) => e.body);
          read.set(seg, entries);
          this.#readCache.set(seg, entries);
          if (this.#readCache.size > READ_CACHE_SEGMENTS) {
            this.#readCache.delete(this.#readCache.keys().next().value!);
          }
        });
      }
      // A move that committed during the read can have reaped the segment: look again once.
      if (vanished && attempt > 0) {
        throw new StorageError("a segment disappeared while its payloads were read");
      }
      if (!vanished) {
        for (const [seg, indexes] of missing) {
          const entries = read.get(seg)!;
          for (const i of indexes) out[i] = entries[seg.slotOf(ids[i])]!;
        }
        return out;
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Recovery

  async load(options: LoadOptions = {}): Promise<Snapshot> {
    while (this.#flushing) await this.#flushing;
    while (this.#loading) await this.#loading;
    const p = this.#load(options.payloadBudgetBytes ?? Infinity);
    this.#loading = p.then(() => {}, () => {});
    try {
      return await p;
    } finally {
      this.#loading = undefined;
    }
  }

  async #load(payloadBudget: number): Promise<Snapshot> {
    const kv = this.#kv;
    this.#readCache.clear();
    this.#indexed = false;
    this.#loc = new Map();
    this.#segs = new Map();
    this.#reapSegs = [];
    this.#reapBatches = [];
    this.#compactQueue = [];
    let maxN = 0;

    const queues: QueueDef[] = [];
    const nameByQid = new Map<string, string>();
    for await (const e of kv.list<QueueRecord>({ prefix: Keys.queuePrefix })) {
      const def = fromQueueRecord(e.value);
      queues.push(def);
      nameByQid.set(def.qid, def.name);
    }

    const goneByN = new Map<number, { qid: string; bits: Uint8Array }>();
    for await (const e of kv.list<Uint8Array>({ prefix: Keys.gonePrefix })) {
      const [, qid, n] = e.key as [string, string, number];
      goneByN.set(n, { qid, bits: e.value });
      if (n > maxN) maxN = n;
    }

    const orphanQids = new Set<string>();
    const liveChunked = new Set<string>();
    const emptySegs: Array<[string, number]> = [];
    const loaded: Array<{ seg: Seg; bodies: Array<MessageBody | undefined> }> = [];
    for await (const e of kv.list<Uint8Array>({ prefix: Keys.segmentPrefix }, { batchSize: 64 })) {
      const [, qid, n] = e.key as [string, string, number];
      if (n > maxN) maxN = n;
      if (!nameByQid.has(qid)) {
        orphanQids.add(qid);
        continue;
      }
      const gone = goneByN.get(n)?.bits ?? null;
      goneByN.delete(n);
      const ids: string[] = [];
      const bodies: Array<MessageBody | undefined> = [];
      let chunked: Map<number, number> | null = null;
      let sorted = true;
      let live = 0;
      for (const entry of parseSegment(e.value)) {
        const slot = ids.length;
        if (slot > 0 && !(ids[slot - 1] < entry.id)) sorted = false;
        ids.push(entry.id);
        if (entry.chunks > 0) (chunked ??= new Map()).set(slot, entry.chunks);
        if (isSet(gone, slot)) continue;
        live++;
        let encoded = entry.body;
        if (encoded === undefined) {
          liveChunked.add(entry.id);
          encoded = await readChunks(kv, entry.id, entry.chunks);
        }
        // A view: the segment value stays alive for the payloads kept, and is dropped with the rest.
        const body = decodeBody(entry.id, encoded, "view");
        const length = payloadLength(body);
        if (length <= payloadBudget) payloadBudget -= length;
        else body.payload = length;
        bodies[slot] = body;
      }
      if (live === 0) {
        emptySegs.push([qid, n]);
        continue;
      }
      const seg = new Seg(qid, n, ids, sorted, live, chunked);
      seg.gone = gone;
      this.#segs.set(n, seg);
      for (let i = 0; i < ids.length; i++) if (bodies[i]) this.#loc.set(ids[i], seg);
      loaded.push({ seg, bodies });
    }

    // Later entries supersede earlier ones, so read in ascending n and keep the last.
    const stateOf = new Map<Seg, Array<MessageState | null | undefined>>();
    const batches: StateBatch[] = [];
    for await (const e of kv.list<Uint8Array>({ prefix: Keys.stateBatchPrefix })) {
      const n = e.key[1] as number;
      if (n > maxN) maxN = n;
      let total = 0;
      const entries: ParsedState[] = [];
      for (const s of parseStateBatch(e.value)) {
        total++;
        entries.push(s);
      }
      const batch = new StateBatch(n, e.value, total);
      batches.push(batch);
      for (const s of entries) {
        const seg = this.#segs.get(s.segN);
        if (seg === undefined || s.slot >= seg.ids.length || isSet(seg.gone, s.slot)) continue;
        const st = seg.st ??= new Array(seg.ids.length);
        const prev = st[s.slot];
        if (prev) prev.live--;
        st[s.slot] = batch;
        batch.live++;
        let vals = stateOf.get(seg);
        if (vals === undefined) stateOf.set(seg, vals = new Array(seg.ids.length));
        vals[s.slot] = s.state;
      }
    }
    this.#nextN = maxN + 1;
    this.#indexed = true;

    const messages = new Map<string, StoredMessage[]>();
    for (const { seg, bodies } of loaded) {
      const name = nameByQid.get(seg.qid)!;
      let list = messages.get(name);
      if (!list) messages.set(name, list = []);
      const vals = stateOf.get(seg);
      for (let i = 0; i < bodies.length; i++) {
        const body = bodies[i];
        if (body === undefined) continue;
        const state = vals?.[i];
        list.push(state ? { body, state } : { body });
      }
    }

    await this.#migrateRows(nameByQid, messages, liveChunked);
    for (const list of messages.values()) {
      list.sort((a, b) => (a.body.id < b.body.id ? -1 : a.body.id > b.body.id ? 1 : 0));
    }

    // Clean-up of what a crash or a deleted queue leaves behind; none of it is reachable.
    const deletes: Deno.KvKey[] = [];
    for (const [qid, n] of emptySegs) deletes.push(Keys.segment(qid, n), Keys.gone(qid, n));
    for (const [n, { qid }] of goneByN) {
      // Only a live queue's: a deleted queue's bitmaps still tell its purge what moved out.
      if (nameByQid.has(qid)) deletes.push(Keys.gone(qid, n));
    }
    for (const sb of batches) {
      if (sb.live === 0) {
        deletes.push(Keys.stateBatch(sb.n));
        sb.dropped = true;
      } else if (sb.live <= sb.total * SEGMENT_LIMITS.compactFraction) {
        this.#compactQueue.push(sb);
      }
    }
    for (let i = 0; i < deletes.length; i += 500) {
      const op = kv.atomic();
      for (const k of deletes.slice(i, i + 500)) op.delete(k);
      await op.commit();
    }
    for (const qid of orphanQids) await kv.set(Keys.tombstone(qid), "");
    await deleteOrphanChunks(kv, liveChunked);

    const config: Array<[string, string]> = [];
    for await (const e of kv.list<string>({ prefix: Keys.configPrefix })) {
      config.push([e.key[1] as string, e.value]);
    }
    return { queues, messages, config };
  }

  /**
   * Rewrites the rows of a database written by KvStore (one row per message) into segments, a
   * few hundred messages per commit, each commit moving its messages atomically.
   */
  async #migrateRows(
    nameByQid: Map<string, string>,
    messages: Map<string, StoredMessage[]>,
    liveChunked: Set<string>,
  ): Promise<void> {
    const kv = this.#kv;
    const states = new Map<string, MessageState>();
    const stateKeys: Deno.KvKey[] = [];
    for await (const e of kv.list<StateRecord>({ prefix: Keys.statePrefix })) {
      const [, qid, id] = e.key as [string, string, string];
      if (!nameByQid.has(qid)) continue;
      states.set(qid + "/" + id, fromStateRecord(e.value));
      stateKeys.push(e.key);
    }
    let batch: Array<Mutation | Internal> = [];
    const run = async () => {
      if (batch.length === 0) return;
      const queue: PendingWrite[] = [];
      const done = new Promise<void>((resolve, reject) => {
        queue.push({ mutations: batch, resolve, reject });
      });
      batch = [];
      while (queue.length > 0) await this.#commit(await this.#build(queue, false), false);
      await done;
    };
    for await (
      const e of kv.list<Uint8Array | ChunkedBodyRecord>({ prefix: Keys.bodyPrefix })
    ) {
      const [, qid, id] = e.key as [string, string, string];
      const name = nameByQid.get(qid);
      if (name === undefined) continue;
      let bytes: Uint8Array;
      if (e.value instanceof Uint8Array) bytes = e.value;
      else {
        bytes = await readChunks(kv, id, e.value.chunks);
        liveChunked.add(id);
      }
      const body = decodeBody(id, bytes);
      const state = states.get(qid + "/" + id);
      states.delete(qid + "/" + id);
      batch.push(
        state ? { op: "putMessage", qid, body, state } : { op: "putMessage", qid, body },
        { op: "rawDelete", key: e.key },
        { op: "rawDelete", key: Keys.state(qid, id) },
      );
      let list = messages.get(name);
      if (!list) messages.set(name, list = []);
      list.push(state ? { body, state } : { body });
      if (batch.length >= 600 || maxEncodedBodySize(body) > KV_LIMITS.chunkBytes) await run();
    }
    await run();
    // State rows left over belong to no message.
    for (let i = 0; i < stateKeys.length; i += 500) {
      const op = kv.atomic();
      for (const k of stateKeys.slice(i, i + 500)) op.delete(k);
      await op.commit();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Purge

  async purgeDeleted(): Promise<number> {
    const kv = this.#kv;
    let purged = 0;
    for await (const t of kv.list({ prefix: Keys.tombstonePrefix })) {
      const qid = t.key[1] as string;
      // Segments this process knows go through the commit path, so the index stays exact.
      const known: Seg[] = [];
      for (const seg of this.#segs.values()) if (seg.qid === qid) known.push(seg);
      const chunks: Array<[string, number]> = [];
      for (const seg of known) {
        purged += seg.live;
        if (seg.chunked) {
          for (const [slot, c] of seg.chunked) {
            if (!isSet(seg.gone, slot)) chunks.push([seg.ids[slot], c]);
          }
        }
      }
      await Promise.all(known.map((seg) => this.#enqueue([{ op: "drop", seg }])));
      if (chunks.length > 0) this.#deleteChunks(chunks);

      let skipped = false;
      const seen = new Set<number>();
      for await (
        const e of kv.list<Uint8Array>({ prefix: Keys.segmentsOf(qid) }, { batchSize: 32 })
      ) {
        const n = e.key[2] as number;
        seen.add(n);
        if (this.#segs.has(n)) {
          // Written after the queue was deleted: left to the next purge.
          skipped = true;
          continue;
        }
        const gone = (await kv.get<Uint8Array>(Keys.gone(qid, n))).value;
        const orphaned: Array<[string, number]> = [];
        let slot = 0;
        for (const entry of parseSegment(e.value)) {
          if (isSet(gone, slot++)) continue;
          purged++;
          // Only a live entry's: the chunks of an entry that moved out belong to its new copy.
          if (entry.chunks > 0) orphaned.push([entry.id, entry.chunks]);
        }
        await kv.atomic().delete(e.key).delete(Keys.gone(qid, n)).commit();
        if (orphaned.length > 0) this.#deleteChunks(orphaned);
      }
      for await (const e of kv.list({ prefix: Keys.goneOf(qid) })) {
        const n = e.key[2] as number;
        if (!this.#segs.has(n) && !seen.has(n)) await kv.delete(e.key);
      }
      // Rows of the one-row layout, if a migrated database still has some.
      purged += await purgeRowsOf(kv, qid);
      if (!skipped) await kv.delete(t.key);
    }
    return purged;
  }

  async close(): Promise<void> {
    this.#closed = true;
    while (this.#flushing) await this.#flushing;
    await this.#cleanup;
    this.#kv.close();
  }
}
