// Polygon intraday aggregates (1m … 1h) against the local Polygon server in its real format:
// open-instant timestamps, next_url paging with a cursor (the key added again, only for Polygon's
// own origin), regular vs extended sessions, incremental re-runs reading only the tail, and the
// errors: 429 with and without Retry-After, 403 NOT_AUTHORIZED as a clear no_data (not retried),
// DELAYED answers, empty windows. The API key appears in no log line, error or failure record.
import { afterEach, describe, expect, setSystemTime, test } from "bun:test";
import { parseConfig } from "../src/config/load.ts";
import { setLogLevel, setLogSink } from "../src/lib/log.ts";
import { ingestFromConfig } from "../src/pipeline/run.ts";
import { INTRADAY_WINDOW_DAYS } from "../src/sources/polygon-aggs.ts";
import { INTRADAY_OVERLAP_BARS } from "../src/sources/provider.ts";
import type { Store } from "../src/stores/types.ts";
import { syntheticBars, type FakeProviders } from "./fakes/providers.ts";
import { loadedSources, useProviderTestEnv } from "./provider-env.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const KEY = "pk_SECRET_intraday_42";
const PAGE = 500;
let fake: FakeProviders;
let store: Store;
const dir = useProviderTestEnv("ticksync-pintra-", (env) => void ({ fake, store } = env), { polygonPageSize: PAGE });

// Every log line of every run, for the key check.
const logged: string[] = [];
setLogLevel("debug");
setLogSink((line) => void logged.push(line));
afterEach(() => setSystemTime());

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const loaded = (extra: Record<string, unknown>) =>
  loadedSources(dir, {
    p: {
      type: "polygon",
      baseUrl: `${fake.url}/polygon`,
      apiKey: KEY,
      symbols: ["AAPL.US"],
      rateLimit: { perSecond: 500 },
      retry: { attempts: 3, rateLimitAttempts: 3, baseDelayMs: 5, maxDelayMs: 10 },
      ...extra,
    },
  });
const requests = () => fake.requests.filter((r) => r.provider === "polygon");
const bars = (interval: string) => store.queryBars({ symbol: "AAPL.US", interval: interval as "1m", limit: 100_000 });

/** Epoch ms of New York wall time hh:mm on a date (independent of src/). */
function newYork(date: string, hh: number, mm: number): number {
  const guess = Date.UTC(+date.slice(0, 4), +date.slice(5, 7) - 1, +date.slice(8, 10), hh, mm);
  const name = new Intl.DateTimeFormat("en-US", { timeZone: "America/New_York", timeZoneName: "shortOffset" }).formatToParts(guess).find((p) => p.type === "timeZoneName")!.value;
  return guess - Number(name.replace("GMT", "") || "0") * HOUR;
}

// Monday to Wednesday of the first week of US daylight time (clocks went forward on 2024-03-10): no holiday.
const DAYS = ["2024-03-11", "2024-03-12", "2024-03-13"];
const setDays = (symbol = "AAPL", days = DAYS) => fake.setBars("polygon", symbol, syntheticBars(symbol, days[0]!, days.at(-1)!).filter((b) => days.includes(b.date)));
const range = { from: Date.parse("2024-03-11T00:00:00Z"), to: Date.parse("2024-03-14T00:00:00Z") - 1 };
const every = (date: string, from: [number, number], to: [number, number], step: number) => {
  const out: number[] = [];
  for (let t = newYork(date, ...from); t < newYork(date, ...to); t += step) out.push(t);
  return out;
};

function expectNoKeyAnywhere(...more: unknown[]) {
  expect(logged.length).toBeGreaterThan(0);
  for (const text of [...logged, ...more.map((x) => JSON.stringify(x))]) expect(text).not.toContain(KEY);
}

