// Polygon's reference endpoints as an opt-in of the polygon source: /v3/reference/splits and
// /dividends (paged by next_url, the key added again), ticker details as the instrument; raw
// aggregates (adjusted=false) + the actions give, on read, the adjusted closes worked by hand.
// Without the opt-in not one extra request is made. With it, the reference endpoints are asked
// at most once per referenceRefreshHours and symbol, splits/dividends only from the newest known
// one less actionsOverlapDays; when they were asked is kept in the stream's cursor.
import { afterAll, beforeAll, describe, expect, setSystemTime, test } from "bun:test";
import { join } from "node:path";
import { parseConfig } from "../src/config/load.ts";
import { createApp } from "../src/http/app.ts";
import { apiClient, ok } from "../src/http/client/index.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { ingestFromConfig } from "../src/pipeline/run.ts";
import { resetSharedLimiters } from "../src/sources/provider.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import { startFakeProviders, type FakeBar, type FakeProviders } from "./fakes/providers.ts";
import { tempDir } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

setLogLevel("error");
const dir = tempDir("ticksync-polygon-actions-");
let fake: FakeProviders;

// As traded: a $0.50 dividend goes ex on 2024-03-07 (previous close 102.00), a 2-for-1 split on
// 2024-03-12, a second dividend of $0.30 on 2024-03-14 (after the split, previous close 52.80).
// Hand-worked adjusted closes (CRSP: split × 1/2 before 03-12, dividend × (1 − amount / previous close)):
//   03-14 on: raw. 03-12, 03-13: × (1 − 0.30/52.8) = × 0.99431818…  → 52.002841, 52.5
//   03-07 … 03-11: × 0.5 × 0.99431818 → 101.6 → 50.511364, 102.4 → 50.909091, 104.0 → 51.704545
//   03-04 … 03-06: also × (1 − 0.5/102) = × 0.99509804 → 100 → 49.472204, 101 → 49.966926, 102 → 50.461648
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
const BY_HAND: Record<string, number> = {
  "2024-03-04": 49.47,
  "2024-03-05": 49.97,
  "2024-03-06": 50.46,
  "2024-03-07": 50.51,
  "2024-03-08": 50.91,
  "2024-03-11": 51.7,
  "2024-03-12": 52.0,
  "2024-03-13": 52.5,
  "2024-03-14": 53.1,
  "2024-03-15": 53.0,
};
const BARS: FakeBar[] = RAW.map(([date, c]) => ({ date, open: c, high: c + 0.5, low: c - 0.5, close: c, volume: date < "2024-03-12" ? 1000 : 2000, adjClose: c }));
const EVENTS = {
  dividends: [
    { date: "2024-03-07", amount: 0.5 },
    { date: "2024-03-14", amount: 0.3 },
  ],
  splits: [{ date: "2024-03-12", numerator: 2, denominator: 1 }],
};
const QUICK_RETRY = { attempts: 3, rateLimitAttempts: 4, baseDelayMs: 5, maxDelayMs: 20 };

async function ingest(store: Store, extra: Record<string, unknown>) {
  resetSharedLimiters();
  const config = parseConfig({
    sources: {
      pg: { type: "polygon", baseUrl: `${fake.url}/polygon`, apiKey: "k3y-secret", symbols: ["AAPL.US"], start: "2024-03-01", rateLimit: { perSecond: 100 }, retry: QUICK_RETRY, ...extra },
    },
  });
  const summary = await ingestFromConfig({ loaded: { config, file: null, baseDir: dir }, source: "pg", store });
  expect(summary!.outcome).toBe("succeeded");
}

beforeAll(async () => {
  // Page size 1: two dividends are two pages, so next_url is followed.
  fake = await startFakeProviders({ polygonPageSize: 1 });
});
afterAll(async () => {
  await fake.stop();
});

