/**
 * Typed errors of the Fila SDK: one class per gRPC status code the broker (or the transport)
 * returns, so callers can branch with `instanceof` instead of comparing numbers.
 */

/**
 * gRPC status codes (numeric values of the gRPC spec).
 *
 * @example
 * ```ts
 * if (err instanceof FilaError && err.code === StatusCode.NOT_FOUND) console.log("missing");
 * ```
 */
export const StatusCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** A numeric gRPC status code. */
export type StatusCode = typeof StatusCode[keyof typeof StatusCode];

/**
 * The name of a status code.
 *
 * @example
 * ```ts
 * statusName(5); // "NOT_FOUND"
 * ```
 */
export function statusName(code: number): string {
  for (const [name, value] of Object.entries(StatusCode)) if (value === code) return name;
  return `STATUS_${code}`;
}

/**
 * Base class of every error the SDK throws for a failed call: `code` is the gRPC status code and
 * `details` the broker's status message (also the error's `message`).
 *
 * @example
 * ```ts
 * try {
 *   await client.enqueue("missing", {}, "x");
 * } catch (e) {
 *   if (e instanceof FilaError) console.log(e.codeName, e.details); // NOT_FOUND queue "missing" not found
 * }
 * ```
 */
export class FilaError extends Error {
  /** gRPC status code. */
  readonly code: number;
  /** Status message as sent by the broker (may be empty). */
  readonly details: string;

  constructor(code: number, details: string, options?: ErrorOptions) {
    super(details || statusName(code), options);
    this.code = code;
    this.details = details;
    this.name = new.target.name;
  }

  /** Status code name, e.g. `"NOT_FOUND"`. */
  get codeName(): string {
    return statusName(this.code);
  }
}

/** CANCELLED: the call was cancelled (also thrown for calls on a closed client). */
export class CancelledError extends FilaError {
  constructor(details: string, options?: ErrorOptions) {
    super(StatusCode.CANCELLED, details, options);
  }
}

/** UNKNOWN: the transport reported an error without a status. */
export class UnknownError extends FilaError {
  constructor(details: string, options?: ErrorOptions) {
    super(StatusCode.UNKNOWN, details, options);
  }
}

/** INVALID_ARGUMENT: malformed or out-of-limit input (names, ids, sizes, scripts, config). */
export class InvalidArgumentError extends FilaError {
  constructor(details: string, options?: ErrorOptions) {
    super(StatusCode.INVALID_ARGUMENT, details, options);
  }
}

/** DEADLINE_EXCEEDED: the call's deadline passed (a mutation may still have taken effect). */
export class DeadlineExceededError extends FilaError {
  constructor(details: string, options?: ErrorOptions) {
    super(StatusCode.DEADLINE_EXCEEDED, details, options);
  }
}

/**
 * NOT_FOUND: unknown queue, no lease for a message, unknown API key, deleted queue.
 *
 * @example
 * ```ts
 * await client.ack("jobs", id).catch((e) => {
 *   if (!(e instanceof NotFoundError)) throw e; // lease already gone: the message comes back
 * });
 * ```
 */
export class NotFoundError extends FilaError {
  constructor(details: string, options?: ErrorOptions) {
    super(StatusCode.NOT_FOUND, details, options);
  }
}

/** ALREADY_EXISTS: CreateQueue of an existing name. */
export class AlreadyExistsError extends FilaError {
  constructor(details: string, options?: ErrorOptions) {
    super(StatusCode.ALREADY_EXISTS, details, options);
  }
}

/** PERMISSION_DENIED: the API key's ACL does not allow the operation. */
export class PermissionDeniedError extends FilaError {
  constructor(details: string, options?: ErrorOptions) {
    super(StatusCode.PERMISSION_DENIED, details, options);
  }
}

/** RESOURCE_EXHAUSTED: the broker is overloaded ("scheduler overloaded"); retry later. */
export class ResourceExhaustedError extends FilaError {
  constructor(details: string, options?: ErrorOptions) {
    super(StatusCode.RESOURCE_EXHAUSTED, details, options);
  }
}

/** FAILED_PRECONDITION: e.g. Redrive of a DLQ whose parent queue is missing. */
export class FailedPreconditionError extends FilaError {
  constructor(details: string, options?: ErrorOptions) {
    super(StatusCode.FAILED_PRECONDITION, details, options);
  }
}

/** ABORTED. */
export class AbortedError extends FilaError {
  constructor(details: string, options?: ErrorOptions) {
    super(StatusCode.ABORTED, details, options);
  }
}

/** OUT_OF_RANGE: the request exceeded 4 MiB. */
export class OutOfRangeError extends FilaError {
  constructor(details: string, options?: ErrorOptions) {
    super(StatusCode.OUT_OF_RANGE, details, options);
  }
}

