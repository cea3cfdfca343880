/**
 * Fila TypeScript SDK. See docs/sdk.md.
 *
 * @example
 * ```ts
 * import { FilaClient } from "./mod.ts";
 *
 * await using client = await FilaClient.connect(Deno.env.get("FILA_ADDR") ?? "127.0.0.1:5555");
 * const id = await client.enqueue("jobs", { tenant: "acme" }, "hello");
 * ```
 *
 * @module
 */
export {
  AbortedError,
  type Acl,
  AlreadyExistsError,
  type ApiKeyInfo,
  Backoff,
  type BackoffOptions,
  type BatchingOptions,
  CancelledError,
  type ConfigEntry,
  type ConnectOptions,
  type ConsumeOptions,
  Consumer,
  type CreateApiKeyOptions,
  type CreatedApiKey,
  DataLossError,
  DeadlineExceededError,
  DEFAULT_MAX_IN_FLIGHT,
  Delivery,
  type EnqueueItem,
  type EnqueueResult,
  errorFromStatus,
  FailedPreconditionError,
  type FairnessKeyStats,
  FilaClient,
  FilaError,
  type Handler,
  type Headers,
  InternalError,
  InvalidArgumentError,
  type Message,
  NotFoundError,
  OutOfRangeError,
  parseAddress,
  type Payload,
  type Permission,
  PermissionDeniedError,
  type QueueConfig,
  type QueueInfo,
  type ReconnectInfo,
  ResourceExhaustedError,
  type Stats,
  StatusCode,
  statusName,
  type ThrottleKeyStats,
  type TlsOptions,
  UnauthenticatedError,
  UnavailableError,
  UnimplementedError,
  UnknownError,
  Worker,
  type WorkOptions,
} from "./src/client/mod.ts";
