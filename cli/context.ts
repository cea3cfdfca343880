/** Running a command against the broker with the global options (operations.md §5.1). */
import type { Command } from "commander";
import { FilaClient } from "./client.ts";
import type { ConnectionOptions } from "./connection.ts";
import { CliError, describeRpcError } from "./errors.ts";

/**
 * Connects with the global options of `cmd`, runs `fn`, and turns an RPC failure into the
 * §5.4 text for `ctx` (e.g. `queue "orders"`).
 */
export async function withClient<T>(
  cmd: Command,
  ctx: string,
  fn: (client: FilaClient) => Promise<T>,
): Promise<T> {
  const client = await FilaClient.connect(cmd.optsWithGlobals<ConnectionOptions>());
  try {
    return await fn(client);
  } catch (e) {
    throw e instanceof CliError ? e : new CliError(describeRpcError(e, ctx));
  } finally {
    client.close();
  }
}
