// Gap detection over the exchange calendars: a holiday is not a gap, a missing ordinary session
// is; the trailing gap runs to the latest completed session. Then the scanner over a real SQLite
// store: the cheap count check, the drill-down, and rescans that only look at what changed.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Bar, Interval } from "../src/domain/bar.ts";
import { countSessions, expectedUnits, findGaps, latestCompletedSession } from "../src/domain/gaps.ts";
import { createGapScanner } from "../src/pipeline/gaps.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import { tempDir } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const d = (date: string) => Date.parse(`${date}T00:00:00Z`);
const run = (from: string, to: string, sessions: number, bars = sessions, trailing = false) => ({ from, to, units: sessions, sessions, bars, trailing });

describe("sessions from the calendar", () => {
  test("counts skip weekends and holidays", () => {
    // NYSE 2024-11-25..29: Thanksgiving (28th) closed.
    expect(countSessions("NYSE", "2024-11-25", "2024-11-29")).toBe(4);
    // WSE 2024-12-23..2025-01-03: 24, 25, 26, 31 Dec and 1 Jan closed.
    expect(countSessions("WSE", "2024-12-23", "2025-01-03")).toBe(5);
    expect(expectedUnits("NYSE", "1h", "2024-11-29", "2024-11-29")).toEqual([{ key: "2024-11-29", from: "2024-11-29", to: "2024-11-29", sessions: 1, bars: 4 }]);
  });

  test("latest completed session", () => {
    expect(latestCompletedSession("WSE", Date.parse("2025-01-08T12:00:00Z"))).toBe("2025-01-07");
    expect(latestCompletedSession("WSE", Date.parse("2025-01-08T16:00:00Z"))).toBe("2025-01-08"); // 17:00 CET close
    expect(latestCompletedSession("NYSE", Date.parse("2024-11-29T18:00:00Z"))).toBe("2024-11-29"); // 13:00 EST early close
    expect(latestCompletedSession("NYSE", Date.parse("2024-11-29T17:59:59Z"))).toBe("2024-11-27");
  });
});

