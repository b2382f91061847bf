// Exchange calendars against dates checked by hand on the exchanges' published calendars.
import { test, expect } from "bun:test";
import {
  MARKET_TIMEZONES,
  calendarCoverage,
  isOpen,
  isTradingDay,
  marketPhase,
  nextOpen,
  nextTradingDay,
  phasesOn,
  previousTradingDay,
  sessionFor,
  tradeDate,
  tradeDayStart,
  tradingDaysBetween,
  zonedTimeToUtc,
  type Market,
} from "./calendar.ts";
import { testTimeout } from "../../test/timeout.ts";

testTimeout();

const at = (iso: string) => Date.parse(iso);

test("market time zones", () => {
  expect(MARKET_TIMEZONES).toEqual({
    WSE: "Europe/Warsaw",
    NYSE: "America/New_York",
    NASDAQ: "America/New_York",
    LSE: "Europe/London",
    XETRA: "Europe/Berlin",
    PAR: "Europe/Paris",
    AMS: "Europe/Amsterdam",
    SIX: "Europe/Zurich",
    TSX: "America/Toronto",
    ASX: "Australia/Sydney",
    TSE: "Asia/Tokyo",
    HKEX: "Asia/Hong_Kong",
    FX: "America/New_York",
    CRYPTO: "UTC",
  });
});

test("WSE Easter holidays 2024 (Easter Sunday is March 31)", () => {
  expect(isTradingDay("WSE", "2024-03-28")).toBe(true);
  expect(isTradingDay("WSE", "2024-03-29")).toBe(false); // Good Friday
  expect(isTradingDay("WSE", "2024-04-01")).toBe(false); // Easter Monday
  expect(isTradingDay("WSE", "2024-04-02")).toBe(true);
  expect(isTradingDay("WSE", "2024-05-30")).toBe(false); // Corpus Christi, Easter + 60
  expect(isTradingDay("WSE", "2024-05-31")).toBe(true);
});

test("WSE Easter holidays in other years come from the algorithm", () => {
  // Easter 2025-04-20, 2019-04-21, 2038-04-25 (outside the shipped years, rules still apply).
  expect(isTradingDay("WSE", "2025-04-18")).toBe(false);
  expect(isTradingDay("WSE", "2025-04-21")).toBe(false);
  expect(isTradingDay("WSE", "2025-06-19")).toBe(false);
  expect(isTradingDay("WSE", "2019-04-19")).toBe(false);
  expect(isTradingDay("WSE", "2019-04-22")).toBe(false);
  expect(isTradingDay("WSE", "2019-06-20")).toBe(false);
  expect(isTradingDay("WSE", "2038-04-23")).toBe(false);
  expect(isTradingDay("WSE", "2038-04-26")).toBe(false);
  expect(isTradingDay("WSE", "2038-04-27")).toBe(true);
});

test("WSE fixed holidays, weekends and Christmas", () => {
  for (const closed of ["2024-01-01", "2024-05-01", "2024-05-03", "2024-08-15", "2024-11-01", "2024-11-11", "2024-12-24", "2024-12-25", "2024-12-26", "2024-12-31", "2025-01-06"]) {
    expect([closed, isTradingDay("WSE", closed)]).toEqual([closed, false]);
  }
  expect(isTradingDay("WSE", "2024-12-23")).toBe(true);
  expect(isTradingDay("WSE", "2024-12-27")).toBe(true);
  expect(isTradingDay("WSE", "2024-12-28")).toBe(false); // Saturday
  expect(isTradingDay("WSE", "2024-12-29")).toBe(false); // Sunday
  expect(isTradingDay("WSE", "2024-06-08")).toBe(false); // Saturday
  expect(isTradingDay("WSE", "2024-06-09")).toBe(false); // Sunday
});

test("WSE history: Epiphany and New Year's Eve only from 2011, one-off closures", () => {
  expect(isTradingDay("WSE", "2010-01-06")).toBe(true);
  expect(isTradingDay("WSE", "2011-01-06")).toBe(false);
  expect(isTradingDay("WSE", "2010-12-31")).toBe(true);
  expect(isTradingDay("WSE", "2012-12-31")).toBe(false);
  expect(isTradingDay("WSE", "2018-11-12")).toBe(false); // centenary of independence
  expect(isTradingDay("WSE", "2005-04-08")).toBe(false); // funeral of John Paul II
  expect(isTradingDay("WSE", "2004-12-24")).toBe(true); // traded despite Christmas Eve
});

