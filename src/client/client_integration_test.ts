// The SDK against real brokers (the conformance harness starts them) and against small in-process
// gRPC servers that stand in for a broker with and without the batch RPCs.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";
import {
  type Broker,
  fileBroker,
  scenario,
  sharedBroker,
  sleep,
  startBroker,
  uniq,
  UUIDV7_RE,
  waitFor,
} from "../../conformance/harness.ts";
import {
  AlreadyExistsError,
  type Delivery,
  FilaClient,
  InvalidArgumentError,
  NotFoundError,
  type ReconnectInfo,
  UnauthenticatedError,
} from "../../mod.ts";

const clients: FilaClient[] = [];

/** A client closed after the file (scenarios may also close it themselves). */
async function connect(addr: string, opts: Parameters<typeof FilaClient.connect>[1] = {}) {
  const c = await FilaClient.connect(addr, {
    reconnect: { initialMs: 50, maxMs: 500 },
    ...opts,
  });
  clients.push(c);
  return c;
}

Deno.test.afterAll(async () => {
  for (const c of clients) await c.close();
});

async function shared(): Promise<FilaClient> {
  const { addr } = await sharedBroker();
  return connect(addr);
}

// ---------------------------------------------------------------------------------------------
// Stand-in brokers: FilaService with or without the batch RPCs, recording what they receive.

const PROTO_DIR = fileURLToPath(new URL("../../proto/", import.meta.url));
const definition = protoLoader.loadSync(["fila/v1/service.proto"], {
  includeDirs: [PROTO_DIR],
  keepCase: true,
  longs: Number,
  defaults: true,
});

interface Recorder {
  unary: Record<string, number>;
  /** Item counts of each batch request, per RPC. */
  batches: Record<string, number[]>;
}

type Call = grpc.ServerUnaryCall<Record<string, unknown>, unknown>;
type Done = grpc.sendUnaryData<unknown>;

async function standIn(withBatch: boolean): Promise<{ addr: string; rec: Recorder; stop(): void }> {
  const rec: Recorder = { unary: {}, batches: {} };
  let seq = 0;
  const count = (name: string) => rec.unary[name] = (rec.unary[name] ?? 0) + 1;
  const enqueueResult = (queue: string) =>
    queue === "missing"
      ? { error: { code: 5, message: 'queue "missing" not found' } }
      : { message_id: `id-${++seq}` };
  const handlers: grpc.UntypedServiceImplementation = {
    Enqueue: (call: Call, done: Done) => {
      count("Enqueue");
      if (call.request.queue === "missing") {
        return done({ code: 5, details: 'queue "missing" not found' });
      }
      done(null, { message_id: `id-${++seq}` });
    },
    Ack: (_call: Call, done: Done) => {
      count("Ack");
      done(null, {});
    },
  };
  if (withBatch) {
    handlers.BatchEnqueue = (call: Call, done: Done) => {
      const items = call.request.items as { queue: string }[];
      (rec.batches.BatchEnqueue ??= []).push(items.length);
      done(null, { results: items.map((it) => enqueueResult(it.queue)) });
    };
    handlers.BatchAck = (call: Call, done: Done) => {
      const items = call.request.items as unknown[];
      (rec.batches.BatchAck ??= []).push(items.length);
      done(null, { results: items.map(() => ({})) });
    };
  }
  const server = new grpc.Server();
  const svc = definition["fila.v1.FilaService"] as grpc.ServiceDefinition;
  server.addService(svc, handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (e, p) => e ? reject(e) : resolve(p),
    )
  );
  return { addr: `127.0.0.1:${port}`, rec, stop: () => server.forceShutdown() };
}

scenario("SDK batching: a burst of enqueues shares BatchEnqueue requests", async () => {
  const s = await standIn(true);
  try {
    const c = await connect(s.addr);
    const queues = Array.from({ length: 50 }, (_, i) => i === 7 ? "missing" : "q");
    const results = await Promise.allSettled(queues.map((q, i) => c.enqueue(q, {}, `m${i}`)));
    assert.deepEqual(s.rec.batches.BatchEnqueue, [50], "one request for the burst");
    assert.equal(s.rec.unary.Enqueue, undefined);
    const ids = results.filter((r) => r.status === "fulfilled").map((r) => r.value);
    assert.equal(new Set(ids).size, 49, "every caller gets its own id");
    const failed = results[7];
    assert.ok(failed.status === "rejected" && failed.reason instanceof NotFoundError);
    assert.equal(failed.reason.message, 'queue "missing" not found');
    // A lone call goes out as a unary Enqueue.
    await c.enqueue("q", {}, "alone");
    assert.equal(s.rec.unary.Enqueue, 1);
    await Promise.all(Array.from({ length: 10 }, (_, i) => c.ack("q", `id-${i}`)));
    assert.deepEqual(s.rec.batches.BatchAck, [10]);
    // Explicit batches are split by maxItems and keep their order.
    const c2 = await connect(s.addr, { batching: { maxItems: 4 } });
    const r = await c2.batchEnqueue(Array.from({ length: 10 }, () => ({ queue: "q" })));
    assert.deepEqual(s.rec.batches.BatchEnqueue, [50, 4, 4, 2]);
    assert.ok(r.every((x) => x.ok));
  } finally {
    s.stop();
  }
});

