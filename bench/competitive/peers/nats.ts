/**
 * NATS server (Debian `nats-server`) with JetStream file storage (config file), a work-queue
 * stream per queue, a durable pull consumer with explicit ack. Producing = JetStream publish
 * (each awaits its PubAck; a batch is that many publishes pipelined, JetStream 2.9 has no batch
 * publish); consuming = consumer.consume() with m.ack() per message.
 */
import {
  type Adapter,
  commandOutput,
  freePort,
  npm,
  type Peer,
  type RunningPeer,
  runningPeer,
  ServerProc,
  stampOf,
  stopAndRemove,
} from "../peer.ts";

export const NATS = "nats@2.29.3";

export const nats: Peer = {
  name: "NATS JetStream",
  version: "",
  durability:
    "JetStream file storage, explicit ack: the PubAck is sent once the message is written to " +
    "the stream's block file (OS page cache); the file store syncs on a background timer, not " +
    "per message (bench:fsync sees no sync call while acknowledged publishes go by), so " +
    "acknowledged messages survive a process crash but not a power failure before the sync.",
  async start(): Promise<RunningPeer> {
    const v = await commandOutput("nats-server", ["--version"]);
    this.version = /v?([\d.]+)/.exec(v)?.[1] ?? v.trim();
    const dir = await Deno.makeTempDir({ prefix: "bench-nats-" });
    const port = freePort();
    await Deno.writeTextFile(
      `${dir}/nats.conf`,
      `listen: 127.0.0.1:${port}\njetstream {\n  store_dir: "${dir}/js"\n}\n`,
    );
    const proc = new ServerProc("nats-server", ["-c", `${dir}/nats.conf`], {});
    return runningPeer({
      proc,
      port,
      startupMs: 15_000,
      stopServer: () => stopAndRemove(proc, dir),
      connect: () => connectNats(port, () => [proc.pid]),
    });
  },
  connect: async (info) => (await connectNats(info.port, () => [])).labeled,
};

async function connectNats(port: number, pids: () => number[]) {
  const N = await npm(NATS);
  const nc = await N.connect({ servers: `127.0.0.1:${port}` });
  const jsm = await nc.jetstreamManager();
  const js = nc.jetstream();
  const subject = (q: string) => `bench.${q}`;
  const consumers = new Set<{ stop(): Promise<void> }>();
  const adapter: Adapter = {
    pids,
    createQueue: async (q) => {
      await jsm.streams.add({
        name: q,
        subjects: [subject(q)],
        storage: N.StorageType.File,
        retention: N.RetentionPolicy.Workqueue,
        num_replicas: 1,
      });
      await jsm.consumers.add(q, {
        durable_name: "bench",
        ack_policy: N.AckPolicy.Explicit,
        max_ack_pending: 4096,
      });
    },
    deleteQueue: async (q) => void await jsm.streams.delete(q),
    sendOne: async (q, p) => void await js.publish(subject(q), p),
    sendBatch: async (q, ps) => {
      const s = subject(q);
      await Promise.all(ps.map((p) => js.publish(s, p)));
    },
    consume: async (q, onMessages) => {
      const c = await js.consumers.get(q, "bench");
      const it = await c.consume({ max_messages: 1024 });
      const loop = (async () => {
        let batch: number[] = [];
        let scheduled = false;
        for await (const m of it) {
          m.ack();
          batch.push(stampOf(m.data));
          if (!scheduled) {
            scheduled = true;
            setTimeout(() => {
              scheduled = false;
              const b = batch;
              batch = [];
              onMessages(b);
            }, 0);
          }
        }
      })();
      const h = {
        stop: async () => {
          await it.close();
          await loop.catch(() => {});
          consumers.delete(h);
        },
      };
      consumers.add(h);
      return h;
    },
    close: async () => void await nc.drain().catch(() => {}),
  };
  return {
    labeled: [{ label: "NATS JetStream", adapter }],
    closeAll: async () => {
      for (const c of consumers) await c.stop().catch(() => {});
      await nc.drain().catch(() => {});
    },
  };
}
