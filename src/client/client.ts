/** FilaClient: one connection to a Fila broker with the data-plane and admin calls. */
import * as grpc from "@grpc/grpc-js";
import type { Buffer } from "node:buffer";
import type { BackoffOptions } from "./backoff.ts";
import { Batcher, type BatchingOptions, type Outcome, utf8Length } from "./batcher.ts";
import { channelSetup, parseAddress, type TlsOptions } from "./connection.ts";
import { type ConsumeOptions, Consumer, type ConsumeTransport } from "./consumer.ts";
import {
  CancelledError,
  errorFromStatus,
  type FilaError,
  InternalError,
  StatusCode,
  toFilaError,
  UnavailableError,
} from "./errors.ts";
import type {
  Acl,
  ApiKeyInfo,
  ConfigEntry,
  CreateApiKeyOptions,
  CreatedApiKey,
  EnqueueItem,
  EnqueueResult,
  Headers,
  Payload,
  Permission,
  QueueConfig,
  QueueInfo,
  Stats,
} from "./types.ts";
import {
  method,
  type WireConsumeResponse,
  type WireEnqueueRequest,
  type WireItemError,
  type WireSettleRequest,
  type WireStats,
} from "./wire.ts";
import { type Handler, Worker, type WorkOptions } from "./worker.ts";

/**
 * Options of `FilaClient.connect`.
 *
 * @example
 * ```ts
 * const client = await FilaClient.connect("127.0.0.1:5555", {
 *   apiKey: Deno.env.get("FILA_API_KEY"),
 *   batching: { lingerMs: 1 },
 * });
 * ```
 */
export interface ConnectOptions {
  /** TLS: true = system trust store, or CA / client certificate settings. `https://` implies it. */
  tls?: boolean | TlsOptions;
  /** API key, sent as `authorization: Bearer <key>` on every call. */
  apiKey?: string;
  /** Client-side batching of enqueue/ack/nack (on by default); false = one call each. */
  batching?: BatchingOptions | false;
  /** Default reconnect back-off of consume streams. */
  reconnect?: BackoffOptions;
  /** Deadline of each unary call in ms (default 30000). */
  callTimeoutMs?: number;
  /**
   * While the connection is down (e.g. the broker restarts), unary calls wait for it until their
   * deadline instead of failing at once with UNAVAILABLE (default true).
   */
  waitForReady?: boolean;
  /**
   * How long `connect` waits for the connection to become ready, in ms (default 10000). 0 =
   * do not wait: the first call connects.
   */
  connectTimeoutMs?: number;
  /** Extra grpc-js channel options. */
  channelOptions?: grpc.ChannelOptions;
}

type Service = "FilaService" | "FilaAdmin";

/** HTTP/2 receive window of the connection and of each stream (grpc-js's flow-control option). */
export const RECEIVE_WINDOW_BYTES = 8 * 1024 * 1024;

const DEFAULT_BATCHING: Required<Omit<BatchingOptions, "enabled">> = {
  lingerMs: 1,
  maxItems: 500,
  maxBytes: 1 << 20,
};

function toBytes(p: Payload | undefined): Uint8Array {
  if (p === undefined) return new Uint8Array();
  return typeof p === "string" ? new TextEncoder().encode(p) : p;
}

function enqueueSize(r: WireEnqueueRequest): number {
  let n = 16 + utf8Length(r.queue) + r.payload.byteLength;
  for (const [k, v] of Object.entries(r.headers)) n += 8 + utf8Length(k) + utf8Length(v);
  return n;
}

function settleSize(r: WireSettleRequest): number {
  return 16 + utf8Length(r.queue) + utf8Length(r.message_id) + utf8Length(r.error ?? "");
}

function itemError(e: WireItemError): FilaError {
  return errorFromStatus(e.code, e.message);
}

async function allOutcomes<R>(ps: Promise<R>[]): Promise<Outcome<R>[]> {
  const rs = await Promise.allSettled(ps);
  return rs.map((r) =>
    r.status === "fulfilled"
      ? { ok: true, value: r.value }
      : { ok: false, error: toFilaError(r.reason) }
  );
}

