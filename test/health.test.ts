// The monitoring service's API and health checks (issue #16, items 6 and 7), against a real
// Pocketbase server of the test's own: `ticksync serve` answers GET /api/health with every
// dependency's state, /readyz follows server.readiness, the `dependency` alert fires through a
// local webhook the moment Pocketbase is killed (with the reason: connection refused at
// host:port) and resolves when it is back; the monitoring service's routes answer as aliases,
// and their mutations are refused without a token. The JSON API is called through the typed client
// (src/http/client); raw requests where the subject is HTTP itself (a foreign Origin).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { startServe, tempDir, waitFor, writeFile } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";
import { pocketbaseBin, startPocketbase, type PocketbaseInstance } from "../scripts/services/pocketbase-instance.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { createApp } from "../src/http/app.ts";
import { apiClient, ok, type ApiClient } from "../src/http/client/index.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { createHealth } from "../src/monitor/health.ts";
import * as v from "valibot";
import PocketBase from "pocketbase";
import { createSink, sinkConfigSchema } from "../src/sinks/registry.ts";
import { SinkError } from "../src/sinks/pocketbase/index.ts";
import { ConfigError, parseConfig } from "../src/config/load.ts";
import { PG_URL, STORES } from "./stores.ts";

testTimeout();

let bin: string | null = null;
let why = "";
try {
  bin = pocketbaseBin();
} catch (e) {
  why = (e as Error).message.slice(0, 200);
}

const TOKEN = "health-test-token-0123456789";
const auth = { Authorization: `Bearer ${TOKEN}` };

/** A TCP port nothing listens on (bound, then closed). */
function closedPort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

const hostPort = (url: string) => new URL(url).host;

