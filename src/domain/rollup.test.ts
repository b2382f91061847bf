// Rollups along exchange sessions: intraday buckets from the open in exchange time across both
// DST changes (the US and the EU change on different weekends), half-day sessions, daily bars as
// sessions, weekly and monthly bars around holidays. Instants are written out in UTC by hand.
import { describe, expect, test } from "bun:test";
import { INTERVAL_MS, type Bar, type Interval } from "./bar.ts";
import { bucketOf, bucketSpan, canRollUp, coveringSpan, createDailyRoller, createRoller, dailyBucket, outOfSessionSpan, rollup, rollupSources } from "./rollup.ts";
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
  // Bars every 11 minutes (and a daily bar every day) through 2024: every DST change, half day and
  // holiday of the year, Tokyo's lunch breaks and its change of close on 2024-11-05, the FX roll
  // and weekends, CRYPTO's UTC days.
  const year = { from: Date.parse("2024-01-01T00:00:00Z"), to: Date.parse("2025-01-01T00:00:00Z") };
  for (const market of ["WSE", "NYSE", "TSE", "FX", "CRYPTO"] as const)
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

describe("a session with a lunch break (Tokyo, 09:00-11:30 and 12:30-15:30 JST)", () => {
  // 2025-06-02, a Monday: 150 morning minutes from 00:00Z, 180 afternoon minutes from 03:30Z.
  const morning = minutes("2025-06-02T00:00:00Z", 150);
  const afternoon = minutes("2025-06-02T03:30:00Z", 180, "s", 150);

  test("1h buckets start again after lunch and none spans it", () => {
    const out = rollup([...morning, ...afternoon], "1h", "TSE");
    expect(out.map(shape)).toEqual([
      ["2025-06-02T00:00:00.000Z", 100, 159.5, 99.5, 159.25, 600], // 09:00-10:00
      ["2025-06-02T01:00:00.000Z", 160, 219.5, 159.5, 219.25, 600], // 10:00-11:00
      ["2025-06-02T02:00:00.000Z", 220, 249.5, 219.5, 249.25, 300], // 11:00-11:30, cut at lunch
      ["2025-06-02T03:30:00.000Z", 250, 309.5, 249.5, 309.25, 600], // 12:30-13:30
      ["2025-06-02T04:30:00.000Z", 310, 369.5, 309.5, 369.25, 600],
      ["2025-06-02T05:30:00.000Z", 370, 429.5, 369.5, 429.25, 600], // 14:30-15:30
    ]);
    expect(bucketOf(Date.parse("2025-06-02T02:29:00Z"), "1m", "1h", "TSE")).toEqual({ ts: Date.parse("2025-06-02T02:00:00Z"), end: Date.parse("2025-06-02T02:30:00Z") });
    expect(bucketSpan(Date.parse("2025-06-02T02:00:00Z"), "1m", "1h", "TSE")).toEqual({ start: Date.parse("2025-06-02T02:00:00Z"), end: Date.parse("2025-06-02T02:30:00Z") });
  });

  test("one 1d bar for the session; a bar inside the break is left out, as one stretch", () => {
    const lunch = minutes("2025-06-02T02:45:00Z", 1, "s", 999);
    const roller = createRoller("1m", "1d", "TSE");
    for (const b of [...morning, ...lunch, ...afternoon]) roller.push(b);
    expect(roller.drain(Infinity).map(shape)).toEqual([["2025-06-02T00:00:00.000Z", 100, 429.5, 99.5, 429.25, 3300]]);
    expect(roller.excluded).toBe(1);
    expect(bucketOf(lunch[0]!.ts, "1m", "1h", "TSE")).toBeNull();
    expect(outOfSessionSpan("TSE", lunch[0]!.ts)).toEqual({ start: Date.parse("2025-06-02T02:30:00Z"), end: Date.parse("2025-06-02T03:30:00Z") });
  });

  test("a clock-aligned hour bar running into the afternoon belongs to it", () => {
    // 12:00-13:00 JST overlaps the afternoon part only: its bucket starts at 12:30.
    expect(bucketOf(Date.parse("2025-06-02T03:00:00Z"), "1h", "1d", "TSE")).toEqual({ ts: Date.parse("2025-06-02T00:00:00Z"), end: Date.parse("2025-06-02T06:30:00Z") });
    expect(bucketOf(Date.parse("2025-06-02T03:00:00Z"), "15m", "1h", "TSE")).toBeNull(); // 12:00-12:15: lunch
  });
});

