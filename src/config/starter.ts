// The starter config `ticksync init` writes: TOML whose comments are the config schema's own
// descriptions (the text of the JSON Schema and docs/config.md), opened by the `#:schema` line
// editors (Taplo, Even Better TOML) follow. Secrets are never written in clear: a field that holds
// one is a `${NAME}` reference the loader fills from the environment (load.ts).
import { configJsonSchema, type JsonSchemaNode, overrideVariable, parseConfig } from "./load.ts";
import { isSecretKey, redactUrl } from "../lib/redact.ts";

type JsonSchema = JsonSchemaNode;

/** A named component of a type: `--source quotes=polygon`. */
export type StarterChoice = { name: string; type: string };

export type StarterPlan = {
  /** The store's URL; undefined: the schema's default. */
  storeUrl?: string;
  /** The URL came from TICKSYNC_STORE__URL: the file refers to the variable. */
  storeFromEnv?: boolean;
  sources: StarterChoice[];
  sinks: StarterChoice[];
  /** A generated API token for the server (admin role). */
  token?: string;
  /** The schema file, relative to the config (the `#:schema` line). */
  schemaFile: string;
  /** The environment init runs in: an optional secret already there is referenced, not left commented. */
  env: Record<string, string | undefined>;
};

export type Starter = {
  text: string;
  /** Environment variables the file refers to (`${NAME}`). */
  variables: string[];
};

/** When the ingest jobs of a starter run (daily, after the US close) besides at start. */
const STARTER_SCHEDULE = "0 30 22 * * *";
const WIDTH = 100;

/** A description as `# ` lines of at most WIDTH characters. */
function comment(text: string | undefined): string[] {
  if (!text) return [];
  const lines: string[] = [];
  let line = "#";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line.length + 1 + word.length > WIDTH && line !== "#") {
      lines.push(line);
      line = "#";
    }
    line += ` ${word}`;
  }
  return [...lines, line];
}

// Written here rather than by a TOML library (none is a dependency): the values are strings,
// numbers, booleans and lists of them. JSON's string escapes are TOML's; DEL is the one control
// character JSON leaves raw and TOML forbids.
function tomlValue(x: unknown): string {
  if (typeof x === "string") return JSON.stringify(x).replace(/\x7f/g, "\\u007F");
  if (Array.isArray(x)) return `[${x.map(tomlValue).join(", ")}]`;
  if (typeof x === "number" || typeof x === "boolean") return String(x);
  throw new Error(`starter config: no TOML form for ${JSON.stringify(x)}`);
}
const tomlKey = (k: string) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : tomlValue(k));
const reference = (variable: string) => `\${${variable}}`;

/** The option of a tagged union (`type` = "csv") among oneOf/anyOf. */
function variant(s: JsonSchema, tag: string, value: string): JsonSchema {
  const found = (s.oneOf ?? s.anyOf ?? [s]).find((o) => o.properties?.[tag]?.const === value);
  if (!found) throw new Error(`starter config: no ${tag} ${value} in the schema`);
  return found;
}

/** Writes fields with their descriptions; `commented` leaves the line as a hint. */
class Lines {
  readonly lines: string[] = [];
  readonly variables: string[] = [];
  blank(): void {
    this.lines.push("");
  }
  note(text: string | undefined): void {
    this.lines.push(...comment(text));
  }
  /** A comment that introduces the tables after it (the sources, the jobs). */
  section(description: string | undefined): void {
    this.blank();
    this.note(description);
  }
  table(header: string, description?: string): void {
    this.blank();
    this.note(description);
    this.lines.push(header);
  }
  field(schema: JsonSchema | undefined, key: string, value: unknown, commented = false): void {
    this.note(schema?.description);
    this.lines.push(`${commented ? "# " : ""}${tomlKey(key)} = ${tomlValue(value)}`);
  }
  secret(schema: JsonSchema | undefined, key: string, variable: string, commented = false): void {
    this.field(schema, key, reference(variable), commented);
    if (!commented) this.variables.push(variable);
  }
}

/** A password in a URL, unless it is a `${NAME}` reference already. */
function holdsPassword(url: string): boolean {
  try {
    const password = decodeURIComponent(new URL(url).password);
    return password !== "" && !/^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(password);
  } catch {
    return false;
  }
}

