// Rolled-up weeks and months and /api/indicators from narrow rows (store.queryBarFields, the
// daily fold, indicator columns) against the reads they replaced, on a real SQLite store: the
// roller over Bars (readRolledUpBars) and the same app over the store without its narrow and
// value reads (queryBars' Bars only). Edge cases: two sources, a holiday Monday, DST changes,
// month ends mid-week, pages cut mid-week and mid-series by keyset cursors, from/to, a source
// filter, VWAP over intraday bars.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Bar, Interval } from "../src/domain/bar.ts";
import { createApp } from "../src/http/app.ts";
import { readDailyRolledUp, readRolledUp, readRolledUpBars } from "../src/http/derived.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import { tempDir } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const DAY = 86_400_000;
const dir = tempDir("ticksync-narrow-");
let store: Store;
/** The store as one without queryBarFields and queryBarValues: every read goes through queryBars. */
let barsOnly: Store;
const NOW = Date.parse("2025-06-02T20:00:00Z");

// PKN.WA: sources a (every session but a few) and b (two days in three), 2023-12 .. 2024-11:
// Easter Monday 2024-04-01 closed (that week starts on Tuesday), Christmas, New Year, DST in
// March and October, optional values on some days only. CDR.WA: one source, for indicators.
const daily: Bar[] = [];
const CLOSED = new Set(["2023-12-25", "2023-12-26", "2024-01-01", "2024-04-01", "2024-05-01", "2024-05-03", "2024-05-30", "2024-08-15", "2024-11-01", "2024-11-11"]);
for (let t = Date.UTC(2023, 11, 1), i = 0; t < Date.UTC(2024, 10, 30); t += DAY, i++) {
  const wd = new Date(t).getUTCDay();
  if (wd === 0 || wd === 6 || CLOSED.has(new Date(t).toISOString().slice(0, 10))) continue;
  const p = 50 + Math.sin(i / 7) * 10 + i / 20;
  const base = { symbol: "PKN.WA", interval: "1d" as const, ts: t, open: p, high: p + 1 + (i % 5) / 10, low: p - 1 - (i % 3) / 10, close: p + ((i % 7) - 3) / 10, volume: 1000 + i * 7.25 };
  if (i % 17 !== 5) daily.push({ ...base, source: "a", adjClose: i % 4 === 0 ? null : p, turnover: i % 11 === 0 ? null : 1e5 + i / 3, trades: i % 13 === 0 ? null : 10 + i });
  if (i % 3 !== 1) daily.push({ ...base, source: "b", close: p + 0.5, volume: 0.1 * i });
  daily.push({ ...base, symbol: "CDR.WA", source: "stooq", close: 100 + Math.cos(i / 5) * 20 + i / 10 });
}
// AAPL.US 5m bars over two New York sessions across the March 2024 DST change, for VWAP.
const fiveMin: Bar[] = [];
for (const open of [Date.parse("2024-03-08T14:30:00Z"), Date.parse("2024-03-11T13:30:00Z")])
  for (let k = 0; k < 78; k++)
    fiveMin.push({ source: "live", symbol: "AAPL.US", interval: "5m", ts: open + k * 300_000, open: 170 + k / 10, high: 171 + k / 10, low: 169 + k / 10, close: 170.5 + k / 10, volume: k % 9 === 0 ? 0 : 100 + k });

beforeAll(async () => {
  store = sqliteStore(`sqlite:${join(dir, "store.db")}`);
  await store.migrate();
  const runId = await store.startRun({ kind: "ingest", source: "test" });
  await store.commitBatch({ runId, source: "test", bars: [...daily, ...fiveMin], quarantine: [], read: daily.length + fiveMin.length });
  expect(store.queryBarFields).toBeDefined();
  barsOnly = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "queryBarFields" || prop === "queryBarValues") return undefined;
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
});
afterAll(async () => {
  await store?.close();
});

type Q = { source?: string; from?: number; to?: number; limit: number };

