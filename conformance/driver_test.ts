// Representative conformance scenarios run THROUGH A DRIVER (conformance/DRIVERS.md), so that an
// SDK is checked against the same spec ids as the broker. FILA_DRIVER selects the drivers: `raw`,
// `ts`, `raw,ts` or the command line of another driver; default: every reference driver. The
// broker is FILA_ADDR or one started for this file.
import assert from "node:assert/strict";
import {
  DriverCallError,
  type DriverMessage,
  DriverProcess,
  type DriverSpec,
  payloadText,
  selectedDrivers,
} from "./drivers/driver.ts";
import { PROMPT_MS, scenario, sharedBroker, sleep, uniq, UUIDV7_RE } from "./harness.ts";

/** Asserts that `p` fails with gRPC status `code` (name) and, when given, exactly `message`. */
async function assertCode(
  p: Promise<unknown>,
  code: string,
  message?: string | RegExp,
): Promise<DriverCallError> {
  try {
    const r = await p;
    throw new assert.AssertionError({
      message: `expected ${code}${message ? ` "${message}"` : ""}, got success ${
        JSON.stringify(r)
      }`,
    });
  } catch (e) {
    if (!(e instanceof DriverCallError)) throw e;
    assert.equal(e.code, code, `expected ${code}, got ${e.code} "${e.details}"`);
    if (typeof message === "string") assert.equal(e.details, message);
    else if (message) assert.match(e.details, message);
    return e;
  }
}

const running = new Map<string, Promise<DriverProcess>>();

/** The driver process of `spec`, started and connected on first use, shared by the file. */
function driver(spec: DriverSpec): Promise<DriverProcess> {
  let p = running.get(spec.name);
  if (!p) {
    p = (async () => {
      const { addr } = await sharedBroker();
      const d = DriverProcess.spawn(spec);
      try {
        await d.hello(addr);
      } catch (e) {
        await d.close();
        throw e;
      }
      return d;
    })();
    running.set(spec.name, p);
  }
  return p;
}

Deno.test.afterAll(async () => {
  for (const p of running.values()) {
    try {
      await (await p).close();
    } catch {
      // failed to start: already reported by the scenarios
    }
  }
});

async function newQueue(
  d: DriverProcess,
  config?: Parameters<DriverProcess["createQueue"]>[1],
): Promise<string> {
  const q = uniq("drv");
  await d.createQueue(q, config);
  return q;
}

async function enqueueN(d: DriverProcess, q: string, n: number, key?: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    ids.push(await d.enqueue(q, key ? { key } : {}, `m${i}`));
  }
  return ids;
}

const ids = (ms: DriverMessage[]) => ms.map((m) => m.id);

