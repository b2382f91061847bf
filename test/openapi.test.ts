// The OpenAPI document (src/http/openapi.ts): valid OpenAPI 3.1 (Redocly's spec rules), one
// operation per route of the Hono app and no other, the committed docs/openapi.json up to date,
// and the server's real answers valid against it: every GET route of an app over a seeded SQLite
// store, a 400, a mutation's 202 and 409, with the document's own schemas (ajv, JSON Schema 2020-12).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createConfig, lintFromString } from "@redocly/openapi-core";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import type { Hono } from "hono";
import { OPENAPI_PATH, renderOpenApi } from "../scripts/gen-openapi.ts";
import { createApp } from "../src/http/app.ts";
import { openApiDocument } from "../src/http/openapi.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { createScheduler, type Scheduler } from "../src/scheduler/scheduler.ts";
import { alertsConfigSchema, createAlerts } from "../src/monitor/alerts.ts";
import * as v from "valibot";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import { createHub, type Hub } from "../src/stream/hub.ts";
import { defaultStreamConfig } from "../src/stream/config.ts";
import { MANIFEST_FORMAT } from "../src/monitor/backup-chain.ts";
import type { Body } from "../src/http/schemas/common.ts";
import { RunsBody } from "../src/http/schemas/ops.ts";
import { tempDir } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

type Json = Record<string, any>;
const dir = tempDir("ticksync-openapi-");
const day = (d: string) => Date.parse(`${d}T00:00:00Z`);
let store: Store;
let hub: Hub;
let scheduler: Scheduler;
let app: Hono;
let doc: Json;
let release: () => void = () => {};

beforeAll(async () => {
  store = sqliteStore(`sqlite:${join(dir, "api.db")}`);
  await store.migrate();
  // Bars of two symbols, a run with a quarantined row, an instrument: every list has something in it.
  const run = await store.startRun({ kind: "ingest", source: "files", params: { file: "a.csv" } });
  const dates = ["2024-01-02", "2024-01-03", "2024-01-05", "2024-01-08", "2024-01-09", "2024-01-10", "2024-01-11"];
  const bars = dates.flatMap((d, i) => ["PKN.WA", "AAPL.US"].map((symbol) => ({ source: "files", symbol, interval: "1d" as const, ts: day(d), open: 10 + i, high: 12 + i, low: 9 + i, close: 11 + i, volume: 100 * (i + 1) })));
  await store.commitBatch({ runId: run, source: "files", bars, quarantine: [{ locator: "a.csv:9", rule: "high", reason: "high below low", raw: { high: "1" }, symbol: "PKN.WA", ts: day("2024-01-04") }], read: bars.length + 1 });
  await store.finishRun(run, { outcome: "succeeded", quality: null, inserted: bars.length, updated: 0, unchanged: 0, read: bars.length + 1, quarantined: 1, fromTs: day("2024-01-02"), toTs: day("2024-01-11") } as never);
  // A verify of the sink's collection on record: /api/sinks and /api/integrity show it.
  const verify = await store.startRun({ kind: "verify", source: "pb" });
  const cursor = { status: "inconsistent", checkedAt: day("2024-01-12"), storeRecords: 14, sinkRecords: 13, missing: 1, extra: 0, changed: 0, days: 7, differingDays: 1 };
  await store.commitBatch({ runId: verify, source: "pb", bars: [], quarantine: [], read: 0, checkpoint: { stream: "verify:pb:bars", cursor, lastTs: null, lastKey: null } });
  await store.upsertInstruments?.([{ source: "files", symbol: "PKN.WA", name: "Orlen", exchange: "WSE", currency: "PLN", type: "EQUITY", sector: null, industry: null, isin: null, updatedAt: day("2024-01-02") }]);
  const base = defaultStreamConfig();
  const config = { ...base, compat: { ...base.compat, path: true } };
  hub = createHub({ store, config });
  scheduler = createScheduler({ now: () => Date.parse("2025-03-29T12:00:00Z") });
  // A job that waits until released: a second trigger while it runs is the 409.
  const held = new Promise<void>((r) => (release = r));
  scheduler.add({ name: "openapi-wse", schedule: "0 0 10 * * *", timeZone: "Europe/Warsaw", gate: { market: "WSE", phases: ["open"] }, run: async () => (await held, { outcome: "succeeded" }) });
  // A failed run makes an alert fire: /api/alerts, /api/status and an acknowledgement have something to show.
  const failed = await store.startRun({ kind: "ingest", source: "stooq" });
  await store.finishRun(failed, { outcome: "failed", quality: null, inserted: 0, updated: 0, unchanged: 0, read: 0, quarantined: 0, fromTs: null, toTs: null, error: "stooq: 503" });
  const alerts = createAlerts(store, v.parse(alertsConfigSchema, { rules: [{ kind: "errors", name: "failed-runs", windowS: 3600, maxFailed: 0 }] }), { isOpen: () => true }, []);
  await alerts.evaluate();
  // A backup directory with a manifest and one that cannot be read: both shapes of /api/backups' entries.
  const backups = join(dir, "backups");
  mkdirSync(backups);
  const manifest = { format: MANIFEST_FORMAT, kind: "sqlite", createdAt: "2024-01-12T00:00:00.000Z", store: "sqlite:api.db", file: "b.db.zst", bytes: 10, sha256: "ab", schemaVersion: 1, counts: { bars: 14, series: 2, quarantine: 1, checkpoints: 0, runs: 2 }, barsChecksum: "1" };
  writeFileSync(join(backups, "ticksync-20240112T000000Z.json"), JSON.stringify(manifest));
  writeFileSync(join(backups, "ticksync-20240113T000000Z.json"), "{not json");
  app = createApp({ store, metrics: ticksyncMetrics(), stream: { hub, config }, scheduler, alerts, sinks: [{ name: "pb", kind: "pocketbase", collections: ["bars"], location: "http://admin:secret@127.0.0.1:1" }], backups: [{ job: "nightly-backup", dir: backups }] });
  doc = (await openApiDocument(app)) as Json;
});

