// Rollups along exchange sessions: intraday buckets from the open in exchange time across both
// DST changes (the US and the EU change on different weekends), half-day sessions, daily bars as
// sessions, weekly and monthly bars around holidays. Instants are written out in UTC by hand.
import { describe, expect, test } from "bun:test";
import { INTERVAL_MS, type Bar, type Interval } from "./bar.ts";
import { bucketOf, bucketSpan, canRollUp, coveringSpan, createRoller, outOfSessionSpan, rollup, rollupSources } from "./rollup.ts";
import { testTimeout } from "../../test/timeout.ts";

testTimeout();

const MIN = 60_000;
const iso = (t: number) => new Date(t).toISOString();

/** `count` one-minute bars from `start` (UTC ISO): open = 100 + i, high +0.5, low -0.5, close +0.25, volume 10. */
function minutes(start: string, count: number, source = "s", firstIndex = 0): Bar[] {
  const t0 = Date.parse(start);
  return Array.from({ length: count }, (_, k) => {
    const i = firstIndex + k;
    return { source, symbol: "X", interval: "1m" as Interval, ts: t0 + k * MIN, open: 100 + i, high: 100.5 + i, low: 99.5 + i, close: 100.25 + i, volume: 10 };
  });
}

function daily(date: string, o: number, h: number, l: number, c: number, volume: number, extra: Partial<Bar> = {}): Bar {
  return { source: "s", symbol: "X", interval: "1d", ts: Date.parse(`${date}T00:00:00Z`), open: o, high: h, low: l, close: c, volume, ...extra };
}

const shape = (b: Bar) => [iso(b.ts), b.open, b.high, b.low, b.close, b.volume];

describe("which intervals build which", () => {
  test("intraday from dividing finer intraday; 1d from intraday; 1w and 1mo from intraday or 1d", () => {
    expect(canRollUp("1m", "5m")).toBe(true);
    expect(canRollUp("5m", "15m")).toBe(true);
    expect(canRollUp("15m", "1h")).toBe(true);
    expect(canRollUp("1h", "1d")).toBe(true);
    expect(canRollUp("1d", "1w")).toBe(true);
    expect(canRollUp("1d", "1mo")).toBe(true);
    expect(canRollUp("1w", "1mo")).toBe(false); // weeks straddle months
    expect(canRollUp("1d", "1d")).toBe(false);
    expect(canRollUp("1h", "5m")).toBe(false);
    expect(rollupSources("1w")).toEqual(["1d", "4h", "1h", "30m", "15m", "5m", "2m", "1m"]);
    expect(rollupSources("1h")).toEqual(["30m", "15m", "5m", "2m", "1m"]);
  });

  test("2m, 30m and 4h: only where buckets nest (2m does not divide 5m or 15m)", () => {
    expect(rollupSources("2m")).toEqual(["1m"]);
    expect(rollupSources("5m")).toEqual(["1m"]);
    expect(rollupSources("15m")).toEqual(["5m", "1m"]);
    expect(rollupSources("30m")).toEqual(["15m", "5m", "2m", "1m"]);
    expect(rollupSources("4h")).toEqual(["1h", "30m", "15m", "5m", "2m", "1m"]);
    expect(rollupSources("1d")).toEqual(["4h", "1h", "30m", "15m", "5m", "2m", "1m"]);
    expect(canRollUp("2m", "5m")).toBe(false);
    expect(canRollUp("2m", "15m")).toBe(false);
    expect(canRollUp("4h", "1h")).toBe(false);
    expect(canRollUp("4h", "1mo")).toBe(true);
  });

  // Every pair canRollUp allows: each finer bucket lies inside one coarser bucket, session by
  // session (both grids start at the open; the last bucket of each is cut at the close). The
  // pairs it refuses are shown to straddle, so the rule is not stricter than it must be.
  const intraday = ["1m", "2m", "5m", "15m", "30m", "1h", "4h"] as const;
  for (const market of ["WSE", "NYSE"] as const)
    test(`${market}: intraday buckets nest exactly where canRollUp says (a month with an early close)`, () => {
      const from = Date.parse("2024-11-01T00:00:00Z");
      const to = Date.parse("2024-12-31T00:00:00Z");
      const straddles = new Set<string>();
      let checked = 0;
      for (let ts = from; ts < to; ts += MIN) {
        for (const fine of intraday)
          for (const coarse of intraday) {
            if (INTERVAL_MS[coarse] <= INTERVAL_MS[fine]) continue;
            const f = bucketOf(ts, "1m", fine, market);
            if (f === null) continue;
            const c = bucketOf(ts, "1m", coarse, market)!;
            const nests = f.ts >= c.ts && f.end <= c.end;
            if (canRollUp(fine, coarse)) {
              expect(nests).toBe(true);
              checked++;
            } else if (!nests) straddles.add(`${fine}>${coarse}`);
          }
      }
      expect(checked).toBeGreaterThan(100_000);
      expect([...straddles].sort()).toEqual(["2m>15m", "2m>5m"]);
    });
});

