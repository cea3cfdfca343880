import { typeName } from "./marshal.ts";
import { INSTRUCTION_LIMIT_MESSAGE, type LuaRuntime, TIME_LIMIT_MESSAGE } from "./runtime.ts";
import { openSandbox, type SandboxHost } from "./sandbox.ts";
import type { HookName } from "./types.ts";
import {
  LUA_OK,
  LUA_REGISTRYINDEX,
  LUA_RIDX_GLOBALS,
  LuaType,
  type Ptr,
  type State,
} from "./wasm.ts";

/** The result of one hook call: the value read from the returned table, or the failure text. */
export type CallOutcome<T> = { ok: true; value: T } | { ok: false; error: string };

/** A call's outcome and how long it took, message building and result reading included. */
export interface CallResult<T> {
  outcome: CallOutcome<T>;
  durationMs: number;
}

/** A compiled chunk, kept in the registry so it is never parsed again. */
export type ChunkRef = bigint;

/**
 * Outside calls a state may hold this much before allocations fail. Headers and script text are
 * bounded by the message and request size limits, so this is a backstop, not a policy.
 */
const MIN_RELAXED_MAX = 64 * 1024 * 1024;
/** lua.md §6: after a call the state may hold at most 4 × the per-call memory limit. */
const STATE_SIZE_FACTOR = 4;

/** One Lua state: its memory accounting, sandbox, compiled chunks and protected hook calls. */
export class LuaState {
  readonly L: State;
  /** Set when the state must not be used again: it grew too large or was left inconsistent. */
  discardReason: string | undefined;
  readonly #rt: LuaRuntime;
  readonly #allocator: Ptr;
  readonly #relaxedMax: number;
  #used = 0;
  #max: number;
  #closed = false;

