// The CLI end to end (conformance.md QM-10, CF-01/02/04, DL-02/03, ST-08, CL-01…CL-08): the real
// `fila` process against one real broker shared by this file, output compared byte for byte.
// Scenarios remove the queues and config entries they create, so that later listings are exact.
import { scenario, startBroker, uniq, waitStats } from "../conformance/harness.ts";
import { assertEquals, assertMatch } from "./assert.ts";
import { ConnectionCounter, failed, fila, ok, TLS_DIR } from "./testing.ts";

const broker = await startBroker();
const client = broker.client();
const ADDR = `http://${broker.addr}`;

/** `fila --addr <shared broker> <args>`. */
const run = (...args: string[]) => fila("--addr", ADDR, ...args);

const lines = (...ls: string[]) => ls.map((l) => l + "\n").join("");

/** Deletes a queue if it still exists, so that a failed scenario does not break later listings. */
function removeQueue(name: string): Promise<void> {
  return client.deleteQueue(name).then(() => {}, () => {});
}

/**
 * Whether the broker runs Lua hooks: one that does must reject a script that does not compile.
 * Scenarios that can only observe a script through its effect are skipped while it does not.
 */
const luaRuns = await client.createQueue("lua-probe", { on_enqueue_script: "function on_enqueue(" })
  .then(() => removeQueue("lua-probe").then(() => false), () => true);
const NO_LUA = luaRuns ? undefined : "the broker does not run Lua hooks yet (it accepts scripts " +
  "without compiling them), so a script's effect cannot be observed";

scenario("QM-10 queue create, list, inspect and delete", async () => {
  try {
    assertEquals(await run("queue", "create", "mgmt-test"), ok('Created queue "mgmt-test"\n'));
    assertEquals(
      await run("queue", "list"),
      ok(lines(
        "NAME             DEPTH  IN_FLIGHT  CONSUMERS",
        "mgmt-test            0          0          0",
        "mgmt-test.dlq        0          0          0",
      )),
    );
    assertEquals(
      await run("queue", "inspect", "mgmt-test"),
      ok(lines(
        "Queue: mgmt-test",
        "  Depth:                0",
        "  In-flight:            0",
        "  Active fairness keys: 0",
        "  Active consumers:     0",
        "  Quantum:              1000",
        "  Pending:              0",
        "  Delayed:              0",
      )),
    );
    assertEquals(await run("queue", "delete", "mgmt-test"), ok('Deleted queue "mgmt-test"\n'));
    assertEquals(await run("queue", "list"), ok("No queues found.\n"));
  } finally {
    await removeQueue("mgmt-test");
  }
});

scenario("CL-06 queue list columns with depth, in-flight and consumers", async () => {
  try {
    await run("queue", "create", "orders");
    await run("queue", "create", "a-very-long-queue-name");
    for (let i = 0; i < 3; i++) await client.enqueue("orders", { payload: `m${i}` });
    await client.consume("orders", 1).expectNext();
    await waitStats(client, "orders", (s) => s.in_flight === 1, 3000, "one message in flight");
    assertEquals(
      await run("queue", "list"),
      ok(lines(
        "NAME                          DEPTH  IN_FLIGHT  CONSUMERS",
        "a-very-long-queue-name            0          0          0",
        "a-very-long-queue-name.dlq        0          0          0",
        "orders                            3          1          1",
        "orders.dlq                        0          0          0",
      )),
    );
    const json = JSON.parse((await run("queue", "list", "--json")).stdout);
    assertEquals(json.queues.map((q: { name: string }) => q.name), [
      "a-very-long-queue-name",
      "a-very-long-queue-name.dlq",
      "orders",
      "orders.dlq",
    ]);
    assertEquals(json.queues[2].in_flight, 1);
  } finally {
    await removeQueue("orders");
    await removeQueue("a-very-long-queue-name");
  }
});

