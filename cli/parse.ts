/** Option-argument parsers: malformed values are usage errors (exit 2) reported by commander. */
import { InvalidArgumentError } from "commander";
import { CliError } from "./errors.ts";
import type { AclPermission } from "./wire.ts";

/** A decimal integer ≥ 0 that survives the trip through a JS number (proto uint64 fields). */
export function nonNegativeInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError("must be a non-negative integer");
  }
  return n;
}

export function positiveInteger(value: string): number {
  const n = nonNegativeInteger(value);
  if (n === 0) throw new InvalidArgumentError("must be a positive integer");
  return n;
}

/** Accumulates a repeatable option (no default, so that help shows none). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/**
 * `--perm KIND:PATTERN`, split at the first `:`. A value without `:` is an ordinary error (exit
 * 1) rather than a usage error, as operations.md §5.2 specifies.
 */
export function parsePermission(value: string): AclPermission {
  const at = value.indexOf(":");
  if (at < 0) {
    throw new CliError(
      `invalid permission format "${value}" — expected <kind>:<pattern> (e.g. produce:orders)`,
    );
  }
  return { kind: value.slice(0, at), pattern: value.slice(at + 1) };
}
