/**
 * Binary encoding of message bodies for storage. A compact hand-rolled format (rather than
 * KV's structured clone of an object) keeps small messages in one short value and lets a body
 * of any size be split into chunks that fit KV's 64 KiB value limit.
 *
 * Layout (v1): u8 version, f64 enqueuedAtMs, varint weight, str fairnessKey,
 * varint n + n × str throttleKeys, varint n + n × (str key, str value) headers,
 * varint len + payload bytes. `str` = varint byte length + UTF-8 bytes.
 */
import { type MessageBody, payloadLength, residentPayload } from "../core/types.ts";

const VERSION = 1;
/** One shared (frozen) list for the many messages with no throttle key. */
const NO_KEYS: string[] = Object.freeze([]) as unknown as string[];
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

/**
 * Decodes a stored body. With `withPayload` false the payload is not copied out: the body
 * carries its length instead (a payload left in storage).
 */
export function decodeBody(id: string, bytes: Uint8Array, withPayload = true): MessageBody {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const varint = (): number => {
    let n = 0;
    let mul = 1;
    for (;;) {
      const b = bytes[pos++];
      if (b === undefined) throw new Error("truncated message body");
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 128;
    }
  };
  const str = (): string => {
    const len = varint();
    const s = decoder.decode(bytes.subarray(pos, pos + len));
    pos += len;
    return s;
  };
  const version = bytes[pos++];
  if (version !== VERSION) throw new Error(`unknown message body version ${version}`);
  const enqueuedAtMs = view.getFloat64(pos);
  pos += 8;
  const weight = varint();
  const fairnessKey = str();
  const throttleCount = varint();
  const throttleKeys: string[] = throttleCount === 0 ? NO_KEYS : new Array(throttleCount);
  for (let i = 0; i < throttleKeys.length; i++) throttleKeys[i] = str();
  const headers: Record<string, string> = {};
  const headerCount = varint();
  for (let i = 0; i < headerCount; i++) {
    const k = str();
    headers[k] = str();
  }
  const length = varint();
  // Copy so the payload does not pin a larger decoding buffer.
  const payload = withPayload ? bytes.slice(pos, pos + length) : length;
  return { id, headers, payload, fairnessKey, weight, throttleKeys, enqueuedAtMs };
}

/**
 * The payload of an encoded body, without decoding the rest: a view of `bytes`, which it
 * keeps alive (a store reading many payloads out of one value makes no allocation per payload).
 */
export function decodePayload(bytes: Uint8Array): Uint8Array {
  let pos = 9; // version, enqueuedAtMs
  const varint = (): number => {
    let n = 0;
    let mul = 1;
    for (;;) {
      const b = bytes[pos++];
      if (b === undefined) throw new Error("truncated message body");
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 128;
    }
  };
  const skipStr = () => {
    const length = varint(); // before `pos +=` reads pos
    pos += length;
  };
  if (bytes[0] !== VERSION) throw new Error(`unknown message body version ${bytes[0]}`);
  varint(); // weight
  skipStr(); // fairness key
  for (let n = varint(); n > 0; n--) skipStr();
  for (let n = varint(); n > 0; n--) {
    skipStr();
    skipStr();
  }
  const length = varint();
  return bytes.subarray(pos, pos + length);
}
