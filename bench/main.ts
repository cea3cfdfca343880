/**
 * First throughput benchmarks (issue 2): unary Enqueue with 1 and 64 requests in flight, and
 * consume + ack, with 1 KiB payloads, against a broker started from this checkout (or
 * FILA_ADDR). Each figure is the median of RUNS runs with min/max; results go to
 * bench/results/<time>.json and a Markdown table on stdout.
 *
 *   deno task bench            # all workloads, 3 runs each
 *   RUNS=5 deno task bench
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";
import { type Broker, startBroker } from "../conformance/harness.ts";

const RUNS = Number(Deno.env.get("RUNS") ?? 3);
const PAYLOAD = new Uint8Array(1024).fill(120);
const PROTO_DIR = fileURLToPath(new URL("../proto/", import.meta.url));

// deno-lint-ignore no-explicit-any
type Client = any;

function clients(addr: string): { svc: Client; admin: Client } {
  const pkg = protoLoader.loadSync(["fila/v1/service.proto", "fila/v1/admin.proto"], {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: Number,
    defaults: true,
  });
  // deno-lint-ignore no-explicit-any
  const v1 = (grpc.loadPackageDefinition(pkg) as any).fila.v1;
  const creds = grpc.credentials.createInsecure();
  return { svc: new v1.FilaService(addr, creds), admin: new v1.FilaAdmin(addr, creds) };
}

function call<T>(client: Client, method: string, req: object): Promise<T> {
  return new Promise((resolve, reject) =>
    client[method](req, (err: Error | null, res: T) => err ? reject(err) : resolve(res))
  );
}

function progress(label: string, done: number, total: number): void {
  const width = 30;
  const filled = Math.round((done / total) * width);
  const bar = "#".repeat(filled) + ".".repeat(width - filled);
  Deno.stderr.writeSync(
    new TextEncoder().encode(`\r${label.padEnd(28)} [${bar}] ${done}/${total}`),
  );
  if (done === total) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
}

let queueSeq = 0;
async function newQueue(admin: Client): Promise<string> {
  const name = `bench-${Date.now()}-${queueSeq++}`;
  await call(admin, "CreateQueue", { name });
  return name;
}

/** Enqueues `total` messages keeping `inFlight` requests outstanding; returns msgs/s. */
async function enqueueRate(addr: string, inFlight: number, total: number): Promise<number> {
  const { svc, admin } = clients(addr);
  const queue = await newQueue(admin);
  let sent = 0;
  const start = performance.now();
  const worker = async () => {
    while (sent < total) {
      sent++;
      await call(svc, "Enqueue", { queue, headers: {}, payload: PAYLOAD });
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const rate = total / ((performance.now() - start) / 1000);
  await call(admin, "DeleteQueue", { queue });
  svc.close();
  admin.close();
  return rate;
}

/** Pre-fills `total` messages, then one consumer receives and acks them all; msgs/s. */
async function consumeAckRate(addr: string, total: number): Promise<number> {
  const { svc, admin } = clients(addr);
  const queue = await newQueue(admin);
  let filled = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (filled < total) {
      filled++;
      await call(svc, "Enqueue", { queue, headers: {}, payload: PAYLOAD });
    }
  }));
  const start = performance.now();
  let acked = 0;
  await new Promise<void>((resolve, reject) => {
    const stream = svc.Consume({ queue, max_unacked: 256 });
    stream.on("data", (res: { message: { id: string } }) => {
      call(svc, "Ack", { queue, message_id: res.message.id }).then(() => {
        if (++acked === total) {
          stream.cancel();
          resolve();
        }
      }, reject);
    });
    stream.on("error", (e: grpc.ServiceError) => {
      if (e.code !== grpc.status.CANCELLED) reject(e);
    });
  });
  const rate = total / ((performance.now() - start) / 1000);
  await call(admin, "DeleteQueue", { queue });
  svc.close();
  admin.close();
  return rate;
}

interface Figure {
  name: string;
  unit: string;
  runs: number[];
  median: number;
  min: number;
  max: number;
}

function summarize(name: string, unit: string, runs: number[]): Figure {
  const sorted = [...runs].sort((a, b) => a - b);
  return {
    name,
    unit,
    runs,
    median: sorted[Math.floor(sorted.length / 2)],
    min: sorted[0],
    max: sorted[sorted.length - 1],
  };
}

async function commitId(): Promise<string> {
  try {
    const out = await new Deno.Command("git", { args: ["rev-parse", "--short", "HEAD"] }).output();
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return "unknown";
  }
}

async function main(): Promise<void> {
  const external = Deno.env.get("FILA_ADDR");
  let broker: Broker | undefined;
  const addr = external ?? (broker = await startBroker()).addr;
  const workloads: Array<[string, () => Promise<number>]> = [
    ["enqueue unary, 1 in flight", () => enqueueRate(addr, 1, 2_000)],
    ["enqueue unary, 64 in flight", () => enqueueRate(addr, 64, 20_000)],
    ["consume + ack (1 consumer)", () => consumeAckRate(addr, 10_000)],
  ];
  const figures: Figure[] = [];
  try {
    for (const [name, run] of workloads) {
      const runs: number[] = [];
      progress(name, 0, RUNS);
      for (let i = 0; i < RUNS; i++) {
        runs.push(await run());
        progress(name, i + 1, RUNS);
      }
      figures.push(summarize(name, "msg/s", runs));
    }
  } finally {
    await broker?.stop();
  }
  const result = {
    commit: await commitId(),
    date: new Date().toISOString(),
    machine: { cores: navigator.hardwareConcurrency, os: Deno.build.os, deno: Deno.version.deno },
    payloadBytes: PAYLOAD.length,
    figures,
  };
  await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await Deno.writeTextFile(
    new URL(`./results/${result.date.replaceAll(":", "-")}.json`, import.meta.url),
    JSON.stringify(result, null, 2),
  );
  console.log(`| workload (1 KiB payloads) | median | min | max |\n|---|---:|---:|---:|`);
  for (const f of figures) {
    const r = (n: number) => Math.round(n).toLocaleString("en-US");
    console.log(`| ${f.name} | ${r(f.median)} ${f.unit} | ${r(f.min)} | ${r(f.max)} |`);
  }
}

if (import.meta.main) await main();
