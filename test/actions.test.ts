// Corporate actions end to end: a Yahoo chart with a dividend and a split in its `events`, ingested
// into raw bars + action records, and read back adjusted (/api/bars?adjusted=true) to the cent
// of the adjusted close Yahoo itself published. Also: instruments from the chart's meta at
// /api/symbols, and a later split re-adjusting history without a request to the provider.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { parseConfig } from "../src/config/load.ts";
import { createApp } from "../src/http/app.ts";
import { apiClient, ok, type paths } from "../src/http/client/index.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { ingestFromConfig } from "../src/pipeline/run.ts";
import { resetSharedLimiters } from "../src/sources/provider.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import { actionFactor, adjustBars, type CorporateAction } from "../src/domain/actions.ts";
import { startFakeProviders, type FakeBar, type FakeProviders } from "./fakes/providers.ts";
import { tempDir } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

setLogLevel("error");
const dir = tempDir("ticksync-actions-");
let fake: FakeProviders;
let store: Store;
let app: ReturnType<typeof createApp>;

// What was traded (raw prices): a $0.50 dividend goes ex on 2024-03-07, a 2-for-1 split on
// 2024-03-12. What Yahoo publishes: `close` adjusted for the split (raw / 2 before 03-12),
// the dividend split-adjusted too ($0.25), and `adjclose` = close × (1 − 0.25 / 51.00) before
// 03-07, 51.00 being the (split-adjusted) close of 03-06, the session before the ex-date.
// Hand-worked adjcloses: 50 − 50·0.25/51 = 49.754902; 50.5 − 50.5·0.25/51 = 50.252451; 51 − 0.25 = 50.75.
const RAW: [string, number][] = [
  ["2024-03-04", 100.0],
  ["2024-03-05", 101.0],
  ["2024-03-06", 102.0],
  ["2024-03-07", 101.6],
  ["2024-03-08", 102.4],
  ["2024-03-11", 104.0],
  ["2024-03-12", 52.3],
  ["2024-03-13", 52.8],
  ["2024-03-14", 53.1],
  ["2024-03-15", 53.0],
];
const YAHOO_ADJCLOSE: Record<string, number> = { "2024-03-04": 49.754902, "2024-03-05": 50.252451, "2024-03-06": 50.75 };
const YAHOO: FakeBar[] = RAW.map(([date, raw]) => {
  const close = date < "2024-03-12" ? raw / 2 : raw;
  return { date, open: close, high: close + 0.5, low: close - 0.5, close, volume: date < "2024-03-12" ? 2000 : 1000, adjClose: YAHOO_ADJCLOSE[date] ?? close };
});

beforeAll(async () => {
  fake = await startFakeProviders();
  resetSharedLimiters();
  fake.setBars("yahoo", "AAPL", YAHOO);
  fake.setEvents("yahoo", "AAPL", { dividends: [{ date: "2024-03-07", amount: 0.25 }], splits: [{ date: "2024-03-12", numerator: 2, denominator: 1 }] });
  store = sqliteStore(join(dir, "store.db"));
  await store.migrate();
  const config = parseConfig({
    sources: { yh: { type: "yahoo", baseUrl: `${fake.url}/yahoo`, symbols: ["AAPL.US"], start: "2024-03-01", rateLimit: { perSecond: 100 } } },
  });
  const summary = await ingestFromConfig({ loaded: { config, file: null, baseDir: dir }, source: "yh", store });
  expect(summary!.outcome).toBe("succeeded");
  app = createApp({ store, metrics: ticksyncMetrics() });
});
afterAll(async () => {
  await store.close();
  await fake.stop();
});

// The JSON API through the typed client (src/http/client), in process.
const bars = (query: BarsQuery) => ok(apiClient({ app }).GET("/api/bars", { params: { query } }));
type BarsQuery = paths["/api/bars"]["get"]["parameters"]["query"];

