/** Name and size rules of semantics.md §1.3, shared by every RPC that accepts a queue name. */
import { InvalidArgumentError } from "./errors.ts";
import { isDlqName } from "./types.ts";

export const MAX_QUEUE_NAME_BYTES = 255;
/** A queue that is not a DLQ must leave room for ".dlq". */
export const MAX_PARENT_QUEUE_NAME_BYTES = 251;
export const MAX_KEY_BYTES = 255;

/** UTF-8 byte length of a (well-formed) JS string without allocating. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

/**
 * Checks a queue name; `label` is "queue name" or "dlq_queue name". Throws InvalidArgumentError
 * with the exact spec text.
 */
export function checkQueueName(name: string, label = "queue name"): void {
  if (name.length === 0) throw new InvalidArgumentError(`${label} must not be empty`);
  if (utf8Length(name) > MAX_QUEUE_NAME_BYTES) {
    throw new InvalidArgumentError(`${label} must not exceed ${MAX_QUEUE_NAME_BYTES} bytes`);
  }
  if (hasControlCharacter(name)) {
    throw new InvalidArgumentError(`${label} must not contain control characters`);
  }
}

/** CreateQueue's extra rule: a parent queue's DLQ name must fit in 255 bytes. */
export function checkNewQueueName(name: string): void {
  checkQueueName(name);
  if (!isDlqName(name) && utf8Length(name) > MAX_PARENT_QUEUE_NAME_BYTES) {
    throw new InvalidArgumentError(
      `queue name must not exceed ${MAX_PARENT_QUEUE_NAME_BYTES} bytes (its dead-letter queue name adds ".dlq")`,
    );
  }
}

/** Byte-order comparison of strings (UTF-16 order differs for astral characters). */
export function compareBytes(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (astral code points) sort after every BMP character in UTF-8.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

export const CONFIG_LIMITS = { keyBytes: 256, valueBytes: 1024, prefixBytes: 256 } as const;

/** Runtime-config key rules (SetConfig, GetConfig). */
export function checkConfigKey(key: string): void {
  if (key.length === 0) throw new InvalidArgumentError("config key must not be empty");
  if (utf8Length(key) > CONFIG_LIMITS.keyBytes) {
    throw new InvalidArgumentError(`config key must not exceed ${CONFIG_LIMITS.keyBytes} bytes`);
  }
}

export function checkConfigValue(value: string): void {
  if (utf8Length(value) > CONFIG_LIMITS.valueBytes) {
    throw new InvalidArgumentError(
      `config value must not exceed ${CONFIG_LIMITS.valueBytes} bytes`,
    );
  }
}

export function checkConfigPrefix(prefix: string): void {
  if (utf8Length(prefix) > CONFIG_LIMITS.prefixBytes) {
    throw new InvalidArgumentError(
      `config prefix must not exceed ${CONFIG_LIMITS.prefixBytes} bytes`,
    );
  }
}

/**
 * A queue definition, scripts included, is one storage value (64 KiB at most), so each script
 * is limited to 30 KiB; policy scripts are typically well under 2 KiB.
 */
export const MAX_SCRIPT_BYTES = 30 * 1024;

export function checkScriptSize(field: string, script: string): void {
  if (utf8Length(script) > MAX_SCRIPT_BYTES) {
    throw new InvalidArgumentError(`${field} must not exceed ${MAX_SCRIPT_BYTES} bytes`);
  }
}
