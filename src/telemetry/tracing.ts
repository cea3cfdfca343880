/**
 * Server spans (operations.md §6.3): a `grpc.server` span per FilaService/FilaAdmin call, child
 * of the caller's W3C trace context, and a child span per handler named after the RPC in
 * snake_case. Wrapping the service implementation keeps every handler free of tracing code.
 */
import type * as grpc from "@grpc/grpc-js";
import {
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { service } from "../wire/proto.ts";
import {
  type AttributePlan,
  attributePlan,
  requestAttributes,
  responseMsgId,
} from "./rpc_attributes.ts";

const GRPC_OK = 0;
const GRPC_CANCELLED = 1;
const GRPC_UNKNOWN = 2;

const propagator = new W3CTraceContextPropagator();

const metadataGetter: TextMapGetter<grpc.Metadata> = {
  keys: (md) => Object.keys(md.getMap()),
  get: (md, key) => {
    const values = md.get(key).filter((v): v is string => typeof v === "string");
    return values.length > 0 ? values : undefined;
  },
};

/** The caller's trace context from `traceparent` / `tracestate`; the root context otherwise. */
export function parentContext(metadata: grpc.Metadata): Context {
  return propagator.extract(ROOT_CONTEXT, metadata, metadataGetter);
}

/** `CreateApiKey` → `create_api_key`. */
export function snakeCase(method: string): string {
  return method.replace(/(?<=[a-z0-9])([A-Z])/g, "_$1").toLowerCase();
}

interface CallSpans {
  server: Span;
  handler: Span;
}

function startSpans(
  tracer: Tracer,
  serviceName: string,
  method: string,
  plan: AttributePlan,
  call: { metadata: grpc.Metadata; request: Uint8Array },
): CallSpans {
  const parent = parentContext(call.metadata);
  const server = tracer.startSpan("grpc.server", {
    kind: SpanKind.SERVER,
    attributes: { "rpc.system": "grpc", "rpc.service": serviceName, "rpc.method": method },
  }, parent);
  const handler = tracer.startSpan(snakeCase(method), {
    attributes: requestAttributes(plan, call.request),
  }, trace.setSpan(parent, server));
  return { server, handler };
}

function endServerSpan(span: Span, code: number, details?: string): void {
  span.setAttribute("rpc.grpc.status_code", code);
  if (code !== GRPC_OK) span.setStatus({ code: SpanStatusCode.ERROR, message: details });
  span.end();
}

type AnyHandler = (...args: never[]) => unknown;

function wrapUnary(
  tracer: Tracer,
  serviceName: string,
  method: string,
  plan: AttributePlan,
  handler: grpc.handleUnaryCall<Uint8Array, Uint8Array>,
): grpc.handleUnaryCall<Uint8Array, Uint8Array> {
  return (call, callback) => {
    const spans = startSpans(tracer, serviceName, method, plan, call);
    const done: grpc.sendUnaryData<Uint8Array> = (err, value, ...rest) => {
      if (err) {
        const code = err.code ?? GRPC_UNKNOWN;
        spans.handler.setStatus({ code: SpanStatusCode.ERROR, message: err.details });
        spans.handler.end();
        endServerSpan(spans.server, code, err.details);
      } else {
        const msgId = value ? responseMsgId(plan, value) : undefined;
        if (msgId) spans.handler.setAttribute("msg_id", msgId);
        spans.handler.end();
        endServerSpan(spans.server, GRPC_OK);
      }
      callback(err, value, ...rest);
    };
    handler(call, done);
  };
}

/**
 * The handler span covers registration: it ends when the handler's returned promise settles
 * (at once for a handler that returns nothing). The server span lasts as long as the stream.
 */
function wrapServerStream(
  tracer: Tracer,
  serviceName: string,
  method: string,
  plan: AttributePlan,
  handler: grpc.handleServerStreamingCall<Uint8Array, Uint8Array>,
): grpc.handleServerStreamingCall<Uint8Array, Uint8Array> {
  return (call) => {
    const spans = startSpans(tracer, serviceName, method, plan, call);
    let error: { code?: number; details?: string } | undefined;
    let ended = false;
    const finish = (code: number, details?: string) => {
      if (ended) return;
      ended = true;
      endServerSpan(spans.server, code, details);
    };
    call.on("error", (e: { code?: number; details?: string }) => error ??= e);
    call.once("cancelled", () => finish(GRPC_CANCELLED, "cancelled"));
    call.once(
      "finish",
      () => error ? finish(error.code ?? GRPC_UNKNOWN, error.details) : finish(GRPC_OK),
    );
    call.once(
      "close",
      () => error ? finish(error.code ?? GRPC_UNKNOWN, error.details) : finish(GRPC_OK),
    );
    const endHandler = () => spans.handler.end();
    let result: unknown;
    try {
      result = (handler as (c: typeof call) => unknown)(call);
    } catch (e) {
      endHandler();
      throw e;
    }
    if (result instanceof Promise) result.then(endHandler, endHandler);
    else endHandler();
  };
}

/**
 * Wraps every unary and server-streaming method of a raw-bytes service implementation with
 * spans; methods the wire contract does not know pass through unchanged.
 */
export function instrumentService(
  tracer: Tracer,
  serviceName: string,
  impl: grpc.UntypedServiceImplementation,
): grpc.UntypedServiceImplementation {
  const methods = service(serviceName).methods;
  const out: grpc.UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(impl)) {
    const def = methods[method];
    const plan = def ? attributePlan(serviceName, method) : undefined;
    if (!def || !plan || def.requestStream) {
      out[method] = handler;
    } else if (def.responseStream) {
      out[method] = wrapServerStream(
        tracer,
        serviceName,
        method,
        plan,
        handler as grpc.handleServerStreamingCall<Uint8Array, Uint8Array>,
      ) as AnyHandler as grpc.UntypedHandleCall;
    } else {
      out[method] = wrapUnary(
        tracer,
        serviceName,
        method,
        plan,
        handler as grpc.handleUnaryCall<Uint8Array, Uint8Array>,
      ) as AnyHandler as grpc.UntypedHandleCall;
    }
  }
  return out;
}