describe.skipIf(bin === null)(`health and the monitoring service's routes${why ? ` (skipped: ${why})` : ""}`, () => {
  const dir = tempDir("ticksync-health-");
  const posts: any[] = [];
  const hook = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      posts.push(await req.json());
      return new Response("ok");
    },
  });
  let pb: PocketbaseInstance;
  let srv: Awaited<ReturnType<typeof startServe>>;
  beforeAll(async () => {
    pb = await startPocketbase({ bin: bin! });
    const config = {
      store: { url: "sqlite:./health.db" },
      server: { tokens: [TOKEN], readiness: ["store", "sinks"], healthCacheSeconds: 0.2 },
      sinks: { pb: { type: "pocketbase", url: pb.url, email: pb.email, password: pb.password, retryForS: 2, enableBatchApi: true } },
      sources: { files: { type: "csv", path: "csv", layout: "stooq", market: "WSE" } },
      jobs: [
        { name: "nightly-backup", kind: "backup", dir: "backups", keep: 5 },
        { name: "load", source: "files" },
        { name: "push", kind: "sync", sink: "pb" },
        { name: "check", kind: "verify", sink: "pb" },
      ],
      alerts: { intervalS: 1, rules: [{ kind: "dependency", name: "deps", severity: "critical" }], webhook: { url: `http://127.0.0.1:${hook.port}/hook`, format: "json" } },
    };
    writeFile(join(dir, "ticksync.json"), JSON.stringify(config));
    writeFile(join(dir, "csv", "pkn.csv"), "Date,Open,High,Low,Close,Volume\n2025-03-03,10,11,9,10.5,1000\n2025-03-04,10.5,12,10,11.5,2000\n");
    srv = await startServe(["--config", join(dir, "ticksync.json")], { cwd: dir });
  });
  afterAll(async () => {
    srv?.proc.kill("SIGTERM");
    await srv?.proc.exited;
    hook.stop(true);
    await pb?.destroy();
  });
  // Without a token (reads are open) and with the operator's.
  let api: ApiClient;
  let admin: ApiClient;
  beforeAll(() => {
    api = apiClient({ baseUrl: srv.url });
    admin = apiClient({ baseUrl: srv.url, token: TOKEN });
  });
  /** A dependency of /api/health's answer (200 or 503: the same body) by name. */
  const health = async () => {
    const { data, error, response } = await api.GET("/api/health");
    const body = data ?? (error && "dependencies" in error ? error : undefined);
    if (!body) throw new Error(`/api/health: ${response.status}`);
    return { status: response.status, body, dep: (name: string) => body.dependencies.find((d) => d.name === name) };
  };

  test("everything up: /api/health names each dependency, /readyz is 200, the aliases answer", async () => {
    const h = await waitFor(async () => {
      const { data } = await api.GET("/api/health");
      return data?.checks["sink:pb"] === "up" ? data : null;
    }, 20_000, "a healthy sink");
    expect(h.ready).toBe(true);
    const by = Object.fromEntries(h.dependencies.map((d) => [d.name, d]));
    expect(by.store).toMatchObject({ kind: "store", status: "up", details: { kind: "sqlite", migrated: true } });
    expect(by.store!.latencyMs).toBeGreaterThanOrEqual(0);
    expect(by["sink:pb"]).toMatchObject({ kind: "sink", status: "up", reason: null, details: { reachable: true, authenticated: true } });
    expect(by.scheduler).toMatchObject({ status: "up", details: { jobs: 4 } });
    expect(by["source:files"]).toMatchObject({ kind: "source", status: "up", details: { lastSuccess: null, lastFailure: null } });
    expect(by.leader!.details.leader).toBe(true);
    expect(by.disk!.details.freeBytes as number).toBeGreaterThan(0);
    expect(by.memory!.details.rssBytes as number).toBeGreaterThan(0);
    const ready = await api.GET("/readyz");
    expect(ready.response.status).toBe(200);
    expect(ready.data!.dependencies).toEqual([{ name: "sink:pb", status: "up" }]);

    const status = await ok(api.GET("/api/status"));
    expect(status).toMatchObject({ service: "ticksync", ready: true, checks: { store: "up", "sink:pb": "up" }, jobs: { total: 4 }, alerts: { firing: [] }, sinks: ["pb"] });
    const perf = await ok(api.GET("/api/performance"));
    expect(perf.cpu.percent).toBeGreaterThanOrEqual(0);
    expect(perf.memory.rssBytes).toBeGreaterThan(0);
    expect(perf.eventLoopLagMs.p99).toBeGreaterThanOrEqual(0);
    expect(perf.requests.total).toBeGreaterThanOrEqual(3);
    expect(perf.requests.latencyMs.p50).toBeGreaterThanOrEqual(0);
    expect(perf.rowsPerSecond).toMatchObject({ windowSeconds: 300, read: 0, synced: 0 });
    const integrity = await ok(api.GET("/api/integrity"));
    expect(integrity).toMatchObject({ integrityScore: null, verified: 0, unverified: 1 });
    expect(integrity.data[0]).toMatchObject({ sink: "pb", collection: "stock_data", status: "unverified", integrityScore: null });
    expect(await ok(api.GET("/api/backups"))).toEqual({ data: [], jobs: ["nightly-backup"] });
  });

  /** Run a job through the native API and wait for its outcome. */
  async function runJob(name: string): Promise<string> {
    const job = async () => (await ok(api.GET("/api/jobs"))).data.find((j) => j.name === name)!;
    const before = (await job()).lastFinishedAt;
    expect((await admin.POST("/api/jobs/{name}/run", { params: { path: { name } } })).response.status).toBe(202);
    const done = await waitFor(async () => {
      const j = await job();
      return !j.running && j.lastFinishedAt !== before ? j : null;
    }, 30_000, `job ${name}`);
    return done.lastOutcome === "succeeded" ? done.lastOutcome : `${done.lastOutcome}: ${done.lastError}`;
  }

  test("integrity: the last verify's checksummed days and score; a record gone from Pocketbase lowers it", async () => {
    expect(await runJob("load")).toBe("succeeded");
    // The probes are shared for healthCacheSeconds (0.2 s here): the run shows at the next round.
    const src = await waitFor(async () => {
      const d = (await health()).dep("source:files");
      return d?.details.lastSuccess ? d : null;
    }, 5_000, "the source's success");
    expect(src).toMatchObject({ status: "up", details: { lastFailure: null, lastSuccess: { at: expect.stringMatching(/^\d{4}-/) } } });
    expect(await runJob("push")).toBe("succeeded");
    expect(await runJob("check")).toBe("succeeded");
    const good = await ok(api.GET("/api/integrity"));
    expect(good).toMatchObject({ integrityScore: 1, verified: 1, unverified: 0 });
    expect(good.data[0]).toMatchObject({ sink: "pb", collection: "stock_data", status: "consistent", storeRecords: 2, sinkRecords: 2, checksummedDays: 2, differingDays: 0, integrityScore: 1 });
    expect(good.data[0]!.ageSeconds!).toBeGreaterThanOrEqual(0);

    const client = new PocketBase(pb.url);
    await client.collection("_superusers").authWithPassword(pb.email, pb.password);
    const [first] = (await client.collection("stock_data").getList(1, 1)).items;
    await client.collection("stock_data").delete(first!.id);
    await runJob("check");
    const bad = await ok(api.GET("/api/integrity"));
    expect(bad.data[0]).toMatchObject({ status: "inconsistent", storeRecords: 2, sinkRecords: 1, missing: 1, checksummedDays: 2, differingDays: 1, integrityScore: 0.5 });
    expect(bad.integrityScore).toBe(0.5);
  });

  test("a sink whose superuser cannot sign in is reachable but down, with the reason", async () => {
    const wrong = createSink("wrong", v.parse(sinkConfigSchema, { type: "pocketbase", url: pb.url, email: pb.email, password: "not-the-password", retryForS: 0 }));
    expect(await wrong.probe()).toMatchObject({ reachable: true, authenticated: false });
    const store = sqliteStore(`sqlite:${join(dir, "wrong.db")}`);
    await store.migrate();
    const h = await createHealth({ store, sinks: [{ name: "wrong", kind: "pocketbase", location: wrong.location, probe: () => wrong.probe() }], sources: [], readiness: ["sinks"], cacheMs: 0 }).check();
    expect(h).toMatchObject({ status: "unhealthy", ready: false });
    expect(h.dependencies.find((d) => d.name === "sink:wrong")!.reason).toContain("superuser sign-in failed (400): check the sink's email and password");
    await store.close();
  });

  test("the mutations need the token; with it a backup is taken and listed", async () => {
    const noToken = await api.POST("/api/trigger_backup", { body: {} });
    expect(noToken.response.status).toBe(401);
    expect((await api.POST("/api/acknowledge_alert", { body: { alert: "deps" } })).response.status).toBe(401);
    expect((await admin.POST("/api/trigger_backup", { body: { job: "nope" } })).response.status).toBe(404);
    const started = await admin.POST("/api/trigger_backup", { body: {} });
    expect(started.response.status).toBe(202);
    expect(started.data).toEqual({ status: "started", job: "nightly-backup" });
    const list = await waitFor(async () => {
      const b = await ok(api.GET("/api/backups"));
      return b.data.length === 1 ? b.data : null;
    }, 20_000, "the backup listed");
    expect(list[0]).toMatchObject({ job: "nightly-backup", kind: "sqlite", error: null });
    expect(list[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(list[0]!.name).toMatch(/^ticksync-\d{8}T\d{6}Z\.json$/);
  });

  test("Pocketbase killed: the dependency alert fires at once with the reason, /readyz 503; back: it resolves", async () => {
    const at = hostPort(pb.url);
    await pb.kill();
    const t0 = Date.now();
    const fired = await waitFor(() => posts.find((p) => p.event === "firing" && p.alert.name === "deps"), 20_000, "the dependency alert");
    // Evaluated every second with the probes: far sooner than the sink's retry budget of a run (600 s by default).
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(fired.alert).toMatchObject({ kind: "dependency", severity: "critical", status: "firing" });
    expect(fired.text).toContain(`sink:pb (connection refused at ${at})`);
    expect(fired.text).not.toContain("Something went wrong");

    const h = await health();
    expect(h.status).toBe(503);
    expect(h.body).toMatchObject({ status: "unhealthy", ready: false, checks: { store: "up", "sink:pb": "down" } });
    expect(h.dep("sink:pb")).toMatchObject({ status: "down", reason: `connection refused at ${at}`, details: { reachable: false, authenticated: false } });
    const ready = await api.GET("/readyz");
    expect(ready.response.status).toBe(503);
    // Open without a token: names the state, not the reason.
    expect(ready.error).toMatchObject({ ready: false, dependencies: [{ name: "sink:pb", status: "down" }] });

    // Acknowledged through the alias, with the token.
    const ack = await admin.POST("/api/acknowledge_alert", { body: { alert: "deps", by: "ops" } });
    expect(ack.response.status).toBe(200);
    expect(ack.data!.data).toMatchObject({ name: "deps", acknowledged: true, acknowledgedBy: "ops" });
    expect((await admin.POST("/api/acknowledge_alert", { body: { alert: "nope" } })).response.status).toBe(404);
    // No alert named: a body the client's types refuse, so it goes raw.
    expect((await fetch(`${srv.url}/api/acknowledge_alert`, { method: "POST", headers: { "Content-Type": "application/json", ...auth }, body: "{}" })).status).toBe(400);

    await pb.start();
    const resolved = await waitFor(() => posts.find((p) => p.event === "resolved" && p.alert.name === "deps"), 20_000, "the resolve message");
    expect(resolved.alert.status).toBe("ok");
    await waitFor(async () => (await api.GET("/readyz")).response.status === 200, 10_000, "ready again");
    expect(posts.filter((p) => p.alert.name === "deps").map((p) => p.event)).toEqual(["firing", "resolved"]);
  });
});

