/** Assertions for the CLI tests (node:assert, since only the npm registry is reachable). */
import assert from "node:assert/strict";

export function assertEquals<T>(actual: T, expected: T, message = "values differ"): void {
  assert.deepStrictEqual(actual, expected, message);
}

export function assertMatch(actual: string, re: RegExp, message = "no match"): void {
  assert.match(actual, re, message);
}
