// No secret reaches any output. A distinct secret sits in every secret-bearing setting (store URL
// password, Pocketbase sink URL and password, each provider's apiKey, server and stream tokens —
// also as a plain string in TICKSYNC_SERVER__TOKENS —, the alert webhook's token and the SMTP
// password, QuestDB and Postgres source passwords), and every output is searched for each of
// them: each command's stdout and stderr (failures included: unreachable store, wrong password,
// invalid config), every route of a running `serve`, /metrics, the dashboard, the log lines and
// backup manifests.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import { cli, startServe, stooqCsv, tempDir, waitFor, writeFile, type CliResult } from "./helpers.ts";
import { addSecrets, clearSecrets, collectSecrets, redact, redactUrl, redactValue } from "../src/lib/redact.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-secrets-");
const tag = () => Math.random().toString(36).slice(2, 10);
// Each secret is distinct and found nowhere else (letters and digits: no encoding differences).
const S = {
  storePw: `StorePw${tag()}`,
  wrongPgPw: `WrongPgPw${tag()}`,
  pgBackupPw: `PgBackupPw${tag()}`,
  qdbStorePw: `QdbStorePw${tag()}`,
  pbUrlPw: `PbUrlPw${tag()}`,
  pbPassword: `PbPassword${tag()}`,
  stooqKey: `StooqKey${tag()}`,
  yahooKey: `YahooKey${tag()}`,
  polygonKey: `PolygonKey${tag()}`,
  avKey: `AvKey${tag()}`,
  serverToken: `ServerToken${tag()}${tag()}`,
  envPlainToken: `EnvPlainToken${tag()}${tag()}`,
  streamToken: `StreamToken${tag()}${tag()}`,
  webhookToken: `WebhookTok${tag()}`,
  smtpPw: `SmtpPw${tag()}`,
  qdbSourcePw: `QdbSourcePw${tag()}`,
  pgSourcePw: `PgSourcePw${tag()}`,
};

const leaks: string[] = [];
/** Record every secret found in `text` (the test fails at the end with the full list). */
function scan(where: string, text: string) {
  for (const [name, secret] of Object.entries(S)) if (text.includes(secret)) leaks.push(`${where}: ${name}`);
}
const scanCli = (what: string, r: CliResult) => {
  scan(`${what} stdout`, r.stdout);
  scan(`${what} stderr`, r.stderr);
};

const CLOSED = "127.0.0.1:1"; // nothing listens: connection refused at once
// The alert webhook: a local receiver whose URL path carries the token, as Slack's does.
const hookBodies: string[] = [];
const hook = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: async (req) => (hookBodies.push(await req.text()), new Response("ok")) });
afterAll(() => hook.stop(true));
const quick = { rateLimit: { perSecond: 100 }, retry: { attempts: 1, rateLimitAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 }, timeoutMs: 1000, symbols: ["AAPL.US"] };
const config = {
  store: { url: "sqlite:./store.db" },
  log: { level: "debug" },
  server: { tokens: [S.serverToken] },
  stream: { tokens: [S.streamToken] },
  sources: {
    demo: { type: "csv", path: "data", market: "WSE" },
    stq: { type: "stooq", baseUrl: `http://${CLOSED}`, apiKey: S.stooqKey, ...quick },
    yh: { type: "yahoo", baseUrl: `http://${CLOSED}`, apiKey: S.yahooKey, ...quick },
    poly: { type: "polygon", baseUrl: `http://${CLOSED}`, ...quick }, // apiKey from the environment
    av: { type: "alphavantage", baseUrl: `http://${CLOSED}`, apiKey: S.avKey, ...quick },
    qdb: { type: "postgres", url: `questdb://admin:${S.qdbSourcePw}@${CLOSED}/qdb`, table: "bars", symbol: "X.US" },
    pgsrc: { type: "postgres", url: `postgres://reader:${S.pgSourcePw}@${CLOSED}/db`, table: "bars", symbol: "X.US" },
  },
  sinks: { app: { type: "pocketbase", url: `http://pbuser:${S.pbUrlPw}@${CLOSED}`, email: "ops@example.com", retryForS: 0, timeoutMs: 500 } }, // password from the environment
  jobs: [
    { name: "sync-app", kind: "sync", sink: "app", runOnStart: true },
    ...["demo", "stq", "yh", "poly", "av", "qdb", "pgsrc"].map((s) => ({ name: `ingest-${s}`, source: s, runOnStart: true })),
  ],
  alerts: {
    intervalS: 1,
    rules: [{ kind: "errors", name: "failures", severity: "critical", windowS: 3600, maxFailed: 0 }],
    webhook: { url: `http://127.0.0.1:${hook.port}/hooks/services/${S.webhookToken}`, format: "json" },
    email: { url: `smtp://mailer:${S.smtpPw}@${CLOSED}`, from: "ticksync@example.com", to: ["ops@example.com"] },
  },
};
const cfgFile = writeFile(join(dir, "ticksync.json"), JSON.stringify(config, null, 2));
writeFile(join(dir, "data", "pkn_d.csv"), stooqCsv([["2024-01-02", 60, 61, 59, 60.5, 1000], ["2024-01-03", 60.5, 61, 60, 60.2, 1000]]));
const env = { TICKSYNC_SOURCES__POLY__API_KEY: S.polygonKey, TICKSYNC_SINKS__APP__PASSWORD: S.pbPassword };
const run = (args: string[], extraEnv: Record<string, string> = {}) => cli([...args, "--config", cfgFile], { cwd: dir, env: { ...env, ...extraEnv } });

