import assert from "node:assert/strict";
import { newMessageId, parseMessageId } from "./ids.ts";

const LAYOUT = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

Deno.test("newMessageId() renders a lowercase UUIDv7", () => {
  assert.match(newMessageId(), LAYOUT);
});

Deno.test("newMessageId() is strictly increasing even when the clock stalls or steps back", () => {
  let prev = newMessageId(2_000_000_000_000);
  for (let i = 0; i < 10_000; i++) {
    const now = 2_000_000_000_000 - (i % 7); // stalls and steps back
    const id = newMessageId(now);
    assert.match(id, LAYOUT);
    assert.ok(id > prev, `${id} > ${prev}`);
    prev = id;
  }
});

Deno.test("newMessageId() encodes the timestamp in the first 48 bits", () => {
  const ms = 3_000_000_000_000;
  const id = newMessageId(ms);
  const hex = id.replaceAll("-", "").slice(0, 12);
  assert.ok(parseInt(hex, 16) >= ms);
});

Deno.test("parseMessageId() accepts every documented form and normalises", () => {
  const id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
  for (
    const form of [
      id,
      id.toUpperCase(),
      id.replaceAll("-", ""),
      `{${id}}`,
      `urn:uuid:${id}`,
      `URN:UUID:${id.toUpperCase()}`,
    ]
  ) {
    assert.equal(parseMessageId(form), id, form);
  }
});

Deno.test("parseMessageId() rejects malformed ids", () => {
  for (
    const bad of [
      "abc",
      "0000",
      "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5",
      "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5bb",
      "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g",
      "0190a1b2c3d4-7e5f-8a9b-0c1d2e3f4a5b-",
      "{0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    ]
  ) {
    assert.equal(parseMessageId(bad), undefined, bad);
  }
});
