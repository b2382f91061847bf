// Markets that trade around the clock, end to end: the market files' shapes (FX's overnight
// 17:00-17:00 New York session, CRYPTO's 00:00-24:00 UTC day, weekdays as data), gaps on both (a
// missing Saturday is a CRYPTO gap; FX has no Saturday), and a round trip through a real SQLite
// store: FX hour bars from a CSV, read back as daily and weekly bars rolled up on read along the
// 17:00 New York roll, with their gaps; and PostgreSQL's materialised rollups of both, equal to the
// rollup on read. Instants are written out in UTC by hand.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import postgres from "postgres";
import * as v from "valibot";
import type { Bar, Interval } from "../src/domain/bar.ts";
import { barDate, expectedUnits, findGaps, latestCompletedSession, unitWindow } from "../src/domain/gaps.ts";
import { rollup } from "../src/domain/rollup.ts";
import { marketInfo } from "../src/domain/markets/index.ts";
import { isOvernight, MarketFileSchema, phaseAxis, phaseProblem, type MarketFile } from "../src/domain/markets/schema.ts";
import { createApp } from "../src/http/app.ts";
import { apiClient } from "../src/http/client/index.ts";
import { readRolledUp, rolledUpBars } from "../src/http/derived.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { runIngest } from "../src/pipeline/ingest.ts";
import { csvSource, csvSourceSchema } from "../src/sources/csv.ts";
import { parsePgUrl } from "../src/stores/postgres/index.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import { tempDir, writeFile } from "./helpers.ts";
import { STORES } from "./stores.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const HOUR = 3_600_000;
const at = (iso: string) => Date.parse(iso);
const iso = (t: number) => new Date(t).toISOString();
const d = (date: string) => at(`${date}T00:00:00Z`);
const run = (from: string, to: string, sessions: number, bars = sessions, trailing = false) => ({ from, to, units: sessions, sessions, bars, trailing });
/** `n` instants `stepMs` apart from `start`. */
const every = (start: string, n: number, stepMs: number) => Array.from({ length: n }, (_, k) => at(start) + k * stepMs);

describe("the market files: around the clock is data", () => {
  test("FX is overnight 17:00-17:00 New York on Mon-Fri; CRYPTO 00:00-24:00 UTC every day; neither has pre or post", () => {
    const fx = marketInfo("FX")!;
    const crypto = marketInfo("CRYPTO")!;
    expect([fx.timeZone, fx.phases.open.from, fx.phases.open.to, isOvernight(fx.phases.open), fx.tradingWeekdays]).toEqual(["America/New_York", "17:00", "17:00", true, ["Mon", "Tue", "Wed", "Thu", "Fri"]]);
    expect([crypto.timeZone, crypto.phases.open.from, crypto.phases.open.to, isOvernight(crypto.phases.open), crypto.tradingWeekdays?.length]).toEqual(["UTC", "00:00", "24:00", false, 7]);
    expect([fx.phases.pre, fx.phases.post, crypto.phases.pre, crypto.phases.post]).toEqual([undefined, undefined, undefined, undefined]);
    for (const m of [fx, crypto]) expect(m.notes!.join(" ")).not.toContain("PLACEHOLDER");
    // On one axis from the trade date's local midnight: FX's day is the 24 hours before 17:00.
    expect(phaseAxis(fx.phases)).toEqual([{ from: -7 * HOUR, to: 17 * HOUR }]);
    expect(phaseAxis(crypto.phases)).toEqual([{ from: 0, to: 24 * HOUR }]);
  });

  test("another market of either kind is one file; a day longer than 24 hours or out of order is refused", () => {
    const base = { ...marketInfo("FX")!, code: "CMEFX", symbols: { suffix: "CMF", aliases: [] } };
    const file = (phases: object, extra: object = {}) => v.parse(MarketFileSchema, { ...base, ...extra, phases: { sources: ["test"], ...phases } }) as MarketFile;
    // A futures-like week: 17:00 the evening before to 16:00, a pre phase before the open and a post after the close.
    const futures = file({ pre: { from: "16:30", to: "17:00", what: "pre" }, open: { from: "17:00", to: "16:00", what: "overnight" }, post: { from: "16:00", to: "16:15", what: "post" } });
    expect(phaseProblem(futures)).toBeUndefined();
    expect(phaseAxis(futures.phases)).toEqual([
      { from: -7.5 * HOUR, to: -7 * HOUR },
      { from: -7 * HOUR, to: 16 * HOUR },
      { from: 16 * HOUR, to: 16.25 * HOUR },
    ]);
    // Its post would run into the next day's pre (16:00-16:45 after a 16:30 pre): 24 h 15 min.
    const tooLong = file({ pre: { from: "16:30", to: "17:00", what: "pre" }, open: { from: "17:00", to: "16:00", what: "x" }, post: { from: "16:00", to: "16:45", what: "post" } });
    expect(phaseProblem(tooLong)).toBe("the CMEFX phases are not contiguous and in order");
    expect(phaseProblem(file({ open: { from: "09:00", to: "24:00", what: "to midnight" } }))).toBeUndefined();
    expect(phaseProblem(file({ open: { from: "09:00", to: "17:00", what: "x" } }, { tradingWeekdays: ["Mon", "Mon"] }))).toBe("CMEFX lists a day twice in tradingWeekdays");
    expect(v.safeParse(MarketFileSchema, { ...base, phases: { sources: [], open: { from: "24:00", to: "17:00", what: "x" } } }).success).toBe(false); // 24:00 only ends a phase
    expect(v.safeParse(MarketFileSchema, { ...base, tradingWeekdays: ["Sunday"] }).success).toBe(false);
    expect(v.safeParse(MarketFileSchema, { ...base, tradingWeekdays: [] }).success).toBe(false);
  });
});

