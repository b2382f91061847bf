// Loading config: a JSON or TOML file, then TICKSYNC_* environment overrides, then validation.
// A bad config never half-starts the service: it stops with the path of each bad field, what
// was expected, and (for overrides) the variable it came from.
import * as v from "valibot";
import { toJsonSchema } from "@valibot/to-json-schema";
import { existsSync, readFileSync } from "node:fs";
import { dirname, extname, isAbsolute, resolve } from "node:path";
import { configSchema, type Config } from "./schema.ts";

export type ConfigIssue = { path: string; message: string; origin?: string };

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(
    readonly file: string | null,
    readonly issues: ConfigIssue[],
  ) {
    super(
      `invalid config${file ? ` in ${file}` : ""}:\n` +
        issues.map((i) => `  - ${i.path || "(root)"}: ${i.message}${i.origin ? ` (from ${i.origin})` : ""}`).join("\n"),
    );
  }
}

export type LoadedConfig = { config: Config; file: string | null; baseDir: string };

const ENV_PREFIX = "TICKSYNC_";
/** Variables that are not config overrides. */
const ENV_RESERVED = new Set(["TICKSYNC_CONFIG"]);
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
 * Returns the origin of each overridden path for error messages.
 */
export function applyEnvOverrides(raw: Record<string, unknown>, env: Record<string, string | undefined>): Map<string, string> {
  const origins = new Map<string, string>();
  for (const [name, value] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    if (!name.startsWith(ENV_PREFIX) || ENV_RESERVED.has(name) || name.startsWith(ENV_TEST_PREFIX) || value === undefined) continue;
    const segments = name.slice(ENV_PREFIX.length).split("__").filter(Boolean);
    if (segments.length === 0) continue;
    let node: Record<string, unknown> = raw;
    const path: string[] = [];
    segments.forEach((seg, i) => {
      // Match an existing key case-insensitively (source names keep their own spelling).
      const existing = Object.keys(node).find((k) => k.toLowerCase() === seg.toLowerCase() || k === camel(seg));
      const key = existing ?? (Array.isArray(node) && /^\d+$/.test(seg) ? seg : camel(seg));
      path.push(key);
      if (i === segments.length - 1) node[key] = parseEnvValue(value);
      else {
        if (typeof node[key] !== "object" || node[key] === null) node[key] = {};
        node = node[key] as Record<string, unknown>;
      }
    });
    origins.set(path.join("."), name);
  }
  return origins;
}

function issuePath(issue: v.BaseIssue<unknown>): string {
  return (issue.path ?? [])
    .map((p) => p.key)
    .reduce<string>((acc, k) => (typeof k === "number" ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k)), "");
}

function readFile(file: string): Record<string, unknown> {
  const text = readFileSync(file, "utf8");
  const ext = extname(file).toLowerCase();
  try {
    const parsed = ext === ".toml" ? Bun.TOML.parse(text) : JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
      throw new ConfigError(file, [{ path: "", message: "expected a table/object at the top level" }]);
    return parsed as Record<string, unknown>;
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(file, [{ path: "", message: `cannot parse ${ext === ".toml" ? "TOML" : "JSON"}: ${(e as Error).message}` }]);
  }
}

/** Validate an already parsed config object. */
export function parseConfig(raw: unknown, file: string | null = null, origins = new Map<string, string>()): Config {
  const result = v.safeParse(configSchema, raw);
  if (result.success) return result.output;
  const issues = result.issues.map((i) => {
    const path = issuePath(i);
    let message = i.message;
    // valibot says "Invalid key: Expected never"; a person wants to hear the field is unknown.
    if (i.kind === "schema" && i.expected === "never" && i.type === "strict_object") message = `unknown field ${JSON.stringify(path.split(".").pop())}: check its spelling (ticksync config schema lists every field)`;
    // A required field that is absent: say so, and name the variable that can supply it.
    if (i.kind === "schema" && i.type === "strict_object" && i.received === "undefined" && path) {
      const env = ENV_PREFIX + path.split(".").map((p) => p.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()).join("__");
      message = `required field is missing: set it in the config file or with ${env}`;
    }
    const origin = [...origins].find(([p]) => path === p || path.startsWith(`${p}.`) || p.startsWith(`${path}.`))?.[1];
    return { path, message, ...(origin ? { origin } : {}) };
  });
  throw new ConfigError(file, issues);
}

/** Command-line flags, applied after the environment: the most specific setting wins. */
export type FlagOverrides = { store?: { url?: string }; server?: { host?: string; port?: number }; ingest?: { batchSize?: number }; sources?: Record<string, unknown> };

/** Load, override and validate. `file` null means defaults plus environment only. */
export function loadConfig(file: string | null, env: Record<string, string | undefined> = process.env, flags: FlagOverrides = {}): LoadedConfig {
  let raw: Record<string, unknown> = {};
  let resolved: string | null = null;
  if (file) {
    resolved = resolve(file);
    if (!existsSync(resolved)) throw new ConfigError(file, [{ path: "", message: `config file not found: ${file}` }]);
    raw = readFile(resolved);
  }
  const origins = applyEnvOverrides(raw, env);
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
  if (!/^(postgres(ql)?|questdb):\/\//i.test(url)) {
    const path = url.replace(/^(sqlite:|file:)/, "");
    if (!isAbsolute(path) && path !== ":memory:" && !path.startsWith("//")) config.store.url = `sqlite:${resolve(baseDir, path)}`;
  }
  return { config, file: resolved, baseDir };
}

/** The JSON Schema of the config file, for editors (`$schema`). */
export function configJsonSchema(): Record<string, unknown> {
  const schema = toJsonSchema(configSchema, { errorMode: "ignore" }) as Record<string, unknown>;
  return { ...schema, title: "ticksync config" };
}