function permissionOf(p: Permission | string): Permission {
  if (typeof p !== "string") return p;
  const i = p.indexOf(":");
  return i < 0 ? { kind: p, pattern: "" } : { kind: p.slice(0, i), pattern: p.slice(i + 1) };
}

/**
 * A connection to a Fila broker. Create it with `FilaClient.connect`, close it with `close()`
 * (or `await using`).
 *
 * Independent `enqueue`, `ack` and `nack` calls are coalesced into the batch RPCs when several
 * are outstanding (see `BatchingOptions`); every caller still gets its own id or error. Against a
 * broker without the batch RPCs the client falls back to one unary call per item.
 *
 * @example
 * ```ts
 * import { FilaClient } from "./mod.ts";
 *
 * await using client = await FilaClient.connect("127.0.0.1:5555");
 * await client.createQueue("jobs");
 * const id = await client.enqueue("jobs", { tenant: "acme" }, "hello");
 * for await (const msg of client.consume("jobs")) {
 *   console.log(msg.id === id, msg.text());
 *   await msg.ack();
 *   break;
 * }
 * ```
 */
export class FilaClient implements AsyncDisposable {
  /** The address given to `connect`. */
  readonly address: string;
  readonly #raw: grpc.Client;
  readonly #apiKey?: string;
  readonly #callTimeoutMs: number;
  readonly #waitForReady: boolean;
  readonly #reconnect?: BackoffOptions;
  readonly #enqueueBatcher: Batcher<WireEnqueueRequest, string> | null;
  readonly #ackBatcher: Batcher<WireSettleRequest, void> | null;
  readonly #nackBatcher: Batcher<WireSettleRequest, void> | null;
  readonly #batchCfg: Required<Omit<BatchingOptions, "enabled">>;
  /** Per batch RPC: undefined = not tried yet, false = the broker answered UNIMPLEMENTED. */
  readonly #batchRpc: Partial<Record<"BatchEnqueue" | "BatchAck" | "BatchNack", boolean>> = {};
  readonly #consumers = new Set<Consumer>();
  readonly #workers = new Set<Worker>();
  #closed = false;