describe("findGaps", () => {
  const now = Date.parse("2024-12-04T12:00:00Z");
  test("daily: Thanksgiving is no gap, a missing Wednesday is", () => {
    const ts = ["2024-11-25", "2024-11-26", "2024-11-29", "2024-12-02", "2024-12-03"].map(d);
    expect(findGaps("NYSE", "1d", ts, now)).toEqual([run("2024-11-27", "2024-11-27", 1)]);
  });

  test("WSE Christmas and New Year: only 2024-12-30 is missing; trailing sessions up to the latest completed one", () => {
    const ts = ["2024-12-23", "2024-12-27", "2025-01-02"].map(d);
    // 2025-01-06 (Epiphany) is closed, 2025-01-08 has not closed at 12:00Z.
    expect(findGaps("WSE", "1d", ts, Date.parse("2025-01-08T12:00:00Z"))).toEqual([
      run("2024-12-30", "2024-12-30", 1),
      run("2025-01-03", "2025-01-07", 2, 2, true),
    ]);
  });

  test("intraday: a session with no bar at all, counted in the bars it should hold", () => {
    const ts = [
      ...["14:30", "15:30", "16:30", "17:30", "18:30", "19:30", "20:30"].map((t) => Date.parse(`2024-11-27T${t}:00Z`)),
      Date.parse("2024-11-29T14:30:00Z"), // half day: one bar is enough to be present
      Date.parse("2024-12-03T14:30:00Z"),
      Date.parse("2024-12-03T12:00:00Z"), // pre-market bar
    ];
    expect(findGaps("NYSE", "1h", ts, now)).toEqual([run("2024-12-02", "2024-12-02", 1, 7)]);
    // 1m: the half-day session 2024-11-29 holds 210 bars, a full one 390.
    expect(findGaps("NYSE", "1m", [Date.parse("2024-11-27T14:30:00Z"), Date.parse("2024-12-03T14:30:00Z")], now)).toEqual([
      { from: "2024-11-29", to: "2024-12-02", units: 2, sessions: 2, bars: 600, trailing: false },
    ]);
  });

  test("weekly: a week with sessions but no bar; the Christmas week 2024 at WSE still had sessions", () => {
    const ts = ["2024-12-09", "2024-12-23", "2025-01-02"].map(d);
    expect(findGaps("WSE", "1w", ts, Date.parse("2025-01-03T20:00:00Z"))).toEqual([
      { from: "2024-12-16", to: "2024-12-20", units: 1, sessions: 5, bars: 1, trailing: false },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------

const dir = tempDir("ticksync-gaps-");
const stores: Store[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
});

async function freshStore(): Promise<{ store: Store; queries: () => number; put: (bars: Bar[]) => Promise<void> }> {
  const store = sqliteStore(`sqlite:${join(dir, `s-${stores.length}.db`)}`);
  stores.push(store);
  await store.migrate();
  let n = 0;
  const counting = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "queryBars") return (q: Parameters<Store["queryBars"]>[0]) => (n++, target.queryBars(q));
      return Reflect.get(target, prop, receiver);
    },
  });
  const put = async (bars: Bar[]) => {
    const runId = await store.startRun({ kind: "ingest", source: "t" });
    await store.commitBatch({ runId, source: "t", bars, quarantine: [], read: bars.length });
  };
  return { store: counting, queries: () => n, put };
}

const bar = (symbol: string, interval: Interval, ts: number): Bar => ({ source: "t", symbol, interval, ts, open: 1, high: 1, low: 1, close: 1, volume: 1 });

describe("gap scanner over a SQLite store", () => {
  test("a complete series is settled by its count; a gappy one is read, and rescans redo only what changed", async () => {
    const { store, queries, put } = await freshStore();
    const nyse = ["2024-11-25", "2024-11-26", "2024-11-27", "2024-11-29", "2024-12-02"];
    await put(nyse.map((x) => bar("AAPL.US", "1d", d(x))));
    await put(["2024-11-25", "2024-11-26", "2024-11-29", "2024-12-02"].map((x) => bar("MSFT.US", "1d", d(x))));
    const scanner = createGapScanner(store, { now: () => Date.parse("2024-12-03T12:00:00Z") });

    const first = await scanner.scanAll();
    const aapl = first.find((g) => g.symbol === "AAPL.US")!;
    const msft = first.find((g) => g.symbol === "MSFT.US")!;
    expect(aapl).toMatchObject({ market: "NYSE", interval: "1d", expected: 5, bars: 5, runs: [], missingBars: 0 });
    expect(msft).toMatchObject({ expected: 5, bars: 4, runs: [run("2024-11-27", "2024-11-27", 1)], missingSessions: 1, missingBars: 1 });
    expect(queries()).toBe(1); // AAPL's count matched the calendar: only MSFT was read

    // Nothing changed: no reads at all.
    await scanner.scanAll();
    expect(queries()).toBe(1);

    // The hole is filled and a day added: only the old hole and the new day are probed.
    await put([bar("MSFT.US", "1d", d("2024-11-27")), bar("MSFT.US", "1d", d("2024-12-03"))]);
    const later = createGapScanner(store, { now: () => Date.parse("2024-12-05T12:00:00Z") });
    expect((await later.scan({ symbol: "MSFT.US" }))[0]!.runs).toEqual([run("2024-12-04", "2024-12-04", 1, 1, true)]);
    const before = queries();
    expect((await scanner.scan({ symbol: "MSFT.US" }))[0]!.runs).toEqual([]);
    expect(queries()).toBe(before); // its count matches the calendar now: nothing read
  });

  test("intraday series are probed a session at a time, and a rescan after new bars probes only the new sessions", async () => {
    const { store, queries, put } = await freshStore();
    const at = (s: string) => Date.parse(s);
    await put([at("2024-06-03T07:00:00Z"), at("2024-06-03T08:00:00Z"), at("2024-06-05T07:00:00Z")].map((t) => bar("PKN.WA", "1h", t)));
    const scanner = createGapScanner(store, { now: () => at("2024-06-05T16:00:00Z") });
    const [g] = await scanner.scan({ market: "WSE", interval: "1h" });
    expect(g!.runs).toEqual([run("2024-06-04", "2024-06-04", 1, 8)]);
    expect(queries()).toBe(3); // one probe per session 06-03, 06-04, 06-05
    await put([bar("PKN.WA", "1h", at("2024-06-06T07:00:00Z")), bar("PKN.WA", "1h", at("2024-06-07T07:00:00Z"))]);
    const [h] = await scanner.scan({ symbol: "PKN.WA" });
    expect(h!.runs).toEqual([run("2024-06-04", "2024-06-04", 1, 8)]);
    expect(queries()).toBe(3 + 3); // the old hole, 06-06 and 06-07
    expect(await scanner.scan({ market: "NYSE" })).toEqual([]);
  });
});
