// conformance.md §9 Lua hooks (LU-01 … LU-26), plus QM-08, QM-11 (with scripts) and ST-03, which
// need scripts. Scenarios without special config share the file's broker (default [lua]
// settings: circuit breaker threshold 3, cooldown 10 s, so scenarios whose script fails use a
// queue per failing case). LU-11/LU-12 run on a broker with a 1 s breaker cooldown; LU-26 and
// QM-11 restart a broker of their own.
import assert from "node:assert/strict";
import { assertStatus, FilaClient, grpc, type Message } from "./client.ts";
import { createKey } from "./auth_helpers.ts";
import {
  type Broker,
  EARLY_TOL_MS,
  fileBroker,
  LATE_TOL_MS,
  PROMPT_MS,
  scenario,
  sharedBroker,
  sleep,
  text,
  uniq,
  waitConsumers,
} from "./harness.ts";
import {
  assertDefaults,
  dlqAfter,
  drain,
  KEY_WEIGHT_SCRIPT,
  lastArrival,
  luaStr,
  metadataOf,
  onEnqueue,
  onFailure,
  retryAfter,
  scriptedQueue,
  timed,
} from "./lua_helpers.ts";

const P = { needsProcess: true };

/** Receives the next message on `c`, checks its id and attempt count, and returns it. */
async function expectAttempt(
  c: ReturnType<FilaClient["consume"]>,
  id: string,
  attempts: number,
  timeoutMs = PROMPT_MS,
) {
  const m = await c.expectNext(timeoutMs, `delivery with attempt_count ${attempts}`);
  assert.equal(m.id, id);
  assert.equal(m.metadata!.attempt_count, attempts, "attempt_count");
  return m;
}

// ---------------------------------------------------------------------------------------------
// LU-01 / LU-02 bodies (repeated after a restart by LU-26)

async function lu01(client: FilaClient, q: string) {
  const acme = await client.enqueue(q, { headers: { key: "acme" }, payload: "a" });
  const globex = await client.enqueue(q, { headers: { key: "globex", weight: "3" }, payload: "g" });
  const got = new Map((await drain(client, q, 2)).map((m) => [m.id, m.metadata!]));
  assert.equal(got.get(acme)!.fairness_key, "acme");
  assert.equal(got.get(acme)!.weight, 1);
  assert.equal(got.get(globex)!.fairness_key, "globex");
  assert.equal(got.get(globex)!.weight, 3);
}

async function lu02(client: FilaClient, q: string) {
  const id = await client.enqueue(q, { payload: "poison" });
  const c = client.consume(q, 1);
  for (let a = 0; a < 3; a++) {
    await expectAttempt(c, id, a);
    await client.nack(q, id, `fail ${a}`);
  }
  await c.expectNothing(300, "nothing more from the queue after the third Nack");
  const d = client.consume(`${q}.dlq`);
  const m = await d.expectNext(PROMPT_MS, "the dead-lettered message");
  assert.equal(m.id, id);
  assert.equal(text(m.payload), "poison");
  assert.equal(m.metadata!.queue_id, `${q}.dlq`);
  assert.equal(m.metadata!.attempt_count, 3);
  c.cancel();
  d.cancel();
}

scenario("LU-01 key and weight from headers via on_enqueue", async () => {
  const { client } = await sharedBroker();
  const q = await scriptedQueue(client, { on_enqueue_script: KEY_WEIGHT_SCRIPT });
  await lu01(client, q);
});

scenario("LU-02 on_failure dead-letters after the third failed attempt", async () => {
  const { client } = await sharedBroker();
  const q = await scriptedQueue(client, { on_failure_script: dlqAfter(3) });
  await lu02(client, q);
});

scenario("LU-03 on_failure sees error, attempts, queue, headers and id", async () => {
  const { client } = await sharedBroker();
  const q = uniq("lu03");
  await client.createQueue(q, {
    on_failure_script: onFailure(`
      if msg.error == "boom" and msg.attempts == 1 and msg.queue == ${luaStr(q)}
         and msg.headers.h == "v" and #msg.id == 36 then
        return { action = "dlq" }
      end
      return { action = "retry" }`),
  });
  const id = await client.enqueue(q, { headers: { h: "v" }, payload: "x" });
  const c = client.consume(q, 1);
  await expectAttempt(c, id, 0);
  await client.nack(q, id, "boom");
  const d = client.consume(`${q}.dlq`);
  const m = await d.expectNext(PROMPT_MS, "the message in the DLQ");
  assert.equal(m.id, id);
  assert.equal(m.metadata!.attempt_count, 1);
  await c.expectNothing(200, "no retry in the queue");
});

