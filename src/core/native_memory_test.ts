import assert from "node:assert/strict";
import { tuneNativeMemory } from "./native_memory.ts";

Deno.test("tuneNativeMemory() applies glibc's mmap threshold on Linux, or says why not", () => {
  const why = tuneNativeMemory();
  if (Deno.build.os === "linux" && Deno.env.get("MALLOC_MMAP_THRESHOLD_") === undefined) {
    // The CI machines run Debian (glibc): there it must take effect.
    assert.equal(why, undefined);
  } else {
    assert.equal(typeof why, "string");
  }
});
