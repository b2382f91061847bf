// `ticksync init`: the starter config it writes, without a terminal (flags and defaults) for each
// store kind and every source type, and on one (a pseudo-terminal through util-linux `script`, and
// the prompts with injected streams); what it refuses; the secrets it never writes; and the
// `${NAME}` references the loader fills from the environment.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { askAnswers, createPrompter } from "../src/cli/init.ts";
import { ConfigError, loadConfig } from "../src/config/load.ts";
import { redact } from "../src/lib/redact.ts";
import { SINKS } from "../src/sinks/registry.ts";
import { SOURCE_TYPES } from "../src/sources/registry.ts";
import { STORES } from "../src/stores/registry.ts";
import { cli, MAIN, tempDir, writeFile } from "./helpers.ts";
import { taploCheck } from "./taplo.ts";
import { startFakeProviders, syntheticBars } from "./fakes/providers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-init-");
const PG_URL = process.env.TICKSYNC_TEST_PG_URL ?? "postgres://ticksync@127.0.0.1:55432/ticksync_test";
const QUESTDB_URL = "questdb://admin:quest-pass@127.0.0.1:58812/qdb?http=http://127.0.0.1:59000";
/** What the pocketbase sink's references need when the config is loaded. */
const SINK_ENV = { TICKSYNC_SINKS__APP__EMAIL: "admin@example.com", TICKSYNC_SINKS__APP__PASSWORD: "pb-password-123" };
const everySource = SOURCE_TYPES.flatMap((t) => ["--source", `${t}=${t}`]);

/** `config check` of a written file, then taplo by its own #:schema line. */
async function accepted(file: string, env: Record<string, string> = {}) {
  const check = await cli(["config", "check", "--config", file], { env });
  const taplo = await taploCheck(file);
  return { check: check.code, checkErr: check.stderr, taplo: taplo.code, taploOut: taplo.code ? taplo.output : "" };
}

/** `ticksync init` with stdin not a terminal (the test runner's). */
const init = (args: string[], env: Record<string, string> = {}) => cli(["init", ...args], { env: { TICKSYNC_STORE__URL: "", ...env } });

