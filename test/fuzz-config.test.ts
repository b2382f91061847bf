// Property tests of the config loader (src/config/load.ts + schema): random configs written as
// TOML or JSON (some damaged, some token soup), with random TICKSYNC_* variables, always end as a
// valid config or a ConfigError (each issue a path and an expectation), never another exception;
// and no secret of the input (passwords, tokens, API keys, webhook tokens) is ever in the error
// text or a warning. Suite: a fixed seed and bounded cases; `npm run fuzz` runs many more.
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { ConfigError, loadConfig } from "../src/config/load.ts";
import { clearSecrets } from "../src/lib/redact.ts";
import { FUZZ_TIMEOUT_MS, fuzzParams } from "./fuzz.ts";
import { tempDir } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-fuzz-config-");
afterAll(() => clearSecrets());

// Secrets: a marker no schema message contains, then letters, digits and a few URL-safe marks.
const secret = fc.stringMatching(/^[A-Za-z0-9._~!$-]{6,24}$/).map((s) => `Qz${s}`);
const junk = fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 }));
const name = fc.oneof(fc.constantFrom("demo", "poly", "app", "x", "constructor", "__proto__", "toString", "a-b"), fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,8}$/));
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 3 });

/** Where a secret can sit, and how it is written there (some shapes invalid on purpose). */
const secretSetting = (s: string) =>
  fc.constantFrom<[string[], unknown]>(
    [["store", "url"], `postgres://ticksync:${s}@127.0.0.1:5432/db`],
    [["store", "url"], `questdb://admin:${s}@127.0.0.1:8812/qdb?http=http://u:${s}@h:9000`],
    [["store", "url"], `postgres://ticksync@127.0.0.1/db?password=${s}`],
    [["server", "tokens"], [`${s}0123456789abcdef`]],
    [["server", "tokens"], s],
    [["server", "tokens"], [s]],
    [["server", "tokens"], 12],
    [["stream", "tokens"], [`${s}0123456789abcdef`, 5]],
    [["sources", "poly"], { type: "polygon", apiKey: s, symbols: ["AAPL.US"] }],
    [["sources", "yh"], { type: "yahoo", apiKey: [s] }],
    [["sources", "av"], { type: "alphavantage", apiKey: s, baseUrl: `not a url ${s}` }],
    [["sources", "stq"], { type: "stooq", apiKey: s, nope: 1 }],
    [["sources", "q"], { type: "postgres", url: `questdb://admin:${s}@127.0.0.1:8812/qdb`, table: "t" }],
    [["sources", "pg"], { type: "postgres", url: `postgres://u:${s}@h/db`, table: "bad table" }],
    [["sinks", "app"], { type: "pocketbase", url: `http://pb:${s}@127.0.0.1:8090`, email: "a@example.com", password: s }],
    [["sinks", "app"], { type: "pocketbase", url: "http://127.0.0.1:8090", email: "nope", password: [s] }],
    [["sinks", "app"], { type: "pocketbaze", password: s }],
    [["alerts", "webhook"], { url: `https://hooks.example.com/services/${s}` }],
    [["alerts", "webhook"], { url: `https://hooks.example.com/services/${s}`, format: "xml" }],
    [["alerts", "email"], { url: `smtp://mailer:${s}@mail.example.com:587`, from: "a@example.com", to: ["b@example.com"] }],
    [["alerts", "email"], { url: `smtps://mailer:${s}@mail.example.com`, from: s, to: [] }],
  );

function setPath(obj: Record<string, unknown>, path: string[], value: unknown) {
  let node = obj;
  for (const p of path.slice(0, -1)) {
    if (typeof node[p] !== "object" || node[p] === null || Array.isArray(node[p])) Object.defineProperty(node, p, { value: {}, enumerable: true, writable: true, configurable: true });
    node = node[p] as Record<string, unknown>;
  }
  Object.defineProperty(node, path[path.length - 1]!, { value, enumerable: true, writable: true, configurable: true });
}