describe("no secret in any output", () => {
  let serve: Awaited<ReturnType<typeof startServe>> | null = null;
  let serveLog = "";
  let logDone: Promise<void> = Promise.resolve();
  beforeAll(async () => {
    serve = await startServe(["--config", cfgFile], { cwd: dir, env });
    const proc = serve.proc;
    logDone = (async () => {
      serveLog = await new Response(proc.stderr).text();
    })();
  });
  afterAll(async () => {
    serve?.proc.kill("SIGTERM");
    await serve?.proc.exited;
  });

  test("every API route, /metrics and the dashboard of a running serve, and its log", async () => {
    const base = serve!.url;
    const auth = { Authorization: `Bearer ${S.serverToken}` };
    // The runs started on start-up have failed (each quoting its URL) and the errors alert fires.
    await waitFor(async () => {
      const runs = (await (await fetch(`${base}/api/runs?limit=100`, { headers: auth })).json()) as { data: { outcome: string }[] };
      return runs.data.filter((r) => r.outcome !== "running").length >= 8;
    }, 60_000, "the start-up runs to finish");
    await waitFor(async () => {
      const a = (await (await fetch(`${base}/api/alerts`, { headers: auth })).json()) as { data: { status: string; message: string }[] };
      return a.data.some((x) => x.status === "firing" && x.message.includes("latest"));
    }, 30_000, "the errors alert to fire");
    const routes = [
      "/healthz", "/readyz", "/metrics", "/api/sinks", "/api/symbols", "/api/bars?symbol=PKN.WA&interval=1d", "/api/runs?limit=100",
      "/api/quarantine", "/api/freshness", "/api/rates", "/api/jobs", "/api/audit?limit=100", "/api/alerts", "/api/indicators?symbol=PKN.WA",
      "/api/gaps", "/", "/assets/dashboard.js", "/assets/dashboard.css", "/api/nope", "/api/bars?symbol=%ZZ",
      "/api/health", "/api/status", "/api/performance", "/api/integrity", "/api/backups",
    ];
    for (const r of routes) {
      const res = await fetch(base + r, { headers: auth });
      scan(`GET ${r}`, await res.text());
    }
    // The run records and alerts do quote the failing URLs (so the scan above saw them), redacted.
    const runs = await (await fetch(`${base}/api/runs?limit=100`, { headers: auth })).text();
    expect(runs).toContain("pbuser:***@");
    const sinks = await (await fetch(`${base}/api/sinks`, { headers: auth })).text();
    expect(sinks).toContain("pbuser:***@");
    // The live feed: SSE with the stream token in the query (as browsers send it).
    const sse = await fetch(`${base}/api/stream?token=${S.streamToken}`, { signal: AbortSignal.timeout(1500) }).then((r) => r.text()).catch(() => "");
    scan("SSE", sse);
    // The notification the webhook received (its text quotes the failed runs' errors).
    await waitFor(() => hookBodies.length > 0, 15_000, "the webhook notification");
    expect(hookBodies.join("\n")).toContain("failures");
    for (const b of hookBodies) scan("webhook body", b);
    serve!.proc.kill("SIGTERM");
    await serve!.proc.exited;
    await logDone;
    expect(serveLog).toContain("sync finished");
    scan("serve log", serveLog);
    serve = null;
    expect(leaks).toEqual([]);
  }, 120_000);

  test("each command's output, failures included", async () => {
    const pgUrl = process.env.TICKSYNC_TEST_PG_URL;
    const badStore = `postgres://ticksync:${S.storePw}@${CLOSED}/ticksync`;
    const cases: [string, () => Promise<CliResult>, number | null][] = [
      ["config check", () => run(["config", "check"]), 0],
      ["config check, unreachable store", () => run(["config", "check"], { TICKSYNC_STORE__URL: badStore }), 0],
      ["config check, token as plain text", () => run(["config", "check"], { TICKSYNC_SERVER__TOKENS: S.envPlainToken }), 3],
      ["config check, short token", () => run(["config", "check"], { TICKSYNC_STREAM__TOKENS: JSON.stringify([S.envPlainToken.slice(0, 12)]) }), 3],
      ["ingest, unreachable store", () => run(["ingest", "--source", "demo", "--store", badStore]), 5],
      ["ingest, each provider unreachable", () => run(["ingest", "--source", "stq", "--source", "yh", "--source", "poly", "--source", "av"]), 1],
      ["ingest, QuestDB and Postgres sources unreachable", () => run(["ingest", "--source", "qdb", "--source", "pgsrc"]), 1],
      ["backfill", () => run(["backfill", "--source", "av", "--from", "2024-01-01", "--json"]), 1],
      ["sync, unreachable sink", () => run(["sync", "--sink", "app"]), 1],
      ["verify, unreachable sink", () => run(["verify", "--sink", "app"]), null],
      ["backup, unreachable Postgres", () => run(["backup", "--store", badStore, "--out", join(dir, "b-pg")]), 5],
      ["migrate to an unreachable store", () => run(["migrate", "--to", badStore]), 5],
      ["rollups, unreachable store", () => run(["rollups", "--store", badStore]), 5],
      ["serve, unreachable store", () => run(["serve", "--port", "0", "--store", badStore]), 5],
      ["serve, unreachable QuestDB", () => run(["serve", "--port", "0", "--store", `questdb://admin:${S.qdbStorePw}@${CLOSED}/qdb`]), 5],
      ["universe list", () => run(["universe", "list"]), 0],
    ];
    if (pgUrl) {
      const wrong = new URL(pgUrl);
      // The test server trusts local connections: a role that does not exist is refused still.
      wrong.username = "no_such_role";
      wrong.password = S.wrongPgPw;
      cases.push(["ingest, wrong Postgres user and password", () => run(["ingest", "--source", "demo", "--store", wrong.toString()]), 5]);
    }
    const pbUrl = process.env.TICKSYNC_TEST_PB_URL;
    // A real Pocketbase refusing the sink's (wrong) password.
    if (pbUrl) cases.push(["sync, Pocketbase refuses the password", () => run(["sync", "--sink", "app"], { TICKSYNC_SINKS__APP__URL: pbUrl }), 1]);
    // One after another: they share the SQLite store, and migrations take its write lock.
    for (const [what, start, code] of cases) {
      const r = await start();
      scanCli(what, r);
      if (code !== null) expect({ what, code: r.code, stderr: r.stderr.slice(0, 500) }).toMatchObject({ what, code });
      expect(r.stderr).not.toContain("    at ");
    }
    // A backup of the store: its manifest and the run recorded for it.
    const ingest = await run(["ingest", "--source", "demo"]);
    expect(ingest.code).toBe(0);
    const backup = await run(["backup", "--out", join(dir, "b"), "--json"]);
    expect(backup.code).toBe(0);
    scanCli("backup", backup);
    for (const f of readdirSync(join(dir, "b")).filter((f) => f.endsWith(".json"))) scan(`manifest ${f}`, readFileSync(join(dir, "b", f), "utf8"));
    // A Postgres backup (the test server trusts local connections, so the password is accepted).
    if (pgUrl) {
      const u = new URL(pgUrl);
      u.password = S.pgBackupPw;
      u.searchParams.set("schema", `secrets_${tag().replace(/[^a-z0-9]/g, "")}`);
      const pg = await run(["backup", "--store", u.toString(), "--out", join(dir, "b-pg-ok"), "--json"]);
      scanCli("backup of Postgres", pg);
      expect(pg.code, pg.stderr).toBe(0);
      for (const f of readdirSync(join(dir, "b-pg-ok")).filter((f) => f.endsWith(".json"))) scan(`Postgres manifest ${f}`, readFileSync(join(dir, "b-pg-ok", f), "utf8"));
      const sql = postgres(pgUrl, { max: 1, onnotice: () => {} });
      await sql.unsafe(`DROP SCHEMA "${u.searchParams.get("schema")}" CASCADE`);
      await sql.end();
    }
    expect(leaks).toEqual([]);
  }, 240_000);

  test("the plain-text token variable is refused with its path, and the secret is not echoed", async () => {
    const r = await run(["config", "check"], { TICKSYNC_SERVER__TOKENS: S.envPlainToken });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("server.tokens");
    expect(r.stderr).toContain("TICKSYNC_SERVER__TOKENS");
    expect(r.stderr).not.toContain(S.envPlainToken);
  });
});

