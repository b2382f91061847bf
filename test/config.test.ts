// Config: defaults, errors that name the bad field and what was expected, TICKSYNC_* overrides,
// loading TOML and JSON files, and the JSON Schema for editors.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ConfigError, applyEnvOverrides, configJsonSchema, loadConfig, parseConfig, type ConfigIssue } from "../src/config/load.ts";
import { marketChoices } from "../src/domain/markets/index.ts";
import { cli, tempDir, writeFile } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

/** The issues of a config that must not parse. */
function issuesOf(raw: unknown, origins?: Map<string, string>): ConfigIssue[] {
  try {
    parseConfig(raw, null, origins);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(raw)}`);
}

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

const csv = { type: "csv", path: "data/pkn_d.csv" };

describe("parseConfig defaults", () => {
  test("an empty config is a working config", () => {
    // toMatchObject: sections added later bring their own defaults without breaking this.
    expect(parseConfig({})).toMatchObject({
      store: { url: "sqlite:./.data/ticksync.db" },
      server: { host: "127.0.0.1", port: 8080, maxPageSize: 10_000 },
      log: { level: "info" },
      ingest: { batchSize: 20_000 },
      sources: {},
      jobs: [],
    });
  });

  test("a csv source and a job get their defaults", () => {
    const c = parseConfig({ sources: { pkn: csv }, jobs: [{ name: "daily", source: "pkn" }] });
    expect(c.sources.pkn).toEqual({ type: "csv", path: "data/pkn_d.csv", layout: "stooq", interval: "1d", delimiter: ",", decimal: ".", header: true, tsFormat: "auto" });
    expect(c.jobs).toEqual([{ name: "daily", kind: "ingest", source: "pkn", timeZone: "UTC", runOnStart: false }]);
  });

  test("given values are kept", () => {
    const c = parseConfig({ server: { port: 9090, host: "0.0.0.0" }, log: { level: "debug" }, ingest: { batchSize: 10 } });
    expect(c.server).toEqual({ host: "0.0.0.0", port: 9090, maxPageSize: 10_000, leaseSeconds: 10, tokens: [], token: [], rateLimit: { tokenPerSecond: 50, tokenBurst: 200, addressPerSecond: 20, addressBurst: 100, maxKeys: 10_000, loopback: false }, authReads: false, allowedHosts: [], corsOrigins: [], maxBodyBytes: 1 << 20, readiness: ["store"], healthCacheSeconds: 5 });
    expect(c.log.level).toBe("debug");
    expect(c.ingest.batchSize).toBe(10);
  });

  test("a valid cron schedule and time zone", () => {
    const c = parseConfig({ sources: { pkn: csv }, jobs: [{ name: "eod", source: "pkn", schedule: "0 18 * * 1-5", timeZone: "Europe/Warsaw" }] });
    expect(c.jobs[0]).toMatchObject({ schedule: "0 18 * * 1-5", timeZone: "Europe/Warsaw" });
  });
});

describe("parseConfig errors name the field and what was expected", () => {
  test("server.port as a string", () => {
    expect(issuesOf({ server: { port: "abc" } })).toEqual([{ path: "server.port", message: "expected a port number" }]);
  });

  test("server.port out of range or fractional", () => {
    const [big] = issuesOf({ server: { port: 70000 } });
    expect(big!.path).toBe("server.port");
    expect(big!.message).toContain("65535");
    expect(issuesOf({ server: { port: 80.5 } })[0]).toEqual({ path: "server.port", message: "expected a whole port number" });
  });

  test("an unknown source type", () => {
    const [issue] = issuesOf({ sources: { x: { type: "ftp", path: "a" } } });
    expect(issue!.path).toBe("sources.x.type");
    // The list grows with the registry; csv and sqlite are always in it.
    expect(issue!.message).toMatch(/^expected a source type of .*csv.*, got "ftp"$/);
    expect(issue!.message).toContain("sqlite");
  });

  test("a bad csv layout", () => {
    expect(issuesOf({ sources: { x: { ...csv, layout: "excel" } } })).toEqual([{ path: "sources.x.layout", message: "expected stooq, stooq-bulk or generic" }]);
  });

  test("other csv fields", () => {
    expect(issuesOf({ sources: { x: { ...csv, delimiter: ";;" } } })[0]).toEqual({ path: "sources.x.delimiter", message: "delimiter must be one character" });
    expect(issuesOf({ sources: { x: { ...csv, decimal: "'" } } })[0]).toEqual({ path: "sources.x.decimal", message: "decimal must be . or ," });
    expect(issuesOf({ sources: { x: { ...csv, market: "XYZ" } } })[0]).toEqual({ path: "sources.x.market", message: `expected ${marketChoices()}` });
    expect(issuesOf({ sources: { x: { ...csv, interval: "2d" } } })[0]!.path).toBe("sources.x.interval");
    expect(issuesOf({ sources: { x: { type: "csv", path: "" } } })[0]).toEqual({ path: "sources.x.path", message: "path is required" });
  });

  test("a source name that is not a name", () => {
    const [issue] = issuesOf({ sources: { "1x": csv } });
    expect(issue!.path).toBe("sources.1x");
    expect(issue!.message).toContain("starting with a letter");
  });

  test("a job referring to an undefined source lists the defined ones", () => {
    const [issue] = issuesOf({ sources: { pkn: csv }, jobs: [{ name: "j", source: "cdr" }] });
    expect(issue!.path).toBe("jobs");
    expect(issue!.message).toBe('job source "cdr" is not defined in sources (defined: pkn)');
    expect(issuesOf({ jobs: [{ name: "j", source: "cdr" }] })[0]!.message).toContain("(defined: none)");
  });

  test("job names must be unique", () => {
    expect(issuesOf({ sources: { pkn: csv }, jobs: [{ name: "j", source: "pkn" }, { name: "j", source: "pkn" }] })).toEqual([{ path: "jobs", message: "job names must be unique" }]);
  });

  test("a bad cron expression", () => {
    const [issue] = issuesOf({ sources: { pkn: csv }, jobs: [{ name: "j", source: "pkn", schedule: "every day at six" }] });
    expect(issue!.path).toBe("jobs[0].schedule");
    expect(issue!.message).toContain("expected a cron expression");
  });

  test("market hours on a job: market and phases, phases only with a market", () => {
    const ok = parseConfig({ sources: { pkn: csv }, jobs: [{ name: "live", source: "pkn", schedule: "*/30 * * * * *", market: "WSE" }, { name: "ext", source: "pkn", market: "NYSE", phases: ["pre", "open", "post"] }] });
    expect(ok.jobs[0]).toMatchObject({ market: "WSE" });
    expect(ok.jobs[0]!.phases).toBeUndefined(); // the scheduler reads no phases as ["open"]
    expect(ok.jobs[1]).toMatchObject({ market: "NYSE", phases: ["pre", "open", "post"] });
    expect(issuesOf({ sources: { pkn: csv }, jobs: [{ name: "j", source: "pkn", market: "XYZ" }] })).toEqual([{ path: "jobs[0].market", message: `expected ${marketChoices()}` }]);
    expect(issuesOf({ sources: { pkn: csv }, jobs: [{ name: "j", source: "pkn", market: "WSE", phases: ["open", "lunch"] }] })).toEqual([{ path: "jobs[0].phases[1]", message: "expected pre, open or post" }]);
    expect(issuesOf({ sources: { pkn: csv }, jobs: [{ name: "j", source: "pkn", market: "WSE", phases: [] }] })).toEqual([{ path: "jobs[0].phases", message: "expected at least one of pre, open, post" }]);
    // Phases alone gate an ingest or gapfill job per symbol by its own market; other kinds need one.
    expect(parseConfig({ sources: { pkn: { ...csv, market: "WSE" } }, jobs: [{ name: "j", source: "pkn", phases: ["open"] }] }).jobs[0]).toMatchObject({ phases: ["open"] });
    // A file source with no market of its own has no symbol markets to gate by.
    expect(issuesOf({ sources: { pkn: csv }, jobs: [{ name: "j", source: "pkn", phases: ["open"] }] })).toEqual([
      { path: "jobs", message: "job j: phases without market gate each symbol by its market, but source pkn (csv) names none: set market on the job or the source" },
    ]);
    expect(issuesOf({ sources: { pkn: csv }, jobs: [{ name: "ok", source: "pkn" }, { name: "j", kind: "backup", phases: ["open"] }] })).toEqual([
      { path: "jobs[1].phases", message: `phases need a market: set market = ${marketChoices(true)} (only ingest and gapfill jobs gate each symbol by its own market)` },
    ]);
  });

  test("a bad time zone", () => {
    const [issue] = issuesOf({ sources: { pkn: csv }, jobs: [{ name: "ok", source: "pkn" }, { name: "j", source: "pkn", timeZone: "Mars/Olympus_Mons" }] });
    expect(issue).toEqual({ path: "jobs[1].timeZone", message: "expected an IANA time zone such as Europe/Warsaw" });
  });

  test("a bad log level", () => {
    expect(issuesOf({ log: { level: "trace" } })).toEqual([{ path: "log.level", message: "expected debug, info, warn or error" }]);
  });

  test("an unknown key is refused (strict objects), at the top level and inside", () => {
    const [top] = issuesOf({ serverz: { port: 1 } });
    expect(top!.path).toBe("serverz");
    expect(top!.message).toContain("serverz");
    const [inner] = issuesOf({ server: { prot: 1 } });
    expect(inner!.path).toBe("server.prot");
    const [src] = issuesOf({ sources: { x: { ...csv, colums: {} } } });
    expect(src!.path).toBe("sources.x.colums");
  });

  test("every issue is reported, not just the first", () => {
    const issues = issuesOf({ server: { port: "abc" }, log: { level: "loud" } });
    expect(issues.map((i) => i.path).sort()).toEqual(["log.level", "server.port"]);
  });

  test("the error message lists path and expectation, one per line", () => {
    const e = errorOf(() => parseConfig({ server: { port: "abc" } }, "/etc/ticksync.toml"));
    expect(e.name).toBe("ConfigError");
    expect(e.file).toBe("/etc/ticksync.toml");
    expect(e.message).toBe("invalid config in /etc/ticksync.toml:\n  - server.port: expected a port number");
  });
});

describe("applyEnvOverrides", () => {
  test("levels by double underscore, upper snake case to camel case, JSON values typed", () => {
    const raw: Record<string, unknown> = {};
    applyEnvOverrides(raw, { TICKSYNC_SERVER__PORT: "9090", TICKSYNC_INGEST__BATCH_SIZE: "250", TICKSYNC_LOG__LEVEL: "debug" });
    expect(raw).toEqual({ server: { port: 9090 }, ingest: { batchSize: 250 }, log: { level: "debug" } });
    const c = parseConfig(raw);
    expect(c.server.port).toBe(9090);
    expect(c.ingest.batchSize).toBe(250);
  });

  test("an existing source keeps its own spelling and other fields", () => {
    const raw: Record<string, unknown> = { sources: { demo: { ...csv }, Other: { ...csv } } };
    const origins = applyEnvOverrides(raw, { TICKSYNC_SOURCES__DEMO__PATH: "elsewhere/pkn_d.csv", TICKSYNC_SOURCES__OTHER__MARKET: "WSE" });
    expect(raw.sources).toEqual({ demo: { type: "csv", path: "elsewhere/pkn_d.csv" }, Other: { ...csv, market: "WSE" } });
    expect(Object.fromEntries(origins)).toEqual({ "sources.demo.path": "TICKSYNC_SOURCES__DEMO__PATH", "sources.Other.market": "TICKSYNC_SOURCES__OTHER__MARKET" });
  });

  test("an override replaces a value from the file", () => {
    const raw: Record<string, unknown> = { server: { port: 8000, host: "::1" } };
    applyEnvOverrides(raw, { TICKSYNC_SERVER__PORT: "8001" });
    expect(raw.server).toEqual({ port: 8001, host: "::1" });
  });

  test("booleans parse as JSON; text that is not JSON stays text", () => {
    const raw: Record<string, unknown> = { sources: { demo: { ...csv } }, jobs: [] };
    applyEnvOverrides(raw, { TICKSYNC_SOURCES__DEMO__HEADER: "false", TICKSYNC_STORE__URL: "sqlite:/var/lib/t.db" });
    expect((raw.sources as Record<string, Record<string, unknown>>).demo!.header).toBe(false);
    expect(raw.store).toEqual({ url: "sqlite:/var/lib/t.db" });
  });

  test("TICKSYNC_CONFIG, other prefixes and undefined values are ignored", () => {
    const raw: Record<string, unknown> = {};
    const origins = applyEnvOverrides(raw, { TICKSYNC_CONFIG: "/etc/ticksync.toml", PATH: "/bin", TICKSYNC: "x", TICKSYNC_: "y", TICKSYNC_SERVER__HOST: undefined });
    expect(raw).toEqual({});
    expect(origins.size).toBe(0);
  });

  test("a ConfigError names the variable a bad value came from", () => {
    const raw: Record<string, unknown> = {};
    const origins = applyEnvOverrides(raw, { TICKSYNC_SERVER__PORT: "abc" });
    const e = errorOf(() => parseConfig(raw, null, origins));
    expect(e.issues).toEqual([{ path: "server.port", message: "expected a port number", origin: "TICKSYNC_SERVER__PORT" }]);
    expect(e.message).toContain("server.port: expected a port number (from TICKSYNC_SERVER__PORT)");
  });

  test("an issue from the file itself names no variable", () => {
    const raw: Record<string, unknown> = { server: { port: "abc" } };
    const origins = applyEnvOverrides(raw, { TICKSYNC_LOG__LEVEL: "info" });
    expect(issuesOf(raw, origins)).toEqual([{ path: "server.port", message: "expected a port number" }]);
  });
});

describe("loadConfig", () => {
  const dir = tempDir("ticksync-config-");

  test("a TOML file", () => {
    const file = writeFile(
      join(dir, "toml", "ticksync.toml"),
      [
        "[server]",
        "port = 9001",
        "",
        "[store]",
        'url = "sqlite:db/ticks.db"',
        "",
        "[sources.pkn]",
        'type = "csv"',
        'path = "data/pkn_d.csv"',
        'market = "WSE"',
        "",
        "[[jobs]]",
        'name = "eod"',
        'source = "pkn"',
        'schedule = "0 18 * * 1-5"',
        'timeZone = "Europe/Warsaw"',
        "",
      ].join("\n"),
    );
    const loaded = loadConfig(file, {});
    expect(loaded.file).toBe(file);
    expect(loaded.baseDir).toBe(join(dir, "toml"));
    expect(loaded.config.server.port).toBe(9001);
    expect(loaded.config.sources.pkn).toMatchObject({ type: "csv", path: "data/pkn_d.csv", market: "WSE", layout: "stooq" });
    expect(loaded.config.jobs[0]).toMatchObject({ name: "eod", source: "pkn", timeZone: "Europe/Warsaw" });
    // A relative SQLite path is relative to the config file, not to the working directory.
    expect(loaded.config.store.url).toBe(`sqlite:${join(dir, "toml", "db", "ticks.db")}`);
  });

  test("a JSON file, with environment overrides on top", () => {
    const file = writeFile(join(dir, "json", "ticksync.json"), JSON.stringify({ server: { port: 9002 }, store: { url: "ticks.db" }, sources: { demo: csv } }));
    const loaded = loadConfig(file, { TICKSYNC_SERVER__PORT: "9090", TICKSYNC_SOURCES__DEMO__PATH: "other.csv", TICKSYNC_CONFIG: file });
    expect(loaded.config.server.port).toBe(9090);
    expect(loaded.config.sources.demo).toMatchObject({ type: "csv", path: "other.csv" });
    expect(loaded.config.store.url).toBe(`sqlite:${join(dir, "json", "ticks.db")}`);
  });

  test("the default store path lands beside the config file", () => {
    const file = writeFile(join(dir, "dflt", "c.json"), "{}");
    expect(loadConfig(file, {}).config.store.url).toBe(`sqlite:${join(dir, "dflt", ".data", "ticksync.db")}`);
  });

  test("absolute and in-memory store paths are kept", () => {
    const file = writeFile(join(dir, "abs", "c.json"), JSON.stringify({ store: { url: "sqlite:/var/lib/ticksync/t.db" } }));
    expect(loadConfig(file, {}).config.store.url).toBe("sqlite:/var/lib/ticksync/t.db");
    expect(loadConfig(file, { TICKSYNC_STORE__URL: "sqlite::memory:" }).config.store.url).toBe("sqlite::memory:");
  });

  test("no file: defaults and environment, relative to the working directory", () => {
    const loaded = loadConfig(null, { TICKSYNC_INGEST__BATCH_SIZE: "7" });
    expect(loaded.file).toBeNull();
    expect(loaded.config.ingest.batchSize).toBe(7);
    expect(loaded.config.store.url).toBe(`sqlite:${join(process.cwd(), ".data", "ticksync.db")}`);
  });

  test("flags win over the environment and name themselves", () => {
    const file = writeFile(join(dir, "flags", "c.json"), "{}");
    expect(loadConfig(file, { TICKSYNC_SERVER__PORT: "9090" }, { server: { port: 9999 } }).config.server.port).toBe(9999);
    const e = errorOf(() => loadConfig(file, {}, { ingest: { batchSize: 0 } }));
    expect(e.issues[0]).toMatchObject({ path: "ingest.batchSize", origin: "--batch-size" });
  });

  test("a TOML file that does not parse: ConfigError naming the file", () => {
    const file = writeFile(join(dir, "bad", "broken.toml"), "[server\nport = = 1\n");
    const e = errorOf(() => loadConfig(file, {}));
    expect(e.file).toBe(file);
    expect(e.message).toContain(file);
    expect(e.message).toContain("cannot parse TOML");
  });

  test("a JSON file that does not parse: ConfigError naming the file", () => {
    const file = writeFile(join(dir, "bad", "broken.json"), '{"server": {"port": 1,}');
    const e = errorOf(() => loadConfig(file, {}));
    expect(e.file).toBe(file);
    expect(e.message).toContain(file);
    expect(e.message).toContain("cannot parse JSON");
  });

  test("a file whose top level is not a table", () => {
    const file = writeFile(join(dir, "bad", "array.json"), "[1, 2]");
    const e = errorOf(() => loadConfig(file, {}));
    expect(e.message).toContain(file);
    expect(e.issues[0]!.message).toContain("top level");
  });

  test("a missing file", () => {
    const missing = join(dir, "nope", "ticksync.toml");
    const e = errorOf(() => loadConfig(missing, {}));
    expect(e.message).toContain(`config file not found: ${missing}`);
  });

  test("a file that parses but is invalid names the file and the field", () => {
    const file = writeFile(join(dir, "bad", "invalid.toml"), '[server]\nport = "eighty"\n');
    const e = errorOf(() => loadConfig(file, {}));
    expect(e.file).toBe(file);
    expect(e.issues).toEqual([{ path: "server.port", message: "expected a port number" }]);
  });
});

describe("configJsonSchema", () => {
  const schema = configJsonSchema() as Record<string, any>;

  test("an object schema with the sections as properties", () => {
    expect(schema.type).toBe("object");
    expect(schema.title).toBe("ticksync config");
    for (const key of ["store", "server", "log", "ingest", "sources", "jobs"]) expect(schema.properties).toHaveProperty(key);
    expect(schema.properties.server.properties.port).toMatchObject({ type: "integer", minimum: 0, maximum: 65535, default: 8080 });
    expect(schema.properties.server.additionalProperties).toBe(false);
  });

  test("the csv layout picklist is in there", () => {
    const text = JSON.stringify(schema.properties.sources);
    expect(text).toContain('["stooq","stooq-bulk","generic"]');
  });

  test("the file's own $schema key is allowed", () => {
    expect(schema.properties.$schema).toEqual({ type: "string", description: expect.any(String) });
    expect(parseConfig({ $schema: "./ticksync.schema.json" }).server.port).toBe(8080);
  });
});

describe("overrides for entries the config does not have", () => {
  const dir = tempDir("ticksync-config-env-");
  const file = writeFile(join(dir, "profile", "ticksync.toml"), '[sources.demo]\ntype = "csv"\npath = "data"\n[sinks.app]\ntype = "pocketbase"\nurl = "http://127.0.0.1:8090"\nemail = "a@example.com"\n');

  test("a key exported for a source not in the config is ignored with a warning naming the variable, never its value", () => {
    const warnings: string[] = [];
    const key = "polygon-key-in-my-shell-profile";
    const loaded = loadConfig(file, { TICKSYNC_SOURCES__POLY__API_KEY: key, TICKSYNC_ALERTS__EMAIL__URL: "smtp://u:mailpass99@h:25", TICKSYNC_SINKS__APP__PASSWORD: "pb-password-1" }, {}, (w) => warnings.push(w));
    expect(Object.keys(loaded.config.sources)).toEqual(["demo"]);
    expect(loaded.config.alerts.email).toBeUndefined();
    // An override of an existing entry still applies.
    expect(loaded.config.sinks.app!.password).toBe("pb-password-1");
    expect(warnings).toEqual(["TICKSYNC_ALERTS__EMAIL__URL ignored: the config has no alerts.email", "TICKSYNC_SOURCES__POLY__API_KEY ignored: the config has no sources.poly"]);
    expect(warnings.join("\n")).not.toContain(key);
    expect(warnings.join("\n")).not.toContain("mailpass99");
  });

  test("through the CLI: config check passes, exit 0, one warning line on stderr", async () => {
    const r = await cli(["config", "check", "--config", file], { env: { TICKSYNC_SOURCES__POLY__API_KEY: "polygon-key-in-my-shell-profile", TICKSYNC_SINKS__APP__PASSWORD: "pb-password-1" } });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "ticksync: warning: TICKSYNC_SOURCES__POLY__API_KEY ignored: the config has no sources.poly\n" });
    expect(r.stdout).toContain("demo (csv)");
  });

  test("top-level sections are still created by a variable (they have defaults)", () => {
    const warnings: string[] = [];
    const loaded = loadConfig(null, { TICKSYNC_SERVER__PORT: "9191", TICKSYNC_STORE__URL: "sqlite:/tmp/x.db" }, {}, (w) => warnings.push(w));
    expect(loaded.config.server.port).toBe(9191);
    expect(loaded.config.store.url).toBe("sqlite:/tmp/x.db");
    expect(warnings).toEqual([]);
  });

  test("a value cannot be walked through: a variable under a scalar is ignored", () => {
    const raw: Record<string, unknown> = { server: { port: 1 } };
    const warnings: string[] = [];
    applyEnvOverrides(raw, { TICKSYNC_SERVER__PORT__X: "1" }, (w) => warnings.push(w));
    expect(raw).toEqual({ server: { port: 1 } });
    expect(warnings).toEqual(["TICKSYNC_SERVER__PORT__X ignored: the config has no server.port"]);
  });
});