scenario("ST-08 queue inspect: pending, delayed, per-key and throttle tables", async () => {
  const q = uniq("inspect");
  try {
    assertEquals(
      await run(
        "queue",
        "create",
        q,
        "--fairness-key-header",
        "tenant",
        "--weight-header",
        "w",
        "--throttle-key-header",
        "provider",
        "--throttle-key-header",
        "region",
      ),
      ok(`Created queue "${q}"\n`),
    );
    assertEquals(
      await run("config", "set", "throttle.slow", "0,1"),
      ok('Set "throttle.slow" = "0,1"\n'),
    );
    // All three are pending before the consumer opens, so acme's turn costs it one unit of
    // deficit (semantics.md §4.3) instead of emptying and re-activating the key.
    await client.enqueue(q, { headers: { tenant: "acme", provider: "p1", region: "eu" } });
    await client.enqueue(q, { headers: { tenant: "acme" } });
    await client.enqueue(q, { headers: { tenant: "globex", w: "2" } });
    const first = await client.consume(q, 1).expectNext();
    assertEquals(first.metadata?.fairness_key, "acme");
    assertEquals(first.metadata?.throttle_keys, ["p1", "eu"]);
    await waitStats(client, q, (s) => s.in_flight === 1 && s.pending === 2, 3000, "1 leased");
    assertEquals(
      await run("queue", "inspect", q),
      ok(lines(
        `Queue: ${q}`,
        "  Depth:                3",
        "  In-flight:            1",
        "  Active fairness keys: 2",
        "  Active consumers:     1",
        "  Quantum:              1000",
        "  Pending:              2",
        "  Delayed:              0",
        "",
        "  KEY     PENDING   DEFICIT  WEIGHT  DELIVERED",
        "  acme          1       999       1          1",
        "  globex        1      2000       2          0",
        "",
        "  KEY     TOKENS    RATE/S     BURST",
        "  slow       1.0       0.0       1.0",
      )),
    );
    const stats = JSON.parse((await run("queue", "inspect", q, "--json")).stdout);
    assertEquals(stats.per_key_stats[0], {
      key: "acme",
      pending_count: 1,
      current_deficit: 999,
      weight: 1,
      delivered_count: 1,
      recent_share: 1,
      fair_share: 1 / 3,
    });
    assertEquals([stats.pending, stats.delayed, stats.depth], [2, 0, 3]);
  } finally {
    await client.setConfig("throttle.slow", "");
    await removeQueue(q);
  }
});

scenario("CF-01 CF-02 CF-04 config set, get and list", async () => {
  try {
    assertEquals(
      await run("config", "set", "myapp.region", "us-east-1"),
      ok('Set "myapp.region" = "us-east-1"\n'),
    );
    assertEquals(await run("config", "get", "myapp.region"), ok("myapp.region: us-east-1\n"));
    assertEquals(await run("config", "set", "myapp.env", "prod"), ok('Set "myapp.env" = "prod"\n'));
    const table = ok(lines("KEY           VALUE", "myapp.env     prod", "myapp.region  us-east-1"));
    assertEquals(await run("config", "list"), table);
    assertEquals(await run("config", "list", "--prefix", "myapp."), table);
    assertEquals(await run("config", "get", "nope"), ok("nope: (not set)\n"));
    assertEquals(
      await run("config", "list", "--prefix", "zz"),
      ok('No config entries matching prefix "zz".\n'),
    );
    assertEquals(JSON.parse((await run("config", "get", "myapp.env", "--json")).stdout), {
      value: "prod",
    });
    assertEquals(
      JSON.parse((await run("config", "list", "--prefix", "myapp.e", "--json")).stdout),
      { entries: [{ key: "myapp.env", value: "prod" }], total_count: 1 },
    );
    assertEquals(await run("config", "set", "myapp.env", ""), ok('Set "myapp.env" = ""\n'));
    assertEquals(await run("config", "get", "myapp.env"), ok("myapp.env: (not set)\n"));
  } finally {
    await client.setConfig("myapp.region", "");
    await client.setConfig("myapp.env", "");
  }
  assertEquals(await run("config", "list"), ok("No config entries found.\n"));
});

scenario("CF-01 an inline on_enqueue script reads config set by the CLI", async () => {
  const q = uniq("cf");
  try {
    await run("config", "set", "myapp.region", "us-east-1");
    const script =
      'function on_enqueue(msg) return { fairness_key = fila.get("myapp.region") } end';
    assertEquals(
      await run("queue", "create", q, "--on-enqueue", script),
      ok(`Created queue "${q}"\n`),
    );
    await client.enqueue(q, { payload: "x" });
    const msg = await client.consume(q).expectNext();
    assertEquals(msg.metadata?.fairness_key, "us-east-1");
  } finally {
    await client.setConfig("myapp.region", "");
    await removeQueue(q);
  }
}, { ignore: NO_LUA });

