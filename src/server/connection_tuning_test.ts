import assert from "node:assert/strict";
import net from "node:net";
import { Buffer } from "node:buffer";
import process from "node:process";
import http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { createLogger } from "../core/log.ts";
import {
  coalesceWrites,
  CONNECTION_WINDOW_BYTES,
  type CorkableSocket,
  STREAM_WINDOW_BYTES,
  tuneConnections,
  widenFlowControl,
} from "./connection_tuning.ts";

const nextTurn = () => new Promise((r) => setTimeout(r, 0));

Deno.test("coalesceWrites corks at the first write of a turn and uncorks after its ticks", async () => {
  const log: string[] = [];
  const socket: CorkableSocket = {
    write: ((chunk: string) => {
      log.push(`write ${chunk}`);
      return true;
    }) as CorkableSocket["write"],
    cork: () => log.push("cork"),
    uncork: () => log.push("uncork"),
  };
  coalesceWrites(socket);
  const w = socket.write as unknown as (chunk: string) => boolean;
  assert.equal(w("a"), true);
  w("b");
  await nextTurn();
  assert.deepEqual(log, ["cork", "write a", "write b", "uncork"]);
  log.length = 0;
  w("c");
  await nextTurn();
  assert.deepEqual(log, ["cork", "write c", "uncork"], "a later turn corks again");
});

Deno.test("coalesceWrites: frames written in one turn leave a TCP socket as one write", async () => {
  const received: Buffer[] = [];
  let writes = 0;
  const serverSide = Promise.withResolvers<net.Socket>();
  const server = net.createServer((s) => serverSide.resolve(s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const client = net.connect(port, "127.0.0.1");
  client.on("data", (b: Buffer) => received.push(b));
  const s = await serverSide.promise;
  // Count what reaches the stream implementation: one call per syscall-level write.
  type Impl = { _write: (...a: unknown[]) => void; _writev?: (...a: unknown[]) => void };
  const impl = s as unknown as Impl;
  const write1 = impl._write.bind(s);
  impl._write = (...a) => (writes++, write1(...a));
  if (impl._writev) {
    const writev = impl._writev.bind(s);
    impl._writev = (...a) => (writes++, writev(...a));
  }
  coalesceWrites(s as unknown as CorkableSocket);
  s.write(Buffer.from("head|"));
  process.nextTick(() => s.write(Buffer.from("data|")));
  s.write(Buffer.from("trailers"));
  const all = "head|trailersdata|";
  while (Buffer.concat(received).length < all.length) await nextTurn();
  assert.equal(Buffer.concat(received).toString(), all);
  assert.equal(writes, 1, "three frames of one turn, one write");
  client.destroy();
  s.destroy();
  await new Promise((r) => server.close(r));
});

Deno.test("tuneConnections: accepted connections get wide HTTP/2 receive windows", async () => {
  const server = new grpc.Server();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (e, p) => e ? reject(e) : resolve(p),
    )
  );
  tuneConnections(server, createLogger("error"));
  const client = http2.connect(`http://127.0.0.1:${port}`);
  try {
    // The broker's SETTINGS (stream window) and WINDOW_UPDATE (connection window) follow its
    // first SETTINGS frame; wait until both are seen.
    const deadline = Date.now() + 5000;
    while (
      client.remoteSettings.initialWindowSize !== STREAM_WINDOW_BYTES ||
      (client.state.remoteWindowSize ?? 0) < CONNECTION_WINDOW_BYTES
    ) {
      assert.ok(Date.now() < deadline, `windows not widened: ${JSON.stringify(client.state)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    client.close();
    server.forceShutdown();
  }
});

Deno.test("widenFlowControl leaves an ended session alone", () => {
  const ended = {
    setLocalWindowSize: () => {
      throw new Error("ERR_HTTP2_INVALID_SESSION");
    },
    settings: () => {
      throw new Error("ERR_HTTP2_INVALID_SESSION");
    },
  } as unknown as http2.ServerHttp2Session;
  widenFlowControl(ended);
});