// TOML writer for the generated objects (a small one: the generator's shapes only).
const tomlKey = (k: string) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k));
function tomlValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.filter((x) => x !== null).map(tomlValue).join(", ")}]`;
  if (v !== null && typeof v === "object") return `{ ${Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => `${tomlKey(k)} = ${tomlValue(x)}`).join(", ")} }`;
  return String(v);
}
function toToml(obj: Record<string, unknown>, prefix: string[] = []): string {
  const plain = (x: unknown) => x !== null && typeof x === "object" && !Array.isArray(x);
  const lines: string[] = [];
  for (const [k, v] of Object.entries(obj)) if (!plain(v) && v !== null) lines.push(`${tomlKey(k)} = ${tomlValue(v)}`);
  for (const [k, v] of Object.entries(obj))
    if (plain(v)) lines.push(`\n[${[...prefix, k].map(tomlKey).join(".")}]`, toToml(v as Record<string, unknown>, [...prefix, k]));
  return lines.join("\n");
}

/** Whether `s` was put in a secret position (a secret setting, or a secret-named variable or URL password). */
function placedAsSecret(s: string, settings: [string[], unknown][], env: Record<string, string>): boolean {
  const exact = (v: unknown): boolean => (typeof v === "string" ? v === s || v.includes(`:${s}@`) || v.endsWith(`/${s}`) || v.endsWith(`=${s}`) : Array.isArray(v) ? v.some(exact) : v !== null && typeof v === "object" ? Object.values(v).some(exact) : false);
  const inUrl = (v: string) => v.includes(`:${s}@`) || (v.includes("://") && v.endsWith(`/${s}`));
  return settings.some(([, v]) => exact(v)) || Object.entries(env).some(([k, v]) => (/TOKENS|API_KEY|PASSWORD/.test(k) && exact(v.startsWith("[") ? JSON.parse(v) : v)) || inUrl(v));
}

type Case = { text: string; ext: "toml" | "json"; env: Record<string, string>; secrets: string[] };

const structured: fc.Arbitrary<Case> = fc
  .record({
    secrets: fc.uniqueArray(secret, { minLength: 1, maxLength: 4 }),
    extra: fc.array(fc.tuple(fc.constantFrom("store", "server", "log", "ingest", "sources", "sinks", "jobs", "alerts", "stream", "nope"), name, junk), { maxLength: 4 }),
    jobs: maybe(fc.array(fc.record({ name, source: maybe(name), sink: maybe(name), kind: maybe(fc.constantFrom("ingest", "sync", "verify", "backup", "x")) }), { maxLength: 3 })),
    ext: fc.constantFrom<"toml" | "json">("toml", "json"),
    damage: fc.option(fc.tuple(fc.nat(), fc.nat({ max: 8 }), fc.constantFrom("", '"', "[", "]", "=", "\n", "{", "\\", "\u0000")), { freq: 3 }),
    envPaths: fc.array(fc.tuple(fc.constantFrom("SERVER__TOKENS", "STREAM__TOKENS", "SOURCES__POLY__API_KEY", "SOURCES__DEMO__API_KEY", "SINKS__APP__PASSWORD", "STORE__URL", "ALERTS__EMAIL__URL", "ALERTS__WEBHOOK__URL", "SERVER__PORT", "X__Y__Z", "SOURCES", "__PROTO____X", "SERVER__PORT__DEEP"), fc.nat(), fc.constantFrom("plain", "json", "url")), { maxLength: 4 }),
  })
  .chain((c) =>
    fc.tuple(fc.constant(c), fc.tuple(...c.secrets.map((s) => secretSetting(s)))).map(([c, settings]) => {
      const obj: Record<string, unknown> = {};
      for (const [path, value] of settings) setPath(obj, path, value);
      for (const [section, key, value] of c.extra) setPath(obj, [section, key], value);
      if (c.jobs) obj.jobs = c.jobs.map((j) => Object.fromEntries(Object.entries(j).filter(([, x]) => x !== undefined)));
      let text = c.ext === "toml" ? toToml(obj) : JSON.stringify(obj, null, 1);
      // Damage near a secret (its key, its URL, its table header) can make it a plain value: such a secret is not checked.
      let damaged = (_s: string) => false;
      if (c.damage) {
        const [at, cut, insert] = c.damage;
        const i = at % (text.length + 1);
        const before = text;
        damaged = (s) => {
          for (let p = before.indexOf(s); p >= 0; p = before.indexOf(s, p + 1)) if (i <= p + s.length && i + cut >= p - 120) return true;
          return false;
        };
        text = text.slice(0, i) + insert + text.slice(i + cut);
      }
      // The secrets are the values placed in secret settings (a token is the secret plus a tail).
      const secrets = settings.flatMap(([, value]) => (JSON.stringify(value).includes("0123456789abcdef") ? c.secrets.map((s) => `${s}0123456789abcdef`) : [])).concat(c.secrets);
      const env: Record<string, string> = {};
      for (const [path, which, form] of c.envPaths) {
        const s = c.secrets[which % c.secrets.length]!;
        env[`TICKSYNC_${path}`] = form === "json" ? JSON.stringify([s]) : form === "url" ? `smtp://u:${s}@h:25` : s;
      }
      // (Checked against the final object: a later setting may have replaced an earlier one.)
      // (A secret the damage cut out of the file is not in the input any more.)
      return { text, ext: c.ext, env, secrets: [...new Set(secrets)].filter((s) => (placedAsSecret(s, [[[], obj]], {}) && text.includes(s) && !damaged(s)) || placedAsSecret(s, [], env)) };
    }),
  );