/** Every page of a rolled-up read, following its cursor. */
async function allPages(read: (after?: { ts: number; source: string }) => Promise<{ bars: Bar[]; next: { ts: number; source: string } | null; excluded: number }>) {
  const pages: { bars: Bar[]; excluded: number }[] = [];
  let after: { ts: number; source: string } | undefined;
  for (let i = 0; i < 500; i++) {
    const p = await read(after);
    pages.push({ bars: p.bars, excluded: p.excluded });
    if (!p.next) return pages;
    after = p.next;
  }
  throw new Error("no last page");
}

describe("weeks and months of daily bars from narrow rows", () => {
  const queries: Q[] = [
    { limit: 1000 },
    { limit: 1 },
    { limit: 3 },
    { limit: 7 },
    { source: "a", limit: 5 },
    { source: "b", limit: 1000 },
    // from/to inside weeks and months: a bucket is kept by its own ts
    { from: Date.UTC(2024, 2, 27), to: Date.UTC(2024, 4, 2), limit: 2 },
    { from: Date.UTC(2024, 3, 1), limit: 4 },
    { from: Date.UTC(2024, 3, 2), to: Date.UTC(2024, 3, 2), limit: 10 },
    { to: Date.UTC(2024, 0, 31), source: "a", limit: 3 },
    { from: Date.UTC(2025, 0, 1), limit: 10 },
  ];
  for (const interval of ["1w", "1mo"] as const)
    test(`${interval}: every page, cursor by cursor, equals the roller's`, async () => {
      for (const q of queries) {
        const base = { symbol: "PKN.WA", market: "WSE" as const, base: "1d" as Interval, interval, ...q };
        const old = await allPages((after) => readRolledUpBars(store, { ...base, after }));
        const narrow = await allPages((after) => readDailyRolledUp(store, { ...base, after, sources: q.source ? 1 : 2 }));
        const viaBars = await allPages((after) => readRolledUp(barsOnly, { ...base, after }));
        expect(narrow).toEqual(old);
        expect(viaBars).toEqual(old);
      }
      // The pages hold both sources and the Easter week starting on Tuesday.
      const all = (await readRolledUpBars(store, { symbol: "PKN.WA", market: "WSE", base: "1d", interval, limit: 1000 })).bars;
      expect(new Set(all.map((b) => b.source))).toEqual(new Set(["a", "b"]));
      if (interval === "1w") expect(all.filter((b) => b.ts === Date.UTC(2024, 3, 2)).length).toBe(2);
    });

  test("/api/bars?interval=1w|1mo: the same bytes with and without the narrow read, cursors and formats included", async () => {
    const app = createApp({ store, metrics: ticksyncMetrics(), now: () => NOW });
    const old = createApp({ store: barsOnly, metrics: ticksyncMetrics(), now: () => NOW });
    for (const path of ["/api/bars?symbol=PKN.WA&interval=1w&limit=6", "/api/bars?symbol=PKN.WA&interval=1mo&limit=2&source=a", "/api/bars?symbol=PKN.WA&interval=1w&limit=4&from=2024-03-20&to=2024-06-30&format=csv"]) {
      let next: string | null = path;
      let pages = 0;
      while (next) {
        const [a, b]: Response[] = await Promise.all([app.request(next), old.request(next)]);
        const [ta, tb]: string[] = [await a!.text(), await b!.text()];
        expect(a!.status).toBe(200);
        expect(ta).toBe(tb!);
        expect(a!.headers.get("etag")).toBe(b!.headers.get("etag"));
        const cursor: string | null = path.includes("format=csv") ? a!.headers.get("x-ticksync-next") : JSON.parse(ta!).next;
        next = cursor ? `${path}&cursor=${cursor}` : null;
        pages++;
      }
      expect(pages).toBeGreaterThan(2);
    }
  });
});