describe("a sink on a closed port, in process", () => {
  const dir = tempDir("ticksync-health-inproc-");
  const port = closedPort();
  const sink = createSink("gone", v.parse(sinkConfigSchema, { type: "pocketbase", url: `http://127.0.0.1:${port}`, email: "a@b.c", password: "secret-password", retryForS: 0.5, timeoutMs: 2000 }));
  let store: ReturnType<typeof sqliteStore>;
  beforeAll(async () => {
    store = sqliteStore(`sqlite:${join(dir, "h.db")}`);
    await store.migrate();
  });
  afterAll(async () => store.close());
  const appWith = (readiness: string[]) =>
    createApp({
      store,
      metrics: ticksyncMetrics(),
      health: createHealth({ store, sinks: [{ name: sink.name, kind: sink.kind, location: sink.location, probe: () => sink.probe() }], sources: [], readiness, cacheMs: 1000 }),
    });

  test("/api/health says the sink is down and why; /readyz gates on it only when readiness names it", async () => {
    const notGated = apiClient({ app: appWith(["store"]) });
    const body = await ok(notGated.GET("/api/health"));
    expect(body).toMatchObject({ status: "degraded", ready: true, checks: { store: "up", "sink:gone": "down" } });
    expect(body.dependencies.find((d) => d.name === "sink:gone")!.reason).toBe(`connection refused at 127.0.0.1:${port}`);
    expect((await notGated.GET("/readyz")).response.status).toBe(200);

    const gated = apiClient({ app: appWith(["sink:gone"]) });
    expect((await gated.GET("/readyz")).response.status).toBe(503);
    expect((await gated.GET("/api/health")).response.status).toBe(503);
  });

  test("a sync to it fails with the reason, not \"Something went wrong\"", async () => {
    const err = await sink.prepare().then(
      () => null,
      (e) => e,
    );
    expect(err).toBeInstanceOf(SinkError);
    expect(err.message).toContain(`connection refused at 127.0.0.1:${port}`);
    expect(err.message).not.toContain("Something went wrong");
  });

  test("a flood of /api/health requests makes one probe per cache period", async () => {
    let probes = 0;
    const app = createApp({
      store,
      metrics: ticksyncMetrics(),
      health: createHealth({ store, sinks: [{ name: "counted", kind: "pocketbase", location: "-", probe: async () => (probes++, { reachable: true, authenticated: true, latencyMs: 1, error: null }) }], sources: [], readiness: ["store"], cacheMs: 60_000 }),
    });
    const answers = await Promise.all(Array.from({ length: 200 }, () => app.request("/api/health")));
    expect(answers.every((r) => r.status === 200)).toBe(true);
    expect(probes).toBe(1);
  });

  test("mutating aliases: a foreign origin is refused; without a backup job or alerts they say so", async () => {
    const app = appWith(["store"]);
    const foreign = await app.request("/api/trigger_backup", { method: "POST", headers: { Origin: "https://evil.example", "Content-Type": "application/json" }, body: "{}" });
    expect(foreign.status).toBe(403);
    const none = await app.request("/api/trigger_backup", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    expect(none.status).toBe(404);
    expect(((await none.json()) as any).error).toBe("no backup job is configured");
    const noAlerts = await app.request("/api/acknowledge_alert", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ alert: "x" }) });
    expect(noAlerts.status).toBe(404);
  });
});

