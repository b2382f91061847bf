// Binance REST klines against a local Binance (test/fakes/binance.ts, its real formats): paging
// over 3 pages of 1,000 from the last open time + 1 interval, the in-progress kline rewritten by
// the next run, 1w (Monday 00:00 UTC) and 1mo (`1M`) bars, the weight header slowing every caller
// to the next window, 429 with Retry-After, a 418 ban (no request at all until it ends, every
// symbol failing with one line), and -1121 Invalid symbol failing that symbol only.
import { describe, expect, test } from "bun:test";
import { parseConfig } from "../src/config/load.ts";
import { bucketOf } from "../src/domain/rollup.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { runIngest } from "../src/pipeline/ingest.ts";
import { ingestFromConfig } from "../src/pipeline/run.ts";
import { binanceSource } from "../src/sources/binance.ts";
import { resetSharedLimiters } from "../src/sources/provider.ts";
import type { Store } from "../src/stores/types.ts";
import { klineSeries, kline, startFakeBinance, type FakeBinance, type FakeKline } from "./fakes/binance.ts";
import { useFakeServerTestEnv } from "./provider-env.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();
setLogLevel("error");

const MIN = 60_000;
const DAY = 86_400_000;
let fake: FakeBinance;
let store: Store;
const dir = useFakeServerTestEnv("ticksync-binance-", startFakeBinance, (env) => void ({ fake, store } = env));

const source = (extra: Record<string, unknown>) => ({
  type: "binance",
  baseUrl: fake.url,
  rateLimit: { perSecond: 200 },
  retry: { attempts: 2, rateLimitAttempts: 3, baseDelayMs: 5, maxDelayMs: 10 },
  market: "CRYPTO",
  ...extra,
});
const loaded = (sources: Record<string, unknown>) => ({ config: parseConfig({ sources }), file: null, baseDir: dir });
const run = (cfg: Record<string, unknown>, name = "b") => ingestFromConfig({ loaded: loaded({ [name]: source(cfg) }), store, source: name });
const dateOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The stored bars of a symbol as the fake's klines would make them. */
async function stored(symbol: string, interval: string) {
  return (await store.queryBars({ symbol, interval: interval as "1m", limit: 100_000 })).map((b) => ({ t: b.ts, o: b.open, h: b.high, l: b.low, c: b.close, v: b.volume, q: b.turnover, n: b.trades }));
}
const expected = (ks: FakeKline[]) => ks.map((k) => ({ t: k.t, o: Number(k.o), h: Number(k.h), l: Number(k.l), c: Number(k.c), v: Number(k.v), q: Number(k.q), n: k.n }));

