// Access by role on a real `ticksync serve`: each role (and no token, a plain `server.tokens`
// entry, a stream token) against each route class (read, operate, admin); the stream opened by
// stream tokens and by every server token; the audit trail naming the role and the token's name,
// never the token. Rate limits are in test/rate-limit.test.ts. The role matrix is raw HTTP (its
// subject is the Authorization header); the audit trail is read through the typed client.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import * as v from "valibot";
import { startServe, stooqCsv, tempDir, waitFor, writeFile } from "./helpers.ts";
import { apiClient, ok } from "../src/http/client/index.ts";
import { testTimeout } from "./timeout.ts";
import { createApp } from "../src/http/app.ts";
import { declaredScope, jobScope } from "../src/http/security.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { createScheduler } from "../src/scheduler/scheduler.ts";
import { configSchema } from "../src/config/schema.ts";
import { applyEnvOverrides, loadConfig } from "../src/config/load.ts";
import { redact } from "../src/lib/redact.ts";

testTimeout();

const dir = tempDir("ticksync-access-");
const T = {
  plain: "plain-admin-token-0123456789",
  read: "reader-token-0123456789abc",
  operate: "operator-token-0123456789",
  admin: "admin-token-0123456789abcd",
  stream: "stream-only-token-0123456789",
};

function config(name: string, server: string, stream = `tokens = ["${T.stream}"]`): string {
  writeFile(join(dir, "csv", "pkn_d.csv"), stooqCsv([["2024-01-02", 60, 61, 59, 60.5, 1000]]));
  return writeFile(
    join(dir, `${name}.toml`),
    [
      `[store]\nurl = "sqlite:${name}.db"`,
      `[server]\n${server}`,
      `[stream]\n${stream}\npollMs = 50`,
      `[sources.files]\ntype = "csv"\npath = "csv"\nlayout = "stooq"\nmarket = "WSE"`,
      `[[jobs]]\nname = "load"\nsource = "files"`,
      `[[jobs]]\nname = "trim"\nkind = "retention"`,
      `[[jobs]]\nname = "bk"\nkind = "backup"\ndir = "backups"\nkeep = 2`,
      `[retention]\nrules = [{ interval = "1d", keepDays = 36500 }]`,
    ].join("\n\n") + "\n",
  );
}

const ROLES_CONFIG = [
  `tokens = ["${T.plain}"]`,
  `authReads = true`,
  `[[server.token]]\nname = "dash"\nsecret = "${T.read}"\nrole = "read"`,
  `[[server.token]]\nname = "ops"\nsecret = "${T.operate}"\nrole = "operate"`,
  `[[server.token]]\nname = "boss"\nsecret = "${T.admin}"\nrole = "admin"`,
].join("\n");

type Srv = Awaited<ReturnType<typeof startServe>>;
let srv: Srv;
beforeAll(async () => {
  srv = await startServe(["--config", config("roles", ROLES_CONFIG)], { env: { TICKSYNC_LOG__LEVEL: "warn" } });
});
afterAll(async () => {
  srv?.proc.kill();
  await srv?.proc.exited;
});