describe("gaps around the clock", () => {
  test("FX daily: the weekend is never a gap, a missing Wednesday is", () => {
    const now = at("2025-01-13T23:00:00Z"); // after Monday's 17:00 close
    const week = ["2025-01-06", "2025-01-07", "2025-01-08", "2025-01-09", "2025-01-10", "2025-01-13"];
    expect(findGaps("FX", "1d", week.map(d), now)).toEqual([]);
    expect(findGaps("FX", "1d", week.filter((x) => x !== "2025-01-08").map(d), now)).toEqual([run("2025-01-08", "2025-01-08", 1)]);
    expect(latestCompletedSession("FX", at("2025-01-11T12:00:00Z"))).toBe("2025-01-10"); // Saturday: Friday's
    expect(latestCompletedSession("FX", at("2025-01-12T23:00:00Z"))).toBe("2025-01-10"); // Monday's session has opened, not closed
    expect(latestCompletedSession("FX", at("2025-01-13T22:00:00Z"))).toBe("2025-01-13");
  });

  test("FX hourly: 24 bars a session; a Sunday-evening bar counts for Monday; a missing Tuesday is one run", () => {
    expect(expectedUnits("FX", "1h", "2025-01-04", "2025-01-08")).toEqual([
      { key: "2025-01-06", from: "2025-01-06", to: "2025-01-06", sessions: 1, bars: 24 },
      { key: "2025-01-07", from: "2025-01-07", to: "2025-01-07", sessions: 1, bars: 24 },
      { key: "2025-01-08", from: "2025-01-08", to: "2025-01-08", sessions: 1, bars: 24 },
    ]);
    expect(barDate("FX", "1h", at("2025-01-05T22:00:00Z"))).toBe("2025-01-06");
    expect(barDate("FX", "1h", at("2025-07-06T21:00:00Z"))).toBe("2025-07-07"); // summer: 17:00 EDT
    const w = unitWindow("FX", "1h", "2025-01-06");
    expect([iso(w.from), iso(w.to)]).toEqual(["2025-01-05T22:00:00.000Z", "2025-01-06T22:00:00.000Z"]);
    const monday = every("2025-01-05T22:00:00Z", 24, HOUR);
    const wednesday = every("2025-01-07T22:00:00Z", 24, HOUR);
    expect(findGaps("FX", "1h", [...monday, ...wednesday], at("2025-01-08T22:00:00Z"))).toEqual([run("2025-01-07", "2025-01-07", 1, 24)]);
    // Weekly: one unit a week of five sessions.
    expect(expectedUnits("FX", "1w", "2025-01-06", "2025-01-12")).toEqual([{ key: "2025-01-06", from: "2025-01-06", to: "2025-01-10", sessions: 5, bars: 1 }]);
  });

  test("CRYPTO: a missing Saturday is a gap; every day of a week is a session", () => {
    const now = at("2025-01-07T00:00:00Z"); // Monday's UTC day has ended
    expect(findGaps("CRYPTO", "1d", ["2025-01-03", "2025-01-05", "2025-01-06"].map(d), now)).toEqual([run("2025-01-04", "2025-01-04", 1)]);
    expect(findGaps("CRYPTO", "1d", ["2025-01-03", "2025-01-04", "2025-01-05", "2025-01-06"].map(d), now)).toEqual([]);
    expect(findGaps("CRYPTO", "1d", ["2025-01-03"].map(d), now)).toEqual([run("2025-01-04", "2025-01-06", 3, 3, true)]);
    expect(expectedUnits("CRYPTO", "1w", "2025-01-06", "2025-01-19")).toEqual([
      { key: "2025-01-06", from: "2025-01-06", to: "2025-01-12", sessions: 7, bars: 1 },
      { key: "2025-01-13", from: "2025-01-13", to: "2025-01-19", sessions: 7, bars: 1 },
    ]);
    // Hourly: a UTC day of 24 bars; Saturday without any is a run of 24.
    const fri = every("2025-01-03T00:00:00Z", 24, HOUR);
    const sun = every("2025-01-05T00:00:00Z", 24, HOUR);
    expect(findGaps("CRYPTO", "1h", [...fri, ...sun], at("2025-01-06T00:00:00Z"))).toEqual([run("2025-01-04", "2025-01-04", 1, 24)]);
    expect(latestCompletedSession("CRYPTO", at("2025-01-04T00:00:00Z"))).toBe("2025-01-03");
  });
});