scenario(
  "SDK batching: falls back to unary calls when the broker lacks the batch RPCs",
  async () => {
    const s = await standIn(false);
    try {
      const c = await connect(s.addr);
      const ids = await Promise.all(Array.from({ length: 20 }, () => c.enqueue("q", {}, "x")));
      assert.equal(new Set(ids).size, 20);
      assert.equal(s.rec.unary.Enqueue, 20);
      await Promise.all(Array.from({ length: 5 }, () => c.enqueue("q", {}, "x")));
      assert.equal(s.rec.unary.Enqueue, 25, "BatchEnqueue is not tried again");
      const r = await c.batchEnqueue([{ queue: "q" }, { queue: "missing" }, { queue: "q" }]);
      assert.deepEqual(r.map((x) => x.ok), [true, false, true]);
      assert.ok(!r[1].ok && r[1].error instanceof NotFoundError);
      await Promise.all(Array.from({ length: 6 }, (_, i) => c.ack("q", `id-${i}`)));
      assert.equal(s.rec.unary.Ack, 6);
    } finally {
      s.stop();
    }
  },
);

// ---------------------------------------------------------------------------------------------
// Against the broker

scenario("SDK produce, consume and ack round trip with typed errors", async () => {
  const c = await shared();
  const q = uniq("sdk");
  await c.createQueue(q);
  const id = await c.enqueue(q, { tenant: "acme" }, "hello");
  assert.match(id, UUIDV7_RE);
  const consumer = c.consume(q, { maxInFlight: 4 });
  const { value: m } = await consumer.next();
  assert.ok(m);
  assert.equal(m.id, id);
  assert.equal(m.text(), "hello");
  assert.deepEqual(m.headers, { tenant: "acme" });
  assert.equal(m.queue, q);
  assert.equal(m.attemptCount, 0);
  await m.ack();
  await assert.rejects(c.ack(q, id), NotFoundError);
  await assert.rejects(c.ack(q, "abc"), InvalidArgumentError);
  await assert.rejects(c.createQueue(q), AlreadyExistsError);
  await assert.rejects(c.enqueue(uniq("nope"), {}, "x"), NotFoundError);
  await assert.rejects(c.getStats(""), (e) => e instanceof InvalidArgumentError && e.code === 3);
  await consumer.close();
});

scenario("SDK back-pressure: maxInFlight bounds unacked deliveries", async () => {
  const c = await shared();
  const q = uniq("sdk-bp");
  await c.createQueue(q);
  await Promise.all(Array.from({ length: 10 }, (_, i) => c.enqueue(q, {}, `m${i}`)));
  const consumer = c.consume(q, { maxInFlight: 3 });
  const got: Delivery[] = [];
  for (let i = 0; i < 3; i++) got.push((await consumer.next()).value!);
  const fourth = consumer.next();
  const early = await Promise.race([fourth, sleep(300).then(() => "nothing")]);
  assert.equal(early, "nothing", "no fourth message while three are unacked");
  assert.equal((await c.getStats(q)).inFlight, 3);
  await got[0].ack();
  assert.ok((await fourth).value, "one more after an ack");
  await consumer.close();
  await waitFor(() => c.getStats(q), (s) => s.inFlight === 0, 2000, "leases released on close");
});

scenario("SDK batched delivery: every message once, within the credit", async () => {
  const c = await shared();
  const q = uniq("sdk-bd");
  await c.createQueue(q);
  const ids = await Promise.all(Array.from({ length: 300 }, (_, i) => c.enqueue(q, {}, `m${i}`)));
  const seen: string[] = [];
  for await (const m of c.consume(q, { maxInFlight: 50, batchSize: 20 })) {
    seen.push(m.id);
    m.ack().catch(() => {}); // closing the consumer waits for these
    if (seen.length === 300) break;
  }
  assert.deepEqual(seen, ids, "one key: enqueue order");
  const s = await c.getStats(q);
  assert.deepEqual([s.depth, s.inFlight], [0, 0]);
});