function scenarios(spec: DriverSpec): void {
  const t = (name: string, fn: (d: DriverProcess) => Promise<void>) =>
    scenario(`[${spec.name}] ${name}`, async () => {
      const d = await driver(spec);
      try {
        await fn(d);
      } catch (e) {
        const tail = d.stderr().trimEnd().split("\n").slice(-20).join("\n");
        if (tail && e instanceof Error) e.message += `\n--- driver stderr ---\n${tail}`;
        throw e;
      }
    }, { timeoutMs: 30_000 });

  t("LC-01 enqueue returns a UUIDv7 message id", async (d) => {
    const q = await newQueue(d);
    const id = await d.enqueue(q, { test: "ack-flow" }, "hello");
    assert.match(id, UUIDV7_RE);
  });

  t("LC-02 a delivered message carries id, payload, headers and default metadata", async (d) => {
    const q = await newQueue(d);
    const id = await d.enqueue(q, { test: "ack-flow" }, "hello");
    const c = await d.consume(q);
    const m = await c.expectNext(PROMPT_MS, "the message");
    assert.equal(m.id, id);
    assert.equal(payloadText(m), "hello");
    assert.deepEqual(m.headers, { test: "ack-flow" });
    assert.equal(m.queue, q);
    assert.equal(m.fairness_key, "default");
    assert.equal(m.weight, 1);
    assert.deepEqual(m.throttle_keys, []);
    assert.equal(m.attempt_count, 0);
    await c.close();
  });

  t("LC-03 the first Ack is OK and a second Ack is NOT_FOUND", async (d) => {
    const q = await newQueue(d);
    const id = await d.enqueue(q, {}, "x");
    const c = await d.consume(q);
    assert.equal((await c.expectNext(PROMPT_MS)).id, id);
    await d.ack(q, id);
    await assertCode(d.ack(q, id), "NOT_FOUND", `no lease for message ${id} in queue ${q}`);
    await c.close();
  });

  t("LC-04 a nacked message comes back on the same stream with attempt_count + 1", async (d) => {
    const q = await newQueue(d);
    const id = await d.enqueue(q, {}, "x");
    const c = await d.consume(q);
    assert.equal((await c.expectNext(PROMPT_MS)).attempt_count, 0);
    await d.nack(q, id, "transient");
    const m1 = await c.expectNext(PROMPT_MS, "the redelivery after the first Nack");
    assert.equal(m1.id, id);
    assert.equal(m1.attempt_count, 1);
    await d.nack(q, id, "transient");
    const m2 = await c.expectNext(PROMPT_MS, "the redelivery after the second Nack");
    assert.equal(m2.attempt_count, 2);
    await d.ack(q, id);
    await assertCode(
      d.nack(q, id, "late"),
      "NOT_FOUND",
      `no lease for message ${id} in queue ${q}`,
    );
    await c.close();
  });

  t("LC-05 messages enqueued before any consumer all arrive promptly", async (d) => {
    const q = await newQueue(d);
    const sent = await enqueueN(d, q, 5);
    const c = await d.consume(q);
    assert.deepEqual(ids(await c.take(5, PROMPT_MS)).sort(), [...sent].sort());
    await c.close();
  });

  t("LC-06 messages of one fairness key arrive in enqueue order", async (d) => {
    const q = await newQueue(d);
    const sent = await enqueueN(d, q, 10);
    const c = await d.consume(q);
    assert.deepEqual(ids(await c.take(10, PROMPT_MS)), sent);
    await c.close();
  });

  t("LC-15 Enqueue to a missing queue is NOT_FOUND", async (d) => {
    const nope = uniq("nope");
    await assertCode(d.enqueue(nope, {}, "x"), "NOT_FOUND", `queue "${nope}" not found`);
  });

  t("LC-17 a nacked message goes to the tail of its key (nack, attempts)", async (d) => {
    const q = await newQueue(d);
    const [mId, pId] = await enqueueN(d, q, 2);
    const c = await d.consume(q, 1);
    assert.equal((await c.expectNext(PROMPT_MS)).id, mId);
    await d.nack(q, mId, "retry");
    assert.equal((await c.expectNext(PROMPT_MS)).id, pId, "P comes before the retried M");
    await d.ack(q, pId);
    const again = await c.expectNext(PROMPT_MS);
    assert.equal(again.id, mId);
    assert.equal(again.attempt_count, 1);
    await d.ack(q, mId);
    await c.close();
  });

  t("FC-01 consumer(2) gets exactly 2 messages, and one more after an Ack", async (d) => {
    const q = await newQueue(d);
    await enqueueN(d, q, 10);
    const c = await d.consume(q, 2);
    const first = await c.take(2, PROMPT_MS);
    await c.expectNothing(300, "no third message while 2 are held");
    let s = await d.getStats(q);
    assert.equal(s.in_flight, 2);
    assert.equal(s.pending, 8);
    await d.ack(q, first[0].id);
    await c.expectNext(PROMPT_MS, "one more message after the Ack");
    await c.expectNothing(300, "exactly one more message");
    s = await d.getStats(q);
    assert.equal(s.in_flight, 2);
    assert.equal(s.pending, 7);
    await c.close();
  });

  t("FA-02 two keys of weight 1 alternate one by one", async (d) => {
    const q = await newQueue(d, { fairness_key_header: "key", weight_header: "weight" });
    await enqueueN(d, q, 10, "A");
    await enqueueN(d, q, 10, "B");
    const c = await d.consume(q, 1);
    const keys: string[] = [];
    for (let i = 0; i < 20; i++) {
      const m = await c.expectNext(PROMPT_MS, `delivery ${i + 1}`);
      keys.push(m.fairness_key);
      await d.ack(q, m.id);
    }
    assert.deepEqual(keys, Array.from({ length: 10 }, () => ["A", "B"]).flat());
    await c.close();
  });

  t("CF-02 GetConfig of an unset key is empty; set, read back and delete", async (d) => {
    const key = uniq("cfg");
    assert.equal(await d.getConfig(key), "");
    await d.setConfig(key, "v1");
    assert.equal(await d.getConfig(key), "v1");
    if (d.supports("list_config")) {
      const r = await d.call("list_config", { prefix: key });
      assert.deepEqual(r.entries, [{ key, value: "v1" }]);
    }
    await d.setConfig(key, "");
    assert.equal(await d.getConfig(key), "", "CF-05: an empty value deletes the key");
  });

  t("ST-01 depth, in_flight and pending with one of three messages leased", async (d) => {
    const q = await newQueue(d);
    await enqueueN(d, q, 3);
    const c = await d.consume(q, 1);
    const m = await c.expectNext(PROMPT_MS);
    await c.expectNothing(100);
    let s = await d.getStats(q);
    assert.deepEqual([s.depth, s.in_flight, s.pending], [3, 1, 2]);
    assert.equal(s.active_consumers, 1);
    await d.ack(q, m.id);
    // An Ack returns credit and the next message is leased at once; closing releases it.
    await c.close();
    const deadline = performance.now() + PROMPT_MS;
    while (true) {
      s = await d.getStats(q);
      if (s.in_flight === 0 && s.active_consumers === 0) break;
      if (performance.now() > deadline) break;
      await sleep(20);
    }
    assert.deepEqual([s.depth, s.in_flight, s.pending], [2, 0, 2]);
  });

  t("errors: NOT_FOUND and INVALID_ARGUMENT with the broker's messages", async (d) => {
    const nope = uniq("nope");
    await assertCode(d.getStats(nope), "NOT_FOUND", `queue "${nope}" not found`);
    await assertCode(d.getStats(""), "INVALID_ARGUMENT", "queue name must not be empty");
    await assertCode(d.createQueue(""), "INVALID_ARGUMENT", "queue name must not be empty");
    const q = await newQueue(d);
    await assertCode(d.createQueue(q), "ALREADY_EXISTS", `queue "${q}" already exists`);
    await assertCode(d.ack(q, "abc"), "INVALID_ARGUMENT", "invalid message_id format");
    await assertCode(d.ack(q, ""), "INVALID_ARGUMENT", "message_id must not be empty");
    await assertCode(
      d.ack(q, "00000000-0000-7000-8000-000000000000"),
      "NOT_FOUND",
      `no lease for message 00000000-0000-7000-8000-000000000000 in queue ${q}`,
    );
    await assertCode(d.setConfig("", "x"), "INVALID_ARGUMENT", "config key must not be empty");
  });

  t("DQ-01 a consumer of a missing queue ends with NOT_FOUND and no message", async (d) => {
    const ghost = uniq("ghost");
    const c = await d.consume(ghost);
    await assertCode(c.next(PROMPT_MS), "NOT_FOUND", `queue "${ghost}" not found`);
  });

  t("DQ-02 deleting the queue ends its open consumer with NOT_FOUND", async (d) => {
    const q = await newQueue(d);
    const c = await d.consume(q);
    await c.expectNothing(200, "no message on an empty queue");
    await d.deleteQueue(q);
    await assertCode(c.next(PROMPT_MS), "NOT_FOUND", `queue "${q}" was deleted`);
  });

  t("BA-01 a batch enqueue reports an id or an error per item", async (d) => {
    if (!d.supports("batch_enqueue")) return;
    const q = await newQueue(d);
    const missing = uniq("missing");
    const r = await d.call("batch_enqueue", {
      items: [
        { queue: q, payload: btoa("one") },
        { queue: missing, payload: btoa("two") },
        { queue: q, payload: btoa("three") },
      ],
    });
    assert.equal(r.results.length, 3);
    const [a, b, c3] = r.results;
    assert.ok("message_id" in a && "message_id" in c3, JSON.stringify(r.results));
    assert.match(a.message_id, UUIDV7_RE);
    assert.deepEqual(b, { error: { code: "NOT_FOUND", message: `queue "${missing}" not found` } });
    const c = await d.consume(q);
    const got = await c.take(2, PROMPT_MS);
    assert.deepEqual(ids(got), [a.message_id, c3.message_id], "BA-03: request order is kept");
    assert.deepEqual(got.map(payloadText), ["one", "three"]);
    await c.close();
  });
}

for (const spec of selectedDrivers()) scenarios(spec);