scenario("DL-02 DL-03 redrive prints how many messages moved", async () => {
  const src = uniq("src");
  const dlq = `${src}.dlq`;
  try {
    await run("queue", "create", src);
    const id = await client.enqueue(dlq, { payload: "poison" });
    assertEquals(
      await run("redrive", dlq),
      ok(`Redrive complete: 1 message moved from "${dlq}"\n`),
    );
    const msg = await client.consume(src).expectNext();
    assertEquals([msg.id, new TextDecoder().decode(msg.payload)], [id, "poison"]);
    assertEquals(msg.metadata?.attempt_count, 0);

    for (let i = 0; i < 3; i++) await client.enqueue(dlq, { payload: `d${i}` });
    assertEquals(
      await run("redrive", dlq, "--count", "2"),
      ok(`Redrive complete: 2 messages moved from "${dlq}"\n`),
    );
    assertEquals(
      await run("redrive", dlq),
      ok(`Redrive complete: 1 message moved from "${dlq}"\n`),
    );
    assertEquals(
      await run("redrive", dlq),
      ok(`Redrive complete: 0 messages moved from "${dlq}"\n`),
    );
  } finally {
    await removeQueue(src);
  }
});

scenario("CL-02 broker errors print one Error: line and exit 1", async () => {
  const x = uniq("x");
  try {
    await run("queue", "create", x);
    await run("queue", "create", "lonely.dlq");
    assertEquals(await run("queue", "delete", "nope"), failed('queue "nope" does not exist'));
    assertEquals(await run("queue", "inspect", "nope"), failed('queue "nope" does not exist'));
    assertEquals(await run("queue", "create", x), failed(`queue "${x}" already exists`));
    assertEquals(
      await run("redrive", x),
      failed(`queue "${x}" is not a dead-letter queue (name must end with ".dlq")`),
    );
    assertEquals(await run("redrive", "nope.dlq"), failed('queue "nope.dlq" does not exist'));
    assertEquals(
      await run("redrive", "lonely.dlq"),
      failed('parent queue "lonely" of dead-letter queue "lonely.dlq" does not exist'),
    );
    assertEquals(
      await run("queue", "create", "q-vt", "--visibility-timeout", "500"),
      failed("visibility_timeout_ms must be at least 1000 (1 second)"),
    );
    assertEquals(await run("config", "get", ""), failed("config key must not be empty"));
  } finally {
    await removeQueue(x);
    await removeQueue("lonely.dlq");
  }
});

scenario("CL-02 a script that does not compile is reported in the broker's words", async () => {
  const res = await run("queue", "create", "q-lua", "--on-failure", "function on_failure(");
  await removeQueue("q-lua");
  assertEquals([res.code, res.stdout], [1, ""]);
  assertMatch(res.stderr, /^Error: lua compilation error: [^\n]*\n$/);
}, { ignore: NO_LUA });

scenario("CL-03 no broker listening: cannot connect, exit 1, promptly", async () => {
  const started = performance.now();
  const res = await fila("--addr", "http://127.0.0.1:1", "queue", "list");
  assertEquals([res.code, res.stdout], [1, ""]);
  assertMatch(res.stderr, /^Error: cannot connect to broker at http:\/\/127\.0\.0\.1:1: [^\n]+\n$/);
  if (performance.now() - started > 5000) throw new Error("connection failure was not prompt");
});