scenario("LU-04 on_enqueue outputs are sanitised field by field", async () => {
  const { client } = await sharedBroker();
  // Each case returns one table; the header `case` picks it.
  const cases: Array<[string, string, Partial<Record<string, unknown>>]> = [
    ["fk_int", "{ fairness_key = 42 }", { fairness_key: "42" }],
    ["fk_float", "{ fairness_key = 3.0 }", { fairness_key: "3.0" }],
    ["fk_half", "{ fairness_key = 0.5 }", { fairness_key: "0.5" }],
    ["fk_bool", "{ fairness_key = true }", { fairness_key: "default" }],
    ["fk_table", "{ fairness_key = {} }", { fairness_key: "default" }],
    ["fk_empty", '{ fairness_key = "" }', { fairness_key: "" }],
    ["w_str", '{ weight = "3" }', { weight: 3 }],
    ["w_float", "{ weight = 3.0 }", { weight: 3 }],
    ["w_frac", "{ weight = 2.5 }", { weight: 1 }],
    ["w_neg", "{ weight = -1 }", { weight: 1 }],
    ["w_big", "{ weight = 4294967296 }", { weight: 1 }],
    ["w_max", "{ weight = 4294967295 }", { weight: 4294967295 }],
    ["w_abc", '{ weight = "abc" }', { weight: 1 }],
    ["w_spaced", '{ weight = " 3 " }', { weight: 3 }],
    ["w_hex", '{ weight = "0x10" }', { weight: 16 }],
    ["w_zero", "{ weight = 0 }", { weight: 0 }],
    ["tk_mixed", '{ throttle_keys = { "a", 7, true, "b" } }', { throttle_keys: ["a", "7", "b"] }],
    ["tk_string", '{ throttle_keys = "x" }', { throttle_keys: [] }],
    ["tk_hole", '{ throttle_keys = { "a", nil, "b" } }', { throttle_keys: ["a"] }],
    ["tk_dups", '{ throttle_keys = { "a", "a" } }', { throttle_keys: ["a", "a"] }],
  ];
  const table = cases.map(([name, ret]) => `  ${name} = function() return ${ret} end,`).join(
    "\n",
  );
  const q = await scriptedQueue(client, {
    on_enqueue_script: `local CASES = {\n${table}\n}\n` +
      onEnqueue("return CASES[msg.headers.case]()"),
  });
  const ids: string[] = [];
  for (const [name] of cases) ids.push(await client.enqueue(q, { headers: { case: name } }));
  const got = new Map((await drain(client, q, cases.length)).map((m) => [m.id, m.metadata!]));
  const defaults = { fairness_key: "default", weight: 1, throttle_keys: [] as string[] };
  cases.forEach(([name, , expected], i) => {
    const md = got.get(ids[i])!;
    const want = { ...defaults, ...expected };
    assert.deepEqual(
      { fairness_key: md.fairness_key, weight: md.weight, throttle_keys: md.throttle_keys },
      want,
      `case ${name}`,
    );
  });
});

scenario(
  "LU-05 on_enqueue sees queue and payload size; header changes have no effect",
  async () => {
    const { client } = await sharedBroker();
    const q = await scriptedQueue(client, {
      on_enqueue_script: onEnqueue(`msg.headers.x = "changed"
      return { fairness_key = msg.queue .. ":" .. msg.payload_size }`),
    });
    const id = await client.enqueue(q, { headers: { x: "orig" }, payload: "hello" });
    const [m] = await drain(client, q, 1);
    assert.equal(m.id, id);
    assert.equal(m.metadata!.fairness_key, `${q}:5`);
    assert.deepEqual(m.headers, { x: "orig" });
    assert.equal(text(m.payload), "hello");
  },
);

scenario("LU-06 on_enqueue returning nil, a string or nothing gives the defaults", async () => {
  const { client } = await sharedBroker();
  for (const body of ["return nil", 'return "fairness"', "return"]) {
    const q = await scriptedQueue(client, { on_enqueue_script: onEnqueue(body) });
    assertDefaults(await metadataOf(client, q), body);
  }
});

scenario("LU-07 on_enqueue raising an error gives the defaults", async () => {
  const { client } = await sharedBroker();
  const q = await scriptedQueue(client, { on_enqueue_script: onEnqueue('error("boom")') });
  assertDefaults(await metadataOf(client, q));
});

scenario(
  "LU-08 an endless on_enqueue loop: Enqueue OK within 1 s with defaults, other queues prompt",
  async () => {
    const { client, addr } = await sharedBroker();
    const q = await scriptedQueue(client, { on_enqueue_script: onEnqueue("while true do end") });
    const other = await scriptedQueue(client, { on_enqueue_script: KEY_WEIGHT_SCRIPT });
    const otherClient = new FilaClient(addr);
    // Two looping enqueues (below the breaker threshold) and, meanwhile, enqueues elsewhere.
    const loops = [1, 2].map(() => timed(() => client.enqueue(q, { payload: "loop" })));
    const others = [1, 2, 3].map(() =>
      timed(() => otherClient.enqueue(other, { headers: { key: "k" } }))
    );
    for (const r of await Promise.all(loops)) {
      assert.ok(r.ms <= 1000 + LATE_TOL_MS, `looping Enqueue took ${r.ms.toFixed(0)} ms`);
    }
    for (const r of await Promise.all(others)) {
      assert.ok(r.ms <= PROMPT_MS, `Enqueue on another queue took ${r.ms.toFixed(0)} ms`);
    }
    for (const m of await drain(client, q, 2)) assertDefaults(m.metadata!);
    for (const m of await drain(client, other, 3)) assert.equal(m.metadata!.fairness_key, "k");
  },
);

