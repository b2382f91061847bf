// Alpha Vantage intraday bars (TIME_SERIES_INTRADAY) against the local Alpha Vantage server: one
// request per month (month=YYYY-MM, outputsize=full, adjusted=false), New York wall-time keys read
// as open instants across the US DST change, an incremental re-run from the last bar less the
// overlap, regular vs extended sessions, and its errors in their real forms: {"Note"} (retried),
// {"Information"} daily cap (not retried) and premium-only (a clear failure), {"Error Message"}
// for an unknown symbol (no_data) or a month before the listing (skipped). The key never shows.
import { describe, expect, test } from "bun:test";
import { parseConfig } from "../src/config/load.ts";
import type { Store } from "../src/stores/types.ts";
import { ingestFromConfig } from "../src/pipeline/run.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { INTRADAY_OVERLAP_BARS } from "../src/sources/provider.ts";
import { monthsBetween } from "../src/sources/alphavantage.ts";
import { syntheticBars, type FakeProviders } from "./fakes/providers.ts";
import { loadedSources, useProviderTestEnv } from "./provider-env.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

setLogLevel("error");
let fake: FakeProviders;
let store: Store;
const dir = useProviderTestEnv("ticksync-avintra-", (env) => void ({ fake, store } = env));

const DAY = 86_400_000;
const KEY = "k3y-secret-AV-0042";
const loaded = (sources: Record<string, unknown>) => loadedSources(dir, sources);
const av = (extra: Record<string, unknown>) => ({
  type: "alphavantage",
  baseUrl: `${fake.url}/alphavantage`,
  apiKey: KEY,
  rateLimit: { perSecond: 200 },
  retry: { attempts: 3, rateLimitAttempts: 3, baseDelayMs: 5, maxDelayMs: 10 },
  ...extra,
});
const requests = () => fake.requests.filter((r) => r.provider === "alphavantage");
const dateOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
/** From New York midnight of `from` to the end of `to` there (a UTC midnight would start a month early). */
const range = (from: string, to: string) => ({ from: newYork(from, 0, 0), to: newYork(to, 23, 59) });

/** Epoch ms of New York wall time hh:mm on a date (independent of src/). */
function newYork(date: string, hh: number, mm: number): number {
  const guess = Date.UTC(+date.slice(0, 4), +date.slice(5, 7) - 1, +date.slice(8, 10), hh, mm);
  const name = new Intl.DateTimeFormat("en-US", { timeZone: "America/New_York", timeZoneName: "shortOffset" }).formatToParts(guess).find((p) => p.type === "timeZoneName")!.value;
  return guess - Number(name.replace("GMT", "") || "0") * 3_600_000;
}