describe("intraday buckets from the session open, in exchange time", () => {
  test("NYSE 1h across the US spring change (2024-03-10): 09:30 EST = 14:30Z before, 09:30 EDT = 13:30Z after", () => {
    const fri = minutes("2024-03-08T14:30:00Z", 390); // 09:30-16:00 EST
    const mon = minutes("2024-03-11T13:30:00Z", 390, "s", 1000); // 09:30-16:00 EDT
    const out = rollup([...fri, ...mon], "1h", "NYSE");
    expect(out.map((b) => iso(b.ts))).toEqual([
      "2024-03-08T14:30:00.000Z", "2024-03-08T15:30:00.000Z", "2024-03-08T16:30:00.000Z", "2024-03-08T17:30:00.000Z",
      "2024-03-08T18:30:00.000Z", "2024-03-08T19:30:00.000Z", "2024-03-08T20:30:00.000Z",
      "2024-03-11T13:30:00.000Z", "2024-03-11T14:30:00.000Z", "2024-03-11T15:30:00.000Z", "2024-03-11T16:30:00.000Z",
      "2024-03-11T17:30:00.000Z", "2024-03-11T18:30:00.000Z", "2024-03-11T19:30:00.000Z",
    ]);
    // First hour: minutes 0..59; the last bucket (15:30-16:00) holds minutes 360..389 only.
    expect(shape(out[0]!)).toEqual(["2024-03-08T14:30:00.000Z", 100, 159.5, 99.5, 159.25, 600]);
    expect(shape(out[6]!)).toEqual(["2024-03-08T20:30:00.000Z", 460, 489.5, 459.5, 489.25, 300]);
    expect(shape(out[7]!)).toEqual(["2024-03-11T13:30:00.000Z", 1100, 1159.5, 1099.5, 1159.25, 600]);
    expect(out.every((b) => b.interval === "1h")).toBe(true);
  });

  test("in the weeks the US has changed and the EU has not, WSE still opens 09:00 CET = 08:00Z", () => {
    // 2024-03-15: NYSE on EDT (13:30Z), WSE on CET (08:00Z); 2024-04-02: WSE on CEST (07:00Z).
    const wse = [...minutes("2024-03-15T08:00:00Z", 480), ...minutes("2024-04-02T07:00:00Z", 480, "s", 1000)];
    const hours = rollup(wse, "1h", "WSE");
    expect(hours.length).toBe(16);
    expect(iso(hours[0]!.ts)).toBe("2024-03-15T08:00:00.000Z");
    expect(iso(hours[7]!.ts)).toBe("2024-03-15T15:00:00.000Z"); // 16:00-17:00 CET
    expect(iso(hours[8]!.ts)).toBe("2024-04-02T07:00:00.000Z");
    const days = rollup(wse, "1d", "WSE");
    // A WSE daily bar is the Warsaw session, at 00:00Z of its date.
    expect(days.map(shape)).toEqual([
      ["2024-03-15T00:00:00.000Z", 100, 579.5, 99.5, 579.25, 4800],
      ["2024-04-02T00:00:00.000Z", 1100, 1579.5, 1099.5, 1579.25, 4800],
    ]);
    const nyse = rollup(minutes("2024-03-15T13:30:00Z", 390), "1h", "NYSE");
    expect(iso(nyse[0]!.ts)).toBe("2024-03-15T13:30:00.000Z");
  });

  test("autumn: EU back on CET (2024-10-27), US still on EDT until 2024-11-03", () => {
    const wse = rollup([...minutes("2024-10-25T07:00:00Z", 60), ...minutes("2024-10-28T08:00:00Z", 60, "s", 100)], "1h", "WSE");
    expect(wse.map((b) => iso(b.ts))).toEqual(["2024-10-25T07:00:00.000Z", "2024-10-28T08:00:00.000Z"]);
    const nyse = rollup([...minutes("2024-11-01T13:30:00Z", 60), ...minutes("2024-11-04T14:30:00Z", 60, "s", 100)], "1h", "NYSE");
    expect(nyse.map((b) => iso(b.ts))).toEqual(["2024-11-01T13:30:00.000Z", "2024-11-04T14:30:00.000Z"]);
  });

  test("half day: NYSE 2024-11-29 closes 13:00 EST, the last hour is 12:30-13:00; after-hours bars are left out", () => {
    const bars = [...minutes("2024-11-29T14:30:00Z", 210), ...minutes("2024-11-29T18:00:00Z", 30, "s", 500)]; // + 13:00-13:30 after-hours
    const roller = createRoller("1m", "1h", "NYSE");
    for (const b of bars) roller.push(b);
    const out = roller.drain(Infinity);
    expect(out.map(shape)).toEqual([
      ["2024-11-29T14:30:00.000Z", 100, 159.5, 99.5, 159.25, 600],
      ["2024-11-29T15:30:00.000Z", 160, 219.5, 159.5, 219.25, 600],
      ["2024-11-29T16:30:00.000Z", 220, 279.5, 219.5, 279.25, 600],
      ["2024-11-29T17:30:00.000Z", 280, 309.5, 279.5, 309.25, 300],
    ]);
    expect(roller.excluded).toBe(30);
    expect(bucketOf(Date.parse("2024-11-29T17:45:00Z"), "1m", "1h", "NYSE")).toEqual({ ts: Date.parse("2024-11-29T17:30:00Z"), end: Date.parse("2024-11-29T18:00:00Z") });
    // The daily bar of a half day ends at the early close.
    expect(rollup(bars, "1d", "NYSE").map(shape)).toEqual([["2024-11-29T00:00:00.000Z", 100, 309.5, 99.5, 309.25, 2100]]);
  });

  test("4h follows the session as 1h does: NYSE 09:30-13:30 and 13:30-16:00; one 09:30-13:00 bucket on the 2024-11-29 half day", () => {
    const full = minutes("2024-11-27T14:30:00Z", 390); // 09:30-16:00 EST
    const half = minutes("2024-11-29T14:30:00Z", 210, "s", 1000); // 09:30-13:00 EST
    expect(rollup([...full, ...half], "4h", "NYSE").map(shape)).toEqual([
      ["2024-11-27T14:30:00.000Z", 100, 339.5, 99.5, 339.25, 2400],
      ["2024-11-27T18:30:00.000Z", 340, 489.5, 339.5, 489.25, 1500],
      ["2024-11-29T14:30:00.000Z", 1100, 1309.5, 1099.5, 1309.25, 2100],
    ]);
    // From 2m and 30m bars rolled up first: the same 4h bars (the buckets nest).
    for (const mid of ["2m", "30m", "1h"] as const) expect(rollup(rollup([...full, ...half], mid, "NYSE"), "4h", "NYSE").map(shape)).toEqual(rollup([...full, ...half], "4h", "NYSE").map(shape));
    // WSE 09:00-17:00 CET: two whole 4h buckets.
    expect(rollup(minutes("2024-11-27T08:00:00Z", 480), "4h", "WSE").map((b) => iso(b.ts))).toEqual(["2024-11-27T08:00:00.000Z", "2024-11-27T12:00:00.000Z"]);
  });

  test("2m and 30m from the open: NYSE 30m 09:30-10:00 … 15:30-16:00, 2m 09:30, 09:32 …", () => {
    const day = minutes("2024-06-03T13:30:00Z", 390);
    const m30 = rollup(day, "30m", "NYSE");
    expect(m30.length).toBe(13);
    expect(shape(m30[0]!)).toEqual(["2024-06-03T13:30:00.000Z", 100, 129.5, 99.5, 129.25, 300]);
    expect(iso(m30[12]!.ts)).toBe("2024-06-03T19:30:00.000Z");
    const m2 = rollup(day, "2m", "NYSE");
    expect(m2.length).toBe(195);
    expect(shape(m2[1]!)).toEqual(["2024-06-03T13:32:00.000Z", 102, 103.5, 101.5, 103.25, 20]);
    expect(rollup(m2, "30m", "NYSE").map(shape)).toEqual(m30.map(shape));
  });

  test("a clock-aligned hour bar that runs into the open counts in the first bucket", () => {
    const h = (ts: string, o: number): Bar => ({ source: "s", symbol: "X", interval: "1h", ts: Date.parse(ts), open: o, high: o + 1, low: o - 1, close: o, volume: 5 });
    const out = rollup([h("2024-06-03T13:00:00Z", 10), h("2024-06-03T14:00:00Z", 11), h("2024-06-03T20:00:00Z", 12), h("2024-06-03T21:00:00Z", 13)], "1d", "NYSE");
    // 13:00Z (09:00 EDT) overlaps the 09:30 open; 20:00Z (16:00 EDT) starts at the close: after-hours.
    expect(out.map(shape)).toEqual([["2024-06-03T00:00:00.000Z", 10, 12, 9, 11, 10]]);
  });

  test("5m from 1m, two sources side by side in (ts, source) order; turnover and trades summed only when every bar has them", () => {
    const a = minutes("2024-06-03T07:00:00Z", 10, "a").map((b) => ({ ...b, turnover: 1000, trades: 3, adjClose: b.close - 1 }));
    const b = minutes("2024-06-03T07:00:00Z", 10, "b").map((x, i) => ({ ...x, turnover: i === 7 ? null : 500 }));
    const out = rollup([...b, ...a], "5m", "WSE");
    expect(out.map((x) => [iso(x.ts), x.source, x.volume, x.turnover, x.trades, x.adjClose])).toEqual([
      ["2024-06-03T07:00:00.000Z", "a", 50, 5000, 15, 103.25],
      ["2024-06-03T07:00:00.000Z", "b", 50, 2500, null, null],
      ["2024-06-03T07:05:00.000Z", "a", 50, 5000, 15, 108.25],
      ["2024-06-03T07:05:00.000Z", "b", 50, null, null, null],
    ]);
  });

  test("drain returns only buckets whose every finer bar has been seen", () => {
    const roller = createRoller("1m", "5m", "WSE");
    const bars = minutes("2024-06-03T07:00:00Z", 12);
    for (const b of bars.slice(0, 7)) roller.push(b);
    expect(roller.drain(bars[6]!.ts).map((b) => iso(b.ts))).toEqual(["2024-06-03T07:00:00.000Z"]);
    expect(roller.drain(bars[6]!.ts)).toEqual([]);
    for (const b of bars.slice(7)) roller.push(b);
    expect(roller.drain(Infinity).map((b) => iso(b.ts))).toEqual(["2024-06-03T07:05:00.000Z", "2024-06-03T07:10:00.000Z"]);
  });
});

