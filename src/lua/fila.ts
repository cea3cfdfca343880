import type { HostFunction, LuaRuntime } from "./runtime.ts";
import { decodeLossyUtf8, decodeStrictUtf8 } from "./utf8.ts";
import { LuaType } from "./wasm.ts";

/** Reads the runtime configuration (SetConfig values) at the moment of the call. */
export type ConfigLookup = (key: string) => string | undefined;

/** Receives what scripts print: lua.md §5 sends it to the debug log. */
export type PrintSink = (L: number, message: string) => void;

/** `fila.get(key)` (lua.md §4): a string key, a number converted by tostring, else an error. */
export function filaGet(rt: LuaRuntime, lookup: ConfigLookup): HostFunction {
  const { api, marshal } = rt;
  return (L) => {
    let key: string | undefined;
    const type = api.lua_type(L, 1);
    if (type === LuaType.String) {
      // No config key is invalid UTF-8 (they arrive as protobuf strings), so such a key is unset.
      key = decodeStrictUtf8(marshal.stringBytes(L, 1));
    } else if (type === LuaType.Number) {
      key = marshal.numberToString(L, 1);
    } else {
      api.luaL_typeerror(L, 1, marshal.cstr("string"));
    }
    let value: string | undefined;
    let failure: string | undefined;
    try {
      value = key === undefined ? undefined : lookup(key);
    } catch (e) {
      failure = `fila.get: ${e instanceof Error ? e.message : String(e)}`;
    }
    // Raised outside the try: lua_error unwinds by throwing through this frame.
    if (failure !== undefined) rt.raise(L, failure);
    if (value === undefined) api.lua_pushnil(L);
    else marshal.pushString(L, value);
    return 1;
  };
}

/** `print(...)`: its arguments through tostring, tab-separated, to the sink. */
export function print(rt: LuaRuntime, sink: PrintSink): HostFunction {
  const { api, marshal } = rt;
  return (L) => {
    const n = api.lua_gettop(L);
    const parts: string[] = [];
    for (let i = 1; i <= n; i++) {
      const p = api.luaL_tolstring(L, i, marshal.lenPtr);
      parts.push(decodeLossyUtf8(marshal.heap().subarray(p, p + marshal.readLen())));
      api.lua_settop(L, -2);
    }
    sink(L, parts.join("\t"));
    return 0;
  };
}
