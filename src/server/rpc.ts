/**
 * The request pipeline shared by every FilaService/FilaAdmin call (semantics.md §1.1): size,
 * authentication, UTF-8, decode; then the handler; errors become gRPC statuses. Requests and
 * responses cross grpc-js as raw bytes so that the size and UTF-8 checks see the wire form.
 */
import * as grpc from "@grpc/grpc-js";
import type protobuf from "protobufjs";
import type { Caller } from "../auth/acl.ts";
import type { Authenticator } from "../auth/authenticator.ts";
import { FilaError, InvalidArgumentError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { findInvalidUtf8 } from "../wire/utf8_check.ts";
import { service, type } from "../wire/proto.ts";
import { toStatus } from "./status.ts";

export const MAX_REQUEST_BYTES = 4_194_304;

function toBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** grpc-js service definition passing raw bytes both ways. */
export function rawServiceDefinition(name: string): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<Uint8Array, Uint8Array>> = {};
  for (const m of service(name).methodsArray) {
    def[m.name] = {
      path: `/${name}/${m.name}`,
      requestStream: !!m.requestStream,
      responseStream: !!m.responseStream,
      requestSerialize: (b: Uint8Array) => toBuffer(b),
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Uint8Array) => toBuffer(b),
      responseDeserialize: (b: Buffer) => b,
      originalName: m.name,
    };
  }
  return def;
}

/** What every handler shares: where to log, and who checks credentials. */
export interface Pipeline {
  log: Logger;
  authenticator: Authenticator;
}

/** Step 1. */
export function checkRequestSize(raw: Buffer): void {
  if (raw.length > MAX_REQUEST_BYTES) {
    throw new FilaError(
      "OUT_OF_RANGE",
      `Error, decoded message length too large: found ${raw.length} bytes, the limit is: ${MAX_REQUEST_BYTES} bytes`,
    );
  }
}

/** The `authorization` header; a repeated header is ambiguous and counts as missing. */
function authorizationOf(metadata: grpc.Metadata): string | undefined {
  const values = metadata.get("authorization");
  return values.length === 1 && typeof values[0] === "string" ? values[0] : undefined;
}

/**
 * Steps 1–3 of the pipeline: size, authentication, then UTF-8 and decode. Authentication comes
 * before anything that looks at the request's content.
 */
export async function admitRequest<T>(
  reqType: protobuf.Type,
  raw: Buffer,
  metadata: grpc.Metadata,
  pipeline: Pipeline,
): Promise<{ req: T; caller: Caller }> {
  checkRequestSize(raw);
  const caller = await pipeline.authenticator.authenticate(authorizationOf(metadata));
  return { req: decodeRequest<T>(reqType, raw), caller };
}

/** Size, UTF-8 and decode (steps 1 and 3); callers authenticate in between via admitRequest. */
export function decodeRequest<T>(reqType: protobuf.Type, raw: Buffer): T {
  checkRequestSize(raw);
  const bad = findInvalidUtf8(reqType, raw);
  if (bad) throw new InvalidArgumentError(`invalid UTF-8 in field "${bad}"`);
  try {
    return reqType.decode(raw) as unknown as T;
  } catch (e) {
    throw new InvalidArgumentError(`malformed request: ${(e as Error).message}`);
  }
}

export type UnaryHandler<Req> = (
  req: Req,
  caller: Caller,
  call: grpc.ServerUnaryCall<Buffer, Uint8Array>,
) => Promise<object> | object;

/** Wraps a typed handler into a raw grpc-js unary handler for `Service/Method`. */
export function unary<Req>(
  serviceName: string,
  method: string,
  handler: UnaryHandler<Req>,
  pipeline: Pipeline,
): grpc.handleUnaryCall<Buffer, Uint8Array> {
  const m = service(serviceName).methods[method];
  const reqType = type(m.resolvedRequestType!.fullName);
  const resType = type(m.resolvedResponseType!.fullName);
  return (call, callback) => {
    admitRequest<Req>(reqType, call.request, call.metadata, pipeline)
      .then(({ req, caller }) => handler(req, caller, call))
      .then((res) => resType.encode(res).finish())
      .then(
        (bytes) => callback(null, bytes),
        (e) => callback(toStatus(e, pipeline.log)),
      );
  };
}