describe("alpha vantage intraday", () => {
  test("a backfill over three months asks each month once; keys are New York bar starts, across the US DST change", async () => {
    const days = syntheticBars("IBM", "2024-10-01", "2024-12-31", { weekdaysOnly: true });
    fake.setBars("alphavantage", "IBM", days);
    const s = await ingestFromConfig({ loaded: loaded({ a: av({ symbols: ["IBM.US"], interval: "5m" }) }), store, source: "a", range: range("2024-10-01", "2024-12-31") });
    expect(s.outcome).toBe("succeeded");
    const reqs = requests();
    expect(reqs.map((r) => r.query.month)).toEqual(["2024-10", "2024-11", "2024-12"]);
    for (const r of reqs) expect(r.query).toMatchObject({ function: "TIME_SERIES_INTRADAY", symbol: "IBM", interval: "5min", outputsize: "full", adjusted: "false", extended_hours: "false" });
    const bars = await store.queryBars({ symbol: "IBM.US", interval: "5m", limit: 100_000 });
    expect(bars.length).toBe(days.length * 78); // 09:30 … 15:55
    // EDT before 2024-11-03, EST after: 09:30 New York is 13:30Z, then 14:30Z.
    const at = (date: string) => bars.filter((b) => dateOf(b.ts) === date).map((b) => new Date(b.ts).toISOString());
    expect(at("2024-11-01")[0]).toBe("2024-11-01T13:30:00.000Z");
    expect(at("2024-11-04")[0]).toBe("2024-11-04T14:30:00.000Z");
    expect(at("2024-11-04").at(-1)).toBe("2024-11-04T20:55:00.000Z");
    expect(bars[0]!.ts).toBe(newYork(days[0]!.date, 9, 30));
  });

  test("a second run reads from the last bar less the overlap, one month, and stores nothing new", async () => {
    const days = syntheticBars("MSFT", dateOf(Date.now() - 12 * DAY), dateOf(Date.now() - DAY), { weekdaysOnly: true });
    fake.setBars("alphavantage", "MSFT", days);
    const cfg = loaded({ a: av({ symbols: ["MSFT.US"], interval: "5m", start: days[0]!.date }) });
    const first = await ingestFromConfig({ loaded: cfg, store, source: "a" });
    expect(first.outcome).toBe("succeeded");
    expect(first.inserted).toBe(days.length * 78);
    const lastTs = Math.max(...(await store.queryBars({ symbol: "MSFT.US", interval: "5m", limit: 100_000 })).map((b) => b.ts));
    expect(lastTs).toBe(newYork(days.at(-1)!.date, 15, 55));
    const before = requests().length;
    const second = await ingestFromConfig({ loaded: cfg, store, source: "a" });
    expect(second.outcome).toBe("succeeded");
    const from = lastTs - INTRADAY_OVERLAP_BARS * 300_000;
    const nyMonth = (t: number) => new Intl.DateTimeFormat("en-CA", { timeZone: "America/New_York", year: "numeric", month: "2-digit" }).format(t);
    expect(requests().slice(before).map((r) => r.query.month)).toEqual(monthsBetween(nyMonth(from), nyMonth(Date.now())));
    expect(second.inserted).toBe(0);
    expect(second.unchanged).toBe(INTRADAY_OVERLAP_BARS + 1); // lastTs - 60 bars … lastTs, all in the last session
  });

  test("sessions: regular asks extended_hours=false (09:30-16:00), extended asks true (04:00-20:00)", async () => {
    fake.setBars("alphavantage", "AAPL", syntheticBars("AAPL", "2024-06-03", "2024-06-04"));
    const r = range("2024-06-03", "2024-06-04");
    await ingestFromConfig({ loaded: loaded({ reg: av({ symbols: ["AAPL.US"], interval: "15m" }) }), store, source: "reg", range: r });
    await ingestFromConfig({ loaded: loaded({ ext: av({ symbols: ["AAPL.US"], interval: "15m", sessions: "extended" }) }), store, source: "ext", range: r });
    expect(requests().map((q) => q.query.extended_hours)).toEqual(["false", "true"]);
    const reg = await store.queryBars({ symbol: "AAPL.US", interval: "15m", source: "reg", limit: 1000 });
    const ext = await store.queryBars({ symbol: "AAPL.US", interval: "15m", source: "ext", limit: 1000 });
    expect(reg.length).toBe(2 * 26);
    expect(ext.length).toBe(2 * 64);
    expect([reg[0]!.ts, reg.at(-1)!.ts]).toEqual([newYork("2024-06-03", 9, 30), newYork("2024-06-04", 15, 45)]);
    expect([ext[0]!.ts, ext.at(-1)!.ts]).toEqual([newYork("2024-06-03", 4, 0), newYork("2024-06-04", 19, 45)]);
    expect(() => parseConfig({ sources: { a: { type: "alphavantage", symbols: ["AAPL.US"], sessions: "pre" } } })).toThrow(/expected regular or extended/);
  });

  test("30m and 1h: Alpha Vantage's 30min and 60min; 2m and 4h are refused by the config", async () => {
    fake.setBars("alphavantage", "KO", syntheticBars("KO", "2024-06-03", "2024-06-03"));
    const r = range("2024-06-03", "2024-06-03");
    await ingestFromConfig({ loaded: loaded({ h: av({ symbols: ["KO.US"], interval: "30m" }) }), store, source: "h", range: r });
    await ingestFromConfig({ loaded: loaded({ g: av({ symbols: ["KO.US"], interval: "1h" }) }), store, source: "g", range: r });
    expect(requests().map((q) => q.query.interval)).toEqual(["30min", "60min"]);
    expect((await store.queryBars({ symbol: "KO.US", interval: "30m", limit: 100 })).length).toBe(13);
    expect((await store.queryBars({ symbol: "KO.US", interval: "1h", limit: 100 })).length).toBe(7);
    for (const interval of ["2m", "4h"])
      expect(() => parseConfig({ sources: { a: { type: "alphavantage", symbols: ["KO.US"], interval } } })).toThrow(/alphavantage offers the intervals 1m, 5m, 15m, 30m, 1h, 1d/);
  });
});