  constructor(rt: LuaRuntime, host: SandboxHost) {
    this.#rt = rt;
    const api = rt.api;
    this.#relaxedMax = Math.max(MIN_RELAXED_MAX, 8 * rt.memoryLimitBytes);
    this.#max = this.#relaxedMax;
    this.#allocator = rt.addAllocator((_ud, ptr, oldSize, newSize) =>
      this.#allocate(ptr, oldSize, newSize)
    );
    this.L = api.lua_newstate(this.#allocator, 0);
    if (this.L === 0) {
      rt.removeFunction(this.#allocator);
      throw new Error("cannot create a Lua state: out of memory");
    }
    api.lua_atpanic(this.L, rt.panicHandler);
    const sp = api.stackSave();
    try {
      openSandbox(rt, this.L, host);
      for (const message of [INSTRUCTION_LIMIT_MESSAGE, TIME_LIMIT_MESSAGE]) {
        api.lua_pushstring(this.L, rt.marshal.cstr(message));
        api.luaL_ref(this.L, LUA_REGISTRYINDEX);
      }
    } catch (e) {
      api.stackRestore(sp);
      this.close();
      throw e;
    }
  }

  /** Compiles a text chunk named after the hook; binary chunks are refused (mode "t"). */
  compile(hook: HookName, source: string): { ref: ChunkRef } | { error: string } {
    const { api, marshal } = this.#rt;
    const L = this.L;
    const bytes = new TextEncoder().encode(source);
    const buffer = api.malloc(Math.max(bytes.length, 1));
    if (buffer === 0) return { error: "not enough memory" };
    marshal.heap().set(bytes, buffer);
    const sp = api.stackSave();
    try {
      const status = api.luaL_loadbufferx(
        L,
        buffer,
        bytes.length,
        marshal.cstr(hook),
        marshal.cstr("t"),
      );
      if (status !== LUA_OK) {
        const error = marshal.errorText(L, -1);
        api.lua_settop(L, 0);
        return { error };
      }
      return { ref: BigInt(api.luaL_ref(L, LUA_REGISTRYINDEX)) };
    } catch (e) {
      api.stackRestore(sp);
      this.discardReason = describe(e);
      return { error: this.discardReason };
    } finally {
      api.free(buffer);
    }
  }

  /**
   * One hook call as lua.md §1 describes it: run the chunk, take (and clear) the global hook
   * function, call it with the message `pushMsg` builds, and hand the returned table to `read`.
   * Everything that can run script code or hit a limit runs inside lua_pcall; what runs outside
   * (building the message, reading the result) uses raw access, so no metamethod can intervene.
   */
  invoke<T>(
    hook: HookName,
    chunk: ChunkRef,
    pushMsg: (L: State) => void,
    read: (L: State, idx: number) => T,
  ): CallResult<T> {
    const rt = this.#rt;
    const api = rt.api;
    const sp = api.stackSave();
    const started = performance.now();
    const deadline = rt.beginCall(this.L, hook, started);
    let outcome: CallOutcome<T>;
    try {
      outcome = this.#call(hook, chunk, pushMsg, read);
    } catch (e) {
      // Not a Lua error (those stay inside lua_pcall) but e.g. a panic or a JS stack overflow
      // that unwound C frames: the state may be inconsistent and is replaced.
      api.stackRestore(sp);
      this.discardReason = describe(e);
      outcome = { ok: false, error: this.discardReason };
    }
    this.#max = this.#relaxedMax;
    rt.endCall();
    if (this.discardReason === undefined) {
      api.lua_settop(this.L, 0);
      if (this.#used > STATE_SIZE_FACTOR * rt.memoryLimitBytes) {
        this.discardReason =
          `state uses ${this.#used} bytes, more than ${STATE_SIZE_FACTOR} × the memory limit`;
      }
    }
    // Native library code cannot be interrupted; a call that overran is failed afterwards.
    const finished = performance.now();
    if (outcome.ok && finished > deadline) outcome = { ok: false, error: TIME_LIMIT_MESSAGE };
    return { outcome, durationMs: finished - started };
  }

  #call<T>(
    hook: HookName,
    chunk: ChunkRef,
    pushMsg: (L: State) => void,
    read: (L: State, idx: number) => T,
  ): CallOutcome<T> {
    const rt = this.#rt;
    const { api, marshal } = rt;
    const L = this.L;
    pushMsg(L); // 1: msg
    // The message is the broker's copy of the input; the call's allowance starts after it.
    const callMax = this.#used + rt.memoryLimitBytes;
    api.lua_rawgeti(L, LUA_REGISTRYINDEX, chunk);
    this.#max = callMax;
    let status = api.lua_pcallk(L, 0, 0, 0, 0, 0);
    this.#max = this.#relaxedMax;
    if (status !== LUA_OK) return this.#failure(-1);

    const name = marshal.cstr(hook);
    api.lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS); // 2: _G
    api.lua_pushstring(L, name);
    const type = api.lua_rawget(L, 2); // 3: the hook function
    if (type !== LuaType.Nil) {
      api.lua_pushstring(L, name);
      api.lua_pushnil(L);
      api.lua_rawset(L, 2);
    }
    if (type !== LuaType.Function) {
      const error = type === LuaType.Nil
        ? `${hook} is not defined`
        : `${hook} is not a function (a ${typeName(type)} value)`;
      return { ok: false, error };
    }
    api.lua_pushvalue(L, 1);
    this.#max = callMax;
    status = api.lua_pcallk(L, 1, 1, 0, 0, 0);
    this.#max = this.#relaxedMax;
    if (status !== LUA_OK) return this.#failure(-1);
    const resultType = api.lua_type(L, 3);
    if (resultType !== LuaType.Table) {
      return { ok: false, error: `${hook} must return a table (got ${typeName(resultType)})` };
    }
    return { ok: true, value: read(L, 3) };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const api = this.#rt.api;
    const sp = api.stackSave();
    try {
      api.lua_close(this.L);
    } catch {
      // A state wrecked by a panic may fail to close; its memory is lost, the process lives on.
      api.stackRestore(sp);
    }
    this.#rt.removeFunction(this.#allocator);
  }

  #failure(idx: number): { ok: false; error: string } {
    return { ok: false, error: this.#rt.marshal.errorText(this.L, idx) };
  }

  /** lua_Alloc: enforces the current allowance; shrinking and freeing always succeed. */
  #allocate(ptr: Ptr, oldSize: number, newSize: number): Ptr {
    const api = this.#rt.api;
    if (newSize === 0) {
      if (ptr !== 0) {
        this.#used -= oldSize;
        api.free(ptr);
      }
      return 0;
    }
    // For a new block Lua passes the object's type in oldSize, not a size.
    const old = ptr === 0 ? 0 : oldSize;
    if (newSize > old && this.#used + newSize - old > this.#max) return 0;
    const moved = api.realloc(ptr, newSize);
    if (moved !== 0) this.#used += newSize - old;
    return moved;
  }
}

function describe(e: unknown): string {
  return `internal error: ${e instanceof Error ? e.message : String(e)}`;
}