test("WSE sessions are 09:00-17:00 Warsaw time, across DST", () => {
  expect(sessionFor("WSE", "2024-01-02")).toEqual({
    date: "2024-01-02",
    open: at("2024-01-02T08:00:00Z"), // CET, UTC+1
    close: at("2024-01-02T16:00:00Z"),
    early: false,
  });
  expect(sessionFor("WSE", "2024-04-02")).toEqual({
    date: "2024-04-02",
    open: at("2024-04-02T07:00:00Z"), // CEST, UTC+2 since March 31
    close: at("2024-04-02T15:00:00Z"),
    early: false,
  });
  // Europe leaves summer time on 2024-10-27, the US a week later.
  expect(sessionFor("WSE", "2024-10-25")!.open).toBe(at("2024-10-25T07:00:00Z"));
  expect(sessionFor("WSE", "2024-10-28")!.open).toBe(at("2024-10-28T08:00:00Z"));
  expect(sessionFor("WSE", "2024-03-29")).toBeNull();
  expect(sessionFor("WSE", "2024-03-30")).toBeNull();
});

test("WSE trading days in December 2024", () => {
  const december = tradingDaysBetween("WSE", "2024-11-30", "2025-01-01");
  expect(december).toEqual([
    "2024-12-02", "2024-12-03", "2024-12-04", "2024-12-05", "2024-12-06",
    "2024-12-09", "2024-12-10", "2024-12-11", "2024-12-12", "2024-12-13",
    "2024-12-16", "2024-12-17", "2024-12-18", "2024-12-19", "2024-12-20",
    "2024-12-23", "2024-12-27", "2024-12-30",
  ]);
  // 262 weekdays in 2024 less 13 weekday holidays (Jan 6 was a Saturday).
  expect(tradingDaysBetween("WSE", "2023-12-31", "2025-01-01")).toHaveLength(249);
});

test("NYSE 2024 holidays and its 252 trading days", () => {
  const holidays = ["2024-01-01", "2024-01-15", "2024-02-19", "2024-03-29", "2024-05-27", "2024-06-19", "2024-07-04", "2024-09-02", "2024-11-28", "2024-12-25"];
  for (const h of holidays) expect([h, isTradingDay("NYSE", h)]).toEqual([h, false]);
  expect(isTradingDay("NYSE", "2024-04-01")).toBe(true); // no Easter Monday in New York
  expect(isTradingDay("NYSE", "2024-12-26")).toBe(true);
  // 262 weekdays less the 10 holidays above.
  expect(tradingDaysBetween("NYSE", "2023-12-31", "2025-01-01")).toHaveLength(252);
  // 2025: 261 weekdays less 10 holidays and the Carter day of mourning.
  expect(tradingDaysBetween("NYSE", "2024-12-31", "2026-01-01")).toHaveLength(250);
});

test("NYSE weekend holidays move to the nearest weekday, except a Saturday New Year", () => {
  expect(isTradingDay("NYSE", "2022-12-26")).toBe(false); // Christmas on Sunday
  expect(isTradingDay("NYSE", "2022-06-20")).toBe(false); // Juneteenth on Sunday
  expect(isTradingDay("NYSE", "2021-06-18")).toBe(true); // Juneteenth not observed before 2022
  expect(isTradingDay("NYSE", "2020-07-03")).toBe(false); // July 4 on Saturday
  expect(isTradingDay("NYSE", "2021-07-05")).toBe(false); // July 4 on Sunday
  expect(isTradingDay("NYSE", "2023-01-02")).toBe(false); // New Year on Sunday
  expect(isTradingDay("NYSE", "2021-12-31")).toBe(true); // New Year 2022 on Saturday: no holiday
  expect(sessionFor("NYSE", "2021-12-31")).toEqual({
    date: "2021-12-31",
    open: at("2021-12-31T14:30:00Z"),
    close: at("2021-12-31T21:00:00Z"),
    early: false,
  });
  expect(isTradingDay("NYSE", "2022-01-03")).toBe(true);
});

