import assert from "node:assert/strict";
import { LuaCompileError } from "./types.ts";
import { enqueueInput, failureInput, onEnqueue, onFailure, testEngine } from "./testing.ts";

const DEFAULTS = { fairnessKey: "default", weight: 1, throttleKeys: [] };

Deno.test("queues without scripts have no hooks", async () => {
  const { engine } = await testEngine();
  assert.equal(engine.onEnqueue("none", enqueueInput("none")), undefined);
  engine.install("q", { onEnqueue: "", onFailure: "" });
  assert.equal(engine.hasOnEnqueue("q"), false);
  assert.equal(engine.onFailure("q", failureInput()), undefined);
  engine.install("q", onFailure("return {}"));
  assert.equal(engine.hasOnEnqueue("q"), false);
  assert.equal(engine.hasOnFailure("q"), true);
  assert.equal(engine.onEnqueue("q", enqueueInput()), undefined);
  engine.remove("q");
  assert.equal(engine.hasOnFailure("q"), false);
  assert.equal(engine.onFailure("q", failureInput()), undefined);
});

Deno.test("compile errors name the hook's chunk (LU-20)", async () => {
  const { engine } = await testEngine();
  assert.throws(
    () => engine.validate({ onEnqueue: "function on_enqueue(msg)\n  if msg then", onFailure: "" }),
    (e) => {
      assert.ok(e instanceof LuaCompileError);
      assert.equal(e.message, `[string "on_enqueue"]:2: 'end' expected near <eof>`);
      assert.equal(e.hook, "on_enqueue");
      return true;
    },
  );
  assert.throws(
    () => engine.validate({ onEnqueue: "", onFailure: "function on_failure(" }),
    (e) => e instanceof LuaCompileError && e.message.startsWith(`[string "on_failure"]:1:`),
  );
  // on_enqueue is compiled first.
  assert.throws(
    () => engine.validate({ onEnqueue: "x x", onFailure: "y y" }),
    (e) => e instanceof LuaCompileError && e.hook === "on_enqueue",
  );
  engine.validate({ onEnqueue: "function on_enqueue() end", onFailure: "" });
});

Deno.test("precompiled binary chunks are refused (LU-20)", async () => {
  const { engine } = await testEngine();
  assert.throws(
    () => engine.validate({ onEnqueue: "\x1bLua\x54\x00", onFailure: "" }),
    (e) => e instanceof LuaCompileError && e.message.includes("binary chunk"),
  );
});

Deno.test("a failed install leaves the queue as it was", async () => {
  const { engine } = await testEngine();
  assert.throws(() => engine.install("q", onEnqueue("return {")), LuaCompileError);
  assert.equal(engine.hasOnEnqueue("q"), false);
  engine.install("q", onEnqueue(`return { fairness_key = "v1" }`));
  assert.throws(() => engine.install("q", onEnqueue("(")), LuaCompileError);
  assert.equal(engine.onEnqueue("q", enqueueInput())!.fairnessKey, "v1");
});

Deno.test("installLenient disables only the scripts that no longer compile", async () => {
  const { engine } = await testEngine();
  const errors = engine.installLenient("q", {
    onEnqueue: "function on_enqueue(",
    onFailure: `function on_failure() return { action = "dlq" } end`,
  });
  assert.equal(errors.length, 1);
  assert.match(errors[0], /^on_enqueue: \[string "on_enqueue"\]:1:/);
  assert.equal(engine.hasOnEnqueue("q"), false);
  assert.equal(engine.onFailure("q", failureInput())!.action, "dlq");
  assert.deepEqual(engine.installLenient("r", onEnqueue("return {}")), []);
  assert.equal(engine.hasOnEnqueue("r"), true);
});

Deno.test("bad results and script errors give the defaults (LU-06, LU-07, LU-21)", async () => {
  const { engine, failures } = await testEngine({ breakerThreshold: 0 });
  const bodies = ["return nil", 'return "x"', "return", "return 42", 'error("boom")'];
  for (const body of bodies) {
    engine.install("q", onEnqueue(body));
    assert.deepEqual(engine.onEnqueue("q", enqueueInput()), DEFAULTS, body);
  }
  engine.install("q", { onEnqueue: "local x = 1", onFailure: "" });
  assert.deepEqual(engine.onEnqueue("q", enqueueInput()), DEFAULTS);
  engine.install("q", { onEnqueue: "on_enqueue = 5", onFailure: "" });
  assert.deepEqual(engine.onEnqueue("q", enqueueInput()), DEFAULTS);
  engine.install("q", { onEnqueue: 'error("top")', onFailure: "" });
  assert.deepEqual(engine.onEnqueue("q", enqueueInput()), DEFAULTS);
  assert.deepEqual(failures(), [
    "on_enqueue must return a table (got nil)",
    "on_enqueue must return a table (got string)",
    "on_enqueue must return a table (got nil)",
    "on_enqueue must return a table (got number)",
    `[string "on_enqueue"]:1: boom`,
    "on_enqueue is not defined",
    "on_enqueue is not a function (a number value)",
    `[string "on_enqueue"]:1: top`,
  ]);
});

