// The JSON the dashboard draws from, in process against a real SQLite file: the freshness heat
// map against the WSE calendar, rates from runs, and quarantine replay after a fix. The HTTP API
// is called through the typed client (src/http/client), in process.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { createApp } from "../src/http/app.ts";
import { apiClient, ok, type paths } from "../src/http/client/index.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { freshness } from "../src/monitor/freshness.ts";
import { rates } from "../src/monitor/rates.ts";
import { validateBatch, type ValidateContext } from "../src/domain/quality.ts";
import type { Bar } from "../src/domain/bar.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import { tempDir } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-dash-api-");
const stores: Store[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
});
let n = 0;
async function fresh(): Promise<Store> {
  const s = sqliteStore(`sqlite:${join(dir, `s${++n}.db`)}`);
  await s.migrate();
  stores.push(s);
  return s;
}
const day = (d: string) => Date.parse(`${d}T00:00:00Z`);
const bar = (symbol: string, date: string, close: number): Bar => ({ source: "files", symbol, interval: "1d", ts: day(date), open: close, high: close + 1, low: close - 1, close, volume: 100 });

test("freshness: stored, missing, pending and not-a-session days against the WSE calendar", async () => {
  const s = await fresh();
  const run = await s.startRun({ kind: "ingest", source: "files" });
  // 2024-01-01 (New Year) and 2024-01-06 (Epiphany, a Saturday) are not sessions; 01-04 is missing.
  const dates = ["2024-01-02", "2024-01-03", "2024-01-05", "2024-01-08", "2024-01-09"];
  await s.commitBatch({ runId: run, source: "files", bars: [...dates.map((d, i) => bar("PKN.WA", d, 60 + i)), bar("CDR.WA", "2024-01-09", 120)], quarantine: [], read: 6 });
  // 2024-01-10 20:00Z: the WSE session of that day (closes 17:00 Warsaw, 16:00Z) is over.
  // By default the last column is the UTC date of now, not the date Sydney has already reached
  // (01-11); `to` pins it.
  const after = await freshness(s, { days: 10, interval: "1d", now: Date.parse("2024-01-10T20:00:00Z") });
  expect((await freshness(s, { days: 1, interval: "1d", now: Date.parse("2024-01-10T23:30:00Z") })).dates).toEqual(["2024-01-10"]);
  expect((await freshness(s, { days: 2, interval: "1d", now: Date.parse("2024-01-10T20:00:00Z"), to: "2024-01-05" })).dates).toEqual(["2024-01-04", "2024-01-05"]);
  expect(after.dates).toEqual(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-06", "2024-01-07", "2024-01-08", "2024-01-09", "2024-01-10"]);
  expect(after.sessions.WSE).toBe("-TTTT--TTT");
  const pkn = after.rows.find((r) => r.symbol === "PKN.WA")!;
  // Day 1 is before the series' first bar: unknown, not a gap.
  expect(pkn).toMatchObject({ market: "WSE", source: "files", cells: "?SSMS--SSM", stored: 5, missing: 2 });
  // CDR.WA starts on 01-09: only its 01-10 is a gap.
  expect(after.rows.find((r) => r.symbol === "CDR.WA")).toMatchObject({ cells: "????????SM", missing: 1 });
  // Rows with most missing first.
  expect(after.rows[0]!.symbol).toBe("PKN.WA");
  // 12:00Z on the 10th: the session is still on, so the day is pending, not missing.
  const during = await freshness(s, { days: 10, interval: "1d", now: Date.parse("2024-01-10T12:00:00Z") });
  expect(during.rows.find((r) => r.symbol === "PKN.WA")!.cells).toBe("?SSMS--SSP");
  expect(during.markets.WSE.phase).toBe("open");
  // NYSE is in its pre-market (from 04:00 New York); the regular session opens at 09:30.
  expect(during.markets.NYSE).toMatchObject({ phase: "pre", nextOpen: "2024-01-10T14:30:00.000Z", nextClose: "2024-01-10T21:00:00.000Z", holiday: null });
  expect(pkn.latestSession).toBe("2024-01-10");
  expect(during.rows.find((r) => r.symbol === "PKN.WA")!.latestSession).toBe("2024-01-09");
});

test("rates: rows per second per bucket from ingest and sync runs", async () => {
  const s = await fresh();
  const ingest = await s.startRun({ kind: "ingest", source: "files" });
  await s.finishRun(ingest, { outcome: "succeeded", read: 600, inserted: 540, updated: 0, unchanged: 0, quarantined: 60, fromTs: null, toTs: null, quality: null });
  const sync = await s.startRun({ kind: "sync", source: "sink:pb" });
  await s.finishRun(sync, { outcome: "succeeded", read: 540, inserted: 540, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
  const verify = await s.startRun({ kind: "verify", source: "sink:pb" });
  await s.finishRun(verify, { outcome: "succeeded", read: 9999, inserted: 0, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
  const r = await rates(s, { windowSeconds: 600, bucketSeconds: 60 });
  expect(r.points).toHaveLength(10);
  const total = (f: "ingestRead" | "ingestStored" | "quarantined" | "synced") => Math.round(r.points.reduce((a, p) => a + p[f] * 60, 0));
  expect([total("ingestRead"), total("ingestStored"), total("quarantined"), total("synced")]).toEqual([600, 540, 60, 540]);
  // Over the HTTP API, with its bounds.
  const api = apiClient({ app: createApp({ store: s, metrics: ticksyncMetrics() }) });
  expect((await ok(api.GET("/api/rates", { params: { query: { window: "600", bucket: "60" } } }))).points).toHaveLength(10);
  expect((await api.GET("/api/rates", { params: { query: { window: "86400", bucket: "10" } } })).response.status).toBe(400);
  expect((await api.GET("/api/freshness", { params: { query: { days: "0" } } })).response.status).toBe(400);
  expect((await api.GET("/api/freshness", { params: { query: { days: "5" } } })).response.status).toBe(200);
  expect((await ok(api.GET("/api/freshness", { params: { query: { days: "3", to: "2024-01-10" } } }))).dates).toEqual(["2024-01-08", "2024-01-09", "2024-01-10"]);
  expect((await api.GET("/api/freshness", { params: { query: { to: "10.01.2024" } } })).response.status).toBe(400);
});

test("quarantine replay: after a fix the rows pass, are stored by a replay run and leave the quarantine", async () => {
  const s = await fresh();
  // The source was configured without a market: bare tickers cannot be normalised.
  const ctx: Omit<ValidateContext, "lastTs" | "cache"> = { source: "files", interval: "1d" };
  const rows = ["2024-01-02", "2024-01-03", "2024-01-04"].map((d, i) => ({ locator: `pkn.csv:${i + 2}`, fields: { symbol: "PKN", ts: d, open: "10", high: "11", low: "9", close: `10.${i}`, volume: "100" } }));
  rows.push({ locator: "pkn.csv:5", fields: { symbol: "PKN.WA", ts: "2024-01-05", open: "10", high: "8", low: "9", close: "10", volume: "100" } }); // high < low: stays
  const checked = validateBatch(rows, ctx);
  expect(checked.rejections.map((r) => r.rule)).toEqual(["symbol", "symbol", "symbol", "high"]);
  const run = await s.startRun({ kind: "ingest", source: "files" });
  await s.commitBatch({ runId: run, source: "files", bars: checked.bars, quarantine: checked.rejections, read: rows.length });
  // A record of a sink's refusal is not the replay's to redo.
  await s.commitBatch({ runId: run, source: "files", bars: [], quarantine: [{ locator: "pb:bars/x", rule: "sink", reason: "refused", raw: { symbol: "PKN.WA" } }], read: 0 });

  let current = ctx;
  const api = apiClient({ app: createApp({ store: s, metrics: ticksyncMetrics(), replayContext: (name) => (name === "files" ? current : null) }) });
  type ReplayBody = NonNullable<paths["/api/quarantine/replay"]["post"]["requestBody"]>["content"]["application/json"];
  const replay = async (body: ReplayBody) => {
    const { data, error, response } = await api.POST("/api/quarantine/replay", { body });
    return { status: response.status, body: data, error };
  };
  expect((await replay({})).status).toBe(400);
  expect((await replay({ ids: [1], all: true })).error).toMatchObject({ error: "invalid request" });
  expect((await replay({ ids: [] })).status).toBe(400);

  // Before the fix: everything still fails, nothing moves.
  const before = await replay({ all: true });
  expect(before.status).toBe(200);
  expect(before.body!.data).toMatchObject({ examined: 5, released: 0, stillFailing: 4, skipped: 1 });
  expect(before.body!.data.kept.find((k) => k.rule === "sink")?.reason).toContain("next sync");

  // The fix: the source's market. One record by id first, then the rest by rule.
  current = { ...ctx, market: "WSE" };
  const all = (await s.listQuarantine({ limit: 100 })).filter((r) => r.rule === "symbol");
  expect(all).toHaveLength(3);
  const one = await replay({ ids: [all[all.length - 1]!.id] });
  expect(one.body!.data).toMatchObject({ examined: 1, released: 1, stillFailing: 0, skipped: 0 });
  expect(one.body!.data.sources[0]).toMatchObject({ source: "files", inserted: 1 });
  const rest = await replay({ all: true, rule: "symbol" });
  expect(rest.body!.data).toMatchObject({ examined: 2, released: 2, stillFailing: 0 });
  const left = await s.listQuarantine({ limit: 100 });
  expect(left.map((r) => r.rule).sort()).toEqual(["high", "sink"]);
  const stored = await s.queryBars({ symbol: "PKN.WA", interval: "1d", limit: 10 });
  expect(stored.map((b) => [new Date(b.ts).toISOString().slice(0, 10), b.close])).toEqual([
    ["2024-01-02", 10],
    ["2024-01-03", 10.1],
    ["2024-01-04", 10.2],
  ]);
  // Each replay is a run with its counts (the audit trail and the rates see it).
  const replays = (await s.listRuns({ limit: 10 })).filter((r) => r.kind === "replay");
  expect(replays).toHaveLength(3);
  expect(replays[0]).toMatchObject({ source: "files", outcome: "succeeded", read: 2, inserted: 2, quarantined: 0 });

  // A row that passes now, but whose key has a different bar stored since, is kept.
  await s.commitBatch({ runId: run, source: "files", bars: [], quarantine: [{ locator: "pkn.csv:9", rule: "symbol", reason: "old", raw: { symbol: "PKN", ts: "2024-01-02", open: "1", high: "1", low: "1", close: "1", volume: "1" } }], read: 1 });
  const kept = await replay({ all: true, rule: "symbol" });
  expect(kept.body!.data).toMatchObject({ examined: 1, released: 0, skipped: 1 });
  expect(kept.body!.data.kept[0]?.reason).toContain("stored since");
  expect((await s.queryBars({ symbol: "PKN.WA", interval: "1d", limit: 1 }))[0]!.close).toBe(10);

  // A source no longer in the config: skipped, with the reason.
  await s.commitBatch({ runId: run, source: "gone", bars: [], quarantine: [{ locator: "x:1", rule: "symbol", reason: "old", raw: {} }], read: 1 });
  const gone = await replay({ all: true, source: "gone" });
  expect(gone.body!.data.kept[0]?.reason).toContain("not in the config");
  // Without a config (in-process app without replay): 404.
  const bare = apiClient({ app: createApp({ store: s, metrics: ticksyncMetrics() }) });
  expect((await bare.POST("/api/quarantine/replay", { body: {} })).response.status).toBe(404);
});