scenario("SDK work(): acks on success, nacks with the thrown error's message", async () => {
  const c = await shared();
  const q = uniq("sdk-work");
  await c.createQueue(q, {
    onFailureScript: `function on_failure(msg)
      if msg.error == "bad input: 42" then return { action = "dlq" } end
      return { action = "retry" }
    end`,
  });
  const okIds = await Promise.all(Array.from({ length: 20 }, (_, i) => c.enqueue(q, {}, `ok${i}`)));
  const badId = await c.enqueue(q, {}, "bad");
  const handled = new Set<string>();
  const worker = c.work(q, async (m) => {
    await sleep(5);
    handled.add(m.id);
    if (m.text() === "bad") throw new Error("bad input: 42");
  }, { concurrency: 4 });
  await waitFor(() => worker.acked + worker.nacked, (n) => n === 21, 5000, "21 settled");
  await worker.stop();
  assert.equal(worker.acked, 20);
  assert.equal(worker.nacked, 1);
  for (const id of okIds) assert.ok(handled.has(id));
  const dlq = c.consume(`${q}.dlq`);
  const { value: dead } = await dlq.next();
  assert.equal(dead!.id, badId);
  assert.equal(dead!.attemptCount, 1);
  await dead!.ack();
  await dlq.close();
});

scenario("SDK admin: queues, stats, config, redrive, API keys and ACLs", async () => {
  const c = await shared();
  const q = uniq("sdk-admin");
  await c.createQueue(q, { fairnessKeyHeader: "tenant", visibilityTimeoutMs: 5000 });
  const names = (await c.listQueues()).map((x) => x.name);
  assert.ok(names.includes(q) && names.includes(`${q}.dlq`));
  await c.enqueue(q, { tenant: "a" }, "1");
  await c.enqueue(q, { tenant: "b" }, "2");
  const s = await c.getStats(q);
  assert.equal(s.pending, 2);
  assert.deepEqual(s.perKeyStats.map((k) => k.key).sort(), ["a", "b"]);

  const prefix = uniq("cfg") + ".";
  await c.setConfig(prefix + "x", "1");
  await c.setConfig(prefix + "y", "2");
  assert.equal(await c.getConfig(prefix + "x"), "1");
  assert.deepEqual(await c.listConfig(prefix), [
    { key: prefix + "x", value: "1" },
    { key: prefix + "y", value: "2" },
  ]);
  await c.setConfig(prefix + "x", "");
  assert.equal(await c.getConfig(prefix + "x"), "");

  await c.enqueue(`${q}.dlq`, {}, "dead");
  assert.equal(await c.redrive(`${q}.dlq`), 1);
  assert.equal((await c.getStats(q)).pending, 3);

  const key = await c.createApiKey(uniq("svc"));
  assert.match(key.key, /^[0-9a-f]{32}$/);
  await c.setAcl(key.keyId, ["produce:orders", { kind: "consume", pattern: "orders.*" }]);
  const acl = await c.getAcl(key.keyId);
  assert.deepEqual(acl.permissions, [
    { kind: "produce", pattern: "orders" },
    { kind: "consume", pattern: "orders.*" },
  ]);
  assert.ok((await c.listApiKeys()).some((k) => k.keyId === key.keyId));
  await c.revokeApiKey(key.keyId);
  await assert.rejects(c.revokeApiKey(key.keyId), NotFoundError);

  await c.deleteQueue(q);
  await assert.rejects(c.getStats(q), NotFoundError);
});

// ---------------------------------------------------------------------------------------------
// Restarts (a dedicated broker with authentication, so API keys travel on streams too)

const API_KEY = "sdk-test-bootstrap-key";
function restartBroker(): Promise<Broker> {
  return fileBroker("auth", { toml: `[auth]\nbootstrap_apikey = "${API_KEY}"` });
}

scenario("SDK apiKey: sent on every call; a missing key is UnauthenticatedError", async () => {
  const b = await restartBroker();
  const anon = await connect(b.addr);
  await assert.rejects(anon.listQueues(), UnauthenticatedError);
  const consumer = anon.consume(uniq("x"));
  await assert.rejects(consumer.next(), UnauthenticatedError);
  const c = await connect(b.addr, { apiKey: API_KEY });
  const q = uniq("auth");
  await c.createQueue(q);
  await c.enqueue(q, {}, "x");
  const { value } = await c.consume(q).next();
  assert.equal(value!.text(), "x");
}, { needsProcess: true });