const auth = (token: string | null): Record<string, string> => (token ? { Authorization: `Bearer ${token}` } : {});
async function call(method: string, path: string, token: string | null, body?: unknown): Promise<number> {
  const headers = { ...auth(token), ...(body === undefined ? {} : { "Content-Type": "application/json" }) };
  const r = await fetch(`${srv.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  await r.body?.cancel();
  return r.status;
}

const READS: [string, string][] = [
  ["GET", "/api/runs"],
  ["GET", "/api/bars?symbol=PKN.WA&limit=1"],
  ["GET", "/api/audit?limit=1"],
  ["GET", "/metrics"],
];
const OPERATE: [string, string, unknown?][] = [
  ["POST", "/api/jobs/load/run"],
  ["POST", "/api/trigger_backup", { job: "bk" }],
  ["POST", "/api/quarantine/replay", { ids: [999_999] }],
  ["POST", "/api/acknowledge_alert", { alert: "none" }],
];
const ADMIN: [string, string][] = [["POST", "/api/jobs/trim/run"]];

/** What each route class answers a caller: "ok" (let through), or the refusal's status. */
async function classes(token: string | null) {
  const read = await Promise.all(READS.map(([m, p]) => call(m, p, token)));
  const operate: number[] = [];
  for (const [m, p, b] of OPERATE) operate.push(await call(m, p, token, b));
  const admin = await Promise.all(ADMIN.map(([m, p]) => call(m, p, token)));
  const verdict = (xs: number[]) => (xs.every((s) => s === 401) ? 401 : xs.every((s) => s === 403) ? 403 : xs.every((s) => s !== 401 && s !== 403 && s < 500) ? "ok" : xs.join(","));
  return { read: verdict(read), operate: verdict(operate), admin: verdict(admin) };
}

describe("roles against route classes", () => {
  test("no token: 401 everywhere but the probes", async () => {
    expect(await classes(null)).toEqual({ read: 401, operate: 401, admin: 401 });
    expect(await call("GET", "/healthz", null)).toBe(200);
    expect(await call("GET", "/readyz", null)).toBe(200);
    expect(await classes("not-a-token-of-ours-0123456789")).toEqual({ read: 401, operate: 401, admin: 401 });
  });

  test("read: reads only", async () => {
    expect(await classes(T.read)).toEqual({ read: "ok", operate: 403, admin: 403 });
    const r = await fetch(`${srv.url}/api/jobs/load/run`, { method: "POST", headers: auth(T.read) });
    expect(await r.json()).toEqual({ error: "forbidden", message: "token dash has the read role; this needs operate" });
  });

  test("operate: reads and operations, not the jobs that delete data", async () => {
    expect(await classes(T.operate)).toEqual({ read: "ok", operate: "ok", admin: 403 });
    const r = await fetch(`${srv.url}/api/jobs/trim/run`, { method: "POST", headers: auth(T.operate) });
    expect(await r.json()).toEqual({ error: "forbidden", message: "token ops has the operate role; this needs admin" });
  });

  test("admin, and a plain server.tokens entry (admin, as before roles): everything", async () => {
    expect(await classes(T.admin)).toEqual({ read: "ok", operate: "ok", admin: "ok" });
    expect(await classes(T.plain)).toEqual({ read: "ok", operate: "ok", admin: "ok" });
  });

  test("a stream token opens the WebSocket and SSE but reads nothing else (403) and changes nothing", async () => {
    expect(await classes(T.stream)).toEqual({ read: 403, operate: 403, admin: 403 });
    const r = await fetch(`${srv.url}/api/bars?symbol=PKN.WA&limit=1`, { headers: auth(T.stream) });
    expect(await r.json()).toEqual({ error: "forbidden", message: "this token opens the live stream only (stream.tokens)" });
    const sse = await fetch(`${srv.url}/api/stream?symbols=PKN.WA&token=${T.stream}`);
    expect(sse.status).toBe(200);
    expect(sse.headers.get("content-type")).toContain("text/event-stream");
    await sse.body?.cancel();
    const ws = new WebSocket(`${srv.url.replace("http", "ws")}/api/ws?symbols=PKN.WA&token=${T.stream}`);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onclose = (e) => reject(new Error(`closed ${e.code}`));
    });
    ws.close();
    expect(await call("GET", "/api/stream?symbols=PKN.WA", null)).toBe(401);
  });

  test("every server token opens the stream, whatever its role", async () => {
    for (const token of [T.read, T.operate, T.admin, T.plain]) {
      const r = await fetch(`${srv.url}/api/stream?symbols=PKN.WA`, { headers: auth(token) });
      expect(r.status, token.slice(0, 6)).toBe(200);
      await r.body?.cancel();
    }
  });

  test("the audit trail records the role and the token's name, never the token", async () => {
    // One run per caller, each waiting for the one before (a job does not overlap itself).
    // The trail is read through the typed client (src/http/client), with the read token.
    const reader = apiClient({ baseUrl: srv.url, token: T.read });
    const audit = async (kind: string) => (await ok(reader.GET("/api/audit", { params: { query: { kind, limit: "50" } } }))).data;
    const byApi = (e: Awaited<ReturnType<typeof audit>>[number]) => (e.startedBy?.by === "api" ? e.startedBy : null);
    const runs = () => audit("retention");
    const before = (await runs()).length;
    for (const token of [T.admin, T.plain]) {
      const n = (await runs()).length;
      await waitFor(async () => (await call("POST", "/api/jobs/trim/run", token)) === 202, 15_000, "trim started");
      await waitFor(async () => (await runs()).length > n && (await runs()).every((e) => e.finishedAt !== null), 15_000, "trim finished");
    }
    const trims = (await runs()).slice(0, (await runs()).length - before);
    expect(trims.map((e) => ({ role: byApi(e)?.role, caller: byApi(e)?.caller }))).toEqual([
      { role: "admin", caller: "server.tokens[0]" },
      { role: "admin", caller: "boss" },
    ]);
    const loads = await audit("ingest");
    expect(loads.find((e) => byApi(e)?.caller === "ops")?.startedBy).toMatchObject({ by: "api", role: "operate", route: "POST /api/jobs/load/run", tokenId: expect.stringMatching(/^sha256:[0-9a-f]{12}$/) });
    const text = JSON.stringify([...trims, ...loads]);
    for (const secret of Object.values(T)) expect(text).not.toContain(secret);
  });
});

describe("old and new config", () => {
  test("a config with only server.tokens keeps its meaning: the token does everything, without it 401, the stream as before", async () => {
    const old = await startServe(["--config", config("old", `tokens = ["${T.plain}"]`, "")], { env: { TICKSYNC_LOG__LEVEL: "warn" } });
    try {
      const at = (p: string, init?: RequestInit) => fetch(`${old.url}${p}`, init).then(async (r) => (await r.body?.cancel(), r.status));
      expect(await at("/api/jobs/load/run", { method: "POST" })).toBe(401);
      expect(await at("/api/jobs/trim/run", { method: "POST", headers: auth(T.plain) })).toBe(202);
      expect(await at("/api/runs")).toBe(200); // no authReads: reads stay open
      expect(await at("/api/stream?symbols=PKN.WA")).toBe(200); // no stream tokens, no authReads: open
    } finally {
      old.proc.kill();
      await old.proc.exited;
    }
  });

  test("[[server.token]]: a secret from the environment; names and secrets unique; a role is one of three", () => {
    const raw: Record<string, unknown> = { server: { token: [{ name: "ci", role: "operate" }] } };
    applyEnvOverrides(raw, { TICKSYNC_SERVER__TOKEN__0__SECRET: T.operate });
    const parsed = v.safeParse(configSchema, raw);
    expect(parsed.success).toBe(true);
    expect(parsed.output).toMatchObject({ server: { token: [{ name: "ci", secret: T.operate, role: "operate" }] } });
    const messages = (server: unknown) => {
      const r = v.safeParse(configSchema, { server });
      return r.success ? [] : r.issues.map((i) => i.message);
    };
    expect(messages({ token: [{ name: "a", secret: T.read, role: "read" }, { name: "a", secret: T.admin, role: "admin" }] })).toEqual(["two tokens are named a: names must be unique"]);
    expect(messages({ tokens: [T.read], token: [{ name: "a", secret: T.read, role: "read" }] })).toEqual(["server.tokens[0] and server.token a have the same secret: give each token its own"]);
    expect(messages({ token: [{ name: "a", secret: T.read, role: "root" }] })).toEqual(["expected read, operate, admin"]);
    expect(messages({ token: [{ name: "a", secret: "short", role: "read" }] })).toEqual(["a token must be at least 16 characters"]);
    // Secrets from the file and from the environment are masked in every output.
    const file = writeFile(join(dir, "named.toml"), `[[server.token]]\nname = "a"\nrole = "read"\nsecret = "${T.read}"\n[[server.token]]\nname = "b"\nrole = "admin"\nsecret = "placeholder-0123456789ab"\n`);
    const loaded = loadConfig(file, { TICKSYNC_SERVER__TOKEN__1__SECRET: T.admin }, {}, () => {});
    expect(loaded.config.server.token.map((t) => t.secret)).toEqual([T.read, T.admin]);
    expect(redact(`x ${T.read} y ${T.admin} z`)).toBe("x *** y *** z");
  });

  test("the jobs that delete data need admin", () => {
    const sources = { table: { reconcile: { days: 7, deleteMissing: true } }, files: {} };
    expect(jobScope({ kind: "retention" }, sources)).toBe("admin");
    expect(jobScope({ kind: "verify", repair: true }, sources)).toBe("admin");
    expect(jobScope({ kind: "verify" }, sources)).toBe("operate");
    expect(jobScope({ kind: "ingest", source: "table" }, sources)).toBe("admin");
    expect(jobScope({ kind: "ingest", source: "files" }, sources)).toBe("operate");
    expect(jobScope({ kind: "gapfill", source: "table" }, sources)).toBe("operate"); // reads ranges: never reconciles
    expect(jobScope({ kind: "backup" }, sources)).toBe("operate");
  });
});

test("every route that changes something declares its scope", async () => {
  const store = sqliteStore(`sqlite:${join(dir, "routes.db")}`);
  await store.migrate();
  const app = createApp({ store, metrics: ticksyncMetrics(), scheduler: createScheduler() });
  const mutating = app.routes.filter((r) => r.method !== "GET" && r.method !== "ALL");
  const declared = new Set(mutating.filter((r) => declaredScope(r.handler) !== undefined).map((r) => `${r.method} ${r.path}`));
  const routes = [...new Set(mutating.map((r) => `${r.method} ${r.path}`))].sort();
  expect(routes.length).toBeGreaterThanOrEqual(5);
  expect(routes.filter((r) => !declared.has(r))).toEqual([]);
  await store.close();
});