/** UNIMPLEMENTED: the broker does not know the method (e.g. batch RPCs on an older broker). */
export class UnimplementedError extends FilaError {
  constructor(details: string, options?: ErrorOptions) {
    super(StatusCode.UNIMPLEMENTED, details, options);
  }
}

/** INTERNAL: storage failure or another internal fault of the broker. */
export class InternalError extends FilaError {
  constructor(details: string, options?: ErrorOptions) {
    super(StatusCode.INTERNAL, details, options);
  }
}

/**
 * UNAVAILABLE: the broker cannot be reached or is shutting down. Retrying is safe for reads; a
 * mutation whose connection dropped mid-call may already have been applied.
 *
 * @example
 * ```ts
 * try {
 *   await client.getStats("jobs");
 * } catch (e) {
 *   if (e instanceof UnavailableError) console.warn("broker down, retrying later");
 * }
 * ```
 */
export class UnavailableError extends FilaError {
  constructor(details: string, options?: ErrorOptions) {
    super(StatusCode.UNAVAILABLE, details, options);
  }
}

/** DATA_LOSS. */
export class DataLossError extends FilaError {
  constructor(details: string, options?: ErrorOptions) {
    super(StatusCode.DATA_LOSS, details, options);
  }
}

/** UNAUTHENTICATED: missing, malformed, unknown, revoked or expired API key. */
export class UnauthenticatedError extends FilaError {
  constructor(details: string, options?: ErrorOptions) {
    super(StatusCode.UNAUTHENTICATED, details, options);
  }
}

type ErrorClass = new (details: string, options?: ErrorOptions) => FilaError;

const BY_CODE: Record<number, ErrorClass> = {
  [StatusCode.CANCELLED]: CancelledError,
  [StatusCode.UNKNOWN]: UnknownError,
  [StatusCode.INVALID_ARGUMENT]: InvalidArgumentError,
  [StatusCode.DEADLINE_EXCEEDED]: DeadlineExceededError,
  [StatusCode.NOT_FOUND]: NotFoundError,
  [StatusCode.ALREADY_EXISTS]: AlreadyExistsError,
  [StatusCode.PERMISSION_DENIED]: PermissionDeniedError,
  [StatusCode.RESOURCE_EXHAUSTED]: ResourceExhaustedError,
  [StatusCode.FAILED_PRECONDITION]: FailedPreconditionError,
  [StatusCode.ABORTED]: AbortedError,
  [StatusCode.OUT_OF_RANGE]: OutOfRangeError,
  [StatusCode.UNIMPLEMENTED]: UnimplementedError,
  [StatusCode.INTERNAL]: InternalError,
  [StatusCode.UNAVAILABLE]: UnavailableError,
  [StatusCode.DATA_LOSS]: DataLossError,
  [StatusCode.UNAUTHENTICATED]: UnauthenticatedError,
};

/**
 * The typed error for a status code and message (batch item errors and stream statuses use it).
 *
 * @example
 * ```ts
 * errorFromStatus(5, 'queue "q" not found') instanceof NotFoundError; // true
 * ```
 */
export function errorFromStatus(code: number, details: string, cause?: unknown): FilaError {
  const Cls = BY_CODE[code];
  const options = cause === undefined ? undefined : { cause };
  return Cls ? new Cls(details, options) : new FilaError(code, details, options);
}

/**
 * Converts whatever a grpc-js call rejected with into a FilaError (already-typed errors pass
 * through; errors without a status become UNKNOWN).
 */
export function toFilaError(err: unknown): FilaError {
  if (err instanceof FilaError) return err;
  if (
    typeof err === "object" && err !== null && typeof (err as { code?: unknown }).code === "number"
  ) {
    const e = err as { code: number; details?: string; message?: string };
    return errorFromStatus(e.code, e.details ?? e.message ?? "", err);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new UnknownError(message, { cause: err });
}

/**
 * Codes after which a consume stream is opened again: transport failures, shutdown and overload.
 * Everything else (unknown or deleted queue, bad name, ACL, auth) will not heal by retrying.
 */
const RETRYABLE = new Set<number>([
  StatusCode.OK,
  StatusCode.CANCELLED,
  StatusCode.UNKNOWN,
  StatusCode.DEADLINE_EXCEEDED,
  StatusCode.RESOURCE_EXHAUSTED,
  StatusCode.ABORTED,
  StatusCode.INTERNAL,
  StatusCode.UNAVAILABLE,
  StatusCode.DATA_LOSS,
]);

/** Whether a stream that ended with `code` is worth reopening. */
export function isRetryable(code: number): boolean {
  return RETRYABLE.has(code);
}