scenario(
  "SDK acceptance: a worker survives kill -9 of the broker and every message is acked",
  async () => {
    const b = await restartBroker();
    const c = await connect(b.addr, { apiKey: API_KEY });
    const q = uniq("crash");
    await c.createQueue(q, { visibilityTimeoutMs: 1000 });
    const total = 30;
    await Promise.all(Array.from({ length: total }, (_, i) => c.enqueue(q, {}, `m${i}`)));
    const attempts = new Map<string, number[]>();
    const reconnects: ReconnectInfo[] = [];
    let handled = 0;
    const ackErrors: unknown[] = [];
    let killed!: () => void;
    const whenKilled = new Promise<void>((r) => killed = r);
    const worker = c.work(q, async (m) => {
      attempts.set(m.id, [...attempts.get(m.id) ?? [], m.attemptCount]);
      if (++handled === 10) {
        await b.kill("SIGKILL");
        killed();
      }
      await sleep(10);
    }, {
      concurrency: 3,
      // Prefetch: at the kill, messages sit leased in the consumer's buffer, never handled.
      maxInFlight: 6,
      onReconnect: (i) => reconnects.push(i),
      onError: (e) => ackErrors.push(e),
    });
    await whenKilled;
    await b.start();
    // Done = every message handled and nothing left in the queue. An ack whose connection
    // dropped under it has an unknown outcome (it may have been applied), so worker.acked alone
    // can stay below the total.
    await waitFor(
      async () => ({ handled: attempts.size, stats: await c.getStats(q) }),
      (v) => v.handled === total && v.stats.depth === 0 && v.stats.inFlight === 0,
      15_000,
      `all ${total} messages handled and acked`,
    );
    await worker.stop();
    assert.ok(reconnects.length >= 1, "the consume stream was reopened");
    const redelivered = [...attempts.values()].filter((a) => a.some((n) => n >= 1));
    assert.ok(redelivered.length >= 1, "messages leased at the kill came back (attempt_count 1)");
    assert.ok(worker.acked + ackErrors.length >= total, "every handled message was acked");
    const s = await c.getStats(q);
    assert.deepEqual([s.depth, s.inFlight, s.pending], [0, 0, 0]);
  },
  { needsProcess: true },
);

scenario("SDK a consumer carries on across a graceful broker restart", async () => {
  const b = await restartBroker();
  const c = await connect(b.addr, { apiKey: API_KEY });
  const q = uniq("graceful");
  await c.createQueue(q);
  const reconnects: ReconnectInfo[] = [];
  const consumer = c.consume(q, { onReconnect: (i) => reconnects.push(i) });
  await c.enqueue(q, {}, "before");
  const first = (await consumer.next()).value!;
  await first.ack();
  await b.restart({ graceful: true });
  await c.enqueue(q, {}, "after");
  const second = (await consumer.next()).value!;
  assert.equal(second.text(), "after");
  await second.ack();
  assert.equal(reconnects[0]?.error.details, "broker is shutting down");
  await consumer.close();
}, { needsProcess: true });

// ---------------------------------------------------------------------------------------------
// TLS (mTLS with a test CA)

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}

const OPENSSL_MISSING = (() => {
  try {
    new Deno.Command("openssl", { args: ["version"], stdout: "null" }).outputSync();
    return undefined;
  } catch {
    return "openssl not found";
  }
})();

scenario("SDK TLS: CA, client certificate and an IP address target", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fila-sdk-tls-" });
  try {
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    await openssl(
      dir,
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      "/CN=sdk test ca",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign",
    );
    for (
      const [name, ext] of [
        ["server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"],
        ["client", "extendedKeyUsage=clientAuth\n"],
      ]
    ) {
      await Deno.writeTextFile(`${dir}/${name}.ext`, ext);
      await openssl(
        dir,
        "req",
        ...ec,
        "-keyout",
        `${name}.key`,
        "-out",
        `${name}.csr`,
        "-subj",
        `/CN=${name}`,
      );
      await openssl(
        dir,
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        `${name}.pem`,
        "-days",
        "2",
        "-extfile",
        `${name}.ext`,
      );
    }
    await using b = await startBroker({
      toml: `[tls]\ncert_file = "${dir}/server.pem"\nkey_file = "${dir}/server.key"\n` +
        `ca_file = "${dir}/ca.pem"`,
      readyProbe: "tcp",
    });
    const c = await connect(b.addr, {
      tls: { caFile: `${dir}/ca.pem`, certFile: `${dir}/client.pem`, keyFile: `${dir}/client.key` },
    });
    const q = uniq("tls");
    await c.createQueue(q);
    const id = await c.enqueue(q, {}, "secret");
    const consumer = c.consume(q);
    const m = (await consumer.next()).value!;
    assert.equal(m.id, id);
    await m.ack();
    await consumer.close();
    await c.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { needsProcess: true, ignore: OPENSSL_MISSING });
