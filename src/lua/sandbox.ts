import { type ConfigLookup, filaGet, print, type PrintSink } from "./fila.ts";
import type { LuaRuntime } from "./runtime.ts";
import { installGuards } from "./guards.ts";
import { installPatternFunctions } from "./strlib.ts";
import type { State } from "./wasm.ts";

/** What the sandbox's host functions talk to. */
export interface SandboxHost {
  configLookup: ConfigLookup;
  print: PrintSink;
}

/** Base functions that lua.md §5 does not list (io, os, package, debug, coroutine are never opened). */
const REMOVED_GLOBALS = ["dofile", "loadfile", "load", "warn"];

/** Fills a new state's globals with exactly what lua.md §5 allows. */
export function openSandbox(rt: LuaRuntime, L: State, host: SandboxHost): void {
  const { api, marshal } = rt;
  api.luaopen_base(L);
  api.lua_settop(L, 0);
  const libraries: [string, (L: State) => number][] = [
    ["table", api.luaopen_table],
    ["string", api.luaopen_string],
    ["math", api.luaopen_math],
    ["utf8", api.luaopen_utf8],
  ];
  for (const [name, open] of libraries) {
    open(L);
    api.lua_setglobal(L, marshal.cstr(name));
  }
  for (const name of REMOVED_GLOBALS) {
    api.lua_pushnil(L);
    api.lua_setglobal(L, marshal.cstr(name));
  }

  api.lua_pushcclosure(L, rt.hostFunction("print", () => print(rt, host.print)), 0);
  api.lua_setglobal(L, marshal.cstr("print"));
  api.lua_createtable(L, 0, 1);
  api.lua_pushcclosure(L, rt.hostFunction("fila.get", () => filaGet(rt, host.configLookup)), 0);
  api.lua_setfield(L, -2, marshal.cstr("get"));
  api.lua_setglobal(L, marshal.cstr("fila"));
  installGuards(rt, L);
  installPatternFunctions(rt, L);
}