describe("polygon corporate actions (actions = true, details = true)", () => {
  let store: Store;
  let app: ReturnType<typeof createApp>;
  // The JSON API through the typed client (src/http/client), in process.
  const api = () => apiClient({ app });

  beforeAll(async () => {
    fake.reset();
    fake.setBars("polygon", "AAPL", BARS);
    fake.setEvents("polygon", "AAPL", EVENTS);
    // The first dividends request is refused by the rate limit and retried.
    fake.fault("polygon", "AAPL", { kind: "429", retryAfterSeconds: 0, times: 1 }, { path: "/v3/reference/dividends" });
    store = sqliteStore(join(dir, "on.db"));
    await store.migrate();
    await ingest(store, { actions: true, details: true });
    app = createApp({ store, metrics: ticksyncMetrics() });
  });
  afterAll(async () => {
    await store.close();
  });

  test("splits and dividends are stored as actions; bars as traded (aggs asked adjusted=false)", async () => {
    const actions = await store.listActions!("AAPL.US");
    expect(actions.map(({ updatedAt, ...a }) => a)).toEqual([
      { source: "pg", symbol: "AAPL.US", type: "dividend", exDate: Date.parse("2024-03-07"), numerator: null, denominator: null, amount: 0.5, currency: "USD", payDate: Date.parse("2024-03-14") },
      { source: "pg", symbol: "AAPL.US", type: "split", exDate: Date.parse("2024-03-12"), numerator: 2, denominator: 1, amount: null, currency: null, payDate: null },
      { source: "pg", symbol: "AAPL.US", type: "dividend", exDate: Date.parse("2024-03-14"), numerator: null, denominator: null, amount: 0.3, currency: "USD", payDate: Date.parse("2024-03-21") },
    ]);
    const bars = await store.queryBars({ symbol: "AAPL.US", interval: "1d", limit: 100 });
    expect(bars.map((b) => [new Date(b.ts).toISOString().slice(0, 10), b.close])).toEqual(RAW);

    const reqs = fake.requests.filter((r) => r.provider === "polygon");
    const aggs = reqs.filter((r) => r.path.startsWith("/v2/aggs/"));
    // The first page asks adjusted=false; the next ones carry it inside next_url's cursor.
    expect(aggs[0]!.query.adjusted).toBe("false");
    expect(aggs.slice(1).every((r) => r.query.cursor !== undefined && r.query.adjusted === undefined)).toBe(true);
    // Splits: one page. Dividends: a 429, then two pages through next_url, the key added to each.
    const ref = reqs.filter((r) => r.path.startsWith("/v3/reference/"));
    expect(ref.map((r) => [r.path, r.status, r.query.cursor ? "cursor" : r.query.ticker])).toEqual([
      ["/v3/reference/splits", 200, "AAPL"],
      ["/v3/reference/dividends", 429, "AAPL"],
      ["/v3/reference/dividends", 200, "AAPL"],
      ["/v3/reference/dividends", 200, "cursor"],
      ["/v3/reference/tickers/AAPL", 200, undefined],
    ]);
    expect(ref.every((r) => r.query.apiKey === "k3y-secret")).toBe(true);
  });

  test("adjusted=true: closes as worked by hand for the split and both dividends", async () => {
    const r = await ok(api().GET("/api/bars", { params: { query: { symbol: "AAPL.US", adjusted: "true" } } }));
    expect(r.data.map((b) => [b.ts.slice(0, 10), Number(b.close.toFixed(2))])).toEqual(RAW.map(([d]) => [d, BY_HAND[d]!]));
    expect(r.data.map((b) => b.volume)).toEqual(RAW.map(() => 2000));
    expect(r.actions!.map((a) => [a.type, a.exDate, a.prevClose ?? null])).toEqual([
      ["dividend", "2024-03-07", 102],
      ["split", "2024-03-12", null],
      ["dividend", "2024-03-14", 52.8],
    ]);
  });

  test("ticker details are the instrument", async () => {
    const r = await ok(api().GET("/api/symbols"));
    expect(r.data[0]).toMatchObject({ symbol: "AAPL.US", name: "AAPL Holdings Inc. Common Stock", exchange: "XNAS", currency: "USD", type: "CS", sector: null, industry: "ELECTRONIC COMPUTERS", isin: null });
  });
});

