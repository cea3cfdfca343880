/**
 * Who is calling and what they may do (operations.md §4.3–4.4, semantics.md §1.2). Pure: no
 * storage, no gRPC, so every rule is testable from a table.
 */
import { Messages, PermissionDeniedError } from "../core/errors.ts";

export const PERMISSION_KINDS = ["produce", "consume", "admin"] as const;
export type PermissionKind = (typeof PERMISSION_KINDS)[number];

export interface Permission {
  kind: string;
  pattern: string;
}

/**
 * The authenticated caller. `open` is every caller while authentication is disabled: it passes
 * every check, like the bootstrap key.
 */
export type Caller =
  | { readonly kind: "open" }
  | { readonly kind: "bootstrap" }
  | {
    readonly kind: "key";
    readonly keyId: string;
    readonly isSuperadmin: boolean;
    readonly permissions: readonly Permission[];
  };

export const OPEN_CALLER: Caller = { kind: "open" };
export const BOOTSTRAP_CALLER: Caller = { kind: "bootstrap" };

export function isPermissionKind(kind: string): kind is PermissionKind {
  return (PERMISSION_KINDS as readonly string[]).includes(kind);
}

/** True for callers that bypass every ACL check. */
export function isUnrestricted(caller: Caller): boolean {
  return caller.kind !== "key" || caller.isSuperadmin;
}

/** `*` = all; `<p>.*` = every name starting with `<p>.`; anything else = that exact name. */
export function patternMatches(pattern: string, queue: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith(".*")) return queue.startsWith(pattern.slice(0, -1));
  return pattern === queue;
}

/** Delegation: may a holder of admin pattern `admin` grant pattern `granted`? */
export function patternCovers(admin: string, granted: string): boolean {
  if (admin === "*") return true;
  if (admin.endsWith(".*")) return granted === admin || granted.startsWith(admin.slice(0, -1));
  return granted === admin;
}

function patternsOf(caller: Caller, kind: PermissionKind): string[] {
  if (caller.kind !== "key") return [];
  return caller.permissions.filter((p) => p.kind === kind).map((p) => p.pattern);
}

function holds(caller: Caller, kind: PermissionKind, queue: string): boolean {
  return isUnrestricted(caller) || patternsOf(caller, kind).some((p) => patternMatches(p, queue));
}

/** admin-all: an `admin` permission with pattern `*`. */
export function requireAdminAll(caller: Caller): void {
  if (isUnrestricted(caller) || patternsOf(caller, "admin").includes("*")) return;
  throw new PermissionDeniedError(Messages.noAdminPermission);
}

/** any-admin: at least one `admin` permission. */
export function requireAnyAdmin(caller: Caller): void {
  if (isUnrestricted(caller) || patternsOf(caller, "admin").length > 0) return;
  throw new PermissionDeniedError(Messages.noAdminPermission);
}

/** admin-on(q), produce-on(q), consume-on(q). */
export function requirePermissionOn(caller: Caller, kind: PermissionKind, queue: string): void {
  if (holds(caller, kind, queue)) return;
  throw new PermissionDeniedError(Messages.noPermissionOn(kind, queue));
}

/** SetAcl step 3: the first kind that is not produce/consume/admin, if any. */
export function firstInvalidKind(permissions: readonly Permission[]): string | undefined {
  return permissions.find((p) => !isPermissionKind(p.kind))?.kind;
}

/** SetAcl step 4: every granted pattern lies within one of the caller's admin patterns. */
export function requireWithinAdminScope(caller: Caller, granted: readonly Permission[]): void {
  if (isUnrestricted(caller)) return;
  const scope = patternsOf(caller, "admin");
  if (granted.every((g) => scope.some((a) => patternCovers(a, g.pattern)))) return;
  throw new PermissionDeniedError(Messages.exceedsAdminScope);
}

/** CreateApiKey step 3. */
export function requireMayCreateSuperadmin(caller: Caller): void {
  if (isUnrestricted(caller)) return;
  throw new PermissionDeniedError(Messages.superadminOnly);
}
