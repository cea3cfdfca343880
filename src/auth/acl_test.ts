import assert from "node:assert/strict";
import {
  BOOTSTRAP_CALLER,
  type Caller,
  firstInvalidKind,
  OPEN_CALLER,
  patternCovers,
  patternMatches,
  type Permission,
  requireAdminAll,
  requireAnyAdmin,
  requireMayCreateSuperadmin,
  requirePermissionOn,
  requireWithinAdminScope,
} from "./acl.ts";
import { PermissionDeniedError } from "../core/errors.ts";

function key(perms: string[], isSuperadmin = false): Caller {
  const permissions = perms.map((p) => {
    const i = p.indexOf(":");
    return { kind: p.slice(0, i), pattern: p.slice(i + 1) };
  });
  return { kind: "key", keyId: "k", isSuperadmin, permissions };
}

/** The PERMISSION_DENIED text, or undefined when the check passed. */
function denial(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    assert.ok(e instanceof PermissionDeniedError, String(e));
    return e.message;
  }
}

Deno.test("patternMatches() follows operations.md §4.3", () => {
  const table: Array<[string, string, boolean]> = [
    ["*", "anything", true],
    ["*", "orders.us", true],
    ["orders.*", "orders.us", true],
    ["orders.*", "orders.us.east", true],
    ["orders.*", "orders", false],
    ["orders.*", "orders.", true],
    ["orders.*", "ordersx", false],
    ["orders.*", "payments.us", false],
    ["orders", "orders", true],
    ["orders", "orders.us", false],
    ["orders", "Orders", false],
    ["orders*", "orders1", false],
    ["orders*", "orders*", true],
    ["", "orders", false],
    [".*", ".x", true],
    ["a.*.b", "a.x.b", false],
  ];
  for (const [pattern, queue, want] of table) {
    assert.equal(patternMatches(pattern, queue), want, `${pattern} vs ${queue}`);
  }
});

Deno.test("patternCovers() follows the delegation table of operations.md §4.4", () => {
  const table: Array<[string, string, boolean]> = [
    ["*", "*", true],
    ["*", "orders", true],
    ["*", "orders.*", true],
    ["orders.*", "orders.*", true],
    ["orders.*", "orders.eu", true],
    ["orders.*", "orders.eu.*", true],
    ["orders.*", "orders", false],
    ["orders.*", "*", false],
    ["orders.*", "payments", false],
    ["orders.*", "ordersx.*", false],
    ["orders", "orders", true],
    ["orders", "orders.*", false],
    ["orders", "orders.eu", false],
    ["orders", "*", false],
    ["orders", "payments", false],
  ];
  for (const [admin, granted, want] of table) {
    assert.equal(patternCovers(admin, granted), want, `${admin} covers ${granted}`);
  }
});

Deno.test("admin-all passes only with admin:* or an unrestricted caller", () => {
  const table: Array<[Caller, string | undefined]> = [
    [OPEN_CALLER, undefined],
    [BOOTSTRAP_CALLER, undefined],
    [key([], true), undefined],
    [key(["admin:*"]), undefined],
    [key(["admin:orders"]), "key does not have admin permission"],
    [key(["admin:orders.*"]), "key does not have admin permission"],
    [key(["produce:*", "consume:*"]), "key does not have admin permission"],
    [key([]), "key does not have admin permission"],
  ];
  for (const [caller, want] of table) {
    assert.equal(denial(() => requireAdminAll(caller)), want, JSON.stringify(caller));
  }
});

Deno.test("any-admin passes with any admin pattern", () => {
  const table: Array<[Caller, string | undefined]> = [
    [OPEN_CALLER, undefined],
    [key([], true), undefined],
    [key(["admin:orders"]), undefined],
    [key(["admin:x.*"]), undefined],
    [key(["produce:*"]), "key does not have admin permission"],
    [key([]), "key does not have admin permission"],
  ];
  for (const [caller, want] of table) {
    assert.equal(denial(() => requireAnyAdmin(caller)), want, JSON.stringify(caller));
  }
});