describe("reference data is asked once per refresh period, actions incrementally", () => {
  const HOUR = 3_600_000;
  const opts = { actions: true, details: true }; // referenceRefreshHours 24, actionsOverlapDays 30
  let store: Store;
  let t0 = 0;
  const polygon = () => fake.requests.filter((r) => r.provider === "polygon");
  const reference = () => polygon().filter((r) => r.path.startsWith("/v3/reference/"));
  const cursor = async () => (await store.getCheckpoint("pg:AAPL.US"))!.cursor;
  const actionKeys = async () => (await store.listActions!("AAPL.US")).map((a) => `${a.type} ${new Date(a.exDate).toISOString().slice(0, 10)}`);
  // [path, the date filter of a first page (or "cursor" for next_url pages)]
  const asked = () => reference().map((r) => [r.path, r.query.cursor ? "cursor" : (r.query["execution_date.gte"] ?? r.query["ex_dividend_date.gte"] ?? null)]);

  beforeAll(async () => {
    fake.reset();
    fake.setBars("polygon", "AAPL", BARS);
    fake.setEvents("polygon", "AAPL", EVENTS);
    store = sqliteStore(join(dir, "cached.db"));
    await store.migrate();
  });
  afterAll(async () => {
    setSystemTime();
    await store.close();
  });

  test("the first run asks all of history once and keeps when in the cursor", async () => {
    t0 = Date.now();
    await ingest(store, opts);
    expect(asked()).toEqual([
      ["/v3/reference/splits", null],
      ["/v3/reference/dividends", null],
      ["/v3/reference/dividends", "cursor"],
      ["/v3/reference/tickers/AAPL", null],
    ]);
    const c = await cursor();
    expect(c.actionsAt).toBeGreaterThanOrEqual(t0);
    expect(c.detailsAt).toBe(c.actionsAt);
    expect(c.actionsNewest).toBe("2024-03-14");
    expect(await actionKeys()).toEqual(["dividend 2024-03-07", "split 2024-03-12", "dividend 2024-03-14"]);
  });

  test("a second run within the period asks for bars only: not one reference request", async () => {
    const before = await cursor();
    fake.requests.length = 0;
    setSystemTime(new Date(t0 + 23 * HOUR));
    await ingest(store, opts);
    expect(polygon().length).toBeGreaterThan(0);
    expect(polygon().every((r) => r.path.startsWith("/v2/aggs/"))).toBe(true);
    const c = await cursor();
    expect([c.actionsAt, c.detailsAt, c.actionsNewest]).toEqual([before.actionsAt, before.detailsAt, before.actionsNewest]);
    expect(await actionKeys()).toHaveLength(3);
  });

  test("after the period: asked only from the newest known action less 30 days; what was published since is stored", async () => {
    // Published since the first run: a 3-for-1 split ahead, and a late dividend inside the
    // overlap window. One older than the window is not asked for again (the saving).
    fake.setEvents("polygon", "AAPL", {
      dividends: [{ date: "2023-11-01", amount: 0.25 }, { date: "2024-02-20", amount: 0.2 }, ...EVENTS.dividends],
      splits: [...EVENTS.splits, { date: "2024-06-03", numerator: 3, denominator: 1 }],
    });
    fake.requests.length = 0;
    setSystemTime(new Date(t0 + 25 * HOUR));
    await ingest(store, opts);
    // 2024-03-14 − 30 days = 2024-02-13; dividends on or after it: 02-20, 03-07, 03-14 (pages of 1).
    expect(asked()).toEqual([
      ["/v3/reference/splits", "2024-02-13"],
      ["/v3/reference/splits", "cursor"],
      ["/v3/reference/dividends", "2024-02-13"],
      ["/v3/reference/dividends", "cursor"],
      ["/v3/reference/dividends", "cursor"],
      ["/v3/reference/tickers/AAPL", null],
    ]);
    expect(reference().every((r) => r.query.apiKey === "k3y-secret")).toBe(true);
    expect(await actionKeys()).toEqual(["dividend 2024-02-20", "dividend 2024-03-07", "split 2024-03-12", "dividend 2024-03-14", "split 2024-06-03"]);
    const c = await cursor();
    expect(c.actionsAt).toBeGreaterThanOrEqual(t0 + 25 * HOUR);
    expect(c.actionsNewest).toBe("2024-06-03");
  });

  test("the period after that asks from the new newest action on", async () => {
    fake.requests.length = 0;
    setSystemTime(new Date(t0 + 50 * HOUR));
    await ingest(store, opts);
    // 2024-06-03 − 30 days = 2024-05-04: only the new split comes back.
    expect(asked()).toEqual([
      ["/v3/reference/splits", "2024-05-04"],
      ["/v3/reference/dividends", "2024-05-04"],
      ["/v3/reference/tickers/AAPL", null],
    ]);
    expect(await actionKeys()).toHaveLength(5);
  });

  test("referenceRefreshHours = 0 asks on every run", async () => {
    fake.requests.length = 0;
    await ingest(store, { ...opts, referenceRefreshHours: 0 });
    expect(reference().map((r) => r.path)).toEqual(["/v3/reference/splits", "/v3/reference/dividends", "/v3/reference/tickers/AAPL"]);
  });
});

describe("polygon without the opt-in", () => {
  test("only aggregates are asked: no reference requests, no actions, no instrument", async () => {
    fake.reset();
    fake.setBars("polygon", "AAPL", BARS);
    fake.setEvents("polygon", "AAPL", EVENTS);
    const store = sqliteStore(join(dir, "off.db"));
    await store.migrate();
    try {
      await ingest(store, {});
      const reqs = fake.requests.filter((r) => r.provider === "polygon");
      expect(reqs.length).toBeGreaterThan(0);
      expect(reqs.every((r) => r.path.startsWith("/v2/aggs/ticker/AAPL/"))).toBe(true);
      expect(await store.listActions!("AAPL.US")).toEqual([]);
      expect(await store.listInstruments!()).toEqual([]);
    } finally {
      await store.close();
    }
  });

  test("the fake's adjusted=true aggregates divide by the split (what adjusted=false avoids storing)", async () => {
    const res = await fetch(`${fake.url}/polygon/v2/aggs/ticker/AAPL/range/1/day/2024-03-01/2024-03-20?adjusted=true&apiKey=k`);
    const body = (await res.json()) as any;
    expect([body.adjusted, body.results[0].c, body.results[0].v]).toEqual([true, 50, 2000]);
  });
});
