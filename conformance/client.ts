// Thin raw gRPC client for the conformance kit: @grpc/grpc-js + @grpc/proto-loader over the
// project's proto files (the wire contract) plus the standard health / reflection protos kept in
// conformance/protos/. Every call goes by method path, so the kit sees exactly what is on the wire.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { Buffer } from "node:buffer";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

export { grpc };

const PROTO_ROOT = fileURLToPath(new URL("../proto/", import.meta.url));
const LOCAL_PROTOS = fileURLToPath(new URL("./protos/", import.meta.url));

const pkgDef = protoLoader.loadSync(
  [
    "fila/v1/service.proto",
    "fila/v1/admin.proto",
    "grpc/health/v1/health.proto",
    "grpc/reflection/v1/reflection.proto",
    "grpc/reflection/v1alpha/reflection.proto",
  ],
  {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [LOCAL_PROTOS, PROTO_ROOT],
  },
);

const descriptorRoot = new protobuf.Root().loadSync(
  LOCAL_PROTOS + "conformance/descriptor_min.proto",
  { keepCase: true },
);

// deno-lint-ignore no-explicit-any
type Any = any;
type MethodDef = protoLoader.MethodDefinition<object, object>;

function methodDef(service: string, name: string): MethodDef {
  const svc = pkgDef[service] as protoLoader.ServiceDefinition | undefined;
  if (!svc || !svc[name]) throw new Error(`unknown method ${service}/${name}`);
  return svc[name] as MethodDef;
}

// ---------------------------------------------------------------------------------------------
// Message shapes (as decoded with keepCase, longs: Number, enums: String, defaults: true).

export interface MessageMetadata {
  fairness_key: string;
  weight: number;
  throttle_keys: string[];
  attempt_count: number;
  queue_id: string;
}

export interface Message {
  id: string;
  headers: Record<string, string>;
  payload: Uint8Array;
  metadata: MessageMetadata | null;
  timestamps: unknown;
}

export interface QueueConfig {
  on_enqueue_script?: string;
  on_failure_script?: string;
  visibility_timeout_ms?: number;
  fairness_key_header?: string;
  weight_header?: string;
  throttle_key_headers?: string[];
}

export interface PerFairnessKeyStats {
  key: string;
  pending_count: number;
  current_deficit: number;
  weight: number;
  delivered_count: number;
}

export interface PerThrottleKeyStats {
  key: string;
  tokens: number;
  rate_per_second: number;
  burst: number;
}

export interface Stats {
  depth: number;
  in_flight: number;
  active_fairness_keys: number;
  active_consumers: number;
  quantum: number;
  per_key_stats: PerFairnessKeyStats[];
  per_throttle_stats: PerThrottleKeyStats[];
  leader_node_id: number;
  replication_count: number;
  pending: number;
  delayed: number;
}

export interface QueueInfo {
  name: string;
  depth: number;
  in_flight: number;
  active_consumers: number;
  leader_node_id: number;
}

export interface ListQueuesResponse {
  queues: QueueInfo[];
  cluster_node_count: number;
}

export interface ConfigEntry {
  key: string;
  value: string;
}

export interface CallError extends Error {
  code: number;
  details: string;
}

export interface StreamStatus {
  code: number;
  details: string;
}

// ---------------------------------------------------------------------------------------------

/** Channel options used by every client of the kit. */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // One TCP connection per FilaClient (so "a different client connection" really is one).
  "grpc.use_local_subchannel_pool": 1,
  // Reconnect quickly after a broker restart.
  "grpc.initial_reconnect_backoff_ms": 50,
  "grpc.max_reconnect_backoff_ms": 250,
  "grpc.enable_retries": 0,
};

const openClients = new Set<FilaClient>();
const openReaders = new Set<StreamReader<unknown>>();

/** Every FilaClient not yet closed (the harness closes them after each file). */
export function liveClients(): FilaClient[] {
  return [...openClients];
}

/** Every stream reader still open (the harness cancels a test's leftovers). */
export function liveReaders(): StreamReader<unknown>[] {
  return [...openReaders];
}

let arrivalSeq = 0;

/**
 * A server-streaming (or bidi) call read as a queue: `next(timeoutMs)` resolves with the next item
 * or null on timeout / end of stream; `received` keeps every item in arrival order.
 */
