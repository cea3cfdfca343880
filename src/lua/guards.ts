import type { LuaRuntime } from "./runtime.ts";
import { LUA_OPEQ, LuaType, type State, upvalueIndex } from "./wasm.ts";

const MAX_INTEGER = (1n << 63n) - 1n;
/** lstrlib's MAXSIZE on wasm32: INT_MAX. */
const MAX_SIZE = 2_147_483_647n;
/** Elements moved between two looks at the clock. */
const MOVE_CHECK_EVERY = 1024n;
const TAB_R = 1;
const TAB_W = 2;

/**
 * Host versions of the library functions that could otherwise escape the limits: they repeat
 * the originals' argument checks (same errors, positions and names), then either delegate to
 * the original or do the work in interruptible steps.
 */
export function installGuards(rt: LuaRuntime, L: State): void {
  const { api, marshal } = rt;

  // Finalizers run with debug hooks disabled, so a __gc that loops would escape the budget.
  api.lua_pushcclosure(L, rt.hostFunction("setmetatable", () => (L) => setMetatable(rt, L)), 0);
  api.lua_setglobal(L, marshal.cstr("setmetatable"));

  api.lua_getglobal(L, marshal.cstr("string"));
  api.lua_getfield(L, -1, marshal.cstr("rep"));
  api.lua_pushcclosure(L, rt.hostFunction("string.rep", () => (L) => rep(rt, L)), 1);
  api.lua_setfield(L, -2, marshal.cstr("rep"));
  api.lua_settop(L, -2);

  api.lua_getglobal(L, marshal.cstr("table"));
  api.lua_pushcclosure(L, rt.hostFunction("table.move", () => (L) => move(rt, L)), 0);
  api.lua_setfield(L, -2, marshal.cstr("move"));
  api.lua_settop(L, -2);
}

/** luaB_setmetatable, refusing metatables with a __gc field. */
function setMetatable(rt: LuaRuntime, L: State): number {
  const { api, marshal } = rt;
  const type = api.lua_type(L, 2);
  api.luaL_checktype(L, 1, LuaType.Table);
  if (type !== LuaType.Nil && type !== LuaType.Table) {
    api.luaL_typeerror(L, 2, marshal.cstr("nil or table"));
  }
  if (api.luaL_getmetafield(L, 1, marshal.cstr("__metatable")) !== LuaType.Nil) {
    rt.raise(L, "cannot change a protected metatable");
  }
  if (type === LuaType.Table) {
    api.lua_pushstring(L, marshal.cstr("__gc"));
    if (api.lua_rawget(L, 2) !== LuaType.Nil) rt.raise(L, "__gc metamethods are not supported");
  }
  api.lua_settop(L, 2);
  api.lua_setmetatable(L, 1);
  return 1;
}

/**
 * string.rep. The original loops n times even when there is nothing to copy, so rep("", 1e15)
 * would spin in C for hours; that case is answered here, the rest is delegated.
 */
function rep(rt: LuaRuntime, L: State): number {
  const { api, marshal } = rt;
  api.luaL_checklstring(L, 1, marshal.lenPtr);
  const l = marshal.readLen();
  const n = api.luaL_checkinteger(L, 2);
  api.luaL_optlstring(L, 3, marshal.cstr(""), marshal.lenPtr);
  const lsep = marshal.readLen();
  if (n <= 0n || l + lsep === 0) {
    api.lua_pushlstring(L, marshal.cstr(""), 0);
    return 1;
  }
  // Checked here, where the error gets the caller's position; the original cannot fail on it.
  if (BigInt(l + lsep) > MAX_SIZE / n) rt.raise(L, "resulting string too large");
  api.lua_settop(L, 3);
  api.lua_pushvalue(L, upvalueIndex(1));
  api.lua_rotate(L, 1, 1);
  api.lua_callk(L, 3, 1, 0, 0);
  return 1;
}

/**
 * table.move (ltablib's tmove), element by element like the original but with a look at the
 * clock every so often: a huge range, even of nils, would otherwise loop in C unchecked.
 */
function move(rt: LuaRuntime, L: State): number {
  const { api, marshal } = rt;
  const f = api.luaL_checkinteger(L, 2);
  const e = api.luaL_checkinteger(L, 3);
  const t = api.luaL_checkinteger(L, 4);
  const tt = api.lua_type(L, 5) > LuaType.Nil ? 5 : 1;
  checkTable(rt, L, 1, TAB_R);
  checkTable(rt, L, tt, TAB_W);
  if (e >= f) {
    if (!(f > 0n || e < MAX_INTEGER + f)) {
      api.luaL_argerror(L, 3, marshal.cstr("too many elements to move"));
    }
    const n = e - f + 1n;
    if (!(t <= MAX_INTEGER - n + 1n)) {
      api.luaL_argerror(L, 4, marshal.cstr("destination wrap around"));
    }
    const forward = t > e || t <= f || (tt !== 1 && api.lua_compare(L, 1, tt, LUA_OPEQ) === 0);
    for (let k = 0n; k < n; k++) {
      const i = forward ? k : n - 1n - k;
      api.lua_geti(L, 1, f + i);
      api.lua_seti(L, tt, t + i);
      if (k % MOVE_CHECK_EVERY === MOVE_CHECK_EVERY - 1n) rt.checkDeadline(L);
    }
  }
  api.lua_pushvalue(L, tt);
  return 1;
}

/** ltablib's checktab: a table, or a value whose metatable has the needed metamethods. */
function checkTable(rt: LuaRuntime, L: State, arg: number, what: number): void {
  const { api, marshal } = rt;
  if (api.lua_type(L, arg) === LuaType.Table) return;
  let n = 1;
  const hasField = (key: string) => {
    api.lua_pushstring(L, marshal.cstr(key));
    return api.lua_rawget(L, -++n) !== LuaType.Nil;
  };
  if (
    api.lua_getmetatable(L, arg) !== 0 &&
    (!(what & TAB_R) || hasField("__index")) &&
    (!(what & TAB_W) || hasField("__newindex"))
  ) {
    api.lua_settop(L, -n - 1);
  } else {
    api.luaL_checktype(L, arg, LuaType.Table);
  }
}
