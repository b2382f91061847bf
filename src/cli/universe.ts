// `ticksync universe list|show`: the bundled symbol lists and the config's own.
import { ConfigError, loadConfig } from "../config/load.ts";
import { formatUniverseList, listUniverses, resolveUniverse } from "../universes/universes.ts";
import { defineRawCommand, flag, helpText, options, parseOptions, unlisted, UsageError } from "./command.ts";
import { configPath } from "./context.ts";
import { EXIT } from "./exit.ts";
import { out } from "./io.ts";

const schema = options({
  symbols: unlisted(flag("list each universe's symbols")),
});

function run(argv: string[]): number {
  // A flag first (`universe --help`) is no subcommand, as for instruments.
  const sub = argv[0]?.startsWith("-") ? undefined : argv[0];
  const { values: v, positionals } = parseOptions(schema, sub === undefined ? argv : argv.slice(1));
  if (v.help || sub === undefined) return out(help.universe), sub === undefined && !v.help ? EXIT.usage : EXIT.ok;
  if (sub !== "list" && sub !== "show") throw new UsageError(`unknown universe command: ${sub} (expected list or show)`);
  const loaded = loadConfig(configPath(v.config));
  if (sub === "list") {
    const user = Object.keys(loaded.config.universes).map((name) => {
      const r = resolveUniverse(name, loaded.config.universes);
      if (!r.ok) throw new ConfigError(loaded.file, [{ path: `universes.${name}`, message: r.reason }]);
      return r.universe;
    });
    out(formatUniverseList([...listUniverses(), ...user]));
    return EXIT.ok;
  }
  const name = positionals[0];
  if (!name) throw new UsageError("universe show needs a NAME");
  const r = resolveUniverse(name, loaded.config.universes);
  if (!r.ok) throw new UsageError(r.reason);
  out(formatUniverseList([r.universe], { symbols: true }));
  return EXIT.ok;
}

const help = {
  universe: helpText(schema, {
    usage: `Usage: ticksync universe list
       ticksync universe show NAME`,
    about: `Bundled universes, each with the date it is as of (universe list prints them):
${listUniverses()
  .filter((u) => u.bundled)
  .map((u) => `  ${u.name.padEnd(8)}${u.title}`)
  .join("\n")}
Your own lists go in the config:

  [universes]
  mine = ["PKN.WA", "cdr.pl", "aapl.us", "@wig80"]

and a provider source uses one with universe = "mine".`,
  }),
};

export const universeCommand = defineRawCommand({
  type: "universe",
  listed: [["universe list", "the bundled symbol lists (WIG80, S&P 500, US ETFs) and your own"]],
  schema,
  help,
  run,
});