export class StreamReader<T> {
  readonly received: T[] = [];
  /** Process-wide arrival sequence number of each received item (same index as `received`). */
  readonly seqs: number[] = [];
  /** Arrival time (performance.now()) of each received item. */
  readonly times: number[] = [];
  readonly ended: Promise<StreamStatus>;
  status: StreamStatus | null = null;
  #buffer: T[] = [];
  #waiters: Array<() => void> = [];
  #call: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>;

  constructor(
    call: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>,
    map: (raw: Any) => T = (raw) => raw as T,
  ) {
    this.#call = call;
    openReaders.add(this as StreamReader<unknown>);
    this.ended = new Promise((resolve) => {
      call.on("status", (s: grpc.StatusObject) => {
        if (this.status) return;
        this.status = { code: s.code, details: s.details };
        openReaders.delete(this as StreamReader<unknown>);
        this.#wake();
        resolve(this.status);
      });
    });
    call.on("data", (raw: unknown) => {
      const item = map(raw);
      this.received.push(item);
      this.seqs.push(++arrivalSeq);
      this.times.push(performance.now());
      this.#buffer.push(item);
      this.#wake();
    });
    // Errors are reported through "status"; an unhandled "error" event would throw.
    call.on("error", () => {});
  }

  #wake() {
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) w();
  }

  /** Items received but not yet returned by next(). */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** The next unread item, or null if none arrives within timeoutMs or the stream ended. */
  async next(timeoutMs = 2000): Promise<T | null> {
    const deadline = performance.now() + timeoutMs;
    while (true) {
      if (this.#buffer.length > 0) return this.#buffer.shift()!;
      if (this.status) return null;
      const left = deadline - performance.now();
      if (left <= 0) return null;
      await this.#wait(left);
    }
  }

  /** The next unread item; throws if none arrives within timeoutMs. */
  async expectNext(timeoutMs = 2000, what = "an item"): Promise<T> {
    const item = await this.next(timeoutMs);
    if (item === null) {
      throw new Error(
        `expected ${what} within ${timeoutMs} ms, got none` +
          (this.status ? ` (stream ended: ${this.status.code} ${this.status.details})` : ""),
      );
    }
    return item;
  }

  /** The next n unread items; throws if they do not all arrive within timeoutMs. */
  async take(n: number, timeoutMs = 2000): Promise<T[]> {
    const deadline = performance.now() + timeoutMs;
    const out: T[] = [];
    while (out.length < n) {
      const item = await this.next(Math.max(0, deadline - performance.now()));
      if (item === null) {
        throw new Error(
          `expected ${n} items within ${timeoutMs} ms, got ${out.length}` +
            (this.status ? ` (stream ended: ${this.status.code} ${this.status.details})` : ""),
        );
      }
      out.push(item);
    }
    return out;
  }

  /**
   * Asserts that no new item arrives within ms. Items that arrived before the call (read or not)
   * do not count.
   */
  async expectNothing(ms: number, what = "no item"): Promise<void> {
    const start = this.received.length;
    const deadline = performance.now() + ms;
    while (this.received.length === start && !this.status) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      await this.#wait(left);
    }
    if (this.received.length > start) {
      throw new Error(
        `expected ${what} within ${ms} ms, but received ${JSON.stringify(this.received[start])}`,
      );
    }
  }

  #wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== wake);
        resolve();
      }, ms);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#waiters.push(wake);
    });
  }

  /** Resolves once `received.length >= n`; throws on timeout. */
  async waitCount(n: number, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.received.length < n) {
      const left = deadline - performance.now();
      if (left <= 0 || this.status) {
        throw new Error(
          `expected ${n} items within ${timeoutMs} ms, got ${this.received.length}` +
            (this.status ? ` (stream ended: ${this.status.code} ${this.status.details})` : ""),
        );
      }
      await this.#wait(left);
    }
  }

  /** Waits for the end of the stream; throws if it does not end within timeoutMs. */
  async waitEnd(timeoutMs: number): Promise<StreamStatus> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`stream did not end within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.ended, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Client-side cancel (RST_STREAM CANCEL). */
  cancel(): void {
    this.#call.cancel();
  }

  /** Stop reading from the transport (the client "stops reading"). */
  pause(): void {
    this.#call.pause();
  }

  resume(): void {
    this.#call.resume();
  }

  /** Bidi streams only: send a request item. */
  write(item: unknown): void {
    (this.#call as grpc.ClientDuplexStream<unknown, unknown>).write(item);
  }

  /** Bidi streams only: half-close. */
  end(): void {
    (this.#call as grpc.ClientDuplexStream<unknown, unknown>).end();
  }
}

export type Consumer = StreamReader<Message>;

export interface CallOpts {
  deadlineMs?: number;
  metadata?: Record<string, string>;
}

function toPayload(p: Uint8Array | string | undefined): Uint8Array {
  if (p === undefined) return new Uint8Array();
  return typeof p === "string" ? new TextEncoder().encode(p) : p;
}

/**
 * Channel options that send `authorization: <value>` on every call of the client (pass as
 * FilaClient's `options`); the value is sent verbatim so malformed headers can be tested too.
 */
export function authorizationOptions(value: string): grpc.ChannelOptions {
  const interceptor: grpc.Interceptor = (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set("authorization", value);
        next(metadata, listener);
      },
    });
  return { interceptors: [interceptor] };
}

/** One connection to a broker, with promise wrappers for every unary RPC. */
export class FilaClient {
  readonly addr: string;
  readonly raw: grpc.Client;
  #closed = false;

  constructor(
    addr: string,
    options: grpc.ChannelOptions = {},
    credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  ) {
    this.addr = addr;
    this.raw = new grpc.Client(addr, credentials, {
      ...CHANNEL_OPTIONS,
      ...options,
    });
    openClients.add(this);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    openClients.delete(this);
    this.raw.close();
  }

  #meta(opts?: CallOpts): grpc.Metadata {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(opts?.metadata ?? {})) md.set(k, v);
    return md;
  }

  #callOptions(opts?: CallOpts): grpc.CallOptions {
    return { deadline: Date.now() + (opts?.deadlineMs ?? 30_000) };
  }

  /** Generic unary call by service and method name. */
  unary<T = Any>(service: string, method: string, req: object, opts?: CallOpts): Promise<T> {
    const def = methodDef(service, method);
    return new Promise<T>((resolve, reject) => {
      this.raw.makeUnaryRequest(
        def.path,
        def.requestSerialize as (v: object) => Buffer,
        def.responseDeserialize as (b: Buffer) => T,
        req,
        this.#meta(opts),
        this.#callOptions(opts),
        (err: grpc.ServiceError | null, res?: T) => {
          if (err) reject(err);
          else resolve(res as T);
        },
      );
    });
  }

  /** Unary call with raw request bytes (identity serializer); resolves with raw response bytes. */
  rawUnary(path: string, body: Uint8Array, opts?: CallOpts): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      this.raw.makeUnaryRequest(
        path,
        (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength),
        (b: Buffer) => new Uint8Array(b),
        body,
        this.#meta(opts),
        this.#callOptions(opts),
        (err: grpc.ServiceError | null, res?: Uint8Array) => {
          if (err) reject(err);
          else resolve(res!);
        },
      );
    });
  }

  /** Decode raw response bytes of a method with the method's deserializer. */
  decodeResponse<T = Any>(service: string, method: string, bytes: Uint8Array): T {
    const def = methodDef(service, method);
    return def.responseDeserialize(Buffer.from(bytes)) as T;
  }

  serverStream<T = Any>(
    service: string,
    method: string,
    req: object,
    opts?: CallOpts,
    map?: (raw: Any) => T,
  ): StreamReader<T> {
    const def = methodDef(service, method);
    const callOpts: grpc.CallOptions = opts?.deadlineMs ? this.#callOptions(opts) : {};
    const call = this.raw.makeServerStreamRequest(
      def.path,
      def.requestSerialize as (v: object) => Buffer,
      def.responseDeserialize as (b: Buffer) => unknown,
      req,
      this.#meta(opts),
      callOpts,
    );
    return new StreamReader<T>(call, map);
  }

  bidiStream<T = Any>(service: string, method: string, opts?: CallOpts): StreamReader<T> {
    const def = methodDef(service, method);
    const call = this.raw.makeBidiStreamRequest(
      def.path,
      def.requestSerialize as (v: object) => Buffer,
      def.responseDeserialize as (b: Buffer) => unknown,
      this.#meta(opts),
      {},
    );
    return new StreamReader<T>(call);
  }

  // --- FilaService -----------------------------------------------------------------------------

  /** Enqueue; resolves with the message id. */
  async enqueue(
    queue: string,
    opts: { headers?: Record<string, string>; payload?: Uint8Array | string } = {},
    callOpts?: CallOpts,
  ): Promise<string> {
    const res = await this.unary<{ message_id: string }>("fila.v1.FilaService", "Enqueue", {
      queue,
      headers: opts.headers ?? {},
      payload: toPayload(opts.payload),
    }, callOpts);
    return res.message_id;
  }

  /** Enqueue n messages (at most `concurrency` in flight); resolves with the ids in call order. */
  async enqueueMany(
    queue: string,
    n: number,
    make: (i: number) => { headers?: Record<string, string>; payload?: Uint8Array | string } = (
      i,
    ) => ({ payload: `m${i}` }),
    concurrency = 64,
  ): Promise<string[]> {
    const ids: string[] = new Array(n);
    let next = 0;
    const worker = async () => {
      while (next < n) {
        const i = next++;
        ids[i] = await this.enqueue(queue, make(i));
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
    return ids;
  }

  consume(queue: string, maxUnacked?: number, opts?: CallOpts): Consumer {
    const req: Record<string, unknown> = { queue };
    if (maxUnacked !== undefined) req.max_unacked = maxUnacked;
    return this.serverStream<Message>(
      "fila.v1.FilaService",
      "Consume",
      req,
      opts,
      (raw: { message: Message }) => raw.message,
    );
  }

  ack(queue: string, message_id: string, opts?: CallOpts): Promise<object> {
    return this.unary("fila.v1.FilaService", "Ack", { queue, message_id }, opts);
  }

  nack(queue: string, message_id: string, error = "", opts?: CallOpts): Promise<object> {
    return this.unary("fila.v1.FilaService", "Nack", { queue, message_id, error }, opts);
  }

  // --- FilaAdmin -------------------------------------------------------------------------------

  createQueue(name: string, config?: QueueConfig, opts?: CallOpts): Promise<{ queue_id: string }> {
    const req: Record<string, unknown> = { name };
    if (config) req.config = config;
    return this.unary("fila.v1.FilaAdmin", "CreateQueue", req, opts);
  }

  deleteQueue(queue: string, opts?: CallOpts): Promise<object> {
    return this.unary("fila.v1.FilaAdmin", "DeleteQueue", { queue }, opts);
  }

  setConfig(key: string, value: string, opts?: CallOpts): Promise<object> {
    return this.unary("fila.v1.FilaAdmin", "SetConfig", { key, value }, opts);
  }

  async getConfig(key: string, opts?: CallOpts): Promise<string> {
    const r = await this.unary<{ value: string }>("fila.v1.FilaAdmin", "GetConfig", { key }, opts);
    return r.value;
  }

  listConfig(
    prefix = "",
    opts?: CallOpts,
  ): Promise<{ entries: ConfigEntry[]; total_count: number }> {
    return this.unary("fila.v1.FilaAdmin", "ListConfig", { prefix }, opts);
  }

  getStats(queue: string, opts?: CallOpts): Promise<Stats> {
    return this.unary("fila.v1.FilaAdmin", "GetStats", { queue }, opts);
  }

  async redrive(dlq_queue: string, count = 0, opts?: CallOpts): Promise<number> {
    const r = await this.unary<{ redriven: number }>(
      "fila.v1.FilaAdmin",
      "Redrive",
      { dlq_queue, count },
      opts,
    );
    return r.redriven;
  }

  listQueues(opts?: CallOpts): Promise<ListQueuesResponse> {
    return this.unary("fila.v1.FilaAdmin", "ListQueues", {}, opts);
  }

  // --- Health / reflection ---------------------------------------------------------------------

  async healthCheck(service = "", opts?: CallOpts): Promise<string> {
    const r = await this.unary<{ status: string }>(
      "grpc.health.v1.Health",
      "Check",
      { service },
      opts,
    );
    return r.status;
  }

  healthWatch(service = ""): StreamReader<{ status: string }> {
    return this.serverStream("grpc.health.v1.Health", "Watch", { service });
  }

  /** Opens a reflection stream (v1 or v1alpha). */
  reflection(version: "v1" | "v1alpha"): StreamReader<ReflectionResponse> {
    return this.bidiStream(`grpc.reflection.${version}.ServerReflection`, "ServerReflectionInfo");
  }
}

export interface ReflectionResponse {
  valid_host: string;
  original_request: unknown;
  message_response: string;
  file_descriptor_response?: { file_descriptor_proto: Uint8Array[] };
  list_services_response?: { service: { name: string }[] };
  error_response?: { error_code: number; error_message: string };
}

export interface FieldDescriptor {
  name: string;
  number: number;
  label: number;
  type: number;
  type_name: string;
}

export interface DescriptorProtoMsg {
  name: string;
  field: FieldDescriptor[];
  nested_type: DescriptorProtoMsg[];
}

export interface FileDescriptor {
  name: string;
  package: string;
  dependency: string[];
  message_type: DescriptorProtoMsg[];
  service: { name: string; method: { name: string; input_type: string; output_type: string }[] }[];
}

/** Decode a serialized google.protobuf.FileDescriptorProto (the fields the kit needs). */
export function decodeFileDescriptor(bytes: Uint8Array): FileDescriptor {
  const t = descriptorRoot.lookupType("conformance.descriptor.FileDescriptorProto");
  return t.toObject(t.decode(bytes), { defaults: true, arrays: true }) as FileDescriptor;
}

// ---------------------------------------------------------------------------------------------
// Status assertions

export function isCallError(e: unknown): e is CallError {
  return typeof e === "object" && e !== null && "code" in e && "details" in e;
}

export function statusName(code: number): string {
  return (grpc.status as unknown as Record<number, string>)[code] ?? String(code);
}

/**
 * Asserts that `p` rejects with gRPC status `code` and (when given) exactly `message`
 * (a RegExp is matched instead). Resolves with the error.
 */
export async function assertStatus(
  p: Promise<unknown>,
  code: grpc.status,
  message?: string | RegExp,
): Promise<CallError> {
  let res: unknown;
  try {
    res = await p;
  } catch (e) {
    if (!isCallError(e)) throw e;
    assert.equal(
      statusName(e.code),
      statusName(code),
      `expected status ${statusName(code)}${message !== undefined ? ` "${message}"` : ""}, got ${
        statusName(e.code)
      } "${e.details}"`,
    );
    if (typeof message === "string") {
      assert.equal(e.details, message, `status message of ${statusName(code)}`);
    } else if (message instanceof RegExp) {
      assert.match(e.details, message, `status message of ${statusName(code)}`);
    }
    return e;
  }
  throw new assert.AssertionError({
    message: `expected status ${statusName(code)}${
      message !== undefined ? ` "${message}"` : ""
    }, but the call succeeded with ${JSON.stringify(res)}`,
  });
}

/** Asserts that a stream ended with `code` (and exactly `message` when given). */
export function assertStreamStatus(
  s: StreamStatus | null,
  code: grpc.status,
  message?: string,
): void {
  assert.ok(s, "stream has not ended");
  assert.equal(
    statusName(s.code),
    statusName(code),
    `expected stream status ${statusName(code)} "${message ?? ""}", got ${
      statusName(s.code)
    } "${s.details}"`,
  );
  if (message !== undefined) assert.equal(s.details, message);
}

// ---------------------------------------------------------------------------------------------
// Raw protobuf encoding helpers (for invalid UTF-8, unknown fields and exact request sizes).

export function pbVarint(n: number): Uint8Array {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return new Uint8Array(out);
}

export function pbConcat(...parts: Uint8Array[]): Uint8Array {
  const len = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** A length-delimited field (wire type 2). */
export function pbBytesField(field: number, value: Uint8Array | string): Uint8Array {
  const v = typeof value === "string" ? new TextEncoder().encode(value) : value;
  return pbConcat(pbVarint(field * 8 + 2), pbVarint(v.length), v);
}

/** A varint field (wire type 0). */
export function pbVarintField(field: number, value: number): Uint8Array {
  return pbConcat(pbVarint(field * 8), pbVarint(value));
}

/** Raw EnqueueRequest: queue (1), headers map entries (2), payload (3). */
export function rawEnqueueRequest(
  queue: Uint8Array | string,
  headers: Array<[Uint8Array | string, Uint8Array | string]> = [],
  payload: Uint8Array = new Uint8Array(),
  extra: Uint8Array[] = [],
): Uint8Array {
  const parts = [pbBytesField(1, queue)];
  for (const [k, v] of headers) {
    parts.push(pbBytesField(2, pbConcat(pbBytesField(1, k), pbBytesField(2, v))));
  }
  if (payload.length > 0) parts.push(pbBytesField(3, payload));
  parts.push(...extra);
  return pbConcat(...parts);
}