scenario(
  "LU-09 unbounded table growth or string.rep(1e9) in on_enqueue: OK within 1 s with defaults",
  async () => {
    const { client } = await sharedBroker();
    const bodies = [
      "local t = {}\nlocal i = 0\nwhile true do i = i + 1; t[i] = i end",
      'local t = {}\nwhile true do t[#t + 1] = string.rep("y", 1000) .. #t end',
      'return { fairness_key = string.rep("x", 1e9) }',
    ];
    for (const body of bodies) {
      const q = await scriptedQueue(client, { on_enqueue_script: onEnqueue(body) });
      const r = await timed(() => client.enqueue(q, { payload: "bomb" }));
      assert.ok(r.ms <= 1000 + LATE_TOL_MS, `Enqueue took ${r.ms.toFixed(0)} ms: ${body}`);
      const [m] = await drain(client, q, 1);
      assertDefaults(m.metadata!, body);
    }
  },
);

scenario(
  "LU-10 on_failure erroring or returning a bad action retries at once in the same queue",
  async () => {
    const { client } = await sharedBroker();
    for (const body of ['error("nope")', "return { action = 42 }", 'return { action = "DLQ" }']) {
      const q = await scriptedQueue(client, { on_failure_script: onFailure(body) });
      const id = await client.enqueue(q, { payload: "x" });
      const c = client.consume(q, 1);
      await expectAttempt(c, id, 0);
      await client.nack(q, id, "e");
      const m = await expectAttempt(c, id, 1);
      assert.equal(m.metadata!.queue_id, q, body);
      await client.ack(q, id);
      assert.equal((await client.getStats(`${q}.dlq`)).depth, 0, `${body}: nothing in the DLQ`);
      c.cancel();
    }
  },
);

// ---------------------------------------------------------------------------------------------
// Circuit breaker (LU-11 … LU-13)

const BREAKER_TOML = "[lua]\ncircuit_breaker_threshold = 3\ncircuit_breaker_cooldown_ms = 1000";

function breakerBroker(): Promise<Broker> {
  return fileBroker("breaker", { toml: BREAKER_TOML });
}

/** A queue whose on_enqueue errors while config `<flag>` = "1" and otherwise returns key "ok". */
async function flagQueue(client: FilaClient): Promise<{ q: string; flag: string }> {
  const flag = uniq("fail");
  const q = await scriptedQueue(client, {
    on_enqueue_script: onEnqueue(`if fila.get(${luaStr(flag)}) == "1" then error("failing") end
      return { fairness_key = "ok" }`),
  }, "cb");
  return { q, flag };
}

/** Enqueues one message per expected key and checks the delivered keys (in enqueue order). */
class KeyLog {
  readonly ids: string[] = [];
  readonly expected: string[] = [];
  readonly labels: string[] = [];
  constructor(readonly client: FilaClient, readonly q: string) {}
  async enqueue(expected: string, label: string) {
    this.ids.push(await this.client.enqueue(this.q, { payload: label }));
    this.expected.push(expected);
    this.labels.push(label);
    return performance.now();
  }
  async check() {
    const got = new Map(
      (await drain(this.client, this.q, this.ids.length)).map((m) => [m.id, m.metadata!]),
    );
    const actual = this.ids.map((id) => got.get(id)!.fairness_key);
    assert.deepEqual(
      actual.map((k, i) => `${this.labels[i]}: ${k}`),
      this.expected.map((k, i) => `${this.labels[i]}: ${k}`),
    );
  }
}

scenario(
  "LU-11 three failures trip the breaker; it bypasses the hook during the cooldown",
  async () => {
    const b = await breakerBroker();
    const client = b.client();
    const { q, flag } = await flagQueue(client);
    const log = new KeyLog(client, q);
    await log.enqueue("ok", "before");
    await client.setConfig(flag, "1");
    await log.enqueue("default", "failure 1");
    await log.enqueue("default", "failure 2");
    const tripped = await log.enqueue("default", "failure 3 (trips)");
    await client.setConfig(flag, "");
    await log.enqueue("default", "within the cooldown (bypassed)");
    assert.ok(performance.now() - tripped < 1000, "the bypass check ran within the cooldown");
    await sleep(Math.max(0, tripped + 1100 - performance.now()));
    await log.enqueue("ok", "after 1.1 s");
    await log.check();
  },
  P,
);

scenario(
  "LU-12 half-open: 2 failures then a success keep it closed; 3 new failures trip it again",
  async () => {
    const b = await breakerBroker();
    const client = b.client();
    const { q, flag } = await flagQueue(client);
    const log = new KeyLog(client, q);
    await client.setConfig(flag, "1");
    for (let i = 1; i <= 3; i++) await log.enqueue("default", `trip ${i}`);
    const tripped = performance.now();
    await sleep(1100);
    assert.ok(performance.now() - tripped >= 1100);
    await log.enqueue("default", "half-open failure 1");
    await log.enqueue("default", "failure 2");
    await client.setConfig(flag, "");
    await log.enqueue("ok", "success (still closed)");
    await client.setConfig(flag, "1");
    for (let i = 1; i <= 3; i++) await log.enqueue("default", `retrip ${i}`);
    await client.setConfig(flag, "");
    await log.enqueue("default", "bypassed after the second trip");
    await log.check();
  },
  P,
);

