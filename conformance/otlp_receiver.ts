// A test OTLP/gRPC receiver for the observability scenarios (OB-_): implements the collector's
// MetricsService/Export and TraceService/Export and decodes the requests with the subset of the
// OTLP protos (field numbers as in opentelemetry-proto v1) that the checks read.
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { Buffer } from "node:buffer";

const OTLP_SUBSET = `
syntax = "proto3";
package otlp;
message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
  }
}
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message InstrumentationScope { string name = 1; string version = 2; }

message ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }
message ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; }
message ScopeMetrics { InstrumentationScope scope = 1; repeated Metric metrics = 2; }
message Metric {
  string name = 1;
  string unit = 3;
  Gauge gauge = 5;
  Sum sum = 7;
  Histogram histogram = 9;
}
message Gauge { repeated NumberDataPoint data_points = 1; }
message Sum { repeated NumberDataPoint data_points = 1; int32 aggregation_temporality = 2; bool is_monotonic = 3; }
message Histogram { repeated HistogramDataPoint data_points = 1; int32 aggregation_temporality = 2; }
message NumberDataPoint {
  repeated KeyValue attributes = 7;
  double as_double = 4;
  sfixed64 as_int = 6;
}
message HistogramDataPoint { repeated KeyValue attributes = 9; fixed64 count = 4; double sum = 5; }

message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  bytes parent_span_id = 4;
  string name = 5;
  int32 kind = 6;
  repeated KeyValue attributes = 9;
}
`;

const root = protobuf.parse(OTLP_SUBSET, { keepCase: true }).root;
const MetricsRequest = root.lookupType("otlp.ExportMetricsServiceRequest");
const TraceRequest = root.lookupType("otlp.ExportTraceServiceRequest");

export type AttrValue = string | number | boolean;
export type Attrs = Record<string, AttrValue>;

/** One data point of one metric, flattened. */
export interface ReceivedPoint {
  metric: string;
  kind: "gauge" | "sum" | "histogram";
  attributes: Attrs;
  /** Number value (gauge, sum) or the histogram's count. */
  value: number;
  scope: string;
  resource: Attrs;
}

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** "" for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Attrs;
  scope: string;
  resource: Attrs;
}

// deno-lint-ignore no-explicit-any
type Any = any;

function hex(b: Uint8Array | undefined): string {
  return b ? [...b].map((x) => x.toString(16).padStart(2, "0")).join("") : "";
}

function toNumber(v: unknown): number {
  if (typeof v === "number") return v;
  if (v && typeof v === "object" && "toNumber" in v) return (v as Any).toNumber();
  return Number(v ?? 0);
}

function attrs(kvs: Any[] | undefined): Attrs {
  const out: Attrs = {};
  for (const kv of kvs ?? []) {
    // Decoded messages carry defaults for unset fields; the oneof getter names the set one.
    const v = kv.value;
    const which: string | undefined = v?.value;
    out[kv.key] = which === undefined
      ? ""
      : which === "int_value"
      ? toNumber(v.int_value)
      : v[which];
  }
  return out;
}

function pointsOf(req: Any): ReceivedPoint[] {
  const out: ReceivedPoint[] = [];
  for (const rm of req.resource_metrics ?? []) {
    const resource = attrs(rm.resource?.attributes);
    for (const sm of rm.scope_metrics ?? []) {
      const scope = sm.scope?.name ?? "";
      for (const m of sm.metrics ?? []) {
        const kind = m.histogram ? "histogram" : m.sum ? "sum" : "gauge";
        const data = m.histogram ?? m.sum ?? m.gauge;
        for (const p of data?.data_points ?? []) {
          const value = kind === "histogram"
            ? toNumber(p.count)
            : p.as_int !== undefined && p.as_int !== null
            ? toNumber(p.as_int)
            : p.as_double ?? 0;
          out.push({
            metric: m.name,
            kind,
            attributes: attrs(p.attributes),
            value,
            scope,
            resource,
          });
        }
      }
    }
  }
  return out;
}

function spansOf(req: Any): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of req.resource_spans ?? []) {
    const resource = attrs(rs.resource?.attributes);
    for (const ss of rs.scope_spans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: hex(s.trace_id),
          spanId: hex(s.span_id),
          parentSpanId: hex(s.parent_span_id),
          name: s.name,
          kind: s.kind ?? 0,
          attributes: attrs(s.attributes),
          scope: ss.scope?.name ?? "",
          resource,
        });
      }
    }
  }
  return out;
}

function exportMethod(path: string): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  };
}

/** An OTLP/gRPC collector stand-in on 127.0.0.1 that keeps everything it receives. */
export class OtlpReceiver {
  readonly points: ReceivedPoint[] = [];
  readonly spans: ReceivedSpan[] = [];
  metricRequests = 0;
  traceRequests = 0;
  readonly #server: grpc.Server;
  readonly port: number;

  private constructor(server: grpc.Server, port: number) {
    this.#server = server;
    this.port = port;
  }

  /** `http://127.0.0.1:<port>`, the form `otlp_endpoint` takes. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(port = 0): Promise<OtlpReceiver> {
    const server = new grpc.Server();
    const received: { receiver?: OtlpReceiver } = {};
    const empty = Buffer.alloc(0);
    server.addService({
      Export: exportMethod("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"),
    }, {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        received.receiver!.metricRequests++;
        received.receiver!.points.push(...pointsOf(MetricsRequest.decode(call.request)));
        cb(null, empty);
      },
    });
    server.addService({
      Export: exportMethod("/opentelemetry.proto.collector.trace.v1.TraceService/Export"),
    }, {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        received.receiver!.traceRequests++;
        received.receiver!.spans.push(...spansOf(TraceRequest.decode(call.request)));
        cb(null, empty);
      },
    });
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        `127.0.0.1:${port}`,
        grpc.ServerCredentials.createInsecure(),
        (err, p) => err ? reject(err) : resolve(p),
      )
    );
    received.receiver = new OtlpReceiver(server, bound);
    return received.receiver;
  }

  /** Latest data point of `metric` whose attributes include `match`. */
  latest(metric: string, match: Attrs = {}): ReceivedPoint | undefined {
    for (let i = this.points.length - 1; i >= 0; i--) {
      const p = this.points[i];
      if (p.metric !== metric) continue;
      if (Object.entries(match).every(([k, v]) => p.attributes[k] === v)) return p;
    }
    return undefined;
  }

  close(): void {
    this.#server.forceShutdown();
  }
}