Deno.test("on_failure errors retry immediately (LU-10)", async () => {
  const { engine } = await testEngine();
  engine.install("q", onFailure(`error("nope")`));
  assert.deepEqual(engine.onFailure("q", failureInput()), { action: "retry", delayMs: 0 });
});

Deno.test("top-level code runs on every call; the hook global is cleared after reading", async () => {
  const { engine } = await testEngine();
  engine.install("q", {
    onEnqueue: `
      runs = (runs or 0) + 1
      function on_enqueue(msg)
        return { fairness_key = tostring(runs) .. ":" .. tostring(on_enqueue) }
      end`,
    onFailure: "",
  });
  assert.equal(engine.onEnqueue("q", enqueueInput())!.fairnessKey, "1:nil");
  assert.equal(engine.onEnqueue("q", enqueueInput())!.fairnessKey, "2:nil");
});

Deno.test("globals persist within a queue (LU-15) and are shared by its hooks (LU-16)", async () => {
  const { engine } = await testEngine();
  engine.install("q", {
    onEnqueue: `function on_enqueue(msg)
      n = (n or 0) + 1
      last = msg.headers.t
      return { fairness_key = tostring(n) }
    end`,
    onFailure: `function on_failure(msg) return { action = last == "t1" and "dlq" or "retry" } end`,
  });
  const keys = [1, 2, 3].map(() => engine.onEnqueue("q", enqueueInput("q"))!.fairnessKey);
  assert.deepEqual(keys, ["1", "2", "3"]);
  engine.onEnqueue("q", enqueueInput("q", { t: "t1" }));
  assert.equal(engine.onFailure("q", failureInput())!.action, "dlq");
});

Deno.test("globals never cross queues (LU-14)", async () => {
  const { engine } = await testEngine();
  engine.install("q1", onEnqueue(`leak = "a" string.leak = "b" return {}`));
  engine.install(
    "q2",
    onEnqueue(`return { fairness_key = tostring(leak) .. tostring(string.leak) }`),
  );
  engine.onEnqueue("q1", enqueueInput("q1"));
  assert.equal(engine.onEnqueue("q2", enqueueInput("q2"))!.fairnessKey, "nilnil");
});

Deno.test("reinstalling a queue starts from a fresh state", async () => {
  const { engine } = await testEngine();
  const script = onEnqueue(`n = (n or 0) + 1 return { weight = n }`);
  engine.install("q", script);
  engine.onEnqueue("q", enqueueInput());
  engine.install("q", script);
  assert.equal(engine.onEnqueue("q", enqueueInput())!.weight, 1);
});

Deno.test("the sandbox has exactly the allowed libraries (LU-17)", async () => {
  const { engine } = await testEngine();
  const absent = [
    "os",
    "io",
    "require",
    "load",
    "loadfile",
    "dofile",
    "debug",
    "coroutine",
    "package",
  ];
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
  const typesOf = (names: string[]) => {
    engine.install(
      "q",
      onEnqueue(
        `return { fairness_key = table.concat({ ${
          names.map((n) => `type(${n})`).join(", ")
        } }, ",") }`,
      ),
    );
    return engine.onEnqueue("q", enqueueInput())!.fairnessKey.split(",");
  };
  assert.deepEqual(typesOf(absent), absent.map(() => "nil"));
  assert.deepEqual(typesOf(present), present.map(() => "table"));
  assert.deepEqual(typesOf(base), base.map(() => "function"));
  assert.deepEqual(typesOf(["_G", "_VERSION", "warn", "fila.get", "fila.set"]), [
    "table",
    "string",
    "nil",
    "function",
    "nil",
  ]);
  engine.install(
    "q",
    onEnqueue(`return { fairness_key = _VERSION .. " " .. 7 // 2 .. " " .. utf8.char(228) }`),
  );
  assert.equal(engine.onEnqueue("q", enqueueInput())!.fairnessKey, "Lua 5.4 3 ä");
});

Deno.test("fila.get reads the current config (LU-18)", async () => {
  const { engine, config, failures } = await testEngine({ breakerThreshold: 0 });
  engine.install("q", onEnqueue(`return { fairness_key = tostring(fila.get(KEY)) }`));
  const keyFor = (key: string) => {
    engine.install("q", onEnqueue(`return { fairness_key = tostring(fila.get(${key})) }`));
    return engine.onEnqueue("q", enqueueInput())!.fairnessKey;
  };
  assert.equal(keyFor('"k"'), "nil");
  config.set("k", "v1");
  assert.equal(keyFor('"k"'), "v1");
  config.set("k", "v2");
  assert.equal(keyFor('"k"'), "v2");
  config.set("5", "five");
  config.set("2.5", "two and a half");
  assert.equal(keyFor("5"), "five");
  assert.equal(keyFor("2.5"), "two and a half");
  config.set("throttle.provider:smtp", "20,40");
  assert.equal(keyFor('"throttle.provider:smtp"'), "20,40");
  assert.equal(keyFor('"\\xff"'), "nil");
  assert.equal(keyFor("{}"), "default");
  assert.equal(keyFor(""), "default");
  assert.deepEqual(failures(), [
    `[string "on_enqueue"]:1: bad argument #1 to 'get' (string expected, got table)`,
    `[string "on_enqueue"]:1: bad argument #1 to 'get' (string expected, got no value)`,
  ]);
});