describe("polygon intraday bars", () => {
  test("1m over 3 days: one window followed through its next_url pages; regular-session bars stamped with their open instants", async () => {
    setDays();
    const s = await ingestFromConfig({ loaded: loaded({ interval: "1m" }), store, source: "p", kind: "backfill", range });
    expect(s.outcome).toBe("succeeded");
    const got = await bars("1m");
    expect(got.map((b) => b.ts)).toEqual(DAYS.flatMap((d) => every(d, [9, 30], [16, 0], MIN)));
    // The fake's extended day is 504 minute bars (390 regular + thin pre/post): 1,512 in pages of 500.
    const reqs = requests();
    expect(reqs.length).toBe(Math.ceil((3 * 504) / PAGE));
    expect(reqs.every((r) => r.status === 200 && r.query.apiKey === KEY)).toBe(true);
    expect(reqs[0]!.path).toBe(`/v2/aggs/ticker/AAPL/range/1/minute/${range.from}/${range.to}`);
    expect(reqs[0]!.query).toMatchObject({ adjusted: "false", sort: "asc", limit: "50000" });
    for (const r of reqs.slice(1)) expect(r.query.cursor).toBeTruthy(); // next_url's own query, key added again
    // A page starts where the last one ended: no bar twice, none missing.
    expect(new Set(got.map((b) => b.ts)).size).toBe(3 * 390);
    const first = syntheticBars("AAPL", DAYS[0]!, DAYS[0]!)[0]!;
    expect(got[0]).toMatchObject({ open: first.open, interval: "1m" });
    expect(got[389]!.close).toBe(first.close);
    expectNoKeyAnywhere(s);
  });

  test("1h: clock-aligned hours; regular keeps the 09:00 bar that runs into the open and drops 16:00 on", async () => {
    setDays();
    const s = await ingestFromConfig({ loaded: loaded({ interval: "1h" }), store, source: "p", kind: "backfill", range });
    expect(s.outcome).toBe("succeeded");
    expect((await bars("1h")).map((b) => b.ts)).toEqual(DAYS.flatMap((d) => every(d, [9, 0], [16, 0], HOUR)));
    expect(requests().map((r) => r.path.split("/").slice(6, 8).join("/"))).toEqual(["1/hour"]);
  });

  test("2m, 5m, 15m and 30m: 195, 78, 26 and 13 regular bars a day, from 09:30", async () => {
    setDays();
    for (const [interval, n, step] of [["2m", 195, 2 * MIN], ["5m", 78, 5 * MIN], ["15m", 26, 15 * MIN], ["30m", 13, 30 * MIN]] as const) {
      const s = await ingestFromConfig({ loaded: loaded({ interval }), store, source: "p", kind: "backfill", range });
      expect(s.outcome).toBe("succeeded");
      const got = await bars(interval);
      expect(got.length).toBe(3 * n);
      expect(got.slice(0, n).map((b) => b.ts)).toEqual(every(DAYS[0]!, [9, 30], [16, 0], step));
    }
  });

  test('sessions = "extended" keeps the pre-market and after-hours bars (04:00-20:00 New York)', async () => {
    setDays();
    const s = await ingestFromConfig({ loaded: loaded({ interval: "1m", sessions: "extended" }), store, source: "p", kind: "backfill", range });
    expect(s.outcome).toBe("succeeded");
    const got = await bars("1m");
    expect(got.length).toBe(3 * 504);
    expect(got[0]!.ts).toBe(newYork(DAYS[0]!, 4, 0));
    expect(got.at(-1)!.ts).toBe(newYork(DAYS[2]!, 19, 55));
    const h = await ingestFromConfig({ loaded: loaded({ interval: "1h", sessions: "extended" }), store, source: "p", kind: "backfill", range });
    expect(h.outcome).toBe("succeeded");
    expect((await bars("1h")).length).toBe(3 * 16);
  });

  test("a range longer than a window is asked window by window, each at most 30 days", async () => {
    const days = syntheticBars("AAPL", "2024-01-02", "2024-03-28").map((b) => b.date);
    setDays("AAPL", days);
    const from = Date.parse("2024-01-02T00:00:00Z");
    const to = Date.parse("2024-03-29T00:00:00Z") - 1;
    const s = await ingestFromConfig({ loaded: loaded({ interval: "1h" }), store, source: "p", kind: "backfill", range: { from, to } });
    expect(s.outcome).toBe("succeeded");
    const windows = requests().filter((r) => !r.query.cursor);
    expect(windows.length).toBe(Math.ceil((to + 1 - from) / (INTRADAY_WINDOW_DAYS * DAY)));
    for (const r of windows) {
      const [a, b] = r.path.split("/").slice(-2).map(Number);
      expect(b! - a!).toBeLessThan(INTRADAY_WINDOW_DAYS * DAY);
    }
    // Weekdays the NYSE calendar closes (2024-01-15, 02-19, 03-29 is outside) have no regular session: their bars are dropped.
    const got = await bars("1h");
    const open = days.filter((d) => d !== "2024-01-15" && d !== "2024-02-19");
    expect(got.length).toBe(open.length * 7);
  });

  test("a second run reads only the tail: from the last bar less 60 bars of overlap", async () => {
    setDays();
    setSystemTime(new Date("2024-03-14T01:00:00Z"));
    const cfg = loaded({ interval: "1m", start: DAYS[0] });
    expect((await ingestFromConfig({ loaded: cfg, store, source: "p" })).outcome).toBe("succeeded");
    const lastTs = (await bars("1m")).at(-1)!.ts;
    expect(lastTs).toBe(newYork(DAYS[2]!, 15, 59));
    // A day later the fake has one more session.
    setDays("AAPL", [...DAYS, "2024-03-14"]);
    setSystemTime(new Date("2024-03-15T01:00:00Z"));
    const before = requests().length;
    const s = await ingestFromConfig({ loaded: cfg, store, source: "p" });
    expect(s.outcome).toBe("succeeded");
    const second = requests().slice(before);
    // The 60 overlap minutes, the 48 after-hours bars of that day and the 504 of the new one: 612, two pages.
    expect(second.length).toBe(Math.ceil((60 + 48 + 504) / PAGE));
    expect(Number(second[0]!.path.split("/").at(-2))).toBe(lastTs - INTRADAY_OVERLAP_BARS * MIN);
    expect((await bars("1m")).length).toBe(4 * 390);
  });
});

