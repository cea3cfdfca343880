/**
 * RabbitMQ (Debian `rabbitmq-server`) on loopback, two queue types on one node: a durable
 * classic queue and a quorum queue. Producing = persistent messages (delivery mode 2) on a
 * confirm channel, each send resolved by its publisher confirm (a batch is that many publishes
 * pipelined, resolved when all are confirmed); consuming = basic.consume with prefetch 1000 and
 * manual acks, acked in batches (multiple = true) once per event-loop turn.
 */
import {
  commandOutput,
  freePort,
  type Labeled,
  npm,
  type Peer,
  type RunningPeer,
  runningPeer,
  ServerProc,
  sleep,
  stampOf,
} from "../peer.ts";
import { descendants } from "../../lib/report.ts";
import { Buffer } from "node:buffer";

export const AMQPLIB = "amqplib@0.10.9";
const SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server";

function epmdRunning(): boolean {
  try {
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      try {
        if (Deno.readTextFileSync(`/proc/${e.name}/comm`).trim() === "epmd") return true;
      } catch { /* gone */ }
    }
  } catch { /* no /proc */ }
  return false;
}

function epmdPid(): number | undefined {
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${e.name}/comm`).trim() === "epmd") return Number(e.name);
    } catch { /* gone */ }
  }
  return undefined;
}

export const rabbitmq: Peer = {
  name: "RabbitMQ",
  version: "",
  durability:
    "durable queues, persistent messages, publisher confirms. Classic queue: the confirm is " +
    "sent once the message is written to the message store / queue index and fsynced " +
    "(confirms are batched behind an fsync). Quorum queue: the confirm is sent once the Raft " +
    "log entry is fsynced (single node: by this node).",
  async start(): Promise<RunningPeer> {
    const dir = await Deno.makeTempDir({ prefix: "bench-rabbitmq-" });
    const port = freePort();
    const name = `bench${port}@localhost`;
    await Deno.writeTextFile(
      `${dir}/rabbitmq.conf`,
      `listeners.tcp.default = 127.0.0.1:${port}\nloopback_users = none\n`,
    );
    const hadEpmd = epmdRunning();
    const env = {
      ...Deno.env.toObject(),
      HOME: dir,
      RABBITMQ_NODENAME: name,
      RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
      RABBITMQ_NODE_PORT: String(port),
      RABBITMQ_DIST_PORT: String(freePort()),
      RABBITMQ_MNESIA_BASE: `${dir}/mnesia`,
      RABBITMQ_LOG_BASE: `${dir}/log`,
      RABBITMQ_CONFIG_FILE: `${dir}/rabbitmq`,
      RABBITMQ_ENABLED_PLUGINS_FILE: `${dir}/enabled_plugins`,
      RABBITMQ_PID_FILE: `${dir}/pid`,
    };
    const proc = new ServerProc(SERVER, [], { env });
    const cleanupEpmd = () => {
      if (hadEpmd) return;
      const pid = epmdPid();
      if (pid) {
        try {
          Deno.kill(pid, "SIGTERM");
        } catch { /* gone */ }
      }
    };
    // The Erlang VM runs as a child of the launcher script: stop the VM, then the script.
    const stopServer = async () => {
      const vm = descendants(proc.pid);
      for (const pid of vm) {
        try {
          Deno.kill(pid, "SIGTERM");
        } catch { /* gone */ }
      }
      await proc.stop(30_000);
      for (const pid of vm) {
        try {
          if (Deno.readTextFileSync(`/proc/${pid}/comm`).trim()) Deno.kill(pid, "SIGKILL");
        } catch { /* already gone */ }
      }
      cleanupEpmd();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    };
    return runningPeer({
      proc,
      port,
      startupMs: 60_000,
      stopServer,
      onUp: async () => {
        this.version = /RabbitMQ ([\d.]+)/.exec(proc.output)?.[1] ??
          (await commandOutput("dpkg-query", ["-W", "-f=${Version}", "rabbitmq-server"])).trim();
      },
      connect: () => connectRabbit(port, () => [proc.pid, ...descendants(proc.pid)]),
    });
  },
  connect: async (info) => (await connectRabbit(info.port, () => [])).labeled,
};

async function connectRabbit(port: number, pids: () => number[]) {
  const amqp = await npm(AMQPLIB);
  let conn;
  for (let i = 0;; i++) {
    try {
      conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`, { noDelay: true });
      break;
    } catch (e) {
      if (i > 50) throw e;
      await sleep(200);
    }
  }
  const pub = await conn.createConfirmChannel();
  const admin = await conn.createChannel();
  const consumers = new Set<{ stop(): Promise<void> }>();
  // Writes beyond the socket buffer are queued by amqplib; the driver bounds what is in flight.
  const publish = (q: string, p: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      pub.sendToQueue(q, Buffer.from(p), { persistent: true }, (err: unknown) =>
        err ? reject(err) : resolve());
    });
  const make = (type: "classic" | "quorum"): Labeled => ({
    label: `RabbitMQ ${type}`,
    adapter: {
      pids,
      createQueue: async (q: string) => {
        await admin.assertQueue(q, {
          durable: true,
          arguments: { "x-queue-type": type },
        });
      },
      deleteQueue: async (q: string) => void await admin.deleteQueue(q),
      sendOne: (q: string, p: Uint8Array) => publish(q, p),
      sendBatch: async (q: string, ps: Uint8Array[]) =>
        void await Promise.all(ps.map((p) => publish(q, p))),
      consume: async (q: string, onMessages: (s: number[]) => void) => {
        const ch = await conn.createChannel();
        await ch.prefetch(1000);
        // deno-lint-ignore no-explicit-any
        let last: any = null;
        let stamps: number[] = [];
        let scheduled = false;
        const { consumerTag } = await ch.consume(q, (m: { content: Uint8Array } | null) => {
          if (!m) return;
          last = m;
          stamps.push(stampOf(m.content));
          if (!scheduled) {
            scheduled = true;
            setTimeout(() => {
              scheduled = false;
              ch.ack(last, true);
              const s = stamps;
              stamps = [];
              onMessages(s);
            }, 0);
          }
        }, { noAck: false });
        const h = {
          stop: async () => {
            await ch.cancel(consumerTag).catch(() => {});
            await ch.close().catch(() => {});
            consumers.delete(h);
          },
        };
        consumers.add(h);
        return h;
      },
      close: async () => void await conn.close().catch(() => {}),
    },
  });
  return {
    labeled: [make("classic"), make("quorum")],
    closeAll: async () => {
      for (const c of consumers) await c.stop().catch(() => {});
      await conn.close().catch(() => {});
    },
  };
}
