/**
 * Finds invalid UTF-8 in the string fields of an encoded request (semantics.md §1.1 step 3).
 * protobufjs replaces bad bytes silently when decoding, so this walks the raw wire bytes, using
 * the message's schema to know which length-delimited fields are strings.
 */
import type protobuf from "protobufjs";

type FieldKind =
  | { kind: "string"; name: string }
  | { kind: "message"; name: string; plan: Plan }
  /** A map field: its entries are messages with key = 1 and value = 2. */
  | { kind: "map"; name: string; entry: Plan };

type Plan = Map<number, FieldKind>;

const plans = new WeakMap<protobuf.Type, Plan>();

function planFor(t: protobuf.Type): Plan {
  let plan = plans.get(t);
  if (plan) return plan;
  plan = new Map();
  plans.set(t, plan); // before recursing: recursive message types
  for (const f of t.fieldsArray) {
    f.resolve();
    const original = f.name;
    const name = toSnake(original);
    if (f.map) {
      const mf = f as unknown as protobuf.MapField;
      const entry: Plan = new Map();
      if (mf.keyType === "string") entry.set(1, { kind: "string", name });
      if (mf.type === "string") entry.set(2, { kind: "string", name });
      plan.set(f.id, { kind: "map", name, entry });
    } else if (f.type === "string") {
      plan.set(f.id, { kind: "string", name });
    } else if (f.resolvedType && "fieldsArray" in f.resolvedType) {
      plan.set(f.id, {
        kind: "message",
        name,
        plan: planFor(f.resolvedType as protobuf.Type),
      });
    }
  }
  return plan;
}

function toSnake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
}

const fatal = new TextDecoder("utf-8", { fatal: true });

export function isValidUtf8(b: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end && b[i] < 0x80) i++;
  if (i === end) return true;
  try {
    fatal.decode(b.subarray(i, end));
    return true;
  } catch {
    return false;
  }
}

class Reader {
  pos: number;
  constructor(readonly buf: Uint8Array, start: number, readonly end: number) {
    this.pos = start;
  }
  varint(): number {
    let n = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new RangeError("truncated varint");
      const b = this.buf[this.pos++];
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 128;
    }
    throw new RangeError("varint too long");
  }
}

/**
 * Returns the proto name of the first string field holding invalid UTF-8, or undefined. Malformed
 * framing is left for the decoder to report.
 */
export function findInvalidUtf8(t: protobuf.Type, bytes: Uint8Array): string | undefined {
  try {
    return walk(planFor(t), new Reader(bytes, 0, bytes.length));
  } catch {
    return undefined;
  }
}

function walk(plan: Plan, r: Reader): string | undefined {
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    switch (tag & 7) {
      case 0:
        r.varint();
        break;
      case 1:
        r.pos += 8;
        break;
      case 5:
        r.pos += 4;
        break;
      case 2: {
        const len = r.varint();
        const start = r.pos;
        const end = start + len;
        if (end > r.end) throw new RangeError("truncated field");
        r.pos = end;
        const k = plan.get(field);
        if (!k) break;
        if (k.kind === "string") {
          if (!isValidUtf8(r.buf, start, end)) return k.name;
        } else if (k.kind === "message") {
          const bad = walk(k.plan, new Reader(r.buf, start, end));
          if (bad) return bad;
        } else if (k.entry.size > 0 && walk(k.entry, new Reader(r.buf, start, end))) {
          return k.name;
        }
        break;
      }
      default:
        throw new RangeError("unsupported wire type");
    }
  }
  return undefined;
}
