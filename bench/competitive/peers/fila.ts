/** Fila itself, started from this checkout (fresh data directory), through the bench client. */
import { BenchClient } from "../../lib/client.ts";
import { freshBroker } from "../../lib/broker.ts";
import { batchOf, enqueueRequest, utf8 } from "../../lib/wire.ts";
import type { Adapter, Consumer, Labeled, Peer, PeerInfo, RunningPeer } from "../peer.ts";

function adapterFor(addr: string, pids: () => number[]): Adapter & { closeAll(): void } {
  const clients = [new BenchClient(addr), new BenchClient(addr)];
  let next = 0;
  const pick = () => clients[next++ % clients.length];
  const consumers = new Set<BenchClient>();
  return {
    pids,
    createQueue: async (q) => void await clients[0].createQueue(q),
    deleteQueue: async (q) => void await clients[0].deleteQueue(q),
    sendOne: async (q, p) => void await pick().call("Enqueue", enqueueRequest(q, {}, p)),
    sendBatch: async (q, ps) => {
      await pick().batchEnqueue(batchOf(ps.map((p) => enqueueRequest(q, {}, p))));
    },
    consume(q, onMessages): Promise<Consumer> {
      const c = new BenchClient(addr);
      consumers.add(c);
      const qb = utf8(q);
      // Like the other adapters: a message counts once delivered and its ack sent (the
      // BatchAck's reply, a committed ack, is not awaited; max_unacked bounds what is open).
      const h = c.consume(q, { maxUnacked: 4096, maxBatch: 256 }, (ms) => {
        c.batchAck(qb, ms.map((m) => m.id)).catch((e) =>
          console.error("fila BatchAck:", e.message)
        );
        onMessages(ms.map((m) => m.stamp));
      });
      return Promise.resolve({
        stop: () => {
          h.cancel();
          c.close();
          consumers.delete(c);
          return Promise.resolve();
        },
      });
    },
    close() {
      this.closeAll();
      return Promise.resolve();
    },
    closeAll() {
      for (const c of [...clients, ...consumers]) c.close();
    },
  };
}

export const fila: Peer = {
  name: "Fila",
  version: `this checkout, Deno ${Deno.version.deno}`,
  durability:
    "Enqueue / BatchEnqueue / Ack / BatchAck are answered after their Deno KV (SQLite, WAL) " +
    "commit, which fsyncs the WAL (SQLite's default synchronous=FULL; bench:fsync sees one " +
    "fsync per sequential enqueue); group commit shares one fsync between concurrent requests.",
  async start(): Promise<RunningPeer> {
    const b = await freshBroker();
    const adapter = adapterFor(b.addr, () => b.proc ? [b.proc.pid] : []);
    return {
      info: { addr: b.addr },
      adapters: [{ label: "Fila", adapter }],
      stop: async () => {
        adapter.closeAll();
        await b.stop();
      },
    };
  },
  connect(info: PeerInfo): Promise<Labeled[]> {
    return Promise.resolve([{ label: "Fila", adapter: adapterFor(info.addr, () => []) }]);
  },
};
