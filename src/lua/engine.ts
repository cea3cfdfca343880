import { type Clock, systemClock } from "../core/clock.ts";
import { CircuitBreaker } from "./breaker.ts";
import type { ConfigLookup } from "./fila.ts";
import { defaultEnqueueDecision, defaultFailureDecision, HookCodec } from "./hooks.ts";
import { LuaRuntime } from "./runtime.ts";
import type { SandboxHost } from "./sandbox.ts";
import { type CallOutcome, type CallResult, type ChunkRef, LuaState } from "./state.ts";
import {
  type EnqueueDecision,
  type EnqueueHookInput,
  type FailureDecision,
  type FailureHookInput,
  type HookName,
  type HookRunner,
  LuaCompileError,
  type LuaEvent,
  type LuaLimits,
  type QueueScripts,
} from "./types.ts";
import { loadLuaModule, type State } from "./wasm.ts";

export const DEFAULT_LUA_LIMITS: Readonly<LuaLimits> = Object.freeze({
  timeoutMs: 10,
  memoryLimitBytes: 1_048_576,
  breakerThreshold: 3,
  breakerCooldownMs: 10_000,
});

export interface LuaEngineOptions {
  limits?: Partial<LuaLimits>;
  /** Current value of a runtime config key (SetConfig), read on every `fila.get`. */
  configLookup: ConfigLookup;
  /** Time source of the circuit breakers. */
  clock?: Clock;
  onEvent?: (e: LuaEvent) => void;
}

/** Creates the Lua policy engine. Only the creation is asynchronous (loading the wasm module). */
export async function createLuaEngine(options: LuaEngineOptions): Promise<HookRunner> {
  const limits = { ...DEFAULT_LUA_LIMITS, ...options.limits };
  const runtime = new LuaRuntime(await loadLuaModule(), limits);
  return new LuaEngine(runtime, limits, options);
}

const HOOKS = ["on_enqueue", "on_failure"] as const;

function scriptOf(scripts: QueueScripts, hook: HookName): string {
  return hook === "on_enqueue" ? scripts.onEnqueue : scripts.onFailure;
}

/** A queue's state with its compiled chunks; the state goes when discarded and returns on use. */
interface QueueHooks {
  queue: string;
  /** The scripts in force; a hook whose script did not compile (lenient install) is "". */
  scripts: QueueScripts;
  vm: CompiledState | undefined;
  breaker: CircuitBreaker;
}

interface CompiledState {
  state: LuaState;
  chunks: Partial<Record<HookName, ChunkRef>>;
}

interface CompileError {
  hook: HookName;
  detail: string;
}

class LuaEngine implements HookRunner {
  readonly #rt: LuaRuntime;
  readonly #limits: LuaLimits;
  readonly #clock: Clock;
  readonly #onEvent: ((e: LuaEvent) => void) | undefined;
  readonly #codec: HookCodec;
  readonly #host: SandboxHost;
  readonly #queues = new Map<string, QueueHooks>();
  /** Which queue owns a lua_State, for attributing `print` output. */
  readonly #owners = new Map<State, string>();