describe("a round trip through SQLite: FX hour bars from a CSV, daily and weekly bars on read", () => {
  const dir = tempDir("ticksync-24h-");
  let store: Store;
  let app: ReturnType<typeof createApp>;
  const NOW = at("2025-01-09T23:00:00Z"); // Thursday 18:00 New York: Thursday's session has closed
  // Monday's session (Sunday 22:00Z onwards) to Wednesday's close, every hour: 72 bars; the hour
  // before the Sunday open (a stray quote) too. Price 1 + k/1000, volume 1 each.
  const hours = every("2025-01-05T21:00:00Z", 73, HOUR);

  beforeAll(async () => {
    const rows = hours.map((t, k) => `EURGBP,${iso(t)},${1 + k / 1000},${1.0005 + k / 1000},${0.9995 + k / 1000},${1 + k / 1000},1`);
    writeFile(join(dir, "fx", "eurgbp.csv"), ["symbol,ts,open,high,low,close,volume", ...rows].join("\n") + "\n");
    // CRYPTO daily bars, Friday then Monday: the ingest's own gap check sees the weekend missing.
    writeFile(join(dir, "crypto", "btc.csv"), ["symbol,ts,open,high,low,close,volume", "BTC-USDT,2025-01-03,100,101,99,100,5", "BTC-USDT,2025-01-06,100,101,99,100,5"].join("\n") + "\n");
    store = sqliteStore(`sqlite:${join(dir, "store.db")}`);
    await store.migrate();
    const columns = { symbol: "symbol", ts: "ts", open: "open", high: "high", low: "low", close: "close", volume: "volume" };
    const fx = v.parse(csvSourceSchema, { type: "csv", path: join(dir, "fx"), layout: "generic", columns, market: "FX", interval: "1h" });
    const fxRun = await runIngest({ store, source: csvSource("fxcsv", fx) });
    expect([fxRun.outcome, fxRun.inserted]).toEqual(["succeeded", 73]);
    const crypto = v.parse(csvSourceSchema, { type: "csv", path: join(dir, "crypto"), layout: "generic", columns, market: "CRYPTO" });
    const cryptoRun = await runIngest({ store, source: csvSource("cryptocsv", crypto) });
    expect([cryptoRun.outcome, cryptoRun.inserted, cryptoRun.quality?.rules]).toEqual(["succeeded", 2, { gap: 2 }]); // Saturday and Sunday
    app = createApp({ store, metrics: ticksyncMetrics(), now: () => NOW, indicators: { default: ["sma:3"], universes: {} } });
  });
  afterAll(async () => {
    await store.close();
  });

  // The JSON API through the typed client (src/http/client), in process.
  const answer = async <T>(call: Promise<{ data?: T; response: Response }>) => {
    const { data, response } = await call;
    return { status: response.status, body: data! };
  };
  const bars = (query: { symbol: string; interval: "1h" | "1d" | "1w"; limit?: string }) => answer(apiClient({ app }).GET("/api/bars", { params: { query } }));
  const gaps = (query: { symbol: string; interval?: "1h" }) => answer(apiClient({ app }).GET("/api/gaps", { params: { query } }));

  test("the pair is stored as EURGBP.FX, its hour bars as they came", async () => {
    const { status, body } = await bars({ symbol: "EURGBP.FX", interval: "1h", limit: "1000" });
    expect(status).toBe(200);
    expect(body.rolledUpFrom).toBeUndefined();
    expect(body.data.length).toBe(73);
    expect(body.data[1]).toMatchObject({ symbol: "EURGBP.FX", interval: "1h", ts: "2025-01-05T22:00:00.000Z" });
  });

  test("1d on read: three bars of 17:00-17:00 New York, dated Monday to Wednesday; the hour before the Sunday open in none", async () => {
    const { status, body } = await bars({ symbol: "EURGBP.FX", interval: "1d" });
    expect(status).toBe(200);
    expect(body.rolledUpFrom).toBe("1h");
    const rounded = (x: number) => Math.round(x * 10_000) / 10_000;
    expect(body.data.map((b) => [b.ts, rounded(b.open), rounded(b.high), rounded(b.low), rounded(b.close), b.volume])).toEqual([
      ["2025-01-06T00:00:00.000Z", 1.001, 1.0245, 1.0005, 1.024, 24], // hours 1..24: Sunday 22:00Z to Monday 21:00Z
      ["2025-01-07T00:00:00.000Z", 1.025, 1.0485, 1.0245, 1.048, 24],
      ["2025-01-08T00:00:00.000Z", 1.049, 1.0725, 1.0485, 1.072, 24],
    ]);
  });

  test("1w on read: the week from the Sunday open, dated by its first trade date", async () => {
    const { body } = await bars({ symbol: "EURGBP.FX", interval: "1w" });
    expect(body.rolledUpFrom).toBe("1h");
    expect(body.data.map((b) => [b.ts, b.open, b.close, b.volume])).toEqual([["2025-01-06T00:00:00.000Z", 1.001, 1.072, 72]]);
  });

  test("gaps: Thursday's session has closed without a bar (24 hours missing); the weekend before is none", async () => {
    const { status, body } = await gaps({ symbol: "EURGBP.FX", interval: "1h" });
    expect(status).toBe(200);
    expect(body.data).toEqual([{ source: "fxcsv", symbol: "EURGBP.FX", market: "FX", interval: "1h", from: "2025-01-09", to: "2025-01-09", units: 1, sessions: 1, bars: 24, trailing: true }]);
    const crypto = (await gaps({ symbol: "BTC-USDT.CRYPTO" })).body;
    expect(crypto.data[0]).toEqual({ source: "cryptocsv", symbol: "BTC-USDT.CRYPTO", market: "CRYPTO", interval: "1d", from: "2025-01-04", to: "2025-01-05", units: 2, sessions: 2, bars: 2, trailing: false });
  });
});

