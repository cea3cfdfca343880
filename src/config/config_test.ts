import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ConfigError,
  defaultConfig,
  DEFAULTS,
  type FilaConfig,
  loadConfig,
  parseConfig,
  parseSocketAddr,
} from "./config.ts";

const PATH = "./fila.toml";
const CWD = "/srv/fila";

function parse(text: string, env: Record<string, string | undefined> = {}): FilaConfig {
  return parseConfig(text, { path: PATH, env, cwd: CWD });
}

function parseError(text: string, env: Record<string, string | undefined> = {}): string {
  try {
    parse(text, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    return err.message;
  }
  assert.fail(`expected ${JSON.stringify(text)} to be rejected`);
}

Deno.test("empty file and missing file give every default", () => {
  const expected: FilaConfig = {
    server: { listenAddr: "0.0.0.0:5555" },
    scheduler: { commandChannelCapacity: 10000, idleTimeoutMs: 100, quantum: 1000 },
    storage: { payloadCacheBytes: 64 * 1_048_576 },
    lua: {
      defaultTimeoutMs: 10,
      defaultMemoryLimitBytes: 1048576,
      circuitBreakerThreshold: 3,
      circuitBreakerCooldownMs: 10000,
    },
    telemetry: { serviceName: "fila", metricsIntervalMs: 10000 },
    dataDir: "data",
    logLevel: "info",
    warnings: [],
  };
  assert.deepEqual(parse(""), { ...expected, configPath: PATH });
  assert.deepEqual(defaultConfig(), expected);
  assert.equal(DEFAULTS.server.listenAddr, expected.server.listenAddr);
});

Deno.test("the operations.md example parses", () => {
  const config = parse(`
[server]
listen_addr = "0.0.0.0:5555"

[scheduler]
quantum = 100

[lua]
default_timeout_ms = 20
circuit_breaker_cooldown_ms = 30000

[telemetry]
otlp_endpoint = "http://otel-collector:4317"
service_name = "fila-prod"

[tls]
cert_file = "/etc/fila/tls/server.pem"
key_file = "/etc/fila/tls/server.key"
ca_file = "/etc/fila/tls/clients-ca.pem"

[auth]
bootstrap_apikey = "change-me-to-a-long-random-secret"
`);
  assert.equal(config.scheduler.quantum, 100);
  assert.equal(config.scheduler.idleTimeoutMs, 100);
  assert.equal(config.lua.defaultTimeoutMs, 20);
  assert.equal(config.lua.circuitBreakerCooldownMs, 30000);
  assert.equal(config.telemetry.otlpEndpoint, "http://otel-collector:4317");
  assert.equal(config.telemetry.serviceName, "fila-prod");
  assert.deepEqual(config.tls, {
    certFile: "/etc/fila/tls/server.pem",
    keyFile: "/etc/fila/tls/server.key",
    caFile: "/etc/fila/tls/clients-ca.pem",
  });
  assert.deepEqual(config.auth, { bootstrapApiKey: "change-me-to-a-long-random-secret" });
});

const INT_KEYS: [
  section: string,
  key: string,
  min: number,
  max: number,
  pick: (c: FilaConfig) => number,
][] = [
  [
    "scheduler",
    "command_channel_capacity",
    1,
    10_000_000,
    (c) => c.scheduler.commandChannelCapacity,
  ],
  ["scheduler", "idle_timeout_ms", 1, 60_000, (c) => c.scheduler.idleTimeoutMs],
  ["scheduler", "quantum", 1, 4_294_967_295, (c) => c.scheduler.quantum],
  [
    "storage",
    "payload_cache_mb",
    0,
    1_048_576,
    (c) => c.storage.payloadCacheBytes / 1_048_576,
  ],
  ["lua", "default_timeout_ms", 1, 60_000, (c) => c.lua.defaultTimeoutMs],
  [
    "lua",
    "default_memory_limit_bytes",
    65_536,
    1_073_741_824,
    (c) => c.lua.defaultMemoryLimitBytes,
  ],
  ["lua", "circuit_breaker_threshold", 0, 1_000_000, (c) => c.lua.circuitBreakerThreshold],
  ["lua", "circuit_breaker_cooldown_ms", 0, 86_400_000, (c) => c.lua.circuitBreakerCooldownMs],
  ["telemetry", "metrics_interval_ms", 100, 3_600_000, (c) => c.telemetry.metricsIntervalMs],
];

for (const [section, key, min, max, pick] of INT_KEYS) {
  Deno.test(`${section}.${key}: inclusive range ${min}..${max}`, () => {
    assert.equal(pick(parse(`[${section}]\n${key} = ${min}\n`)), min);
    assert.equal(pick(parse(`[${section}]\n${key} = ${max}\n`)), max);
    assert.equal(
      parseError(`[${section}]\n${key} = ${min - 1}\n`),
      `error parsing ./fila.toml: ${section}.${key} must be between ${min} and ${max}, got ${
        min - 1
      }`,
    );
    assert.equal(
      parseError(`[${section}]\n${key} = ${max + 1}\n`),
      `error parsing ./fila.toml: ${section}.${key} must be between ${min} and ${max}, got ${
        max + 1
      }`,
    );
    assert.equal(
      parseError(`[${section}]\n${key} = ${min}.0\n`),
      `error parsing ./fila.toml: ${section}.${key} must be an integer between ${min} and ${max}, got float ${min}.0`,
    );
    assert.equal(
      parseError(`[${section}]\n${key} = "${min}"\n`),
      `error parsing ./fila.toml: ${section}.${key} must be an integer between ${min} and ${max}, got string "${min}"`,
    );
  });
}

Deno.test("integers: TOML integer syntaxes accepted, floats and huge values refused", () => {
  const cases: [text: string, expected: number | string][] = [
    ["quantum = 0x10", 16],
    ["quantum = 0o17", 15],
    ["quantum = 0b101", 5],
    ["quantum = 1_000", 1000],
    ["quantum = +7", 7],
    [
      "quantum = 1.5",
      "scheduler.quantum must be an integer between 1 and 4294967295, got float 1.5",
    ],
    [
      "quantum = 1e3",
      "scheduler.quantum must be an integer between 1 and 4294967295, got float 1000.0",
    ],
    [
      "quantum = inf",
      "scheduler.quantum must be an integer between 1 and 4294967295, got float Infinity",
    ],
    [
      "quantum = true",
      "scheduler.quantum must be an integer between 1 and 4294967295, got boolean true",
    ],
    [
      "quantum = [1]",
      "scheduler.quantum must be an integer between 1 and 4294967295, got an array",
    ],
    ["quantum = {}", "scheduler.quantum must be an integer between 1 and 4294967295, got a table"],
    [
      "quantum = 1979-05-27",
      "scheduler.quantum must be an integer between 1 and 4294967295, got a date-time",
    ],
    [
      "quantum = 99999999999999999999999",
      "scheduler.quantum must be between 1 and 4294967295, got 99999999999999999999999",
    ],
    ["quantum = -1", "scheduler.quantum must be between 1 and 4294967295, got -1"],
  ];
  for (const [line, expected] of cases) {
    const text = `[scheduler]\n${line}\n`;
    if (typeof expected === "number") {
      assert.equal(parse(text).scheduler.quantum, expected, line);
    } else {
      assert.equal(parseError(text), `error parsing ./fila.toml: ${expected}`, line);
    }
  }
});

Deno.test("listen_addr accepts IP literals with a port only", () => {
  const good = [
    "0.0.0.0:5555",
    "127.0.0.1:1",
    "10.1.2.3:65535",
    "[::]:5555",
    "[::1]:8080",
    "[2001:db8::1]:0",
    "[::ffff:127.0.0.1]:5555",
  ];
  for (const addr of good) {
    assert.equal(parse(`[server]\nlisten_addr = "${addr}"\n`).server.listenAddr, addr);
  }
  const bad = [
    "",
    "localhost:5555",
    "example.com:80",
    "127.0.0.1",
    "127.0.0.1:",
    "127.0.0.1:65536",
    "127.0.0.1:-1",
    "127.0.0.1:+80",
    "127.0.0.1:80 ",
    " 127.0.0.1:80",
    "127.0.0.1:0x50",
    "127.0.0.1:123456",
    "256.0.0.1:80",
    "01.2.3.4:80",
    "::1:5555",
    "[::1]5555",
    "[::1]",
    "[127.0.0.1]:80",
    "[fe80::1%eth0]:80",
    "http://127.0.0.1:80",
  ];
  for (const addr of bad) {
    assert.equal(
      parseError(`[server]\nlisten_addr = ${JSON.stringify(addr)}\n`),
      `error parsing ./fila.toml: server.listen_addr must be "<IPv4>:<port>" or "[<IPv6>]:<port>" ` +
        `with an IP address (not a host name) and a port between 0 and 65535, got ${
          JSON.stringify(addr)
        }`,
      addr,
    );
  }
  assert.equal(
    parseError(`[server]\nlisten_addr = 5555\n`),
    "error parsing ./fila.toml: server.listen_addr must be a string, got integer 5555",
  );
});

Deno.test("parseSocketAddr splits host and port", () => {
  assert.deepEqual(parseSocketAddr("127.0.0.1:5555"), { host: "127.0.0.1", port: 5555 });
  assert.deepEqual(parseSocketAddr("[::1]:80"), { host: "::1", port: 80 });
  assert.equal(parseSocketAddr("localhost:80"), null);
});

Deno.test("telemetry strings: empty means unset, service_name non-empty", () => {
  const unset = parse(`[telemetry]\notlp_endpoint = ""\nprometheus_listen_addr = ""\n`);
  assert.equal(unset.telemetry.otlpEndpoint, undefined);
  assert.equal(unset.telemetry.prometheusListenAddr, undefined);
  assert.ok(!("otlpEndpoint" in unset.telemetry));

  const set = parse(
    `[telemetry]\notlp_endpoint = "https://collector:4317"\nprometheus_listen_addr = "127.0.0.1:9464"\n`,
  );
  assert.equal(set.telemetry.otlpEndpoint, "https://collector:4317");
  assert.equal(set.telemetry.prometheusListenAddr, "127.0.0.1:9464");

  const errors: [text: string, message: string][] = [
    [`service_name = ""`, "telemetry.service_name must not be empty"],
    [`service_name = 1`, "telemetry.service_name must be a string, got integer 1"],
    [`otlp_endpoint = "not a url"`, `telemetry.otlp_endpoint must be a URL, got "not a url"`],
    [`otlp_endpoint = false`, "telemetry.otlp_endpoint must be a string, got boolean false"],
    [
      `prometheus_listen_addr = "localhost:9464"`,
      `telemetry.prometheus_listen_addr must be "<IPv4>:<port>" or "[<IPv6>]:<port>" with an IP ` +
      `address (not a host name) and a port between 0 and 65535, got "localhost:9464"`,
    ],
  ];
  for (const [line, message] of errors) {
    assert.equal(parseError(`[telemetry]\n${line}\n`), `error parsing ./fila.toml: ${message}`);
  }
});

Deno.test("tls: required keys, paths resolved against cwd", () => {
  const config = parse(`[tls]\ncert_file = "certs/server.pem"\nkey_file = "/abs/server.key"\n`);
  assert.deepEqual(config.tls, {
    certFile: "/srv/fila/certs/server.pem",
    keyFile: "/abs/server.key",
  });
  assert.equal(
    parse(`[tls]\ncert_file = "a"\nkey_file = "b"\nca_file = "../ca.pem"\n`).tls?.caFile,
    "/srv/ca.pem",
  );
  assert.equal(parse("").tls, undefined);

  const errors: [text: string, message: string][] = [
    [`[tls]\n`, "tls.cert_file is required when [tls] is present"],
    [`[tls]\ncert_file = "a"\n`, "tls.key_file is required when [tls] is present"],
    [`[tls]\nkey_file = "b"\n`, "tls.cert_file is required when [tls] is present"],
    [`[tls]\ncert_file = ""\nkey_file = "b"\n`, "tls.cert_file must not be empty"],
    [`[tls]\ncert_file = "a"\nkey_file = 1\n`, "tls.key_file must be a string, got integer 1"],
    [`[tls]\ncert_file = "a"\nkey_file = "b"\nca_file = ""\n`, "tls.ca_file must not be empty"],
    [`tls = "on"\n`, `[tls] must be a table, got string "on"`],
  ];
  for (const [text, message] of errors) {
    assert.equal(parseError(text), `error parsing ./fila.toml: ${message}`);
  }
});

Deno.test("auth: file key, environment override, required non-empty", () => {
  const cases: [text: string, envKey: string | undefined, expected: string | undefined][] = [
    ["", undefined, undefined],
    ["", "", undefined],
    ["", "envkey", "envkey"],
    [`[auth]\nbootstrap_apikey = "filekey"\n`, undefined, "filekey"],
    [`[auth]\nbootstrap_apikey = "filekey"\n`, "", "filekey"],
    [`[auth]\nbootstrap_apikey = "filekey"\n`, "envkey", "envkey"],
  ];
  for (const [text, envKey, expected] of cases) {
    const config = parse(text, { FILA_BOOTSTRAP_APIKEY: envKey });
    assert.deepEqual(
      config.auth,
      expected === undefined ? undefined : { bootstrapApiKey: expected },
      `${text} env=${envKey}`,
    );
  }
  const errors: [text: string, message: string][] = [
    [`[auth]\n`, "auth.bootstrap_apikey is required when [auth] is present"],
    [`[auth]\nbootstrap_apikey = ""\n`, "auth.bootstrap_apikey must not be empty"],
    [`[auth]\nbootstrap_apikey = 42\n`, "auth.bootstrap_apikey must be a string, got integer 42"],
  ];
  for (const [text, message] of errors) {
    assert.equal(parseError(text), `error parsing ./fila.toml: ${message}`);
    assert.equal(
      parseError(text, { FILA_BOOTSTRAP_APIKEY: "envkey" }),
      `error parsing ./fila.toml: ${message}`,
    );
  }
});

Deno.test("cluster: enabled = true is refused, other keys ignored", () => {
  assert.equal(
    parseError(`[cluster]\nenabled = true\n`),
    "error parsing ./fila.toml: clustering is not supported",
  );
  assert.equal(
    parseError(`[cluster]\nenabled = "yes"\n`),
    `error parsing ./fila.toml: cluster.enabled must be a boolean, got string "yes"`,
  );
  parse(`[cluster]\nenabled = false\nnode_id = 3\npeers = ["a", "b"]\n`);
  parse(`[cluster]\nbind_addr = "x"\n`);
});

Deno.test("unknown sections and keys are ignored", () => {
  const config = parse(`
top = 1
[server]
listen_addr = "127.0.0.1:1234"
mystery = "x"
[scheduler]
unknown = 1.5
[whatever]
anything = [1, 2]
[[many]]
a = 1
[lua.nested]
x = 1
`);
  assert.equal(config.server.listenAddr, "127.0.0.1:1234");
  assert.equal(config.scheduler.quantum, 1000);
});

Deno.test("invalid TOML is an error parsing with a one-line reason", () => {
  for (
    const text of ["[server\n", "a = \n", "a = 1\na = 2\n", "quantum = 01\n", "x = 'unterminated\n"]
  ) {
    const message = parseError(text);
    assert.match(message, /^error parsing \.\/fila\.toml: invalid TOML at line \d+, column \d+: /);
    assert.ok(!message.includes("\n"), message);
  }
});

Deno.test("environment: FILA_DATA_DIR and FILA_LOG", () => {
  const cases: [
    env: Record<string, string | undefined>,
    dataDir: string,
    level: string,
    warnings: number,
  ][] = [
    [{}, "data", "info", 0],
    [{ FILA_DATA_DIR: "" }, "data", "info", 0],
    [{ FILA_DATA_DIR: "/tmp/x/y" }, "/tmp/x/y", "info", 0],
    [{ FILA_LOG: "debug" }, "data", "debug", 0],
    [{ FILA_LOG: "error" }, "data", "error", 0],
    [{ FILA_LOG: "warn" }, "data", "warn", 0],
    [{ FILA_LOG: "trace" }, "data", "trace", 0],
    [{ FILA_LOG: "TRACE" }, "data", "trace", 0],
    [{ FILA_LOG: "" }, "data", "info", 0],
    [{ FILA_LOG: "verbose" }, "data", "info", 1],
    [{ FILA_LOG: "fila=debug" }, "data", "info", 1],
  ];
  for (const [env, dataDir, level, warnings] of cases) {
    const config = parse("", env);
    assert.equal(config.dataDir, dataDir);
    assert.equal(config.logLevel, level);
    assert.equal(config.warnings.length, warnings, JSON.stringify(env));
  }
  assert.match(parse("", { FILA_LOG: "verbose" }).warnings[0], /"verbose"/);
});

Deno.test("loadConfig: first existing candidate, defaults when none", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const env = { FILA_DATA_DIR: "d" };
    const none = await loadConfig({ cwd: dir, env, candidates: ["./fila.toml", "nope.toml"] });
    assert.equal(none.configPath, undefined);
    assert.equal(none.dataDir, "d");
    assert.equal(none.scheduler.quantum, 1000);

    await Deno.writeTextFile(join(dir, "second.toml"), "[scheduler]\nquantum = 7\n");
    const second = await loadConfig({ cwd: dir, env, candidates: ["./fila.toml", "second.toml"] });
    assert.equal(second.configPath, "second.toml");
    assert.equal(second.scheduler.quantum, 7);

    await Deno.writeTextFile(join(dir, "fila.toml"), "[scheduler]\nquantum = 0\n");
    await assert.rejects(
      loadConfig({ cwd: dir, env, candidates: ["./fila.toml", "second.toml"] }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(
          err.message,
          "error parsing ./fila.toml: scheduler.quantum must be between 1 and 4294967295, got 0",
        );
        return true;
      },
    );

    await Deno.writeFile(join(dir, "bad.toml"), new Uint8Array([0x61, 0x3d, 0x22, 0xff, 0x22]));
    await assert.rejects(loadConfig({ cwd: dir, env, candidates: ["bad.toml"] }), {
      message: "error parsing bad.toml: file is not valid UTF-8",
    });

    await Deno.mkdir(join(dir, "adir.toml"));
    await assert.rejects(
      loadConfig({ cwd: dir, env, candidates: ["adir.toml"] }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /^error reading adir\.toml: ./);
        return true;
      },
    );

    await Deno.writeTextFile(join(dir, "tls.toml"), `[tls]\ncert_file = "c.pem"\nkey_file = "k"\n`);
    const tls = await loadConfig({ cwd: dir, env, candidates: ["tls.toml"] });
    assert.equal(tls.tls?.certFile, join(dir, "c.pem"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
