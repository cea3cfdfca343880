import { decodeLossyUtf8, decodeStrictUtf8 } from "./utf8.ts";
import { type LuaApi, LuaType, type Ptr, type State } from "./wasm.ts";

const SCRATCH_MIN = 4096;
/** Strings longer than this (in UTF-16 units) are encoded before sizing the scratch buffer. */
const LARGE_STRING = 16 * 1024;
/** Longest error text kept from a failed call; the rest is log noise. */
const MAX_ERROR_BYTES = 1024;

/**
 * Moves values across the JS/wasm boundary through the raw C API: JS strings are encoded
 * straight into linear memory, Lua strings are read as bytes where they live.
 */
export class Marshal {
  readonly #api: LuaApi;
  #heap: Uint8Array;
  readonly #lenPtr: Ptr;
  #scratch: Ptr = 0;
  #scratchSize = 0;
  readonly #cstrings = new Map<string, Ptr>();
  readonly #encoder = new TextEncoder();

  constructor(api: LuaApi) {
    this.#api = api;
    this.#heap = new Uint8Array(api.memory.buffer);
    this.#lenPtr = api.malloc(8);
  }

  /** The linear memory; any call that may allocate can replace it, so never keep it across one. */
  heap(): Uint8Array {
    if (this.#heap.buffer !== this.#api.memory.buffer) {
      this.#heap = new Uint8Array(this.#api.memory.buffer);
    }
    return this.#heap;
  }

  /** A NUL-terminated copy of an ASCII constant, allocated once and kept for the module's life. */
  cstr(text: string): Ptr {
    let p = this.#cstrings.get(text);
    if (p === undefined) {
      p = this.#api.malloc(text.length + 1);
      const heap = this.heap();
      for (let i = 0; i < text.length; i++) heap[p + i] = text.charCodeAt(i);
      heap[p + text.length] = 0;
      this.#cstrings.set(text, p);
    }
    return p;
  }

  /** Where C functions write a `size_t` length (`lua_tolstring`'s out parameter). */
  get lenPtr(): Ptr {
    return this.#lenPtr;
  }

  readLen(): number {
    const h = this.heap();
    const p = this.#lenPtr;
    return (h[p] | (h[p + 1] << 8) | (h[p + 2] << 16) | (h[p + 3] << 24)) >>> 0;
  }

  pushString(L: State, s: string): void {
    const n = s.length;
    if (n > LARGE_STRING) {
      // Worst-case room (3 bytes per UTF-16 unit) would triple the scratch buffer for nothing.
      const bytes = this.#encoder.encode(s);
      const p = this.#ensureScratch(bytes.length);
      this.heap().set(bytes, p);
      this.#api.lua_pushlstring(L, p, bytes.length);
      return;
    }
    const p = this.#ensureScratch(n * 3);
    const heap = this.heap();
    let len = 0;
    if (n <= 64) {
      // Hand-copying short ASCII beats encodeInto's fixed cost; headers are mostly like that.
      for (; len < n; len++) {
        const c = s.charCodeAt(len);
        if (c >= 0x80) break;
        heap[p + len] = c;
      }
    }
    if (len < n) {
      len += this.#encoder.encodeInto(s.substring(len), heap.subarray(p + len, p + n * 3)).written;
    }
    this.#api.lua_pushlstring(L, p, len);
  }

  /** Bytes of the string at `idx` (which must be a string), valid until the next allocation. */
  stringBytes(L: State, idx: number): Uint8Array {
    const p = this.#api.lua_tolstring(L, idx, this.#lenPtr);
    const len = this.readLen();
    return this.heap().subarray(p, p + len);
  }

  /** Lua's `tostring` of the number at `idx`, without changing that slot. */
  numberToString(L: State, idx: number): string {
    const api = this.#api;
    api.lua_pushvalue(L, idx);
    const text = decodeLossyUtf8(this.stringBytes(L, -1));
    api.lua_settop(L, -2);
    return text;
  }

  /**
   * A key: the string at `idx` if it is valid UTF-8 of at most `maxBytes` bytes, or the number
   * there converted by `tostring`; else undefined.
   */
  toKey(L: State, idx: number, maxBytes: number): string | undefined {
    const type = this.#api.lua_type(L, idx);
    if (type === LuaType.String) {
      const bytes = this.stringBytes(L, idx);
      return bytes.length <= maxBytes ? decodeStrictUtf8(bytes) : undefined;
    }
    if (type === LuaType.Number) return this.numberToString(L, idx);
    return undefined;
  }

  /** Lua's `tonumber` of the value at `idx` (a number, or a string it converts); else undefined. */
  toNumber(L: State, idx: number): number | undefined {
    const api = this.#api;
    const type = api.lua_type(L, idx);
    if (type === LuaType.Number) return api.lua_tonumberx(L, idx, 0);
    if (type !== LuaType.String) return undefined;
    const p = api.lua_tolstring(L, idx, this.#lenPtr);
    const len = this.readLen();
    const consumed = api.lua_stringtonumber(L, p);
    if (consumed === 0) return undefined;
    const value = api.lua_tonumberx(L, -1, 0);
    api.lua_settop(L, -2);
    // Like tonumber: a string with an embedded NUL converts only up to it, which is a failure.
    return consumed === len + 1 ? value : undefined;
  }

  /** The text of an error object, as a log line would show it. */
  errorText(L: State, idx: number): string {
    const api = this.#api;
    const type = api.lua_type(L, idx);
    if (type !== LuaType.String && type !== LuaType.Number) {
      return `(error object is a ${typeName(type)} value)`;
    }
    // A number is converted in place, as lua.c's message handler does.
    const bytes = this.stringBytes(L, idx);
    if (bytes.length <= MAX_ERROR_BYTES) return decodeLossyUtf8(bytes);
    return `${decodeLossyUtf8(bytes.subarray(0, MAX_ERROR_BYTES))}…`;
  }

  #ensureScratch(size: number): Ptr {
    if (size > this.#scratchSize) {
      const api = this.#api;
      if (this.#scratch !== 0) api.free(this.#scratch);
      this.#scratchSize = Math.max(size, SCRATCH_MIN, this.#scratchSize * 2);
      this.#scratch = api.malloc(this.#scratchSize);
      if (this.#scratch === 0) {
        this.#scratchSize = 0;
        throw new Error("out of wasm memory");
      }
    }
    return this.#scratch;
  }
}

const TYPE_NAMES = [
  "nil",
  "boolean",
  "userdata",
  "number",
  "string",
  "table",
  "function",
  "userdata",
  "thread",
];

/** Lua's name for a `lua_type` code. */
export function typeName(type: number): string {
  return TYPE_NAMES[type] ?? "no value";
}