const pg = STORES.find((x) => x.kind === "postgres")!;

/** `n` one-minute bars of a symbol from `start` (UTC ISO), values varying so order mistakes show. */
function minuteBars(symbol: string, start: string, n: number, seed: number): Bar[] {
  return every(start, n, 60_000).map((ts, k) => {
    const mid = 1 + ((seed + k) % 97) / 1000;
    return { source: "s", symbol, interval: "1m", ts, open: mid, high: mid + 0.002, low: mid - 0.002, close: mid + 0.001, volume: 1 + ((seed + k) % 5) };
  });
}

describe.skipIf(pg.unavailable !== null)("materialised rollups (PostgreSQL) follow FX and CRYPTO sessions", () => {
  const dir = tempDir("ticksync-24h-pg-");
  const sql = pg.unavailable === null ? postgres(parsePgUrl(process.env.TICKSYNC_TEST_PG_URL!).url, { max: 1, onnotice: () => {} }) : null!;
  const url = pg.unavailable === null ? pg.freshUrl(dir) : "";
  let store: Store;
  // FX: Friday's last hour and the hour after the close, a Saturday half hour, the hour before the
  // Sunday open and Monday's first three hours. CRYPTO: the same weekend, both ISO weeks around it.
  const FX = [
    ...minuteBars("EURGBP.FX", "2025-01-10T21:00:00Z", 120, 0),
    ...minuteBars("EURGBP.FX", "2025-01-11T12:00:00Z", 30, 200),
    ...minuteBars("EURGBP.FX", "2025-01-12T21:00:00Z", 240, 300),
  ];
  const CRYPTO = [...minuteBars("BTC-USDT.CRYPTO", "2025-01-04T23:00:00Z", 120, 0), ...minuteBars("BTC-USDT.CRYPTO", "2025-01-12T23:00:00Z", 120, 500)];

  beforeAll(async () => {
    store = pg.open(url);
    await store.migrate();
    const bars = [...FX, ...CRYPTO];
    const runId = await store.startRun({ kind: "ingest", source: "test" });
    await store.commitBatch({ runId, source: "test", bars, quarantine: [], read: bars.length });
    await store.finishRun(runId, { outcome: "succeeded", read: bars.length, inserted: bars.length, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
    await store.rollUp?.();
  });
  afterAll(async () => {
    await store?.close().catch(() => {});
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${parsePgUrl(url).schema}" CASCADE`);
    await sql.end();
  });

  test("every coarser interval, served from the table, equals the rollup on read and domain/rollup.ts", async () => {
    for (const [symbol, market, bars] of [["EURGBP.FX", "FX", FX], ["BTC-USDT.CRYPTO", "CRYPTO", CRYPTO]] as const) {
      for (const interval of ["5m", "15m", "1h", "1d", "1w", "1mo"] as Interval[]) {
        const q = { symbol, interval, limit: 1000 };
        const stored = (await rolledUpBars(store, q))!;
        const onRead = await readRolledUp(store, { ...q, market, base: "1m" });
        expect([symbol, interval, stored.materialised]).toEqual([symbol, interval, true]);
        expect(stored.bars).toEqual(onRead.bars);
        expect(stored.excluded).toBe(onRead.excluded);
        expect(stored.bars.map((b) => [b.ts, b.volume])).toEqual(rollup(bars, interval, market).map((b) => [b.ts, b.volume]));
      }
    }
    // Hand-checked: FX's Friday bar (16:00-17:00 New York) and Monday's (from Sunday 17:00 = 22:00Z);
    // the Friday evening, Saturday and Sunday afternoon bars are in none. CRYPTO: Saturday, Sunday, Monday.
    const fxDays = (await rolledUpBars(store, { symbol: "EURGBP.FX", interval: "1d", limit: 10 }))!;
    expect(fxDays.bars.map((b) => iso(b.ts))).toEqual(["2025-01-10T00:00:00.000Z", "2025-01-13T00:00:00.000Z"]);
    expect(fxDays.excluded).toBe(60 + 30 + 60);
    const fxWeeks = (await rolledUpBars(store, { symbol: "EURGBP.FX", interval: "1w", limit: 10 }))!;
    expect(fxWeeks.bars.map((b) => iso(b.ts))).toEqual(["2025-01-06T00:00:00.000Z", "2025-01-13T00:00:00.000Z"]);
    const cryptoDays = (await rolledUpBars(store, { symbol: "BTC-USDT.CRYPTO", interval: "1d", limit: 10 }))!;
    expect(cryptoDays.bars.map((b) => iso(b.ts))).toEqual(["2025-01-04T00:00:00.000Z", "2025-01-05T00:00:00.000Z", "2025-01-12T00:00:00.000Z", "2025-01-13T00:00:00.000Z"]);
    const cryptoWeeks = (await rolledUpBars(store, { symbol: "BTC-USDT.CRYPTO", interval: "1w", limit: 10 }))!;
    expect(cryptoWeeks.bars.map((b) => iso(b.ts))).toEqual(["2024-12-30T00:00:00.000Z", "2025-01-06T00:00:00.000Z", "2025-01-13T00:00:00.000Z"]);
  });
});
