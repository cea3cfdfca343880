/**
 * `fila demo`: the README's fairness "aha" against a running broker. A noisy tenant floods a
 * queue, a quiet tenant enqueues a few messages after it, and one consumer shows that DRR serves
 * the quiet tenant within the first deliveries instead of after the whole backlog.
 */
import type { Command } from "commander";
import type { FilaClient } from "../client.ts";
import { withClient } from "../context.ts";
import { CliError } from "../errors.ts";
import { print } from "../output.ts";
import { positiveInteger } from "../parse.ts";
import type { ConsumeResponse } from "../wire.ts";

const TENANT_HEADER = "tenant";
/** Enqueues in flight at once: enough to be quick, few enough never to overload the broker. */
const ENQUEUE_BATCH = 100;
const NOISY = "noisy";
const QUIET = "quiet";

interface DemoOptions {
  queue: string;
  noisy: number;
  quiet: number;
  keep?: boolean;
}

/** Consumes `total` messages one at a time (max_unacked 1), acking each; returns their keys. */
async function consumeInOrder(client: FilaClient, queue: string, total: number) {
  const keys: string[] = [];
  const stream = client.consume(queue, 1);
  try {
    for await (const res of stream as AsyncIterable<ConsumeResponse>) {
      if (!res.message) continue;
      keys.push(res.message.metadata?.fairness_key ?? "");
      await client.ack(queue, res.message.id);
      if (keys.length === total) break;
    }
  } finally {
    // Cancelling makes the stream emit CANCELLED, which is expected here, not a failure.
    stream.on("error", () => {});
    stream.cancel();
  }
  if (keys.length < total) {
    throw new CliError(`the consume stream ended after ${keys.length} of ${total} deliveries`);
  }
  return keys;
}

/** One line per delivery until the quiet tenant is done, then the rest as one range. */
function timeline(keys: string[]): string[] {
  const lastQuiet = keys.lastIndexOf(QUIET);
  const label = (n: number) => `#${n}`.padEnd(`#${keys.length}`.length);
  const lines = keys.slice(0, lastQuiet + 1).map((k, i) => `  ${label(i + 1)}  ${k}`);
  const rest = keys.length - (lastQuiet + 1);
  if (rest === 1) lines.push(`  ${label(keys.length)}  ${keys[keys.length - 1]}`);
  if (rest > 1) {
    lines.push(`  #${lastQuiet + 2}-#${keys.length}  ${NOISY} (${rest} deliveries)`);
  }
  return lines;
}

function range(first: number, last: number): string {
  return first === last ? `#${first}` : `#${first}-#${last}`;
}

async function runDemo(client: FilaClient, o: DemoOptions): Promise<void> {
  const total = o.noisy + o.quiet;
  await client.admin("CreateQueue", {
    name: o.queue,
    config: { fairness_key_header: TENANT_HEADER },
  });
  print(`Created queue "${o.queue}" (fairness key from header "${TENANT_HEADER}")`);
  try {
    // The noisy backlog is complete before the quiet tenant shows up, as in a real flood.
    for (let start = 0; start < o.noisy; start += ENQUEUE_BATCH) {
      const batch = Math.min(ENQUEUE_BATCH, o.noisy - start);
      await Promise.all(
        Array.from(
          { length: batch },
          (_, i) =>
            client.enqueue(o.queue, { [TENANT_HEADER]: NOISY }, `${NOISY}-${start + i + 1}`),
        ),
      );
    }
    for (let i = 1; i <= o.quiet; i++) {
      await client.enqueue(o.queue, { [TENANT_HEADER]: QUIET }, `${QUIET}-${i}`);
    }
    print(
      `Enqueued ${o.noisy} messages for tenant "${NOISY}", then ${o.quiet} for tenant "${QUIET}"`,
    );
    print("Consuming with one consumer (max_unacked 1), acking each delivery:");
    const keys = await consumeInOrder(client, o.queue, total);
    const served = keys.flatMap((k, i) => k === QUIET ? [i + 1] : []);
    if (served.length !== o.quiet) {
      throw new CliError(
        `expected ${o.quiet} deliveries with fairness key "${QUIET}", got ${served.length}` +
          ` (does the broker support QueueConfig.fairness_key_header?)`,
      );
    }
    for (const line of timeline(keys)) print(line);
    print(
      `Tenant "${QUIET}" was served at deliveries ${range(served[0], served.at(-1)!)} of ${total}` +
        `; a FIFO queue would have served it at ${range(o.noisy + 1, total)}.`,
    );
  } finally {
    if (!o.keep) {
      await client.admin("DeleteQueue", { queue: o.queue });
      print(`Deleted queue "${o.queue}"`);
    }
  }
}

export function registerDemoCommand(program: Command): void {
  program.command("demo")
    .description("show tenant fairness: a quiet tenant is served despite a noisy one's backlog")
    .option("--queue <NAME>", "queue to create for the demo (must not exist)", "fila-demo")
    .option("--noisy <N>", "messages of the noisy tenant", positiveInteger, 200)
    .option("--quiet <N>", "messages of the quiet tenant", positiveInteger, 5)
    .option("--keep", "keep the queue afterwards (default: delete it)")
    .action(async (o: DemoOptions, cmd: Command) => {
      await withClient(cmd, `queue "${o.queue}"`, (c) => runDemo(c, o));
    });
}
