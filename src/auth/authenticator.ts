/**
 * Step 2 of the request pipeline (operations.md §4.2): turns the `authorization` header into a
 * Caller. Every request reads the key store afresh, so revocations and ACL changes apply to the
 * very next request.
 */
import type { Clock } from "../core/clock.ts";
import { FilaError, Messages, UnauthenticatedError } from "../core/errors.ts";
import type { ApiKeyRecord, ApiKeyStore } from "../storage/api_key_store.ts";
import { BOOTSTRAP_CALLER, type Caller, OPEN_CALLER } from "./acl.ts";
import { constantTimeEqual, hashToken } from "./token.ts";

const BEARER = "Bearer ";

export interface AuthenticatorOptions {
  /** Unset = authentication disabled. */
  bootstrapKey?: string;
  store: ApiKeyStore;
  clock: Clock;
}

export class Authenticator {
  readonly #bootstrapKey: string | undefined;
  readonly #store: ApiKeyStore;
  readonly #clock: Clock;

  constructor(options: AuthenticatorOptions) {
    this.#bootstrapKey = options.bootstrapKey || undefined;
    this.#store = options.store;
    this.#clock = options.clock;
  }

  get enabled(): boolean {
    return this.#bootstrapKey !== undefined;
  }

  /** `authorization` is the header value, or undefined when absent or given more than once. */
  async authenticate(authorization: string | undefined): Promise<Caller> {
    if (this.#bootstrapKey === undefined) return OPEN_CALLER;
    if (authorization === undefined || !authorization.startsWith(BEARER)) {
      throw new UnauthenticatedError();
    }
    const token = authorization.slice(BEARER.length);
    if (constantTimeEqual(token, this.#bootstrapKey)) return BOOTSTRAP_CALLER;
    let rec: ApiKeyRecord | undefined;
    try {
      rec = await this.#store.findByTokenHash(hashToken(token));
    } catch (e) {
      // Shutdown keeps its own status; any other failure must not look like a bad key.
      if (e instanceof FilaError && e.code === "UNAVAILABLE") throw e;
      throw new FilaError("INTERNAL", Messages.authUnavailable, { cause: e });
    }
    if (rec === undefined) throw new UnauthenticatedError();
    if (rec.expiresAtMs !== 0 && rec.expiresAtMs < this.#clock.now()) {
      throw new UnauthenticatedError();
    }
    return {
      kind: "key",
      keyId: rec.keyId,
      isSuperadmin: rec.isSuperadmin,
      permissions: rec.permissions,
    };
  }
}
