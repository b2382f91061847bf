// Live sources: providers' latest-quote mode against the local fake servers (real formats, 429s,
// malformed replies), and the replay source (pacing, its own source name, interrupt + resume).
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import type { Bar } from "../src/domain/bar.ts";
import { ingestFromConfig } from "../src/pipeline/run.ts";
import { setLogLevel } from "../src/lib/log.ts";
import type { FakeBar, FakeProviders } from "./fakes/providers.ts";
import { cli, waitFor, writeFile } from "./helpers.ts";
import { loadedSources, useProviderTestEnv } from "./provider-env.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

setLogLevel("error");
let fake: FakeProviders;
let store: Store;
let storePath: string;
const dir = useProviderTestEnv("ticksync-live-", (env) => void ({ fake, store, storePath } = env));

const QUICK_RETRY = { attempts: 3, rateLimitAttempts: 4, baseDelayMs: 5, maxDelayMs: 20 };
const DAY = 86_400_000;
const loaded = (sources: Record<string, unknown>) => loadedSources(dir, sources);
const quoteSource = (type: string, extra: Record<string, unknown> = {}) => ({
  type,
  mode: "quote",
  baseUrl: `${fake.url}/${type}`,
  apiKey: "k3y-secret",
  rateLimit: { perSecond: 200 },
  retry: QUICK_RETRY,
  ...extra,
});
const requestsOf = (provider: string) => fake.requests.filter((r) => r.provider === provider);
const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const today = utcDay(Date.now());
const yesterday = utcDay(Date.now() - DAY);

/** A session's bar; the last bar of a fake series is its latest quote. */
const bar = (date: string, close: number, volume = 1000): FakeBar => ({ date, open: 100, high: Math.max(101, close), low: Math.min(99, close), close, volume, adjClose: close });

/** The New York session whose 09:30 open lies in the last 24 hours (what Yahoo's range=1d covers). */
function yahooSessionDate(): string {
  const nyDate = new Intl.DateTimeFormat("en-CA", { timeZone: "America/New_York" }).format(Date.now());
  const parts = new Intl.DateTimeFormat("en-US", { timeZone: "America/New_York", hourCycle: "h23", hour: "2-digit", minute: "2-digit" }).formatToParts(Date.now());
  const [h, m] = [Number(parts.find((p) => p.type === "hour")!.value), Number(parts.find((p) => p.type === "minute")!.value)];
  return h * 60 + m >= 9 * 60 + 30 ? nyDate : utcDay(Date.parse(nyDate) - DAY);
}

async function eventsOf(source: string) {
  return (await store.eventsSince(0, 10_000)).filter((e) => e.bar.source === source);
}