  constructor(rt: LuaRuntime, limits: LuaLimits, options: LuaEngineOptions) {
    this.#rt = rt;
    this.#limits = limits;
    this.#clock = options.clock ?? systemClock;
    this.#onEvent = options.onEvent;
    this.#codec = new HookCodec(rt.api, rt.marshal);
    this.#host = {
      configLookup: options.configLookup,
      print: (L, message) =>
        this.#emit({
          type: "print",
          queue: this.#owners.get(L) ?? "",
          hook: rt.activeHook,
          message,
        }),
    };
  }

  install(queue: string, scripts: QueueScripts): void {
    const { vm, errors } = this.#compile(queue, scripts, false);
    if (errors.length > 0) throw new LuaCompileError(errors[0].detail, errors[0].hook);
    this.#put(queue, scripts, vm);
  }

  installLenient(queue: string, scripts: QueueScripts): string[] {
    const { vm, errors } = this.#compile(queue, scripts, true);
    const failed = new Set(errors.map((e) => e.hook));
    this.#put(queue, {
      onEnqueue: failed.has("on_enqueue") ? "" : scripts.onEnqueue,
      onFailure: failed.has("on_failure") ? "" : scripts.onFailure,
    }, vm);
    return errors.map((e) => `${e.hook}: ${e.detail}`);
  }

  validate(scripts: QueueScripts): void {
    const { vm, errors } = this.#compile("", scripts, false);
    if (vm !== undefined) this.#close(vm);
    if (errors.length > 0) throw new LuaCompileError(errors[0].detail, errors[0].hook);
  }

  remove(queue: string): void {
    const hooks = this.#queues.get(queue);
    if (hooks === undefined) return;
    this.#queues.delete(queue);
    if (hooks.vm !== undefined) this.#close(hooks.vm);
  }

  hasOnEnqueue(queue: string): boolean {
    return (this.#queues.get(queue)?.scripts.onEnqueue ?? "") !== "";
  }

  hasOnFailure(queue: string): boolean {
    return (this.#queues.get(queue)?.scripts.onFailure ?? "") !== "";
  }

  onEnqueue(queue: string, input: EnqueueHookInput): EnqueueDecision | undefined {
    const hooks = this.#queues.get(queue);
    if (hooks === undefined || hooks.scripts.onEnqueue === "") return undefined;
    const codec = this.#codec;
    const outcome = this.#call(
      hooks,
      "on_enqueue",
      (L) => codec.pushEnqueueMsg(L, input),
      (L, idx) => codec.readEnqueueDecision(L, idx),
    );
    return outcome?.ok ? outcome.value : defaultEnqueueDecision();
  }

  onFailure(queue: string, input: FailureHookInput): FailureDecision | undefined {
    const hooks = this.#queues.get(queue);
    if (hooks === undefined || hooks.scripts.onFailure === "") return undefined;
    const codec = this.#codec;
    const warn = (message: string) =>
      this.#emit({ type: "hook_warning", queue, hook: "on_failure", message });
    const outcome = this.#call(
      hooks,
      "on_failure",
      (L) => codec.pushFailureMsg(L, input),
      (L, idx) => codec.readFailureDecision(L, idx, warn),
    );
    return outcome?.ok ? outcome.value : defaultFailureDecision();
  }

  /** Runs a hook unless the breaker bypasses it (undefined); accounts for the outcome. */
  #call<T>(
    hooks: QueueHooks,
    hook: HookName,
    pushMsg: (L: State) => void,
    read: (L: State, idx: number) => T,
  ): CallOutcome<T> | undefined {
    if (!hooks.breaker.allow()) return undefined;
    const { queue } = hooks;
    const { outcome, durationMs } = this.#invoke(hooks, hook, pushMsg, read);
    this.#emit({
      type: "hook_executed",
      queue,
      hook,
      durationUs: durationMs * 1000,
      ok: outcome.ok,
    });
    if (outcome.ok) {
      hooks.breaker.recordSuccess();
    } else {
      this.#emit({ type: "hook_failed", queue, hook, error: outcome.error });
      if (hooks.breaker.recordFailure()) this.#emit({ type: "breaker_tripped", queue });
    }
    return outcome;
  }

  #invoke<T>(
    hooks: QueueHooks,
    hook: HookName,
    pushMsg: (L: State) => void,
    read: (L: State, idx: number) => T,
  ): CallResult<T> {
    if (hooks.vm === undefined) {
      // Rebuilding a discarded state: the scripts compiled before, so an error here is rare
      // (e.g. out of memory) and fails only this call.
      const { vm, errors } = this.#compile(hooks.queue, hooks.scripts, false);
      if (errors.length > 0) {
        const error = `cannot rebuild the Lua state: ${errors[0].detail}`;
        return { outcome: { ok: false, error }, durationMs: 0 };
      }
      hooks.vm = vm;
    }
    const vm = hooks.vm!;
    const result = vm.state.invoke(hook, vm.chunks[hook]!, pushMsg, read);
    if (vm.state.discardReason !== undefined) {
      this.#emit({ type: "state_reset", queue: hooks.queue, reason: vm.state.discardReason });
      this.#close(vm);
      hooks.vm = undefined;
    }
    return result;
  }

  /**
   * Compiles the non-empty scripts, on_enqueue first, into a fresh state. Stops at the first
   * error unless `lenient`. No state is made when there is no script.
   */
  #compile(
    queue: string,
    scripts: QueueScripts,
    lenient: boolean,
  ): { vm: CompiledState | undefined; errors: CompileError[] } {
    const errors: CompileError[] = [];
    if (scripts.onEnqueue === "" && scripts.onFailure === "") return { vm: undefined, errors };
    let state: LuaState;
    try {
      state = new LuaState(this.#rt, this.#host);
    } catch (e) {
      const detail = e instanceof Error ? e.message : String(e);
      return { vm: undefined, errors: [{ hook: "on_enqueue", detail }] };
    }
    this.#owners.set(state.L, queue);
    const vm: CompiledState = { state, chunks: {} };
    for (const hook of HOOKS) {
      const source = scriptOf(scripts, hook);
      if (source === "") continue;
      const result = state.compile(hook, source);
      if ("error" in result) {
        errors.push({ hook, detail: result.error });
        if (!lenient) break;
      } else {
        vm.chunks[hook] = result.ref;
      }
    }
    if (errors.length > 0 && (!lenient || Object.keys(vm.chunks).length === 0)) {
      this.#close(vm);
      return { vm: undefined, errors };
    }
    return { vm, errors };
  }

  #put(queue: string, scripts: QueueScripts, vm: CompiledState | undefined): void {
    this.remove(queue);
    if (scripts.onEnqueue === "" && scripts.onFailure === "") {
      if (vm !== undefined) this.#close(vm);
      return;
    }
    const { breakerThreshold, breakerCooldownMs } = this.#limits;
    this.#queues.set(queue, {
      queue,
      scripts,
      vm,
      breaker: new CircuitBreaker(breakerThreshold, breakerCooldownMs, this.#clock),
    });
  }

  #close(vm: CompiledState): void {
    this.#owners.delete(vm.state.L);
    vm.state.close();
  }

  #emit(event: LuaEvent): void {
    try {
      this.#onEvent?.(event);
    } catch {
      // A faulty listener must not turn into a hook failure or break the scheduler's loop.
    }
  }
}
