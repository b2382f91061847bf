// `ticksync version`: the version of ticksync and of the Bun it runs on.
import pkg from "../../package.json" with { type: "json" };
import { defineCommand, options } from "./command.ts";
import { EXIT } from "./exit.ts";
import { out } from "./io.ts";

// Any arguments but --help are ignored, as they always were: no options schema is enforced.
function run(argv: string[]): number {
  if (argv.includes("--help") || argv.includes("-h")) return out(help.version), EXIT.ok;
  out(`ticksync ${pkg.version} (bun ${Bun.version})`);
  return EXIT.ok;
}

const help = {
  version: `Usage: ticksync version\n`,
};

export const versionCommand = defineCommand({
  type: "version",
  aliases: ["--version"],
  listed: [["version", "print the version"]],
  schema: options({}),
  help,
  run,
});