describe("alpha vantage intraday errors", () => {
  const r = range("2024-06-03", "2024-06-07");
  const one = (symbol: string, extra: Record<string, unknown> = {}) =>
    ingestFromConfig({ loaded: loaded({ a: av({ symbols: [symbol], interval: "1m", ...extra }) }), store, source: "a", range: r });

  test('{"Note"} (per minute) is waited out and retried', async () => {
    fake.setBars("alphavantage", "IBM", syntheticBars("IBM", "2024-06-03", "2024-06-07"));
    fake.fault("alphavantage", "IBM", { kind: "av-note", times: 1 });
    const s = await one("IBM.US");
    expect(s.outcome).toBe("succeeded");
    expect(requests().length).toBe(2);
    expect((await store.queryBars({ symbol: "IBM.US", interval: "1m", limit: 10_000 })).length).toBe(5 * 390);
  });

  test('{"Information"} premium endpoint: a clear failure, asked once, not retried', async () => {
    fake.setBars("alphavantage", "IBM", syntheticBars("IBM", "2024-06-03", "2024-06-07"));
    fake.fault("alphavantage", "IBM", { kind: "av-premium", times: 5 });
    const s = await one("IBM.US");
    expect(s.outcome).toBe("failed");
    expect(s.failedStreams).toEqual({ auth: ["IBM.US"] });
    expect(requests().length).toBe(1);
    const [failed] = await store.listRunStreams(s.runId, "failed");
    expect(String(failed!.error)).toMatch(/premium endpoint.*premium-only for this API key/);
  });

  test('{"Information"} daily cap: rate_limited, no more calls; the key it quotes is masked everywhere', async () => {
    fake.setBars("alphavantage", "IBM", syntheticBars("IBM", "2024-06-03", "2024-06-07"));
    fake.fault("alphavantage", "IBM", { kind: "av-information", times: 5 });
    const s = await one("IBM.US");
    expect(s.failedStreams).toEqual({ rate_limited: ["IBM.US"] });
    expect(requests().length).toBe(1);
    expect(requests()[0]!.query.apikey).toBe(KEY); // it was sent, and quoted back by the server
    const streams = await store.listRunStreams(s.runId, "failed");
    const run = await store.getRun(s.runId);
    for (const text of [JSON.stringify(s), JSON.stringify(streams), JSON.stringify(run)]) expect(text).not.toContain(KEY);
    expect(String(streams[0]!.error)).toContain("detected your API key as ***");
  });

  test('{"Error Message"} for an unknown symbol: no_data after the month and one look at the latest days', async () => {
    const s = await one("ZZZZ.US");
    expect(s.failedStreams).toEqual({ no_data: ["ZZZZ.US"] });
    expect(requests().map((q) => [q.query.month ?? "latest", q.query.outputsize])).toEqual([["2024-06", "full"], ["latest", "compact"]]);
    const [failed] = await store.listRunStreams(s.runId, "failed");
    expect(String(failed!.error)).toContain("unknown symbol?");
    expect(String(failed!.error)).not.toContain(KEY);
  });

  test("months before the listing are skipped, not failed: bars from the first month that has them", async () => {
    fake.setBars("alphavantage", "NEWCO", [...syntheticBars("NEWCO", "2024-06-03", "2024-06-04"), ...syntheticBars("NEWCO", dateOf(Date.now() - 3 * DAY), dateOf(Date.now() - DAY))]);
    const s = await ingestFromConfig({ loaded: loaded({ a: av({ symbols: ["NEWCO.US"], interval: "30m" }) }), store, source: "a", range: range("2024-04-01", "2024-06-30") });
    expect(s.outcome).toBe("succeeded");
    expect(requests().map((q) => q.query.month ?? "latest")).toEqual(["2024-04", "latest", "2024-05", "2024-06"]);
    expect((await store.queryBars({ symbol: "NEWCO.US", interval: "30m", limit: 1000 })).length).toBe(2 * 13);
  });
});

test("monthsBetween: across a year end, one month, none", () => {
  expect(monthsBetween("2023-11", "2024-02")).toEqual(["2023-11", "2023-12", "2024-01", "2024-02"]);
  expect(monthsBetween("2024-06", "2024-06")).toEqual(["2024-06"]);
  expect(monthsBetween("2024-07", "2024-06")).toEqual([]);
});
