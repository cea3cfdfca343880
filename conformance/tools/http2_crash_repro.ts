// Standalone reproduction of a server crash found by the conformance kit (not a test).
//
//   deno run --allow-all conformance/tools/http2_crash_repro.ts            # minimal grpc-js server
//   deno run --allow-all conformance/tools/http2_crash_repro.ts 127.0.0.1:5555   # a running broker
//
// Loop: open a new client connection, enqueue one small message, open Consume, receive the
// message, cancel the stream and close the connection at once; check that the server still
// answers. Under Deno 2.9.6 a plain @grpc/grpc-js server (no broker code) aborts after some tens
// of iterations with
//   nghttp2_session.c:2402: find_stream_on_goaway_func: Assertion `stream->closed_next == NULL'
// (sometimes a segfault). The broker crashes the same way; bigger messages (~4 MiB) make it
// likelier on the first connection of a process.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";
import { FilaClient } from "../client.ts";

const PROTO_ROOT = fileURLToPath(new URL("../../proto/", import.meta.url));

function serveMinimal(addr: string) {
  const def = protoLoader.loadSync(["fila/v1/service.proto"], {
    keepCase: true,
    longs: Number,
    defaults: true,
    oneofs: true,
    includeDirs: [PROTO_ROOT],
  });
  const svc = def["fila.v1.FilaService"] as protoLoader.ServiceDefinition;
  const sizes = new Map<string, number>();
  const server = new grpc.Server();
  server.addService(svc, {
    Enqueue: (
      call: grpc.ServerUnaryCall<{ queue: string; payload: Uint8Array }, unknown>,
      cb: grpc.sendUnaryData<unknown>,
    ) => {
      sizes.set(call.request.queue, call.request.payload.length);
      cb(null, { message_id: "0190f0e0-d0c0-7b0a-9f8e-7d6c5b4a3928" });
    },
    Consume: (call: grpc.ServerWritableStream<{ queue: string }, unknown>) => {
      const n = sizes.get(call.request.queue) ?? 0;
      call.write({ message: { id: "m", payload: new Uint8Array(n), metadata: { queue_id: "q" } } });
      call.on("cancelled", () => {});
    },
    Ack: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {}),
    Nack: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {}),
  });
  server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (e) => {
    if (e) throw e;
    console.log("minimal server listening on " + addr);
  });
}

async function hammer(addr: string, iterations: number): Promise<number | null> {
  for (let i = 0; i < iterations; i++) {
    const conn = new FilaClient(addr);
    const q = `repro-${i}`;
    await conn.createQueue(q).catch(() => {}); // the minimal server has no FilaAdmin
    await conn.enqueue(q, { payload: "x" });
    const c = conn.consume(q);
    await c.expectNext(5000);
    c.cancel();
    conn.close();
    await new Promise((r) => setTimeout(r, 50));
    const probe = new FilaClient(addr);
    try {
      await probe.enqueue(q, { payload: "probe" }, { deadlineMs: 2000 });
    } catch {
      return i + 1;
    } finally {
      probe.close();
    }
  }
  return null;
}

if (Deno.args[0] === "--serve") {
  serveMinimal(Deno.args[1]);
} else {
  let addr = Deno.args[0];
  let child: Deno.ChildProcess | null = null;
  if (!addr) {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    addr = `127.0.0.1:${(l.addr as Deno.NetAddr).port}`;
    l.close();
    child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", fileURLToPath(import.meta.url), "--serve", addr],
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    await new Promise((r) => setTimeout(r, 1500));
  }
  const died = await hammer(addr, 300);
  console.log(
    died === null ? "server survived 300 iterations" : `server died at iteration ${died}`,
  );
  if (child) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
  }
  Deno.exit(died === null ? 0 : 1);
}