Deno.test("a throwing config lookup is a script failure", async () => {
  const events: string[] = [];
  const { createLuaEngine } = await import("./engine.ts");
  const engine = await createLuaEngine({
    configLookup: () => {
      throw new Error("storage closed");
    },
    onEvent: (e) => e.type === "hook_failed" && events.push(e.error),
  });
  engine.install("q", onEnqueue(`return { fairness_key = fila.get("k") }`));
  assert.deepEqual(engine.onEnqueue("q", enqueueInput()), DEFAULTS);
  assert.deepEqual(events, [`[string "on_enqueue"]:1: fila.get: storage closed`]);
});

Deno.test("print goes to the event log with queue and hook", async () => {
  const { engine, events } = await testEngine();
  engine.install("q", {
    onEnqueue:
      `function on_enqueue(msg) print("enq", 1, nil, true, setmetatable({}, { __tostring = function() return "T" end })) return {} end`,
    onFailure: `function on_failure(msg) print() return {} end`,
  });
  engine.onEnqueue("q", enqueueInput());
  engine.onFailure("q", failureInput());
  assert.deepEqual(events.filter((e) => e.type === "print"), [
    { type: "print", queue: "q", hook: "on_enqueue", message: "enq\t1\tnil\ttrue\tT" },
    { type: "print", queue: "q", hook: "on_failure", message: "" },
  ]);
});

Deno.test("executed calls are reported with their duration", async () => {
  const { engine, events } = await testEngine();
  engine.install("q", onEnqueue("return {}"));
  engine.onEnqueue("q", enqueueInput());
  engine.install("q", onEnqueue(`error("x")`));
  engine.onEnqueue("q", enqueueInput());
  const executed = events.filter((e) => e.type === "hook_executed");
  assert.equal(executed.length, 2);
  assert.deepEqual(executed.map((e) => e.type === "hook_executed" && e.ok), [true, false]);
  assert.ok(executed.every((e) => e.type === "hook_executed" && e.durationUs > 0));
});

Deno.test("a throwing event listener does not break hooks", async () => {
  const { createLuaEngine } = await import("./engine.ts");
  const engine = await createLuaEngine({
    configLookup: () => undefined,
    onEvent: () => {
      throw new Error("listener bug");
    },
  });
  engine.install("q", onEnqueue(`print("x") return { fairness_key = "ok" }`));
  assert.equal(engine.onEnqueue("q", enqueueInput())!.fairnessKey, "ok");
});

Deno.test("metamethods and closures in returned tables do not disturb reading", async () => {
  const { engine } = await testEngine();
  engine.install(
    "q",
    onEnqueue(`
      local keys = setmetatable({ "a" }, { __len = function() return 99 end, __index = function() return "x" end })
      return { fairness_key = "k", throttle_keys = keys }`),
  );
  assert.deepEqual(engine.onEnqueue("q", enqueueInput())!.throttleKeys, ["a"]);
});

Deno.test("examples from lua.md §9 behave as documented", async () => {
  const { engine, config } = await testEngine();
  engine.install("q", {
    onEnqueue: `function on_enqueue(msg)
      local account = msg.headers["account"] or "anonymous"
      local tier = msg.headers["tier"] or "free"
      local weight = tonumber(fila.get("tier.weight." .. tier) or "1") or 1
      return { fairness_key = account, weight = weight }
    end`,
    onFailure: `function on_failure(msg)
      local err = msg.error
      if err:sub(1, 10) == "permanent:" or err:find("invalid payload", 1, true) then
        return { action = "dlq" }
      end
      if err == "visibility timeout expired" and msg.attempts >= 3 then
        return { action = "dlq" }
      end
      return { action = "retry", delay_ms = 250 * msg.attempts }
    end`,
  });
  config.set("tier.weight.enterprise", "8");
  assert.deepEqual(
    engine.onEnqueue("q", enqueueInput("q", { account: "acme", tier: "enterprise" })),
    {
      fairnessKey: "acme",
      weight: 8,
      throttleKeys: [],
    },
  );
  assert.equal(engine.onEnqueue("q", enqueueInput("q", { tier: "pro" }))!.weight, 1);
  assert.deepEqual(engine.onFailure("q", failureInput({ error: "permanent: bad" })), {
    action: "dlq",
    delayMs: 0,
  });
  assert.deepEqual(
    engine.onFailure("q", failureInput({ error: "x invalid payload y" }))!.action,
    "dlq",
  );
  assert.deepEqual(engine.onFailure("q", failureInput({ attempts: 2, error: "flaky" })), {
    action: "retry",
    delayMs: 500,
  });
});