  private constructor(address: string, options: ConnectOptions) {
    this.address = address;
    const endpoint = parseAddress(address);
    const tlsOpts = options.tls === true || (options.tls === undefined && endpoint.https)
      ? {}
      : options.tls || null;
    const { credentials, options: tlsChannelOptions } = channelSetup(endpoint, tlsOpts);
    this.#raw = new grpc.Client(endpoint.target, credentials, {
      // The broker caps deliveries at 4 MiB; no need to refuse anything it sends.
      "grpc.max_receive_message_length": -1,
      // Come back quickly after a broker restart; the consume back-off adds jitter on top.
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1000,
      // Notice a vanished broker on an idle consume stream (the broker never sends keep-alives).
      "grpc.keepalive_time_ms": 30_000,
      "grpc.keepalive_timeout_ms": 20_000,
      // HTTP/2's default 64 KiB receive window stalls batched delivery: the broker waits for a
      // WINDOW_UPDATE every 64 KiB (produce → consume → ack through the SDK: 23–25k → 32–37k
      // msg/s with 8 MiB).
      "grpc-node.flow_control_window": RECEIVE_WINDOW_BYTES,
      ...tlsChannelOptions,
      ...options.channelOptions,
    });
    this.#apiKey = options.apiKey;
    this.#callTimeoutMs = options.callTimeoutMs ?? 30_000;
    this.#waitForReady = options.waitForReady ?? true;
    this.#reconnect = options.reconnect;
    const batching = options.batching === false ? { enabled: false } : options.batching ?? {};
    this.#batchCfg = {
      lingerMs: batching.lingerMs ?? DEFAULT_BATCHING.lingerMs,
      maxItems: Math.max(1, batching.maxItems ?? DEFAULT_BATCHING.maxItems),
      maxBytes: Math.max(1, batching.maxBytes ?? DEFAULT_BATCHING.maxBytes),
    };
    if (batching.enabled === false) {
      this.#enqueueBatcher = this.#ackBatcher = this.#nackBatcher = null;
    } else {
      this.#enqueueBatcher = new Batcher(
        (items) => this.#sendEnqueues(items, false),
        { ...this.#batchCfg, sizeOf: enqueueSize },
      );
      this.#ackBatcher = new Batcher(
        (items) => this.#sendSettles("Ack", items),
        { ...this.#batchCfg, sizeOf: settleSize },
      );
      this.#nackBatcher = new Batcher(
        (items) => this.#sendSettles("Nack", items),
        { ...this.#batchCfg, sizeOf: settleSize },
      );
    }
  }

  /**
   * Connects to a broker at `host:port`, `http://host[:port]` or `https://host[:port]` and waits
   * until the connection is ready (`connectTimeoutMs`).
   *
   * @throws {UnavailableError} when the broker cannot be reached in time.
   * @example
   * ```ts
   * const client = await FilaClient.connect("https://fila.example:5555", {
   *   tls: { caFile: "ca.pem" },
   *   apiKey: "0123456789abcdef0123456789abcdef",
   * });
   * ```
   */
  static async connect(address: string, options: ConnectOptions = {}): Promise<FilaClient> {
    const client = new FilaClient(address, options);
    const waitMs = options.connectTimeoutMs ?? 10_000;
    if (waitMs > 0) {
      try {
        await new Promise<void>((resolve, reject) =>
          client.#raw.waitForReady(Date.now() + waitMs, (err) => err ? reject(err) : resolve())
        );
      } catch (e) {
        client.#raw.close();
        throw new UnavailableError(
          `cannot connect to ${address} within ${waitMs} ms: ${(e as Error).message}`,
          { cause: e },
        );
      }
    }
    return client;
  }

  // --- calls ------------------------------------------------------------------------------------

  #metadata(waitForReady = false): grpc.Metadata {
    const md = new grpc.Metadata(waitForReady ? { waitForReady: true } : undefined);
    if (this.#apiKey) md.set("authorization", `Bearer ${this.#apiKey}`);
    return md;
  }

  #unary<T>(service: Service, name: string, request: object): Promise<T> {
    if (this.#closed) return Promise.reject(new CancelledError("client is closed"));
    const def = method(service, name);
    return new Promise<T>((resolve, reject) => {
      this.#raw.makeUnaryRequest(
        def.path,
        def.requestSerialize as (v: object) => Buffer,
        def.responseDeserialize as (b: Buffer) => T,
        request,
        this.#metadata(this.#waitForReady),
        { deadline: Date.now() + this.#callTimeoutMs },
        (err: grpc.ServiceError | null, res?: T) => err ? reject(toFilaError(err)) : resolve(res!),
      );
    });
  }

  /**
   * Tries a batch RPC; null means "send the items one by one": the broker lacks the RPC, or the
   * request was refused for its size (a failed batch call had no effect, so resending is safe).
   */
  async #tryBatch<R>(
    rpc: "BatchEnqueue" | "BatchAck" | "BatchNack",
    items: object[],
  ): Promise<R[] | null> {
    if (this.#batchRpc[rpc] === false) return null;
    let res: { results: R[] };
    try {
      res = await this.#unary<{ results: R[] }>("FilaService", rpc, { items });
    } catch (e) {
      const err = toFilaError(e);
      if (err.code === StatusCode.UNIMPLEMENTED) {
        this.#batchRpc[rpc] = false;
        return null;
      }
      if (err.code === StatusCode.OUT_OF_RANGE && items.length > 1) return null;
      throw err;
    }
    this.#batchRpc[rpc] = true;
    if (res.results.length !== items.length) {
      throw new InternalError(
        `${rpc} answered ${res.results.length} results for ${items.length} items`,
      );
    }
    return res.results;
  }

  async #sendEnqueues(items: WireEnqueueRequest[], ordered: boolean): Promise<Outcome<string>[]> {
    if (items.length > 1) {
      const results = await this.#tryBatch<{ message_id: string; error: WireItemError | null }>(
        "BatchEnqueue",
        items,
      );
      if (results) {
        return results.map((r) =>
          r.error ? { ok: false, error: itemError(r.error) } : { ok: true, value: r.message_id }
        );
      }
    }
    const one = (it: WireEnqueueRequest) =>
      this.#unary<{ message_id: string }>("FilaService", "Enqueue", it).then((r) => r.message_id);
    if (!ordered) return allOutcomes(items.map(one));
    const out: Outcome<string>[] = [];
    for (const it of items) out.push(...await allOutcomes([one(it)]));
    return out;
  }

  async #sendSettles(kind: "Ack" | "Nack", items: WireSettleRequest[]): Promise<Outcome<void>[]> {
    if (items.length > 1) {
      const results = await this.#tryBatch<{ error: WireItemError | null }>(`Batch${kind}`, items);
      if (results) {
        return results.map((r) =>
          r.error ? { ok: false, error: itemError(r.error) } : { ok: true, value: undefined }
        );
      }
    }
    return allOutcomes(items.map((it) => this.#unary<void>("FilaService", kind, it)));
  }

  // --- FilaService --------------------------------------------------------------------------------

  /**
   * Enqueues one message and resolves with its id once it is durably stored. Concurrent calls
   * share BatchEnqueue requests.
   *
   * @throws {NotFoundError} when the queue does not exist.
   * @example
   * ```ts
   * const id = await client.enqueue("jobs", { tenant: "acme" }, JSON.stringify({ n: 1 }));
   * ```
   */
  enqueue(
    queue: string,
    headers: Headers = {},
    payload: Payload = new Uint8Array(),
  ): Promise<string> {
    const req: WireEnqueueRequest = { queue, headers, payload: toBytes(payload) };
    if (this.#closed) return Promise.reject(new CancelledError("client is closed"));
    if (this.#enqueueBatcher) return this.#enqueueBatcher.submit(req);
    return this.#unary<{ message_id: string }>("FilaService", "Enqueue", req).then((r) =>
      r.message_id
    );
  }

  /**
   * Enqueues several messages with BatchEnqueue (split into requests of at most
   * `batching.maxItems` items / `maxBytes` bytes, sent in order). Resolves with one result per
   * item; an item's error is the one a single `enqueue` would have thrown. Rejects only when a
   * whole request failed (e.g. UNAVAILABLE), in which case no item of that request was stored.
   *
   * @example
   * ```ts
   * const results = await client.batchEnqueue([
   *   { queue: "jobs", payload: "a" },
   *   { queue: "missing", payload: "b" },
   * ]);
   * for (const r of results) console.log(r.ok ? r.messageId : r.error.codeName);
   * ```
   */
  async batchEnqueue(items: EnqueueItem[]): Promise<EnqueueResult[]> {
    const reqs = items.map((it) => ({
      queue: it.queue,
      headers: it.headers ?? {},
      payload: toBytes(it.payload),
    }));
    const out: EnqueueResult[] = [];
    let chunk: WireEnqueueRequest[] = [];
    let bytes = 0;
    const sendChunk = async () => {
      if (chunk.length === 0) return;
      const outcomes = await this.#sendEnqueues(chunk, true);
      for (const o of outcomes) {
        out.push(
          o.ok ? { ok: true, messageId: o.value } : { ok: false, error: toFilaError(o.error) },
        );
      }
      chunk = [];
      bytes = 0;
    };
    for (const r of reqs) {
      const size = enqueueSize(r);
      if (chunk.length > 0 && bytes + size > this.#batchCfg.maxBytes) await sendChunk();
      chunk.push(r);
      bytes += size;
      if (chunk.length >= this.#batchCfg.maxItems) await sendChunk();
    }
    await sendChunk();
    return out;
  }

  /**
   * Opens a consumer on `queue`: an async iterator of deliveries with credit-based back-pressure
   * (`maxInFlight`) that reconnects by itself after transport failures.
   *
   * @example
   * ```ts
   * for await (const msg of client.consume("jobs", { maxInFlight: 16 })) {
   *   await msg.ack();
   * }
   * ```
   */
  consume(queue: string, options: ConsumeOptions = {}): Consumer {
    if (this.#closed) throw new CancelledError("client is closed");
    const consumer = new Consumer(
      this.#transport,
      queue,
      { reconnect: this.#reconnect, ...options },
      () => this.#consumers.delete(consumer),
    );
    if (!consumer.closed) this.#consumers.add(consumer);
    return consumer;
  }

  /**
   * Runs `handler` for every message of `queue`, at most `concurrency` at a time: the message is
   * acked when the handler returns and nacked with the error's message when it throws.
   *
   * @example
   * ```ts
   * const worker = client.work("emails", async (msg) => {
   *   await sendEmail(msg.json());
   * }, { concurrency: 10 });
   * // later
   * await worker.stop();
   * ```
   */
  work(queue: string, handler: Handler, options: WorkOptions = {}): Worker {
    const concurrency = Math.max(1, Math.floor(options.concurrency ?? 1));
    // The signal stops the worker, which closes the consumer once running handlers have settled;
    // handing it to the consumer too would release their leases under them.
    const { signal: _signal, ...consumeOptions } = options;
    const consumer = this.consume(queue, {
      ...consumeOptions,
      maxInFlight: options.maxInFlight ?? concurrency,
    });
    const worker = new Worker(consumer, handler, { ...options, concurrency });
    this.#workers.add(worker);
    worker.done.finally(() => this.#workers.delete(worker)).catch(() => {});
    return worker;
  }

  /**
   * Acknowledges a delivered message (coalesced into BatchAck under load).
   *
   * @throws {NotFoundError} when the message holds no lease (already settled or expired).
   * @example
   * ```ts
   * await client.ack("jobs", msg.id);
   * ```
   */
  ack(queue: string, messageId: string): Promise<void> {
    if (this.#closed) return Promise.reject(new CancelledError("client is closed"));
    const req = { queue, message_id: messageId };
    if (this.#ackBatcher) return this.#ackBatcher.submit(req);
    return this.#unary<object>("FilaService", "Ack", req).then(() => {});
  }

  /**
   * Reports a failed attempt: the broker runs `on_failure` with `error` and retries or
   * dead-letters the message (coalesced into BatchNack under load).
   *
   * @example
   * ```ts
   * await client.nack("jobs", msg.id, "downstream timeout");
   * ```
   */
  nack(queue: string, messageId: string, error = ""): Promise<void> {
    if (this.#closed) return Promise.reject(new CancelledError("client is closed"));
    const req = { queue, message_id: messageId, error };
    if (this.#nackBatcher) return this.#nackBatcher.submit(req);
    return this.#unary<object>("FilaService", "Nack", req).then(() => {});
  }

  /** Sends every coalesced enqueue/ack/nack now and waits for their answers. */
  async flush(): Promise<void> {
    await Promise.all([
      this.#enqueueBatcher?.flush(),
      this.#ackBatcher?.flush(),
      this.#nackBatcher?.flush(),
    ]);
  }

  readonly #transport: ConsumeTransport = {
    openStream: (request, events) => {
      const def = method("FilaService", "Consume");
      const call = this.#raw.makeServerStreamRequest(
        def.path,
        def.requestSerialize as (v: object) => Buffer,
        def.responseDeserialize as (b: Buffer) => WireConsumeResponse,
        request,
        this.#metadata(),
        {},
      );
      call.on("data", (res: WireConsumeResponse) => events.data(res));
      call.on("status", (s: grpc.StatusObject) => events.end(s.code, s.details));
      // The status event carries every failure; an unhandled "error" event would throw.
      call.on("error", () => {});
      return { cancel: () => call.cancel() };
    },
    settle: (kind, queue, id, error) =>
      kind === "ack" ? this.ack(queue, id) : this.nack(queue, id, error),
  };

  // --- FilaAdmin ----------------------------------------------------------------------------------

  /**
   * Creates a queue (and its dead-letter queue `<name>.dlq`).
   *
   * @throws {AlreadyExistsError} when the name is taken.
   * @example
   * ```ts
   * await client.createQueue("jobs", { fairnessKeyHeader: "tenant", weightHeader: "weight" });
   * ```
   */
  async createQueue(name: string, config: QueueConfig = {}): Promise<void> {
    await this.#unary("FilaAdmin", "CreateQueue", {
      name,
      config: {
        on_enqueue_script: config.onEnqueueScript ?? "",
        on_failure_script: config.onFailureScript ?? "",
        visibility_timeout_ms: config.visibilityTimeoutMs ?? 0,
        fairness_key_header: config.fairnessKeyHeader ?? "",
        weight_header: config.weightHeader ?? "",
        throttle_key_headers: config.throttleKeyHeaders ?? [],
      },
    });
  }

  /**
   * Deletes a queue, its dead-letter queue and all their messages.
   *
   * @example
   * ```ts
   * await client.deleteQueue("jobs");
   * ```
   */
  async deleteQueue(name: string): Promise<void> {
    await this.#unary("FilaAdmin", "DeleteQueue", { queue: name });
  }

  /**
   * Every queue (DLQs included), sorted by name.
   *
   * @example
   * ```ts
   * for (const q of await client.listQueues()) console.log(q.name, q.depth);
   * ```
   */
  async listQueues(): Promise<QueueInfo[]> {
    const res = await this.#unary<{
      queues: { name: string; depth: number; in_flight: number; active_consumers: number }[];
    }>("FilaAdmin", "ListQueues", {});
    return res.queues.map((q) => ({
      name: q.name,
      depth: q.depth,
      inFlight: q.in_flight,
      activeConsumers: q.active_consumers,
    }));
  }

  /**
   * Statistics of one queue.
   *
   * @example
   * ```ts
   * const { pending, inFlight } = await client.getStats("jobs");
   * ```
   */
  async getStats(queue: string): Promise<Stats> {
    const s = await this.#unary<WireStats>("FilaAdmin", "GetStats", { queue });
    return {
      depth: s.depth,
      inFlight: s.in_flight,
      pending: s.pending,
      delayed: s.delayed,
      activeFairnessKeys: s.active_fairness_keys,
      activeConsumers: s.active_consumers,
      quantum: s.quantum,
      perKeyStats: s.per_key_stats.map((k) => ({
        key: k.key,
        pendingCount: k.pending_count,
        currentDeficit: k.current_deficit,
        weight: k.weight,
        deliveredCount: k.delivered_count,
      })),
      perThrottleStats: s.per_throttle_stats.map((t) => ({
        key: t.key,
        tokens: t.tokens,
        ratePerSecond: t.rate_per_second,
        burst: t.burst,
      })),
    };
  }

  /**
   * Sets a runtime config entry (`""` deletes it); `throttle.<key>` = `"rate,burst"` sets a
   * token bucket.
   *
   * @example
   * ```ts
   * await client.setConfig("throttle.provider:slow", "10,20");
   * ```
   */
  async setConfig(key: string, value: string): Promise<void> {
    await this.#unary("FilaAdmin", "SetConfig", { key, value });
  }

  /**
   * A runtime config value; `""` when the key is not set.
   *
   * @example
   * ```ts
   * const region = await client.getConfig("app.region");
   * ```
   */
  async getConfig(key: string): Promise<string> {
    const res = await this.#unary<{ value: string }>("FilaAdmin", "GetConfig", { key });
    return res.value;
  }

  /**
   * Config entries whose key starts with `prefix`, in ascending key order (at most 10,000).
   *
   * @example
   * ```ts
   * const entries = await client.listConfig("throttle.");
   * ```
   */
  async listConfig(prefix = ""): Promise<ConfigEntry[]> {
    const res = await this.#unary<{ entries: ConfigEntry[] }>("FilaAdmin", "ListConfig", {
      prefix,
    });
    return res.entries.map((e) => ({ key: e.key, value: e.value }));
  }

  /**
   * Moves up to `count` (0 = all) pending messages from a dead-letter queue back to its parent;
   * resolves with the number moved.
   *
   * @example
   * ```ts
   * const moved = await client.redrive("jobs.dlq");
   * ```
   */
  async redrive(dlqQueue: string, count = 0): Promise<number> {
    const res = await this.#unary<{ redriven: number }>("FilaAdmin", "Redrive", {
      dlq_queue: dlqQueue,
      count,
    });
    return res.redriven;
  }

  /**
   * Creates an API key; the token (`key`) is returned only here.
   *
   * @example
   * ```ts
   * const { keyId, key } = await client.createApiKey("billing-service");
   * await client.setAcl(keyId, ["produce:billing.*", "consume:billing.*"]);
   * ```
   */
  async createApiKey(name: string, options: CreateApiKeyOptions = {}): Promise<CreatedApiKey> {
    const res = await this.#unary<{ key_id: string; key: string; is_superadmin: boolean }>(
      "FilaAdmin",
      "CreateApiKey",
      { name, expires_at_ms: options.expiresAtMs ?? 0, is_superadmin: options.superadmin ?? false },
    );
    return { keyId: res.key_id, key: res.key, superadmin: res.is_superadmin };
  }

  /**
   * Revokes an API key.
   *
   * @example
   * ```ts
   * await client.revokeApiKey(keyId);
   * ```
   */
  async revokeApiKey(keyId: string): Promise<void> {
    await this.#unary("FilaAdmin", "RevokeApiKey", { key_id: keyId });
  }

  /**
   * Every stored API key (without tokens), sorted by id.
   *
   * @example
   * ```ts
   * const keys = await client.listApiKeys();
   * ```
   */
  async listApiKeys(): Promise<ApiKeyInfo[]> {
    const res = await this.#unary<{
      keys: {
        key_id: string;
        name: string;
        created_at_ms: number;
        expires_at_ms: number;
        is_superadmin: boolean;
      }[];
    }>("FilaAdmin", "ListApiKeys", {});
    return res.keys.map((k) => ({
      keyId: k.key_id,
      name: k.name,
      createdAtMs: k.created_at_ms,
      expiresAtMs: k.expires_at_ms,
      superadmin: k.is_superadmin,
    }));
  }

  /**
   * Replaces a key's permissions; each is a `Permission` or a `"kind:pattern"` string.
   *
   * @example
   * ```ts
   * await client.setAcl(keyId, ["produce:orders", { kind: "consume", pattern: "orders" }]);
   * ```
   */
  async setAcl(keyId: string, permissions: (Permission | string)[]): Promise<void> {
    await this.#unary("FilaAdmin", "SetAcl", {
      key_id: keyId,
      permissions: permissions.map(permissionOf),
    });
  }

  /**
   * A key's permissions.
   *
   * @example
   * ```ts
   * const { permissions, superadmin } = await client.getAcl(keyId);
   * ```
   */
  async getAcl(keyId: string): Promise<Acl> {
    const res = await this.#unary<
      { key_id: string; permissions: Permission[]; is_superadmin: boolean }
    >("FilaAdmin", "GetAcl", { key_id: keyId });
    return {
      keyId: res.key_id,
      permissions: res.permissions.map((p) => ({ kind: p.kind, pattern: p.pattern })),
      superadmin: res.is_superadmin,
    };
  }

  // --- lifecycle -----------------------------------------------------------------------------------

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Stops workers (letting running handlers finish), closes consumers, sends what the batchers
   * hold, then closes the connection. Later calls reject with CancelledError.
   *
   * @example
   * ```ts
   * await client.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    await Promise.allSettled([...this.#workers].map((w) => w.stop()));
    await Promise.allSettled([...this.#consumers].map((c) => c.close()));
    await this.flush();
    this.#closed = true;
    this.#raw.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
