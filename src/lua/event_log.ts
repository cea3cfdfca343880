/** Lua engine events → the log lines of operations.md §6.4. */
import type { Logger } from "../core/log.ts";
import type { LuaEvent } from "./types.ts";

export function logLuaEvent(log: Logger, e: LuaEvent): void {
  switch (e.type) {
    case "hook_failed":
      log.warn("lua hook failed", { queue: e.queue, hook: e.hook, error: e.error });
      return;
    case "breaker_tripped":
      log.warn("circuit breaker tripped", { queue: e.queue });
      return;
    case "hook_warning":
      log.warn("lua hook warning", { queue: e.queue, hook: e.hook, message: e.message });
      return;
    case "state_reset":
      log.warn("lua state reset", { queue: e.queue, reason: e.reason });
      return;
    case "print":
      log.debug("lua print", { queue: e.queue, hook: e.hook, message: e.message });
      return;
    case "hook_executed":
      return; // metrics only
  }
}