describe("binance REST klines", () => {
  test("2,500 1m klines come in 3 pages, each from the last open time + 1 minute, all stored", async () => {
    const first = Date.parse("2026-01-05T00:00:00Z");
    const ks = klineSeries(first, MIN, 2500);
    fake.series.set("BTCUSDT|1m", ks);
    const s = await run({ symbols: ["BTCUSDT"], interval: "1m", start: dateOf(first) });
    expect(s.outcome).toBe("succeeded");
    expect(s.inserted).toBe(2500);
    const reqs = fake.requests;
    expect(reqs.length).toBe(3);
    expect(reqs.map((r) => Number(r.query.startTime))).toEqual([first, ks[999]!.t + MIN, ks[1999]!.t + MIN]);
    for (const r of reqs) expect(r.query).toMatchObject({ symbol: "BTCUSDT", interval: "1m", limit: "1000" });
    expect(await stored("BTC-USDT.CRYPTO", "1m")).toEqual(expected(ks));
  });

  test("a kline still in progress is stored, and the next run rewrites it with its final values", async () => {
    const today = Date.parse(dateOf(Date.now()));
    const ks = klineSeries(today - 9 * DAY, DAY, 10, 40_000);
    fake.series.set("ETHBTC|1d", ks);
    const first = await run({ symbols: ["ETHBTC"], interval: "1d", start: dateOf(today - 9 * DAY) });
    expect([first.outcome, first.inserted]).toEqual(["succeeded", 10]);
    // Today's kline closes at 23:59:59.999 UTC: in progress. It moves, then the next run reads it again.
    const moved = { ...ks[9]!, c: "40010.00000000", h: "40011.00000000", v: "99.00000000" };
    fake.series.set("ETHBTC|1d", [...ks.slice(0, 9), moved]);
    const second = await run({ symbols: ["ETHBTC"], interval: "1d", start: dateOf(today - 9 * DAY) });
    expect([second.outcome, second.inserted, second.updated]).toEqual(["succeeded", 0, 1]);
    const bars = await store.queryBars({ symbol: "ETH-BTC.CRYPTO", interval: "1d", limit: 100 });
    expect(bars.length).toBe(10);
    expect(bars.at(-1)).toMatchObject({ ts: today, close: 40010, high: 40011, volume: 99 });
    // The incremental read starts overlapDays (5) before the newest stored bar.
    expect(Number(fake.requests.at(-1)!.query.startTime)).toBe(today - 5 * DAY);
  });

  test("1w bars are Binance's weeks (Monday 00:00 UTC) as ticksync stamps them; 1mo is asked as 1M", async () => {
    const monday = Date.parse("2025-09-01T00:00:00Z"); // a Monday
    expect(new Date(monday).getUTCDay()).toBe(1);
    fake.series.set("BTCUSDT|1w", klineSeries(monday, 7 * DAY, 6, 60_000));
    const months = ["2025-01-01", "2025-02-01", "2025-03-01"].map((d, k) => kline(Date.parse(d), 28 * DAY, 50_000, k));
    fake.series.set("BTCUSDT|1M", months);
    expect((await run({ symbols: ["BTCUSDT"], interval: "1w", start: "2025-08-01" })).inserted).toBe(6);
    const weeks = await store.queryBars({ symbol: "BTC-USDT.CRYPTO", interval: "1w", limit: 100 });
    expect(weeks.map((b) => b.ts)).toEqual([0, 1, 2, 3, 4, 5].map((k) => monday + k * 7 * DAY));
    expect(weeks.every((b) => new Date(b.ts).getUTCDay() === 1)).toBe(true);
    // Another source: a source's checkpoints are per symbol, one interval per source.
    expect((await run({ symbols: ["BTCUSDT"], interval: "1mo", start: "2025-01-01" }, "monthly")).inserted).toBe(3);
    expect(fake.requests.at(-1)!.query.interval).toBe("1M");
    expect((await store.queryBars({ symbol: "BTC-USDT.CRYPTO", interval: "1mo", limit: 10 })).map((b) => dateOf(b.ts))).toEqual(["2025-01-01", "2025-02-01", "2025-03-01"]);
  });

  test("30m and 4h klines are the CRYPTO market's own buckets (UTC days from 00:00), so they meet rolled-up bars", async () => {
    const day = Date.parse("2025-09-06T00:00:00Z"); // a Saturday: CRYPTO trades
    fake.series.set("BTCUSDT|4h", klineSeries(day, 4 * 3_600_000, 6, 60_000));
    fake.series.set("BTCUSDT|30m", klineSeries(day, 30 * MIN, 48, 60_000));
    expect((await run({ symbols: ["BTCUSDT"], interval: "4h", start: "2025-09-06" })).inserted).toBe(6);
    expect(fake.requests.at(-1)!.query.interval).toBe("4h");
    const fours = await store.queryBars({ symbol: "BTC-USDT.CRYPTO", interval: "4h", limit: 10 });
    expect(fours.map((b) => b.ts)).toEqual([0, 1, 2, 3, 4, 5].map((k) => day + k * 4 * 3_600_000));
    // Where a 1m bar of that day rolls up to: the same 4h bucket Binance stamps.
    for (const b of fours) expect(bucketOf(b.ts + 17 * MIN, "1m", "4h", "CRYPTO")).toEqual({ ts: b.ts, end: b.ts + 4 * 3_600_000 });
    expect((await run({ symbols: ["BTCUSDT"], interval: "30m", start: "2025-09-06" }, "halves")).inserted).toBe(48);
    expect(fake.requests.at(-1)!.query.interval).toBe("30m");
  });

  test("weight near the limit: the next call waits for the next weight window; below it, none does", async () => {
    const first = Date.parse("2026-02-02T00:00:00Z");
    fake.series.set("BTCUSDT|1m", klineSeries(first, MIN, 2500));
    const cfg = parseConfig({ sources: { b: source({ symbols: ["BTCUSDT"], interval: "1m", start: dateOf(first), weightPerMinute: 100 }) } }).sources.b as Parameters<typeof binanceSource>[1];
    const windowMs = 1500;
    // 95 of 100 used after the first page: the second waits for the next window.
    fake.weight = (k) => (k === 1 ? 95 : 10);
    const s = await runIngest({ store, source: binanceSource("b", cfg, {}, { weightPerMinute: 100, weightWindowMs: windowMs }) });
    expect([s.outcome, s.inserted]).toEqual(["succeeded", 2500]);
    const [a, b, c] = fake.requests.map((r) => r.at);
    expect(b!).toBeGreaterThanOrEqual(Math.ceil(a! / windowMs) * windowMs);
    expect(c! - b!).toBeLessThan(windowMs / 2);

    // Under 90% of the limit: no wait at all.
    fake.reset();
    resetSharedLimiters();
    fake.series.set("BTCUSDT|1m", klineSeries(first, MIN, 2500));
    fake.weight = () => 89;
    const t0 = Date.now();
    const quick = await runIngest({ store, source: binanceSource("b2", cfg, {}, { weightPerMinute: 100, weightWindowMs: 60_000 }) });
    expect(quick.outcome).toBe("succeeded");
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(fake.requests.length).toBe(3);
  });

  test("429 with Retry-After: every caller waits that long, then the call is tried again", async () => {
    const first = Date.parse("2026-02-02T00:00:00Z");
    fake.series.set("BTCUSDT|1m", klineSeries(first, MIN, 10));
    fake.script.push({ status: 429, headers: { "Retry-After": "1" }, body: { code: -1003, msg: "Too much request weight used; current limit is 6000 request weight per 1 MINUTE." } });
    const s = await run({ symbols: ["BTCUSDT"], interval: "1m", start: dateOf(first) });
    expect([s.outcome, s.inserted]).toEqual(["succeeded", 10]);
    expect(fake.requests.length).toBe(2);
    expect(fake.requests[1]!.at - fake.requests[0]!.at).toBeGreaterThanOrEqual(950);
  });

  test("418: the ban is respected: no request until it ends, every symbol failing with one clear line", async () => {
    const first = Date.parse("2026-02-02T00:00:00Z");
    for (const sym of ["BTCUSDT", "ETHUSDT", "SOLUSDT"]) fake.series.set(`${sym}|1m`, klineSeries(first, MIN, 10));
    fake.script.push({ status: 418, headers: { "Retry-After": "120" }, body: { code: -1003, msg: `Way too much request weight used; IP banned until ${Date.now() + 120_000}. Please use WebSocket Streams for live updates to avoid bans.` } });
    const s = await run({ symbols: ["BTCUSDT", "ETHUSDT", "SOLUSDT"], interval: "1m", start: dateOf(first), concurrency: 1 });
    expect(s.outcome).toBe("failed");
    expect(s.failedStreams).toEqual({ rate_limited: ["BTC-USDT.CRYPTO", "ETH-USDT.CRYPTO", "SOL-USDT.CRYPTO"] });
    for (const r of s.streams) {
      expect(r.error).toContain("418");
      expect(r.error).toContain("banned");
      expect(r.error!.includes("\n")).toBe(false);
    }
    expect(fake.requests.length).toBe(1);
    // A second run while the ban lasts calls nothing either.
    const again = await run({ symbols: ["BTCUSDT"], interval: "1m", start: dateOf(first) });
    expect(again.outcome).toBe("failed");
    expect(fake.requests.length).toBe(1);
    expect(fake.duringBan).toBe(0);
  });

  test("bare pairs are CRYPTO without a market setting; a symbol of another market fails by itself", async () => {
    const first = Date.parse("2026-02-02T00:00:00Z");
    fake.series.set("ETHUSDT|1h", klineSeries(first, 3_600_000, 5));
    const { market: _, ...noMarket } = source({ symbols: ["ETHUSDT", "AAPL.US"], interval: "1h", start: dateOf(first) });
    const s = await ingestFromConfig({ loaded: loaded({ b: noMarket }), store, source: "b" });
    expect(s.inserted).toBe(5);
    expect(s.failedStreams).toEqual({ source_error: ["AAPL.US"] });
    expect(s.streams.find((r) => r.error)!.error).toContain("no data for NYSE symbols like AAPL.US");
    expect(fake.requests.map((r) => r.query.symbol)).toEqual(["ETHUSDT"]);
  });

  test("-1121 Invalid symbol fails that symbol (not_found, not retried); the others are stored", async () => {
    const first = Date.parse("2026-02-02T00:00:00Z");
    fake.series.set("BTCUSDT|1m", klineSeries(first, MIN, 10));
    const s = await run({ symbols: ["BTCUSDT", "NOPEUSDT"], interval: "1m", start: dateOf(first), concurrency: 1 });
    expect(s.outcome).toBe("failed");
    expect(s.inserted).toBe(10);
    expect(s.failedStreams).toEqual({ not_found: ["NOPE-USDT.CRYPTO"] });
    expect(s.streams.find((r) => r.error)!.error).toContain("Invalid symbol");
    expect(fake.requests.filter((r) => r.query.symbol === "NOPEUSDT").length).toBe(1);
  });
});