Deno.test("produce/consume/admin-on(q) match by kind and pattern", () => {
  const table: Array<[Caller, "produce" | "consume" | "admin", string, string | undefined]> = [
    [OPEN_CALLER, "produce", "q", undefined],
    [BOOTSTRAP_CALLER, "consume", "q", undefined],
    [key([], true), "admin", "q", undefined],
    [key(["produce:q"]), "produce", "q", undefined],
    [key(["produce:q"]), "consume", "q", 'key does not have consume permission on queue "q"'],
    [key(["consume:q"]), "produce", "q", 'key does not have produce permission on queue "q"'],
    [key(["produce:*"]), "produce", "any", undefined],
    [key(["produce:orders.*"]), "produce", "orders.us.east", undefined],
    [
      key(["produce:orders.*"]),
      "produce",
      "orders",
      'key does not have produce permission on queue "orders"',
    ],
    [key(["admin:orders.*"]), "admin", "orders.us", undefined],
    [
      key(["admin:orders.*"]),
      "admin",
      "payments",
      'key does not have admin permission on queue "payments"',
    ],
    [key(["admin:*"]), "produce", "q", 'key does not have produce permission on queue "q"'],
  ];
  for (const [caller, kind, q, want] of table) {
    assert.equal(
      denial(() => requirePermissionOn(caller, kind, q)),
      want,
      `${JSON.stringify(caller)} ${kind} ${q}`,
    );
  }
});

Deno.test("SetAcl kind validation reports the first offender", () => {
  const p = (kind: string): Permission => ({ kind, pattern: "q" });
  assert.equal(firstInvalidKind([p("produce"), p("consume"), p("admin")]), undefined);
  assert.equal(firstInvalidKind([p("produce"), p("Admin"), p("read")]), "Admin");
  assert.equal(firstInvalidKind([p("")]), "");
  assert.equal(firstInvalidKind([]), undefined);
});

Deno.test("delegation: every granted pattern must lie in the caller's admin scope", () => {
  const scope = "one or more permissions exceed the caller's admin scope";
  const g = (...perms: string[]) =>
    perms.map((p) => ({ kind: p.split(":")[0], pattern: p.split(":")[1] }));
  const table: Array<[Caller, Permission[], string | undefined]> = [
    [OPEN_CALLER, g("produce:*"), undefined],
    [BOOTSTRAP_CALLER, g("admin:*"), undefined],
    [key([], true), g("admin:*"), undefined],
    [key(["admin:orders"]), g("produce:orders", "consume:orders", "admin:orders"), undefined],
    [key(["admin:orders"]), g("produce:payments"), scope],
    [key(["admin:orders"]), g("produce:*"), scope],
    [key(["admin:orders.*"]), g("consume:orders.eu", "admin:orders.eu.*"), undefined],
    [key(["admin:orders.*"]), g("consume:orders"), scope],
    [key(["admin:orders", "admin:payments"]), g("produce:orders", "produce:payments"), undefined],
    [key(["produce:*"]), g("produce:x"), scope],
    [key(["admin:orders"]), [], undefined],
  ];
  for (const [caller, granted, want] of table) {
    assert.equal(
      denial(() => requireWithinAdminScope(caller, granted)),
      want,
      `${JSON.stringify(caller)} grants ${JSON.stringify(granted)}`,
    );
  }
});

Deno.test("only unrestricted callers may create superadmins", () => {
  const msg = "only superadmin keys can create other superadmin keys";
  assert.equal(denial(() => requireMayCreateSuperadmin(OPEN_CALLER)), undefined);
  assert.equal(denial(() => requireMayCreateSuperadmin(BOOTSTRAP_CALLER)), undefined);
  assert.equal(denial(() => requireMayCreateSuperadmin(key([], true))), undefined);
  assert.equal(denial(() => requireMayCreateSuperadmin(key(["admin:*"]))), msg);
});