function storeLines(out: Lines, s: JsonSchema, plan: StarterPlan): void {
  const store = s.properties!.store!;
  const url = store.properties!.url!;
  out.table("[store]", store.description);
  const value = plan.storeUrl ?? (url.default as string);
  if (plan.storeFromEnv || holdsPassword(value)) {
    out.note(url.description);
    // The URL is a secret (it holds the password): the whole of it comes from the variable the
    // environment overrides store.url with anyway (docs/operations.md), shown here without it.
    out.note(`From the environment: ${redactUrl(value)}`);
    out.secret(undefined, "url", overrideVariable(["store", "url"]));
  } else out.field(url, "url", value);
}

function serverLines(out: Lines, s: JsonSchema, plan: StarterPlan): void {
  const server = s.properties!.server!;
  out.table("[server]", server.description);
  for (const key of ["host", "port"]) out.field(server.properties![key], key, server.properties![key]!.default);
  if (plan.token === undefined) return;
  const token = server.properties!.token!;
  const entry = token.items!.properties!;
  out.table("[[server.token]]", token.description);
  out.field(entry.name, "name", "admin");
  out.field(entry.secret, "secret", plan.token);
  out.field(entry.role, "role", "admin");
}

/** A source or sink: its type, its required fields, and its optional secrets. */
function componentLines(out: Lines, table: "sources" | "sinks", entries: JsonSchema, choice: StarterChoice, env: StarterPlan["env"]): void {
  const schema = variant(entries, "type", choice.type);
  out.table(`[${table}.${tomlKey(choice.name)}]`);
  out.field(schema.properties!.type, "type", choice.type);
  for (const [key, field] of Object.entries(schema.properties!)) {
    if (key === "type") continue;
    const required = schema.required?.includes(key) ?? false;
    // A secret, or a field whose description sends it to the environment (a superuser's e-mail).
    const secret = field.type === "string" && (isSecretKey(key) || /TICKSYNC_/.test(field.description ?? ""));
    const variable = overrideVariable([table, choice.name, key]);
    if (secret) {
      if (required || env[variable] !== undefined) out.secret(field, key, variable);
      else out.secret(field, key, variable, true);
    } else if (field.examples?.[0] !== undefined) {
      // A field's first example is its starter value (a replay's `from`, optional on its own, is
      // needed when `csv` is not given).
      out.field(field, key, field.examples[0]);
    } else if (required) throw new Error(`starter config: ${table}.${choice.name}.${key} has no example to start from`);
  }
}

/** A job; its fields are described at their first use only (the jobs repeat them). */
function jobLines(out: Lines, jobs: JsonSchema, fields: Record<string, unknown>, described: Set<string>): void {
  const props = jobs.items!.properties!;
  out.table("[[jobs]]");
  for (const [key, value] of Object.entries(fields)) {
    out.field(described.has(key) ? undefined : props[key], key, value);
    described.add(key);
  }
}

/** The starter config's text, checked against the config schema before it is returned. */
export function renderStarter(plan: StarterPlan): Starter {
  const s = configJsonSchema() as JsonSchema;
  const out = new Lines();
  out.lines.push(
    `#:schema ${plan.schemaFile}`,
    "# ticksync config, written by `ticksync init`. Each comment is the field's description from the",
    "# config schema (every field: docs/config.md or `ticksync config schema`). A value written",
    '# "${NAME}" is read from the environment variable NAME when the config is loaded.',
  );
  storeLines(out, s, plan);
  serverLines(out, s, plan);
  const sources = s.properties!.sources!;
  if (plan.sources.length) out.section(sources.description);
  for (const c of plan.sources) componentLines(out, "sources", sources.additionalProperties as JsonSchema, c, plan.env);
  const sinks = s.properties!.sinks!;
  if (plan.sinks.length) out.section(sinks.description);
  for (const c of plan.sinks) componentLines(out, "sinks", sinks.additionalProperties as JsonSchema, c, plan.env);
  const jobs = s.properties!.jobs!;
  if (plan.sources.length + plan.sinks.length) out.section(jobs.description);
  const described = new Set<string>();
  for (const c of plan.sources) jobLines(out, jobs, { name: `${c.name}-ingest`, kind: "ingest", source: c.name, schedule: STARTER_SCHEDULE, runOnStart: true }, described);
  for (const c of plan.sinks) jobLines(out, jobs, { name: `${c.name}-sync`, kind: "sync", sink: c.name, onEvents: true, runOnStart: true }, described);
  const text = out.lines.join("\n") + "\n";
  // The file must be one `ticksync config check` accepts ("${NAME}" is a string like any other here).
  parseConfig(Bun.TOML.parse(text), "the starter config");
  return { text, variables: [...new Set(out.variables)] };
}
