// Yahoo intraday bars (1m, 2m, 5m, 15m, 30m, 60m) against the local Yahoo server: open-instant timestamps, requests
// in windows Yahoo's look-back accepts, its 422 for a range beyond the look-back as no_data (not
// retried), incremental loading per interval, and the per-provider interval check of the config.
import { describe, expect, test } from "bun:test";
import { parseConfig } from "../src/config/load.ts";
import type { Store } from "../src/stores/types.ts";
import { ingestFromConfig } from "../src/pipeline/run.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { INTRADAY_OVERLAP_BARS } from "../src/sources/provider.ts";
import { syntheticBars, type FakeProviders } from "./fakes/providers.ts";
import { loadedSources, useProviderTestEnv } from "./provider-env.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

setLogLevel("error");
let fake: FakeProviders;
let store: Store;
const dir = useProviderTestEnv("ticksync-yintra-", (env) => void ({ fake, store } = env));

const DAY = 86_400_000;
const loaded = (sources: Record<string, unknown>) => loadedSources(dir, sources);
const yahoo = (extra: Record<string, unknown>) => ({
  type: "yahoo",
  baseUrl: `${fake.url}/yahoo`,
  rateLimit: { perSecond: 200 },
  retry: { attempts: 3, rateLimitAttempts: 3, baseDelayMs: 5, maxDelayMs: 10 },
  ...extra,
});
const dateOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const requests = () => fake.requests.filter((r) => r.provider === "yahoo");

/** Epoch ms of New York wall time hh:mm on a date (independent of src/). */
function newYork(date: string, hh: number, mm: number): number {
  const guess = Date.UTC(+date.slice(0, 4), +date.slice(5, 7) - 1, +date.slice(8, 10), hh, mm);
  const name = new Intl.DateTimeFormat("en-US", { timeZone: "America/New_York", timeZoneName: "shortOffset" }).formatToParts(guess).find((p) => p.type === "timeZoneName")!.value;
  const offsetHours = Number(name.replace("GMT", "") || "0");
  return guess - offsetHours * 3_600_000;
}

/** The last `count` weekdays before today (oldest first), as daily bars of the fake. */
function recentSessions(symbol: string, daysBack: number) {
  return syntheticBars(symbol, dateOf(Date.now() - daysBack * DAY), dateOf(Date.now() - DAY), { weekdaysOnly: true });
}

