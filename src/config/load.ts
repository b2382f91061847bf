// Loading config: a JSON or TOML file, then TICKSYNC_* environment overrides, then validation.
// A bad config never half-starts the service: it stops with the path of each bad field, what
// was expected, and (for overrides) the variable it came from.
import * as v from "valibot";
import { toJsonSchema } from "@valibot/to-json-schema";
import { existsSync, readFileSync } from "node:fs";
import { dirname, extname, resolve } from "node:path";
import { configSchema, type Config } from "./schema.ts";
import { storeFor } from "../stores/registry.ts";
import { addSecrets, collectSecrets, isSecretKey, redact } from "../lib/redact.ts";
import { errorText } from "../lib/errors.ts";

export type ConfigIssue = { path: string; message: string; origin?: string };

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(
    readonly file: string | null,
    readonly issues: ConfigIssue[],
  ) {
    // Scrubbed: valibot's messages quote the input, which may be a password or a token.
    super(
      redact(
        `invalid config${file ? ` in ${file}` : ""}:\n` +
          issues.map((i) => `  - ${i.path || "(root)"}: ${i.message}${i.origin ? ` (from ${i.origin})` : ""}`).join("\n"),
      ),
    );
  }
}

export type LoadedConfig = { config: Config; file: string | null; baseDir: string };

const ENV_PREFIX = "TICKSYNC_";
/** Variables that are not config overrides. */
const ENV_RESERVED = new Set(["TICKSYNC_CONFIG", "TICKSYNC_DEBUG", "TICKSYNC_FUZZ", "TICKSYNC_FUZZ_SEED"]);
/** TICKSYNC_TEST_*: the test harness's own (server URLs), never config. */
const ENV_TEST_PREFIX = "TICKSYNC_TEST_";

const camel = (segment: string) => segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function parseEnvValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/**
 * Apply TICKSYNC_* overrides. Levels are separated by a double underscore and each level is
 * written in upper snake case: TICKSYNC_SERVER__PORT=9090 sets server.port,
 * TICKSYNC_INGEST__BATCH_SIZE sets ingest.batchSize, TICKSYNC_SOURCES__DEMO__PATH sets
 * sources.demo.path. Values are JSON when they parse as JSON (numbers, booleans), else text.
 * A top-level section is created when absent (it has defaults); an override inside an entry the
 * config does not have (sources.poly, sinks.app, alerts.email…) is ignored with a warning that
 * names the variable: people export every key they own in a shell profile.
 * Returns the origin of each overridden path for error messages.
 */
export function applyEnvOverrides(
  raw: Record<string, unknown>,
  env: Record<string, string | undefined>,
  warn: (message: string) => void = () => {},
): Map<string, string> {
  const origins = new Map<string, string>();
  for (const [name, value] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    if (!name.startsWith(ENV_PREFIX) || ENV_RESERVED.has(name) || name.startsWith(ENV_TEST_PREFIX) || value === undefined) continue;
    const segments = name.slice(ENV_PREFIX.length).split("__").filter(Boolean);
    if (segments.length === 0) continue;
    let node: Record<string, unknown> = raw;
    const path: string[] = [];
    let missing: string | null = null;
    for (const [i, seg] of segments.entries()) {
      // Match an existing key case-insensitively (source names keep their own spelling).
      const existing = Object.keys(node).find((k) => Object.hasOwn(node, k) && (k.toLowerCase() === seg.toLowerCase() || k === camel(seg)));
      const key = existing ?? (Array.isArray(node) && /^\d+$/.test(seg) ? seg : camel(seg));
      path.push(key);
      if (i === segments.length - 1) break;
      const child = Object.hasOwn(node, key) ? node[key] : undefined;
      if (typeof child !== "object" || child === null) {
        // Only a top-level section may be created; deeper, the entry must exist in the config.
        if (i > 0 || child !== undefined) {
          missing = path.join(".");
          break;
        }
        node[key] = {};
      }
      node = node[key] as Record<string, unknown>;
    }
    if (missing !== null) {
      warn(`${name} ignored: the config has no ${missing}`);
      continue;
    }
    const key = path[path.length - 1]!;
    // Never through the prototype chain (TICKSYNC___PROTO__…): define an own property.
    Object.defineProperty(node, key, { value: parseEnvValue(value), enumerable: true, writable: true, configurable: true });
    origins.set(path.join("."), name);
  }
  return origins;
}