test("NYSE one-off closures", () => {
  expect(isTradingDay("NYSE", "2025-01-09")).toBe(false); // Carter
  expect(isTradingDay("NYSE", "2018-12-05")).toBe(false); // G. H. W. Bush
  expect(isTradingDay("NYSE", "2012-10-29")).toBe(false); // Hurricane Sandy
  expect(isTradingDay("NYSE", "2012-10-30")).toBe(false);
  expect(isTradingDay("NYSE", "2012-10-31")).toBe(true);
  expect(sessionFor("NYSE", "2025-01-09")).toBeNull();
  expect(nextTradingDay("NYSE", "2001-09-10")).toBe("2001-09-17");
});

test("NYSE early closes at 13:00 New York time", () => {
  expect(sessionFor("NYSE", "2024-07-03")).toEqual({
    date: "2024-07-03",
    open: at("2024-07-03T13:30:00Z"),
    close: at("2024-07-03T17:00:00Z"), // 13:00 EDT
    early: true,
  });
  expect(sessionFor("NYSE", "2024-11-29")).toEqual({
    date: "2024-11-29",
    open: at("2024-11-29T14:30:00Z"),
    close: at("2024-11-29T18:00:00Z"), // 13:00 EST
    early: true,
  });
  expect(sessionFor("NYSE", "2024-12-24")!.close).toBe(at("2024-12-24T18:00:00Z"));
  expect(sessionFor("NYSE", "2023-07-03")!.early).toBe(true); // Monday
  expect(sessionFor("NYSE", "2025-07-03")!.early).toBe(true); // Thursday
  expect(sessionFor("NYSE", "2019-07-03")!.early).toBe(true); // Wednesday, since 2013
  // July 4 2002 was a Thursday: before 2013 the Friday after was shortened, not the Wednesday.
  expect(sessionFor("NYSE", "2002-07-03")!.early).toBe(false);
  expect(sessionFor("NYSE", "2002-07-05")!.early).toBe(true);
  // July 4 2026 is a Saturday: Friday July 3 is the holiday and Thursday is a full day.
  expect(isTradingDay("NYSE", "2026-07-03")).toBe(false);
  expect(sessionFor("NYSE", "2026-07-02")).toEqual({
    date: "2026-07-02",
    open: at("2026-07-02T13:30:00Z"),
    close: at("2026-07-02T20:00:00Z"),
    early: false,
  });
  // Christmas Eve 2021 was a Friday, the observed Christmas holiday, not an early close.
  expect(sessionFor("NYSE", "2021-12-24")).toBeNull();
  expect(sessionFor("NYSE", "2024-07-05")!.early).toBe(false);
});

test("NYSE sessions follow US DST, which starts before Europe's", () => {
  expect(sessionFor("NYSE", "2024-03-08")!.open).toBe(at("2024-03-08T14:30:00Z")); // EST
  expect(sessionFor("NYSE", "2024-03-11")!.open).toBe(at("2024-03-11T13:30:00Z")); // EDT from March 10
  expect(sessionFor("NYSE", "2024-03-11")!.close).toBe(at("2024-03-11T20:00:00Z"));
  expect(sessionFor("NYSE", "2024-11-01")!.open).toBe(at("2024-11-01T13:30:00Z"));
  expect(sessionFor("NYSE", "2024-11-04")!.open).toBe(at("2024-11-04T14:30:00Z")); // EST from November 3
  // In the weeks between the two changes Warsaw is only five hours ahead of New York.
  expect(sessionFor("WSE", "2024-03-11")!.open).toBe(at("2024-03-11T08:00:00Z"));
});

