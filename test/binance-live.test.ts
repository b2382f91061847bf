// Binance live (mode = "live") against a local Binance: REST + the combined WebSocket kline
// stream in Binance's formats (test/fakes/binance.ts). Closed and in-progress bars are stored and
// updated through the pipeline and reach the stream hub; a dropped connection and a silent one
// (no message, no ping) both reconnect, and after every reconnect the REST backfill asks exactly
// from the bar after the last closed one, so the store ends equal to the server's series.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { parseConfig } from "../src/config/load.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { ingestFromConfig } from "../src/pipeline/run.ts";
import { createSource } from "../src/sources/registry.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import type { BarEvent } from "../src/stores/events.ts";
import { createHub } from "../src/stream/hub.ts";
import { klineSeries, startFakeBinance, type FakeBinance, type FakeKline } from "./fakes/binance.ts";
import { MAIN, ROOT, waitFor, writeFile } from "./helpers.ts";
import { useFakeServerTestEnv } from "./provider-env.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();
setLogLevel("error");

const MIN = 60_000;
let fake: FakeBinance;
let store: Store;
const dir = useFakeServerTestEnv("ticksync-binance-live-", startFakeBinance, (env) => void ({ fake, store } = env));

const liveConfig = (symbols: string[], live: Record<string, unknown> = {}) =>
  parseConfig({
    sources: {
      live: {
        type: "binance",
        mode: "live",
        baseUrl: fake.url,
        streamUrl: fake.wsUrl,
        market: "CRYPTO",
        symbols,
        interval: "1m",
        rateLimit: { perSecond: 200 },
        retry: { attempts: 2, rateLimitAttempts: 3, baseDelayMs: 5, maxDelayMs: 10 },
        live: { streamsPerConnection: 1, silenceSeconds: 1, reconnectMinMs: 50, reconnectMaxMs: 200, lookbackBars: 500, maxMessageBytes: 1024, ...live },
      },
    },
  });

/** The same kline still in progress: closes an hour from now, with a different close and less volume. */
const inProgress = (k: FakeKline, close: number): FakeKline => ({ ...k, T: Date.now() + 3_600_000, c: close.toFixed(8), h: (Math.max(Number(k.h), close) + 1).toFixed(8), v: "1.00000000" });
const bars = (symbol: string) => store.queryBars({ symbol, interval: "1m", limit: 10_000 });
const shape = (b: { ts: number; open: number; high: number; low: number; close: number; volume: number }) => ({ t: b.ts, o: b.open, h: b.high, l: b.low, c: b.close, v: b.volume });
const want = (ks: FakeKline[]) => ks.map((k) => ({ t: k.t, o: Number(k.o), h: Number(k.h), l: Number(k.l), c: Number(k.c), v: Number(k.v) }));
/** The klines REST asked after request number `after`, by symbol: their first startTime. */
const firstStartAfter = (after: number, symbol: string) => Number(fake.requests.slice(after).find((r) => r.query.symbol === symbol)?.query.startTime);