scenario("LU-13 a tripped breaker on one queue leaves other queues' scripts running", async () => {
  const { client } = await sharedBroker();
  const { q: q1, flag } = await flagQueue(client);
  const q2 = await scriptedQueue(client, { on_enqueue_script: KEY_WEIGHT_SCRIPT });
  const log1 = new KeyLog(client, q1);
  await client.setConfig(flag, "1");
  for (let i = 1; i <= 3; i++) await log1.enqueue("default", `q1 failure ${i}`);
  await client.setConfig(flag, "");
  // Default cooldown is 10 s: q1's hook is bypassed now (proves the trip).
  await log1.enqueue("default", "q1 bypassed");
  const ids = [];
  for (const key of ["x", "y", "z"]) ids.push(await client.enqueue(q2, { headers: { key } }));
  await log1.check();
  const got = new Map((await drain(client, q2, 3)).map((m) => [m.id, m.metadata!.fairness_key]));
  assert.deepEqual(ids.map((id) => got.get(id)), ["x", "y", "z"]);
});

scenario(
  "LU-11 one breaker per queue serves both hooks: tripped, on_failure is bypassed",
  async () => {
    const b = await breakerBroker();
    const client = b.client();
    const flag = uniq("fail");
    const q = await scriptedQueue(client, {
      on_enqueue_script: onEnqueue(`if fila.get(${luaStr(flag)}) == "1" then error("failing") end
      return { fairness_key = "ok" }`),
      on_failure_script: onFailure('return { action = "dlq" }'),
    }, "cb");
    const id = await client.enqueue(q, { payload: "victim of the bypass" });
    const c = client.consume(q, 1);
    await expectAttempt(c, id, 0);
    await client.setConfig(flag, "1");
    for (let i = 0; i < 3; i++) await client.enqueue(q, { payload: `failing ${i}` });
    // The breaker is open: the Nack is an immediate retry instead of a move to the DLQ.
    await client.nack(q, id, "e");
    let retried: Message | null = null;
    for (let i = 0; i < 4 && !retried; i++) {
      const m = await c.expectNext(PROMPT_MS, "the retried message");
      if (m.id === id) retried = m;
      else await client.ack(q, m.id);
    }
    assert.ok(retried, "the nacked message is retried in the queue");
    assert.equal(retried.metadata!.attempt_count, 1);
    assert.equal(retried.metadata!.queue_id, q);
    assert.equal((await client.getStats(`${q}.dlq`)).depth, 0);
    await client.setConfig(flag, "");
  },
  P,
);

scenario("LU-13 a queue's breaker goes with the queue", async () => {
  const { client } = await sharedBroker();
  const { q, flag } = await flagQueue(client);
  const log = new KeyLog(client, q);
  await client.setConfig(flag, "1");
  for (let i = 1; i <= 3; i++) await log.enqueue("default", `failure ${i}`);
  await client.setConfig(flag, "");
  await log.enqueue("default", "bypassed (cooldown 10 s)");
  await log.check();
  // Delete and recreate with the same script: a new, closed breaker runs the hook at once.
  await client.deleteQueue(q);
  await client.createQueue(q, {
    on_enqueue_script: onEnqueue(`if fila.get(${luaStr(flag)}) == "1" then error("failing") end
      return { fairness_key = "ok" }`),
  });
  assert.equal((await metadataOf(client, q)).fairness_key, "ok");
});

// ---------------------------------------------------------------------------------------------
// Lua states (LU-14 … LU-16), sandbox and fila.get (LU-17 … LU-19)

scenario("LU-14 globals of one queue's script are invisible to another queue's", async () => {
  const { client } = await sharedBroker();
  const q1 = await scriptedQueue(client, {
    on_enqueue_script: onEnqueue('leak = "a"\nreturn { fairness_key = "q1" }'),
  });
  const q2 = await scriptedQueue(client, {
    on_enqueue_script: onEnqueue("return { fairness_key = tostring(leak) }"),
  });
  assert.equal((await metadataOf(client, q1)).fairness_key, "q1");
  assert.equal((await metadataOf(client, q2)).fairness_key, "nil");
});

scenario("LU-14 library tables are per queue: overriding string.upper stays local", async () => {
  const { client } = await sharedBroker();
  const q1 = await scriptedQueue(client, {
    on_enqueue_script: onEnqueue(`string.upper = function() return "hacked" end
      fila.get = function() return "hacked" end
      return { fairness_key = ("a"):upper() }`),
  });
  const k = uniq("k");
  await client.setConfig(k, "real");
  const q2 = await scriptedQueue(client, {
    on_enqueue_script: onEnqueue(
      `return { fairness_key = ("a"):upper() .. ":" .. tostring(fila.get(${luaStr(k)})) }`,
    ),
  });
  assert.equal((await metadataOf(client, q1)).fairness_key, "hacked");
  assert.equal((await metadataOf(client, q2)).fairness_key, "A:real");
});

