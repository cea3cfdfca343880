/** Error reporting of operations.md §5.4: one `Error: <message>` line on stderr, exit status 1. */
import type { ServiceError } from "@grpc/grpc-js";

/** A failure printed as `Error: <message>` (exit 1); thrown instead of letting a stack escape. */
export class CliError extends Error {}

const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;
const RESOURCE_EXHAUSTED = 8;
const UNAVAILABLE = 14;

/** The text of §5.4 for an RPC failure, where `ctx` names what the command acted on. */
export function describeRpcError(err: unknown, ctx: string): string {
  const e = err as Partial<ServiceError>;
  if (typeof e.code !== "number") return err instanceof Error ? err.message : String(err);
  switch (e.code) {
    case NOT_FOUND:
      return `${ctx} does not exist`;
    case ALREADY_EXISTS:
      return `${ctx} already exists`;
    case RESOURCE_EXHAUSTED:
      return "broker overloaded, try again";
    case UNAVAILABLE:
      return "broker unavailable (connection lost or server down)";
    default:
      // An empty status message would print a bare "Error: "; the status code says more.
      return e.details || `RPC failed with status ${e.code}`;
  }
}

/**
 * The OS reason of a file error without Deno's `: <op> '<path>'` suffix, since the CLI's messages
 * already name the path.
 */
export function osReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/: [a-z]+ '[^']*'$/, "");
}
