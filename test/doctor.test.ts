// `ticksync doctor` against real dependencies: SQLite files, the PostgreSQL and QuestDB test
// servers, the Pocketbase test server (right and wrong password), the local provider servers in
// their real formats (404 at a root, 401 without a key, 429 with Retry-After, a hung request), a
// port held by another program and one held by a running ticksync. Each failure must be named
// with its remedy, the exit code must follow, and no secret may appear in the output.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { PB_EMAIL, PB_PASSWORD } from "../scripts/services/pocketbase-instance.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { postgresStore } from "../src/stores/postgres/index.ts";
import { startFakeProviders, type FakeProviders } from "./fakes/providers.ts";
import { cli, startServe, tempDir, writeFile, type CliResult } from "./helpers.ts";
import { STORES } from "./stores.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-doctor-");
const PB_URL = process.env.TICKSYNC_TEST_PB_URL;
if (!PB_URL && process.env.CI === "true") throw new Error("CI=true and the Pocketbase test server is not running (scripts/services/all.sh start)");
if (!PB_URL) console.warn("doctor: Pocketbase sink cases skipped: TICKSYNC_TEST_PB_URL is not set (scripts/services/all.sh start)");
const postgres = STORES.find((s) => s.kind === "postgres")!;
const questdb = STORES.find((s) => s.kind === "questdb")!;
for (const s of [postgres, questdb]) if (s.unavailable) console.warn(`doctor: ${s.kind} cases skipped: ${s.unavailable}`);

// Secrets the output must never show (long enough to be searched for by value).
const POLYGON_KEY = "pk-doctor-7f3a9c1e5b";
const WRONG_PB_PASSWORD = "wrong-pb-password-4411";

let fake: FakeProviders;
let n = 0;

beforeAll(async () => {
  fake = await startFakeProviders();
});
afterAll(async () => {
  await fake.stop();
});
beforeEach(() => fake.reset());

/** A port nothing listens on (bound, then let go). */
function closedPort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

async function migratedSqlite(): Promise<string> {
  const url = `sqlite:${join(dir, `store-${++n}.db`)}`;
  const s = sqliteStore(url);
  await s.migrate();
  await s.close();
  return url;
}

function config(c: Record<string, unknown>): string {
  return writeFile(join(dir, `doctor-${++n}.json`), JSON.stringify({ server: { port: closedPort() }, ...c }));
}

const doctor = (file: string, env: Record<string, string> = {}, extra: string[] = []) => cli(["doctor", "--config", file, ...extra], { env });

/** The report's line of a check, by its name. */
function line(r: CliResult, name: string): string {
  const found = r.stdout.split("\n").find((l) => new RegExp(`^(OK|WARN|FAIL) +${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} `).test(l));
  if (!found) throw new Error(`no line for ${name} in:\n${r.stdout}${r.stderr}`);
  return found;
}

function noSecrets(r: CliResult, secrets: string[]) {
  for (const s of secrets) {
    expect(r.stdout).not.toContain(s);
    expect(r.stderr).not.toContain(s);
  }
}

test("a config whose dependencies are all there: every check ok, exit 0, no secret shown", async () => {
  const file = config({
    store: { url: await migratedSqlite() },
    ...(PB_URL ? { sinks: { app: { type: "pocketbase", url: PB_URL, email: PB_EMAIL } } } : {}),
    sources: {
      poly: { type: "polygon", baseUrl: `${fake.url}/polygon`, symbols: ["AAPL.US"] },
      quotes: { type: "stooq", baseUrl: `${fake.url}/stooq`, symbols: ["PKN.WA"] },
    },
    log: { file: "logs/ticksync.log" },
    jobs: [{ name: "nightly", kind: "backup", dir: "backups", schedule: "0 0 2 * * *" }],
  });
  const env = { TICKSYNC_SOURCES__POLY__API_KEY: POLYGON_KEY, ...(PB_URL ? { TICKSYNC_SINKS__APP__PASSWORD: PB_PASSWORD } : {}) };
  const r = await doctor(file, env);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  expect(line(r, "config")).toStartWith("OK ");
  expect(line(r, "store")).toMatch(/^OK .*opens, migrated \(schema version \d+\)/);
  if (PB_URL) expect(line(r, "sink:app")).toMatch(/^OK .*reachable, signed in, an authenticated call answered/);
  // The local Polygon answers its root with 404: it answers.
  expect(line(r, "source:poly")).toMatch(/^OK .*answers \(HTTP 404\)/);
  expect(line(r, "apikey:poly")).toMatch(/^OK .*API key present \(not shown\)/);
  expect(line(r, "apikey:quotes")).toMatch(/^OK .*no API key \(optional\)/);
  expect(line(r, "clock")).toMatch(/^OK .*within 5 s of .*Date header/);
  expect(line(r, "port")).toMatch(/^OK .* is free/);
  expect(line(r, "disk:store")).toStartWith("OK ");
  // The backup and log directories are not made yet: the disk they will be on is looked at.
  expect(line(r, "disk:backup:nightly")).toContain(join(dir, "backups"));
  expect(line(r, "disk:log")).toContain(join(dir, "logs"));
  expect(r.stdout).toContain("all checks passed");
  // One request to each provider, to its base URL, without the key.
  expect(fake.requests.filter((q) => q.provider === "polygon").map((q) => [q.path, q.query])).toEqual([["/", {}]]);
  noSecrets(r, [POLYGON_KEY, PB_PASSWORD]);

  const json = await doctor(file, env, ["--json"]);
  expect(json.code).toBe(0);
  const report = JSON.parse(json.stdout) as { ok: boolean; exitCode: number; checks: { name: string; status: string; what: string; remedy: string | null }[] };
  expect(report.ok).toBe(true);
  expect(report.checks.map((c) => c.name)).toEqual(expect.arrayContaining(["config", "store", "source:poly", "apikey:poly", "clock", "port"]));
  expect(report.checks.every((c) => c.status !== "fail")).toBe(true);
  noSecrets(json, [POLYGON_KEY, PB_PASSWORD]);
});