scenario("CL-04 usage errors exit 2 with error: and a hint, and send no RPC", async () => {
  using counter = new ConnectionCounter();
  const cases: Array<[string[], string]> = [
    [["frobnicate"], "error: unknown command 'frobnicate'"],
    [[], "error: missing command (one of: queue, config, redrive, auth, demo)"],
    [["queue"], "error: missing command (one of: create, delete, list, inspect)"],
    [["auth", "acl"], "error: missing command (one of: set, get)"],
    [["queue", "list", "--bogus"], "error: unknown option '--bogus'"],
    [["queue", "create"], "error: missing required argument 'NAME'"],
    [["queue", "list", "extra"], "error: too many arguments for 'list'"],
    [["--tls-cert", "c.pem", "queue", "list"], "error: --tls-cert requires --tls-key"],
    [["queue", "list", "--tls-key", "k.pem"], "error: --tls-key requires --tls-cert"],
    [
      ["queue", "create", "x", "--on-enqueue", "a", "--on-enqueue-file", "f"],
      "error: option '--on-enqueue-file <PATH>' cannot be used with option '--on-enqueue <LUA>'",
    ],
    [
      ["queue", "create", "x", "--on-failure-file", "f", "--on-failure", "a"],
      "error: option '--on-failure-file <PATH>' cannot be used with option '--on-failure <LUA>'",
    ],
    [
      ["queue", "create", "x", "--visibility-timeout", "soon"],
      "error: option '--visibility-timeout <MS>' argument 'soon' is invalid.",
    ],
    [
      ["redrive", "d.dlq", "--count", "-1"],
      "error: option '--count <N>' argument '-1' is invalid.",
    ],
    [["auth", "create"], "error: required option '--name <NAME>' not specified"],
    [["demo", "--noisy", "0"], "error: option '--noisy <N>' argument '0' is invalid."],
  ];
  await Promise.all(cases.map(async ([args, message]) => {
    const res = await fila("--addr", counter.addr, ...args);
    assertEquals([res.code, res.stdout], [2, ""], `fila ${args.join(" ")}`);
    if (!res.stderr.startsWith(message) || !res.stderr.endsWith("\n(add --help for usage)\n")) {
      throw new Error(`fila ${args.join(" ")}: unexpected stderr ${JSON.stringify(res.stderr)}`);
    }
  }));
  assertEquals(counter.count, 0);
});

scenario("CL-05 a permission without a colon is refused before any RPC", async () => {
  using counter = new ConnectionCounter();
  assertEquals(
    await fila("--addr", counter.addr, "auth", "acl", "set", "K", "--perm", "produce"),
    failed(
      'invalid permission format "produce" — expected <kind>:<pattern> (e.g. produce:orders)',
    ),
  );
  assertEquals(counter.count, 0);
});

scenario("CL-07 an unreadable script file is an error, before any RPC", async () => {
  using counter = new ConnectionCounter();
  for (const option of ["--on-enqueue-file", "--on-failure-file"]) {
    const res = await fila("--addr", counter.addr, "queue", "create", "y", option, "/nonexistent");
    assertEquals([res.code, res.stdout], [1, ""]);
    assertMatch(res.stderr, /^Error: cannot read script file \/nonexistent: [^\n]+\n$/);
  }
  assertEquals(counter.count, 0);
});

scenario("CL-07 scripts are read from files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fila-cli-scripts-" });
  const q = uniq("files");
  try {
    await Deno.writeTextFile(
      `${dir}/enqueue.lua`,
      'function on_enqueue(msg)\n  return { fairness_key = "file:" .. msg.headers.t }\nend\n',
    );
    await Deno.writeTextFile(
      `${dir}/failure.lua`,
      'function on_failure(msg)\n  return { action = "dlq" }\nend\n',
    );
    assertEquals(
      await run(
        "queue",
        "create",
        q,
        "--on-enqueue-file",
        `${dir}/enqueue.lua`,
        "--on-failure-file",
        `${dir}/failure.lua`,
      ),
      ok(`Created queue "${q}"\n`),
    );
    await client.enqueue(q, { headers: { t: "x" } });
    const msg = await client.consume(q).expectNext();
    assertEquals(msg.metadata?.fairness_key, "file:x");
    await client.nack(q, msg.id, "boom");
    assertEquals((await client.consume(`${q}.dlq`).expectNext()).id, msg.id);
  } finally {
    await removeQueue(q);
    await Deno.remove(dir, { recursive: true });
  }
}, { ignore: NO_LUA });

