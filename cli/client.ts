/**
 * The CLI's gRPC client: FilaAdmin for every command, plus the FilaService calls that only
 * `fila demo` needs. Both share one channel.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Buffer } from "node:buffer";
import { fileURLToPath } from "node:url";
import { CliError } from "./errors.ts";
import {
  channelSetup,
  type ConnectionOptions,
  loadTlsMaterial,
  parseAddr,
  probe,
} from "./connection.ts";
import type { ConsumeResponse } from "./wire.ts";

const PROTO_DIR = fileURLToPath(new URL("../proto/", import.meta.url));
const CONNECT_TIMEOUT_MS = 10_000;

export type AdminMethod =
  | "CreateQueue"
  | "DeleteQueue"
  | "SetConfig"
  | "GetConfig"
  | "ListConfig"
  | "GetStats"
  | "Redrive"
  | "ListQueues"
  | "CreateApiKey"
  | "RevokeApiKey"
  | "ListApiKeys"
  | "SetAcl"
  | "GetAcl";

// deno-lint-ignore no-explicit-any
type DynamicClient = grpc.Client & Record<string, any>;
type ClientConstructor = new (
  target: string,
  credentials: grpc.ChannelCredentials,
  options: grpc.ClientOptions,
) => DynamicClient;

function loadServices(): { Admin: ClientConstructor; Service: ClientConstructor } {
  const definition = protoLoader.loadSync(["fila/v1/admin.proto", "fila/v1/service.proto"], {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: Number,
    defaults: true,
  });
  // deno-lint-ignore no-explicit-any
  const v1 = (grpc.loadPackageDefinition(definition) as any).fila.v1;
  return { Admin: v1.FilaAdmin, Service: v1.FilaService };
}

/** Waits for the channel, failing at once if the connection breaks instead of retrying. */
function waitReady(client: grpc.Client, deadline: number, secure: boolean): Promise<void> {
  const channel = client.getChannel();
  return new Promise((resolve, reject) => {
    const check = () => {
      const state = channel.getConnectivityState(true);
      if (state === grpc.connectivityState.READY) return resolve();
      if (state === grpc.connectivityState.TRANSIENT_FAILURE) {
        return reject(
          new Error(
            secure
              ? "the connection failed after the TLS handshake"
              : "the connection failed (does the broker use TLS? try https:// or --tls)",
          ),
        );
      }
      channel.watchConnectivityState(state, deadline, (err?: Error) => {
        if (err) reject(new Error("timed out"));
        else check();
      });
    };
    check();
  });
}

export class FilaClient {
  readonly #admin: DynamicClient;
  readonly #service: DynamicClient;
  readonly #metadata: grpc.Metadata;

  private constructor(admin: DynamicClient, service: DynamicClient, metadata: grpc.Metadata) {
    this.#admin = admin;
    this.#service = service;
    this.#metadata = metadata;
  }

  /** Connects within 10 s (§5.1); failures are CliErrors with the texts of §5.1. */
  static async connect(opts: ConnectionOptions): Promise<FilaClient> {
    const endpoint = parseAddr(opts.addr);
    const material = loadTlsMaterial(opts, endpoint);
    const deadline = Date.now() + CONNECT_TIMEOUT_MS;
    const { Admin, Service } = loadServices();
    const { credentials, options } = channelSetup(endpoint, material);
    const cannotConnect = (e: unknown) =>
      new CliError(`cannot connect to broker at ${opts.addr}: ${(e as Error).message}`);
    try {
      await probe(endpoint, material, CONNECT_TIMEOUT_MS);
    } catch (e) {
      throw cannotConnect(e);
    }
    const admin = new Admin(endpoint.target, credentials, options);
    const service = new Service(endpoint.target, credentials, {
      ...options,
      channelOverride: admin.getChannel(),
    });
    try {
      await waitReady(admin, deadline, material !== null);
    } catch (e) {
      admin.close();
      throw cannotConnect(e);
    }
    const metadata = new grpc.Metadata();
    if (opts.apiKey) metadata.set("authorization", `Bearer ${opts.apiKey}`);
    return new FilaClient(admin, service, metadata);
  }

  admin<T>(method: AdminMethod, request: object): Promise<T> {
    return this.#unary(this.#admin, method, request);
  }

  async enqueue(queue: string, headers: Record<string, string>, payload: string): Promise<string> {
    const res = await this.#unary<{ message_id: string }>(this.#service, "Enqueue", {
      queue,
      headers,
      payload: Buffer.from(payload),
    });
    return res.message_id;
  }

  consume(queue: string, maxUnacked: number): grpc.ClientReadableStream<ConsumeResponse> {
    return this.#service.Consume({ queue, max_unacked: maxUnacked }, this.#metadata);
  }

  async ack(queue: string, messageId: string): Promise<void> {
    await this.#unary(this.#service, "Ack", { queue, message_id: messageId });
  }

  close(): void {
    this.#admin.close();
  }

  #unary<T>(client: DynamicClient, method: string, request: object): Promise<T> {
    return new Promise((resolve, reject) =>
      client[method](
        request,
        this.#metadata,
        (err: grpc.ServiceError | null, res: T) => err ? reject(err) : resolve(res),
      )
    );
  }
}
