// Provider sources against local servers that speak the providers' real formats, faults
// included. Every test checks the rows stored and the number of requests made.
import { describe, expect, test } from "bun:test";
import type { Store } from "../src/stores/types.ts";
import { ingestFromConfig } from "../src/pipeline/run.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { syntheticBars, type FakeBar, type FakeProviders } from "./fakes/providers.ts";
import { loadedSources, useProviderTestEnv } from "./provider-env.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

setLogLevel("error");
let fake: FakeProviders;
let store: Store;
const dir = useProviderTestEnv("ticksync-prov-", (env) => void ({ fake, store } = env), { polygonPageSize: 3 });

const FAST = { perSecond: 200 };
const QUICK_RETRY = { attempts: 3, rateLimitAttempts: 4, baseDelayMs: 5, maxDelayMs: 20 };

const loaded = (sources: Record<string, unknown>) => loadedSources(dir, sources);

function provider(type: string, extra: Record<string, unknown> = {}) {
  return { type, baseUrl: `${fake.url}/${type}`, apiKey: "k3y-secret", rateLimit: FAST, retry: QUICK_RETRY, start: "2024-01-01", ...extra };
}

async function stored(symbol: string) {
  return (await store.queryBars({ symbol, interval: "1d", limit: 10_000 })).map((b) => ({
    date: new Date(b.ts).toISOString().slice(0, 10),
    open: b.open,
    high: b.high,
    low: b.low,
    close: b.close,
    volume: b.volume,
  }));
}
const expected = (bars: FakeBar[]) => bars.map(({ date, open, high, low, close, volume }) => ({ date, open, high, low, close, volume }));
const requestsOf = (provider: string) => fake.requests.filter((r) => r.provider === provider);

describe("happy paths: every provider's real format into exactly the right rows", () => {
  test("yahoo: US and Warsaw symbols, exchange dates from session-open timestamps, adjusted close kept", async () => {
    const aapl = syntheticBars("AAPL", "2024-01-02", "2024-03-28", { weekdaysOnly: true });
    const pkn = syntheticBars("PKN.WA", "2024-01-02", "2024-03-28", { weekdaysOnly: true });
    fake.setBars("yahoo", "AAPL", aapl);
    fake.setBars("yahoo", "PKN.WA", pkn);
    const s = await ingestFromConfig({ loaded: loaded({ y: provider("yahoo", { symbols: ["AAPL.US", "pkn.pl"] }) }), store, source: "y" });
    expect(s.outcome).toBe("succeeded");
    expect(await stored("AAPL.US")).toEqual(expected(aapl));
    expect(await stored("PKN.WA")).toEqual(expected(pkn));
    const [first] = await store.queryBars({ symbol: "AAPL.US", interval: "1d", limit: 1 });
    expect(first!.adjClose).toBe(aapl[0]!.adjClose);
    expect(requestsOf("yahoo").length).toBe(2);
  });

  test("stooq: WSE and US symbols in Stooq's spelling", async () => {
    const cdr = syntheticBars("cdr", "2024-02-01", "2024-02-29", { weekdaysOnly: true });
    const msft = syntheticBars("msft.us", "2024-02-01", "2024-02-29", { weekdaysOnly: true });
    fake.setBars("stooq", "cdr", cdr);
    fake.setBars("stooq", "msft.us", msft);
    const s = await ingestFromConfig({ loaded: loaded({ st: provider("stooq", { symbols: ["CDR", "MSFT.US"], market: "WSE" }) }), store, source: "st" });
    expect(s.outcome).toBe("succeeded");
    expect(await stored("CDR.WA")).toEqual(expected(cdr));
    expect(await stored("MSFT.US")).toEqual(expected(msft));
    const q = requestsOf("stooq").map((r) => r.query.s).sort();
    expect(q).toEqual(["cdr", "msft.us"]);
  });

  test("polygon: pagination through next_url, the key added to each page and never logged", async () => {
    const bars = syntheticBars("AAPL", "2024-01-02", "2024-01-31", { weekdaysOnly: true });
    fake.setBars("polygon", "AAPL", bars);
    const s = await ingestFromConfig({ loaded: loaded({ p: provider("polygon", { symbols: ["AAPL.US"] }) }), store, source: "p" });
    expect(s.outcome).toBe("succeeded");
    expect(await stored("AAPL.US")).toEqual(expected(bars));
    const reqs = requestsOf("polygon");
    expect(reqs.length).toBe(Math.ceil(bars.length / 3));
    expect(reqs.every((r) => r.query.apiKey === "k3y-secret")).toBe(true);
    expect(s.read).toBe(bars.length); // each bar once
  });

  test("alpha vantage: string values, newest first, filtered to the range", async () => {
    const ibm = syntheticBars("IBM", "2024-01-02", "2024-02-29", { weekdaysOnly: true });
    fake.setBars("alphavantage", "IBM", ibm);
    const s = await ingestFromConfig({ loaded: loaded({ av: provider("alphavantage", { symbols: ["IBM.US"], start: "2024-02-01" }) }), store, source: "av" });
    expect(s.outcome).toBe("succeeded");
    expect(await stored("IBM.US")).toEqual(expected(ibm.filter((b) => b.date >= "2024-02-01")));
    expect(requestsOf("alphavantage").length).toBe(1);
  });
});

