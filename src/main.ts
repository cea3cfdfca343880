/**
 * The broker process (operations.md §1): config → storage → Lua → scheduler → gRPC server →
 * recovery → serve; SIGTERM/SIGINT shut down gracefully. Takes no arguments.
 */
import { join } from "node:path";
import { Authenticator } from "./auth/authenticator.ts";
import { ApiKeyAdmin } from "./auth/key_admin.ts";
import { ConfigError, type FilaConfig, loadConfig } from "./config/mod.ts";
import { systemClock } from "./core/clock.ts";
import { createLogger, type Logger } from "./core/log.ts";
import { collectGarbage, trimNativeMemory, tuneNativeMemory } from "./core/native_memory.ts";
import { MemoryReclaimer, processProbes } from "./core/memory_reclaimer.ts";
import { createLuaEngine } from "./lua/mod.ts";
import { startTelemetry } from "./telemetry/mod.ts";
import { Scheduler } from "./scheduler/mod.ts";
import { type RunningServer, type ServerOptions, startServer } from "./server/grpc_server.ts";
import { loadTlsMaterial, TlsConfigError, type TlsMaterial } from "./server/tls.ts";
import { KvApiKeyStore } from "./storage/api_key_store.ts";
import { SegmentStore } from "./storage/segment_store.ts";
import { deliveredSize } from "./wire/delivery.ts";

function die(message: string): never {
  console.error(message);
  Deno.exit(1);
}

async function openStore(dir: string): Promise<SegmentStore> {
  try {
    await Deno.mkdir(dir, { recursive: true });
    return await SegmentStore.open(join(dir, "fila.kv"));
  } catch (e) {
    die(`error: cannot open data directory ${dir}: ${(e as Error).message}`);
  }
}

async function loadTls(config: FilaConfig): Promise<TlsMaterial | undefined> {
  if (!config.tls) return undefined;
  try {
    return await loadTlsMaterial(config.tls);
  } catch (e) {
    if (e instanceof TlsConfigError) die(`error: invalid TLS configuration: ${e.message}`);
    throw e;
  }
}

type Security = Pick<ServerOptions, "authenticator" | "keyAdmin" | "tls" | "instrumentService">;

async function listen(
  config: FilaConfig,
  scheduler: Scheduler,
  security: Security,
  log: Logger,
): Promise<RunningServer> {
  try {
    return await startServer({ scheduler, listenAddr: config.server.listenAddr, log, ...security });
  } catch (e) {
    die(`error: cannot listen on ${config.server.listenAddr}: ${(e as Error).message}`);
  }
}

/** How often the broker checks whether to give memory back after a burst. */
const RECLAIM_CHECK_MS = 2_000;

async function main(): Promise<void> {
  let config: FilaConfig;
  try {
    config = await loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) die(e.message);
    throw e;
  }
  const log = createLogger(config.logLevel);
  const untuned = tuneNativeMemory();
  if (untuned) log.debug("malloc mmap threshold left as is", { reason: untuned });
  for (const w of config.warnings) log.warn(w);
  const telemetry = startTelemetry({ config: config.telemetry, log });

  const store = await openStore(config.dataDir);
  store.onCommit = telemetry.recordCommit;
  const hooks = await createLuaEngine({
    limits: {
      timeoutMs: config.lua.defaultTimeoutMs,
      memoryLimitBytes: config.lua.defaultMemoryLimitBytes,
      breakerThreshold: config.lua.circuitBreakerThreshold,
      breakerCooldownMs: config.lua.circuitBreakerCooldownMs,
    },
    // fila.get sees the runtime config as it is at the call (API keys live elsewhere).
    configLookup: (key) => scheduler.lookupConfig(key),
    onEvent: telemetry.onLuaEvent,
  });
  const scheduler = new Scheduler({
    store,
    hooks,
    quantum: config.scheduler.quantum,
    commandCapacity: config.scheduler.commandChannelCapacity,
    deliveredSize,
    log,
    onFirstDelivery: telemetry.onFirstDelivery,
    payloadBudgetBytes: config.storage.payloadCacheBytes,
  });
  telemetry.observe(scheduler);
  // Key records share the data file but not the message store's commits (decisions.md §i).
  const apiKeys = new KvApiKeyStore(store.kv);
  const authenticator = new Authenticator({
    bootstrapKey: config.auth?.bootstrapApiKey,
    store: apiKeys,
    clock: systemClock,
  });
  const keyAdmin = new ApiKeyAdmin(apiKeys, systemClock, log);
  const tls = await loadTls(config);
  const server = await listen(config, scheduler, {
    authenticator,
    keyAdmin,
    tls,
    instrumentService: (name, impl) => telemetry.instrumentService(name, impl),
  }, log);
  log.info("listening on " + config.server.listenAddr, {
    port: server.port,
    tls: tls !== undefined,
    mtls: tls?.ca !== undefined,
    auth: authenticator.enabled,
  });

  let stopping = false;
  let stopReclaimer = () => {};
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down", { signal });
    stopReclaimer();
    server.health.setServing(false);
    server.health.endWatches();
    apiKeys.close();
    await scheduler.shutdown();
    await server.stop(2_000);
    await telemetry.shutdown();
    Deno.exit(0);
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => void shutdown(signal));
  }

  const started = performance.now();
  await scheduler.start();
  // Before serving, so that no request waits behind this pause.
  const gcStarted = performance.now();
  if (collectGarbage()) {
    trimNativeMemory();
    log.debug("heap compacted after recovery", { ms: Math.round(performance.now() - gcStarted) });
  }
  server.health.setServing(true);
  log.info("recovery finished", { ms: Math.round(performance.now() - started) });
  stopReclaimer = new MemoryReclaimer(processProbes).start(
    RECLAIM_CHECK_MS,
    (r) =>
      log.info("memory given back after a burst", {
        rss_mib_before: Math.round(r.beforeBytes / 1048576),
        rss_mib_after: Math.round(r.afterBytes / 1048576),
        ms: Math.round(r.ms),
      }),
  );
}

if (import.meta.main) await main();
