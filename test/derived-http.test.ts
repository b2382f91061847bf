// /api/bars rolled up on read, /api/indicators, /api/gaps and the ticksync_gap_bars gauge, on a
// real SQLite store through the Hono app, called by the typed API client (src/http/client); raw
// requests only for what the client cannot send (a missing required symbol, an unknown market).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Bar } from "../src/domain/bar.ts";
import { createApp } from "../src/http/app.ts";
import { apiClient, type ApiClient, type paths } from "../src/http/client/index.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import { tempDir } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-derived-");
let store: Store;
let app: ReturnType<typeof createApp>;
let api: ApiClient;
const NOW = Date.parse("2024-04-03T21:00:00Z"); // after both markets closed on Wednesday 2024-04-03

// NYSE sessions 2024-01-02..2024-03-28 written out: weekdays without Jan 15 (MLK) and Feb 19
// (Presidents' Day); 2024-02-07 left out on purpose (the gap).
const AAPL_DAYS: string[] = [];
for (let t = Date.parse("2024-01-02T00:00:00Z"); t <= Date.parse("2024-03-28T00:00:00Z"); t += 86_400_000) {
  const day = new Date(t);
  const date = day.toISOString().slice(0, 10);
  if (day.getUTCDay() === 0 || day.getUTCDay() === 6 || ["2024-01-15", "2024-02-19", "2024-02-07"].includes(date)) continue;
  AAPL_DAYS.push(date);
}
const aapl: Bar[] = AAPL_DAYS.map((date, i) => ({
  source: "stooq",
  symbol: "AAPL.US",
  interval: "1d",
  ts: Date.parse(`${date}T00:00:00Z`),
  open: 100 + i,
  high: 101 + i,
  low: 99 + i,
  close: 100 + i,
  volume: 1000,
}));
// PKN 1m bars of two full Warsaw sessions: 2024-03-28 (CET, 08:00-16:00Z) and 2024-04-02 (CEST, 07:00-15:00Z).
const minutes = (start: string, n: number, k0: number): Bar[] =>
  Array.from({ length: n }, (_, k) => ({
    source: "live",
    symbol: "PKN.WA",
    interval: "1m",
    ts: Date.parse(start) + k * 60_000,
    open: 50 + (k0 + k) / 100,
    high: 51 + (k0 + k) / 100,
    low: 49 + (k0 + k) / 100,
    close: 50 + (k0 + k) / 100,
    volume: k % 2 === 0 ? 10 : 0,
  }));
const pkn = [...minutes("2024-03-28T08:00:00Z", 480, 0), ...minutes("2024-04-02T07:00:00Z", 480, 1000)];

beforeAll(async () => {
  store = sqliteStore(`sqlite:${join(dir, "store.db")}`);
  await store.migrate();
  const runId = await store.startRun({ kind: "ingest", source: "test" });
  await store.commitBatch({ runId, source: "test", bars: [...aapl, ...pkn], quarantine: [], read: aapl.length + pkn.length });
  app = createApp({ store, metrics: ticksyncMetrics(), now: () => NOW, indicators: { default: ["sma:3"], universes: {} } });
  api = apiClient({ app });
});
afterAll(async () => {
  await store.close();
});

type BarsQuery = paths["/api/bars"]["get"]["parameters"]["query"];
type IndicatorsQuery = paths["/api/indicators"]["get"]["parameters"]["query"];
type GapsQuery = NonNullable<paths["/api/gaps"]["get"]["parameters"]["query"]>;
/** A page: the status, and the body (the JSON 200 body, or the error's body as the test reads it). */
const answer = async <T>(call: Promise<{ data?: T; error?: unknown; response: Response }>) => {
  const { data, error, response } = await call;
  return { status: response.status, body: (data ?? error) as T & { issues: { field: string; message: string }[] } };
};
const bars = (query: BarsQuery) => answer(api.GET("/api/bars", { params: { query } }));
const indicators = (query: IndicatorsQuery) => answer(api.GET("/api/indicators", { params: { query } }));
const gaps = (query: GapsQuery) => answer(api.GET("/api/gaps", { params: { query } }));

/** Every page of a paged endpoint, following `next`. */
async function allPages<Q extends { cursor?: string }, R extends { data: unknown[]; next: string | null }>(get: (q: Q) => Promise<{ status: number; body: R }>, query: Q): Promise<{ pages: number; data: R["data"] }> {
  const data: R["data"] = [];
  let pages = 0;
  let next: string | null = null;
  do {
    const { status, body } = await get(next ? { ...query, cursor: next } : query);
    expect(status).toBe(200);
    data.push(...body.data);
    next = body.next;
    pages++;
  } while (next);
  return { pages, data };
}