describe("incremental loading", () => {
  test("the next run starts at the last stored bar less the overlap and stores only what is new or corrected", async () => {
    const bars = syntheticBars("AAPL", "2024-01-02", "2024-02-29", { weekdaysOnly: true });
    fake.setBars("yahoo", "AAPL", bars.slice(0, 30));
    const cfg = loaded({ y: provider("yahoo", { symbols: ["AAPL.US"], overlapDays: 5 }) });
    await ingestFromConfig({ loaded: cfg, store, source: "y" });
    // The provider corrects a bar inside the overlap window and publishes more days.
    const corrected = bars.map((b, i) => (i === 28 ? { ...b, close: Math.round((b.close + 0.01) * 100) / 100 } : b));
    fake.setBars("yahoo", "AAPL", corrected);
    const s = await ingestFromConfig({ loaded: cfg, store, source: "y" });
    const period1 = Number(requestsOf("yahoo")[1]!.query.period1) * 1000;
    // The overlap (5 days), and one day more: Yahoo stamps a bar at its session open, east of UTC on the day before.
    expect(period1).toBe(Date.parse(`${bars[29]!.date}T00:00:00Z`) - 6 * 86_400_000);
    expect(s.inserted).toBe(bars.length - 30);
    expect(s.updated).toBe(1);
    expect(await stored("AAPL.US")).toEqual(expected(corrected));
  });
});

