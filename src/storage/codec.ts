/**
 * Binary encoding of message bodies for storage. A compact hand-rolled format (rather than
 * KV's structured clone of an object) keeps small messages in one short value and lets a body
 * of any size be split into chunks that fit KV's 64 KiB value limit.
 *
 * Layout (v1): u8 version, f64 enqueuedAtMs, varint weight, str fairnessKey,
 * varint n + n × str throttleKeys, varint n + n × (str key, str value) headers,
 * varint len + payload bytes. `str` = varint byte length + UTF-8 bytes.
 */
import type { MessageBody } from "../core/types.ts";

const VERSION = 1;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Upper bound of the encoded size, computed without encoding. */
export function maxEncodedBodySize(body: MessageBody): number {
  let n = 1 + 8 + 10 + 10 + 10 + 10 + body.fairnessKey.length * 3;
  for (const k of body.throttleKeys) n += 5 + k.length * 3;
  for (const k in body.headers) n += 10 + (k.length + body.headers[k].length) * 3;
  return n + body.payload.length;
}

class Writer {
  buf: Uint8Array;
  view: DataView;
  pos = 0;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
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
  const w = new Writer(maxEncodedBodySize(body));
  w.buf[w.pos++] = VERSION;
  w.view.setFloat64(w.pos, body.enqueuedAtMs);
  w.pos += 8;
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
  w.varint(body.payload.length);
  w.buf.set(body.payload, w.pos);
  w.pos += body.payload.length;
  return w.buf.subarray(0, w.pos);
}

export function decodeBody(id: string, bytes: Uint8Array): MessageBody {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const varint = (): number => {
    let n = 0;
    let mul = 1;
    for (;;) {
      const b = bytes[pos++];
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
  const throttleKeys: string[] = new Array(varint());
  for (let i = 0; i < throttleKeys.length; i++) throttleKeys[i] = str();
  const headers: Record<string, string> = {};
  const headerCount = varint();
  for (let i = 0; i < headerCount; i++) {
    const k = str();
    headers[k] = str();
  }
  const payloadLength = varint();
  // Copy so the payload does not pin a larger decoding buffer.
  const payload = bytes.slice(pos, pos + payloadLength);
  return { id, headers, payload, fairnessKey, weight, throttleKeys, enqueuedAtMs };
}
