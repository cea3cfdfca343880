/** `fila auth create|revoke|list` and `fila auth acl set|get` (operations.md §5.2). */
import type { Command } from "commander";
import { withClient } from "../context.ts";
import { formatAcl, formatApiKeyCreated, formatApiKeyList } from "../format.ts";
import { print, printJson } from "../output.ts";
import { collect, nonNegativeInteger, parsePermission } from "../parse.ts";
import type { CreateApiKeyResponse, GetAclResponse, ListApiKeysResponse } from "../wire.ts";

interface CreateOptions {
  name: string;
  expiresAt: number;
  superadmin?: boolean;
  json?: boolean;
}

export function registerAuthCommands(program: Command): void {
  const auth = program.command("auth").description("manage API keys and their ACLs");

  auth.command("create")
    .description("create an API key (the token is shown only once)")
    .requiredOption("--name <NAME>", "name of the key")
    .option("--expires-at <UNIX_MS>", "expiry, Unix time in ms (0 = never)", nonNegativeInteger, 0)
    .option("--superadmin", "grant every permission")
    .option("--json", "print the CreateApiKey response as JSON")
    .action(async (o: CreateOptions, cmd: Command) => {
      const res = await withClient(
        cmd,
        "api key",
        (c) =>
          c.admin<CreateApiKeyResponse>("CreateApiKey", {
            name: o.name,
            expires_at_ms: o.expiresAt,
            is_superadmin: o.superadmin === true,
          }),
      );
      if (o.json) printJson(res);
      else print(formatApiKeyCreated(o.name, res));
    });

  auth.command("revoke")
    .description("revoke an API key")
    .argument("<KEY_ID>", "key id")
    .action(async (keyId: string, _o: unknown, cmd: Command) => {
      await withClient(
        cmd,
        `api key "${keyId}"`,
        (c) => c.admin("RevokeApiKey", { key_id: keyId }),
      );
      print(`Revoked API key ${keyId}`);
    });

  auth.command("list")
    .description("list API keys (never their tokens)")
    .option("--json", "print the ListApiKeys response as JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const res = await withClient(
        cmd,
        "api keys",
        (c) => c.admin<ListApiKeysResponse>("ListApiKeys", {}),
      );
      if (o.json) printJson(res);
      else print(formatApiKeyList(res.keys));
    });

  const acl = auth.command("acl").description("manage the permissions of an API key");

  acl.command("set")
    .description("replace a key's permissions (no --perm clears them)")
    .argument("<KEY_ID>", "key id")
    .option(
      "--perm <KIND:PATTERN>",
      "permission, e.g. produce:orders or admin:orders.* (repeatable)",
      collect,
    )
    .action(async (keyId: string, o: { perm?: string[] }, cmd: Command) => {
      const permissions = (o.perm ?? []).map(parsePermission);
      await withClient(
        cmd,
        `api key "${keyId}"`,
        (c) => c.admin("SetAcl", { key_id: keyId, permissions }),
      );
      print(`ACL updated for key ${keyId}`);
    });

  acl.command("get")
    .description("show a key's permissions")
    .argument("<KEY_ID>", "key id")
    .option("--json", "print the GetAcl response as JSON")
    .action(async (keyId: string, o: { json?: boolean }, cmd: Command) => {
      const res = await withClient(
        cmd,
        `api key "${keyId}"`,
        (c) => c.admin<GetAclResponse>("GetAcl", { key_id: keyId }),
      );
      if (o.json) printJson(res);
      else print(formatAcl(res));
    });
}