describe("yahoo corporate actions", () => {
  test("raw bars are stored (Yahoo's split adjustment taken out), the actions as their own records", async () => {
    const bars = await store.queryBars({ symbol: "AAPL.US", interval: "1d", limit: 100 });
    expect(bars.map((b) => [new Date(b.ts).toISOString().slice(0, 10), b.close, b.volume])).toEqual(RAW.map(([d, c]) => [d, c, 1000]));
    const actions = await store.listActions!("AAPL.US");
    expect(actions.map(({ updatedAt, ...a }) => a)).toEqual([
      { source: "yh", symbol: "AAPL.US", type: "dividend", exDate: Date.parse("2024-03-07"), numerator: null, denominator: null, amount: 0.5, currency: "USD", payDate: null },
      { source: "yh", symbol: "AAPL.US", type: "split", exDate: Date.parse("2024-03-12"), numerator: 2, denominator: 1, amount: null, currency: null, payDate: null },
    ]);
  });

  test("adjusted=true equals Yahoo's own adjusted close, to the cent, on every bar", async () => {
    const r = await bars({ symbol: "AAPL.US", adjusted: "true" });
    expect(r.adjusted).toBe(true);
    expect(r.data.length).toBe(RAW.length);
    for (const [i, b] of r.data.entries()) {
      const yahoo = YAHOO[i]!;
      expect(b.ts.slice(0, 10)).toBe(yahoo.date);
      expect(b.close.toFixed(2)).toBe(yahoo.adjClose.toFixed(2));
      expect(b.adjClose).toBe(b.close);
    }
    // Volume is adjusted for the split only.
    expect(r.data.map((b) => b.volume)).toEqual(RAW.map(([d]) => (d < "2024-03-12" ? 2000 : 1000)));
    expect(r.actions!.map((a) => [a.type, a.exDate, a.prevClose ?? null])).toEqual([
      ["dividend", "2024-03-07", 102],
      ["split", "2024-03-12", null],
    ]);
    // Unadjusted reads are the raw bars, with Yahoo's adjusted close kept beside them.
    const plain = await bars({ symbol: "AAPL.US" });
    expect(plain.data[0]).toMatchObject({ close: 100, adjClose: 49.7549 }); // Yahoo's float32: 7 digits
  });

  test("a later split re-adjusts all of history on read, with no request to the provider", async () => {
    const before = fake.requests.length;
    await store.upsertActions!([{ source: "yh", symbol: "AAPL.US", type: "split", exDate: Date.parse("2024-03-20"), numerator: 3, denominator: 1, amount: null, currency: null, payDate: null }]);
    const r = await bars({ symbol: "AAPL.US", adjusted: "true" });
    for (const [i, b] of r.data.entries()) expect(b.close.toFixed(4)).toBe((YAHOO[i]!.adjClose / 3).toFixed(4));
    expect(fake.requests.length).toBe(before);
  });

  test("the same split from two sources is applied once; adjusted rollups are refused, not guessed", async () => {
    await store.upsertActions!([{ source: "other", symbol: "AAPL.US", type: "split", exDate: Date.parse("2024-03-12"), numerator: 2, denominator: 1, amount: null, currency: null, payDate: null }]);
    const r = await bars({ symbol: "AAPL.US", adjusted: "true", to: "2024-03-04" });
    expect(r.data[0]!.close.toFixed(4)).toBe((YAHOO[0]!.adjClose / 3).toFixed(4));
    const w = await apiClient({ app }).GET("/api/bars", { params: { query: { symbol: "AAPL.US", adjusted: "true", interval: "1w" } } });
    expect(w.response.status).toBe(400);
  });

  test("the chart's meta is the instrument at /api/symbols", async () => {
    const r = await ok(apiClient({ app }).GET("/api/symbols"));
    expect(r.data[0]).toMatchObject({ symbol: "AAPL.US", name: "AAPL", exchange: "NasdaqGS", currency: "USD", type: "EQUITY", sector: null, isin: null });
    expect(r.data[0]!.instruments.map((i) => i.source)).toEqual(["yh"]);
  });
});

describe("factors (Yahoo's method)", () => {
  const a = (x: Partial<CorporateAction>): CorporateAction => ({ source: "s", symbol: "X.US", type: "split", exDate: 10, numerator: null, denominator: null, amount: null, currency: null, payDate: null, ...x });
  test("split: denominator / numerator; dividend: 1 − amount / previous close; unusable ones are skipped with a reason", async () => {
    expect(actionFactor(a({ numerator: 4, denominator: 1 }), null)).toEqual({ factor: 0.25 });
    expect(actionFactor(a({ numerator: 1, denominator: 10 }), null)).toEqual({ factor: 10 }); // reverse split
    expect(actionFactor(a({ type: "dividend", amount: 1 }), 50)).toEqual({ factor: 0.98 });
    expect(actionFactor(a({ type: "dividend", amount: 1 }), null)).toHaveProperty("skipped");
    expect(actionFactor(a({ type: "dividend", amount: 60 }), 50)).toHaveProperty("skipped");
    const bars = [5, 15].map((ts) => ({ source: "s", symbol: "X.US", interval: "1d" as const, ts, open: 10, high: 10, low: 10, close: 10, volume: 100 }));
    const out = await adjustBars(bars, [a({ numerator: 2, denominator: 1 })], async () => null);
    expect(out.bars.map((b) => [b.close, b.volume])).toEqual([[5, 200], [10, 100]]);
  });
});