describe("polygon weeks and months", () => {
  // Polygon's weeks start on Sunday and its months on the 1st (midnight New York); ticksync stamps
  // a week or month with its first session's date, as its rollups do.
  const days = syntheticBars("MSFT", "2024-01-02", "2024-03-28").filter((b) => b.date !== "2024-01-15" && b.date !== "2024-02-19");
  const sum = (from: string, to: string) => days.filter((b) => b.date >= from && b.date <= to).reduce((n, b) => n + b.volume, 0);
  const utc = (date: string) => Date.parse(`${date}T00:00:00Z`);

  test("1w: one bar per week, stamped with its first session (Tuesday after Presidents' Day), the week's sessions in it", async () => {
    fake.setBars("polygon", "MSFT", days);
    const s = await ingestFromConfig({ loaded: loaded({ symbols: ["MSFT.US"], interval: "1w" }), store, source: "p", kind: "backfill", range: { from: utc("2024-02-05"), to: utc("2024-02-25") } });
    expect(s.outcome).toBe("succeeded");
    expect(requests()[0]!.path).toBe("/v2/aggs/ticker/MSFT/range/1/week/2024-02-05/2024-02-25");
    const got = await store.queryBars({ symbol: "MSFT.US", interval: "1w", limit: 100 });
    // Polygon snaps `to` (a Sunday) to the end of its week: the week of 26 February comes too.
    expect(got.map((b) => b.ts)).toEqual(["2024-02-05", "2024-02-12", "2024-02-20", "2024-02-26"].map(utc));
    expect(got.map((b) => b.volume)).toEqual([sum("2024-02-04", "2024-02-10"), sum("2024-02-11", "2024-02-17"), sum("2024-02-18", "2024-02-24"), sum("2024-02-25", "2024-03-02")]);
    expect(got[2]!.open).toBe(days.find((b) => b.date === "2024-02-20")!.open);
  });

  test("1mo: stamped with the month's first session (2 January), the month's sessions in it", async () => {
    fake.setBars("polygon", "MSFT", days);
    const s = await ingestFromConfig({ loaded: loaded({ symbols: ["MSFT.US"], interval: "1mo" }), store, source: "p", kind: "backfill", range: { from: utc("2024-01-01"), to: utc("2024-03-31") } });
    expect(s.outcome).toBe("succeeded");
    const got = await store.queryBars({ symbol: "MSFT.US", interval: "1mo", limit: 100 });
    expect(got.map((b) => b.ts)).toEqual(["2024-01-02", "2024-02-01", "2024-03-01"].map(utc));
    expect(got.map((b) => b.volume)).toEqual([sum("2024-01-01", "2024-01-31"), sum("2024-02-01", "2024-02-29"), sum("2024-03-01", "2024-03-31")]);
  });
});