scenario(
  "LU-14 a script cannot read another queue's message headers through the string library",
  async () => {
    // Stock Lua never matches a back-reference to a position capture ("()%1"); a matcher that
    // treats its length (-2) as a distance walks backwards out of the subject string into the
    // Lua heap, which all queues' states share. The victim's header must stay unreadable.
    const { client } = await sharedBroker();
    const victim = await scriptedQueue(client, {
      on_enqueue_script: onEnqueue('return { fairness_key = "victim" }'),
    }, "victim");
    const spy = await scriptedQueue(client, {
      on_enqueue_script: onEnqueue(`
        local subject = string.rep("x", 2000)
        local r = string.gsub(subject, "()" .. string.rep("%1", 100), "")
        local at = r:find("victim%-pass")
        return { fairness_key = #r .. ":" .. (at and r:sub(at, at + 19):gsub("[^%w%-]", ".") or "none") }`),
    }, "spy");
    await client.enqueue(victim, { headers: { token: "TOPSECRET-victim-password-123" } });
    const key = (await metadataOf(client, spy)).fairness_key;
    assert.equal(key, "2000:none", "gsub result length and any leaked victim header");
  },
);

scenario("LU-15 globals persist between calls of the same queue", async () => {
  const { client } = await sharedBroker();
  const q = await scriptedQueue(client, {
    on_enqueue_script: onEnqueue("n = (n or 0) + 1\nreturn { fairness_key = tostring(n) }"),
  });
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push(await client.enqueue(q, { payload: `m${i}` }));
  const got = new Map((await drain(client, q, 3)).map((m) => [m.id, m.metadata!.fairness_key]));
  assert.deepEqual(ids.map((id) => got.get(id)), ["1", "2", "3"]);
});

scenario("LU-15 a queue deleted and created again starts with a fresh Lua state", async () => {
  const { client } = await sharedBroker();
  const config = {
    on_enqueue_script: onEnqueue("n = (n or 0) + 1\nreturn { fairness_key = tostring(n) }"),
  };
  const q = await scriptedQueue(client, config);
  assert.equal((await metadataOf(client, q)).fairness_key, "1");
  assert.equal((await metadataOf(client, q)).fairness_key, "2");
  await client.deleteQueue(q);
  await client.createQueue(q, config);
  assert.equal((await metadataOf(client, q)).fairness_key, "1");
});

scenario("LU-16 on_enqueue and on_failure of a queue share one Lua state", async () => {
  const { client } = await sharedBroker();
  const q = await scriptedQueue(client, {
    on_enqueue_script: onEnqueue("last = msg.headers.t\nreturn {}"),
    on_failure_script: onFailure(
      'if last == "t1" then return { action = "dlq" } end\nreturn { action = "retry" }',
    ),
  });
  const id = await client.enqueue(q, { headers: { t: "t1" }, payload: "x" });
  const c = client.consume(q, 1);
  await expectAttempt(c, id, 0);
  await client.nack(q, id, "x");
  const d = client.consume(`${q}.dlq`);
  const m = await d.expectNext(PROMPT_MS, "the message in the DLQ");
  assert.equal(m.id, id);
  assert.equal(m.metadata!.attempt_count, 1);
});

scenario("LU-17 the sandbox hides os, io, load & co. and offers the standard tables", async () => {
  const { client } = await sharedBroker();
  const typesOf = (names: string[]) => `{ ${names.map((n) => `type(${n})`).join(", ")} }`;
  const hidden = ["os", "io", "require", "load", "loadfile", "dofile", "debug", "coroutine"];
  hidden.push("package");
  const present = ["string", "table", "math", "utf8", "fila"];
  const base = [
    "assert",
    "error",
    "ipairs",
    "next",
    "pairs",
    "pcall",
    "print",
    "rawequal",
    "rawget",
    "rawlen",
    "rawset",
    "select",
    "setmetatable",
    "getmetatable",
    "tonumber",
    "tostring",
    "type",
    "xpcall",
    "collectgarbage",
  ];
  const q = await scriptedQueue(client, {
    on_enqueue_script: onEnqueue(`
      local sets = {
        hidden = ${typesOf(hidden)},
        present = ${typesOf(present)},
        base = ${typesOf(base)},
        g = { type(_G), type(_VERSION), tostring(_G == _ENV) },
      }
      local fila_keys = {}
      for k in pairs(fila) do fila_keys[#fila_keys + 1] = k end
      table.sort(fila_keys)
      sets.fila = fila_keys
      -- print goes to the broker log; collectgarbage works: neither may fail the hook.
      print("LU-17", 1, nil, true, {})
      collectgarbage()
      collectgarbage("step")
      return { fairness_key = table.concat(sets[msg.headers.set], ",") }`),
  });
  const key = async (set: string) => (await metadataOf(client, q, { set })).fairness_key;
  assert.equal(await key("hidden"), hidden.map(() => "nil").join(","));
  assert.equal(await key("present"), present.map(() => "table").join(","));
  assert.equal(await key("base"), base.map(() => "function").join(","));
  assert.equal(await key("g"), "table,string,true");
  assert.equal(await key("fila"), "get", "fila has exactly one function");
});

scenario("LU-18 fila.get reads runtime config; numbers are keys; other types fail", async () => {
  const { client } = await sharedBroker();
  const k = uniq("cfg");
  const unset = uniq("unset");
  const five = `five-${uniq("v")}`;
  await client.setConfig(k, "hello world");
  await client.setConfig("5", five);
  const q = await scriptedQueue(client, {
    on_enqueue_script: onEnqueue(`
      local c = msg.headers.case
      if c == "set" then return { fairness_key = tostring(fila.get(${luaStr(k)})) } end
      if c == "unset" then return { fairness_key = tostring(fila.get(${luaStr(unset)})) } end
      if c == "num" then return { fairness_key = tostring(fila.get(5)) } end
      return { fairness_key = tostring(fila.get({})) }`),
  });
  assert.equal((await metadataOf(client, q, { case: "set" })).fairness_key, "hello world");
  assert.equal((await metadataOf(client, q, { case: "unset" })).fairness_key, "nil");
  assert.equal((await metadataOf(client, q, { case: "num" })).fairness_key, five);
  assertDefaults(await metadataOf(client, q, { case: "table" }), "fila.get({})");
});

