import assert from "node:assert/strict";
import { decodeLossyUtf8, decodeStrictUtf8 } from "./utf8.ts";

const bytes = (...b: number[]) => new Uint8Array(b);

Deno.test("decodeStrictUtf8 accepts valid UTF-8, keeping a leading BOM", () => {
  assert.equal(decodeStrictUtf8(bytes()), "");
  assert.equal(decodeStrictUtf8(new TextEncoder().encode("tenant:acme")), "tenant:acme");
  assert.equal(decodeStrictUtf8(new TextEncoder().encode("ä✓😀")), "ä✓😀");
  assert.equal(decodeStrictUtf8(bytes(0xef, 0xbb, 0xbf, 0x61)), "\uFEFFa");
  assert.equal(decodeStrictUtf8(bytes(0x61, 0x00, 0x62)), "a\0b");
  assert.equal(decodeStrictUtf8(bytes(0xf4, 0x8f, 0xbf, 0xbf)), "\u{10FFFF}");
  const long = "x".repeat(200) + "é";
  assert.equal(decodeStrictUtf8(new TextEncoder().encode(long)), long);
});

Deno.test("decodeStrictUtf8 rejects what RFC 3629 forbids", () => {
  const invalid = [
    bytes(0xff),
    bytes(0x80),
    bytes(0xc0, 0x80), // overlong NUL
    bytes(0xe0, 0x80, 0x80), // overlong
    bytes(0xed, 0xa0, 0x80), // surrogate
    bytes(0xf4, 0x90, 0x80, 0x80), // above U+10FFFF
    bytes(0xe2, 0x82), // truncated
    bytes(...new Array(100).fill(0x61), 0xff), // past the ASCII fast path
  ];
  for (const b of invalid) assert.equal(decodeStrictUtf8(b), undefined, String(b));
});

Deno.test("decodeLossyUtf8 replaces invalid sequences", () => {
  assert.equal(decodeLossyUtf8(bytes(0x61, 0xff, 0x62)), "a\uFFFDb");
  assert.equal(decodeLossyUtf8(bytes(0x61)), "a");
});
