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

// In a `deno run` process, as the broker runs it (under `deno test` the new context that
// exposes the collector never returns).
Deno.test("collectGarbage() runs a full collection that frees unreachable objects", async () => {
  const script = `
    import { collectGarbage } from ${
    JSON.stringify(new URL("./native_memory.ts", import.meta.url).href)
  };
    let junk = Array.from({ length: 200000 }, (_, i) => ({ i, s: "x" + i }));
    const ref = new WeakRef(junk);
    junk = undefined;
    await new Promise((r) => setTimeout(r, 0)); // WeakRef targets live to the end of a job
    console.log(JSON.stringify([collectGarbage(), ref.deref() === undefined]));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(out.code, 0);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), [true, true]);
});
