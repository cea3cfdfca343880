/** `fila redrive <DLQ> [--count N]` (operations.md §5.2). */
import type { Command } from "commander";
import { withClient } from "../context.ts";
import { formatRedrive } from "../format.ts";
import { print } from "../output.ts";
import { nonNegativeInteger } from "../parse.ts";
import type { RedriveResponse } from "../wire.ts";

export function registerRedriveCommand(program: Command): void {
  program.command("redrive")
    .description("move messages from a dead-letter queue back to its parent queue")
    .argument("<DLQ>", "dead-letter queue (name ending in .dlq)")
    .option("--count <N>", "move at most N messages, oldest first (0 = all)", nonNegativeInteger, 0)
    .action(async (dlq: string, o: { count: number }, cmd: Command) => {
      const res = await withClient(
        cmd,
        `queue "${dlq}"`,
        (c) => c.admin<RedriveResponse>("Redrive", { dlq_queue: dlq, count: o.count }),
      );
      print(formatRedrive(res.redriven, dlq));
    });
}
