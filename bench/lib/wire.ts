/**
 * Hand-rolled protobuf encoding of the few `fila.v1` messages the benchmarks send, and minimal
 * decoders for what they read back (ids, fairness keys, a timestamp in the payload). The client
 * side of a benchmark must not be the bottleneck: requests are built from pre-encoded pieces
 * and responses are scanned, not decoded into objects.
 */

const enc = new TextEncoder();
const dec = new TextDecoder();

export function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

function varintLen(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    len++;
  }
  return len;
}

/** Growable byte writer. */
export class Writer {
  buf: Uint8Array;
  pos = 0;
  constructor(size = 1024) {
    this.buf = new Uint8Array(size);
  }
  #ensure(n: number) {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.pos));
    this.buf = b;
  }
  varint(n: number): this {
    this.#ensure(10);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.#ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  /** Length-delimited field. */
  field(no: number, b: Uint8Array): this {
    return this.varint(no * 8 + 2).varint(b.length).bytes(b);
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** One encoded EnqueueRequest (queue, headers, payload). */
export function enqueueRequest(
  queue: string,
  headers: Record<string, string>,
  payload: Uint8Array,
): Uint8Array {
  const w = new Writer(payload.length + 64);
  w.field(1, enc.encode(queue));
  for (const [k, v] of Object.entries(headers)) {
    const e = new Writer(64).field(1, enc.encode(k)).field(2, enc.encode(v)).finish();
    w.field(2, e);
  }
  if (payload.length > 0) w.field(3, payload);
  return w.finish();
}

/** BatchEnqueueRequest from already-encoded EnqueueRequests. */
export function batchOf(items: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const it of items) size += 1 + varintLen(it.length) + it.length;
  const w = new Writer(size);
  for (const it of items) w.field(1, it);
  return w.buf.subarray(0, w.pos);
}

/** ConsumeRequest. */
export function consumeRequest(queue: string, maxUnacked: number, maxBatch: number): Uint8Array {
  const w = new Writer(64).field(1, enc.encode(queue));
  if (maxUnacked > 0) w.varint(2 * 8).varint(maxUnacked);
  if (maxBatch > 0) w.varint(3 * 8).varint(maxBatch);
  return w.finish();
}

/** BatchAckRequest for `ids` of one queue (ids are the raw UTF-8 bytes). */
export function batchAckRequest(queue: Uint8Array, ids: Uint8Array[]): Uint8Array {
  const w = new Writer(ids.length * (queue.length + 48) + 16);
  for (const id of ids) {
    const itemLen = 2 + queue.length + 1 + varintLen(id.length) + id.length;
    w.varint(1 * 8 + 2).varint(itemLen);
    w.field(1, queue).field(2, id);
  }
  return w.finish();
}

/** AckRequest (unary). */
export function ackRequest(queue: Uint8Array, id: Uint8Array): Uint8Array {
  return new Writer(queue.length + id.length + 8).field(1, queue).field(2, id).finish();
}

export const utf8 = (s: string) => enc.encode(s);
export const fromUtf8 = (b: Uint8Array) => dec.decode(b);

// --------------------------------------------------------------------------------------------
// Scanning

function readVarint(b: Uint8Array, pos: number): [number, number] {
  let v = 0;
  let mul = 1;
  while (true) {
    const byte = b[pos++];
    v += (byte & 0x7f) * mul;
    if (byte < 0x80) return [v, pos];
    mul *= 128;
  }
}

/** Calls fn(fieldNo, start, end) for each length-delimited field of b[start, end). */
function eachField(
  b: Uint8Array,
  start: number,
  end: number,
  fn: (no: number, s: number, e: number) => void,
): void {
  let pos = start;
  while (pos < end) {
    let tag: number;
    [tag, pos] = readVarint(b, pos);
    const wt = tag & 7;
    const no = tag >>> 3;
    if (wt === 2) {
      let len: number;
      [len, pos] = readVarint(b, pos);
      fn(no, pos, pos + len);
      pos += len;
    } else if (wt === 0) {
      [, pos] = readVarint(b, pos);
    } else if (wt === 1) pos += 8;
    else if (wt === 5) pos += 4;
    else throw new Error(`unsupported wire type ${wt}`);
  }
}

/** Counts results carrying an error in a Batch*Response. Returns [results, errors, firstError]. */
export function countBatchResults(b: Uint8Array): [number, number, string] {
  let n = 0;
  let errors = 0;
  let first = "";
  eachField(b, 0, b.length, (no, s, e) => {
    if (no !== 1) return;
    n++;
    eachField(b, s, e, (f, fs, fe) => {
      // BatchEnqueueResult.error = 2; BatchSettleResult.error = 1.
      const isErr = (f === 2) || (f === 1 && fe > fs && b[fs] === 0x08);
      if (isErr) {
        errors++;
        if (!first) first = dec.decode(b.subarray(fs, fe));
      }
    });
  });
  return [n, errors, first];
}

/** What the benchmarks read from one delivered message. */
export interface Delivered {
  /** Raw UTF-8 bytes of the id (re-used as-is in BatchAck). */
  id: Uint8Array;
  fairnessKey: string;
  /** First 8 bytes of the payload as a float64 (send time stamped by the producer), or NaN. */
  stamp: number;
}

function scanMessage(b: Uint8Array, s: number, e: number, wantKey: boolean): Delivered {
  const d: Delivered = { id: b.subarray(s, s), fairnessKey: "", stamp: NaN };
  eachField(b, s, e, (no, fs, fe) => {
    if (no === 1) d.id = b.slice(fs, fe);
    else if (no === 3 && fe - fs >= 8) {
      d.stamp = new DataView(b.buffer, b.byteOffset + fs, 8).getFloat64(0, true);
    } else if (no === 4 && wantKey) {
      eachField(b, fs, fe, (mn, ms, me) => {
        if (mn === 1) d.fairnessKey = dec.decode(b.subarray(ms, me));
      });
    }
  });
  return d;
}

/** The messages of one ConsumeResponse (single `message` or batched `messages`). */
export function scanConsumeResponse(b: Uint8Array, wantKey = false): Delivered[] {
  const out: Delivered[] = [];
  eachField(b, 0, b.length, (no, s, e) => {
    if (no === 1 || no === 2) out.push(scanMessage(b, s, e, wantKey));
  });
  return out;
}

/** A payload of `size` bytes whose first 8 bytes hold `stamp` (little-endian float64). */
export function stampedPayload(size: number, stamp: number): Uint8Array {
  const p = new Uint8Array(Math.max(size, 8)).fill(120);
  new DataView(p.buffer).setFloat64(0, stamp, true);
  return p;
}