// ---------------------------------------------------------------------------------------------
// Around the clock. FX: a trade date D is [D-1 17:00, D 17:00) New York (22:00Z in winter), so a
// daily bar runs 17:00 to 17:00 and a week from the Sunday open to the Friday close, dated by its
// first trade date. CRYPTO: UTC days, ISO weeks, calendar months, weekends included.

/** `count` bars of `stepMs` from `start` (UTC ISO), numbered as `minutes` numbers them. */
function steps(interval: Interval, stepMs: number, start: string, count: number, firstIndex = 0): Bar[] {
  return minutes(start, count, "s", firstIndex).map((b, k) => ({ ...b, interval, ts: Date.parse(start) + k * stepMs }));
}

describe("FX: sessions from 17:00 New York", () => {
  test("1m → 1d across the Sunday open: Sunday evening is Monday's bar; before the open nothing", () => {
    // Sunday 2025-01-05 21:00Z (16:00 New York) to Wednesday 23:00Z: 60 minutes before the open,
    // Monday's and Tuesday's 1,440 each, 60 of Wednesday's.
    const bars = minutes("2025-01-05T21:00:00Z", 60 + 2 * 1440 + 60);
    const roller = createRoller("1m", "1d", "FX");
    for (const b of bars) roller.push(b);
    const out = roller.drain(Infinity);
    expect(roller.excluded).toBe(60);
    expect(out.map(shape)).toEqual([
      ["2025-01-06T00:00:00.000Z", 160, 1599.5, 159.5, 1599.25, 14_400],
      ["2025-01-07T00:00:00.000Z", 1600, 3039.5, 1599.5, 3039.25, 14_400],
      ["2025-01-08T00:00:00.000Z", 3040, 3099.5, 3039.5, 3099.25, 600],
    ]);
    // Monday's bar spans Sunday 17:00 to Monday 17:00 New York.
    const span = bucketSpan(out[0]!.ts, "1m", "1d", "FX");
    expect([iso(span.start), iso(span.end)]).toEqual(["2025-01-05T22:00:00.000Z", "2025-01-06T22:00:00.000Z"]);
  });

  test("1m → 1h from the open, and nothing after the Friday close", () => {
    const out = rollup(minutes("2025-01-10T20:00:00Z", 180), "1h", "FX"); // Friday 15:00-18:00 New York
    expect(out.map(shape)).toEqual([
      ["2025-01-10T20:00:00.000Z", 100, 159.5, 99.5, 159.25, 600],
      ["2025-01-10T21:00:00.000Z", 160, 219.5, 159.5, 219.25, 600],
    ]);
    // The weekend is one stretch out of session per trade date (Saturday's: Friday 17:00 to Saturday 17:00).
    const sat = outOfSessionSpan("FX", Date.parse("2025-01-11T12:00:00Z"));
    expect([iso(sat.start), iso(sat.end)]).toEqual(["2025-01-10T22:00:00.000Z", "2025-01-11T22:00:00.000Z"]);
    const sun = outOfSessionSpan("FX", Date.parse("2025-01-12T21:59:00Z"));
    expect([iso(sun.start), iso(sun.end)]).toEqual(["2025-01-11T22:00:00.000Z", "2025-01-12T22:00:00.000Z"]);
  });

  test("summer time: Monday's bar starts Sunday 21:00Z (17:00 EDT)", () => {
    const out = rollup(minutes("2025-07-06T20:00:00Z", 120), "1d", "FX");
    expect(out.map(shape)).toEqual([["2025-07-07T00:00:00.000Z", 160, 219.5, 159.5, 219.25, 600]]);
    expect(bucketOf(Date.parse("2025-07-07T20:59:00Z"), "1m", "1h", "FX")).toEqual({ ts: Date.parse("2025-07-07T20:00:00Z"), end: Date.parse("2025-07-07T21:00:00Z") });
  });

  test("1h → 1w: the week from the Sunday open to the Friday close, dated by its Monday", () => {
    const week1 = steps("1h", 60 * MIN, "2025-01-05T22:00:00Z", 120); // Sunday 17:00 to Friday 17:00 New York
    const week2 = steps("1h", 60 * MIN, "2025-01-12T22:00:00Z", 24, 1000); // the next Sunday open to Monday 17:00
    const out = rollup([...week1, ...week2], "1w", "FX");
    expect(out.map(shape)).toEqual([
      ["2025-01-06T00:00:00.000Z", 100, 219.5, 99.5, 219.25, 1200],
      ["2025-01-13T00:00:00.000Z", 1100, 1123.5, 1099.5, 1123.25, 240],
    ]);
    const span = bucketSpan(out[0]!.ts, "1h", "1w", "FX");
    expect([iso(span.start), iso(span.end)]).toEqual(["2025-01-05T22:00:00.000Z", "2025-01-12T22:00:00.000Z"]);
    // The same week from daily bars (dated by trade date, Monday to Friday).
    const days = ["2025-01-06", "2025-01-07", "2025-01-08", "2025-01-09", "2025-01-10"].map((d, i) => daily(d, 10 + i, 20 + i, 5, 11 + i, 100));
    expect(rollup(days, "1w", "FX").map(shape)).toEqual([["2025-01-06T00:00:00.000Z", 10, 24, 5, 15, 500]]);
  });

  test("a month of trade dates: March 2025's first bar is Sunday 2025-03-02 17:00 New York, Monday the 3rd's", () => {
    const out = rollup(steps("1h", 60 * MIN, "2025-02-28T21:00:00Z", 3), "1mo", "FX"); // Friday 16:00, 17:00 (closed), …
    expect(out.map((b) => iso(b.ts))).toEqual(["2025-02-03T00:00:00.000Z"]);
    const march = rollup(steps("1h", 60 * MIN, "2025-03-02T22:00:00Z", 2), "1mo", "FX");
    expect(march.map((b) => iso(b.ts))).toEqual(["2025-03-03T00:00:00.000Z"]);
    const span = bucketSpan(march[0]!.ts, "1h", "1mo", "FX");
    expect([iso(span.start), iso(span.end)]).toEqual(["2025-02-28T22:00:00.000Z", "2025-03-31T21:00:00.000Z"]); // Friday 17:00 EST to Monday 17:00 EDT
  });
});