test("an unmigrated store, a wrong Pocketbase password, a dead provider, a missing API key: each named with its remedy, exit 7", async () => {
  // A store one migration behind: the doctor says so, and leaves it as it was.
  const url = await migratedSqlite();
  const path = url.slice("sqlite:".length);
  const db = new Database(path);
  const latest = (db.query("SELECT max(version) AS v FROM schema_migrations").get() as { v: number }).v;
  db.run("DELETE FROM schema_migrations WHERE version = ?", [latest]);
  db.close();
  const dead = closedPort();
  const file = config({
    store: { url },
    ...(PB_URL ? { sinks: { app: { type: "pocketbase", url: PB_URL, email: PB_EMAIL } } } : {}),
    sources: {
      gone: { type: "yahoo", baseUrl: `http://127.0.0.1:${dead}`, symbols: ["AAPL.US"] },
      av: { type: "alphavantage", baseUrl: `${fake.url}/alphavantage`, symbols: ["IBM.US"] },
    },
  });
  const r = await doctor(file, PB_URL ? { TICKSYNC_SINKS__APP__PASSWORD: WRONG_PB_PASSWORD } : {});
  expect(r.code).toBe(7);
  expect(line(r, "store")).toMatch(/^FAIL .*1 migration pending \(schema version \d+, this ticksync's \d+\) — .*ticksync serve/);
  if (PB_URL) expect(line(r, "sink:app")).toMatch(/^FAIL .*reachable, not authenticated: .*sign-in failed.* — check sinks\.app\.email and password \(TICKSYNC_SINKS__APP__PASSWORD\)/);
  expect(line(r, "source:gone")).toMatch(new RegExp(`^FAIL .*no answer from 127\\.0\\.0\\.1:${dead}: connection refused — check sources\\.gone\\.baseUrl`));
  expect(line(r, "apikey:av")).toMatch(/^FAIL .*no API key \(alphavantage needs one\) — set TICKSYNC_SOURCES__AV__API_KEY/);
  expect(line(r, "apikey:gone")).toMatch(/^OK .*none needed/);
  expect(r.stdout).toMatch(/\d checks failed.*\(exit 7\)/);
  noSecrets(r, [WRONG_PB_PASSWORD, PB_PASSWORD]);
  // Never migrated by the doctor.
  const after = new Database(path);
  expect((after.query("SELECT max(version) AS v FROM schema_migrations").get() as { v: number }).v).toBe(latest - 1);
  after.close();
});

test("a SQLite store that does not exist is not made", async () => {
  const path = join(dir, "nothing-here", "store.db");
  const r = await doctor(config({ store: { url: `sqlite:${path}` } }));
  expect(r.code).toBe(7);
  expect(line(r, "store")).toMatch(/^FAIL .*does not exist yet/);
  expect(await Bun.file(path).exists()).toBe(false);
});

describe.skipIf(postgres.unavailable !== null)("PostgreSQL store", () => {
  test("migrated: ok; a fresh schema: every migration pending, and it stays empty", async () => {
    const migrated = postgres.freshUrl(dir);
    const s = postgresStore(migrated);
    await s.migrate();
    await s.close();
    const ok = await doctor(config({ store: { url: migrated } }));
    expect(line(ok, "store")).toMatch(/^OK .*opens, migrated/);
    expect(ok.code).toBe(0);

    const fresh = postgres.freshUrl(dir);
    const r = await doctor(config({ store: { url: fresh } }));
    expect(r.code).toBe(7);
    expect(line(r, "store")).toMatch(/^FAIL .* (\d+) migrations pending \(schema version 0, this ticksync's \1\)/);
    const again = postgresStore(fresh);
    expect((await again.ready()).schemaVersion).toBe(0);
    await again.close();
  });
});

describe.skipIf(questdb.unavailable !== null)("QuestDB store", () => {
  test("an unmigrated one: migrations pending, its password not shown", async () => {
    const url = questdb.freshUrl(dir);
    const password = new URL(url).password;
    const r = await doctor(config({ store: { url } }));
    expect(r.code).toBe(7);
    expect(line(r, "store")).toMatch(/^FAIL .*migrations pending \(schema version 0/);
    expect(r.stdout).not.toContain(`:${password}@`);
  });
});

test("a provider answering 401 and one answering 429 are reachable (the 429 a warning), exit 0", async () => {
  fake.fault("polygon", "*", { kind: "429", retryAfterSeconds: 30, times: 1 });
  const file = config({
    store: { url: await migratedSqlite() },
    sources: {
      // Polygon's reference endpoints answer 401 to a request without a key.
      ref: { type: "polygon", baseUrl: `${fake.url}/polygon/v3/reference/tickers`, apiKey: POLYGON_KEY, symbols: ["AAPL.US"] },
      busy: { type: "polygon", baseUrl: `${fake.url}/polygon`, apiKey: POLYGON_KEY, symbols: ["MSFT.US"] },
    },
  });
  const r = await doctor(file);
  const lines = [line(r, "source:ref"), line(r, "source:busy")].sort();
  // Which of the two met the one 429 depends on arrival order.
  expect(lines.some((l) => /^WARN .*reachable, rate-limited \(429, Retry-After 30 s\)/.test(l))).toBe(true);
  expect(lines.some((l) => /^OK .*answers \(HTTP (401|404)\)/.test(l))).toBe(true);
  expect(r.code).toBe(0);
  expect(fake.requests.filter((q) => q.provider === "polygon")).toHaveLength(2);
  noSecrets(r, [POLYGON_KEY]);
});

test("hosts that take the connection and never answer cannot hang it: the checks run at once, each bounded by --timeout", async () => {
  // Accepts connections, says nothing: a PostgreSQL server that hangs; and three provider requests that hang.
  const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  fake.fault("yahoo", "*", { kind: "hang", times: 3 });
  try {
    const sources = Object.fromEntries(["a", "b", "c"].map((s) => [s, { type: "yahoo", baseUrl: `${fake.url}/yahoo`, symbols: ["AAPL.US"] }]));
    const file = config({ store: { url: `postgres://ticksync:pg-doctor-secret-99@127.0.0.1:${silent.port}/ticks` }, sources });
    const started = performance.now();
    const r = await doctor(file, {}, ["--timeout", "2000"]);
    const took = performance.now() - started;
    expect(r.code).toBe(7);
    expect(line(r, "store")).toMatch(/^FAIL .*no answer within 2000 ms/);
    for (const s of ["a", "b", "c"]) expect(line(r, `source:${s}`)).toMatch(/^FAIL .*(no answer within 2000 ms|no answer in time)/);
    // One after another they would take 8 s; at once, one timeout's worth and the process's start.
    expect(took).toBeLessThan(7_000);
    noSecrets(r, ["pg-doctor-secret-99"]);
  } finally {
    silent.stop(true);
  }
});

test("a clock off by an hour from a server's Date header is a warning", async () => {
  const skewed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("Not Found", { status: 404, headers: { date: new Date(Date.now() - 3_600_000).toUTCString() } }) });
  try {
    const r = await doctor(config({ store: { url: await migratedSqlite() }, sources: { s: { type: "yahoo", baseUrl: `http://127.0.0.1:${skewed.port}`, symbols: ["AAPL.US"] } } }));
    expect(line(r, "clock")).toMatch(/^WARN .*clock is at least 3[56]\d\d\.\d s ahead of s \(.*\)'s Date header — synchronise the clock/);
    expect(r.code).toBe(0);
  } finally {
    skewed.stop(true);
  }
});

test("the server's port: taken by another program fails, taken by a running ticksync is ok", async () => {
  const other = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  try {
    const r = await doctor(config({ store: { url: await migratedSqlite() }, server: { port: other.port } }));
    expect(line(r, "port")).toMatch(new RegExp(`^FAIL .*127\\.0\\.0\\.1:${other.port} is taken by another program \\(not a ticksync.*\\) — stop it, or set server\\.port`));
    expect(r.code).toBe(7);
  } finally {
    other.stop(true);
  }
  const storeUrl = await migratedSqlite();
  const serve = await startServe(["--store", storeUrl]);
  try {
    const port = Number(new URL(serve.url).port);
    const r = await doctor(config({ store: { url: storeUrl }, server: { port } }));
    expect(line(r, "port")).toMatch(/^OK .*taken by a running ticksync/);
    expect(r.code).toBe(0);
  } finally {
    serve.proc.kill();
    await serve.proc.exited;
  }
});

test("an invalid config is its one failing line, exit 3, its secrets not shown", async () => {
  const file = writeFile(join(dir, "bad.json"), JSON.stringify({ server: { port: "eighty" }, sinks: { app: { type: "pocketbase", url: "http://127.0.0.1:1", email: PB_EMAIL, password: WRONG_PB_PASSWORD } } }));
  const r = await doctor(file);
  expect(r.code).toBe(3);
  expect(line(r, "config")).toMatch(/^FAIL .*invalid config in .*bad\.json: server\.port: .* — fix the fields named/);
  noSecrets(r, [WRONG_PB_PASSWORD]);
  const bad = await cli(["doctor", "--config", file, "--timeout", "soon"]);
  expect(bad.code).toBe(2);
});
