// Generates docs/config.md, the config file reference, from the config's JSON Schema (itself
// derived from the valibot schemas and their descriptions): one section per top-level key, one
// table row per field (type, default, description), one sub-section per variant of a typed
// entry (each source type, each alert rule kind). Run: bun scripts/gen-config-docs.ts
// test/config-docs.test.ts fails when the file is stale or a field has no description.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { configJsonSchema, type JsonSchemaNode } from "../src/config/load.ts";

type JsonSchema = JsonSchemaNode;

/** A table row: a field (an object property) or the value of a map's entries. */
type Row = { path: string; type: string; default: string; description: string; field: boolean };
/** `base` is the absolute path of what the rows are relative to, `key` the same with the variant named (for reports). */
type Section = { title: string; level: number; base: string; key: string; description: string; rows: Row[] };

export const CONFIG_DOCS_PATH = join(import.meta.dir, "..", "docs", "config.md");

/** Keys that are no setting of the service (the editor's pointer to this schema). */
const NOT_SETTINGS = new Set(["$schema"]);

const joinPath = (prefix: string, name: string) => (prefix ? `${prefix}.${name}` : name);

function range(s: JsonSchema): string {
  const lo = s.minimum !== undefined ? `≥ ${s.minimum}` : s.exclusiveMinimum !== undefined ? `> ${s.exclusiveMinimum}` : "";
  const hi = s.maximum !== undefined ? `≤ ${s.maximum}` : "";
  const both = [lo, hi].filter(Boolean).join(", ");
  return both ? ` (${both})` : "";
}

/** A variant list whose options all carry a constant discriminator (`type`, `kind`). */
function variantsOf(s: JsonSchema): { tag: string; options: JsonSchema[] } | null {
  const options = s.oneOf ?? s.anyOf;
  if (!options?.length) return null;
  const first = options[0]!.properties ?? {};
  const tag = Object.keys(first).find((k) => options.every((o) => o.properties?.[k]?.const !== undefined));
  return tag ? { tag, options } : null;
}

function typeOf(s: JsonSchema): string {
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((x) => JSON.stringify(x)).join(" | ");
  const tagged = variantsOf(s);
  if (tagged) return `object (by ${tagged.tag})`;
  const alternatives = s.oneOf ?? s.anyOf;
  if (alternatives) return alternatives.map(typeOf).join(" or ");
  if (s.type === "array") return `${s.items ? typeOf(s.items) : "any"}[]`;
  if (s.type === "object") return typeof s.additionalProperties === "object" ? `map of ${typeOf(s.additionalProperties)}` : "object";
  if (s.type === "number" || s.type === "integer") return s.type + range(s);
  if (s.type === "string" && s.format) return `string (${s.format})`;
  return s.type ?? "any";
}

function defaultOf(s: JsonSchema, required: boolean): string {
  if (required) return "required";
  if (s.default === undefined) return "";
  if (typeof s.default === "object" && s.default !== null && !Array.isArray(s.default) && Object.keys(s.default).length === 0) return "";
  return `\`${JSON.stringify(s.default)}\``;
}

function addProperties(obj: JsonSchema, prefix: string, section: Section, out: Section[]): void {
  for (const [name, p] of Object.entries(obj.properties ?? {})) {
    const path = joinPath(prefix, name);
    const required = obj.required?.includes(name) ?? false;
    section.rows.push({ path, type: typeOf(p), default: defaultOf(p, required), description: p.description ?? "", field: true });
    walk(p, path, section, out);
  }
}

/** The rows (and variant sections) inside `s`, found at `path` relative to the section. */
function walk(s: JsonSchema, path: string, section: Section, out: Section[]): void {
  const tagged = variantsOf(s);
  if (tagged) {
    const at = joinPath(section.base, path);
    for (const option of tagged.options) {
      const tag = option.properties![tagged.tag]!;
      const value = tag.const;
      const sub: Section = {
        title: `\`${at}\`, ${tagged.tag} = ${JSON.stringify(value)}`,
        level: section.level + 1,
        base: at,
        key: `${joinPath(section.key, path)}{${tagged.tag}=${String(value)}}`,
        description: tag.description ?? option.description ?? "",
        rows: [],
      };
      out.push(sub);
      addProperties(option, "", sub, out);
    }
    return;
  }
  if (s.properties) addProperties(s, path, section, out);
  if (s.items) walk(s.items, path ? `${path}[]` : path, section, out);
  if (typeof s.additionalProperties === "object") {
    const entry = s.additionalProperties;
    const at = joinPath(path, "<name>");
    if (!variantsOf(entry)) section.rows.push({ path: at, type: typeOf(entry), default: "", description: entry.description ?? "", field: false });
    walk(entry, at, section, out);
  }
}

/** Every section of the reference, in the config's order. */
export function configSections(schema = configJsonSchema() as JsonSchema): Section[] {
  const out: Section[] = [];
  for (const [name, s] of Object.entries(schema.properties ?? {})) {
    if (NOT_SETTINGS.has(name)) continue;
    const key = s.type === "array" ? `${name}[]` : name;
    const section: Section = { title: `\`${name}\``, level: 2, base: key, key, description: s.description ?? "", rows: [] };
    out.push(section);
    walk(s, "", section, out);
  }
  return out;
}