function issuePath(issue: v.BaseIssue<unknown>): string {
  return (issue.path ?? [])
    .map((p) => p.key)
    .reduce<string>((acc, k) => (typeof k === "number" ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k)), "");
}

/** Values of TICKSYNC_* variables that hold secrets: a secret-named last level, or a URL's password. */
function envSecrets(env: Record<string, string | undefined>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || name.startsWith(ENV_TEST_PREFIX) || value === undefined) continue;
    const key = isSecretKey(camel(name.split("__").pop() ?? "")) ? "secret" : /WEBHOOK/i.test(name) ? "webhook" : "value";
    out.push(...collectSecrets({ [key]: parseEnvValue(value) }));
    if (key === "secret") out.push(value);
  }
  return out;
}

/** Values written after a secret-named key in a file that may not parse (its error may quote them). */
function textSecrets(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/["']?([A-Za-z_][\w-]*)["']?\s*[=:]\s*(\[[^\]]*\]?|"[^"\n]*"?|'[^'\n]*'?|[^\s,}\]#]+)/g)) {
    if (!isSecretKey(m[1]!)) continue;
    const value = m[2]!;
    // A list of tokens: each quoted string in it; else the value without its quotes.
    if (value.startsWith("[")) for (const q of value.matchAll(/"([^"\n]*)"?|'([^'\n]*)'?/g)) out.push(q[1] ?? q[2] ?? "");
    else out.push(value.replace(/^["']|["']$/g, ""));
  }
  return out;
}

function readFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(file, [{ path: "", message: `cannot read the config file: ${(e as NodeJS.ErrnoException).code ?? errorText(e)}` }]);
  }
  // A `${NAME}` reference names a secret without holding it: the value it expands to is the secret.
  addSecrets(textSecrets(text).filter((t) => !/^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(t)));
  const ext = extname(file).toLowerCase();
  try {
    const parsed = ext === ".toml" ? Bun.TOML.parse(text) : JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
      throw new ConfigError(file, [{ path: "", message: "expected a table/object at the top level" }]);
    return parsed as Record<string, unknown>;
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(file, [{ path: "", message: `cannot parse ${ext === ".toml" ? "TOML" : "JSON"}: ${errorText(e)}` }]);
  }
}

/** The TICKSYNC_* variable that overrides the field at `path` (["sinks", "app", "password"]). */
export const overrideVariable = (path: readonly string[]): string =>
  ENV_PREFIX + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()).join("__");

/** `${NAME}` in a file's string value: the environment variable NAME; `$${` is a literal `${`. */
const ENV_REFERENCE = /\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Replace `${NAME}` references in every string of a parsed file with the environment's values,
 * so a file can name its secrets without holding them (`password = "${PB_PASSWORD}"`). A reference
 * to an unset variable is an issue at its field: a secret silently empty would fail later, worse.
 */
export function expandEnvReferences(raw: unknown, env: Record<string, string | undefined>, path = "", issues: ConfigIssue[] = []): { value: unknown; issues: ConfigIssue[] } {
  if (typeof raw === "string") {
    if (!raw.includes("${")) return { value: raw, issues };
    const value = raw.replace(ENV_REFERENCE, (whole, escaped: string | undefined, name: string) => {
      if (escaped) return whole.slice(1);
      const found = env[name];
      if (found === undefined) issues.push({ path, message: `environment variable ${name} is not set (the file refers to it as \${${name}})` });
      return found ?? "";
    });
    return { value, issues };
  }
  if (Array.isArray(raw)) return { value: raw.map((x, i) => expandEnvReferences(x, env, `${path}[${i}]`, issues).value), issues };
  if (typeof raw === "object" && raw !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(raw)) Object.defineProperty(out, k, { value: expandEnvReferences(x, env, path ? `${path}.${k}` : k, issues).value, enumerable: true, writable: true, configurable: true });
    return { value: out, issues };
  }
  return { value: raw, issues };
}

