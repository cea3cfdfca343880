import { ManualClock } from "../core/clock.ts";
import { createLuaEngine } from "./engine.ts";
import type {
  EnqueueHookInput,
  FailureHookInput,
  HookRunner,
  LuaEvent,
  LuaLimits,
} from "./types.ts";

/** An engine wired to an in-memory config, a manual clock and an event log, for tests. */
export interface TestEngine {
  engine: HookRunner;
  config: Map<string, string>;
  clock: ManualClock;
  events: LuaEvent[];
  /** The `error` of every hook_failed event so far. */
  failures(): string[];
}

export async function testEngine(limits: Partial<LuaLimits> = {}): Promise<TestEngine> {
  const config = new Map<string, string>();
  const clock = new ManualClock();
  const events: LuaEvent[] = [];
  const engine = await createLuaEngine({
    limits,
    configLookup: (key) => config.get(key),
    clock,
    onEvent: (e) => events.push(e),
  });
  return {
    engine,
    config,
    clock,
    events,
    failures: () => events.flatMap((e) => e.type === "hook_failed" ? [e.error] : []),
  };
}

export function enqueueInput(
  queue = "q",
  headers: Record<string, string> = {},
  payloadSize = 0,
): EnqueueHookInput {
  return { headers, payloadSize, queue };
}

export function failureInput(overrides: Partial<FailureHookInput> = {}): FailureHookInput {
  return {
    headers: {},
    id: "0190b2a4-6f1e-7c3a-9d2b-1a2b3c4d5e6f",
    attempts: 1,
    queue: "q",
    error: "boom",
    ...overrides,
  };
}

/** An on_enqueue script whose function body is `body`. */
export function onEnqueue(body: string): { onEnqueue: string; onFailure: string } {
  return { onEnqueue: `function on_enqueue(msg) ${body} end`, onFailure: "" };
}

/** An on_failure script whose function body is `body`. */
export function onFailure(body: string): { onEnqueue: string; onFailure: string } {
  return { onEnqueue: "", onFailure: `function on_failure(msg) ${body} end` };
}