scenario("CL-08 global options work after the command", async () => {
  const q = uniq("after");
  try {
    assertEquals(await fila("queue", "create", q, "--addr", ADDR), ok(`Created queue "${q}"\n`));
    const res = await fila("queue", "list", "--addr", ADDR);
    assertEquals(res.code, 0);
    assertMatch(res.stdout, new RegExp(`^${q}  `, "m"));
    assertEquals(await fila("queue", "delete", q, "--addr", ADDR), ok(`Deleted queue "${q}"\n`));
  } finally {
    await removeQueue(q);
  }
});

scenario("address and TLS file problems are reported before connecting", async () => {
  using counter = new ConnectionCounter();
  const cases: Array<[string[], string]> = [
    [["--addr", "ftp://x"], "invalid broker address ftp://x: scheme must be http or https\n"],
    [["--addr", "http://"], "invalid broker address http://: not a URL\n"],
    [["--tls-ca-cert", "/nonexistent/ca.pem"], "cannot read CA cert /nonexistent/ca.pem: "],
    [
      ["--tls-cert", "/nonexistent/c.pem", "--tls-key", `${TLS_DIR}client.key`],
      "cannot read client cert /nonexistent/c.pem: ",
    ],
    [
      ["--tls-cert", `${TLS_DIR}client.pem`, "--tls-key", "/nonexistent/k.pem"],
      "cannot read client key /nonexistent/k.pem: ",
    ],
    [
      ["--tls-ca-cert", `${TLS_DIR}client.key`],
      `TLS configuration failed: invalid CA cert ${TLS_DIR}client.key: `,
    ],
    [
      ["--tls-cert", `${TLS_DIR}client.pem`, "--tls-key", `${TLS_DIR}server.key`],
      `TLS configuration failed: client key ${TLS_DIR}server.key does not match client cert `,
    ],
  ];
  await Promise.all(cases.map(async ([args, prefix]) => {
    const res = await fila("--addr", counter.addr, ...args, "queue", "list");
    assertEquals([res.code, res.stdout], [1, ""], args.join(" "));
    if (!res.stderr.startsWith(`Error: ${prefix}`) || res.stderr.split("\n").length !== 2) {
      throw new Error(`${args.join(" ")}: unexpected stderr ${JSON.stringify(res.stderr)}`);
    }
  }));
  assertEquals(counter.count, 0);
});

scenario("--version and --help print to stdout and exit 0", async () => {
  assertEquals(await fila("--version"), ok("fila 0.1.0\n"));
  assertEquals(await fila("-V"), ok("fila 0.1.0\n"));
  await Promise.all([["--help"], ["queue", "create", "-h"], ["help", "auth"]].map(async (args) => {
    const res = await fila(...args);
    assertEquals([res.code, res.stderr], [0, ""], args.join(" "));
    assertMatch(res.stdout, /^Usage: fila/);
  }));
});

scenario("demo: the quiet tenant is served within the first deliveries", async () => {
  const q = uniq("demo");
  try {
    assertEquals(
      await run("demo", "--queue", q),
      ok(lines(
        `Created queue "${q}" (fairness key from header "tenant")`,
        'Enqueued 200 messages for tenant "noisy", then 5 for tenant "quiet"',
        "Consuming with one consumer (max_unacked 1), acking each delivery:",
        "  #1    noisy",
        "  #2    quiet",
        "  #3    noisy",
        "  #4    quiet",
        "  #5    noisy",
        "  #6    quiet",
        "  #7    noisy",
        "  #8    quiet",
        "  #9    noisy",
        "  #10   quiet",
        "  #11-#205  noisy (195 deliveries)",
        'Tenant "quiet" was served at deliveries #2-#10 of 205; ' +
          "a FIFO queue would have served it at #201-#205.",
        `Deleted queue "${q}"`,
      )),
    );
    assertEquals(await run("queue", "inspect", q), failed(`queue "${q}" does not exist`));
  } finally {
    await removeQueue(q);
  }
});

scenario("demo refuses an existing queue and leaves it alone", async () => {
  const q = uniq("taken");
  try {
    await run("queue", "create", q);
    await client.enqueue(q, { payload: "mine" });
    assertEquals(await run("demo", "--queue", q), failed(`queue "${q}" already exists`));
    assertEquals((await client.getStats(q)).depth, 1);
  } finally {
    await removeQueue(q);
  }
});
