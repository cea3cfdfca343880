/** `fila config set|get|list` (operations.md §5.2). */
import type { Command } from "commander";
import { withClient } from "../context.ts";
import { formatConfigGet, formatConfigList } from "../format.ts";
import { print, printJson } from "../output.ts";
import type { GetConfigResponse, ListConfigResponse } from "../wire.ts";

export function registerConfigCommands(program: Command): void {
  const config = program.command("config").description("manage runtime config entries");

  config.command("set")
    .description("set a config entry (an empty value deletes it)")
    .argument("<KEY>", "config key")
    .argument("<VALUE>", "value")
    .action(async (key: string, value: string, _o: unknown, cmd: Command) => {
      await withClient(cmd, `config key "${key}"`, (c) => c.admin("SetConfig", { key, value }));
      print(`Set "${key}" = "${value}"`);
    });

  config.command("get")
    .description("print a config entry")
    .argument("<KEY>", "config key")
    .option("--json", "print the GetConfig response as JSON")
    .action(async (key: string, o: { json?: boolean }, cmd: Command) => {
      const res = await withClient(
        cmd,
        `config key "${key}"`,
        (c) => c.admin<GetConfigResponse>("GetConfig", { key }),
      );
      if (o.json) printJson(res);
      else print(formatConfigGet(key, res.value));
    });

  config.command("list")
    .description("list config entries in key order")
    .option("--prefix <P>", "only keys starting with P")
    .option("--json", "print the ListConfig response as JSON")
    .action(async (o: { prefix?: string; json?: boolean }, cmd: Command) => {
      const prefix = o.prefix ?? "";
      const res = await withClient(
        cmd,
        "config",
        (c) => c.admin<ListConfigResponse>("ListConfig", { prefix }),
      );
      if (o.json) printJson(res);
      else print(formatConfigList(res.entries, prefix));
    });
}
