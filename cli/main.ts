/**
 * The `fila` CLI (operations.md §5): an admin client for the broker. Errors print one line
 * starting with `Error:` on stderr and exit 1; usage errors exit 2.
 */
import { Command, CommanderError } from "commander";
import type * as grpc from "@grpc/grpc-js";
import { type AdminClient, connectAdmin } from "./admin_client.ts";
import { formatQueueList } from "./format.ts";

export const VERSION = "0.1.0";
const GRPC_NOT_FOUND = 5;
const GRPC_ALREADY_EXISTS = 6;
const GRPC_RESOURCE_EXHAUSTED = 8;
const GRPC_UNAVAILABLE = 14;

class CliError extends Error {}

/** Status → text of operations.md §5.4, given the context `<ctx>`. */
function describe(err: unknown, ctx: string): string {
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e.code !== "number") return (err as Error).message;
  switch (e.code) {
    case GRPC_NOT_FOUND:
      return `${ctx} does not exist`;
    case GRPC_ALREADY_EXISTS:
      return `${ctx} already exists`;
    case GRPC_RESOURCE_EXHAUSTED:
      return "broker overloaded, try again";
    case GRPC_UNAVAILABLE:
      return "broker unavailable (connection lost or server down)";
    default:
      return e.details ?? String(err);
  }
}

interface GlobalOptions {
  addr: string;
  apiKey?: string;
}

async function withAdmin<T>(
  program: Command,
  ctx: string,
  fn: (client: AdminClient) => Promise<T>,
): Promise<T> {
  const opts = program.opts<GlobalOptions>();
  let client: AdminClient;
  try {
    client = await connectAdmin({ addr: opts.addr, apiKey: opts.apiKey });
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  try {
    return await fn(client);
  } catch (e) {
    throw new CliError(describe(e, ctx));
  } finally {
    client.close();
  }
}

export function buildProgram(): Command {
  const program = new Command("fila")
    .description("Command-line admin client for the Fila broker")
    .version(`fila ${VERSION}`, "-V, --version")
    .option("--addr <URL>", "broker address", "http://localhost:5555")
    .option("--api-key <KEY>", "API key sent as a Bearer token")
    .enablePositionalOptions(false)
    .exitOverride()
    .configureOutput({
      writeErr: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)),
    });

  const queue = program.command("queue").description("manage queues");
  queue.command("create <name>")
    .description("create a queue (and its dead-letter queue)")
    .option("--visibility-timeout <MS>", "lease duration in ms (0 = default 30000)", "0")
    .action(async (name: string, o: { visibilityTimeout: string }) => {
      const vt = Number(o.visibilityTimeout);
      if (!Number.isInteger(vt) || vt < 0) {
        throw new CommanderError(
          2,
          "fila.usage",
          `error: invalid --visibility-timeout ${o.visibilityTimeout}`,
        );
      }
      await withAdmin(
        program,
        `queue "${name}"`,
        (c) => c.call("CreateQueue", { name, config: { visibility_timeout_ms: vt } }),
      );
      console.log(`Created queue "${name}"`);
    });
  queue.command("delete <name>")
    .description("delete a queue, its messages and its dead-letter queue")
    .action(async (name: string) => {
      await withAdmin(program, `queue "${name}"`, (c) => c.call("DeleteQueue", { queue: name }));
      console.log(`Deleted queue "${name}"`);
    });
  queue.command("list")
    .description("list queues")
    .action(async () => {
      const res = await withAdmin(
        program,
        "queues",
        (c) =>
          c.call<
            {
              queues: Array<
                { name: string; depth: number; in_flight: number; active_consumers: number }
              >;
            }
          >(
            "ListQueues",
            {},
          ),
      );
      console.log(res.queues.length === 0 ? "No queues found." : formatQueueList(res.queues));
    });
  return program;
}

export async function main(args: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CliError) {
      console.error(`Error: ${e.message}`);
      return 1;
    }
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return 0;
      if (e.code === "fila.usage") console.error(e.message);
      return e.exitCode === 0 ? 0 : 2;
    }
    console.error(`Error: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