scenario("LU-19 fila.get never sees API-key records", async () => {
  const { client } = await sharedBroker();
  const key = await createKey(client, "lu19");
  const q = await scriptedQueue(client, {
    on_enqueue_script: onEnqueue(
      'return { fairness_key = tostring(fila.get("auth:key:" .. msg.headers.k)) }',
    ),
  });
  assert.equal((await metadataOf(client, q, { k: key.key_id })).fairness_key, "nil");
});

// ---------------------------------------------------------------------------------------------
// Validation (LU-20 … LU-22)

scenario("LU-20 scripts that do not compile are rejected and nothing is created", async () => {
  const { client } = await sharedBroker();
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    [
      "on_enqueue",
      { on_enqueue_script: "function on_enqueue(" },
      /^lua compilation error: \[string "on_enqueue"\]:1: /,
    ],
    [
      "on_failure",
      { on_failure_script: "function on_failure(" },
      /^lua compilation error: \[string "on_failure"\]:1: /,
    ],
    [
      "on_failure after a good on_enqueue",
      { on_enqueue_script: KEY_WEIGHT_SCRIPT, on_failure_script: "function on_failure(msg" },
      /^lua compilation error: \[string "on_failure"\]:1: /,
    ],
    // A precompiled chunk starts with "\x1bLua" (text mode only is accepted).
    [
      "binary chunk",
      { on_enqueue_script: "\x1bLuaT\x00\x19\x93\r\n\x1a\n\x04\x08\x08" },
      /^lua compilation error: /,
    ],
  ];
  for (const [what, config, re] of cases) {
    const q = uniq("lu20");
    await assertStatus(client.createQueue(q, config), grpc.status.INVALID_ARGUMENT, re);
    const names = (await client.listQueues()).queues.map((x) => x.name);
    assert.ok(!names.includes(q) && !names.includes(`${q}.dlq`), `${what}: nothing created`);
    await assertStatus(client.getStats(q), grpc.status.NOT_FOUND, `queue "${q}" not found`);
  }
});

scenario("LU-20 scripts up to 30 KiB each run; larger ones are INVALID_ARGUMENT", async () => {
  // The broker's documented limit (docs/wire-additions.md): a queue definition is one storage
  // value, so each script is at most 30,720 bytes; larger ones get a clear error, not INTERNAL.
  const { client } = await sharedBroker();
  const body = onEnqueue('return { fairness_key = "big" }');
  const pad = (total: number) => `--${"x".repeat(total - body.length - 3)}\n`;
  const q1 = await scriptedQueue(client, { on_enqueue_script: pad(30 * 1024) + body }, "big");
  assert.equal((await metadataOf(client, q1)).fairness_key, "big");
  const q2 = await scriptedQueue(client, {
    on_enqueue_script: pad(30 * 1024) + body,
    on_failure_script: "-- " + "y".repeat(30 * 1024 - 4) + "\n",
  }, "big");
  assert.equal((await metadataOf(client, q2)).fairness_key, "big");
  const name = uniq("too-big");
  await assertStatus(
    client.createQueue(name, { on_enqueue_script: pad(30 * 1024 + 1) + body }),
    grpc.status.INVALID_ARGUMENT,
    "on_enqueue_script must not exceed 30720 bytes",
  );
  await assertStatus(client.getStats(name), grpc.status.NOT_FOUND);
});

scenario(
  "LU-21 a script that defines no on_enqueue is accepted; Enqueue gets defaults",
  async () => {
    const { client } = await sharedBroker();
    const q = await scriptedQueue(client, {
      on_enqueue_script: "local x = 1\nfunction helper() return x end",
    });
    assertDefaults(await metadataOf(client, q));
  },
);

scenario("LU-22 key length and UTF-8 limits of on_enqueue outputs", async () => {
  const { client } = await sharedBroker();
  const q = await scriptedQueue(client, {
    on_enqueue_script: onEnqueue(`
      local c = msg.headers.case
      if c == "k255" then return { fairness_key = string.rep("k", 255) } end
      if c == "k256" then return { fairness_key = string.rep("k", 256) } end
      if c == "kmb" then return { fairness_key = string.rep("\\u{e9}", 127) .. "k" } end
      if c == "kff" then return { fairness_key = "\\xff" } end
      if c == "kcut" then return { fairness_key = "ab\\xc3" } end
      return { throttle_keys = { string.rep("t", 256), string.rep("t", 255), "\\xff", "ok" } }`),
  });
  const md = (c: string) => metadataOf(client, q, { case: c });
  assert.equal((await md("k255")).fairness_key, "k".repeat(255));
  assert.equal((await md("k256")).fairness_key, "default");
  assert.equal((await md("kmb")).fairness_key, "é".repeat(127) + "k", "255 bytes of UTF-8");
  assert.equal((await md("kff")).fairness_key, "default");
  assert.equal((await md("kcut")).fairness_key, "default");
  assert.deepEqual((await md("tk")).throttle_keys, ["t".repeat(255), "ok"]);
});

