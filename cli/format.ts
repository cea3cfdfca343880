/** The text layouts of operations.md §5.2–5.3 (columns separated by two spaces). */
import type {
  ApiKeyInfo,
  ConfigEntry,
  CreateApiKeyResponse,
  GetAclResponse,
  GetStatsResponse,
  QueueInfo,
} from "./wire.ts";

interface Column {
  header: string;
  /**
   * Right-aligned to this width; without it the column is left-aligned to the wider of its
   * header and its values. Values wider than a fixed width are printed in full.
   */
  right?: number;
}

/** Width in characters (code points), so that names like `café` line up. */
function width(s: string): number {
  return [...s].length;
}

function padEnd(s: string, w: number): string {
  return s + " ".repeat(Math.max(0, w - width(s)));
}

function padStart(s: string, w: number): string {
  return " ".repeat(Math.max(0, w - width(s))) + s;
}

/**
 * Rows under a header line, each prefixed by `indent`. A left-aligned last column is not padded,
 * so lines carry no trailing spaces.
 */
function table(columns: Column[], rows: string[][], indent = ""): string[] {
  const widths = columns.map((c, i) =>
    c.right ?? Math.max(width(c.header), ...rows.map((r) => width(r[i])))
  );
  const line = (cells: string[]) =>
    indent + cells.map((cell, i) => {
      if (columns[i].right !== undefined) return padStart(cell, widths[i]);
      return i === cells.length - 1 ? cell : padEnd(cell, widths[i]);
    }).join("  ");
  return [line(columns.map((c) => c.header)), ...rows.map(line)];
}

export function formatQueueList(queues: QueueInfo[]): string {
  if (queues.length === 0) return "No queues found.";
  return table(
    [{ header: "NAME" }, { header: "DEPTH", right: 7 }, { header: "IN_FLIGHT", right: 9 }, {
      header: "CONSUMERS",
      right: 9,
    }],
    queues.map((q) => [q.name, `${q.depth}`, `${q.in_flight}`, `${q.active_consumers}`]),
  ).join("\n");
}

const LABEL_WIDTH = 22;

function percent(share = 0): string {
  return (share * 100).toFixed(1);
}

/** `queue inspect`; per-key rows keep the broker's order (DRR ring order, semantics.md §2.10). */
export function formatStats(
  queue: string,
  s: GetStatsResponse,
  options: { shares?: boolean } = {},
): string {
  const field = (label: string, value: number) => `  ${`${label}:`.padEnd(LABEL_WIDTH)}${value}`;
  const lines = [
    `Queue: ${queue}`,
    field("Depth", s.depth),
    field("In-flight", s.in_flight),
    field("Active fairness keys", s.active_fairness_keys),
    field("Active consumers", s.active_consumers),
    field("Quantum", s.quantum),
    field("Pending", s.pending),
    field("Delayed", s.delayed),
  ];
  if (s.per_key_stats.length > 0) {
    lines.push(
      "",
      ...table(
        [
          { header: "KEY" },
          { header: "PENDING", right: 7 },
          { header: "DEFICIT", right: 8 },
          { header: "WEIGHT", right: 6 },
          { header: "DELIVERED", right: 9 },
          ...(options.shares
            ? [{ header: "RECENT%", right: 7 }, { header: "FAIR%", right: 6 }]
            : []),
        ],
        s.per_key_stats.map((k) => [
          k.key,
          `${k.pending_count}`,
          `${k.current_deficit}`,
          `${k.weight}`,
          `${k.delivered_count}`,
          ...(options.shares ? [percent(k.recent_share), percent(k.fair_share)] : []),
        ]),
        "  ",
      ),
    );
  }
  if (s.per_throttle_stats.length > 0) {
    lines.push(
      "",
      ...table(
        [
          { header: "KEY" },
          { header: "TOKENS", right: 8 },
          { header: "RATE/S", right: 8 },
          { header: "BURST", right: 8 },
        ],
        s.per_throttle_stats.map((t) => [
          t.key,
          t.tokens.toFixed(1),
          t.rate_per_second.toFixed(1),
          t.burst.toFixed(1),
        ]),
        "  ",
      ),
    );
  }
  return lines.join("\n");
}

export function formatConfigGet(key: string, value: string): string {
  return `${key}: ${value === "" ? "(not set)" : value}`;
}

export function formatConfigList(entries: ConfigEntry[], prefix: string): string {
  if (entries.length === 0) {
    return prefix === ""
      ? "No config entries found."
      : `No config entries matching prefix "${prefix}".`;
  }
  return table([{ header: "KEY" }, { header: "VALUE" }], entries.map((e) => [e.key, e.value]))
    .join("\n");
}

export function formatRedrive(moved: number, dlq: string): string {
  return `Redrive complete: ${moved} ${moved === 1 ? "message" : "messages"} moved from "${dlq}"`;
}

export function formatApiKeyCreated(name: string, res: CreateApiKeyResponse): string {
  return [
    `Created API key "${name}"`,
    `  Key ID     : ${res.key_id}`,
    `  Token      : ${res.key}`,
    ...(res.is_superadmin ? ["  Superadmin : yes"] : []),
    "Store the token securely — it will not be shown again.",
  ].join("\n");
}

export function formatApiKeyList(keys: ApiKeyInfo[]): string {
  if (keys.length === 0) return "No API keys found.";
  return table(
    [
      { header: "KEY_ID" },
      { header: "NAME" },
      { header: "CREATED_AT_MS", right: 13 },
      { header: "EXPIRES_AT_MS" },
    ],
    keys.map((k) => [
      k.key_id,
      k.name,
      `${k.created_at_ms}`,
      k.expires_at_ms === 0 ? "never" : `${k.expires_at_ms}`,
    ]),
  ).join("\n");
}

export function formatAcl(acl: GetAclResponse): string {
  const head = `Key ID : ${acl.key_id}`;
  if (acl.is_superadmin) return `${head}\nSuperadmin: yes (all permissions granted)`;
  if (acl.permissions.length === 0) return `${head}\nPermissions: (none)`;
  return [head, "Permissions:", ...acl.permissions.map((p) => `  ${p.kind}:${p.pattern}`)].join(
    "\n",
  );
}
