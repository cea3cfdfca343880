/** `fila queue create|delete|list|inspect` (operations.md §5.2). */
import { type Command, Option } from "commander";
import { withClient } from "../context.ts";
import { CliError, osReason } from "../errors.ts";
import { formatQueueList, formatStats } from "../format.ts";
import { print, printJson } from "../output.ts";
import { collect, nonNegativeInteger } from "../parse.ts";
import type { GetStatsResponse, ListQueuesResponse, QueueConfig } from "../wire.ts";

interface CreateOptions {
  onEnqueue?: string;
  onEnqueueFile?: string;
  onFailure?: string;
  onFailureFile?: string;
  visibilityTimeout: number;
  fairnessKeyHeader?: string;
  weightHeader?: string;
  throttleKeyHeader?: string[];
}

function readScript(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    throw new CliError(`cannot read script file ${path}: ${osReason(e)}`);
  }
}

/** The script given inline or by file (commander rejects both at once); "" when neither. */
function script(inline: string | undefined, file: string | undefined): string {
  if (file !== undefined) return readScript(file);
  return inline ?? "";
}

export function registerQueueCommands(program: Command): void {
  const queue = program.command("queue").description("manage queues");

  queue.command("create")
    .description("create a queue and its dead-letter queue <NAME>.dlq")
    .argument("<NAME>", "queue name")
    .option("--on-enqueue <LUA>", "on_enqueue Lua script")
    .addOption(
      new Option("--on-enqueue-file <PATH>", "read the on_enqueue script from a file")
        .conflicts("onEnqueue"),
    )
    .option("--on-failure <LUA>", "on_failure Lua script")
    .addOption(
      new Option("--on-failure-file <PATH>", "read the on_failure script from a file")
        .conflicts("onFailure"),
    )
    .option(
      "--visibility-timeout <MS>",
      "lease duration in ms; 0 means the broker's default of 30000",
      nonNegativeInteger,
      0,
    )
    .option("--fairness-key-header <HEADER>", "header whose value is the fairness key")
    .option("--weight-header <HEADER>", "header whose value (an integer) is the weight")
    .option(
      "--throttle-key-header <HEADER>",
      "header whose value is a throttle key (repeatable, in order)",
      collect,
    )
    .action(async (name: string, o: CreateOptions, cmd: Command) => {
      const config: QueueConfig = {
        on_enqueue_script: script(o.onEnqueue, o.onEnqueueFile),
        on_failure_script: script(o.onFailure, o.onFailureFile),
        visibility_timeout_ms: o.visibilityTimeout,
        fairness_key_header: o.fairnessKeyHeader ?? "",
        weight_header: o.weightHeader ?? "",
        throttle_key_headers: o.throttleKeyHeader ?? [],
      };
      await withClient(cmd, `queue "${name}"`, (c) => c.admin("CreateQueue", { name, config }));
      print(`Created queue "${name}"`);
    });

  queue.command("delete")
    .description("delete a queue, its dead-letter queue and all their messages")
    .argument("<NAME>", "queue name")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await withClient(cmd, `queue "${name}"`, (c) => c.admin("DeleteQueue", { queue: name }));
      print(`Deleted queue "${name}"`);
    });

  queue.command("list")
    .description("list queues with their depth, in-flight and consumer counts")
    .option("--json", "print the ListQueues response as JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const res = await withClient(
        cmd,
        "queues",
        (c) => c.admin<ListQueuesResponse>("ListQueues", {}),
      );
      if (o.json) printJson(res);
      else print(formatQueueList(res.queues));
    });

  queue.command("inspect")
    .description("show a queue's statistics, fairness keys and throttle buckets")
    .argument("<NAME>", "queue name")
    .option("--json", "print the GetStats response as JSON")
    .option("--shares", "add each key's recent and fair share of deliveries (%, last 10 s)")
    .action(async (name: string, o: { json?: boolean; shares?: boolean }, cmd: Command) => {
      const stats = await withClient(
        cmd,
        `queue "${name}"`,
        (c) => c.admin<GetStatsResponse>("GetStats", { queue: name }),
      );
      if (o.json) printJson(stats);
      else print(formatStats(name, stats, { shares: o.shares }));
    });
}