afterAll(async () => {
  release();
  scheduler?.stop();
  await hub?.stop();
  await store?.close();
});

/** Ajv for OpenAPI 3.1 schemas: JSON Schema 2020-12, the formats the document uses, the components for $ref. */
function validatorFor(document: Json) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ $id: "doc", components: document.components ?? {} });
  const fixRefs = (s: unknown): unknown =>
    Array.isArray(s) ? s.map(fixRefs) : s && typeof s === "object" ? Object.fromEntries(Object.entries(s).map(([k, x]) => [k, k === "$ref" && typeof x === "string" ? `doc${x}` : fixRefs(x)])) : s;
  return (schema: unknown, value: unknown): string[] => {
    const check = ajv.compile(fixRefs(schema) as object);
    return check(value) ? [] : (check.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
  };
}

/** The documented response of an operation for a status (a component reference followed). */
function documented(path: string, method: string, status: number): Json | undefined {
  const op = doc.paths?.[path]?.[method];
  let r = op?.responses?.[String(status)];
  if (r?.$ref) r = doc.components.responses[r.$ref.split("/").pop()];
  return r;
}

/** Checks one answer of `path` (the document's path) against the document; returns the body's problems. */
async function conforms(path: string, method: string, res: Response): Promise<string[]> {
  const r = documented(path, method, res.status);
  if (!r) return [`${method.toUpperCase()} ${path}: status ${res.status} is not documented`];
  const type = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
  if (res.status === 304 || res.status === 101) return [];
  // A response documented without content (a redirect) must come without a body.
  if (!r.content) return (await res.text()) === "" ? [] : [`${method.toUpperCase()} ${path} ${res.status}: a body where none is documented`];
  const media = r.content?.[type];
  if (!media) return [`${method.toUpperCase()} ${path} ${res.status}: content type ${type} is not documented`];
  const check = validatorFor(doc);
  if (type === "application/json") return check(media.schema, await res.json()).map((e) => `${path} ${res.status}: ${e}`);
  if (type === "application/x-ndjson") {
    const lines = (await res.text()).split("\n").filter((l) => l !== "");
    return lines.flatMap((l) => check(media.schema, JSON.parse(l)).map((e) => `${path} ${res.status} line: ${e}`));
  }
  await res.body?.cancel();
  return [];
}