describe("weeks and months of sessions", () => {
  test("NYSE Thanksgiving week: Thursday closed, the week is Mon-Wed + Fri, ts = its first session", () => {
    const out = rollup(
      [
        daily("2024-11-25", 10, 12, 9, 11, 100),
        daily("2024-11-26", 11, 13, 10, 12, 200),
        daily("2024-11-27", 12, 15, 11, 14, 300),
        daily("2024-11-29", 14, 14.5, 8, 9, 50, { adjClose: 8.9 }),
        daily("2024-12-02", 9, 10, 8.5, 9.5, 70),
      ],
      "1w",
      "NYSE",
    );
    expect(out.map(shape)).toEqual([
      ["2024-11-25T00:00:00.000Z", 10, 15, 8, 9, 650],
      ["2024-12-02T00:00:00.000Z", 9, 10, 8.5, 9.5, 70],
    ]);
    expect(out[0]!.adjClose).toBe(8.9);
  });

  test("a week whose Monday is a holiday starts on Tuesday (NYSE MLK day 2024-01-15, WSE Easter Monday 2024-04-01)", () => {
    const nyse = rollup([daily("2024-01-16", 1, 2, 1, 2, 1), daily("2024-01-19", 2, 3, 2, 3, 1)], "1w", "NYSE");
    expect(nyse.map((b) => iso(b.ts))).toEqual(["2024-01-16T00:00:00.000Z"]);
    const wse = rollup([daily("2024-04-03", 1, 2, 1, 2, 1), daily("2024-04-02", 1, 1, 1, 1, 1)], "1w", "WSE");
    expect(wse.map(shape)).toEqual([["2024-04-02T00:00:00.000Z", 1, 2, 1, 2, 2]]);
    // Even when the series lacks that Tuesday, the week keeps its calendar start.
    expect(iso(rollup([daily("2024-04-05", 1, 1, 1, 1, 1)], "1w", "WSE")[0]!.ts)).toBe("2024-04-02T00:00:00.000Z");
  });

  test("ISO weeks across a year end: 2024-12-30..2025-01-03 is one week (WSE closed 12-31 and 01-01)", () => {
    const out = rollup([daily("2024-12-30", 5, 6, 4, 5, 10), daily("2025-01-02", 5, 7, 5, 6, 10), daily("2025-01-03", 6, 6, 3, 4, 10)], "1w", "WSE");
    expect(out.map(shape)).toEqual([["2024-12-30T00:00:00.000Z", 5, 7, 3, 4, 30]]);
  });

  test("months: ts is the month's first session (WSE May 2024: 1st and 3rd are holidays → 2nd; NYSE Jan 2024 → 2nd)", () => {
    const wse = rollup([daily("2024-05-02", 10, 11, 9, 10, 1), daily("2024-05-31", 10, 20, 10, 19, 2), daily("2024-06-03", 19, 19, 18, 18, 3)], "1mo", "WSE");
    expect(wse.map(shape)).toEqual([
      ["2024-05-02T00:00:00.000Z", 10, 20, 9, 19, 3],
      ["2024-06-03T00:00:00.000Z", 19, 19, 18, 18, 3],
    ]);
    expect(iso(rollup([daily("2024-01-31", 1, 1, 1, 1, 1)], "1mo", "NYSE")[0]!.ts)).toBe("2024-01-02T00:00:00.000Z");
  });

  test("weekly from intraday across the US change: the sessions of each ISO week by exchange date", () => {
    // Fri 2024-03-08 (EST) and Mon 2024-03-11 (EDT) are in different weeks.
    const out = rollup([...minutes("2024-03-08T20:59:00Z", 1), ...minutes("2024-03-11T13:30:00Z", 1, "s", 1)], "1w", "NYSE");
    expect(out.map((b) => iso(b.ts))).toEqual(["2024-03-04T00:00:00.000Z", "2024-03-11T00:00:00.000Z"]);
  });
});