describe("quote mode: the latest quote is today's bar, updated in place", () => {
  test("stooq: one light-quote request for all symbols; a second poll with one moved price is one update", async () => {
    fake.setBars("stooq", "cdr", [bar(yesterday, 120), bar(today, 121.5)]);
    fake.setBars("stooq", "pkn", [bar(today, 60.12, 5000)]);
    fake.setBars("stooq", "msft.us", [bar(today, 410.2)]);
    const cfg = loaded({ q: quoteSource("stooq", { symbols: ["CDR.WA", "PKN.WA", "MSFT.US"] }) });
    const first = await ingestFromConfig({ loaded: cfg, store, source: "q" });
    expect(first.outcome).toBe("succeeded");
    expect([first.inserted, first.updated, first.unchanged]).toEqual([3, 0, 0]);
    const reqs = requestsOf("stooq");
    expect(reqs.length).toBe(1);
    expect(reqs[0]!.path).toBe("/q/l/");
    expect(reqs[0]!.query).toMatchObject({ s: "cdr pkn msft.us", f: "sd2t2ohlcv", e: "csv" });
    const [cdr] = await store.queryBars({ symbol: "CDR.WA", interval: "1d", limit: 10 });
    expect(cdr).toMatchObject({ source: "q", ts: Date.parse(today), open: 100, close: 121.5 });

    // Unchanged quotes write nothing; a moved price is one "update" event.
    const unchanged = await ingestFromConfig({ loaded: cfg, store, source: "q" });
    expect([unchanged.inserted, unchanged.updated, unchanged.unchanged]).toEqual([0, 0, 3]);
    fake.setBars("stooq", "pkn", [bar(today, 61.04, 7300)]);
    const moved = await ingestFromConfig({ loaded: cfg, store, source: "q" });
    expect([moved.inserted, moved.updated, moved.unchanged]).toEqual([0, 1, 2]);
    const events = await eventsOf("q");
    expect(events.map((e) => e.op)).toEqual(["insert", "insert", "insert", "update"]);
    expect(events[3]!.bar).toMatchObject({ symbol: "PKN.WA", ts: Date.parse(today), close: 61.04, volume: 7300 });
    expect((await store.queryBars({ symbol: "PKN.WA", interval: "1d", limit: 10 })).length).toBe(1);
  });

  test("stooq: an unknown symbol (N/D) fails its stream with no_data, the quotes that came are stored", async () => {
    fake.setBars("stooq", "cdr", [bar(today, 121.5)]);
    const s = await ingestFromConfig({ loaded: loaded({ q: quoteSource("stooq", { symbols: ["CDR.WA", "ZZZ.WA"] }) }), store, source: "q" });
    expect(s.outcome).toBe("failed");
    expect(s.failures).toEqual({ no_data: 1 });
    expect(s.error).toContain("ZZZ.WA");
    expect(s.inserted).toBe(1);
  });

  test("yahoo: range=1d chart per symbol, 429 with Retry-After waited out", async () => {
    const date = yahooSessionDate();
    fake.setBars("yahoo", "AAPL", [bar(utcDay(Date.parse(date) - DAY), 180), bar(date, 185.64)]);
    fake.fault("yahoo", "AAPL", { kind: "429", retryAfterSeconds: 1, times: 1 });
    const s = await ingestFromConfig({ loaded: loaded({ y: quoteSource("yahoo", { symbols: ["AAPL.US"] }) }), store, source: "y" });
    expect(s.outcome).toBe("succeeded");
    const reqs = requestsOf("yahoo");
    expect(reqs.map((r) => r.status)).toEqual([429, 200]);
    expect(reqs[1]!.at - reqs[0]!.at).toBeGreaterThanOrEqual(990);
    expect(reqs[1]!.query).toMatchObject({ range: "1d", interval: "1d" });
    const bars = await store.queryBars({ symbol: "AAPL.US", interval: "1d", limit: 10 });
    expect(bars).toMatchObject([{ ts: Date.parse(date), close: 185.64 }]); // float32 undone, one bar only
  });

  test("polygon: one snapshot request for many tickers, the key on it; today's `day` aggregate", async () => {
    fake.setBars("polygon", "AAPL", [bar(yesterday, 190), bar(today, 191.25, 9_000_000)]);
    fake.setBars("polygon", "MSFT", [bar(today, 410)]);
    const s = await ingestFromConfig({ loaded: loaded({ p: quoteSource("polygon", { symbols: ["AAPL.US", "MSFT.US"] }) }), store, source: "p" });
    expect(s.outcome).toBe("succeeded");
    const reqs = requestsOf("polygon");
    expect(reqs.length).toBe(1);
    expect(reqs[0]!.path).toBe("/v2/snapshot/locale/us/markets/stocks/tickers");
    expect(reqs[0]!.query).toMatchObject({ tickers: "AAPL,MSFT", apiKey: "k3y-secret" });
    const [aapl] = await store.queryBars({ symbol: "AAPL.US", interval: "1d", limit: 10 });
    // The snapshot's `updated` (16:00 New York) names the session: today, not yesterday.
    expect(aapl).toMatchObject({ ts: Date.parse(today), close: 191.25, volume: 9_000_000 });
  });

  test("alpha vantage: GLOBAL_QUOTE; a malformed (cut) reply is retried; an empty Global Quote is not_found", async () => {
    fake.setBars("alphavantage", "IBM", [bar(yesterday, 170), bar(today, 171.3)]);
    fake.fault("alphavantage", "IBM", { kind: "truncated", times: 1 });
    const s = await ingestFromConfig({ loaded: loaded({ a: quoteSource("alphavantage", { symbols: ["IBM.US", "NOPE.US"] }) }), store, source: "a" });
    expect(s.failedStreams).toEqual({ not_found: ["NOPE.US"] });
    const ibm = requestsOf("alphavantage").filter((r) => r.query.symbol === "IBM");
    expect(ibm.length).toBe(2);
    expect(ibm.every((r) => r.query.function === "GLOBAL_QUOTE")).toBe(true);
    expect(await store.queryBars({ symbol: "IBM.US", interval: "1d", limit: 10 })).toMatchObject([{ ts: Date.parse(today), open: 100, close: 171.3 }]);
  });

  test("the shared rate limit holds: 6 symbols at 5/s with 4 workers never exceed the server's limit", async () => {
    const date = yahooSessionDate();
    const symbols = ["A", "B", "C", "D", "E", "F"];
    for (const s of symbols) fake.setBars("yahoo", s, [bar(date, 50)]);
    fake.rateLimit("yahoo", 5);
    const t0 = performance.now();
    const s = await ingestFromConfig({
      loaded: loaded({ y: quoteSource("yahoo", { symbols: symbols.map((x) => `${x}.US`), rateLimit: { perSecond: 5 }, concurrency: 4 }) }),
      store,
      source: "y",
    });
    const elapsed = performance.now() - t0;
    expect(s.outcome).toBe("succeeded");
    expect(s.inserted).toBe(6);
    expect(requestsOf("yahoo").length).toBe(6);
    expect(fake.violations("yahoo")).toBe(0);
    expect(elapsed).toBeGreaterThanOrEqual(950); // 6 calls evenly spaced at 5/s: 5 gaps of ≥ 200 ms
  });

  test("a backfill of a quote source is refused: there is no history behind the quote endpoint", async () => {
    fake.setBars("stooq", "cdr", [bar(today, 121.5)]);
    const s = await ingestFromConfig({ loaded: loaded({ q: quoteSource("stooq", { symbols: ["CDR.WA"] }) }), store, source: "q", kind: "backfill", range: { from: 0, to: Date.now() } });
    expect(s.failures).toEqual({ source_error: 1 });
    expect(requestsOf("stooq").length).toBe(0);
  });

  test("`ticksync ingest --source` polls a quote source from a config file", async () => {
    fake.setBars("stooq", "cdr", [bar(today, 121.5)]);
    const config = writeFile(
      join(dir, "quotes.json"),
      JSON.stringify({ store: { url: `sqlite:${storePath}` }, sources: { live: quoteSource("stooq", { symbols: ["CDR.WA"] }) }, jobs: [{ name: "poll", source: "live", schedule: "*/30 * * * * *" }] }),
    );
    const r = await cli(["ingest", "--config", config, "--source", "live", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)[0]).toMatchObject({ source: "live", outcome: "succeeded", inserted: 1 });
  });
});