test("isOpen is open-inclusive and close-exclusive, and closed on holidays and weekends", () => {
  expect(isOpen("NYSE", at("2024-03-08T14:29:59.999Z"))).toBe(false);
  expect(isOpen("NYSE", at("2024-03-08T14:30:00Z"))).toBe(true);
  expect(isOpen("NYSE", at("2024-03-08T20:59:59.999Z"))).toBe(true);
  expect(isOpen("NYSE", at("2024-03-08T21:00:00Z"))).toBe(false);
  expect(isOpen("NYSE", at("2024-03-11T13:45:00Z"))).toBe(true);
  expect(isOpen("NYSE", at("2024-07-03T16:59:00Z"))).toBe(true);
  expect(isOpen("NYSE", at("2024-07-03T17:00:00Z"))).toBe(false); // early close
  expect(isOpen("NYSE", at("2024-07-04T15:00:00Z"))).toBe(false); // holiday
  expect(isOpen("NYSE", at("2024-07-06T15:00:00Z"))).toBe(false); // Saturday
  // 01:00Z on a Tuesday is still Monday evening in New York: closed, not Tuesday's session.
  expect(isOpen("NYSE", at("2024-07-09T01:00:00Z"))).toBe(false);

  expect(isOpen("WSE", at("2024-04-02T06:59:59Z"))).toBe(false);
  expect(isOpen("WSE", at("2024-04-02T07:00:00Z"))).toBe(true);
  expect(isOpen("WSE", at("2024-04-02T14:59:59Z"))).toBe(true);
  expect(isOpen("WSE", at("2024-04-02T15:00:00Z"))).toBe(false);
  expect(isOpen("WSE", at("2024-01-02T07:30:00Z"))).toBe(false); // 08:30 CET, before the open
  expect(isOpen("WSE", at("2024-01-02T15:30:00Z"))).toBe(true); // 16:30 CET
  expect(isOpen("WSE", at("2024-12-24T10:00:00Z"))).toBe(false);
});

test("next and previous trading day skip weekends and holidays, strictly", () => {
  expect(nextTradingDay("WSE", "2024-12-23")).toBe("2024-12-27");
  expect(nextTradingDay("WSE", "2024-12-27")).toBe("2024-12-30");
  expect(nextTradingDay("WSE", "2024-12-30")).toBe("2025-01-02");
  expect(nextTradingDay("WSE", "2025-01-03")).toBe("2025-01-07"); // Monday Jan 6 is Epiphany
  expect(previousTradingDay("WSE", "2024-12-27")).toBe("2024-12-23");
  expect(previousTradingDay("WSE", "2024-04-02")).toBe("2024-03-28");
  expect(nextTradingDay("NYSE", "2024-07-03")).toBe("2024-07-05");
  expect(previousTradingDay("NYSE", "2025-01-10")).toBe("2025-01-08");
  expect(previousTradingDay("NYSE", "2024-01-02")).toBe("2023-12-29");
  // Works from a non-trading day too.
  expect(nextTradingDay("NYSE", "2024-07-06")).toBe("2024-07-08");
});

test("tradingDaysBetween excludes both ends", () => {
  expect(tradingDaysBetween("NYSE", "2024-07-01", "2024-07-05")).toEqual(["2024-07-02", "2024-07-03"]);
  expect(tradingDaysBetween("WSE", "2024-12-23", "2024-12-27")).toEqual([]);
  expect(tradingDaysBetween("WSE", "2024-12-27", "2024-12-23")).toEqual([]);
  expect(tradingDaysBetween("WSE", "2024-12-27", "2024-12-27")).toEqual([]);
});