describe("binance live", () => {
  test("closed and in-progress bars are stored and updated; drops and silence reconnect; each backfill fills exactly the missed bars", async () => {
    const b0 = Math.floor((Date.now() - 3 * 3_600_000) / MIN) * MIN;
    const btc = klineSeries(b0, MIN, 60, 60_000);
    const eth = klineSeries(b0, MIN, 60, 3_000);
    // The server at "bar 29": BTC's bar 29 still in progress, ETH's closed.
    const serve = (upto: number, btcOpen: FakeKline | null) => {
      fake.series.set("BTCUSDT|1m", btcOpen ? [...btc.slice(0, upto), btcOpen] : btc.slice(0, upto + 1));
      fake.series.set("ETHUSDT|1m", eth.slice(0, upto + 1));
      fake.visibleUntil = btc[upto]!.t;
    };
    serve(29, inProgress(btc[29]!, 60_100));

    const hubEvents: BarEvent[] = [];
    const hub = createHub({ store, config: parseConfig({}).stream });
    hub.bus.subscribe((events) => void hubEvents.push(...events));
    await hub.start();

    const ac = new AbortController();
    // NOPEUSDT is unknown to Binance (-1121): it is left out, the others go on.
    const running = ingestFromConfig({ loaded: { config: liveConfig(["BTCUSDT", "ETHUSDT", "NOPEUSDT"]), file: null, baseDir: dir }, store, source: "live", signal: ac.signal });
    try {
      // First connect: the look-back by REST, the in-progress bar included.
      await waitFor(async () => (await bars("BTC-USDT.CRYPTO")).length === 30 && (await bars("ETH-USDT.CRYPTO")).length === 30, 15_000, "the first backfill");
      expect((await bars("BTC-USDT.CRYPTO")).at(-1)).toMatchObject({ ts: btc[29]!.t, close: 60_100, volume: 1 });
      await waitFor(() => fake.sockets.size === 3, 5000, "three connections");
      expect(fake.requests.filter((r) => r.query.symbol === "NOPEUSDT").length).toBe(1);

      // An in-progress update, then the bar's close and the next bar, by the stream.
      expect(fake.push("BTCUSDT", "1m", inProgress(btc[29]!, 60_200), false)).toBe(1);
      await waitFor(async () => (await bars("BTC-USDT.CRYPTO")).at(-1)!.close === 60_200, 5000, "the in-progress update");
      fake.push("BTCUSDT", "1m", btc[29]!, true);
      fake.push("BTCUSDT", "1m", btc[30]!, true);
      fake.push("ETHUSDT", "1m", eth[30]!, true);
      serve(30, null);
      await waitFor(async () => (await bars("BTC-USDT.CRYPTO")).length === 31 && (await bars("ETH-USDT.CRYPTO")).length === 31, 5000, "bar 30");
      expect((await bars("BTC-USDT.CRYPTO")).map(shape)).toEqual(want(btc.slice(0, 31)));

      // The hub heard the in-progress bar's insert and its updates, like any other commit.
      await hub.poke();
      const bar29 = hubEvents.filter((e) => e.bar.symbol === "BTC-USDT.CRYPTO" && e.bar.ts === btc[29]!.t);
      expect(bar29.map((e) => e.op)).toEqual(["insert", "update", "update"]);
      expect(bar29.at(-1)!.bar.close).toBe(Number(btc[29]!.c));

      // A drop; meanwhile bars 31..48 close and 49 is in progress. The backfill starts at bar 31, exactly.
      const asked = fake.requests.length;
      const connected = fake.connections;
      serve(49, inProgress(btc[49]!, 60_300));
      fake.dropAll();
      await waitFor(async () => (await bars("BTC-USDT.CRYPTO")).length === 50 && (await bars("ETH-USDT.CRYPTO")).length === 50, 10_000, "the backfill after the drop");
      expect(fake.connections).toBeGreaterThanOrEqual(connected + 2);
      expect(firstStartAfter(asked, "BTCUSDT")).toBe(btc[31]!.t);
      expect(firstStartAfter(asked, "ETHUSDT")).toBe(eth[31]!.t);

      // Pings keep a quiet connection: no reconnect in 1.5 s of silence from the feed.
      await waitFor(() => fake.sockets.size === 3, 5000, "reconnected");
      const steady = fake.connections;
      await Bun.sleep(1500);
      expect(fake.connections).toBe(steady);

      // A silent connection (no message, no ping) is opened again; bars 49..55 close meanwhile.
      const asked2 = fake.requests.length;
      fake.silent = true;
      fake.dropAll();
      serve(56, inProgress(btc[56]!, 60_400));
      await waitFor(() => fake.connections >= steady + 6, 10_000, "reconnects of silent connections");
      fake.silent = false;
      await waitFor(async () => (await bars("BTC-USDT.CRYPTO")).length === 57 && (await bars("ETH-USDT.CRYPTO")).length === 57 && (await bars("BTC-USDT.CRYPTO")).at(-1)!.close === 60_400, 10_000, "the backfill after silence");
      // BTC's last closed bar was 48 (49 was in progress): the backfill starts at 49.
      expect(firstStartAfter(asked2, "BTCUSDT")).toBe(btc[49]!.t);
      expect(firstStartAfter(asked2, "ETHUSDT")).toBe(eth[50]!.t);

      // A closed bar that skips one (56) sends BTC back to REST, from bar 56 exactly. (Every
      // connection is a talking one again first, and their backfills are done.)
      await waitFor(() => fake.sockets.size === 3 && [...fake.sockets].every((ws) => !ws.data.silent), 5000, "reconnected, not silent");
      await Bun.sleep(300);
      const asked3 = fake.requests.length;
      serve(58, null);
      fake.push("BTCUSDT", "1m", btc[57]!, true);
      await waitFor(async () => (await bars("BTC-USDT.CRYPTO")).length === 59, 5000, "the backfill of a hole");
      expect(firstStartAfter(asked3, "BTCUSDT")).toBe(btc[56]!.t);

      // A hostile message (over maxMessageBytes) drops its connection, which comes back.
      await waitFor(() => fake.sockets.size === 3, 5000, "reconnected");
      const before = fake.connections;
      fake.raw(JSON.stringify({ stream: "x", data: { e: "kline", pad: "x".repeat(4000) } }));
      await waitFor(() => fake.connections >= before + 3, 5000, "reconnects after an oversized message");
      await waitFor(async () => (await bars("ETH-USDT.CRYPTO")).length === 59, 5000, "ETH's backfill after the reconnect");

      // The store is the server's series: every bar once, none missing, the open one as it is now.
      expect((await bars("BTC-USDT.CRYPTO")).map(shape)).toEqual(want(btc.slice(0, 59)));
      expect((await bars("ETH-USDT.CRYPTO")).map(shape)).toEqual(want(eth.slice(0, 59)));
      expect(await bars("NOPE-USDT.CRYPTO")).toEqual([]);
    } finally {
      ac.abort();
      const summary = await running;
      await hub.stop();
      expect(summary.outcome).toBe("interrupted");
    }
    // The live position is committed: each symbol's last closed bar.
    const cp = await store.getCheckpoint("live:live");
    expect(cp?.cursor).toMatchObject({ "closed:BTC-USDT.CRYPTO": btc[58]!.t, "closed:ETH-USDT.CRYPTO": eth[58]!.t });
  });

  test("a backfill (an explicit range) of the live source reads each symbol by REST and keeps the live cursor", async () => {
    const b0 = Date.parse("2026-03-02T00:00:00Z");
    fake.series.set("BTCUSDT|1m", klineSeries(b0, MIN, 30));
    fake.series.set("ETHUSDT|1m", klineSeries(b0, MIN, 30, 3_000));
    const cfg = liveConfig(["BTCUSDT", "ETHUSDT"]);
    const source = createSource("live", cfg.sources.live!, dir, {});
    expect(await source.streams()).toEqual(["live"]);
    const cursor = { "closed:BTC-USDT.CRYPTO": 123 };
    const got: { rows: number; cursor: unknown }[] = [];
    for await (const b of source.read("live", cursor, 1000, { from: b0 + 10 * MIN, to: b0 + 19 * MIN })) got.push({ rows: b.rows.length, cursor: b.cursor });
    expect(got).toEqual([
      { rows: 10, cursor },
      { rows: 10, cursor },
    ]);
    expect(fake.sockets.size).toBe(0);
    expect(fake.requests.map((r) => r.query.symbol)).toEqual(["BTCUSDT", "ETHUSDT"]);
  });

  test("`ticksync ingest` of a live source runs until Ctrl-C and then exits 0 with its bars stored", async () => {
    const b0 = Math.floor((Date.now() - 3_600_000) / MIN) * MIN;
    fake.series.set("BTCUSDT|1m", klineSeries(b0, MIN, 30, 60_000));
    fake.visibleUntil = b0 + 29 * MIN;
    const dbPath = join(dir, "cli.db");
    const config = writeFile(
      join(dir, "live.json"),
      JSON.stringify({
        store: { url: `sqlite://${dbPath}` },
        sources: { live: { type: "binance", mode: "live", baseUrl: fake.url, streamUrl: fake.wsUrl, market: "CRYPTO", symbols: ["BTCUSDT"], interval: "1m", rateLimit: { perSecond: 200 }, live: { lookbackBars: 100 } } },
      }),
    );
    const proc = Bun.spawn([process.execPath, MAIN, "ingest", "--config", config, "--source", "live"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    try {
      const cli = sqliteStore(dbPath);
      await waitFor(async () => (await cli.queryBars({ symbol: "BTC-USDT.CRYPTO", interval: "1m", limit: 100 }).catch(() => [])).length === 30, 20_000, "the backfilled bars");
      await cli.close();
      await waitFor(() => fake.sockets.size > 0, 10_000, "the live connection");
    } finally {
      proc.kill("SIGINT");
    }
    const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    expect(stderr).toContain("stopping after the current batches");
    expect(code).toBe(0);
  });
});
