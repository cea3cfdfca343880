import { typeName } from "./marshal.ts";
import { CAP_POSITION, CAP_UNFINISHED, Matcher, noSpecials } from "./pattern.ts";
import type { HostFunction, LuaRuntime } from "./runtime.ts";
import { LuaType, type Ptr, type State, upvalueIndex } from "./wasm.ts";

/** Room for a luaL_Buffer: four words and a 512-byte inline buffer on wasm32, rounded up. */
const LUAL_BUFFER_BYTES = 1024;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Replaces string.find, match, gmatch and gsub with bindings of the interruptible matcher
 * (pattern.ts), so that the wall-clock limit of lua.md §6 also covers pattern matching. The
 * bindings follow lstrlib.c step by step, including argument checks and error texts.
 */
export function installPatternFunctions(rt: LuaRuntime, L: State): void {
  const { api, marshal } = rt;
  const lib = patternLibrary(rt);
  const functions: [string, HostFunction][] = [
    ["find", (L) => lib.findAux(L, true)],
    ["match", (L) => lib.findAux(L, false)],
    ["gmatch", (L) => lib.gmatch(L)],
    ["gsub", (L) => lib.gsub(L)],
  ];
  api.lua_getglobal(L, marshal.cstr("string"));
  for (const [name, fn] of functions) {
    api.lua_pushcclosure(L, rt.hostFunction(`string.${name}`, () => fn), 0);
    api.lua_setfield(L, -2, marshal.cstr(name));
  }
  api.lua_settop(L, -2);
}

const libraries = new WeakMap<LuaRuntime, PatternLibrary>();

function patternLibrary(rt: LuaRuntime): PatternLibrary {
  let lib = libraries.get(rt);
  if (lib === undefined) {
    lib = new PatternLibrary(rt);
    libraries.set(rt, lib);
  }
  return lib;
}

class PatternLibrary {
  readonly #rt: LuaRuntime;
  readonly #iterator: Ptr;

  constructor(rt: LuaRuntime) {
    this.#rt = rt;
    this.#iterator = rt.hostFunction("string.gmatch iterator", () => (L) => this.#iterate(L));
  }

  /** str_find_aux: string.find when `find`, else string.match. */
  findAux(L: State, find: boolean): number {
    const { api, marshal } = this.#rt;
    const s = api.luaL_checklstring(L, 1, marshal.lenPtr);
    const ls = marshal.readLen();
    let p = api.luaL_checklstring(L, 2, marshal.lenPtr);
    let lp = marshal.readLen();
    const init = startOffset(api.luaL_optinteger(L, 3, 1n), ls);
    if (init > ls) {
      api.lua_pushnil(L);
      return 1;
    }
    const m = this.#matcher(L);
    if (find && (api.lua_toboolean(L, 4) !== 0 || noSpecials(m.h, p, lp))) {
      const at = m.find(s + init, ls - init, p, lp);
      if (at !== -1) {
        api.lua_pushinteger(L, BigInt(at - s + 1));
        api.lua_pushinteger(L, BigInt(at - s + lp));
        return 2;
      }
    } else {
      const anchor = m.h[p] === 0x5e; // ^
      if (anchor) {
        p++;
        lp--;
      }
      m.prepare(s, ls, p + lp);
      let s1 = s + init;
      do {
        m.reset();
        const end = m.match(s1, p);
        if (end !== -1) {
          if (!find) return this.#pushCaptures(L, m, s1, end);
          api.lua_pushinteger(L, BigInt(s1 - s + 1));
          api.lua_pushinteger(L, BigInt(end - s));
          return this.#pushCaptures(L, m, -1, -1) + 2;
        }
      } while (s1++ < m.srcEnd && !anchor);
    }
    api.lua_pushnil(L);
    return 1;
  }

