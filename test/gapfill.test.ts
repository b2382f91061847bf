// Gapfill against a local Yahoo server in Yahoo's own format: the store holds NYSE daily bars
// with holes; a gapfill asks the provider only for the symbols with holes, over their missing
// sessions, under the source's rate limit; what came is stored, a session the provider has no bar
// for is recorded as no-data (and leaves the gap report), a symbol whose fetch failed is left for
// next time, and a second gapfill does not ask for the no-data session again.
import { afterAll, beforeAll, beforeEach, expect, test } from "bun:test";
import { join } from "node:path";
import { parseConfig, type LoadedConfig } from "../src/config/load.ts";
import { runGapfill } from "../src/pipeline/gapfill.ts";
import { ingestFromConfig } from "../src/pipeline/run.ts";
import { createGapScanner } from "../src/pipeline/gaps.ts";
import { isTradingDay } from "../src/domain/calendar.ts";
import { metricValue, ticksyncMetrics } from "../src/lib/metrics.ts";
import { resetSharedLimiters } from "../src/sources/provider.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import { startFakeProviders, syntheticBars, type FakeBar, type FakeProviders } from "./fakes/providers.ts";
import { tempDir } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-gapfill-");
// 2024-03-28 (Thursday) has closed; 2024-03-29 is Good Friday, an NYSE holiday.
const NOW = Date.parse("2024-03-29T12:00:00Z");
const FROM = "2024-01-02";
const TO = "2024-03-28";
const SYMBOLS = ["AAPL", "MSFT", "IBM", "KO"];
// Holes in the store. AAPL: 3 sessions the provider has, and 2024-03-04 it does not; IBM: 2
// sessions, its fetch fails; KO: 1 session; MSFT none.
const HOLES: Record<string, string[]> = { AAPL: ["2024-02-05", "2024-02-06", "2024-02-07", "2024-03-04"], IBM: ["2024-01-10", "2024-01-11"], KO: ["2024-02-20"], MSFT: [] };
const PROVIDER_LACKS = new Set(["AAPL 2024-03-04"]);

let fake: FakeProviders;
let store: Store;
let loaded: LoadedConfig;
const full = new Map<string, FakeBar[]>();

beforeAll(async () => {
  fake = await startFakeProviders();
  // Yahoo serves no bars on exchange holidays (MLK day, Presidents' Day here).
  for (const s of SYMBOLS) full.set(s, syntheticBars(s, FROM, TO).filter((b) => isTradingDay("NYSE", b.date)));
});
afterAll(async () => {
  await store?.close();
  await fake.stop();
});
beforeEach(() => {
  fake.reset();
  resetSharedLimiters();
});

function config(): LoadedConfig {
  const config = parseConfig({
    store: { url: `sqlite:${join(dir, "gapfill.db")}` },
    sources: {
      yahoo: {
        type: "yahoo",
        baseUrl: `${fake.url}/yahoo`,
        symbols: SYMBOLS.map((s) => `${s}.US`),
        concurrency: 4,
        rateLimit: { perSecond: 4, burst: 1 },
        retry: { attempts: 1, baseDelayMs: 10, maxDelayMs: 20 },
      },
    },
    jobs: [{ name: "fill", kind: "gapfill", source: "yahoo", lookbackDays: 120, schedule: "0 30 23 * * 1-5" }],
  });
  return { config, file: null, baseDir: dir };
}

