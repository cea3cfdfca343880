import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import * as grpc from "@grpc/grpc-js";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { type } from "../wire/proto.ts";
import { instrumentService, parentContext, snakeCase } from "./tracing.ts";
import { trace } from "@opentelemetry/api";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";

function setup() {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  return { exporter, tracer: provider.getTracer("fila") };
}

function encode(name: string, msg: object): Uint8Array {
  const t = type(name);
  return t.encode(t.fromObject(msg)).finish();
}

function metadata(entries: Record<string, string> = {}): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(entries)) md.set(k, v);
  return md;
}

/** Calls a wrapped unary handler the way grpc-js does; resolves with what it answered. */
function callUnary(
  handler: grpc.UntypedHandleCall,
  request: Uint8Array,
  md = metadata(),
): Promise<{ err: grpc.ServerErrorResponse | null; value?: Uint8Array | null }> {
  return new Promise((resolve) => {
    (handler as grpc.handleUnaryCall<Uint8Array, Uint8Array>)(
      { request, metadata: md } as grpc.ServerUnaryCall<Uint8Array, Uint8Array>,
      (err, value) => resolve({ err: err as grpc.ServerErrorResponse | null, value }),
    );
  });
}

Deno.test("snake_case handler span names", () => {
  assert.equal(snakeCase("Enqueue"), "enqueue");
  assert.equal(snakeCase("BatchEnqueue"), "batch_enqueue");
  assert.equal(snakeCase("CreateApiKey"), "create_api_key");
  assert.equal(snakeCase("GetAcl"), "get_acl");
  assert.equal(snakeCase("ListApiKeys"), "list_api_keys");
});

Deno.test("traceparent is the parent; a malformed one starts a new trace", () => {
  const ok = trace.getSpanContext(parentContext(metadata({
    traceparent: `00-${TRACE_ID}-${PARENT}-01`,
  })));
  assert.equal(ok?.traceId, TRACE_ID);
  assert.equal(ok?.spanId, PARENT);
  assert.equal(
    trace.getSpanContext(parentContext(metadata({ traceparent: "garbage" }))),
    undefined,
  );
  assert.equal(trace.getSpanContext(parentContext(metadata())), undefined);
});

Deno.test("unary call: grpc.server span with an enqueue child carrying queue_id and msg_id", async () => {
  const { exporter, tracer } = setup();
  const impl = instrumentService(tracer, "fila.v1.FilaService", {
    Enqueue: ((_call, cb) => {
      cb(null, encode("fila.v1.EnqueueResponse", { messageId: "m-1" }));
    }) as grpc.handleUnaryCall<Uint8Array, Uint8Array>,
  });
  const req = encode("fila.v1.EnqueueRequest", {
    queue: "orders",
    headers: { tenant: "acme" },
    payload: new TextEncoder().encode("secret payload"),
  });
  const res = await callUnary(
    impl.Enqueue,
    req,
    metadata({ traceparent: `00-${TRACE_ID}-${PARENT}-01`, authorization: "Bearer tok" }),
  );
  assert.equal(res.err, null);
  const spans = exporter.getFinishedSpans();
  const server = spans.find((s) => s.name === "grpc.server")!;
  const child = spans.find((s) => s.name === "enqueue")!;
  assert.equal(server.spanContext().traceId, TRACE_ID);
  assert.equal(server.parentSpanContext?.spanId, PARENT);
  assert.equal(server.kind, SpanKind.SERVER);
  assert.deepEqual(server.attributes, {
    "rpc.system": "grpc",
    "rpc.service": "fila.v1.FilaService",
    "rpc.method": "Enqueue",
    "rpc.grpc.status_code": 0,
  });
  assert.equal(child.parentSpanContext?.spanId, server.spanContext().spanId);
  assert.equal(child.spanContext().traceId, TRACE_ID);
  // Nothing of the payload, headers or authorization reaches a span.
  assert.deepEqual(child.attributes, { queue_id: "orders", msg_id: "m-1" });
});