describe("the document", () => {
  test("is valid OpenAPI 3.1 (Redocly's spec rules, no problem)", async () => {
    expect(doc.openapi).toBe("3.1.0");
    const config = await createConfig({ extends: ["spec"] } as never);
    const problems = await lintFromString({ source: JSON.stringify(doc), config, absoluteRef: "openapi.json" } as never);
    expect(problems.map((p) => `${p.ruleId}: ${p.message} at ${p.location?.[0]?.pointer}`)).toEqual([]);
  });

  test("every route of the app is documented, and every documented operation is a route", () => {
    const toPath = (p: string) => p.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
    const routes = new Set(app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method.toLowerCase()} ${toPath(r.path)}`));
    const operations = new Set(Object.entries(doc.paths as Json).flatMap(([p, item]) => Object.keys(item).map((m) => `${m} ${p}`)));
    expect([...routes].filter((r) => !operations.has(r))).toEqual([]);
    expect([...operations].filter((o) => !routes.has(o))).toEqual([]);
    // The optional routes are there when configured.
    for (const p of ["/api/ws", "/api/stream", "/api/ws/legacy", "/metrics", "/api/resources", "/", "/openapi.json"]) expect(doc.paths[p]?.get).toBeDefined();
  });

  test("query parameters are the routes' valibot schemas, their input side (strings, patterns, enums, defaults)", () => {
    const params = Object.fromEntries((doc.paths["/api/bars"].get.parameters as Json[]).map((p) => [p.name, p]));
    expect(params.symbol).toMatchObject({ in: "query", required: true, schema: { type: "string" } });
    expect(params.limit.schema).toMatchObject({ type: "string", pattern: "^\\d+$" });
    expect(params.interval.schema).toMatchObject({ enum: expect.arrayContaining(["1d", "1m", "1mo"]), default: "1d" });
    expect(params.format.schema.enum).toEqual(["json", "ndjson", "csv", "arrow"]);
    expect(Object.keys(doc.paths["/api/bars"].get.responses[200].content)).toEqual(["application/json", "application/x-ndjson", "text/csv", "application/vnd.apache.arrow.stream"]);
    expect(doc.paths["/api/quarantine/replay"].post.requestBody.content["application/json"].schema.properties.ids.type).toBe("array");
  });

  test("security: reads take an optional token, mutations need one of the role their route declares, probes none", () => {
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    expect(doc.paths["/api/bars"].get.security).toContainEqual({});
    expect(doc.paths["/api/bars"].get["x-ticksync-role"]).toBe("read");
    for (const [path, method] of [["/api/jobs/{name}/run", "post"], ["/api/quarantine/replay", "post"], ["/api/alerts/{name}/ack", "post"], ["/api/trigger_backup", "post"]] as const) {
      const op = doc.paths[path][method];
      expect(op.security).not.toContainEqual({});
      expect(op["x-ticksync-role"]).toBe("operate");
      expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(["401", "403", "413", "415", "429"]));
    }
    for (const p of ["/healthz", "/readyz", "/openapi.json"]) {
      expect(doc.paths[p].get.security).toEqual([]);
      expect(doc.paths[p].get.responses[401]).toBeUndefined();
      expect(doc.paths[p].get.responses[429]).toBeUndefined();
    }
  });

  test("docs/openapi.json is up to date (else run: bun scripts/gen-openapi.ts)", async () => {
    const stale = readFileSync(OPENAPI_PATH, "utf8") !== (await renderOpenApi());
    expect(stale ? "docs/openapi.json is stale: run bun scripts/gen-openapi.ts" : "up to date").toBe("up to date");
  });
});

describe("the server's answers match the document", () => {
  // A request per GET route, with the query it needs; each answer's status, type and body are checked.
  const GETS: [path: string, url: string][] = [
    ["/", "/"],
    ["/assets/{name}", "/assets/dashboard.css"],
    ["/openapi.json", "/openapi.json"],
    ["/docs", "/docs"],
    ["/docs/", "/docs/"],
    ["/docs/scalar.js", "/docs/scalar.js"],
    ["/asyncapi.json", "/asyncapi.json"],
    ["/healthz", "/healthz"],
    ["/readyz", "/readyz"],
    ["/metrics", "/metrics"],
    ["/api/resources", "/api/resources"],
    ["/api/sinks", "/api/sinks"],
    ["/api/symbols", "/api/symbols"],
    ["/api/bars", "/api/bars?symbol=PKN.WA&limit=3"],
    ["/api/bars", "/api/bars?symbol=PKN.WA&interval=1w"],
    ["/api/bars", "/api/bars?symbol=PKN.WA&format=ndjson"],
    ["/api/bars", "/api/bars?symbol=PKN.WA&format=csv"],
    ["/api/bars", "/api/bars?symbol=PKN.WA&format=arrow"],
    ["/api/bars", "/api/bars?symbol=PKN.WA&adjusted=true"],
    ["/api/replay", "/api/replay?symbols=PKN.WA,AAPL.US&from=2024-01-01"],
    ["/api/indicators", "/api/indicators?symbol=PKN.WA&set=sma:3,rsi:2"],
    ["/api/indicators", "/api/indicators?symbol=PKN.WA&set=sma:3&format=arrow"],
    ["/api/gaps", "/api/gaps"],
    ["/api/runs", "/api/runs?limit=1"],
    ["/api/quarantine", "/api/quarantine"],
    ["/api/freshness", "/api/freshness?days=10&to=2024-01-12"],
    ["/api/markets", "/api/markets"],
    ["/api/rates", "/api/rates"],
    ["/api/ws", "/api/ws"],
    ["/api/ws/legacy", "/api/ws/legacy"],
    ["/api/stream", "/api/stream?symbols=PKN.WA"],
    ["/api/jobs", "/api/jobs"],
    ["/api/audit", "/api/audit"],
    ["/api/alerts", "/api/alerts"],
    ["/api/health", "/api/health"],
    ["/api/status", "/api/status"],
    ["/api/performance", "/api/performance"],
    ["/api/integrity", "/api/integrity"],
    ["/api/backups", "/api/backups"],
  ];

  test("the handlers' bodies are typed by the documented schemas (a body that drifts does not compile)", () => {
    // @ts-expect-error a run without its fields is not a RunsBody entry
    const drifted: Body<typeof RunsBody> = { data: [{ id: 1 }], next: null };
    expect(drifted.next).toBeNull();
  });

  test("every GET route is exercised here", () => {
    const gets = Object.entries(doc.paths as Json).filter(([, item]) => item.get).map(([p]) => p);
    expect(gets.filter((p) => !GETS.some(([path]) => path === p))).toEqual([]);
  });

  for (const [path, url] of GETS)
    test(`GET ${url}`, async () => {
      const res = await app.request(url);
      expect(res.status).toBeLessThan(500);
      expect(await conforms(path, "get", res)).toEqual([]);
    });

  test("the lists checked above are not empty (a schema checked against [] proves little)", async () => {
    const body = async (url: string) => (await (await app.request(url)).json()) as Json;
    for (const url of ["/api/symbols", "/api/runs", "/api/quarantine", "/api/jobs", "/api/alerts", "/api/audit", "/api/sinks", "/api/markets", "/api/integrity"]) expect((await body(url)).data.length).toBeGreaterThan(0);
    expect((await body("/api/backups")).data.map((b: Json) => b.error === null)).toEqual([true, false]);
    expect((await body("/api/integrity")).data[0]).toMatchObject({ status: "inconsistent", integrityScore: expect.any(Number) });
    expect((await body("/api/freshness?days=10&to=2024-01-12")).rows.length).toBeGreaterThan(0);
    expect((await body("/api/indicators?symbol=PKN.WA&set=sma:3,rsi:2")).data.length).toBeGreaterThan(0);
  });

  test("a page's 304 is documented", async () => {
    const first = await app.request("/api/bars?symbol=PKN.WA");
    const again = await app.request("/api/bars?symbol=PKN.WA", { headers: { "if-none-match": first.headers.get("etag")! } });
    expect(again.status).toBe(304);
    expect(await conforms("/api/bars", "get", again)).toEqual([]);
  });

  test("a bad query is a 400 of the documented shape, naming the field", async () => {
    for (const url of ["/api/bars?symbol=PKN.WA&limit=abc", "/api/bars", "/api/runs?limit=0", "/api/freshness?interval=1w", "/api/gaps?bogus=1"]) {
      const res = await app.request(url);
      expect(res.status).toBe(400);
      const body = (await res.clone().json()) as { error: string; issues: { field: string }[] };
      expect(body.error).toBe("invalid request");
      expect(body.issues.length).toBeGreaterThan(0);
      expect(await conforms(url.split("?")[0]!, "get", res)).toEqual([]);
    }
    const limit = (await (await app.request("/api/bars?symbol=PKN.WA&limit=abc")).json()) as { issues: { field: string; message: string }[] };
    expect(limit.issues).toEqual([{ field: "limit", message: "expected a whole number" }]);
  });

  test("mutations: a job's 202 then 409, an unknown job's 404, an unknown alert's 404", async () => {
    const post = (url: string, body?: unknown) => app.request(url, { method: "POST", headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    const started = await post("/api/jobs/openapi-wse/run");
    expect(started.status).toBe(202);
    expect(await conforms("/api/jobs/{name}/run", "post", started)).toEqual([]);
    const busy = await post("/api/jobs/openapi-wse/run");
    expect(busy.status).toBe(409);
    expect(await conforms("/api/jobs/{name}/run", "post", busy)).toEqual([]);
    const unknown = await post("/api/jobs/nope/run");
    expect(unknown.status).toBe(404);
    expect(await conforms("/api/jobs/{name}/run", "post", unknown)).toEqual([]);
    const alert = await post("/api/alerts/x/ack", { by: "me" });
    expect(alert.status).toBe(404);
    expect(await conforms("/api/alerts/{name}/ack", "post", alert)).toEqual([]);
    const acked = await post("/api/alerts/failed-runs/ack", { by: "me" });
    expect(acked.status).toBe(200);
    expect(await conforms("/api/alerts/{name}/ack", "post", acked)).toEqual([]);
    const aliased = await post("/api/acknowledge_alert", { alert: "failed-runs" });
    expect(aliased.status).toBe(200);
    expect(await conforms("/api/acknowledge_alert", "post", aliased)).toEqual([]);
    const which = await post("/api/acknowledge_alert", {});
    expect(which.status).toBe(400);
    expect(await conforms("/api/acknowledge_alert", "post", which)).toEqual([]);
    // Bodies the documented schema refuses are a 400 naming why (a JSON null was a 500 once).
    for (const [url, bad] of [["/api/acknowledge_alert", null], ["/api/alerts/failed-runs/ack", null], ["/api/alerts/failed-runs/ack", { by: 5 }], ["/api/acknowledge_alert", ["x"]], ["/api/trigger_backup", { job: 1 }]] as const) {
      const res = await post(url, bad);
      expect({ url, bad, status: res.status }).toEqual({ url, bad, status: 400 });
      expect(await conforms(url.replace("failed-runs", "{name}"), "post", res)).toEqual([]);
    }
    const notJson = await app.request("/api/acknowledge_alert", { method: "POST", headers: { "content-type": "application/json" }, body: "{nope" });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as Json).issues[0].field).toBe("body");
    const replay = await post("/api/quarantine/replay", { all: true });
    expect(replay.status).toBe(404);
    expect(await conforms("/api/quarantine/replay", "post", replay)).toEqual([]);
  });

  test("with tokens and authReads: 401 of the documented shape; /openapi.json still open", async () => {
    const closed = createApp({ store, metrics: ticksyncMetrics(), security: { tokens: ["s3cret-token-value"], authReads: true, corsOrigins: [], maxBodyBytes: 1 << 20 } });
    const refused = await closed.request("/api/runs");
    expect(refused.status).toBe(401);
    expect(await conforms("/api/runs", "get", refused)).toEqual([]);
    const open = await closed.request("/openapi.json");
    expect(open.status).toBe(200);
    expect(((await open.json()) as Json).paths["/api/runs"]).toBeDefined();
  });
});