describe("polygon intraday errors", () => {
  test("429 with Retry-After and without: waited out, then loaded", async () => {
    setDays();
    fake.fault("polygon", "AAPL", { kind: "429", retryAfterSeconds: 1, times: 1 });
    fake.fault("polygon", "AAPL", { kind: "429", retryAfterSeconds: null, times: 1 });
    const started = performance.now();
    const s = await ingestFromConfig({ loaded: loaded({ interval: "1h" }), store, source: "p", kind: "backfill", range });
    expect(s.outcome).toBe("succeeded");
    expect(performance.now() - started).toBeGreaterThanOrEqual(950); // the Retry-After was honoured
    expect(requests().map((r) => r.status)).toEqual([429, 429, 200]);
    expect((await bars("1h")).length).toBe(21);
  });

  test("429 that does not end: a rate_limited failure after the configured tries, one line, no key", async () => {
    setDays();
    fake.fault("polygon", "AAPL", { kind: "429", retryAfterSeconds: 0, times: 10 });
    const s = await ingestFromConfig({ loaded: loaded({ interval: "1m" }), store, source: "p", kind: "backfill", range });
    expect(s.failures).toEqual({ rate_limited: 1 });
    expect(requests().length).toBe(3);
    const [failed] = await store.listRunStreams(s.runId, "failed");
    expect(String(failed!.error)).toContain("still rate-limited after 3 tries");
    expect(String(failed!.error)).not.toContain("\n");
    expect(String(failed!.error)).toContain("apiKey=***"); // the URL is named, its key masked
    expectNoKeyAnywhere(s, failed);
  });

  test("403 NOT_AUTHORIZED (the plan does not cover it): no_data saying so, asked once, not retried", async () => {
    setDays();
    fake.fault("polygon", "AAPL", { kind: "polygon-not-authorized", times: 5 });
    const s = await ingestFromConfig({ loaded: loaded({ interval: "1m" }), store, source: "p", kind: "backfill", range });
    expect(s.outcome).toBe("failed");
    expect(s.failures).toEqual({ no_data: 1 });
    expect(requests().map((r) => r.status)).toEqual([403]);
    const [failed] = await store.listRunStreams(s.runId, "failed");
    expect(failed).toMatchObject({ stream: "AAPL.US", cause: "no_data" });
    expect(String(failed!.error)).toContain("Your plan doesn't include this data timeframe");
    expect(String(failed!.error)).toContain("does not cover intraday bars, or not that far back");
    expectNoKeyAnywhere(s, failed);
  });

  test("status DELAYED carries results like OK", async () => {
    setDays();
    fake.fault("polygon", "AAPL", { kind: "polygon-delayed", times: 10 });
    const s = await ingestFromConfig({ loaded: loaded({ interval: "1h" }), store, source: "p", kind: "backfill", range });
    expect(s.outcome).toBe("succeeded");
    expect((await bars("1h")).length).toBe(21);
  });

  test("resultsCount 0: nothing new over a few days; no_data over a week or more", async () => {
    setDays();
    fake.fault("polygon", "AAPL", { kind: "empty" });
    const quiet = await ingestFromConfig({ loaded: loaded({ interval: "1m" }), store, source: "p", kind: "backfill", range });
    expect(quiet.outcome).toBe("succeeded");
    const week = await ingestFromConfig({ loaded: loaded({ interval: "1m" }), store, source: "p", kind: "backfill", range: { from: range.from, to: range.from + 8 * DAY } });
    expect(week.failures).toEqual({ no_data: 1 });
    expect((await bars("1m")).length).toBe(0);
  });

  test("a next_url to another origin is not followed: the key never leaves for it", async () => {
    const elsewhere: string[] = [];
    const thief = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => (elsewhere.push(req.url), new Response("{}")) });
    const t0 = newYork(DAYS[0]!, 9, 30);
    const hostile = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () =>
        Response.json({
          ticker: "AAPL",
          status: "OK",
          resultsCount: 1,
          results: [{ t: t0, o: 10, h: 11, l: 9, c: 10.5, v: 100, vw: 10.2, n: 3 }],
          next_url: `http://127.0.0.1:${thief.port}/v2/aggs/ticker/AAPL/range/1/minute/${t0 + MIN}/${range.to}?cursor=YWJj`,
        }),
    });
    try {
      const cfg = loadedSources(dir, { p: { type: "polygon", baseUrl: `http://127.0.0.1:${hostile.port}`, apiKey: KEY, symbols: ["AAPL.US"], interval: "1m", rateLimit: { perSecond: 500 } } });
      const s = await ingestFromConfig({ loaded: cfg, store, source: "p", kind: "backfill", range });
      expect(s.failures).toEqual({ bad_response: 1 });
      expect(elsewhere).toEqual([]);
      const [failed] = await store.listRunStreams(s.runId, "failed");
      expect(String(failed!.error)).toContain("not followed");
      expect((await bars("1m")).length).toBe(1); // the first page's bar was stored before
    } finally {
      hostile.stop(true);
      thief.stop(true);
    }
  });
});

