import { LuaWasm } from "wasmoon";

/** An address in the wasm linear memory. */
export type Ptr = number;
/** A `lua_State*`. */
export type State = number;

/**
 * The raw exports of wasmoon's Lua 5.4 build that the engine uses. wasmoon wraps these in
 * `ccall` shims that cost several microseconds per hook call, so the engine calls them directly.
 * `lua_Integer` parameters and results are i64, hence bigint.
 */
export interface LuaApi {
  memory: WebAssembly.Memory;
  malloc(size: number): Ptr;
  free(p: Ptr): void;
  realloc(p: Ptr, size: number): Ptr;
  stackSave(): Ptr;
  stackRestore(p: Ptr): void;
  stackAlloc(size: number): Ptr;

  lua_newstate(alloc: Ptr, ud: Ptr): State;
  lua_close(L: State): void;
  lua_atpanic(L: State, f: Ptr): Ptr;
  lua_sethook(L: State, f: Ptr, mask: number, count: number): void;
  lua_gettop(L: State): number;
  lua_settop(L: State, idx: number): void;
  lua_pushvalue(L: State, idx: number): void;
  lua_rotate(L: State, idx: number, n: number): void;
  lua_copy(L: State, from: number, to: number): void;
  lua_checkstack(L: State, n: number): number;
  lua_type(L: State, idx: number): number;
  lua_isinteger(L: State, idx: number): number;
  lua_isstring(L: State, idx: number): number;
  lua_tonumberx(L: State, idx: number, isnum: Ptr): number;
  lua_tointegerx(L: State, idx: number, isnum: Ptr): bigint;
  lua_toboolean(L: State, idx: number): number;
  lua_tolstring(L: State, idx: number, len: Ptr): Ptr;
  lua_stringtonumber(L: State, s: Ptr): number;
  lua_pushnil(L: State): void;
  lua_pushinteger(L: State, n: bigint): void;
  lua_pushlstring(L: State, s: Ptr, len: number): Ptr;
  lua_pushstring(L: State, s: Ptr): Ptr;
  lua_pushcclosure(L: State, fn: Ptr, n: number): void;
  lua_pushboolean(L: State, b: number): void;
  lua_createtable(L: State, narr: number, nrec: number): void;
  lua_rawget(L: State, idx: number): number;
  lua_rawgeti(L: State, idx: number, n: bigint): number;
  lua_rawset(L: State, idx: number): void;
  lua_rawseti(L: State, idx: number, n: bigint): void;
  lua_gettable(L: State, idx: number): number;
  lua_geti(L: State, idx: number, n: bigint): number;
  lua_seti(L: State, idx: number, n: bigint): void;
  lua_getmetatable(L: State, idx: number): number;
  lua_setmetatable(L: State, idx: number): number;
  lua_compare(L: State, idx1: number, idx2: number, op: number): number;
  lua_getfield(L: State, idx: number, k: Ptr): number;
  lua_setfield(L: State, idx: number, k: Ptr): void;
  lua_getglobal(L: State, name: Ptr): number;
  lua_setglobal(L: State, name: Ptr): void;
  lua_pcallk(
    L: State,
    nargs: number,
    nresults: number,
    errfunc: number,
    ctx: number,
    k: Ptr,
  ): number;
  lua_callk(L: State, nargs: number, nresults: number, ctx: number, k: Ptr): void;
  lua_error(L: State): number;
  lua_concat(L: State, n: number): void;

