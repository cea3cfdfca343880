import assert from "node:assert/strict";
import net from "node:net";
import { Buffer } from "node:buffer";
import process from "node:process";
import { coalesceWrites, type CorkableSocket } from "./socket_tuning.ts";

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