// Token soup: TOML-ish text from a vocabulary that includes secret-bearing keys and secrets.
const soup: fc.Arbitrary<Case> = fc.uniqueArray(secret, { minLength: 1, maxLength: 3 }).chain((secrets) =>
  fc
    .array(
      fc.oneof(
        fc.constantFrom("[", "]", "[[jobs]]", "[server]", "[store]", "[sources.x]", "[sinks.app]", "[alerts.email]", "=", " = ", "\n", '"', "'", "{", "}", ",", "#", "password", "tokens", "apiKey", "url", "type", '"pocketbase"', '"polygon"', "true", "1e999", "-0", "0x1F", "1979-05-27T07:32:00Z", "\\u0000"),
        fc.constantFrom(...secrets),
        fc.constantFrom(...secrets).map((s) => `"postgres://u:${s}@h/db"`),
        fc.constantFrom(...secrets).map((s) => `"${s}"`),
        fc.string({ maxLength: 4 }),
      ),
      { maxLength: 40 },
    )
    .map((tokens) => {
      const text = tokens.join("");
      // Checked: the secrets the soup put where a secret goes (after a secret key, or a URL's password).
      const placed = secrets.filter((s) => new RegExp(`(password|tokens|apiKey)\\s*=\\s*["'\\[{]*${s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}|:${s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}@`).test(text));
      return { text, ext: "toml" as const, env: {}, secrets: placed };
    }),
);

let n = 0;
function check(c: Case): void {
  const file = join(dir, `c${++n % 8}.${c.ext}`);
  writeFileSync(file, c.text);
  const warnings: string[] = [];
  clearSecrets(); // one config per process in ticksync: the registry holds this case's secrets only
  try {
    const loaded = loadConfig(file, c.env, {}, (w) => warnings.push(w));
    expect(typeof loaded.config.server.port).toBe("number");
  } catch (e) {
    if (!(e instanceof ConfigError)) throw new Error(`not a ConfigError: ${(e as Error)?.stack ?? e}`);
    expect(e.issues.length).toBeGreaterThan(0);
    for (const i of e.issues) {
      expect(typeof i.path).toBe("string");
      expect(i.message.length).toBeGreaterThan(0);
    }
    expect(e.message).not.toContain("    at ");
    for (const s of c.secrets) expect(e.message).not.toContain(s);
  }
  for (const s of c.secrets) expect(warnings.join("\n")).not.toContain(s);
  // Nothing leaked onto every object (a `__proto__` key, a TICKSYNC___PROTO__ variable).
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.keys(Object.prototype)).toEqual([]);
}

describe("config loader fuzz", () => {
  test(
    "structured configs (TOML or JSON, some damaged) with TICKSYNC_* variables: a config or a clean error, no secret in it",
    () => {
      fc.assert(fc.property(structured, check), fuzzParams(300));
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "TOML-ish token soup: a config or a clean error, no secret in it",
    () => {
      fc.assert(fc.property(soup, check), fuzzParams(300));
    },
    FUZZ_TIMEOUT_MS,
  );
});