describe("the sessions option at Yahoo", () => {
  test('yahoo asks includePrePost=true for sessions = "extended" and false by default', async () => {
    const day = new Date(Date.now() - 2 * DAY).toISOString().slice(0, 10);
    fake.setBars("yahoo", "AAPL", syntheticBars("AAPL", day, day, { weekdaysOnly: false }));
    const yahoo = (extra: Record<string, unknown>) =>
      loadedSources(dir, { y: { type: "yahoo", baseUrl: `${fake.url}/yahoo`, symbols: ["AAPL.US"], interval: "1h", rateLimit: { perSecond: 500 }, ...extra } });
    const r = { from: Date.now() - 3 * DAY, to: Date.now() };
    for (const [extra, want] of [[{}, "false"], [{ sessions: "extended" }, "true"]] as const) {
      const before = fake.requests.length;
      expect((await ingestFromConfig({ loaded: yahoo(extra), store, source: "y", kind: "backfill", range: r })).outcome).toBe("succeeded");
      expect(fake.requests.slice(before).map((q) => q.query.includePrePost)).toEqual([want]);
    }
  });
});

describe("config", () => {
  test("polygon offers 1m, 2m, 5m, 15m, 30m, 1h, 1d, 1w and 1mo; sessions is regular or extended (default regular), for yahoo too", () => {
    const c = parseConfig({ sources: { p: { type: "polygon", symbols: ["AAPL.US"], interval: "1m" } } });
    expect(c.sources.p).toMatchObject({ interval: "1m", sessions: "regular" });
    expect(() => parseConfig({ sources: { p: { type: "polygon", symbols: ["AAPL.US"], interval: "1y" } } })).toThrow(/polygon offers the intervals 1m, 2m, 5m, 15m, 30m, 1h, 1d, 1w, 1mo/);
    expect(() => parseConfig({ sources: { p: { type: "polygon", symbols: ["AAPL.US"], sessions: "all" } } })).toThrow(/expected regular or extended/);
    expect(parseConfig({ sources: { y: { type: "yahoo", symbols: ["AAPL.US"], interval: "5m", sessions: "extended" } } }).sources.y).toMatchObject({ sessions: "extended" });
  });
});
