/**
 * Binary encoding of message bodies for storage. A compact hand-rolled format (rather than
 * KV's structured clone of an object) keeps small messages in one short value and lets a body
 * of any size be split into chunks that fit KV's 64 KiB value limit.
 *
 * Layout (v1): u8 version, f64 enqueuedAtMs, varint weight, str fairnessKey,
 * varint n + n × str throttleKeys, varint n + n × (str key, str value) headers,
 * varint len + payload bytes. `str` = varint byte length + UTF-8 bytes.
 */
import {
  type MessageBody,
  NO_THROTTLE_KEYS,
  payloadLength,
  residentPayload,
} from "../core/types.ts";

const VERSION = 1;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Upper bound of the encoded size, computed without encoding. */
export function maxEncodedBodySize(body: MessageBody): number {
  let n = 1 + 8 + 10 + 10 + 10 + 10 + body.fairnessKey.length * 3;
  for (const k of body.throttleKeys) n += 5 + k.length * 3;
  for (const k in body.headers) n += 10 + (k.length + body.headers[k].length) * 3;
  return n + payloadLength(body);
}

const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

class Writer {
  constructor(readonly buf: Uint8Array, public pos: number) {}
  /** Big-endian, as DataView writes it by default. */
  f64(v: number): void {
    f64[0] = v;
    for (let i = 0; i < 8; i++) this.buf[this.pos++] = f64Bytes[LITTLE_ENDIAN ? 7 - i : i];
  }
  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }
  str(s: string): void {
    // Reserve one varint byte for short strings and move the bytes if the length needs more.
    if (s.length < 43) {
      const at = this.pos++;
      const { written } = encoder.encodeInto(s, this.buf.subarray(this.pos));
      this.buf[at] = written;
      this.pos += written;
      return;
    }
    const bytes = encoder.encode(s);
    this.varint(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }
}

export function encodeBody(body: MessageBody): Uint8Array {
  const buf = new Uint8Array(maxEncodedBodySize(body));
  return buf.subarray(0, encodeBodyInto(body, buf, 0));
}

/**
 * Encodes `body` into `buf` at `pos`, which must leave room for maxEncodedBodySize(body) bytes;
 * returns the end position. Lets a segment take a body without a copy of its own.
 */
export function encodeBodyInto(body: MessageBody, buf: Uint8Array, pos: number): number {
  const w = new Writer(buf, pos);
  w.buf[w.pos++] = VERSION;
  w.f64(body.enqueuedAtMs);
  w.varint(body.weight);
  w.str(body.fairnessKey);
  w.varint(body.throttleKeys.length);
  for (const k of body.throttleKeys) w.str(k);
  const keys = Object.keys(body.headers);
  w.varint(keys.length);
  for (const k of keys) {
    w.str(k);
    w.str(body.headers[k]);
  }
  const payload = residentPayload(body);
  w.varint(payload.length);
  w.buf.set(payload, w.pos);
  w.pos += payload.length;
  return w.pos;
}

/** Reads an encoded body; the decoders below share it. */
class Reader {
  pos = 0;
  constructor(readonly bytes: Uint8Array) {
    if (bytes[0] !== VERSION) throw new Error(`unknown message body version ${bytes[0]}`);
    this.pos = 1;
  }
  varint(): number {
    let n = 0;
    let mul = 1;
    for (;;) {
      const b = this.bytes[this.pos++];
      if (b === undefined) throw new Error("truncated message body");
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 128;
    }
  }
  /** Big-endian, as Writer.f64 writes it. */
  f64(): number {
    for (let i = 0; i < 8; i++) f64Bytes[LITTLE_ENDIAN ? 7 - i : i] = this.bytes[this.pos++];
    return f64[0];
  }
  str(): string {
    const len = this.varint();
    const s = decoder.decode(this.bytes.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }
  skipStr(): void {
    const len = this.varint(); // before `pos +=` reads pos
    this.pos += len;
  }
  /** The payload, once everything before it has been read or skipped. */
  payload(): Uint8Array {
    const len = this.varint();
    return this.bytes.subarray(this.pos, this.pos + len);
  }
}

/**
 * Decodes a stored body. The payload is copied out by default, so that it does not pin a larger
 * decoding buffer; `"view"` leaves it a view of `bytes`, for a caller that keeps `bytes` anyway.
 */
export function decodeBody(
  id: string,
  bytes: Uint8Array,
  payloadAs: "copy" | "view" = "copy",
): MessageBody {
  const r = new Reader(bytes);
  const enqueuedAtMs = r.f64();
  const weight = r.varint();
  const fairnessKey = r.str();
  const throttleCount = r.varint();
  const throttleKeys: string[] = throttleCount === 0 ? NO_THROTTLE_KEYS : new Array(throttleCount);
  for (let i = 0; i < throttleKeys.length; i++) throttleKeys[i] = r.str();
  const headers: Record<string, string> = {};
  const headerCount = r.varint();
  for (let i = 0; i < headerCount; i++) {
    const k = r.str();
    headers[k] = r.str();
  }
  const view = r.payload();
  const payload = payloadAs === "view" ? view : view.slice();
  return { id, headers, payload, fairnessKey, weight, throttleKeys, enqueuedAtMs };
}

/**
 * The payload of an encoded body, without decoding the rest: a view of `bytes`, which it
 * keeps alive (a store reading many payloads out of one value makes no allocation per payload).
 */
export function decodePayload(bytes: Uint8Array): Uint8Array {
  const r = new Reader(bytes);
  r.pos += 8; // enqueuedAtMs
  r.varint(); // weight
  r.skipStr(); // fairness key
  for (let n = r.varint(); n > 0; n--) r.skipStr();
  for (let n = r.varint(); n > 0; n--) {
    r.skipStr();
    r.skipStr();
  }
  return r.payload();
}
