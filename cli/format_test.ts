// The layouts of operations.md §5.3, checked byte for byte against the spec's own examples.
import { assertEquals } from "./assert.ts";
import {
  formatAcl,
  formatApiKeyCreated,
  formatApiKeyList,
  formatConfigGet,
  formatConfigList,
  formatQueueList,
  formatRedrive,
  formatStats,
} from "./format.ts";

const lines = (...ls: string[]) => ls.join("\n");

Deno.test("queue list matches the spec example", () => {
  assertEquals(
    formatQueueList([
      { name: "orders", depth: 3, in_flight: 1, active_consumers: 0 },
      { name: "orders.dlq", depth: 0, in_flight: 0, active_consumers: 0 },
    ]),
    lines(
      "NAME          DEPTH  IN_FLIGHT  CONSUMERS",
      "orders            3          1          0",
      "orders.dlq        0          0          0",
    ),
  );
  assertEquals(formatQueueList([]), "No queues found.");
});

Deno.test("queue list keeps NAME at least 4 wide and prints wide numbers in full", () => {
  assertEquals(
    formatQueueList([{ name: "q", depth: 123456789, in_flight: 0, active_consumers: 0 }]),
    lines(
      "NAME    DEPTH  IN_FLIGHT  CONSUMERS",
      "q     123456789          0          0",
    ),
  );
});

Deno.test("queue list aligns names by characters, not UTF-16 units", () => {
  assertEquals(
    formatQueueList([
      { name: "café", depth: 1, in_flight: 0, active_consumers: 0 },
      { name: "tea", depth: 2, in_flight: 0, active_consumers: 0 },
    ]),
    lines(
      "NAME    DEPTH  IN_FLIGHT  CONSUMERS",
      "café        1          0          0",
      "tea         2          0          0",
    ),
  );
});

Deno.test("queue inspect matches the spec example", () => {
  assertEquals(
    formatStats("orders", {
      depth: 2,
      in_flight: 0,
      active_fairness_keys: 2,
      active_consumers: 1,
      quantum: 1000,
      pending: 2,
      delayed: 0,
      per_key_stats: [
        { key: "acme", pending_count: 1, current_deficit: 999, weight: 1, delivered_count: 5 },
        { key: "globex", pending_count: 1, current_deficit: 1000, weight: 1, delivered_count: 0 },
      ],
      per_throttle_stats: [{ key: "provider:slow", tokens: 0, rate_per_second: 1, burst: 1 }],
    }),
    lines(
      "Queue: orders",
      "  Depth:                2",
      "  In-flight:            0",
      "  Active fairness keys: 2",
      "  Active consumers:     1",
      "  Quantum:              1000",
      "  Pending:              2",
      "  Delayed:              0",
      "",
      "  KEY     PENDING   DEFICIT  WEIGHT  DELIVERED",
      "  acme          1       999       1          5",
      "  globex        1      1000       1          0",
      "",
      "  KEY              TOKENS    RATE/S     BURST",
      "  provider:slow       0.0       1.0       1.0",
    ),
  );
});

Deno.test("queue inspect omits empty tables and keeps the broker's key order", () => {
  const base = {
    depth: 0,
    in_flight: 0,
    active_fairness_keys: 0,
    active_consumers: 0,
    quantum: 7,
    pending: 0,
    delayed: 3,
    per_key_stats: [],
    per_throttle_stats: [],
  };
  assertEquals(
    formatStats("q", base),
    lines(
      "Queue: q",
      "  Depth:                0",
      "  In-flight:            0",
      "  Active fairness keys: 0",
      "  Active consumers:     0",
      "  Quantum:              7",
      "  Pending:              0",
      "  Delayed:              3",
    ),
  );
  const withKeys = formatStats("q", {
    ...base,
    per_key_stats: [
      { key: "z", pending_count: 1, current_deficit: -4, weight: 0, delivered_count: 0 },
      { key: "a", pending_count: 2, current_deficit: 10, weight: 1, delivered_count: 0 },
    ],
    per_throttle_stats: [{ key: "x", tokens: 2.25, rate_per_second: 0.5, burst: 12345678.9 }],
  });
  assertEquals(
    withKeys.split("\n").slice(8).join("\n"),
    lines(
      "",
      "  KEY  PENDING   DEFICIT  WEIGHT  DELIVERED",
      "  z          1        -4       0          0",
      "  a          2        10       1          0",
      "",
      "  KEY    TOKENS    RATE/S     BURST",
      "  x         2.3       0.5  12345678.9",
    ),
  );
});