describe("init without a terminal: flags and defaults", () => {
  test("sqlite (the default store), every source type and a pocketbase sink: config check and taplo accept it", async () => {
    const file = join(dir, "sqlite", "ticksync.toml");
    const r = await init(["--out", file, ...everySource, "--sink", "app=pocketbase"]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toContain("set TICKSYNC_SINKS__APP__PASSWORD in the service's environment (not set here)");
    const text = readFileSync(file, "utf8");
    expect(text.split("\n")[0]).toBe("#:schema ./ticksync.schema.json");
    expect(existsSync(join(dir, "sqlite", "ticksync.schema.json"))).toBe(true);
    // The comments are the schema's descriptions.
    expect(text).toContain("# A file, a directory (every *.csv in it) or a glob.");
    expect(text).toContain('password = "${TICKSYNC_SINKS__APP__PASSWORD}"');
    for (const t of SOURCE_TYPES) expect(text).toContain(`[sources.${t}]\n`);
    expect(await accepted(file, SINK_ENV)).toEqual({ check: 0, checkErr: "", taplo: 0, taploOut: "" });
    const check = await cli(["config", "check", "--config", file], { env: SINK_ENV });
    expect(check.stdout).toContain("store   sqlite:");
    expect(check.stdout).toContain("jobs    csv-ingest [0 30 22 * * * UTC]");
  });

  test("without its variables, the file names what is missing (and never a value)", async () => {
    const file = join(dir, "sqlite", "ticksync.toml");
    const r = await cli(["config", "check", "--config", file], { env: { TICKSYNC_SINKS__APP__EMAIL: "admin@example.com" } });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("sinks.app.password: environment variable TICKSYNC_SINKS__APP__PASSWORD is not set");
  });

  test("a postgres store URL, every source type: accepted", async () => {
    const file = join(dir, "postgres", "ticksync.toml");
    expect(await init(["--out", file, "--store", PG_URL, ...everySource])).toMatchObject({ code: 0 });
    expect(readFileSync(file, "utf8")).toContain(`url = "${PG_URL}"`);
    expect(await accepted(file)).toEqual({ check: 0, checkErr: "", taplo: 0, taploOut: "" });
  });

  test("a questdb store URL with a password: the file refers to TICKSYNC_STORE__URL, never holds the password", async () => {
    const file = join(dir, "questdb", "ticksync.toml");
    const r = await init(["--out", file, "--store", QUESTDB_URL, ...everySource]);
    expect(r).toMatchObject({ code: 0 });
    expect(r.stdout).toContain("set TICKSYNC_STORE__URL in the service's environment");
    const text = readFileSync(file, "utf8");
    expect(text).not.toContain("quest-pass");
    expect(text).toContain('url = "${TICKSYNC_STORE__URL}"');
    expect(text).toContain("# From the environment: questdb://admin:***@127.0.0.1:58812/qdb");
    expect(await accepted(file, { TICKSYNC_STORE__URL: QUESTDB_URL })).toEqual({ check: 0, checkErr: "", taplo: 0, taploOut: "" });
    const check = await cli(["config", "check", "--config", file], { env: { TICKSYNC_STORE__URL: QUESTDB_URL } });
    expect(check.stdout).toContain("store   questdb://admin:***@127.0.0.1:58812/qdb");
  });

  test("a store URL given by the environment is referred to, not copied", async () => {
    const file = join(dir, "from-env", "ticksync.toml");
    expect(await init(["--out", file], { TICKSYNC_STORE__URL: PG_URL })).toMatchObject({ code: 0 });
    expect(readFileSync(file, "utf8")).toContain('url = "${TICKSYNC_STORE__URL}"');
    expect((await cli(["config", "check", "--config", file], { env: { TICKSYNC_STORE__URL: PG_URL } })).stdout).toContain(`store   ${PG_URL}`);
  });

  test("a provider key in the environment becomes a reference; absent, the line is a commented hint", async () => {
    const key = "pk-live-0123456789abcdef";
    const withKey = join(dir, "key", "ticksync.toml");
    expect(await init(["--out", withKey, "--source", "poly=polygon"], { TICKSYNC_SOURCES__POLY__API_KEY: key })).toMatchObject({ code: 0 });
    const text = readFileSync(withKey, "utf8");
    expect(text).not.toContain(key);
    expect(text).toContain('\napiKey = "${TICKSYNC_SOURCES__POLY__API_KEY}"');
    const withoutKey = join(dir, "nokey", "ticksync.toml");
    expect(await init(["--out", withoutKey, "--source", "poly=polygon"])).toMatchObject({ code: 0 });
    expect(readFileSync(withoutKey, "utf8")).toContain('\n# apiKey = "${TICKSYNC_SOURCES__POLY__API_KEY}"');
    expect(await accepted(withoutKey)).toEqual({ check: 0, checkErr: "", taplo: 0, taploOut: "" });
  });

  test("--token: an admin token in the file, readable by its owner only, never printed", async () => {
    const file = join(dir, "token", "ticksync.toml");
    const r = await init(["--out", file, "--token"]);
    expect(r.code).toBe(0);
    const secret = /\[\[server\.token\]\][^[]*secret = "([A-Za-z0-9_-]{43})"/.exec(readFileSync(file, "utf8"))?.[1];
    expect(secret).toBeString();
    expect(r.stdout).not.toContain(secret!);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await accepted(file)).toEqual({ check: 0, checkErr: "", taplo: 0, taploOut: "" });
  });

  test("defaults alone: the embedded store and one csv source", async () => {
    const file = join(dir, "defaults", "ticksync.toml");
    expect(await init(["--out", file])).toMatchObject({ code: 0 });
    const text = readFileSync(file, "utf8");
    expect(text).toContain('[store]\n# sqlite:');
    expect(text).toContain('[sources.csv]\n');
    expect(statSync(file).mode & 0o777).toBe(0o644);
  });

  test("an existing file is refused without --force (exit 2, left as it was), replaced with it", async () => {
    const file = writeFile(join(dir, "exists", "ticksync.toml"), "# mine\n");
    const r = await init(["--out", file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`ticksync: ${file} exists: pass --force to overwrite it\n`);
    expect(readFileSync(file, "utf8")).toBe("# mine\n");
    expect(await init(["--out", file, "--force"])).toMatchObject({ code: 0 });
    expect(readFileSync(file, "utf8")).toStartWith("#:schema ");
    // Replaced with a token, the file is narrowed to its owner.
    expect(await init(["--out", file, "--force", "--token"])).toMatchObject({ code: 0 });
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  test("bad flags are usage errors (exit 2) and write nothing", async () => {
    const file = join(dir, "bad", "ticksync.toml");
    for (const args of [["--source", "x=nosuch"], ["--source", "bad-name=csv"], ["--sink", "a=csv"], ["--source", "a=csv", "--sink", "a=pocketbase"], ["--store", "mysql://h/db"]]) {
      const r = await init(["--out", file, ...args]);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
    }
    expect((await init(["--out", join(dir, "bad", "ticksync.json")])).stderr).toContain("init writes TOML");
    expect(existsSync(file)).toBe(false);
  });
});

/** Feeds answers to the prompts through streams; collects what was asked. */
function scripted(answers: string[], end = true) {
  const input = new PassThrough();
  const output = new PassThrough();
  let asked = "";
  output.on("data", (d) => (asked += String(d)));
  for (const a of answers) input.write(`${a}\n`);
  if (end) input.end();
  return { prompter: createPrompter(input, output), asked: () => asked };
}

const sourceNumber = (type: string) => String(SOURCE_TYPES.indexOf(type) + 1);

describe("init on a terminal: the prompts", () => {
  test("numbered choices pick the store, the sources with their names, the sinks and the token", async () => {
    const pg = String(STORES.findIndex((d) => d.type === "postgres") + 1);
    const s = scripted([pg, PG_URL, `${sourceNumber("csv")} ${sourceNumber("polygon")}`, "", "poly", "1", "app", "y"], false);
    const answers = await askAnswers(s.prompter, {});
    expect(answers).toEqual({ storeUrl: PG_URL, sources: [{ name: "csv", type: "csv" }, { name: "poly", type: "polygon" }], sinks: [{ name: "app", type: SINKS[0].type }], token: true });
    expect(s.asked()).toContain("Store [1]: ");
    expect(s.asked()).toContain(`Sources [${sourceNumber("csv")}]: `);
  });

  test("a wrong answer is asked again; the end of the input takes every default (never waits)", async () => {
    const s = scripted(["9", "1"]);
    const answers = await askAnswers(s.prompter, {});
    expect(s.asked()).toContain("expected numbers from 1 to");
    expect(answers).toEqual({ storeUrl: undefined, sources: [{ name: "csv", type: "csv" }], sinks: [], token: false });
  });

  test("answers that keep failing end as a usage error, not a loop", async () => {
    const s = scripted(["2", "", "", ""]);
    await expect(askAnswers(s.prompter, {})).rejects.toThrow("after 3 tries");
  });

  test("a name the flags took is not offered again", async () => {
    const s = scripted(["1", "pocketbase", "app2"]);
    const answers = await askAnswers(s.prompter, { storeUrl: PG_URL, sources: [{ name: "pocketbase", type: "csv" }], token: false });
    expect(s.asked()).toContain("pocketbase is taken");
    expect(answers.sinks).toEqual([{ name: "app2", type: SINKS[0].type }]);
  });

  test("what the flags give is not asked", async () => {
    const s = scripted([]);
    const answers = await askAnswers(s.prompter, { storeUrl: PG_URL, sources: [], sinks: [], token: false });
    expect(s.asked()).toBe("");
    expect(answers.storeUrl).toBe(PG_URL);
  });

  test("through a pseudo-terminal (util-linux script): the answers typed pick the config", async () => {
    const file = join(dir, "tty", "ticksync.toml");
    const typed = ["1", sourceNumber("stooq"), "", "0", "n"].map((a) => `${a}\n`).join("");
    const command = [process.execPath, MAIN, "init", "--out", file].map((a) => `'${a}'`).join(" ");
    const proc = Bun.spawn(["script", "-qec", command, "/dev/null"], { stdin: new TextEncoder().encode(typed), stdout: "pipe", stderr: "pipe", env: { ...process.env, TICKSYNC_STORE__URL: "" } });
    const [screen, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect({ code, screen: screen.includes("Store [1]: ") && screen.includes("Generate an admin API token") }).toEqual({ code: 0, screen: true });
    const text = readFileSync(file, "utf8");
    expect(text).toContain('[sources.stooq]\n');
    expect(text).not.toContain("[sinks.");
    expect(await accepted(file)).toEqual({ check: 0, checkErr: "", taplo: 0, taploOut: "" });
  });
});

describe("${NAME} references in a config file", () => {
  const file = writeFile(
    join(dir, "refs", "ticksync.toml"),
    '[store]\nurl = "postgres://ticksync:${REF_DB_PASSWORD}@127.0.0.1:5432/ticks"\n[sinks.app]\ntype = "pocketbase"\nurl = "http://127.0.0.1:8090"\nemail = "${REF_EMAIL}"\npassword = "${REF_PB_PASSWORD}"\n[sources.demo]\ntype = "csv"\npath = "data/$${literal}"\n',
  );

  test("are filled from the environment; $${ stays a literal ${", () => {
    const env = { REF_DB_PASSWORD: "db-secret-pw", REF_EMAIL: "admin@example.com", REF_PB_PASSWORD: "pb-secret-pw" };
    const c = loadConfig(file, env, {}, () => {}).config;
    expect(c.store.url).toBe("postgres://ticksync:db-secret-pw@127.0.0.1:5432/ticks");
    expect(c.sinks.app).toMatchObject({ email: "admin@example.com", password: "pb-secret-pw" });
    expect(c.sources.demo).toMatchObject({ path: "data/${literal}" });
    // A value is not expanded again: a variable holding "${…}" gives it as written.
    expect(loadConfig(file, { ...env, REF_PB_PASSWORD: "${REF_EMAIL}" }, {}, () => {}).config.sinks.app).toMatchObject({ password: "${REF_EMAIL}" });
  });

  test("the values they bring are secrets like any other: masked in output", () => {
    loadConfig(file, { REF_DB_PASSWORD: "db-secret-pw", REF_EMAIL: "admin@example.com", REF_PB_PASSWORD: "pb-secret-pw" }, {}, () => {});
    expect(redact("login pb-secret-pw failed")).toBe("login *** failed");
  });

  test("an unset variable is an error at its field, naming the variable", () => {
    let error: unknown;
    try {
      loadConfig(file, { REF_EMAIL: "admin@example.com" }, {}, () => {});
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.path)).toEqual(["store.url", "sinks.app.password"]);
    expect((error as ConfigError).message).toContain("environment variable REF_PB_PASSWORD is not set");
  });
});

describe("a starter runs", () => {
  test("a provider source's starter symbols are fetched and stored (the provider served locally in its real format)", async () => {
    const fake = await startFakeProviders();
    try {
      for (const s of ["AAPL", "MSFT"]) fake.setBars("yahoo", s, syntheticBars(s, "2024-03-04", "2024-03-29"));
      const at = join(dir, "runs");
      const file = join(at, "ticksync.toml");
      expect(await init(["--out", file, "--source", "quotes=yahoo"])).toMatchObject({ code: 0 });
      expect(readFileSync(file, "utf8")).toContain('symbols = ["AAPL.US", "MSFT.US"]');
      const r = await cli(["ingest", "--config", file, "--json"], { cwd: at, env: { TICKSYNC_SOURCES__QUOTES__BASE_URL: `${fake.url}/yahoo`, TICKSYNC_SOURCES__QUOTES__START: "2024-03-01" } });
      expect(r.code).toBe(0);
      const [run] = JSON.parse(r.stdout) as { outcome: string; inserted: number }[];
      expect(run).toMatchObject({ outcome: "succeeded", inserted: 40 });
    } finally {
      await fake.stop();
    }
  });
});