describe("src/lib/redact.ts", () => {
  test("URL passwords and secret parameters are masked by shape, wherever they are in a text", () => {
    expect(redactUrl("cannot open the store postgres://ticksync:p@ss:w0rd@db.example:5432/t?schema=x: refused")).toBe("cannot open the store postgres://ticksync:***@db.example:5432/t?schema=x: refused");
    expect(redactUrl("GET https://api.example/v2?ticker=A&apiKey=abc123&x=1")).toBe("GET https://api.example/v2?ticker=A&apiKey=***&x=1");
    expect(redactUrl("host=db password=hunter22 dbname=t")).toBe("host=db password=*** dbname=t");
    expect(redactUrl("//u:pw1234@host and questdb://a:b@h/qdb?http=http://c:d@h2:9000")).toBe("//u:***@host and questdb://a:***@h/qdb?http=http://c:***@h2:9000");
    // Not secrets: an e-mail address, a key column list, a user without a password.
    expect(redactUrl("mail ops@example.com, key=symbol? no: postgres://reader@h/db")).toBe("mail ops@example.com, key=symbol? no: postgres://reader@h/db");
  });

  test("collectSecrets finds every secret a config holds, and nothing that is not one", () => {
    const found = collectSecrets({
      store: { url: "postgres://u:StorePw99@h/db" },
      server: { tokens: ["server-token-0123456789"] },
      sources: { p: { type: "polygon", apiKey: "PolyKey77" } },
      sinks: { app: { password: "PbPass55", url: "http://pb:PbUrl44@h", tables: { t: { key: ["symbol", "ts"], from: "postgres://r:TablePw33@h/db" } } } },
      alerts: { webhook: { url: "https://hooks.example.com/services/T1/B2/HookTok66" }, email: { url: "smtp://m:SmtpPw22@h:587" } },
    });
    for (const s of ["StorePw99", "server-token-0123456789", "PolyKey77", "PbPass55", "PbUrl44", "TablePw33", "HookTok66", "SmtpPw22"]) expect(found).toContain(s);
    for (const s of ["symbol", "ts", "polygon", "h", "u"]) expect(found).not.toContain(s);
  });

  test("registered secrets are masked in any text, also JSON-escaped; secret-named fields are masked, …Id fingerprints kept", () => {
    clearSecrets();
    addSecrets(['we"ird-Secret', "plainSecret1"]);
    expect(redact(`a plainSecret1 b ${JSON.stringify({ p: 'we"ird-Secret' })}`)).toBe('a *** b {"p":"***"}');
    expect(redactValue({ password: "x", tokens: ["a", "b"], tokenId: "abc123", note: "plainSecret1", n: 1 })).toEqual({ password: "***", tokens: ["***", "***"], tokenId: "abc123", note: "***", n: 1 });
    clearSecrets();
  });
});

test("a default password that is a plain word is masked in URLs but not everywhere (questdb stays questdb)", () => {
  clearSecrets();
  addSecrets(collectSecrets({ store: { url: "questdb://admin:quest@127.0.0.1:8812/qdb" } }));
  expect(redact("store questdb://admin:quest@127.0.0.1:8812/qdb (questdb)")).toBe("store questdb://admin:***@127.0.0.1:8812/qdb (questdb)");
  clearSecrets();
});