describe("CRYPTO: UTC days, ISO weeks, every day a session", () => {
  test("1m → 1d over a weekend: Friday, Saturday and Sunday, each a whole UTC day", () => {
    const roller = createRoller("1m", "1d", "CRYPTO");
    for (const b of minutes("2025-01-03T00:00:00Z", 3 * 1440)) roller.push(b);
    const out = roller.drain(Infinity);
    expect(roller.excluded).toBe(0);
    expect(out.map(shape)).toEqual([
      ["2025-01-03T00:00:00.000Z", 100, 1539.5, 99.5, 1539.25, 14_400],
      ["2025-01-04T00:00:00.000Z", 1540, 2979.5, 1539.5, 2979.25, 14_400],
      ["2025-01-05T00:00:00.000Z", 2980, 4419.5, 2979.5, 4419.25, 14_400],
    ]);
    const sat = bucketSpan(out[1]!.ts, "1m", "1d", "CRYPTO");
    expect([iso(sat.start), iso(sat.end)]).toEqual(["2025-01-04T00:00:00.000Z", "2025-01-05T00:00:00.000Z"]);
    expect(rollup(minutes("2025-01-04T10:00:00Z", 120), "1h", "CRYPTO").map((b) => iso(b.ts))).toEqual(["2025-01-04T10:00:00.000Z", "2025-01-04T11:00:00.000Z"]);
  });

  test("1h → 1w: ISO weeks in UTC, Sunday 23:00Z in one, Monday 00:00Z in the next", () => {
    const out = rollup(steps("1h", 60 * MIN, "2025-01-05T22:00:00Z", 4), "1w", "CRYPTO");
    expect(out.map(shape)).toEqual([
      ["2024-12-30T00:00:00.000Z", 100, 101.5, 99.5, 101.25, 20],
      ["2025-01-06T00:00:00.000Z", 102, 103.5, 101.5, 103.25, 20],
    ]);
    const span = bucketSpan(out[1]!.ts, "1h", "1w", "CRYPTO");
    expect([iso(span.start), iso(span.end)]).toEqual(["2025-01-06T00:00:00.000Z", "2025-01-13T00:00:00.000Z"]);
    // A month starting on a Saturday is dated by that Saturday (NYSE's February 2025 by Monday the 3rd).
    const days = [daily("2025-01-31", 1, 2, 1, 2, 5), daily("2025-02-01", 2, 3, 2, 3, 5)];
    expect(rollup(days, "1mo", "CRYPTO").map((b) => iso(b.ts))).toEqual(["2025-01-01T00:00:00.000Z", "2025-02-01T00:00:00.000Z"]);
    expect(rollup(days, "1mo", "NYSE").map((b) => iso(b.ts))).toEqual(["2025-01-02T00:00:00.000Z", "2025-02-03T00:00:00.000Z"]);
  });
});

