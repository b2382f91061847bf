// `ticksync version`: the version of ticksync and of the Bun it runs on.
import pkg from "../../package.json" with { type: "json" };
import { defineRawCommand, helpText, options } from "./command.ts";
import { EXIT } from "./exit.ts";
import { out } from "./io.ts";

const schema = options({});

// Any arguments but --help are ignored, as they always were: no options schema is enforced.
function run(argv: string[]): number {
  if (argv.includes("--help") || argv.includes("-h")) return out(help.version), EXIT.ok;
  out(`ticksync ${pkg.version} (bun ${Bun.version})`);
  return EXIT.ok;
}

const help = {
  version: helpText(schema, { usage: `Usage: ticksync version` }),
};

export const versionCommand = defineRawCommand({
  type: "version",
  aliases: ["--version"],
  listed: [["version", "print the version"]],
  schema,
  help,
  run,
});