  luaL_loadbufferx(L: State, buf: Ptr, size: number, name: Ptr, mode: Ptr): number;
  luaL_ref(L: State, t: number): number;
  luaL_tolstring(L: State, idx: number, len: Ptr): Ptr;
  luaL_checklstring(L: State, arg: number, len: Ptr): Ptr;
  luaL_optlstring(L: State, arg: number, def: Ptr, len: Ptr): Ptr;
  luaL_checkinteger(L: State, arg: number): bigint;
  luaL_optinteger(L: State, arg: number, def: bigint): bigint;
  luaL_checktype(L: State, arg: number, type: number): void;
  luaL_argerror(L: State, arg: number, extramsg: Ptr): number;
  luaL_getmetafield(L: State, obj: number, field: Ptr): number;
  luaL_checkstack(L: State, size: number, msg: Ptr): void;
  luaL_typeerror(L: State, arg: number, tname: Ptr): number;
  luaL_where(L: State, level: number): void;
  luaL_buffinit(L: State, B: Ptr): void;
  luaL_addlstring(B: Ptr, s: Ptr, len: number): void;
  luaL_addvalue(B: Ptr): void;
  luaL_pushresult(B: Ptr): void;

  luaopen_base(L: State): number;
  luaopen_table(L: State): number;
  luaopen_string(L: State): number;
  luaopen_math(L: State): number;
  luaopen_utf8(L: State): number;
}

/** Signatures understood by emscripten's addFunction: v = void, i = i32. */
export type WasmSignature = "ii" | "vii" | "iiiii";

/** One instance of the Lua wasm module: its exports and its function table. */
export interface LuaModule {
  api: LuaApi;
  /** Makes a JS function callable from C (a C function pointer); free with removeFunction. */
  addFunction(fn: (...args: number[]) => number | void, signature: WasmSignature): Ptr;
  removeFunction(p: Ptr): void;
}

export const LUA_REGISTRYINDEX = -1_000_000 - 1000;
export const LUA_RIDX_GLOBALS = 2n;
export const LUA_MASKCOUNT = 8;
export const LUA_OK = 0;
export const LUA_OPEQ = 0;

export const LuaType = {
  None: -1,
  Nil: 0,
  Boolean: 1,
  Number: 3,
  String: 4,
  Table: 5,
  Function: 6,
} as const;

export function upvalueIndex(i: number): number {
  return LUA_REGISTRYINDEX - i;
}

const REQUIRED_EXPORTS = ["memory", "malloc", "stackSave", "lua_pcallk", "lua_newstate"];

// Instantiation is serialised because it briefly wraps the global WebAssembly.instantiate.
let instantiating: Promise<unknown> = Promise.resolve();

/** Instantiates a fresh Lua wasm module (its own linear memory) and exposes its raw exports. */
export function loadLuaModule(): Promise<LuaModule> {
  const loaded = instantiating.then(instantiate);
  instantiating = loaded.catch(() => undefined);
  return loaded;
}

async function instantiate(): Promise<LuaModule> {
  // wasmoon keeps the instance's exports private; catching them on their way out of
  // WebAssembly.instantiate is the only way to reach the unwrapped functions.
  const original = WebAssembly.instantiate;
  let exports: WebAssembly.Exports | undefined;
  const capturing = async (...args: unknown[]): Promise<unknown> => {
    const result: unknown = await Reflect.apply(original, WebAssembly, args);
    exports = exportsOf(result) ?? exports;
    return result;
  };
  WebAssembly.instantiate = capturing as typeof WebAssembly.instantiate;
  let wasm: LuaWasm;
  try {
    wasm = await LuaWasm.initialize();
  } finally {
    WebAssembly.instantiate = original;
  }
  if (exports === undefined || REQUIRED_EXPORTS.some((name) => !(name in exports!))) {
    throw new Error("unsupported wasmoon build: raw Lua exports not found");
  }
  const emscripten = wasm.module;
  return {
    api: exports as unknown as LuaApi,
    addFunction: (fn, signature) => emscripten.addFunction(fn, signature),
    removeFunction: (p) => emscripten.removeFunction(p),
  };
}

function exportsOf(result: unknown): WebAssembly.Exports | undefined {
  if (result instanceof WebAssembly.Instance) return result.exports;
  if (typeof result === "object" && result !== null && "instance" in result) {
    const instance = (result as { instance: unknown }).instance;
    if (instance instanceof WebAssembly.Instance) return instance.exports;
  }
  return undefined;
}
