// `ticksync config check|schema`: validate a config without starting anything; print its JSON Schema.
import { configJsonSchema, loadConfig } from "../config/load.ts";
import { redactUrl } from "../lib/redact.ts";
import { defineRawCommand, helpText, options, parseOptions, UsageError } from "./command.ts";
import { CONFIG_HELP, configPath } from "./context.ts";
import { EXIT } from "./exit.ts";
import { out } from "./io.ts";
import { sourceTypesHelp } from "../sources/registry.ts";

const schema = options({});

function check(configFlag: string | undefined): number {
  const loaded = loadConfig(configPath(configFlag));
  const c = loaded.config;
  out(`config ok${loaded.file ? `: ${loaded.file}` : " (defaults and environment)"}`);
  out(`  store   ${redactUrl(c.store.url)}`);
  out(`  server  ${c.server.host}:${c.server.port}`);
  out(`  sources ${Object.entries(c.sources).map(([n, s]) => `${n} (${s.type})`).join(", ") || "none"}`);
  out(`  jobs    ${c.jobs.map((j) => `${j.name}${j.schedule ? ` [${j.schedule} ${j.timeZone}]` : ""}`).join(", ") || "none"}`);
  return EXIT.ok;
}

function run(argv: string[]): number {
  // A flag first (`config --help`) is no subcommand, as for instruments.
  const sub = argv[0]?.startsWith("-") ? undefined : argv[0];
  const { values: v } = parseOptions(schema, sub === undefined ? argv : argv.slice(1));
  if (sub === "schema") {
    if (v.help) return out(help["config schema"]), EXIT.ok;
    out(JSON.stringify(configJsonSchema(), null, 2));
    return EXIT.ok;
  }
  if (sub === "check") return v.help ? (out(help["config check"]), EXIT.ok) : check(v.config);
  if (v.help || sub === undefined) return out(help["config check"] + "\n" + help["config schema"]), sub === undefined && !v.help ? EXIT.usage : EXIT.ok;
  throw new UsageError(`unknown config command: ${sub} (expected check or schema)`);
}

const help = {
  "config check": helpText(schema, {
    usage: `Usage: ticksync config check [--config FILE]`,
    about: `Validates the config (file, then TICKSYNC_* overrides) and prints a summary. Starts nothing,
opens nothing. Exit 0 when valid, 3 with every bad field named when not.`,
    footers: [`Source types ([sources.<name>] type = …; every field: docs/config.md):\n${sourceTypesHelp()}`, CONFIG_HELP],
  }),
  "config schema": helpText(schema, {
    usage: `Usage: ticksync config schema`,
    about: `Prints the JSON Schema of the config file, derived from the same valibot schemas that validate
it. Point an editor at it, or set "$schema" in a JSON config.`,
  }),
};

export const configCommand = defineRawCommand({
  type: "config",
  listed: [
    ["config check", "validate a config file without starting anything"],
    ["config schema", "print the config's JSON Schema (for editors)"],
  ],
  schema,
  help,
  run,
});
