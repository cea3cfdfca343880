/**
 * Hand-written protobuf encoding of `ConsumeResponse { Message message = 1; }`, the hot path of
 * delivery, and the exact size of a delivered `Message` (the Enqueue size limit is defined on
 * it). Field layout as proto/fila/v1/messages.proto; map entries carry both key and value, as
 * protobufjs writes them.
 */
import { type Delivery, type MessageBody, payloadLength, residentPayload } from "../core/types.ts";
import { utf8Length } from "../core/validate.ts";

const encoder = new TextEncoder();

function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  return 5;
}

function strField(len: number): number {
  return 1 + varintSize(len) + len;
}

function metadataSize(body: MessageBody, attempts: number, queue: string): number {
  let n = 0;
  if (body.fairnessKey.length > 0) n += strField(utf8Length(body.fairnessKey));
  if (body.weight !== 0) n += 1 + varintSize(body.weight);
  for (const k of body.throttleKeys) n += strField(utf8Length(k));
  if (attempts !== 0) n += 1 + varintSize(attempts);
  if (queue.length > 0) n += strField(utf8Length(queue));
  return n;
}

function headersSize(headers: Record<string, string>): number {
  let n = 0;
  for (const k in headers) {
    const entry = strField(utf8Length(k)) + strField(utf8Length(headers[k]));
    n += 1 + varintSize(entry) + entry;
  }
  return n;
}

function messageSize(d: Delivery, headers: number, metadata: number): number {
  let n = strField(d.body.id.length) + headers;
  const payload = payloadLength(d.body);
  if (payload > 0) n += strField(payload);
  return n + 1 + varintSize(metadata) + metadata;
}

/** Encoded size of the `Message` as first delivered from `queue`. */
export function deliveredSize(body: MessageBody, queue: string): number {
  const d = { body, attempts: 0, queue };
  return messageSize(d, headersSize(body.headers), metadataSize(body, 0, queue));
}

class Writer {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }
  tag(field: number, wire: number): void {
    this.buf[this.pos++] = (field << 3) | wire;
  }
  str(field: number, s: string, len: number): void {
    this.tag(field, 2);
    this.varint(len);
    const { written } = encoder.encodeInto(s, this.buf.subarray(this.pos, this.pos + len));
    this.pos += written;
  }
}

/** Writes `d` as a length-delimited Message field with tag byte `tag`. */
function writeDelivery(w: Writer, d: Delivery, tag: number): void {
  const b = d.body;
  const metadata = metadataSize(b, d.attempts, d.queue);
  const msg = messageSize(d, headersSize(b.headers), metadata);
  w.buf[w.pos++] = tag;
  w.varint(msg);
  w.str(1, b.id, b.id.length);
  for (const k in b.headers) {
    const v = b.headers[k];
    const kl = utf8Length(k);
    const vl = utf8Length(v);
    w.tag(2, 2);
    w.varint(strField(kl) + strField(vl));
    w.str(1, k, kl);
    w.str(2, v, vl);
  }
  const payload = residentPayload(b);
  if (payload.length > 0) {
    w.tag(3, 2);
    w.varint(payload.length);
    w.buf.set(payload, w.pos);
    w.pos += payload.length;
  }
  w.tag(4, 2);
  w.varint(metadata);
  if (b.fairnessKey.length > 0) w.str(1, b.fairnessKey, utf8Length(b.fairnessKey));
  if (b.weight !== 0) {
    w.tag(2, 0);
    w.varint(b.weight);
  }
  for (const k of b.throttleKeys) w.str(3, k, utf8Length(k));
  if (d.attempts !== 0) {
    w.tag(4, 0);
    w.varint(d.attempts);
  }
  if (d.queue.length > 0) w.str(5, d.queue, utf8Length(d.queue));
}

/** Field tags of ConsumeResponse: 1 `message`, 2 `messages` (both length-delimited). */
const MESSAGE_TAG = (1 << 3) | 2;
const MESSAGES_TAG = (2 << 3) | 2;

/** Encodes one `ConsumeResponse` carrying `d`. */
export function encodeConsumeResponse(d: Delivery): Uint8Array {
  const w = new Writer(new Uint8Array(deliveryFrameSize(d)));
  writeDelivery(w, d, MESSAGE_TAG);
  return w.buf;
}

/** Encoded size of a delivery inside a ConsumeResponse (its field tag and length included). */
export function deliveryFrameSize(d: Delivery): number {
  const msg = messageSize(
    d,
    headersSize(d.body.headers),
    metadataSize(d.body, d.attempts, d.queue),
  );
  return 1 + varintSize(msg) + msg;
}

/**
 * Encodes one batched `ConsumeResponse` (field 2, repeated Message). The caller keeps the sum
 * of `deliveryFrameSize` under the 4 MiB delivery limit.
 */
export function encodeConsumeBatch(ds: readonly Delivery[]): Uint8Array {
  let total = 0;
  for (const d of ds) total += deliveryFrameSize(d);
  const w = new Writer(new Uint8Array(total));
  for (const d of ds) writeDelivery(w, d, MESSAGES_TAG);
  return w.buf;
}
