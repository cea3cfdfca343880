/** FilaError → gRPC status: the only place that mapping lives. */
import * as grpc from "@grpc/grpc-js";
import { type ErrorCode, FilaError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";

const CODES: Record<ErrorCode, grpc.status> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  OUT_OF_RANGE: grpc.status.OUT_OF_RANGE,
  UNIMPLEMENTED: grpc.status.UNIMPLEMENTED,
  INTERNAL: grpc.status.INTERNAL,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
};

export interface StatusObject {
  code: grpc.status;
  details: string;
}

export function toStatus(err: unknown, log?: Logger): StatusObject {
  if (err instanceof FilaError) return { code: CODES[err.code], details: err.message };
  log?.error("internal error", { error: String((err as Error)?.stack ?? err) });
  return {
    code: grpc.status.INTERNAL,
    details: `internal error: ${(err as Error)?.message ?? err}`,
  };
}