describe("spans for materialised rollups (bucketSpan, coveringSpan, outOfSessionSpan)", () => {
  // Bars every 11 minutes (and a daily bar every day) through 2024, both markets: every DST change,
  // half day and holiday of the year.
  const year = { from: Date.parse("2024-01-01T00:00:00Z"), to: Date.parse("2025-01-01T00:00:00Z") };
  for (const market of ["WSE", "NYSE"] as const)
    test(`${market}: a bucket's span holds its finer bars and ends where bucketOf says; the covering span holds every bucket of a bar`, () => {
      let checked = 0;
      for (const from of ["1m", "1d"] as const) {
        const step = from === "1m" ? 11 * MIN : 86_400_000;
        for (let ts = year.from; ts < year.to; ts += step) {
          const cover = coveringSpan(ts, from, market);
          for (const to of ["2m", "5m", "15m", "30m", "1h", "4h", "1d", "1w", "1mo"] as const) {
            if (!canRollUp(from, to)) continue;
            const k = bucketOf(ts, from, to, market);
            if (k === null) {
              // Left out: the stretch it lies in holds it and no part of a session.
              const st = outOfSessionSpan(market, ts);
              expect(ts >= st.start && ts < st.end).toBe(true);
              expect(bucketOf(st.start, from, to, market)).toBeNull();
              expect(bucketOf(st.end - MIN, from, to, market)).toBeNull();
              continue;
            }
            const span = bucketSpan(k.ts, from, to, market);
            expect(span.end).toBe(k.end);
            // An intraday bar overlaps its bucket's span (it may start before the open); a daily bar lies in it.
            expect((from === "1m" ? ts + MIN > span.start : ts >= span.start) && ts < span.end).toBe(true);
            expect(span.start >= cover.start && span.end <= cover.end).toBe(true);
            checked++;
          }
        }
      }
      expect(checked).toBeGreaterThan(40_000);
    });
});
