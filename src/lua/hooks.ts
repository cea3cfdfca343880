import { type Marshal, typeName } from "./marshal.ts";
import type {
  EnqueueDecision,
  EnqueueHookInput,
  FailureDecision,
  FailureHookInput,
} from "./types.ts";
import { decodeLossyUtf8 } from "./utf8.ts";
import { type LuaApi, LuaType, type Ptr, type State } from "./wasm.ts";

/** lua.md §2: keys are at most 255 bytes. */
const MAX_KEY_BYTES = 255;
const MAX_U32 = 4_294_967_295;

/** The engine's default decisions, as fresh objects the caller may keep or change. */
export function defaultEnqueueDecision(): EnqueueDecision {
  return { fairnessKey: "default", weight: 1, throttleKeys: [] };
}

export function defaultFailureDecision(): FailureDecision {
  return { action: "retry", delayMs: 0 };
}

const FIELDS = [
  "headers",
  "payload_size",
  "queue",
  "id",
  "attempts",
  "error",
  "fairness_key",
  "weight",
  "throttle_keys",
  "action",
  "delay_ms",
] as const;
type Field = (typeof FIELDS)[number];

/**
 * Builds the `msg` tables of lua.md §2–3 and sanitises what the hooks return, field by field:
 * a bad field falls back on its own and is not a script failure.
 */
export class HookCodec {
  readonly #api: LuaApi;
  readonly #m: Marshal;
  readonly #field: Record<Field, Ptr>;

  constructor(api: LuaApi, marshal: Marshal) {
    this.#api = api;
    this.#m = marshal;
    this.#field = Object.fromEntries(FIELDS.map((f) => [f, marshal.cstr(f)])) as Record<Field, Ptr>;
  }

  pushEnqueueMsg(L: State, input: EnqueueHookInput): void {
    const api = this.#api;
    const f = this.#field;
    api.lua_createtable(L, 0, 3);
    this.#pushHeaders(L, input.headers);
    api.lua_setfield(L, -2, f.headers);
    api.lua_pushinteger(L, BigInt(input.payloadSize));
    api.lua_setfield(L, -2, f.payload_size);
    this.#m.pushString(L, input.queue);
    api.lua_setfield(L, -2, f.queue);
  }

  pushFailureMsg(L: State, input: FailureHookInput): void {
    const api = this.#api;
    const m = this.#m;
    const f = this.#field;
    api.lua_createtable(L, 0, 5);
    this.#pushHeaders(L, input.headers);
    api.lua_setfield(L, -2, f.headers);
    m.pushString(L, input.id);
    api.lua_setfield(L, -2, f.id);
    api.lua_pushinteger(L, BigInt(input.attempts));
    api.lua_setfield(L, -2, f.attempts);
    m.pushString(L, input.queue);
    api.lua_setfield(L, -2, f.queue);
    m.pushString(L, input.error);
    api.lua_setfield(L, -2, f.error);
  }

  /** Reads the table at `idx` returned by on_enqueue (lua.md §2, "Output"). */
  readEnqueueDecision(L: State, idx: number): EnqueueDecision {
    const api = this.#api;
    const m = this.#m;
    this.#rawField(L, idx, this.#field.fairness_key);
    const fairnessKey = m.toKey(L, -1, MAX_KEY_BYTES) ?? "default";
    api.lua_settop(L, -2);

    this.#rawField(L, idx, this.#field.weight);
    const weight = m.toNumber(L, -1);
    api.lua_settop(L, -2);

    const throttleKeys: string[] = [];
    if (this.#rawField(L, idx, this.#field.throttle_keys) === LuaType.Table) {
      for (let i = 1n;; i++) {
        if (api.lua_rawgeti(L, -1, i) === LuaType.Nil) break;
        const key = m.toKey(L, -1, MAX_KEY_BYTES);
        if (key !== undefined) throttleKeys.push(key);
        api.lua_settop(L, -2);
      }
      api.lua_settop(L, -2);
    }
    api.lua_settop(L, -2);

    return {
      fairnessKey,
      // `+ 0` turns -0 into 0.
      weight: weight !== undefined && isIntegerIn(weight, 0, MAX_U32) ? weight + 0 : 1,
      throttleKeys,
    };
  }

  /**
   * Reads the table at `idx` returned by on_failure (lua.md §3, "Output"). `warn` receives the
   * reason when `action` is present but unusable.
   */
  readFailureDecision(L: State, idx: number, warn: (message: string) => void): FailureDecision {
    const api = this.#api;
    const m = this.#m;
    let action: FailureDecision["action"] = "retry";
    const actionType = this.#rawField(L, idx, this.#field.action);
    if (actionType === LuaType.String) {
      const bytes = m.stringBytes(L, -1);
      if (equalsAscii(bytes, "dlq")) action = "dlq";
      else if (!equalsAscii(bytes, "retry")) {
        warn(`on_failure returned action "${decodeLossyUtf8(bytes.subarray(0, 64))}"; retrying`);
      }
    } else if (actionType !== LuaType.Nil) {
      warn(`on_failure returned a ${typeName(actionType)} as action; retrying`);
    }
    api.lua_settop(L, -2);

    this.#rawField(L, idx, this.#field.delay_ms);
    const delay = m.toNumber(L, -1);
    api.lua_settop(L, -2);
    return {
      action,
      delayMs: delay !== undefined && isIntegerIn(delay, 0, Number.POSITIVE_INFINITY)
        ? Math.min(delay + 0, MAX_U32)
        : 0,
    };
  }

  /** Pushes `t[key]` without metamethods; returns its type. */
  #rawField(L: State, idx: number, key: Ptr): number {
    this.#api.lua_pushstring(L, key);
    return this.#api.lua_rawget(L, idx < 0 ? idx - 1 : idx);
  }

  #pushHeaders(L: State, headers: Record<string, string>): void {
    const api = this.#api;
    const m = this.#m;
    const names = Object.keys(headers);
    api.lua_createtable(L, 0, names.length);
    for (const name of names) {
      m.pushString(L, name);
      m.pushString(L, headers[name]);
      api.lua_rawset(L, -3);
    }
  }
}

function isIntegerIn(value: number, min: number, max: number): boolean {
  return Number.isInteger(value) && value >= min && value <= max;
}

function equalsAscii(bytes: Uint8Array, text: string): boolean {
  if (bytes.length !== text.length) return false;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== text.charCodeAt(i)) return false;
  }
  return true;
}
