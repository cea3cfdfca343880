// Helpers for the authentication and ACL scenarios (conformance.md §12–§13): clients that send
// an API key, and thin wrappers for the API-key and ACL RPCs.
import { authorizationOptions, FilaClient } from "./client.ts";

export const BOOTSTRAP_KEY = "test-bootstrap-key";
export const AUTH_TOML = `[auth]\nbootstrap_apikey = "${BOOTSTRAP_KEY}"`;
const ADMIN = "fila.v1.FilaAdmin";

/** A new connection that sends `authorization: Bearer <token>` on every call. */
export function keyClient(addr: string, token: string): FilaClient {
  return new FilaClient(addr, authorizationOptions(`Bearer ${token}`));
}

/** A new connection that sends `authorization: <value>` verbatim. */
export function headerClient(addr: string, value: string): FilaClient {
  return new FilaClient(addr, authorizationOptions(value));
}

export interface NewKey {
  key_id: string;
  key: string;
  is_superadmin: boolean;
}

export interface KeyInfo {
  key_id: string;
  name: string;
  created_at_ms: number;
  expires_at_ms: number;
  is_superadmin: boolean;
}

export interface Acl {
  key_id: string;
  permissions: { kind: string; pattern: string }[];
  is_superadmin: boolean;
}

export function createKey(
  client: FilaClient,
  name: string,
  opts: { expires_at_ms?: number; is_superadmin?: boolean } = {},
): Promise<NewKey> {
  return client.unary(ADMIN, "CreateApiKey", {
    name,
    expires_at_ms: opts.expires_at_ms ?? 0,
    is_superadmin: opts.is_superadmin ?? false,
  });
}

export function revokeKey(client: FilaClient, key_id: string): Promise<object> {
  return client.unary(ADMIN, "RevokeApiKey", { key_id });
}

export async function listKeys(client: FilaClient): Promise<KeyInfo[]> {
  const r = await client.unary<{ keys: KeyInfo[] }>(ADMIN, "ListApiKeys", {});
  return r.keys;
}

/** `perms` as "kind:pattern" strings (split at the first colon). */
export function setAcl(client: FilaClient, key_id: string, perms: string[]): Promise<object> {
  const permissions = perms.map((p) => {
    const i = p.indexOf(":");
    return { kind: p.slice(0, i), pattern: p.slice(i + 1) };
  });
  return client.unary(ADMIN, "SetAcl", { key_id, permissions });
}

export function getAcl(client: FilaClient, key_id: string): Promise<Acl> {
  return client.unary(ADMIN, "GetAcl", { key_id });
}

/** Creates a key with `perms` using `admin` and returns a client authenticated with it. */
export async function keyWith(
  admin: FilaClient,
  perms: string[],
  opts: { is_superadmin?: boolean; name?: string } = {},
): Promise<{ key: NewKey; client: FilaClient }> {
  const key = await createKey(admin, opts.name ?? "k", { is_superadmin: opts.is_superadmin });
  if (perms.length > 0) await setAcl(admin, key.key_id, perms);
  return { key, client: keyClient(admin.addr, key.key) };
}