Deno.test("config get and list match the spec", () => {
  assertEquals(formatConfigGet("myapp.region", "us-east-1"), "myapp.region: us-east-1");
  assertEquals(formatConfigGet("nope", ""), "nope: (not set)");
  assertEquals(
    formatConfigList([
      { key: "myapp.env", value: "prod" },
      { key: "myapp.region", value: "us-east-1" },
    ], ""),
    lines(
      "KEY           VALUE",
      "myapp.env     prod",
      "myapp.region  us-east-1",
    ),
  );
  assertEquals(formatConfigList([{ key: "k", value: "v" }], ""), lines("KEY  VALUE", "k    v"));
  assertEquals(formatConfigList([], ""), "No config entries found.");
  assertEquals(formatConfigList([], "zz"), 'No config entries matching prefix "zz".');
});

Deno.test("redrive says message or messages", () => {
  assertEquals(formatRedrive(1, "src.dlq"), 'Redrive complete: 1 message moved from "src.dlq"');
  assertEquals(formatRedrive(2, "src.dlq"), 'Redrive complete: 2 messages moved from "src.dlq"');
  assertEquals(formatRedrive(0, "src.dlq"), 'Redrive complete: 0 messages moved from "src.dlq"');
});

Deno.test("auth create matches the spec example", () => {
  const res = {
    key_id: "0f3c9a52-6d1e-4b7a-9c2e-5a8d7e6f1b20",
    key: "9b2f4c1d8e7a6b5c4d3e2f1a0b9c8d7e",
    is_superadmin: true,
  };
  assertEquals(
    formatApiKeyCreated("ci-bot", res),
    lines(
      'Created API key "ci-bot"',
      "  Key ID     : 0f3c9a52-6d1e-4b7a-9c2e-5a8d7e6f1b20",
      "  Token      : 9b2f4c1d8e7a6b5c4d3e2f1a0b9c8d7e",
      "  Superadmin : yes",
      "Store the token securely — it will not be shown again.",
    ),
  );
  assertEquals(
    formatApiKeyCreated("ci-bot", { ...res, is_superadmin: false }).split("\n").length,
    4,
  );
});

Deno.test("auth list matches the spec example", () => {
  assertEquals(
    formatApiKeyList([
      {
        key_id: "0f3c9a52-6d1e-4b7a-9c2e-5a8d7e6f1b20",
        name: "ci-bot",
        created_at_ms: 1767225600000,
        expires_at_ms: 0,
        is_superadmin: false,
      },
      {
        key_id: "7b1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
        name: "ops",
        created_at_ms: 1767225700000,
        expires_at_ms: 1798761600000,
        is_superadmin: true,
      },
    ]),
    lines(
      "KEY_ID                                NAME    CREATED_AT_MS  EXPIRES_AT_MS",
      "0f3c9a52-6d1e-4b7a-9c2e-5a8d7e6f1b20  ci-bot  1767225600000  never",
      "7b1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f  ops     1767225700000  1798761600000",
    ),
  );
  assertEquals(formatApiKeyList([]), "No API keys found.");
});

Deno.test("auth acl get prints superadmin, none, or the permissions in order", () => {
  assertEquals(
    formatAcl({ key_id: "K", permissions: [], is_superadmin: true }),
    lines("Key ID : K", "Superadmin: yes (all permissions granted)"),
  );
  assertEquals(
    formatAcl({ key_id: "K", permissions: [], is_superadmin: false }),
    lines("Key ID : K", "Permissions: (none)"),
  );
  assertEquals(
    formatAcl({
      key_id: "K",
      permissions: [{ kind: "produce", pattern: "orders" }, {
        kind: "consume",
        pattern: "orders",
      }],
      is_superadmin: false,
    }),
    lines("Key ID : K", "Permissions:", "  produce:orders", "  consume:orders"),
  );
});

Deno.test("formatStats() adds recent and fair share columns with --shares", () => {
  const out = formatStats("orders", {
    depth: 2,
    in_flight: 0,
    active_fairness_keys: 2,
    active_consumers: 0,
    quantum: 1000,
    per_key_stats: [
      {
        key: "acme",
        pending_count: 1,
        current_deficit: 999,
        weight: 1,
        delivered_count: 9,
        recent_share: 0.9,
        fair_share: 0.5,
      },
      {
        key: "globex",
        pending_count: 1,
        current_deficit: 1000,
        weight: 1,
        delivered_count: 1,
        recent_share: 0.1,
        fair_share: 0.5,
      },
    ],
    per_throttle_stats: [],
    pending: 2,
    delayed: 0,
  }, { shares: true });
  const table = out.split("\n").slice(-3);
  assertEquals(table, [
    "  KEY     PENDING   DEFICIT  WEIGHT  DELIVERED  RECENT%   FAIR%",
    "  acme          1       999       1          9     90.0    50.0",
    "  globex        1      1000       1          1     10.0    50.0",
  ]);
});
