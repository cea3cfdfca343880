/** Text layouts of operations.md §5.3 (two-space column separators). */

export function padRight(s: string, width: number): string {
  return s + " ".repeat(Math.max(0, width - s.length));
}

export function padLeft(s: string, width: number): string {
  return " ".repeat(Math.max(0, width - s.length)) + s;
}

/** `queue list`: NAME left to W (≥ 4), DEPTH right 7, IN_FLIGHT and CONSUMERS right 9. */
export function formatQueueList(
  queues: Array<{ name: string; depth: number; in_flight: number; active_consumers: number }>,
): string {
  const w = Math.max(4, ...queues.map((q) => q.name.length));
  const lines = [
    `${padRight("NAME", w)}  ${padLeft("DEPTH", 7)}  ${padLeft("IN_FLIGHT", 9)}  ${
      padLeft("CONSUMERS", 9)
    }`,
  ];
  for (const q of queues) {
    lines.push(
      `${padRight(q.name, w)}  ${padLeft(String(q.depth), 7)}  ${
        padLeft(String(q.in_flight), 9)
      }  ${padLeft(String(q.active_consumers), 9)}`,
    );
  }
  return lines.join("\n");
}