describe("/api/bars rolled up on read", () => {
  test("weekly from daily: sessions of each ISO week, ts = the week's first session; says where it came from", async () => {
    const { status, body } = await bars({ symbol: "AAPL.US", interval: "1w", limit: "100" });
    expect(status).toBe(200);
    expect(body.rolledUpFrom).toBe("1d");
    expect(body.next).toBeNull();
    expect(body.data.length).toBe(13);
    expect(body.data[0]).toEqual({ source: "stooq", symbol: "AAPL.US", interval: "1w", ts: "2024-01-02T00:00:00.000Z", open: 100, high: 104, low: 99, close: 103, volume: 4000 });
    expect(body.data[2]!.ts).toBe("2024-01-16T00:00:00.000Z"); // Monday the 15th is MLK day
    expect(body.data[5]).toMatchObject({ ts: "2024-02-05T00:00:00.000Z", volume: 4000 }); // the 7th is missing
  });

  test("paging: pages of 3 weeks, following next, give the same bars as one page", async () => {
    const one = (await bars({ symbol: "AAPL.US", interval: "1w", limit: "100" })).body.data;
    const paged = await allPages(bars, { symbol: "AAPL.US", interval: "1w", limit: "3" });
    expect(paged.pages).toBe(5);
    expect(paged.data).toEqual(one);
    const monthly = await allPages(bars, { symbol: "AAPL.US", interval: "1mo", limit: "1", from: "2024-02-01" });
    expect(monthly.data.map((b: any) => b.ts)).toEqual(["2024-02-01T00:00:00.000Z", "2024-03-01T00:00:00.000Z"]);
  });

  test("intraday from 1m along the Warsaw session across the EU change (2024-03-31)", async () => {
    const { body } = await bars({ symbol: "PKN.WA", interval: "1h" });
    expect(body.rolledUpFrom).toBe("1m");
    expect(body.data.map((b: any) => b.ts)).toEqual([
      ...[8, 9, 10, 11, 12, 13, 14, 15].map((h) => `2024-03-28T${String(h).padStart(2, "0")}:00:00.000Z`),
      ...[7, 8, 9, 10, 11, 12, 13, 14].map((h) => `2024-04-02T${String(h).padStart(2, "0")}:00:00.000Z`),
    ]);
    expect(body.data[0]).toMatchObject({ open: 50, high: 51.59, low: 49, close: 50.59, volume: 300 });
    const paged = await allPages(bars, { symbol: "PKN.WA", interval: "15m", limit: "7", from: "2024-04-02T13:00:00Z" });
    expect(paged.data.map((b: any) => b.ts)).toEqual([
      "2024-04-02T13:00:00.000Z", "2024-04-02T13:15:00.000Z", "2024-04-02T13:30:00.000Z", "2024-04-02T13:45:00.000Z",
      "2024-04-02T14:00:00.000Z", "2024-04-02T14:15:00.000Z", "2024-04-02T14:30:00.000Z", "2024-04-02T14:45:00.000Z",
    ]);
    const daily = (await bars({ symbol: "PKN.WA", interval: "1d" })).body;
    expect(daily.data.map((b: any) => [b.ts, b.open, Math.round(b.close * 100) / 100, b.volume])).toEqual([
      ["2024-03-28T00:00:00.000Z", 50, 54.79, 2400],
      ["2024-04-02T00:00:00.000Z", 60, 64.79, 2400],
    ]);
  });

  test("stored bars at the interval are served as they are", async () => {
    const { body } = await bars({ symbol: "AAPL.US", interval: "1d", limit: "2" });
    expect(body.rolledUpFrom).toBeUndefined();
    expect(body.data.length).toBe(2);
  });
});