/** Validate an already parsed config object. */
export function parseConfig(raw: unknown, file: string | null = null, origins = new Map<string, string>()): Config {
  const result = v.safeParse(configSchema, raw);
  if (result.success) return result.output;
  const issues = result.issues.map((i) => {
    const path = issuePath(i);
    let message = i.message;
    // A bad secret is described without its value (valibot's message quotes what it received).
    if (path.split(/[.[\]]/).some((p) => p && isSecretKey(p))) message = message.replace(/,? but received [^]*$/, "");
    // valibot says "Invalid key: Expected never"; a person wants to hear the field is unknown.
    if (i.kind === "schema" && i.expected === "never" && i.type === "strict_object") message = `unknown field ${JSON.stringify(path.split(".").pop())}: check its spelling (ticksync config schema lists every field)`;
    // A required field that is absent: say so, and name the variable that can supply it.
    if (i.kind === "schema" && i.type === "strict_object" && i.received === "undefined" && path) {
      message = `required field is missing: set it in the config file or with ${overrideVariable(path.split("."))}`;
    }
    const origin = [...origins].find(([p]) => path === p || path.startsWith(`${p}.`) || p.startsWith(`${path}.`))?.[1];
    // A list given as plain text in a variable: show how to write it.
    if (origin?.startsWith(ENV_PREFIX) && i.expected === "Array") message = `expected a JSON list, e.g. ${origin}='["…"]'`;
    return { path, message, ...(origin ? { origin } : {}) };
  });
  throw new ConfigError(file, issues);
}

/** Command-line flags, applied after the environment: the most specific setting wins. */
export type FlagOverrides = { store?: { url?: string }; server?: { host?: string; port?: number }; ingest?: { batchSize?: number }; sources?: Record<string, unknown> };

/** Load, override and validate. `file` null means defaults plus environment only. */
export function loadConfig(
  file: string | null,
  env: Record<string, string | undefined> = process.env,
  flags: FlagOverrides = {},
  warn: (message: string) => void = (m) => process.stderr.write(`ticksync: warning: ${m}\n`),
): LoadedConfig {
  let raw: Record<string, unknown> = {};
  let resolved: string | null = null;
  if (file) {
    resolved = resolve(file);
    if (!existsSync(resolved)) throw new ConfigError(file, [{ path: "", message: `config file not found: ${file}` }]);
    const expanded = expandEnvReferences(readFile(resolved), env);
    if (expanded.issues.length) throw new ConfigError(file, expanded.issues);
    raw = expanded.value as Record<string, unknown>;
  }
  // Secrets are known before anything can print them: those in the file, in TICKSYNC_* variables
  // (also ignored ones: a secret-named variable's value) and in flags.
  addSecrets(collectSecrets(raw));
  addSecrets(envSecrets(env));
  addSecrets(collectSecrets(flags));
  const origins = applyEnvOverrides(raw, env, warn);
  addSecrets(collectSecrets(raw));
  for (const [section, values] of Object.entries(flags) as [string, Record<string, unknown> | undefined][]) {
    if (!values) continue;
    const target = (typeof raw[section] === "object" && raw[section] !== null ? raw[section] : (raw[section] = {})) as Record<string, unknown>;
    for (const [k, val] of Object.entries(values)) {
      if (val === undefined) continue;
      target[k] = val;
      origins.set(`${section}.${k}`, `--${section === "sources" ? "flags" : k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}`);
    }
  }
  const config = parseConfig(raw, file, origins);
  const baseDir = resolved ? dirname(resolved) : process.cwd();
  // A relative SQLite store path is relative to the config file, as source paths are.
  const url = config.store.url;
  const relativeTo = storeFor(url).relativeTo;
  if (relativeTo) config.store.url = relativeTo(url, baseDir);
  return { config, file: resolved, baseDir };
}

/** The parts of a JSON Schema node the config's readers use (docs/config.md, `init`'s starter). */
export type JsonSchemaNode = {
  type?: string;
  properties?: Record<string, JsonSchemaNode>;
  required?: string[];
  additionalProperties?: JsonSchemaNode | boolean;
  items?: JsonSchemaNode;
  oneOf?: JsonSchemaNode[];
  anyOf?: JsonSchemaNode[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  description?: string;
  examples?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  format?: string;
};

/**
 * The JSON Schema of the config file, for editors (`$schema`, Taplo's `#:schema`) and
 * docs/config.md: every field's description and default come from the valibot schemas.
 */
export function configJsonSchema(): Record<string, unknown> {
  const schema = toJsonSchema(configSchema, { errorMode: "ignore" }) as Record<string, unknown>;
  return { ...schema, title: "ticksync config" };
}
