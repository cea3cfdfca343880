import assert from "node:assert/strict";
import { constantTimeEqual, hashToken, newToken } from "./token.ts";

Deno.test("newToken() is 32 lowercase hex characters and unique", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 100; i++) {
    const t = newToken();
    assert.match(t, /^[0-9a-f]{32}$/);
    seen.add(t);
  }
  assert.equal(seen.size, 100);
});

Deno.test("hashToken() is SHA-256 in lowercase hex", () => {
  assert.equal(
    hashToken("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("constantTimeEqual() compares any lengths", () => {
  assert.equal(constantTimeEqual("secret", "secret"), true);
  assert.equal(constantTimeEqual("secret", "secreT"), false);
  assert.equal(constantTimeEqual("secret", "secret-longer"), false);
  assert.equal(constantTimeEqual("", ""), true);
});