test("config: readiness and dependency rules name configured sinks; the default gates on the store only", () => {
  const sinks = { app: { type: "pocketbase", url: "http://127.0.0.1:8090", email: "a@b.c", password: "secret-password" } };
  expect(parseConfig({}).server).toMatchObject({ readiness: ["store"], healthCacheSeconds: 5 });
  expect(parseConfig({ sinks, server: { readiness: ["store", "sink:app"] }, alerts: { rules: [{ kind: "dependency", name: "d" }] } }).alerts.rules[0]).toMatchObject({ dependencies: ["store", "sinks"] });
  const issue = (raw: unknown) => {
    try {
      parseConfig(raw);
      return null;
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      return e.message;
    }
  };
  expect(issue({ sinks, server: { readiness: ["sink:nope"] } })).toContain("server.readiness: sink:nope names no sink (defined: app)");
  expect(issue({ sinks, alerts: { rules: [{ kind: "dependency", name: "d", dependencies: ["sink:gone"] }] } })).toContain("sink:gone names no sink");
  expect(issue({ server: { readiness: ["pocketbase"] } })).toContain('expected "store", "sinks", "sink:<name>" or "disk"');
});

const pgStore = STORES.find((s) => s.kind === "postgres")!;
test.skipIf(pgStore.unavailable !== null)(`a PostgreSQL store: up with its latency; on a closed port down with the reason, and nothing is ready${pgStore.unavailable ? ` (skipped: ${pgStore.unavailable})` : ""}`, async () => {
  const store = pgStore.open(pgStore.freshUrl(""));
  await store.migrate();
  const up = apiClient({ app: createApp({ store, metrics: ticksyncMetrics(), health: createHealth({ store, sinks: [], sources: [], readiness: ["store"], cacheMs: 0 }) }) });
  const body = await ok(up.GET("/api/health"));
  expect(body.dependencies.find((d) => d.name === "store")).toMatchObject({ status: "up", details: { kind: "postgres", migrated: true } });
  expect(JSON.stringify(body)).not.toContain(new URL(PG_URL!).password || "\u0000");
  await store.close();

  const u = new URL(PG_URL!);
  u.port = String(closedPort());
  const gone = pgStore.open(u.toString());
  const down = apiClient({ app: createApp({ store: gone, metrics: ticksyncMetrics(), health: createHealth({ store: gone, sinks: [], sources: ["files"], readiness: ["store"], cacheMs: 0 }) }) });
  const h = await down.GET("/api/health");
  expect(h.response.status).toBe(503);
  // The 503 carries the health body (the document's 503 answer), not an error's.
  const d = h.error && "dependencies" in h.error ? h.error : null;
  if (!d) throw new Error(`expected the health body with the 503, got ${JSON.stringify(h.error)}`);
  expect(d).toMatchObject({ status: "unhealthy", ready: false, checks: { store: "down" } });
  expect(d.dependencies.find((x) => x.name === "store")!.reason).toMatch(/\S/);
  expect((await down.GET("/readyz")).response.status).toBe(503);
  await gone.close().catch(() => {});
});