describe("yahoo intraday", () => {
  test("a 1h backfill over 3 sessions stores 7 bars each, stamped with their open instants", async () => {
    const days = recentSessions("AAPL", 20).slice(-3);
    fake.setBars("yahoo", "AAPL", days);
    const s = await ingestFromConfig({ loaded: loaded({ y: yahoo({ symbols: ["AAPL.US"], interval: "1h", start: days[0]!.date }) }), store, source: "y" });
    expect(s.outcome).toBe("succeeded");
    const bars = await store.queryBars({ symbol: "AAPL.US", interval: "1h", limit: 1000 });
    expect(bars.length).toBe(3 * 7); // 09:30, 10:30, … 15:30 New York
    const want = days.flatMap((d) => [0, 1, 2, 3, 4, 5, 6].map((k) => newYork(d.date, 9, 30) + k * 3_600_000));
    expect(bars.map((b) => b.ts)).toEqual(want);
    expect(requests().length).toBe(1);
    expect(requests()[0]!.query.interval).toBe("60m");
  });

  test("1m over 10 days inside the last 30 is asked in windows of at most 7 days", async () => {
    const days = recentSessions("MSFT", 10);
    fake.setBars("yahoo", "MSFT", days);
    const start = dateOf(Date.now() - 10 * DAY);
    const s = await ingestFromConfig({ loaded: loaded({ y: yahoo({ symbols: ["MSFT.US"], interval: "1m", start }) }), store, source: "y" });
    expect(s.outcome).toBe("succeeded");
    const reqs = requests();
    expect(reqs.length).toBe(2);
    for (const r of reqs) {
      expect(r.status).toBe(200);
      expect(Number(r.query.period2) - Number(r.query.period1)).toBeLessThanOrEqual(7 * 86_400);
    }
    const bars = await store.queryBars({ symbol: "MSFT.US", interval: "1m", limit: 100_000 });
    expect(bars.length).toBe(days.length * 390);
    expect(bars[0]!.ts).toBe(newYork(days[0]!.date, 9, 30));
  });

  test("1m 40 days back is Yahoo's 422: no_data for that symbol, asked once, not retried", async () => {
    fake.setBars("yahoo", "IBM", recentSessions("IBM", 50));
    const from = Date.now() - 40 * DAY;
    const s = await ingestFromConfig({
      loaded: loaded({ y: yahoo({ symbols: ["IBM.US"], interval: "1m" }) }),
      store,
      source: "y",
      range: { from, to: from + 3 * DAY },
    });
    expect(s.outcome).toBe("failed");
    expect(s.failures).toEqual({ no_data: 1 });
    expect(requests().length).toBe(1);
    expect(requests()[0]!.status).toBe(422);
    const [failed] = await store.listRunStreams(s.runId, "failed");
    expect(failed).toMatchObject({ stream: "IBM.US", cause: "no_data" });
    expect(String(failed!.error)).toContain("30 days");
  });

  test("15m within 60 days in one request; 5m 70 days back is no_data", async () => {
    const days = recentSessions("NVDA", 20).slice(-2);
    fake.setBars("yahoo", "NVDA", days);
    const s = await ingestFromConfig({ loaded: loaded({ y: yahoo({ symbols: ["NVDA.US"], interval: "15m", start: days[0]!.date }) }), store, source: "y" });
    expect(s.outcome).toBe("succeeded");
    expect((await store.queryBars({ symbol: "NVDA.US", interval: "15m", limit: 1000 })).length).toBe(2 * 26);
    expect(requests().map((r) => r.query.interval)).toEqual(["15m"]);
    const from = Date.now() - 70 * DAY;
    const f = await ingestFromConfig({ loaded: loaded({ y: yahoo({ symbols: ["NVDA.US"], interval: "5m" }) }), store, source: "y", range: { from, to: from + 5 * DAY } });
    expect(f.failures).toEqual({ no_data: 1 });
    expect(requests().length).toBe(2);
  });

  test("2m over 2 sessions: 195 bars a day from 09:30 New York, one request", async () => {
    const days = recentSessions("AMD", 20).slice(-2);
    fake.setBars("yahoo", "AMD", days);
    const s = await ingestFromConfig({ loaded: loaded({ y: yahoo({ symbols: ["AMD.US"], interval: "2m", start: days[0]!.date }) }), store, source: "y" });
    expect(s.outcome).toBe("succeeded");
    const bars = await store.queryBars({ symbol: "AMD.US", interval: "2m", limit: 1000 });
    expect(bars.length).toBe(2 * 195);
    expect(bars.slice(0, 2).map((b) => b.ts)).toEqual([newYork(days[0]!.date, 9, 30), newYork(days[0]!.date, 9, 32)]);
    expect(bars.at(-1)!.ts).toBe(newYork(days[1]!.date, 15, 58));
    expect(requests().map((r) => [r.query.interval, r.status])).toEqual([["2m", 200]]);
  });

  test("30m: 13 bars a session; 50 days back in one request, 70 days back is no_data", async () => {
    const days = recentSessions("INTC", 50);
    fake.setBars("yahoo", "INTC", days);
    const s = await ingestFromConfig({ loaded: loaded({ y: yahoo({ symbols: ["INTC.US"], interval: "30m", start: days[0]!.date }) }), store, source: "y" });
    expect(s.outcome).toBe("succeeded");
    const bars = await store.queryBars({ symbol: "INTC.US", interval: "30m", limit: 10_000 });
    expect(bars.length).toBe(days.length * 13);
    expect(bars.slice(-2).map((b) => b.ts)).toEqual([newYork(days.at(-1)!.date, 15, 0), newYork(days.at(-1)!.date, 15, 30)]);
    expect(requests().map((r) => [r.query.interval, r.status])).toEqual([["30m", 200]]);
    const from = Date.now() - 70 * DAY;
    const f = await ingestFromConfig({ loaded: loaded({ y: yahoo({ symbols: ["INTC.US"], interval: "30m" }) }), store, source: "y", range: { from, to: from + 5 * DAY } });
    expect(f.failures).toEqual({ no_data: 1 });
    expect(requests().at(-1)!.status).toBe(422);
    expect(requests().length).toBe(2); // not retried
  });

  test("a start beyond the look-back is clipped to it, not refused", async () => {
    fake.setBars("yahoo", "KO", recentSessions("KO", 40));
    const s = await ingestFromConfig({ loaded: loaded({ y: yahoo({ symbols: ["KO.US"], interval: "1m", start: dateOf(Date.now() - 40 * DAY) }) }), store, source: "y" });
    expect(s.outcome).toBe("succeeded");
    expect(requests().every((r) => r.status === 200)).toBe(true);
    expect(requests().length).toBe(5); // 30 days in windows of 7
  });

  test("a second run continues after the last bar, less a few bars of overlap", async () => {
    const days = recentSessions("AAPL", 20).slice(-3);
    fake.setBars("yahoo", "AAPL", days);
    const cfg = loaded({ y: yahoo({ symbols: ["AAPL.US"], interval: "1h", start: days[0]!.date }) });
    await ingestFromConfig({ loaded: cfg, store, source: "y" });
    const lastTs = Math.max(...(await store.queryBars({ symbol: "AAPL.US", interval: "1h", limit: 1000 })).map((b) => b.ts));
    const s = await ingestFromConfig({ loaded: cfg, store, source: "y" });
    expect(s.outcome).toBe("succeeded");
    const second = requests()[1]!;
    expect(Number(second.query.period1) * 1000).toBe(lastTs - INTRADAY_OVERLAP_BARS * 3_600_000);
    expect((await store.queryBars({ symbol: "AAPL.US", interval: "1h", limit: 1000 })).length).toBe(21);
  });
});

describe("intervals per provider in the config", () => {
  test("stooq refuses 1m and names what it offers; yahoo accepts it", () => {
    expect(() => parseConfig({ sources: { s: { type: "stooq", symbols: ["CDR.WA"], interval: "1m" } } })).toThrow(/stooq loads 1d bars only/);
    const c = parseConfig({ sources: { y: { type: "yahoo", symbols: ["AAPL.US"], interval: "1m" } } });
    expect((c.sources.y as { interval: string }).interval).toBe("1m");
    expect(() => parseConfig({ sources: { y: { type: "yahoo", symbols: ["AAPL.US"], interval: "2h" } } })).toThrow(/yahoo offers the intervals 1m, 2m, 5m, 15m, 30m, 1h, 1d, 1w, 1mo/);
    expect(() => parseConfig({ sources: { y: { type: "yahoo", symbols: ["AAPL.US"], interval: "4h" } } })).toThrow(/yahoo offers the intervals/);
  });
});