/** Config fields without a description, as paths (`jobs[].name`, `sinks.<name>{type=pocketbase}.url`). */
export function missingDescriptions(schema = configJsonSchema() as JsonSchema): string[] {
  const missing = Object.entries(schema.properties ?? {})
    .filter(([name, s]) => !NOT_SETTINGS.has(name) && !s.description)
    .map(([name]) => name);
  for (const section of configSections(schema)) for (const row of section.rows) if (row.field && !row.description) missing.push(joinPath(section.key, row.path));
  return missing;
}

// Text is markdown: outside `code`, angle brackets (`<path>` is not HTML) and stars are escaped;
// in tables, pipes everywhere.
const markdown = (text: string) =>
  text
    .replace(/\s*\n\s*/g, " ")
    .split("`")
    .map((part, i) => (i % 2 ? part : part.replace(/\*/g, "\\*").replace(/</g, "&lt;")))
    .join("`");
const cell = (text: string) => markdown(text).replace(/\|/g, "\\|");
const code = (text: string) => (text ? `\`${text}\`` : "");

/** docs/config.md's text. */
export function renderConfigDocs(schema = configJsonSchema() as JsonSchema): string {
  const lines = [
    "# Configuration reference",
    "",
    "<!-- Generated by `bun scripts/gen-config-docs.ts` from the config schema; do not edit by hand. -->",
    "",
    "The config file is TOML or JSON (`ticksync config schema` prints its JSON Schema for editors).",
    "Every field can also be set with a `TICKSYNC_*` variable: levels joined by `__`, each in upper",
    "snake case (`TICKSYNC_SERVER__PORT=9090`, `TICKSYNC_SOURCES__DEMO__PATH=/data`). `<name>` stands",
    "for a name you choose (letters, digits, `_` and `-`, starting with a letter).",
    "",
    "## Starting a config: `ticksync init`",
    "",
    "`ticksync init` writes a starter `ticksync.toml` (`--out FILE`) and `ticksync.schema.json` beside",
    "it; each field it writes carries the description below as a comment (both come from the schema),",
    "and `ticksync config check` and Taplo accept it as written. On a terminal it asks for the store,",
    "the sources and the sinks (numbered choices, Enter takes the default); without one (a script,",
    "CI) it never waits for input and takes the flags: `--store URL`, `--source NAME=TYPE` and",
    "`--sink NAME=TYPE` (repeatable), `--token` (an admin API token for the server), `--yes` (ask",
    "nothing on a terminal either), `--force` (replace an existing file; without it init exits 2).",
    "Each source gets an ingest job and each sink a sync job. A secret is never copied into the file:",
    "a field that needs one refers to its variable (next section), and a store URL with a password,",
    "or one given as `TICKSYNC_STORE__URL`, becomes `url = \"${TICKSYNC_STORE__URL}\"`.",
    "",
    "## Secrets: `${NAME}` references",
    "",
    "A string value in the file may refer to an environment variable as `${NAME}` (letters, digits",
    "and `_`); it is read when the config is loaded, and a variable that is not set is an error naming",
    'the field. `$${` is a literal `${`. `password = "${TICKSYNC_SINKS__APP__PASSWORD}"` keeps a',
    "Pocketbase password out of the file (a `TICKSYNC_*` name is also that field's override, so both",
    "ways give the same value). `ticksync init` writes every secret it is given this way (a store URL",
    'with a password as `url = "${TICKSYNC_STORE__URL}"`) and lists the variables to set.',
    "",
    "## Editors: completion and checks",
    "",
    "`ticksync config schema --out ticksync.schema.json` writes the JSON Schema of this file (`ticksync",
    "init` writes it beside the config it makes); every field in it has its description and default.",
    "",
    "- TOML: a first line `#:schema ./ticksync.schema.json` (a path relative to the config file, or a",
    "  `file://` or `https://` URL) points Taplo at it: in VS Code, the *Even Better TOML* extension",
    "  (`tamasfe.even-better-toml`) then completes keys, shows each description on hover and marks a",
    "  misspelt key or a wrong type. From a shell:",
    "  `taplo check ticksync.toml` (the directive), or `taplo check --schema file://$PWD/ticksync.schema.json",
    "  ticksync.toml`.",
    '- JSON: a key `"$schema": "./ticksync.schema.json"`; VS Code reads it without an extension.',
    "  ticksync itself ignores the key.",
    "",
    "The schema checks what a JSON Schema can: names, types, ranges, patterns. What it cannot (a job's",
    "source defined in `sources`, a cron expression, a time zone) `ticksync config check` does.",
  ];
  for (const section of configSections(schema)) {
    lines.push("", `${"#".repeat(section.level)} ${section.title}`);
    if (section.description) lines.push("", markdown(section.description));
    if (!section.rows.length) continue;
    lines.push("", "| Field | Type | Default | Description |", "| --- | --- | --- | --- |");
    for (const r of section.rows) lines.push(`| ${code(r.path)} | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.description)} |`);
  }
  return lines.join("\n") + "\n";
}

if (import.meta.main) {
  writeFileSync(CONFIG_DOCS_PATH, renderConfigDocs());
  const missing = missingDescriptions();
  console.log(`wrote ${CONFIG_DOCS_PATH}${missing.length ? `; ${missing.length} fields have no description yet` : ""}`);
}
