/** Token material: generation, hashing and comparison. Tokens themselves are never stored or logged. */
import { createHash, timingSafeEqual } from "node:crypto";

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** A new token: 128 random bits as 32 lowercase hex characters (wire-contract.md §3.3). */
export function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let out = "";
  for (const b of bytes) out += HEX[b];
  return out;
}

/** SHA-256 of the token's UTF-8 bytes, lowercase hex: the only form a token is stored in. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/**
 * Compares secrets in time independent of where they differ. Both sides are hashed first so
 * that the comparison also does not reveal the secret's length.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const da = createHash("sha256").update(a, "utf8").digest();
  const db = createHash("sha256").update(b, "utf8").digest();
  return timingSafeEqual(da, db);
}
