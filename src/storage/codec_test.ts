import assert from "node:assert/strict";
import { decodeBody, decodePayload, encodeBody, maxEncodedBodySize } from "./codec.ts";
import type { MessageBody } from "../core/types.ts";

function body(overrides: Partial<MessageBody> = {}): MessageBody {
  return {
    id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    headers: { tenant: "acme", "é": "€😀" },
    payload: new Uint8Array([1, 2, 3]),
    fairnessKey: "acme",
    weight: 3,
    throttleKeys: ["a", "b", "a"],
    enqueuedAtMs: 1_700_000_000_123,
    ...overrides,
  };
}

Deno.test("encodeBody() round-trips every field", () => {
  for (
    const b of [
      body(),
      body({
        headers: {},
        payload: new Uint8Array(),
        fairnessKey: "",
        weight: 0,
        throttleKeys: [],
      }),
      body({ fairnessKey: "k".repeat(255), weight: 4_294_967_295 }),
      body({ payload: new Uint8Array(300_000).fill(7) }),
      body({
        headers: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`h${i}`, `v${i}`])),
      }),
      body({ headers: { long: "x".repeat(5000) } }),
    ]
  ) {
    const bytes = encodeBody(b);
    assert.ok(bytes.length <= maxEncodedBodySize(b));
    assert.deepEqual(decodeBody(b.id, bytes), b);
    assert.deepEqual(decodePayload(bytes), b.payload);
    const view = decodeBody(b.id, bytes, "view");
    assert.deepEqual(view, b);
    assert.equal((view.payload as Uint8Array).buffer, bytes.buffer);
  }
});

Deno.test("encodeBody() refuses a body whose payload is not in memory", () => {
  assert.throws(() => encodeBody(body({ payload: 3 })), /not in memory/);
});