test("gapfill fetches only the missing sessions, records a no-data session and never asks for it again", async () => {
  loaded = config();
  store = sqliteStore(loaded.config.store.url);
  await store.migrate();
  // The store's history: the provider served every session but the holes.
  for (const s of SYMBOLS) fake.setBars("yahoo", s, full.get(s)!.filter((b) => !HOLES[s]!.includes(b.date)));
  const seed = await ingestFromConfig({ loaded, store, source: "yahoo", kind: "backfill", range: { from: Date.parse(`${FROM}T00:00:00Z`), to: Date.parse(`${TO}T00:00:00Z`) } });
  expect(seed.outcome).toBe("succeeded");
  const scanner = createGapScanner(store, { now: () => NOW });
  const gapsOf = async () => Object.fromEntries((await scanner.scan({ source: "yahoo" })).map((g) => [g.symbol, g.runs.map((r) => `${r.from}..${r.to}`)]));
  expect(await gapsOf()).toEqual({
    "AAPL.US": ["2024-02-05..2024-02-07", "2024-03-04..2024-03-04"],
    "IBM.US": ["2024-01-10..2024-01-11"],
    "KO.US": ["2024-02-20..2024-02-20"],
    "MSFT.US": [],
  });

  // Now the provider has the missing bars, except one session it never had; IBM's server errors.
  fake.reset();
  resetSharedLimiters();
  for (const s of SYMBOLS) fake.setBars("yahoo", s, full.get(s)!.filter((b) => !PROVIDER_LACKS.has(`${s} ${b.date}`)));
  fake.fault("yahoo", "IBM", { kind: "5xx", status: 503, times: 5 });
  fake.rateLimit("yahoo", 4);
  const metrics = ticksyncMetrics();
  const r = await runGapfill({ loaded, store, source: "yahoo", job: "fill", lookbackDays: 120, metrics, now: () => NOW });

  // One request per symbol with holes, over its missing sessions only, within the rate limit.
  const asked = fake.requests.map((q) => ({ symbol: q.path.split("/").pop(), from: new Date(Number(q.query.period1) * 1000).toISOString().slice(0, 10) }));
  expect(asked.map((a) => a.symbol).sort()).toEqual(["AAPL", "IBM", "KO"]);
  // Yahoo is asked from the day before the first missing session (a session open east of UTC falls on it).
  expect(asked.find((a) => a.symbol === "AAPL")!.from).toBe("2024-02-04");
  expect(asked.find((a) => a.symbol === "KO")!.from).toBe("2024-02-19");
  expect(fake.violations("yahoo")).toBe(0);
  expect(r.requested).toEqual({ "AAPL.US": HOLES.AAPL!, "IBM.US": HOLES.IBM!, "KO.US": HOLES.KO! });
  expect(r.sessions).toEqual({ filled: 4, no_data: 1, pending: 0, failed: 2 });
  expect(r.noData).toEqual([{ source: "yahoo", symbol: "AAPL.US", interval: "1d", session: "2024-03-04" }]);
  expect(r.outcome).toBe("failed"); // IBM's fetch failed: the run says so, by cause

  // The run is in the audit trail as a gapfill, with its per-symbol streams.
  const run = (await store.getRun(r.runId))!;
  expect(run).toMatchObject({ kind: "gapfill", source: "yahoo", job: "fill", inserted: 4 });
  expect(run.failures).toEqual({ server_error: 1 });
  expect((await store.listRunStreams(r.runId)).map((s) => `${s.stream}:${s.status}`).sort()).toEqual(["AAPL.US:done", "IBM.US:failed", "KO.US:done"]);
  expect(await metricValue(metrics.gapfillSessions, { source: "yahoo", outcome: "filled" })).toBe(4);
  expect(await metricValue(metrics.gapfillSessions, { source: "yahoo", outcome: "no_data" })).toBe(1);
  expect(await metricValue(metrics.gapfillSessions, { source: "yahoo", outcome: "failed" })).toBe(2);

  // The filled bars are the provider's; the no-data session is no longer a gap; IBM's still is.
  const aapl = await store.queryBars({ symbol: "AAPL.US", interval: "1d", source: "yahoo", from: Date.parse("2024-02-05T00:00:00Z"), to: Date.parse("2024-02-07T00:00:00Z"), limit: 10 });
  expect(aapl.map((b) => new Date(b.ts).toISOString().slice(0, 10))).toEqual(["2024-02-05", "2024-02-06", "2024-02-07"]);
  expect(aapl[1]!.close).toBeCloseTo(full.get("AAPL")!.find((b) => b.date === "2024-02-06")!.close, 4);
  expect(await store.listNoData!({ source: "yahoo" })).toMatchObject([{ source: "yahoo", symbol: "AAPL.US", interval: "1d", session: "2024-03-04" }]);
  expect(await gapsOf()).toEqual({ "AAPL.US": [], "IBM.US": ["2024-01-10..2024-01-11"], "KO.US": [], "MSFT.US": [] });

  // Again, IBM's server healthy now: only IBM is asked for; AAPL's no-data session is not.
  fake.reset();
  resetSharedLimiters();
  for (const s of SYMBOLS) fake.setBars("yahoo", s, full.get(s)!.filter((b) => !PROVIDER_LACKS.has(`${s} ${b.date}`)));
  const again = await runGapfill({ loaded, store, source: "yahoo", job: "fill", lookbackDays: 120, metrics, now: () => NOW });
  expect(fake.requests.map((q) => q.path.split("/").pop())).toEqual(["IBM"]);
  expect(again).toMatchObject({ outcome: "succeeded", requested: { "IBM.US": HOLES.IBM! }, sessions: { filled: 2, no_data: 0, pending: 0, failed: 0 } });

  // Nothing left: a third gapfill asks the provider nothing at all, and is still a run.
  fake.reset();
  const third = await runGapfill({ loaded, store, source: "yahoo", job: "fill", lookbackDays: 120, metrics, now: () => NOW });
  expect(fake.requests).toEqual([]);
  expect(third).toMatchObject({ outcome: "succeeded", requested: {}, sessions: { filled: 0, no_data: 0, pending: 0, failed: 0 } });
  expect((await store.getRun(third.runId))!.kind).toBe("gapfill");
});

test("a session newer than every stored bar is not recorded as no-data (the provider may publish it later)", async () => {
  const s = sqliteStore(`sqlite:${join(dir, "trailing.db")}`);
  try {
    await s.migrate();
    // The store ends at 2024-03-26; the provider has nothing after 2024-03-25.
    fake.setBars("yahoo", "KO", full.get("KO")!.filter((b) => b.date <= "2024-03-26"));
    await ingestFromConfig({ loaded, store: s, source: "yahoo", streams: ["KO.US"], kind: "backfill", range: { from: Date.parse(`${FROM}T00:00:00Z`), to: Date.parse("2024-03-26T00:00:00Z") } });
    const r = await runGapfill({ loaded, store: s, source: "yahoo", lookbackDays: 30, now: () => NOW });
    expect(r.requested).toEqual({ "KO.US": ["2024-03-27", "2024-03-28"] });
    expect(r.sessions).toEqual({ filled: 0, no_data: 0, pending: 2, failed: 0 });
    expect(await s.listNoData!()).toEqual([]);
  } finally {
    await s.close();
  }
});

test("config: a gapfill job needs a source; gapfill refuses sources that are not providers", async () => {
  expect(() => parseConfig({ jobs: [{ name: "fill", kind: "gapfill" }] })).toThrow(/gapfill job "fill" needs source/);
  const csv = parseConfig({ sources: { files: { type: "csv", path: "x.csv" } } });
  const s = sqliteStore(`sqlite:${join(dir, "csv.db")}`);
  try {
    await s.migrate();
    await expect(runGapfill({ loaded: { config: csv, file: null, baseDir: dir }, store: s, source: "files", lookbackDays: 30 })).rejects.toThrow(/needs a provider source/);
  } finally {
    await s.close();
  }
});
