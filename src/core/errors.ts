/**
 * Domain errors. Each class names a meaning that callers branch on; the text is the
 * exact client-visible message from the spec. Mapping to gRPC status codes happens only in
 * `server/status.ts`.
 */
export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "OUT_OF_RANGE"
  | "UNIMPLEMENTED"
  | "INTERNAL"
  | "UNAVAILABLE"
  | "UNAUTHENTICATED";

export class FilaError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = "FilaError";
  }
}

export class InvalidArgumentError extends FilaError {
  constructor(message: string, options?: ErrorOptions) {
    super("INVALID_ARGUMENT", message, options);
    this.name = "InvalidArgumentError";
  }
}

export class NotFoundError extends FilaError {
  constructor(message: string) {
    super("NOT_FOUND", message);
    this.name = "NotFoundError";
  }
}

export class AlreadyExistsError extends FilaError {
  constructor(message: string) {
    super("ALREADY_EXISTS", message);
    this.name = "AlreadyExistsError";
  }
}

export class FailedPreconditionError extends FilaError {
  constructor(message: string) {
    super("FAILED_PRECONDITION", message);
    this.name = "FailedPreconditionError";
  }
}

export class UnavailableError extends FilaError {
  constructor(message: string) {
    super("UNAVAILABLE", message);
    this.name = "UnavailableError";
  }
}

export class OverloadedError extends FilaError {
  constructor() {
    super("RESOURCE_EXHAUSTED", "scheduler overloaded");
    this.name = "OverloadedError";
  }
}

export class PermissionDeniedError extends FilaError {
  constructor(message: string) {
    super("PERMISSION_DENIED", message);
    this.name = "PermissionDeniedError";
  }
}

/** Every authentication failure looks the same to the client, so it cannot probe which part failed. */
export class UnauthenticatedError extends FilaError {
  constructor() {
    super("UNAUTHENTICATED", Messages.invalidApiKey);
    this.name = "UnauthenticatedError";
  }
}

export class StorageError extends FilaError {
  constructor(detail: string, options?: ErrorOptions) {
    super("INTERNAL", `storage error: ${detail}`, options);
    this.name = "StorageError";
  }
}

/** Message-text builders shared by every RPC, word for word from semantics.md §3. */
export const Messages = {
  queueNotFound: (q: string) => `queue "${q}" not found`,
  queueDeleted: (q: string) => `queue "${q}" was deleted`,
  queueExists: (q: string) => `queue "${q}" already exists`,
  noLease: (id: string, q: string) => `no lease for message ${id} in queue ${q}`,
  messageNotFound: (id: string, q: string) => `message ${id} not found in queue ${q}`,
  shuttingDown: "broker is shutting down",
  schedulerUnavailable: "scheduler unavailable",
  invalidApiKey: "invalid or missing api key",
  authUnavailable: "authentication service unavailable",
  apiKeyNotFound: "api key not found",
  noAdminPermission: "key does not have admin permission",
  noPermissionOn: (kind: string, q: string) =>
    `key does not have ${kind} permission on queue "${q}"`,
  superadminOnly: "only superadmin keys can create other superadmin keys",
  exceedsAdminScope: "one or more permissions exceed the caller's admin scope",
  invalidPermissionKind: (k: string) =>
    `invalid permission kind "${k}"; must be one of: produce, consume, admin`,
} as const;
