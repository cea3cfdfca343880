/**
 * Fila TypeScript SDK: a client for the Fila message broker (fila.v1 gRPC API) for Deno and
 * Node.js.
 *
 * @example
 * ```ts
 * import { FilaClient } from "./mod.ts";
 *
 * await using client = await FilaClient.connect("127.0.0.1:5555");
 * await client.createQueue("jobs");
 * await client.enqueue("jobs", { tenant: "acme" }, "hello");
 * const worker = client.work("jobs", (msg) => console.log(msg.text()), { concurrency: 4 });
 * ```
 *
 * @module
 */
export { type ConnectOptions, FilaClient } from "./client.ts";
export {
  type ConsumeOptions,
  Consumer,
  DEFAULT_MAX_IN_FLIGHT,
  Delivery,
  type ReconnectInfo,
} from "./consumer.ts";
export { type Handler, Worker, type WorkOptions } from "./worker.ts";
export { Backoff, type BackoffOptions } from "./backoff.ts";
export { type BatchingOptions } from "./batcher.ts";
export { parseAddress, type TlsOptions } from "./connection.ts";
export {
  AbortedError,
  AlreadyExistsError,
  CancelledError,
  DataLossError,
  DeadlineExceededError,
  errorFromStatus,
  FailedPreconditionError,
  FilaError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  OutOfRangeError,
  PermissionDeniedError,
  ResourceExhaustedError,
  StatusCode,
  statusName,
  UnauthenticatedError,
  UnavailableError,
  UnimplementedError,
  UnknownError,
} from "./errors.ts";
export type {
  Acl,
  ApiKeyInfo,
  ConfigEntry,
  CreateApiKeyOptions,
  CreatedApiKey,
  EnqueueItem,
  EnqueueResult,
  FairnessKeyStats,
  Headers,
  Message,
  Payload,
  Permission,
  QueueConfig,
  QueueInfo,
  Stats,
  ThrottleKeyStats,
} from "./types.ts";