describe("faults", () => {
  test("429 with Retry-After: every caller waits it out, then the row set is complete", async () => {
    const bars = syntheticBars("AAPL", "2024-01-02", "2024-01-12", { weekdaysOnly: true });
    fake.setBars("yahoo", "AAPL", bars);
    fake.fault("yahoo", "AAPL", { kind: "429", retryAfterSeconds: 1, times: 2 });
    const s = await ingestFromConfig({ loaded: loaded({ y: provider("yahoo", { symbols: ["AAPL.US"] }) }), store, source: "y" });
    expect(s.outcome).toBe("succeeded");
    const reqs = requestsOf("yahoo");
    expect(reqs.map((r) => r.status)).toEqual([429, 429, 200]);
    expect(reqs[1]!.at - reqs[0]!.at).toBeGreaterThanOrEqual(990);
    expect(reqs[2]!.at - reqs[1]!.at).toBeGreaterThanOrEqual(990);
    expect(await stored("AAPL.US")).toEqual(expected(bars));
  });

  test("alpha vantage's 200-with-Note throttling is retried and gives up without a storm; a daily cap stops all calls", async () => {
    const ibm = syntheticBars("IBM", "2024-01-02", "2024-01-31", { weekdaysOnly: true });
    for (const sym of ["IBM", "T", "KO", "PEP"]) fake.setBars("alphavantage", sym, sym === "IBM" ? ibm : syntheticBars(sym, "2024-01-02", "2024-01-31"));
    fake.fault("alphavantage", "IBM", { kind: "av-note", times: 1 });
    fake.fault("alphavantage", "T", { kind: "av-note", times: 100 });
    fake.fault("alphavantage", "KO", { kind: "av-information", times: 100 });
    const cfg = loaded({ av: provider("alphavantage", { symbols: ["IBM.US", "T.US", "KO.US", "PEP.US"], concurrency: 1 }) });
    const s = await ingestFromConfig({ loaded: cfg, store, source: "av" });
    expect(s.outcome).toBe("failed");
    expect(s.failures).toEqual({ rate_limited: 3 });
    expect(s.failedStreams).toEqual({ rate_limited: ["T.US", "KO.US", "PEP.US"] });
    expect(await stored("IBM.US")).toEqual(expected(ibm));
    const count = (sym: string) => requestsOf("alphavantage").filter((r) => r.query.symbol === sym).length;
    expect(count("IBM")).toBe(2); // one Note, then the data
    expect(count("T")).toBe(QUICK_RETRY.rateLimitAttempts); // per-minute throttling: bounded retries
    expect(count("KO")).toBe(1); // "25 requests per day": no retry at all
    expect(count("PEP")).toBe(0); // and no call for the rest of the run
  }, 30_000);

  test("a 5xx burst is retried with backoff; a longer outage fails the symbol with server_error after the attempt limit", async () => {
    // Three bars: one page at the fake's page size of 3.
    fake.setBars("polygon", "AAPL", syntheticBars("AAPL", "2024-01-02", "2024-01-04"));
    fake.setBars("polygon", "MSFT", syntheticBars("MSFT", "2024-01-02", "2024-01-04"));
    fake.fault("polygon", "AAPL", { kind: "5xx", status: 503, times: 2 });
    fake.fault("polygon", "MSFT", { kind: "5xx", status: 500, times: 50 });
    const s = await ingestFromConfig({ loaded: loaded({ p: provider("polygon", { symbols: ["AAPL.US", "MSFT.US"] }) }), store, source: "p" });
    expect(s.failures).toEqual({ server_error: 1 });
    expect((await stored("AAPL.US")).length).toBe(3);
    expect(requestsOf("polygon").filter((r) => r.path.includes("/AAPL/")).length).toBe(3);
    expect(requestsOf("polygon").filter((r) => r.path.includes("/MSFT/")).length).toBe(QUICK_RETRY.attempts);
  });

  test("truncated JSON is a bad response, retried", async () => {
    const bars = syntheticBars("AAPL", "2024-01-02", "2024-01-10");
    fake.setBars("yahoo", "AAPL", bars);
    fake.fault("yahoo", "AAPL", { kind: "truncated", times: 1 });
    const s = await ingestFromConfig({ loaded: loaded({ y: provider("yahoo", { symbols: ["AAPL.US"] }) }), store, source: "y" });
    expect(s.outcome).toBe("succeeded");
    expect(requestsOf("yahoo").length).toBe(2);
    expect((await stored("AAPL.US")).length).toBe(bars.length);
  });

  test("a provider that hangs is timed out and retried", async () => {
    const bars = syntheticBars("IBM", "2024-01-02", "2024-01-04");
    fake.setBars("polygon", "IBM", bars);
    fake.fault("polygon", "IBM", { kind: "hang", times: 1 });
    const s = await ingestFromConfig({ loaded: loaded({ p: provider("polygon", { symbols: ["IBM.US"], timeoutMs: 300 }) }), store, source: "p" });
    expect(s.outcome).toBe("succeeded");
    expect(requestsOf("polygon").length).toBe(2);
    expect((await stored("IBM.US")).length).toBe(bars.length);
  });

  test("a symbol that does not exist fails alone, once, with its cause; the others load", async () => {
    fake.setBars("yahoo", "AAPL", syntheticBars("AAPL", "2024-01-02", "2024-01-10"));
    const s = await ingestFromConfig({ loaded: loaded({ y: provider("yahoo", { symbols: ["AAPL.US", "NOPE.US"] }) }), store, source: "y" });
    expect(s.outcome).toBe("failed");
    expect(s.failedStreams).toEqual({ not_found: ["NOPE.US"] });
    expect(requestsOf("yahoo").filter((r) => r.path.includes("NOPE")).length).toBe(1); // 404 is never retried
    expect((await stored("AAPL.US")).length).toBeGreaterThan(0);
    const states = await store.listRunStreams(s.runId, "failed");
    expect(states).toMatchObject([{ stream: "NOPE.US", status: "failed", cause: "not_found" }]);

    fake.reset();
    const st = await ingestFromConfig({ loaded: loaded({ s: provider("stooq", { symbols: ["ZZZ.WA"] }) }), store, source: "s" });
    expect(st.failedStreams).toEqual({ no_data: ["ZZZ.WA"] });
    const av = await ingestFromConfig({ loaded: loaded({ a: provider("alphavantage", { symbols: ["ZZZZ.US"] }) }), store, source: "a" });
    expect(av.failedStreams).toEqual({ not_found: ["ZZZZ.US"] });
    expect(requestsOf("stooq").length + requestsOf("alphavantage").length).toBe(2);
  });

  test("a bad key is a 4xx: no retry, cause auth, and the key is not in the error", async () => {
    fake.setBars("polygon", "AAPL", syntheticBars("AAPL", "2024-01-02", "2024-01-10"));
    const s = await ingestFromConfig({ loaded: loaded({ p: provider("polygon", { symbols: ["AAPL.US"], apiKey: "bad" }) }), store, source: "p" });
    expect(s.failedStreams).toEqual({ auth: ["AAPL.US"] });
    expect(requestsOf("polygon").length).toBe(1);
    expect(s.error).not.toContain("k3y-secret");
  });

  test("empty results over a few days are not a failure", async () => {
    fake.setBars("polygon", "AAPL", syntheticBars("AAPL", "2024-01-02", "2024-01-10"));
    fake.fault("polygon", "AAPL", { kind: "empty" });
    const s = await ingestFromConfig({
      loaded: loaded({ p: provider("polygon", { symbols: ["AAPL.US"] }) }),
      store,
      source: "p",
      range: { from: Date.UTC(2024, 0, 6), to: Date.UTC(2024, 0, 8) },
    });
    expect(s.outcome).toBe("succeeded");
    expect(s.read).toBe(0);
  });
});

describe("rate limits", () => {
  test("many concurrent workers share one limit: the server never sees it exceeded", async () => {
    const symbols = Array.from({ length: 24 }, (_, i) => `S${i}`);
    for (const s of symbols) fake.setBars("yahoo", s, syntheticBars(s, "2024-01-02", "2024-01-05"));
    fake.rateLimit("yahoo", 12);
    const s = await ingestFromConfig({
      loaded: loaded({ y: provider("yahoo", { symbols: symbols.map((x) => `${x}.US`), rateLimit: { perSecond: 12 }, concurrency: 8 }) }),
      store,
      source: "y",
    });
    expect(s.outcome).toBe("succeeded");
    expect(fake.violations("yahoo")).toBe(0);
    expect(requestsOf("yahoo").length).toBe(symbols.length);
    expect(s.inserted).toBe(symbols.length * 4);
  });
});