// ---------------------------------------------------------------------------------------------
// Delayed retries (LU-23 … LU-25)

scenario(
  "LU-23 delay_ms 1500 delays the redelivery by 1.5 s; meanwhile it counts as delayed",
  async () => {
    const { client } = await sharedBroker();
    const q = await scriptedQueue(client, { on_failure_script: retryAfter(1500) });
    const id = await client.enqueue(q, { payload: "x" });
    const c = client.consume(q, 1);
    await expectAttempt(c, id, 0);
    const tSend = performance.now();
    await client.nack(q, id, "later");
    const tReply = performance.now();
    const s = await client.getStats(q);
    assert.deepEqual(
      { delayed: s.delayed, pending: s.pending, depth: s.depth, in_flight: s.in_flight },
      { delayed: 1, pending: 0, depth: 0, in_flight: 0 },
    );
    await expectAttempt(c, id, 1, 1600 + LATE_TOL_MS + 500);
    const at = lastArrival(c);
    assert.ok(at - tSend >= 1500 - EARLY_TOL_MS, `redelivered ${(at - tSend).toFixed(0)} ms after`);
    assert.ok(
      at - tReply <= 1600 + LATE_TOL_MS,
      `redelivered ${(at - tReply).toFixed(0)} ms after the Nack (> 1.6 s)`,
    );
  },
  { timeoutMs: 20_000 },
);

scenario("LU-24 a delayed retry joins the tail of its key when it becomes ready", async () => {
  const { client } = await sharedBroker();
  const q = await scriptedQueue(client, { on_failure_script: retryAfter(300) });
  const m = await client.enqueue(q, { payload: "M" });
  const p1 = await client.enqueue(q, { payload: "P1" });
  const p2 = await client.enqueue(q, { payload: "P2" });
  const c = client.consume(q, 1);
  await expectAttempt(c, m, 0);
  await client.nack(q, m, "later");
  await expectAttempt(c, p1, 0);
  await sleep(500); // the scenario acks P1 after 500 ms (M became ready meanwhile)
  await client.ack(q, p1);
  await expectAttempt(c, p2, 0);
  await client.ack(q, p2);
  await expectAttempt(c, m, 1);
  await client.ack(q, m);
});

scenario("LU-25 delay_ms 1e15 is capped and the message stays delayed", async () => {
  const { client } = await sharedBroker();
  const q = await scriptedQueue(client, { on_failure_script: retryAfter("1e15") });
  const id = await client.enqueue(q, { payload: "x" });
  const c = client.consume(q, 1);
  await expectAttempt(c, id, 0);
  await client.nack(q, id, "much later");
  const s = await client.getStats(q);
  assert.equal(s.delayed, 1);
  assert.equal(s.depth, 0);
  await c.expectNothing(2000, "no delivery within 2 s");
  assert.equal((await client.getStats(q)).delayed, 1);
});

scenario(
  "LU-23 delay_ms sanitising: fractional, negative, non-numeric retry at once; strings delay",
  async () => {
    const { client } = await sharedBroker();
    const q = await scriptedQueue(client, {
      on_failure_script: onFailure(`msg.headers.x = "changed"
        local DELAYS = { frac = 2.5, neg = -300, word = "soon", tbl = {}, str = "300", float = 300.0 }
        return { action = "retry", delay_ms = DELAYS[msg.headers.case] }`),
    });
    for (const kind of ["frac", "neg", "word", "tbl"]) {
      const id = await client.enqueue(q, { headers: { case: kind, x: "orig" } });
      const c = client.consume(q, 1);
      await expectAttempt(c, id, 0);
      await client.nack(q, id, "e");
      const m = await expectAttempt(c, id, 1);
      assert.deepEqual(m.headers, { case: kind, x: "orig" }, "on_failure's header change ignored");
      await client.ack(q, id);
      c.cancel();
      await waitConsumers(client, q, 0);
    }
    for (const kind of ["str", "float"]) {
      const id = await client.enqueue(q, { headers: { case: kind } });
      const c = client.consume(q, 1);
      await expectAttempt(c, id, 0);
      const t0 = performance.now();
      await client.nack(q, id, "e");
      assert.equal((await client.getStats(q)).delayed, 1, `${kind}: delayed`);
      await expectAttempt(c, id, 1, 300 + LATE_TOL_MS + 500);
      const dt = lastArrival(c) - t0;
      assert.ok(dt >= 300 - EARLY_TOL_MS, `${kind}: redelivered after ${dt.toFixed(0)} ms`);
      await client.ack(q, id);
      c.cancel();
      await waitConsumers(client, q, 0);
    }
  },
);

// ---------------------------------------------------------------------------------------------
// Restarts (LU-26, QM-11)

function restartBroker(): Promise<Broker> {
  return fileBroker("restart");
}