test("zonedTimeToUtc across DST, including skipped and repeated hours", () => {
  expect(zonedTimeToUtc("2024-07-01", "12:00", "UTC")).toBe(at("2024-07-01T12:00:00Z"));
  expect(zonedTimeToUtc("2024-01-15", "09:00", "Europe/Warsaw")).toBe(at("2024-01-15T08:00:00Z"));
  expect(zonedTimeToUtc("2024-07-15", "09:00", "Europe/Warsaw")).toBe(at("2024-07-15T07:00:00Z"));
  expect(zonedTimeToUtc("2024-07-15", "09:30:15", "America/New_York")).toBe(at("2024-07-15T13:30:15Z"));
  // Southern hemisphere: Sydney is on daylight time (UTC+11) in January.
  expect(zonedTimeToUtc("2024-01-15", "10:00", "Australia/Sydney")).toBe(at("2024-01-14T23:00:00Z"));
  expect(zonedTimeToUtc("2024-01-15", "10:00", "Asia/Kolkata")).toBe(at("2024-01-15T04:30:00Z"));
  // 02:30 does not exist in Warsaw on 2024-03-31 (02:00 → 03:00): read as 03:30 CEST.
  expect(zonedTimeToUtc("2024-03-31", "02:30", "Europe/Warsaw")).toBe(at("2024-03-31T01:30:00Z"));
  expect(zonedTimeToUtc("2024-03-31", "03:00", "Europe/Warsaw")).toBe(at("2024-03-31T01:00:00Z"));
  expect(zonedTimeToUtc("2024-03-31", "01:59", "Europe/Warsaw")).toBe(at("2024-03-31T00:59:00Z"));
  // 02:30 happens twice in Warsaw on 2024-10-27: the first one, still CEST.
  expect(zonedTimeToUtc("2024-10-27", "02:30", "Europe/Warsaw")).toBe(at("2024-10-27T00:30:00Z"));
  expect(zonedTimeToUtc("2024-10-27", "03:00", "Europe/Warsaw")).toBe(at("2024-10-27T02:00:00Z"));
  expect(zonedTimeToUtc("2024-11-03", "01:30", "America/New_York")).toBe(at("2024-11-03T05:30:00Z"));
  expect(zonedTimeToUtc("2024-03-10", "02:30", "America/New_York")).toBe(at("2024-03-10T07:30:00Z"));
});

test("malformed input is rejected, not guessed", () => {
  expect(() => isTradingDay("WSE", "2024-02-30")).toThrow(RangeError);
  expect(() => isTradingDay("WSE", "2024-2-3")).toThrow(RangeError);
  expect(() => isTradingDay("WSE", "20240203")).toThrow(RangeError);
  expect(isTradingDay("WSE", "2024-02-29")).toBe(true); // leap day, a Thursday
  expect(() => isTradingDay("XYZ" as Market, "2024-01-02")).toThrow(RangeError);
  expect(() => isOpen("constructor" as Market, at("2024-01-02T10:00:00Z"))).toThrow(RangeError);
  expect(() => isOpen("NYSE", Number.NaN)).toThrow(RangeError);
  expect(() => zonedTimeToUtc("2024-01-02", "24:00", "Europe/Warsaw")).toThrow(RangeError);
  expect(() => zonedTimeToUtc("2024-01-02", "9:00", "Europe/Warsaw")).toThrow(RangeError);
  expect(() => zonedTimeToUtc("2024-01-02", "09:00", "Mars/Olympus_Mons")).toThrow(RangeError);
});