describe("daily bars to weeks and months from rows (createDailyRoller, dailyBucket)", () => {
  const DAY = 86_400_000;
  test("dailyBucket is bucketOf's bucket for every day around 1970 and 2000-2030, at every kind of calendar", () => {
    const days: number[] = [];
    for (let t = Date.UTC(1969, 10, 1); t < Date.UTC(1970, 2, 1); t += DAY) days.push(t);
    for (let t = Date.UTC(2000, 0, 1); t < Date.UTC(2031, 0, 10); t += DAY) days.push(t);
    for (const market of ["WSE", "NYSE", "TSE", "FX", "CRYPTO"] as const)
      for (const to of ["1w", "1mo"] as const)
        for (const t of days) {
          // A ts inside the day too (daily bars are floored to their UTC date).
          for (const ts of [t, t + 13 * 3_600_000]) {
            const b = bucketOf(ts, "1d", to, market)!;
            const d = dailyBucket(ts, to, market);
            if (d.ts !== b.ts || d.end !== b.end || !(ts >= d.start && ts < d.end)) throw new Error(`${market} ${to} ${new Date(ts).toISOString()}: ${JSON.stringify(d)} vs ${JSON.stringify(b)}`);
          }
        }
  });

  // Two sources with different gaps, optional values present on some days only, across the
  // 2024 Easter Monday holiday (WSE closed 2024-04-01: that week starts on Tuesday), a month end
  // mid-week and both DST changes.
  const bars: Bar[] = [];
  for (let t = Date.UTC(2024, 2, 1), i = 0; t < Date.UTC(2024, 10, 30); t += DAY, i++) {
    const wd = new Date(t).getUTCDay();
    if (wd === 0 || wd === 6 || t === Date.UTC(2024, 3, 1)) continue;
    const base = { symbol: "PKN.WA", interval: "1d" as const, ts: t, open: 50 + i, high: 52 + i + (i % 5), low: 49 + i - (i % 3), close: 51 + i, volume: 1000 + i * 7.25 };
    bars.push({ ...base, source: "a", adjClose: i % 4 === 0 ? null : 50.5 + i, turnover: i % 11 === 0 ? null : 1e5 + i, trades: i % 13 === 0 ? null : 10 + i });
    if (i % 3 !== 1) bars.push({ ...base, source: "b", close: 60 + i, high: 70 + i, volume: 0.1 * i });
  }
  bars.sort((x, y) => x.ts - y.ts || (x.source < y.source ? -1 : 1));

  test("the same bars as createRoller, from Bars and from narrow rows, drained at every watermark", () => {
    for (const to of ["1w", "1mo"] as const) {
      const expected = rollup(bars, to, "WSE");
      if (to === "1w") expect(expected.filter((b) => b.ts === Date.UTC(2024, 3, 2)).length).toBe(2); // Easter week from Tuesday, both sources
      // Rows as a narrow read gives them: no symbol or interval, nulls as null.
      const rows = bars.map((b) => ({ source: b.source, ts: b.ts, open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume, adjClose: b.adjClose ?? null, turnover: b.turnover ?? null, trades: b.trades ?? null }));
      for (const input of [bars, rows])
        for (const chunk of [1, 7, 50, 100_000]) {
          const roller = createDailyRoller(to, "WSE", "PKN.WA");
          const out: Bar[] = [];
          for (let i = 0; i < input.length; i += chunk) {
            const part = input.slice(i, i + chunk);
            roller.push(part);
            out.push(...roller.drain(part[part.length - 1]!.ts));
          }
          out.push(...roller.drain(Infinity));
          expect(out).toEqual(expected);
        }
    }
  });

  test("rows of one series may leave out their source; NaN is absent, as rowToBar reads QuestDB's nulls", () => {
    const one = bars.filter((b) => b.source === "a");
    const roller = createDailyRoller("1w", "WSE", "PKN.WA", "a");
    roller.push(one.map((b) => ({ ts: b.ts, open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume, adjClose: b.adjClose ?? NaN, turnover: b.turnover ?? NaN, trades: b.trades ?? null })));
    expect(roller.drain(Infinity)).toEqual(rollup(one, "1w", "WSE"));
  });
});
