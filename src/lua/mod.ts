export { createLuaEngine, DEFAULT_LUA_LIMITS, type LuaEngineOptions } from "./engine.ts";
export { logLuaEvent } from "./event_log.ts";
export {
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