describe("/api/indicators from narrow rows", () => {
  test("the same bytes as from Bars: first page, pages after a cursor (warm-up), from/to, rolled up, VWAP on 5m bars", async () => {
    const app = createApp({ store, metrics: ticksyncMetrics(), now: () => NOW });
    const old = createApp({ store: barsOnly, metrics: ticksyncMetrics(), now: () => NOW });
    const paths = [
      "/api/indicators?symbol=CDR.WA&interval=1d&set=sma:20,rsi:14&limit=50",
      "/api/indicators?symbol=CDR.WA&interval=1d&set=ema:12,vol:10:ann,ret,logret,vwap&limit=37&from=2024-02-15&to=2024-09-30",
      "/api/indicators?symbol=PKN.WA&interval=1d&source=a&set=sma:5,rsi:3&limit=40",
      "/api/indicators?symbol=PKN.WA&interval=1w&source=b&set=sma:3,rsi:2,vol:3:ann&limit=9",
      "/api/indicators?symbol=PKN.WA&interval=1mo&source=a&set=ema:2&limit=4",
      "/api/indicators?symbol=AAPL.US&interval=5m&set=vwap,sma:4,rsi:6&limit=50",
      "/api/indicators?symbol=CDR.WA&interval=1d&set=sma:20,rsi:14&limit=60&format=arrow",
    ];
    for (const path of paths) {
      let next: string | null = path;
      let pages = 0;
      while (next && pages < 40) {
        const [a, b]: Response[] = await Promise.all([app.request(next), old.request(next)]);
        const [ba, bb]: Uint8Array[] = [new Uint8Array(await a!.arrayBuffer()), new Uint8Array(await b!.arrayBuffer())];
        expect(a!.status).toBe(200);
        expect(Buffer.from(ba!).equals(Buffer.from(bb!))).toBe(true);
        const cursor: string | null = path.includes("format=arrow") ? a!.headers.get("x-ticksync-next") : JSON.parse(new TextDecoder().decode(ba!)).next;
        next = cursor ? `${path}&cursor=${cursor}` : null;
        pages++;
      }
      expect(pages).toBeGreaterThan(1);
    }
  });

  test("a page after a cursor has the values of the whole series (the warm-up is read)", async () => {
    const app = createApp({ store, metrics: ticksyncMetrics(), now: () => NOW });
    type Page = { data: Record<string, unknown>[]; next: string | null };
    const whole = <Page>await (await app.request("/api/indicators?symbol=CDR.WA&interval=1d&set=sma:20,rsi:14,vwap&limit=1000")).json();
    const first = <Page>await (await app.request("/api/indicators?symbol=CDR.WA&interval=1d&set=sma:20,rsi:14,vwap&limit=100")).json();
    const second = <Page>await (await app.request(`/api/indicators?symbol=CDR.WA&interval=1d&set=sma:20,rsi:14,vwap&limit=100&cursor=${first.next}`)).json();
    expect([...first.data, ...second.data]).toEqual(whole.data.slice(0, 200));
    expect(second.data[0]!["sma:20"]).toBeNumber();
  });
});

describe("SQLite queryBarFields", () => {
  test("queryBars' rows, only the fields asked for, with source, range and cursor filters", async () => {
    const all = ["source", "ts", "open", "high", "low", "close", "volume", "adjClose", "turnover", "trades"] as const;
    const queries = [
      { symbol: "PKN.WA", interval: "1d" as const, limit: 10_000 },
      { symbol: "PKN.WA", interval: "1d" as const, limit: 7, source: "b" },
      { symbol: "PKN.WA", interval: "1d" as const, limit: 50, from: Date.UTC(2024, 2, 28), to: Date.UTC(2024, 3, 30) },
      { symbol: "PKN.WA", interval: "1d" as const, limit: 5, after: { ts: Date.UTC(2024, 3, 2), source: "a" } },
      { symbol: "NONE.WA", interval: "1d" as const, limit: 5 },
    ];
    for (const q of queries) {
      const bars = await store.queryBars(q);
      const full = await store.queryBarFields!(q, all);
      expect(full).toEqual(bars.map((b) => ({ source: b.source, ts: b.ts, open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume, adjClose: b.adjClose ?? null, turnover: b.turnover ?? null, trades: b.trades ?? null })));
      expect(await store.queryBarFields!(q, ["ts", "close"])).toEqual(bars.map((b) => ({ ts: b.ts, close: b.close })));
    }
    expect((await store.queryBarFields!(queries[0]!, ["ts"])).length).toBe(daily.filter((b) => b.symbol === "PKN.WA").length);
    await expect(store.queryBarFields!(queries[0]!, ["ts", "symbol; DROP TABLE bars" as "ts"])).rejects.toThrow(/no bar field/);
  });
});
