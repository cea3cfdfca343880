import { Marshal } from "./marshal.ts";
import type { HookName, LuaLimits } from "./types.ts";
import { LUA_MASKCOUNT, type LuaApi, type LuaModule, type Ptr, type State } from "./wasm.ts";

/** lua.md §6: the budget is checked at least every 1,000 instructions. */
export const HOOK_INTERVAL = 1000;
export const INSTRUCTION_LIMIT_MESSAGE = "instruction limit exceeded";
export const TIME_LIMIT_MESSAGE = "execution time limit exceeded";

/** Raised by the panic handler: Lua hit an error with no protected call to catch it. */
class LuaPanic extends Error {
  constructor(message: string) {
    super(`lua panic: ${message}`);
    this.name = "LuaPanic";
  }
}

/** A JS function exposed to Lua as a C function: takes its `lua_State*`, returns its result count. */
export type HostFunction = (L: State) => number;

/**
 * What every Lua state of one engine shares: the wasm module, the marshalling buffers, the
 * host functions and the limits of the call in progress. Calls never overlap (the engine is
 * synchronous), so one interruption context serves all states.
 */
export class LuaRuntime {
  readonly api: LuaApi;
  readonly marshal: Marshal;
  readonly instructionBudget: number;
  readonly wallClockMs: number;
  readonly memoryLimitBytes: number;
  /** Function pointers of the count hook and the panic handler. */
  readonly countHook: Ptr;
  readonly panicHandler: Ptr;
  readonly #module: LuaModule;
  readonly #hostFunctions = new Map<string, Ptr>();
  #steps = 0;
  #deadline = Number.NEGATIVE_INFINITY;
  #activeHook: HookName | undefined;

  constructor(module: LuaModule, limits: LuaLimits) {
    this.#module = module;
    this.api = module.api;
    this.marshal = new Marshal(module.api);
    this.instructionBudget = limits.timeoutMs * 10_000;
    this.wallClockMs = limits.timeoutMs * 100;
    this.memoryLimitBytes = limits.memoryLimitBytes;
    this.countHook = module.addFunction((L: State) => this.#onCount(L), "vii");
    this.panicHandler = module.addFunction((L: State) => {
      throw new LuaPanic(this.marshal.errorText(L, -1));
    }, "ii");
  }

  /** The C function pointer for a named host function, made on first use and shared by all states. */
  hostFunction(name: string, make: () => HostFunction): Ptr {
    let p = this.#hostFunctions.get(name);
    if (p === undefined) {
      p = this.#module.addFunction(make(), "ii");
      this.#hostFunctions.set(name, p);
    }
    return p;
  }

  /** Makes a `lua_Alloc` out of a JS function; release it with removeFunction. */
  addAllocator(fn: (ud: Ptr, ptr: Ptr, oldSize: number, newSize: number) => Ptr): Ptr {
    return this.#module.addFunction(fn, "iiiii");
  }

  removeFunction(p: Ptr): void {
    this.#module.removeFunction(p);
  }

  /** The hook whose call is in progress, if any. */
  get activeHook(): HookName | undefined {
    return this.#activeHook;
  }

  /** Starts the budget and the wall clock (from `now`) of one call; returns the deadline. */
  beginCall(L: State, hook: HookName, now: number): number {
    this.#steps = 0;
    this.#deadline = now + this.wallClockMs;
    this.#activeHook = hook;
    // Re-arming the hook restarts its instruction count, so each call gets the full budget.
    this.api.lua_sethook(L, this.countHook, LUA_MASKCOUNT, HOOK_INTERVAL);
    return this.#deadline;
  }

  endCall(): void {
    this.#deadline = Number.NEGATIVE_INFINITY;
    this.#activeHook = undefined;
  }

  /** For host functions that loop natively: aborts the call once its wall-clock time is up. */
  checkDeadline(L: State): void {
    if (performance.now() > this.#deadline) this.interrupt(L, TIME_LIMIT_MESSAGE);
  }

  /** Raises `message` as a Lua error with position information, like luaL_error. */
  raise(L: State, message: string): never {
    const api = this.api;
    api.luaL_where(L, 1);
    this.marshal.pushString(L, message);
    api.lua_concat(L, 2);
    api.lua_error(L);
    throw new Error("lua_error returned");
  }

  /**
   * Raises a limit error. The message strings are anchored in every state's registry, so
   * pushing them cannot allocate even when the call has used up its memory.
   */
  interrupt(L: State, message: string): never {
    const api = this.api;
    api.lua_pushstring(L, this.marshal.cstr(message));
    api.lua_error(L);
    throw new Error("lua_error returned");
  }

  #onCount(L: State): void {
    this.#steps += HOOK_INTERVAL;
    if (this.#steps > this.instructionBudget) this.interrupt(L, INSTRUCTION_LIMIT_MESSAGE);
    if (performance.now() > this.#deadline) this.interrupt(L, TIME_LIMIT_MESSAGE);
  }
}
