/**
 * The broker process (operations.md §1): config → storage → Lua → scheduler → gRPC server →
 * recovery → serve; SIGTERM/SIGINT shut down gracefully. Takes no arguments.
 */
import { join } from "node:path";
import { ConfigError, type FilaConfig, loadConfig } from "./config/mod.ts";
import { createLogger, type Logger } from "./core/log.ts";
import { Scheduler } from "./scheduler/mod.ts";
import { type RunningServer, startServer } from "./server/grpc_server.ts";
import { KvStore } from "./storage/kv_store.ts";
import { deliveredSize } from "./wire/delivery.ts";

function die(message: string): never {
  console.error(message);
  Deno.exit(1);
}

async function openStore(dir: string): Promise<KvStore> {
  try {
    await Deno.mkdir(dir, { recursive: true });
    return await KvStore.open(join(dir, "fila.kv"));
  } catch (e) {
    die(`error: cannot open data directory ${dir}: ${(e as Error).message}`);
  }
}

async function listen(
  config: FilaConfig,
  scheduler: Scheduler,
  log: Logger,
): Promise<RunningServer> {
  try {
    return await startServer({ scheduler, listenAddr: config.server.listenAddr, log });
  } catch (e) {
    die(`error: cannot listen on ${config.server.listenAddr}: ${(e as Error).message}`);
  }
}

async function main(): Promise<void> {
  let config: FilaConfig;
  try {
    config = await loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) die(e.message);
    throw e;
  }
  const log = createLogger(config.logLevel);
  for (const w of config.warnings) log.warn(w);

  const store = await openStore(config.dataDir);
  const scheduler = new Scheduler({
    store,
    quantum: config.scheduler.quantum,
    commandCapacity: config.scheduler.commandChannelCapacity,
    deliveredSize,
    log,
  });
  const server = await listen(config, scheduler, log);
  log.info("listening on " + config.server.listenAddr, {
    port: server.port,
    tls: false,
    auth: false,
  });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down", { signal });
    server.health.setServing(false);
    server.health.endWatches();
    await scheduler.shutdown();
    await server.stop(2_000);
    Deno.exit(0);
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => void shutdown(signal));
  }

  const started = performance.now();
  await scheduler.start();
  server.health.setServing(true);
  log.info("recovery finished", { ms: Math.round(performance.now() - started) });
}

if (import.meta.main) await main();