// ---------------------------------------------------------------------------------------------
// Replay

/** Weekday daily bars of `symbol` under source `orig`, from 2024-01-01 on. */
function weekdayBars(symbol: string, count: number, source = "orig"): Bar[] {
  const out: Bar[] = [];
  for (let t = Date.UTC(2024, 0, 1); out.length < count; t += DAY) {
    const dow = new Date(t).getUTCDay();
    if (dow === 0 || dow === 6) continue;
    const c = 100 + out.length;
    out.push({ source, symbol, interval: "1d", ts: t, open: c - 0.5, high: c + 1, low: c - 1, close: c, volume: 1000 + out.length });
  }
  return out;
}

async function seed(bars: Bar[]) {
  const runId = await store.startRun({ kind: "ingest", source: bars[0]!.source });
  await store.commitBatch({ runId, source: bars[0]!.source, bars, quarantine: [], read: bars.length });
  await store.finishRun(runId, { outcome: "succeeded", read: bars.length, inserted: bars.length, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
}

const strip = (b: Bar) => ({ symbol: b.symbol, ts: b.ts, open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume });
const replayed = async (symbol: string, source = "rp") => (await store.queryBars({ symbol, interval: "1d", source, limit: 10_000 })).map(strip);

describe("replay", () => {
  test("20 bars at 100 bars/s: paced (≥ 150 ms), stored exactly under the replay's name, originals untouched", async () => {
    const bars = weekdayBars("AAPL.US", 20);
    await seed(bars);
    const times: number[] = [];
    const t0 = performance.now();
    const s = await ingestFromConfig({ loaded: loaded({ rp: { type: "replay", from: `sqlite:${storePath}`, barsPerSecond: 100 } }), store, source: "rp", onBatch: () => times.push(performance.now()) });
    const elapsed = performance.now() - t0;
    expect(s.outcome).toBe("succeeded");
    expect([s.read, s.inserted]).toEqual([20, 20]);
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(2000);
    expect(times.length).toBe(20); // one batch per moment
    expect(await replayed("AAPL.US")).toEqual(bars.map(strip));
    expect(await replayed("AAPL.US", "orig")).toEqual(bars.map(strip));
    expect((await eventsOf("rp")).length).toBe(20);
    // Played to the end: the next run has nothing left.
    const again = await ingestFromConfig({ loaded: loaded({ rp: { type: "replay", from: `sqlite:${storePath}`, barsPerSecond: 100 } }), store, source: "rp" });
    expect(again.read).toBe(0);
  });

  test("speed paces by market time: symbols of one moment come together; a day at 86400×10 is 100 ms", async () => {
    await seed([...weekdayBars("AAPL.US", 5), ...weekdayBars("MSFT.US", 5)]); // Mon..Fri 2024-01-01..05
    const sizes: number[] = [];
    const t0 = performance.now();
    const s = await ingestFromConfig({ loaded: loaded({ rp: { type: "replay", from: storePath, speed: 864_000 } }), store, source: "rp", onBatch: (e) => sizes.push(e.read) });
    const elapsed = performance.now() - t0;
    expect(s.inserted).toBe(10);
    expect(sizes).toEqual([2, 2, 2, 2, 2]);
    expect(elapsed).toBeGreaterThanOrEqual(350); // 4 days
    expect(elapsed).toBeLessThan(3000);
  });

  test("interrupted by its signal it stops between batches; resumed it plays exactly the rest", async () => {
    const bars = weekdayBars("AAPL.US", 30);
    await seed(bars);
    const cfg = loaded({ rp: { type: "replay", from: storePath, barsPerSecond: 50 } });
    const ac = new AbortController();
    let batches = 0;
    const first = await ingestFromConfig({ loaded: cfg, store, source: "rp", signal: ac.signal, onBatch: () => ++batches === 8 && ac.abort() });
    expect(first.outcome).toBe("interrupted");
    const done = (await replayed("AAPL.US")).length;
    expect(done).toBeGreaterThanOrEqual(8);
    expect(done).toBeLessThan(30);
    const second = await ingestFromConfig({ loaded: cfg, store, source: "rp" });
    expect(second.outcome).toBe("succeeded");
    expect([second.read, second.inserted, second.updated, second.unchanged]).toEqual([30 - done, 30 - done, 0, 0]);
    expect(await replayed("AAPL.US")).toEqual(bars.map(strip));
  });

  test("`ticksync ingest` stops on SIGTERM and the next run resumes from the cursor", async () => {
    await seed(weekdayBars("AAPL.US", 40));
    await store.close();
    const config = writeFile(join(dir, "replay.json"), JSON.stringify({ store: { url: `sqlite:${storePath}` }, sources: { rp: { type: "replay", from: `sqlite:${storePath}`, barsPerSecond: 20 } } }));
    const { MAIN } = await import("./helpers.ts");
    const proc = Bun.spawn([process.execPath, MAIN, "ingest", "--config", config, "--source", "rp", "--json"], { stdout: "pipe", stderr: "pipe" });
    // Stopped once its first batches are stored (read through a second handle on the file).
    store = sqliteStore(storePath);
    await waitFor(async () => (await replayed("AAPL.US")).length >= 2, 15_000, "the first replayed batches");
    await store.close();
    proc.kill("SIGTERM");
    const code = await proc.exited;
    const out = JSON.parse(await new Response(proc.stdout).text());
    expect(code).not.toBe(0);
    expect(out[0].outcome).toBe("interrupted");
    expect(out[0].inserted).toBeGreaterThan(0);
    expect(out[0].inserted).toBeLessThan(40);
    const r = await cli(["ingest", "--config", config, "--source", "rp", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)[0].inserted).toBe(40 - out[0].inserted);
    store = sqliteStore(storePath);
    expect((await replayed("AAPL.US")).length).toBe(40);
  });

  test("from a CSV file, with timestamps shifted by whole weeks so the last bar is in the current week", async () => {
    const csv = writeFile(
      join(dir, "demo.csv"),
      "symbol,date,open,high,low,close,volume\nPKN.WA,2024-01-02,60,61,59,60.5,100\nCDR.WA,2024-01-02,120,121,119,120.5,50\nPKN.WA,2024-01-03,60.5,62,60,61.5,120\nPKN.WA,2024-01-04,61.5,oops,61,62,130\n",
    );
    const s = await ingestFromConfig({
      loaded: loaded({ rp: { type: "replay", csv: { path: csv, layout: "generic", columns: { symbol: "symbol", date: "date", open: "open", high: "high", low: "low", close: "close", volume: "volume" } }, barsPerSecond: 1000, timestamps: "shifted" } }),
      store,
      source: "rp",
    });
    expect([s.read, s.inserted, s.quarantined]).toEqual([4, 3, 1]); // the bad row goes to the quarantine, not lost
    const pkn = await store.queryBars({ symbol: "PKN.WA", interval: "1d", source: "rp", limit: 10 });
    const shift = pkn[0]!.ts - Date.UTC(2024, 0, 2);
    expect(shift % (7 * DAY)).toBe(0); // weekdays kept
    expect(pkn[1]!.ts).toBeLessThanOrEqual(Date.now());
    expect(pkn[1]!.ts).toBeGreaterThan(Date.now() - 7 * DAY);
    expect(pkn.map((b) => b.close)).toEqual([60.5, 61.5]);
  });

  test("a store file named relative to the config file, in any spelling; a missing one fails and is not created", async () => {
    await seed(weekdayBars("AAPL.US", 3));
    const rel = basename(storePath);
    for (const from of [rel, `sqlite:${rel}`, `SQLITE:${rel}`, `file:${rel}`]) {
      const s = await ingestFromConfig({ loaded: loaded({ rp: { type: "replay", from, barsPerSecond: 1000 } }), store, source: "rp" });
      expect({ from, outcome: s.outcome }).toEqual({ from, outcome: "succeeded" });
    }
    expect(await replayed("AAPL.US")).toEqual(weekdayBars("AAPL.US", 3).map(strip));
    const missing = await ingestFromConfig({ loaded: loaded({ rp: { type: "replay", from: "sqlite:missing.db" } }), store, source: "rp" });
    expect(missing.failures).toEqual({ source_error: 1 });
    expect(missing.error).toContain("no store at missing.db");
    expect(existsSync(join(dir, "missing.db"))).toBe(false);
  });

  test("config: one of from/csv, loop needs shifted timestamps, a symbol with two stored sources must be chosen", async () => {
    expect(() => loaded({ rp: { type: "replay" } })).toThrow(/exactly one of from/);
    expect(() => loaded({ rp: { type: "replay", from: storePath, loop: true } })).toThrow(/loop = true needs timestamps/);
    await seed(weekdayBars("AAPL.US", 3, "a"));
    await seed(weekdayBars("AAPL.US", 3, "b"));
    const s = await ingestFromConfig({ loaded: loaded({ rp: { type: "replay", from: storePath } }), store, source: "rp" });
    expect(s.failures).toEqual({ source_error: 1 });
    expect(s.error).toContain("set source");
    const ok = await ingestFromConfig({ loaded: loaded({ rp: { type: "replay", from: storePath, source: "b", barsPerSecond: 1000 } }), store, source: "rp" });
    expect(ok.inserted).toBe(3);
  });
});
