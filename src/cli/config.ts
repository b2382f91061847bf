// `ticksync config check|schema`: validate a config without starting anything; print its JSON Schema.
import { configJsonSchema, loadConfig } from "../config/load.ts";
import { redactUrl } from "../lib/redact.ts";
import { writeFileSync } from "node:fs";
import { defineRawCommand, helpText, options, parseOptions, text, UsageError } from "./command.ts";
import { CONFIG_HELP, configPath } from "./context.ts";
import { EXIT } from "./exit.ts";
import { out } from "./io.ts";
import { sourceTypesHelp } from "../sources/registry.ts";

const schema = options({});
const schemaOptions = options({
  out: text("config schema: write the schema to FILE instead of stdout (e.g. ticksync.schema.json beside the config)", "FILE"),
});

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
  const { values: v } = parseOptions(sub === "schema" ? schemaOptions : schema, sub === undefined ? argv : argv.slice(1));
  if (sub === "schema") {
    if (v.help) return out(help["config schema"]), EXIT.ok;
    const text = JSON.stringify(configJsonSchema(), null, 2) + "\n";
    const file = (v as { out?: string }).out;
    // Not through out(): the schema holds no secret, and its URL forms (user:pass@host) would be
    // masked by shape.
    if (file === undefined) process.stdout.write(text);
    else writeFileSync(file, text);
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
  "config schema": helpText(schemaOptions, {
    usage: `Usage: ticksync config schema [--out FILE]`,
    about: `Prints (or writes to FILE) the JSON Schema of the config file, derived from the same valibot
schemas that validate it, every field with its description and default. Editors complete and
check a config with it: a TOML config's first line "#:schema ./ticksync.schema.json" (Taplo, Even
Better TOML), a JSON config's "$schema": "./ticksync.schema.json" (docs/config.md, Editors).`,
  }),
};

export const configCommand = defineRawCommand({
  type: "config",
  listed: [
    ["config check", "validate a config file without starting anything"],
    ["config schema", "print the config's JSON Schema (for editors)"],
  ],
  // Every flag of either subcommand (config check parses without --out).
  schema: schemaOptions,
  help,
  run,
});
