/** Input of `on_enqueue` (lua.md §2). */
export interface EnqueueHookInput {
  headers: Record<string, string>;
  payloadSize: number;
  queue: string;
}

/** Sanitised output of `on_enqueue`. */
export interface EnqueueDecision {
  fairnessKey: string;
  weight: number;
  throttleKeys: string[];
}

/** Input of `on_failure` (lua.md §3). */
export interface FailureHookInput {
  headers: Record<string, string>;
  id: string;
  attempts: number;
  queue: string;
  error: string;
}

/** Sanitised output of `on_failure`. */
export interface FailureDecision {
  action: "retry" | "dlq";
  delayMs: number;
}

/** The `[lua]` section of fila.toml (operations.md §2), in the engine's terms. */
export interface LuaLimits {
  /** `default_timeout_ms`: × 10,000 = instruction budget; × 100 = wall-clock limit. */
  timeoutMs: number;
  /** `default_memory_limit_bytes`: extra memory a call may allocate; 4× caps the state size. */
  memoryLimitBytes: number;
  /** `circuit_breaker_threshold`; 0 disables the breaker. */
  breakerThreshold: number;
  /** `circuit_breaker_cooldown_ms`. */
  breakerCooldownMs: number;
}

export type HookName = "on_enqueue" | "on_failure";

/** Telemetry and log feed; the caller maps these to metrics and log lines (operations.md §6). */
export type LuaEvent =
  /** An executed (not bypassed) call, successful or not: `fila.lua.execution_duration_us`. */
  | { type: "hook_executed"; queue: string; hook: HookName; durationUs: number; ok: boolean }
  /** A script failure: warning `lua hook failed` and `fila.lua.errors`. */
  | { type: "hook_failed"; queue: string; hook: HookName; error: string }
  /** `circuit breaker tripped` and `fila.lua.circuit_breaker.activations`. */
  | { type: "breaker_tripped"; queue: string }
  /** A tolerated oddity that deserves a warning, e.g. an unknown `action`. */
  | { type: "hook_warning"; queue: string; hook: HookName; message: string }
  /** Output of Lua's `print` (debug level). `hook` is absent outside a hook call. */
  | { type: "print"; queue: string; hook?: HookName; message: string }
  /** The queue's Lua state was discarded (too large, or left inconsistent by an abort). */
  | { type: "state_reset"; queue: string; reason: string };

/** A script that does not compile. The message is the Lua compiler's text (`<detail>`). */
export class LuaCompileError extends Error {
  constructor(message: string, readonly hook?: HookName) {
    super(message);
    this.name = "LuaCompileError";
  }
}

export interface QueueScripts {
  onEnqueue: string;
  onFailure: string;
}

/** The engine as the scheduler sees it; every method is synchronous. */
export interface HookRunner {
  /**
   * Compile and install both scripts for a queue (fresh Lua state per queue). "" = no hook.
   * Throws LuaCompileError (nothing installed) on a compile error or a precompiled binary chunk.
   */
  install(queue: string, scripts: QueueScripts): void;
  /**
   * Like install but never throws: a script that no longer compiles disables that hook (used at
   * recovery). Returns the compile errors as `<hook>: <detail>`, if any.
   */
  installLenient(queue: string, scripts: QueueScripts): string[];
  /** Only validates (used by CreateQueue before anything is stored). Throws LuaCompileError. */
  validate(scripts: QueueScripts): void;
  remove(queue: string): void;
  hasOnEnqueue(queue: string): boolean;
  hasOnFailure(queue: string): boolean;
  /** undefined when the queue has no on_enqueue hook; otherwise the sanitised decision. */
  onEnqueue(queue: string, input: EnqueueHookInput): EnqueueDecision | undefined;
  /** undefined when the queue has no on_failure hook; otherwise the sanitised decision. */
  onFailure(queue: string, input: FailureHookInput): FailureDecision | undefined;
}
