/**
 * The `fila` CLI (operations.md §5): an admin client for the broker, plus `fila demo`.
 * Broker and connection errors print one `Error: …` line on stderr and exit 1; usage errors
 * print commander's `error: …` line and a hint, exit 2, and send no RPC.
 */
import { Command, CommanderError, type HelpContext } from "commander";
import { registerAuthCommands } from "./commands/auth.ts";
import { registerConfigCommands } from "./commands/config.ts";
import { registerDemoCommand } from "./commands/demo.ts";
import { registerQueueCommands } from "./commands/queue.ts";
import { registerRedriveCommand } from "./commands/redrive.ts";
import type { ConnectionOptions } from "./connection.ts";
import { writeStderr, writeStdout } from "./output.ts";

const VERSION = "0.1.0";

const USAGE_EXIT = 2;

/** `--tls-cert` and `--tls-key` only make sense together; either alone is a usage error. */
function checkTlsPair(_program: Command, action: Command): void {
  const o = action.optsWithGlobals<ConnectionOptions>();
  if (o.tlsCert !== undefined && o.tlsKey === undefined) {
    action.error("error: --tls-cert requires --tls-key", { exitCode: USAGE_EXIT });
  }
  if (o.tlsKey !== undefined && o.tlsCert === undefined) {
    action.error("error: --tls-key requires --tls-cert", { exitCode: USAGE_EXIT });
  }
}

/**
 * Commander answers a missing subcommand (`fila queue`) with the whole help on stderr; §5.1 wants
 * an `error: ` line and a hint like every other usage error.
 */
class FilaCommand extends Command {
  override createCommand(name?: string): FilaCommand {
    return new FilaCommand(name);
  }

  override help(context?: HelpContext): never;
  override help(cb: (str: string) => string): never;
  override help(arg?: HelpContext | ((str: string) => string)): never {
    if (typeof arg === "object" && arg.error) {
      const names = this.commands.map((c) => c.name()).join(", ");
      this.error(`error: missing command (one of: ${names})`, { exitCode: USAGE_EXIT });
    }
    return super.help(arg as HelpContext);
  }
}

function buildProgram(): Command {
  // Output, exit and hint settings come first: subcommands copy them when they are created.
  const program = new FilaCommand("fila")
    .description("Command-line admin client for the Fila broker")
    .configureOutput({ writeOut: writeStdout, writeErr: writeStderr })
    .exitOverride()
    .showHelpAfterError("(add --help for usage)")
    .version(`fila ${VERSION}`, "-V, --version", "print the version")
    .option("--addr <URL>", "broker address (http:// or https://)", "http://localhost:5555")
    .option("--api-key <KEY>", "API key, sent as `authorization: Bearer <KEY>`")
    .option("--tls", "use TLS, verifying the broker with the system trust store")
    .option("--tls-ca-cert <PATH>", "CA certificate (PEM) to verify the broker; implies TLS")
    .option("--tls-cert <PATH>", "client certificate (PEM) for mTLS; needs --tls-key")
    .option("--tls-key <PATH>", "client private key (PEM); needs --tls-cert")
    .hook("preAction", checkTlsPair);
  registerQueueCommands(program);
  registerConfigCommands(program);
  registerRedriveCommand(program);
  registerAuthCommands(program);
  registerDemoCommand(program);
  return program;
}

/** Runs the CLI on `args` and returns the exit status. */
export async function main(args: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(args, { from: "user" });
    return 0;
  } catch (e) {
    // Commander has already printed its message (or the help / version text).
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : USAGE_EXIT;
    writeStderr(`Error: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

if (import.meta.main) {
  // A failure escaping from a grpc-js callback must still end as one line, not a stack trace.
  const fail = (err: unknown) => {
    writeStderr(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    Deno.exit(1);
  };
  globalThis.addEventListener("error", (ev) => {
    ev.preventDefault();
    fail(ev.error);
  });
  globalThis.addEventListener("unhandledrejection", (ev) => {
    ev.preventDefault();
    fail(ev.reason);
  });
  Deno.exit(await main(Deno.args));
}
