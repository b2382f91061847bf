// Stooq for every market whose file has a `stooq` spelling: one universe mixing WSE (`pkn`),
// NYSE (`.us`), LSE (`.uk`) and XETRA (`.de`) symbols, each asked in Stooq's spelling, stored
// under its canonical symbol with its own market's session dates (a UK bank holiday, Corpus
// Christi in Warsaw, Memorial Day in New York: each only missing where that market was closed),
// with no gap warnings; `No data` for an unknown listing; the daily-limit text a clear failure
// that stops the calls for the other symbols.
import { describe, expect, test } from "bun:test";
import type { Store } from "../src/stores/types.ts";
import { ingestFromConfig } from "../src/pipeline/run.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { isTradingDay, type Market } from "../src/domain/calendar.ts";
import { syntheticBars, type FakeBar, type FakeProviders } from "./fakes/providers.ts";
import { loadedSources, useProviderTestEnv } from "./provider-env.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

setLogLevel("error");
let fake: FakeProviders;
let store: Store;
const dir = useProviderTestEnv("ticksync-stooq-mkts-", (env) => void ({ fake, store } = env));

const loaded = (sources: Record<string, unknown>) => loadedSources(dir, sources);
const stooq = (extra: Record<string, unknown>) => ({
  type: "stooq",
  baseUrl: `${fake.url}/stooq`,
  rateLimit: { perSecond: 200 },
  retry: { attempts: 3, rateLimitAttempts: 3, baseDelayMs: 5, maxDelayMs: 10 },
  ...extra,
});
const requests = () => fake.requests.filter((r) => r.provider === "stooq");
const FROM = "2024-05-01";
const TO = "2024-05-31";
const range = { from: Date.parse(`${FROM}T00:00:00Z`), to: Date.parse(`${TO}T00:00:00Z`) };
const dateOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

// Canonical symbol (spelt as a user might), market, and Stooq's spelling.
const UNIVERSE: { given: string; canonical: string; market: Market; stooq: string }[] = [
  { given: "PKN.WA", canonical: "PKN.WA", market: "WSE", stooq: "pkn" },
  { given: "aapl.us", canonical: "AAPL.US", market: "NYSE", stooq: "aapl.us" },
  { given: "VOD.L", canonical: "VOD.L", market: "LSE", stooq: "vod.uk" },
  { given: "SAP.DE", canonical: "SAP.DE", market: "XETRA", stooq: "sap.de" },
];

/** The fake's bars of a listing: one per session of its market in May 2024. */
const sessionsOf = (symbol: string, market: Market): FakeBar[] => syntheticBars(symbol, FROM, TO).filter((b) => isTradingDay(market, b.date));

describe("stooq across markets", () => {
  test("WSE, NYSE, LSE and XETRA in one source: Stooq's spellings asked, canonical symbols stored, each market's dates", async () => {
    for (const u of UNIVERSE) fake.setBars("stooq", u.stooq, sessionsOf(u.canonical, u.market));
    const s = await ingestFromConfig({ loaded: loaded({ st: stooq({ symbols: UNIVERSE.map((u) => u.given) }) }), store, source: "st", range });
    expect(s.outcome).toBe("succeeded");
    expect(s.gapWarnings).toBe(0);
    expect(s.quarantined).toBe(0);
    expect(requests().map((r) => r.query.s).sort()).toEqual(UNIVERSE.map((u) => u.stooq).sort());
    for (const r of requests()) expect([r.query.d1, r.query.d2, r.query.i]).toEqual(["20240501", "20240531", "d"]);
    const dates = new Map<string, string[]>();
    for (const u of UNIVERSE) {
      const bars = await store.queryBars({ symbol: u.canonical, interval: "1d", limit: 100 });
      // A daily bar is 00:00Z of its session date, the date as the market (and Stooq) has it.
      expect(bars.every((b) => b.ts % 86_400_000 === 0)).toBe(true);
      expect(bars.map((b) => dateOf(b.ts))).toEqual(sessionsOf(u.canonical, u.market).map((b) => b.date));
      dates.set(u.market, bars.map((b) => dateOf(b.ts)));
    }
    const has = (m: Market, d: string) => dates.get(m)!.includes(d);
    // 2024-05-06 UK early May bank holiday; 05-27 Memorial Day and the UK spring bank holiday; 05-30 Corpus Christi (Warsaw).
    expect(["WSE", "NYSE", "LSE", "XETRA"].map((m) => has(m as Market, "2024-05-06"))).toEqual([true, true, false, true]);
    expect(["WSE", "NYSE", "LSE", "XETRA"].map((m) => has(m as Market, "2024-05-27"))).toEqual([true, false, false, true]);
    expect(["WSE", "NYSE", "LSE", "XETRA"].map((m) => has(m as Market, "2024-05-30"))).toEqual([false, true, true, true]);
    expect((await store.listSeries()).map((x) => x.symbol).sort()).toEqual(UNIVERSE.map((u) => u.canonical).sort());
  });

  test("bare tickers take the source's market: LSE tickers asked as .uk", async () => {
    fake.setBars("stooq", "bp.uk", sessionsOf("BP.L", "LSE"));
    const s = await ingestFromConfig({ loaded: loaded({ st: stooq({ symbols: ["BP"], market: "LSE" }) }), store, source: "st", range });
    expect(s.outcome).toBe("succeeded");
    expect(requests().map((r) => r.query.s)).toEqual(["bp.uk"]);
    expect((await store.queryBars({ symbol: "BP.L", interval: "1d", limit: 100 })).length).toBe(sessionsOf("BP.L", "LSE").length);
  });

  test("`No data` for an unknown XETRA listing fails it alone (no_data); the others load", async () => {
    fake.setBars("stooq", "vod.uk", sessionsOf("VOD.L", "LSE"));
    const s = await ingestFromConfig({ loaded: loaded({ st: stooq({ symbols: ["VOD.L", "NOPE.DE"] }) }), store, source: "st", range });
    expect(s.failedStreams).toEqual({ no_data: ["NOPE.DE"] });
    expect(requests().filter((r) => r.query.s === "nope.de").length).toBe(1);
    expect((await store.queryBars({ symbol: "VOD.L", interval: "1d", limit: 100 })).length).toBe(sessionsOf("VOD.L", "LSE").length);
  });

  test("the daily-limit text is a clear rate_limited failure, and no further symbol is asked", async () => {
    for (const u of UNIVERSE) fake.setBars("stooq", u.stooq, sessionsOf(u.canonical, u.market));
    fake.fault("stooq", "*", { kind: "stooq-limit", times: 1 });
    const s = await ingestFromConfig({ loaded: loaded({ st: stooq({ symbols: UNIVERSE.map((u) => u.given), concurrency: 1 }) }), store, source: "st", range });
    expect(s.outcome).toBe("failed");
    expect(s.failedStreams.rate_limited?.length).toBe(UNIVERSE.length);
    expect(requests().length).toBe(1);
    const failed = await store.listRunStreams(s.runId, "failed");
    expect(failed.every((f) => /exceeded the daily hits limit/i.test(String(f.error)))).toBe(true);
  });

  test("markets without a Stooq spelling are refused by name", async () => {
    const s = await ingestFromConfig({ loaded: loaded({ st: stooq({ symbols: ["RY.TO"] }) }), store, source: "st", range });
    expect(s.outcome).toBe("failed");
    const [failed] = await store.listRunStreams(s.runId, "failed");
    expect(String(failed!.error)).toMatch(/has no data for TSX symbols like RY\.TO/);
    expect(requests().length).toBe(0);
  });
});