Deno.test("failed call: status code on the server span, error status on both", async () => {
  const { exporter, tracer } = setup();
  const impl = instrumentService(tracer, "fila.v1.FilaService", {
    Ack: ((_call, cb) => {
      cb({ code: grpc.status.NOT_FOUND, details: 'queue "x" not found' });
    }) as grpc.handleUnaryCall<Uint8Array, Uint8Array>,
  });
  await callUnary(impl.Ack, encode("fila.v1.AckRequest", { queue: "x", messageId: "abc" }));
  const server = exporter.getFinishedSpans().find((s) => s.name === "grpc.server")!;
  const child = exporter.getFinishedSpans().find((s) => s.name === "ack")!;
  assert.equal(server.attributes["rpc.grpc.status_code"], grpc.status.NOT_FOUND);
  assert.equal(server.status.code, SpanStatusCode.ERROR);
  assert.equal(child.status.code, SpanStatusCode.ERROR);
  assert.deepEqual(child.attributes, { queue_id: "x", msg_id: "abc" });
  // Without traceparent the server span is a root.
  assert.equal(server.parentSpanContext, undefined);
});

Deno.test("admin and batch calls name their queue where there is one", async () => {
  const { exporter, tracer } = setup();
  const answer = ((_c, cb) => cb(null, new Uint8Array())) as grpc.handleUnaryCall<
    Uint8Array,
    Uint8Array
  >;
  const admin = instrumentService(tracer, "fila.v1.FilaAdmin", {
    CreateQueue: answer,
    Redrive: answer,
    CreateApiKey: answer,
  });
  const svc = instrumentService(tracer, "fila.v1.FilaService", { BatchAck: answer });
  await callUnary(admin.CreateQueue, encode("fila.v1.CreateQueueRequest", { name: "orders" }));
  await callUnary(admin.Redrive, encode("fila.v1.RedriveRequest", { dlqQueue: "orders.dlq" }));
  await callUnary(admin.CreateApiKey, encode("fila.v1.CreateApiKeyRequest", { name: "ci" }));
  await callUnary(
    svc.BatchAck,
    encode("fila.v1.BatchAckRequest", {
      items: [{ queue: "a", messageId: "1" }, { queue: "a", messageId: "2" }],
    }),
  );
  await callUnary(
    svc.BatchAck,
    encode("fila.v1.BatchAckRequest", {
      items: [{ queue: "a", messageId: "1" }, { queue: "b", messageId: "2" }],
    }),
  );
  const children = exporter.getFinishedSpans().filter((s) => s.name !== "grpc.server");
  assert.deepEqual(children.map((s) => [s.name, s.attributes]), [
    ["create_queue", { queue_id: "orders" }],
    ["redrive", { queue_id: "orders.dlq" }],
    ["create_api_key", {}],
    ["batch_ack", { queue_id: "a" }],
    ["batch_ack", {}],
  ]);
});

class FakeStream extends EventEmitter {
  constructor(readonly request: Uint8Array, readonly metadata: grpc.Metadata) {
    super();
  }
}

Deno.test("consume: the handler span covers registration, the server span the stream", async () => {
  const { exporter, tracer } = setup();
  let registered!: () => void;
  const impl = instrumentService(tracer, "fila.v1.FilaService", {
    Consume: ((_call: unknown) => new Promise<void>((r) => registered = r)) as never,
  });
  const call = new FakeStream(encode("fila.v1.ConsumeRequest", { queue: "q" }), metadata());
  (impl.Consume as (c: unknown) => void)(call);
  assert.equal(exporter.getFinishedSpans().length, 0);
  registered();
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(exporter.getFinishedSpans().map((s) => s.name), ["consume"]);
  call.emit("cancelled");
  call.emit("close");
  const server = exporter.getFinishedSpans().find((s) => s.name === "grpc.server")!;
  assert.equal(server.attributes["rpc.grpc.status_code"], grpc.status.CANCELLED);
  assert.equal(exporter.getFinishedSpans().length, 2);
});

Deno.test("consume ended by an error reports its code", () => {
  const { exporter, tracer } = setup();
  const impl = instrumentService(tracer, "fila.v1.FilaService", {
    Consume: (() => {}) as never,
  });
  const call = new FakeStream(encode("fila.v1.ConsumeRequest", { queue: "q" }), metadata());
  (impl.Consume as (c: unknown) => void)(call);
  call.emit("error", { code: grpc.status.NOT_FOUND, details: "nope" });
  call.emit("finish");
  const server = exporter.getFinishedSpans().find((s) => s.name === "grpc.server")!;
  assert.equal(server.attributes["rpc.grpc.status_code"], grpc.status.NOT_FOUND);
});

Deno.test("methods outside the wire contract pass through unchanged", () => {
  const { tracer } = setup();
  const odd = () => {};
  const impl = instrumentService(tracer, "fila.v1.FilaService", { NotARealMethod: odd as never });
  assert.equal(impl.NotARealMethod, odd);
});
