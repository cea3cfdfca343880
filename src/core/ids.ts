/**
 * UUIDv7 message ids (RFC 9562), strictly increasing within a process: the 12-bit rand_a field
 * is a counter within one millisecond (RFC 9562 method 1); when it overflows the timestamp is
 * advanced by one, so ids stay ordered even if the clock stalls or steps back.
 */

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const RANDOM_POOL = new Uint8Array(8 * 1024);
let randomOffset = RANDOM_POOL.length;
let lastMs = -1;
let counter = 0;

function randomBytes8(): number {
  if (randomOffset + 8 > RANDOM_POOL.length) {
    crypto.getRandomValues(RANDOM_POOL);
    randomOffset = 0;
  }
  const at = randomOffset;
  randomOffset += 8;
  return at;
}

/** Returns a new UUIDv7 in lowercase hyphenated form. */
export function newMessageId(nowMs: number = Date.now()): string {
  if (nowMs > lastMs) {
    lastMs = nowMs;
    // Start each millisecond's counter low but random, leaving room for 2048+ ids.
    counter = RANDOM_POOL[randomBytes8()] & 0x7ff;
  } else {
    counter++;
    if (counter > 0xfff) {
      lastMs++;
      counter = 0;
    }
  }
  const ms = lastMs;
  const hi = Math.floor(ms / 0x1000000); // top 24 bits of the 48-bit timestamp
  const lo = ms % 0x1000000;
  const r = randomBytes8();
  const p = RANDOM_POOL;
  return HEX[(hi >>> 16) & 0xff] + HEX[(hi >>> 8) & 0xff] + HEX[hi & 0xff] +
    HEX[(lo >>> 16) & 0xff] +
    "-" + HEX[(lo >>> 8) & 0xff] + HEX[lo & 0xff] +
    "-" + HEX[0x70 | (counter >>> 8)] + HEX[counter & 0xff] +
    "-" + HEX[0x80 | (p[r] & 0x3f)] + HEX[p[r + 1]] +
    "-" + HEX[p[r + 2]] + HEX[p[r + 3]] + HEX[p[r + 4]] + HEX[p[r + 5]] + HEX[p[r + 6]] +
    HEX[p[r + 7]];
}

const HYPHENATED = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const SIMPLE = /^[0-9a-fA-F]{32}$/;

/**
 * Normalises an accepted message-id form (hyphenated, 32-hex simple, `{…}`, `urn:uuid:…`, any
 * case) to lowercase hyphenated. Returns undefined when the text is not a UUID.
 */
export function parseMessageId(text: string): string | undefined {
  if (text.length === 36) {
    return HYPHENATED.test(text) ? text.toLowerCase() : undefined;
  }
  if (text.length === 32) {
    if (!SIMPLE.test(text)) return undefined;
    const t = text.toLowerCase();
    return `${t.slice(0, 8)}-${t.slice(8, 12)}-${t.slice(12, 16)}-${t.slice(16, 20)}-${
      t.slice(20)
    }`;
  }
  if (text.length === 38 && text[0] === "{" && text[37] === "}") {
    return parseHyphenated(text.slice(1, 37));
  }
  if (text.length === 45 && text.slice(0, 9).toLowerCase() === "urn:uuid:") {
    return parseHyphenated(text.slice(9));
  }
  return undefined;
}

function parseHyphenated(text: string): string | undefined {
  return HYPHENATED.test(text) ? text.toLowerCase() : undefined;
}
