/**
 * glibc malloc tuning for the broker process.
 *
 * Transport and storage buffers of a few hundred KiB to a few MiB (a BatchEnqueue request, a
 * read of KV segments) come from malloc. glibc raises its mmap threshold to the size of the
 * largest such buffer freed, after which they come from the heap, where freed memory between
 * long-lived allocations is never given back: with a deep backlog the process kept ~40 % more
 * RSS than it used (1.35 GiB vs 0.97 GiB at 1M pending 1 KiB messages, bench/ memory). A fixed
 * threshold keeps large buffers in their own mappings, returned to the system when freed.
 */

import v8 from "node:v8";
import vm from "node:vm";

/** M_MMAP_THRESHOLD in glibc's malloc.h. */
const M_MMAP_THRESHOLD = -3;
/**
 * glibc's initial threshold, kept fixed. Not lower: at 32 KiB every KV segment value (~63 KiB)
 * was mapped and unmapped, which halved BatchEnqueue throughput (30 k vs 54 k msg/s of 1 KiB).
 */
const MMAP_THRESHOLD_BYTES = 128 * 1024;

/** The glibc functions used here; glibc is opened once, and only on Linux. */
const GLIBC_SYMBOLS = {
  mallopt: { parameters: ["i32", "i32"], result: "i32" },
  malloc_trim: { parameters: ["usize"], result: "i32" },
} as const;
let glibcHandle: Deno.DynamicLibrary<typeof GLIBC_SYMBOLS> | string | undefined;

/** glibc's functions, or why they are not available. */
function glibc(): Deno.DynamicLibrary<typeof GLIBC_SYMBOLS> | string {
  if (glibcHandle === undefined) {
    if (Deno.build.os !== "linux") glibcHandle = "not Linux";
    else {
      try {
        glibcHandle = Deno.dlopen("libc.so.6", GLIBC_SYMBOLS);
      } catch (e) {
        glibcHandle = `glibc not available: ${(e as Error).message}`;
      }
    }
  }
  return glibcHandle;
}

/**
 * Sets a fixed mmap threshold through glibc's mallopt, unless the environment already tunes
 * it. Returns why it did nothing, or undefined when applied. Never throws: without glibc
 * (musl, macOS) or without the FFI permission the process runs with the allocator's defaults.
 */
export function tuneNativeMemory(): string | undefined {
  if (Deno.build.os !== "linux") return "not Linux";
  try {
    if (Deno.env.get("MALLOC_MMAP_THRESHOLD_") !== undefined) return "set by the environment";
  } catch { /* no env permission: nothing set there that we know of */ }
  const lib = glibc();
  if (typeof lib === "string") return lib;
  return lib.symbols.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) === 1
    ? undefined
    : "mallopt refused the setting";
}

/**
 * glibc's malloc_trim(0): gives the free pages inside every malloc arena back to the system.
 * glibc returns free memory on its own only from the top of the main heap; after a burst the
 * freed transport and storage buffers sit in the middle of the heaps and in the storage
 * threads' arenas (340 MiB of a 950 MiB RSS at 1M pending, measured). Takes ~35 ms with that
 * much to return, ~2–4 ms otherwise. Returns false where there is no glibc.
 */
export function trimNativeMemory(): boolean {
  const lib = glibc();
  if (typeof lib === "string") return false;
  lib.symbols.malloc_trim(0n);
  return true;
}

/**
 * One full garbage collection, for after recovery: loading a large backlog leaves the heap
 * grown by the load's temporaries, and V8 only gives that memory back after some idle time, or
 * not at all when the broker gets busy at once (1.0 GiB vs 0.67 GiB RSS after recovering 1M
 * pending messages). Returns false if the runtime refused to expose the collector.
 */
export function collectGarbage(): boolean {
  try {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as unknown;
    if (typeof gc !== "function") return false;
    gc();
    return true;
  } catch {
    return false;
  }
}