  /** string.gmatch: the iterator keeps the subject, pattern, position and last match as upvalues. */
  gmatch(L: State): number {
    const { api, marshal } = this.#rt;
    api.luaL_checklstring(L, 1, marshal.lenPtr);
    const ls = marshal.readLen();
    api.luaL_checklstring(L, 2, marshal.lenPtr);
    const init = startOffset(api.luaL_optinteger(L, 3, 1n), ls);
    api.lua_settop(L, 2);
    api.lua_pushinteger(L, BigInt(Math.min(init, ls + 1)));
    api.lua_pushinteger(L, -1n);
    api.lua_pushcclosure(L, this.#iterator, 4);
    return 1;
  }

  /** gmatch_aux: the next match from the saved position, skipping a repeat of the last one. */
  #iterate(L: State): number {
    const { api, marshal } = this.#rt;
    const s = api.lua_tolstring(L, upvalueIndex(1), marshal.lenPtr);
    const ls = marshal.readLen();
    const p = api.lua_tolstring(L, upvalueIndex(2), marshal.lenPtr);
    const lp = marshal.readLen();
    const from = Number(api.lua_tointegerx(L, upvalueIndex(3), 0));
    const lastMatch = Number(api.lua_tointegerx(L, upvalueIndex(4), 0));
    const m = this.#matcher(L);
    m.prepare(s, ls, p + lp);
    for (let src = s + from; src <= m.srcEnd; src++) {
      m.reset();
      const end = m.match(src, p);
      if (end !== -1 && end - s !== lastMatch) {
        api.lua_pushinteger(L, BigInt(end - s));
        api.lua_copy(L, -1, upvalueIndex(3));
        api.lua_copy(L, -1, upvalueIndex(4));
        api.lua_settop(L, -2);
        return this.#pushCaptures(L, m, src, end);
      }
    }
    return 0;
  }

  /** str_gsub. Unchanged text is copied in runs rather than byte by byte. */
  gsub(L: State): number {
    const rt = this.#rt;
    const { api, marshal } = rt;
    const src0 = api.luaL_checklstring(L, 1, marshal.lenPtr);
    const srcl = marshal.readLen();
    let p = api.luaL_checklstring(L, 2, marshal.lenPtr);
    let lp = marshal.readLen();
    const tr = api.lua_type(L, 3);
    const maxArg = api.luaL_optinteger(L, 4, BigInt(srcl + 1));
    const maxS = maxArg > MAX_SAFE ? Number.POSITIVE_INFINITY : Number(maxArg);
    if (
      tr !== LuaType.Number && tr !== LuaType.String && tr !== LuaType.Function &&
      tr !== LuaType.Table
    ) {
      api.luaL_typeerror(L, 3, marshal.cstr("string/function/table"));
    }
    const sp = api.stackSave();
    const B = api.stackAlloc(LUAL_BUFFER_BYTES);
    api.luaL_buffinit(L, B);
    const m = this.#matcher(L);
    const anchor = m.h[p] === 0x5e;
    if (anchor) {
      p++;
      lp--;
    }
    m.prepare(src0, srcl, p + lp);
    let src = src0;
    let lastMatch = -1;
    let copied = src0; // start of the unchanged text not yet added to the buffer
    let n = 0;
    let changed = false;
    while (n < maxS) {
      m.reset();
      const end = m.match(src, p);
      if (end !== -1 && end !== lastMatch) {
        n++;
        this.#addRaw(m, B, copied, src);
        changed = this.#addValue(L, m, B, src, end, tr) || changed;
        m.h = marshal.heap();
        src = lastMatch = copied = end;
      } else if (src < m.srcEnd) {
        src++;
      } else {
        break;
      }
      if (anchor) break;
    }
    if (!changed) {
      api.lua_pushvalue(L, 1);
    } else {
      this.#addRaw(m, B, copied, m.srcEnd);
      api.luaL_pushresult(B);
    }
    api.lua_pushinteger(L, BigInt(n));
    api.stackRestore(sp);
    return 2;
  }

