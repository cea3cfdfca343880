/** The grpc-js server: FilaService, FilaAdmin, health and reflection on one listener. */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import type { Authenticator } from "../auth/authenticator.ts";
import type { ApiKeyAdmin } from "../auth/key_admin.ts";
import type { Logger } from "../core/log.ts";
import type { Scheduler } from "../scheduler/mod.ts";
import { PROTO_DIR, PROTO_FILES } from "../wire/proto.ts";
import { filaAdminHandlers } from "./admin.ts";
import { HealthService } from "./health.ts";
import { type Pipeline, rawServiceDefinition } from "./rpc.ts";
import { filaServiceHandlers } from "./service.ts";
import { tuneConnections } from "./connection_tuning.ts";
import { serverCredentials, type TlsMaterial } from "./tls.ts";

export interface ServerOptions {
  scheduler: Scheduler;
  listenAddr: string;
  log: Logger;
  authenticator: Authenticator;
  keyAdmin: ApiKeyAdmin;
  /** Absent = cleartext HTTP/2. */
  tls?: TlsMaterial;
  /** Wraps a service implementation with tracing (telemetry); absent = unwrapped. */
  instrumentService?: (
    service: string,
    impl: grpc.UntypedServiceImplementation,
  ) => grpc.UntypedServiceImplementation;
}

export interface RunningServer {
  port: number;
  health: HealthService;
  /** Stops accepting calls; waits up to `graceMs` for open calls, then cuts them. */
  stop(graceMs: number): Promise<void>;
}

/** The transport accepts requests above 4 MiB so that the pipeline can answer OUT_OF_RANGE. */
const TRANSPORT_MAX_RECEIVE = 64 * 1024 * 1024;

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { scheduler, log } = options;
  const pipeline: Pipeline = { log, authenticator: options.authenticator };
  // grpc-js logs to stderr on its own; route it through our logger (bind errors are reported
  // by the caller with the exact startup message).
  grpc.setLogger({
    error: (...args: unknown[]) => log.debug("grpc: " + args.join(" ")),
    info: (...args: unknown[]) => log.debug("grpc: " + args.join(" ")),
    debug: (...args: unknown[]) => log.debug("grpc: " + args.join(" ")),
  } as unknown as Console);
  const server = new grpc.Server({
    "grpc.max_receive_message_length": TRANSPORT_MAX_RECEIVE,
    "grpc.max_send_message_length": -1,
    // Dead consumers are found by HTTP/2 PINGs (semantics.md §4.4: closed after 20 s silence).
    "grpc.keepalive_time_ms": 10_000,
    "grpc.keepalive_timeout_ms": 20_000,
    "grpc.keepalive_permit_without_calls": 1,
  });
  const instrument = options.instrumentService ?? ((_name, impl) => impl);
  server.addService(
    rawServiceDefinition("fila.v1.FilaService"),
    instrument("fila.v1.FilaService", filaServiceHandlers(scheduler, pipeline)),
  );
  server.addService(
    rawServiceDefinition("fila.v1.FilaAdmin"),
    instrument("fila.v1.FilaAdmin", filaAdminHandlers(scheduler, options.keyAdmin, pipeline)),
  );
  const health = new HealthService();
  health.addTo(server);
  const descriptors = protoLoader.loadSync(PROTO_FILES, {
    includeDirs: [PROTO_DIR],
    keepCase: true,
  });
  new ReflectionService(descriptors).addToServer(server);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      options.listenAddr,
      serverCredentials(options.tls),
      (err, p) => err ? reject(err) : resolve(p),
    );
  });
  tuneConnections(server, log);
  return {
    port,
    health,
    stop: (graceMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