scenario("LU-26 scripts keep working after a restart (LU-01 and LU-02)", async () => {
  const b = await restartBroker();
  let client = b.client();
  const q1 = await scriptedQueue(client, { on_enqueue_script: KEY_WEIGHT_SCRIPT });
  const q2 = await scriptedQueue(client, { on_failure_script: dlqAfter(3) });
  await lu01(client, q1);
  await b.restart();
  client = b.client();
  await lu01(client, q1);
  await lu02(client, q2);
}, P);

scenario(
  "QM-11 a queue with scripts and visibility timeout 1 s is unchanged by a restart",
  async () => {
    const b = await restartBroker();
    let client = b.client();
    const q = uniq("qm11");
    await client.createQueue(q, {
      on_enqueue_script: KEY_WEIGHT_SCRIPT,
      on_failure_script: onFailure(
        'if msg.error == "visibility timeout expired" then return { action = "retry" } end\n' +
          'return { action = "dlq" }',
      ),
      visibility_timeout_ms: 1000,
    });
    const before = await client.listQueues();
    await b.restart();
    client = b.client();
    assert.deepEqual(await client.listQueues(), before, "ListQueues unchanged by the restart");
    const id = await client.enqueue(q, { headers: { key: "acme", weight: "3" }, payload: "x" });
    const c = client.consume(q, 1);
    const m = await expectAttempt(c, id, 0);
    const t0 = lastArrival(c);
    assert.equal(m.metadata!.fairness_key, "acme");
    assert.equal(m.metadata!.weight, 3);
    const again = await c.expectNext(1100 + LATE_TOL_MS + 500, "the redelivery after 1 s");
    const dt = lastArrival(c) - t0;
    assert.equal(again.id, id);
    assert.equal(again.metadata!.attempt_count, 1);
    assert.equal(again.metadata!.queue_id, q, "on_failure still runs: expiry → retry");
    assert.ok(dt >= 1000 - EARLY_TOL_MS, `redelivered after ${dt.toFixed(0)} ms, before 1 s`);
    assert.ok(dt <= 1100 + LATE_TOL_MS, `redelivered after ${dt.toFixed(0)} ms, later than 1.1 s`);
    // ... and a Nack with another error dead-letters it.
    await client.nack(q, id, "fatal");
    const d = client.consume(`${q}.dlq`);
    assert.equal((await d.expectNext(PROMPT_MS, "the message in the DLQ")).id, id);
  },
  P,
);

scenario("LU-26 a restart resets circuit breakers and Lua globals", async () => {
  const b = await restartBroker();
  let client = b.client();
  const flag = uniq("fail");
  const q = await scriptedQueue(client, {
    on_enqueue_script: onEnqueue(`if fila.get(${luaStr(flag)}) == "1" then error("failing") end
      n = (n or 0) + 1
      return { fairness_key = "ok" .. n }`),
  }, "cb");
  assert.equal((await metadataOf(client, q)).fairness_key, "ok1");
  assert.equal((await metadataOf(client, q)).fairness_key, "ok2");
  await client.setConfig(flag, "1");
  for (let i = 0; i < 3; i++) await client.enqueue(q, { payload: "failing" });
  await drain(client, q, 3);
  await client.setConfig(flag, "");
  assertDefaults(await metadataOf(client, q), "bypassed (default cooldown 10 s)");
  await b.restart();
  client = b.client();
  assert.equal((await metadataOf(client, q)).fairness_key, "ok1", "closed breaker, fresh globals");
}, P);

// ---------------------------------------------------------------------------------------------
// QM-08, ST-03

scenario("QM-08 dlq falls back to a retry when the DLQ was deleted", async () => {
  const { client } = await sharedBroker();
  const q = await scriptedQueue(client, { on_failure_script: onFailure('return {action="dlq"}') });
  await client.deleteQueue(`${q}.dlq`);
  const id = await client.enqueue(q, { payload: "x" });
  const c = client.consume(q, 1);
  await expectAttempt(c, id, 0);
  await client.nack(q, id, "e");
  const m = await expectAttempt(c, id, 1);
  assert.equal(m.metadata!.queue_id, q);
  await assertStatus(
    client.getStats(`${q}.dlq`),
    grpc.status.NOT_FOUND,
    `queue "${q}.dlq" not found`,
  );
});

scenario("ST-03 delivered_count counts redeliveries and resets when the key empties", async () => {
  const { client } = await sharedBroker();
  const q = await scriptedQueue(client, { on_enqueue_script: KEY_WEIGHT_SCRIPT });
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push(await client.enqueue(q, { headers: { key: "a" } }));
  const c = client.consume(q, 1);
  await expectAttempt(c, ids[0], 0);
  await client.nack(q, ids[0], "again");
  await expectAttempt(c, ids[1], 0); // held
  let s = await client.getStats(q);
  assert.deepEqual(
    s.per_key_stats.map((k) => [k.key, k.pending_count, k.delivered_count]),
    [["a", 2, 2]],
  );
  await client.ack(q, ids[1]);
  await expectAttempt(c, ids[2], 0);
  await client.ack(q, ids[2]);
  await expectAttempt(c, ids[0], 1);
  await client.ack(q, ids[0]);
  c.cancel();
  await waitConsumers(client, q, 0);
  await client.enqueue(q, { headers: { key: "a" } });
  s = await client.getStats(q);
  assert.deepEqual(
    s.per_key_stats.map((k) => [k.key, k.pending_count, k.delivered_count]),
    [["a", 1, 0]],
  );
});