  /** add_value: the replacement for one match; false when the original text is kept. */
  #addValue(L: State, m: Matcher, B: Ptr, s: number, e: number, tr: number): boolean {
    const api = this.#rt.api;
    if (tr === LuaType.Function) {
      api.lua_pushvalue(L, 3);
      const n = this.#pushCaptures(L, m, s, e);
      api.lua_callk(L, n, 1, 0, 0);
    } else if (tr === LuaType.Table) {
      this.#pushOneCapture(L, m, 0, s, e);
      api.lua_gettable(L, 3);
    } else {
      this.#addReplacementString(L, m, B, s, e);
      return true;
    }
    if (api.lua_toboolean(L, -1) === 0) {
      api.lua_settop(L, -2);
      api.luaL_addlstring(B, s, e - s);
      return false;
    }
    if (api.lua_isstring(L, -1) === 0) {
      this.#rt.raise(L, `invalid replacement value (a ${typeName(api.lua_type(L, -1))})`);
    }
    api.luaL_addvalue(B);
    return true;
  }

  /** add_s: the replacement string with its %0–%9 and %% escapes. */
  #addReplacementString(L: State, m: Matcher, B: Ptr, s: number, e: number): void {
    const { api, marshal } = this.#rt;
    const repl = api.lua_tolstring(L, 3, marshal.lenPtr);
    const end = repl + marshal.readLen();
    let from = repl;
    for (;;) {
      const esc = marshal.heap().subarray(from, end).indexOf(0x25);
      if (esc === -1) break;
      const at = from + esc;
      api.luaL_addlstring(B, from, at - from);
      const c = marshal.heap()[at + 1];
      if (c === 0x25) {
        api.luaL_addlstring(B, at + 1, 1);
      } else if (c === 0x30) {
        api.luaL_addlstring(B, s, e - s);
      } else if (c >= 0x31 && c <= 0x39) {
        if (this.#getCapture(L, m, c - 0x31, s, e)) api.luaL_addvalue(B);
        else api.luaL_addlstring(B, this.#captureStart, this.#captureLen);
      } else {
        this.#rt.raise(L, "invalid use of '%' in replacement string");
      }
      from = at + 2;
    }
    api.luaL_addlstring(B, from, end - from);
  }

  #addRaw(m: Matcher, B: Ptr, from: number, to: number): void {
    if (to > from) {
      this.#rt.api.luaL_addlstring(B, from, to - from);
      m.h = this.#rt.marshal.heap();
    }
  }

  #pushCaptures(L: State, m: Matcher, s: number, e: number): number {
    const { api, marshal } = this.#rt;
    const levels = m.level === 0 && s !== -1 ? 1 : m.level;
    api.luaL_checkstack(L, levels, marshal.cstr("too many captures"));
    for (let i = 0; i < levels; i++) this.#pushOneCapture(L, m, i, s, e);
    return levels;
  }

  #pushOneCapture(L: State, m: Matcher, i: number, s: number, e: number): void {
    if (!this.#getCapture(L, m, i, s, e)) {
      this.#rt.api.lua_pushlstring(L, this.#captureStart, this.#captureLen);
    }
  }

  // get_onecapture's out parameters: where the last string capture starts and its length.
  #captureStart = 0;
  #captureLen = 0;

  /**
   * get_onecapture: a position capture is pushed (true); a string capture is left in
   * #captureStart/#captureLen (false) for the caller to push or to add to a buffer.
   */
  #getCapture(L: State, m: Matcher, i: number, s: number, e: number): boolean {
    if (i >= m.level) {
      if (i !== 0) this.#rt.raise(L, `invalid capture index %${i + 1}`);
      this.#captureStart = s;
      this.#captureLen = e - s;
      return false;
    }
    const len = m.capLen[i];
    if (len === CAP_UNFINISHED) this.#rt.raise(L, "unfinished capture");
    if (len === CAP_POSITION) {
      this.#rt.api.lua_pushinteger(L, BigInt(m.capInit[i] - m.srcInit + 1));
      return true;
    }
    this.#captureStart = m.capInit[i];
    this.#captureLen = len;
    return false;
  }

  #matcher(L: State): Matcher {
    const rt = this.#rt;
    return new Matcher({
      raise: (message) => rt.raise(L, message),
      checkTime: () => rt.checkDeadline(L),
    }, rt.marshal.heap());
  }
}

/** posrelatI(pos, len) - 1: the 0-based start of a search; above `len` means "past the end". */
function startOffset(pos: bigint, len: number): number {
  if (pos > 0n) return pos > BigInt(len) + 1n ? len + 1 : Number(pos) - 1;
  if (pos === 0n || pos < -BigInt(len)) return 0;
  return len + Number(pos);
}