describe("/api/indicators", () => {
  test("values at `from` use the bars before it; pages follow next", async () => {
    const full = (await indicators({ symbol: "AAPL.US", set: "sma:3,ema:3,rsi:3,ret", limit: "1000" })).body;
    expect(full).toMatchObject({ symbol: "AAPL.US", interval: "1d", source: "stooq", set: ["sma:3", "ema:3", "rsi:3", "ret"] });
    expect(full.data[0] as object).toEqual({ ts: "2024-01-02T00:00:00.000Z", close: 100, "sma:3": null, "ema:3": null, "rsi:3": null, ret: null });
    // Closes rise by 1 a bar: SMA(3) at bar i is 100 + i - 1, EMA(3) of a linear series lags by 1 as well, RSI is 100.
    expect(full.data[2]).toMatchObject({ "sma:3": 101, "ema:3": 101 });
    const from = (await indicators({ symbol: "AAPL.US", set: "sma:3,ema:3,rsi:3,ret", from: "2024-03-01", limit: "3" })).body;
    const i = AAPL_DAYS.indexOf("2024-03-01");
    expect(from.data[0]).toMatchObject({ ts: "2024-03-01T00:00:00.000Z", close: 100 + i, "sma:3": 99 + i, "ema:3": 99 + i, "rsi:3": 100 });
    expect(from.data[0]!.ret).toBeCloseTo(1 / (99 + i), 12);
    expect(from.data).toEqual(full.data.slice(i, i + 3));
    const paged = await allPages(indicators, { symbol: "AAPL.US", set: "sma:3,ema:3,rsi:3,ret", limit: "7" });
    expect(paged.data).toEqual(full.data);
  });

  test("the config's default set; rolled-up bars; VWAP per session", async () => {
    expect((await indicators({ symbol: "AAPL.US", limit: "1" })).body.set).toEqual(["sma:3"]);
    const { body } = await indicators({ symbol: "PKN.WA", interval: "1h", set: "vwap,sma:2" });
    expect(body.rolledUpFrom).toBe("1m");
    expect(body.data.length).toBe(16);
    // VWAP over hour bars: the first is its typical price (51.59 + 49 + 50.59) / 3; the second
    // (50.6 … 52.19, 49.6, 51.19; volume 300 each) gives ((151.18 + 152.98) / 3) / 2.
    expect(body.data[0]!.vwap).toBeCloseTo(50.3933333333, 9);
    expect(body.data[1]!.vwap).toBeCloseTo(50.6933333333, 9);
    expect(body.data[0]!["sma:2"]).toBeNull();
    // The second session starts over: (61.59 + 59 + 60.59) / 3.
    expect(body.data[8]!.vwap).toBeCloseTo(60.3933333333, 9);
  });

  test("bad requests say what is wrong", async () => {
    const bad = await indicators({ symbol: "AAPL.US", set: "sma:20,macd" });
    expect(bad.status).toBe(400);
    expect(bad.body.issues[0]).toMatchObject({ field: "set" });
    expect(bad.body.issues[0]!.message).toContain("unknown indicator");
    const ann = await indicators({ symbol: "PKN.WA", interval: "1h", set: "vol:5:ann" });
    expect(ann.status).toBe(400);
    expect(ann.body.issues[0]!.message).toContain("annualised");
    // No symbol: a request the typed client cannot make.
    expect((await app.request("/api/indicators?interval=1d")).status).toBe(400);
    expect((await indicators({ symbol: "AAPL.US", limit: "0" })).status).toBe(400);
  });
});

describe("/api/gaps and ticksync_gap_bars", () => {
  test("missing sessions per series, holidays not among them, with the trailing run to the latest completed session", async () => {
    const { status, body } = await gaps({ symbol: "AAPL.US" });
    expect(status).toBe(200);
    expect(body.series).toEqual([
      { source: "stooq", symbol: "AAPL.US", market: "NYSE", interval: "1d", first: "2024-01-02T00:00:00.000Z", last: "2024-03-28T00:00:00.000Z", bars: 60, expected: 61, missingSessions: 4, missingBars: 4 },
    ]);
    // Good Friday (2024-03-29) is a holiday; 04-01..04-03 have closed by NOW.
    expect(body.data).toEqual([
      { source: "stooq", symbol: "AAPL.US", market: "NYSE", interval: "1d", from: "2024-02-07", to: "2024-02-07", units: 1, sessions: 1, bars: 1, trailing: false },
      { source: "stooq", symbol: "AAPL.US", market: "NYSE", interval: "1d", from: "2024-04-01", to: "2024-04-03", units: 3, sessions: 3, bars: 3, trailing: true },
    ]);
    const limited = (await gaps({ symbol: "AAPL.US", limit: "1" })).body;
    expect(limited).toMatchObject({ count: 2, truncated: true });
    expect(limited.data.length).toBe(1);
  });

  test("intraday: WSE 1m, Good Friday and Easter Monday closed, 2024-04-03 missing whole", async () => {
    const { body } = await gaps({ market: "WSE", interval: "1m" });
    expect(body.data).toEqual([{ source: "live", symbol: "PKN.WA", market: "WSE", interval: "1m", from: "2024-04-03", to: "2024-04-03", units: 1, sessions: 1, bars: 480, trailing: true }]);
    expect((await app.request("/api/gaps?market=XYZ")).status).toBe(400);
  });

  test("/metrics carries the gauge by market and interval", async () => {
    const text = await (await app.request("/metrics")).text();
    expect(text).toContain('ticksync_gap_bars{market="NYSE",interval="1d"} 4');
    expect(text).toContain('ticksync_gap_bars{market="WSE",interval="1m"} 480');
  });
});