test("coverage is reported per market", () => {
  expect(calendarCoverage("WSE")).toEqual({ from: "2000-01-01", to: "2035-12-31" });
  expect(calendarCoverage("NYSE")).toEqual({ from: "2000-01-01", to: "2035-12-31" });
  // Every year in the coverage has a plausible number of sessions (2000-2035: 247-255 WSE, 248-253 NYSE).
  for (const market of ["WSE", "NYSE"] as const) {
    for (let y = 2000; y <= 2035; y++) {
      const n = tradingDaysBetween(market, `${y - 1}-12-31`, `${y + 1}-01-01`).length;
      expect([market, y, n >= 245 && n <= 256]).toEqual([market, y, true]);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Markets that trade around the clock. FX: Sunday 17:00 to Friday 17:00 New York, each trade date
// D the session [D-1 17:00, D 17:00) New York (22:00Z in EST, 21:00Z in EDT). CRYPTO: every day a
// UTC day. Instants written out in UTC by hand.

const isoAt = (t: number) => new Date(t).toISOString();
const span = (market: Market, date: string) => {
  const s = sessionFor(market, date);
  return s && [isoAt(s.open), isoAt(s.close), s.early];
};

test("FX week across the Sunday open, winter (EST): opens Sunday 17:00 = 22:00Z, closes Friday 17:00", () => {
  // 2025-01-05 is a Sunday.
  expect(marketPhase("FX", at("2025-01-05T21:59:00Z"))).toBe("closed"); // Sunday 16:59 New York
  expect(marketPhase("FX", at("2025-01-05T22:00:00Z"))).toBe("open"); // Sunday 17:00 New York
  expect(span("FX", "2025-01-06")).toEqual(["2025-01-05T22:00:00.000Z", "2025-01-06T22:00:00.000Z", false]); // Monday's session
  // The daily roll at 17:00 is no pause: Monday's close is Tuesday's open.
  expect(marketPhase("FX", at("2025-01-06T22:00:00Z"))).toBe("open");
  expect(tradeDate("FX", at("2025-01-06T21:59:59Z"))).toBe("2025-01-06");
  expect(tradeDate("FX", at("2025-01-06T22:00:00Z"))).toBe("2025-01-07");
  expect(span("FX", "2025-01-10")).toEqual(["2025-01-09T22:00:00.000Z", "2025-01-10T22:00:00.000Z", false]); // Friday
  expect(marketPhase("FX", at("2025-01-10T21:59:00Z"))).toBe("open"); // Friday 16:59
  expect(marketPhase("FX", at("2025-01-10T22:00:00Z"))).toBe("closed"); // Friday 17:00: the week's close
  for (const t of ["2025-01-11T00:00:00Z", "2025-01-11T12:00:00Z", "2025-01-12T12:00:00Z", "2025-01-12T21:59:59Z"]) {
    expect([t, marketPhase("FX", at(t)), isOpen("FX", at(t))]).toEqual([t, "closed", false]);
  }
  expect(isoAt(nextOpen("FX", at("2025-01-11T12:00:00Z")))).toBe("2025-01-12T22:00:00.000Z");
  expect(isoAt(nextOpen("FX", at("2025-01-08T03:00:00Z")))).toBe("2025-01-08T03:00:00.000Z"); // already open
  expect([isTradingDay("FX", "2025-01-11"), isTradingDay("FX", "2025-01-12"), isTradingDay("FX", "2025-01-13")]).toEqual([false, false, true]);
  expect(nextTradingDay("FX", "2025-01-10")).toBe("2025-01-13");
  expect(previousTradingDay("FX", "2025-01-13")).toBe("2025-01-10");
  expect(tradingDaysBetween("FX", "2025-01-03", "2025-01-13")).toEqual(["2025-01-06", "2025-01-07", "2025-01-08", "2025-01-09", "2025-01-10"]);
  // One phase, open: no pre or post.
  expect(phasesOn("FX", "2025-01-06").map((p) => [p.phase, isoAt(p.from), isoAt(p.to)])).toEqual([["open", "2025-01-05T22:00:00.000Z", "2025-01-06T22:00:00.000Z"]]);
  expect(isOpen("FX", at("2025-01-08T03:00:00Z"), ["pre", "post"])).toBe(false);
  expect(isoAt(nextOpen("FX", at("2025-01-11T12:00:00Z"), ["pre", "open"]))).toBe("2025-01-12T22:00:00.000Z");
  expect(() => nextOpen("FX", at("2025-01-11T12:00:00Z"), ["pre", "post"])).toThrow("FX has no pre or post phase: it has open");
  expect(phasesOn("FX", "2025-01-11")).toEqual([]);
  // A Sunday-evening instant's trade date is Monday; the trade day starts the evening before.
  expect(tradeDate("FX", at("2025-01-05T22:00:00Z"))).toBe("2025-01-06");
  expect(tradeDate("FX", at("2025-01-05T21:59:59Z"))).toBe("2025-01-05");
  expect(isoAt(tradeDayStart("FX", "2025-01-06"))).toBe("2025-01-05T22:00:00.000Z");
});

test("FX in summer (EDT): the same 17:00 New York is 21:00Z", () => {
  // 2025-07-06 is a Sunday.
  expect(marketPhase("FX", at("2025-07-06T20:59:00Z"))).toBe("closed"); // 16:59 EDT
  expect(marketPhase("FX", at("2025-07-06T21:00:00Z"))).toBe("open"); // 17:00 EDT
  expect(span("FX", "2025-07-07")).toEqual(["2025-07-06T21:00:00.000Z", "2025-07-07T21:00:00.000Z", false]);
  expect(marketPhase("FX", at("2025-07-11T20:59:00Z"))).toBe("open");
  expect(marketPhase("FX", at("2025-07-11T21:00:00Z"))).toBe("closed");
  expect(tradeDate("FX", at("2025-07-06T21:00:00Z"))).toBe("2025-07-07");
  expect(tradeDate("FX", at("2025-07-06T22:00:00Z"))).toBe("2025-07-07");
  expect(tradeDate("FX", at("2025-07-06T20:59:00Z"))).toBe("2025-07-06");
});

test("FX across the US clock changes: the roll stays 17:00 New York", () => {
  // Spring: clocks go forward on Sunday 2025-03-09 at 02:00, before the 17:00 open.
  expect(span("FX", "2025-03-07")).toEqual(["2025-03-06T22:00:00.000Z", "2025-03-07T22:00:00.000Z", false]); // Friday, EST
  expect(span("FX", "2025-03-10")).toEqual(["2025-03-09T21:00:00.000Z", "2025-03-10T21:00:00.000Z", false]); // Monday, EDT
  expect(marketPhase("FX", at("2025-03-09T20:59:00Z"))).toBe("closed");
  expect(marketPhase("FX", at("2025-03-09T21:00:00Z"))).toBe("open");
  // Autumn: back on Sunday 2025-11-02 at 02:00; Friday 10-31 closes 21:00Z, Sunday opens 22:00Z.
  expect(span("FX", "2025-10-31")).toEqual(["2025-10-30T21:00:00.000Z", "2025-10-31T21:00:00.000Z", false]);
  expect(span("FX", "2025-11-03")).toEqual(["2025-11-02T22:00:00.000Z", "2025-11-03T22:00:00.000Z", false]);
  expect(isoAt(nextOpen("FX", at("2025-10-31T21:00:00Z")))).toBe("2025-11-02T22:00:00.000Z");
});

test("CRYPTO: every day a session, UTC midnight to midnight, weekends included", () => {
  // 2025-01-04 is a Saturday.
  for (const d of ["2025-01-03", "2025-01-04", "2025-01-05", "2025-01-06"]) {
    expect(span("CRYPTO", d)).toEqual([`${d}T00:00:00.000Z`, isoAt(at(`${d}T00:00:00Z`) + 86_400_000), false]);
  }
  expect(tradingDaysBetween("CRYPTO", "2025-01-02", "2025-01-08")).toEqual(["2025-01-03", "2025-01-04", "2025-01-05", "2025-01-06", "2025-01-07"]);
  expect(nextTradingDay("CRYPTO", "2025-01-03")).toBe("2025-01-04");
  expect(previousTradingDay("CRYPTO", "2025-01-06")).toBe("2025-01-05");
  expect(isTradingDay("CRYPTO", "2024-12-25")).toBe(true);
  for (const t of ["2025-01-04T00:00:00Z", "2025-01-04T23:59:59Z", "2025-01-05T12:00:00Z"]) expect([t, marketPhase("CRYPTO", at(t))]).toEqual([t, "open"]);
  expect(isoAt(nextOpen("CRYPTO", at("2025-01-05T12:34:00Z")))).toBe("2025-01-05T12:34:00.000Z");
  expect(tradeDate("CRYPTO", at("2025-01-04T23:59:59Z"))).toBe("2025-01-04");
  expect(tradeDate("CRYPTO", at("2025-01-05T00:00:00Z"))).toBe("2025-01-05");
  expect(isoAt(tradeDayStart("CRYPTO", "2025-01-05"))).toBe("2025-01-05T00:00:00.000Z");
  expect(phasesOn("CRYPTO", "2025-01-04").map((p) => [p.phase, isoAt(p.from), isoAt(p.to)])).toEqual([["open", "2025-01-04T00:00:00.000Z", "2025-01-05T00:00:00.000Z"]]);
  // A year of sessions is every day of it.
  expect(tradingDaysBetween("CRYPTO", "2023-12-31", "2025-01-01").length).toBe(366);
  expect(tradingDaysBetween("FX", "2023-12-31", "2025-01-01").length).toBe(262);
});
