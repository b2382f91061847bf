// Market phases (pre, open, post, closed) over instants chosen where mistakes hide: the Sundays
// Europe and the US change clocks (on different weekends) and the Mondays after, holidays, the
// 13:00 early closes with their shorter after-hours, weekends, and each boundary to the millisecond.
import { describe, expect, test } from "bun:test";
import {
  isOpen,
  isTradingDay,
  marketPhase,
  nextOpen,
  phasesOn,
  sessionFor,
  tradingDaysBetween,
  type Market,
  type MarketPhase,
  type SessionPhase,
} from "../src/domain/calendar.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

// [market, instant (UTC), expected phase, why]
const CASES: [Market, string, MarketPhase, string][] = [
  // WSE, winter time (CET, UTC+1), Friday before Europe's change on Sunday 2025-03-30.
  ["WSE", "2025-03-28T07:29:59.999Z", "closed", "08:29:59.999 CET, before the pre-opening"],
  ["WSE", "2025-03-28T07:30:00Z", "pre", "08:30 CET, pre-opening starts"],
  ["WSE", "2025-03-28T07:59:59.999Z", "pre", "08:59:59.999 CET"],
  ["WSE", "2025-03-28T08:00:00Z", "open", "09:00 CET, opening auction"],
  ["WSE", "2025-03-28T15:50:00Z", "open", "16:50 CET, closing auction call is still the session"],
  ["WSE", "2025-03-28T15:59:59.999Z", "open", "16:59:59.999 CET"],
  ["WSE", "2025-03-28T16:00:00Z", "post", "17:00 CET, trading at last"],
  ["WSE", "2025-03-28T16:04:59.999Z", "post", "17:04:59.999 CET"],
  ["WSE", "2025-03-28T16:05:00Z", "closed", "17:05 CET"],
  // Sunday of the change (02:00 CET → 03:00 CEST) and the Monday after, now UTC+2.
  ["WSE", "2025-03-30T08:00:00Z", "closed", "Sunday of the change"],
  ["WSE", "2025-03-31T06:29:59Z", "closed", "Monday 08:29:59 CEST"],
  ["WSE", "2025-03-31T06:30:00Z", "pre", "Monday 08:30 CEST"],
  ["WSE", "2025-03-31T07:00:00Z", "open", "Monday 09:00 CEST: an hour earlier in UTC than on Friday"],
  ["WSE", "2025-03-31T08:00:00Z", "open", "Monday 10:00 CEST"],
  ["WSE", "2025-03-31T15:00:00Z", "post", "Monday 17:00 CEST"],
  ["WSE", "2025-03-31T15:05:00Z", "closed", "Monday 17:05 CEST"],
  // 2024: the Monday after Europe's change (March 31) was Easter Monday.
  ["WSE", "2024-04-01T08:00:00Z", "closed", "Easter Monday 2024"],
  ["WSE", "2024-04-02T06:59:59.999Z", "pre", "Tuesday 08:59:59.999 CEST"],
  ["WSE", "2024-04-02T07:00:00Z", "open", "Tuesday 09:00 CEST"],
  // Autumn: Europe back to CET on Sunday 2025-10-26, the US a week later.
  ["WSE", "2025-10-24T07:00:00Z", "open", "Friday 09:00 CEST"],
  ["WSE", "2025-10-26T09:00:00Z", "closed", "Sunday of the change"],
  ["WSE", "2025-10-27T07:00:00Z", "closed", "Monday 08:00 CET (in CEST it would have been the session)"],
  ["WSE", "2025-10-27T07:30:00Z", "pre", "Monday 08:30 CET"],
  ["WSE", "2025-10-27T07:59:59Z", "pre", "Monday 08:59:59 CET"],
  ["WSE", "2025-10-27T08:00:00Z", "open", "Monday 09:00 CET"],
  ["WSE", "2025-10-27T16:00:00Z", "post", "Monday 17:00 CET"],
  // Holidays and weekends.
  ["WSE", "2025-12-24T10:00:00Z", "closed", "Christmas Eve, a WSE holiday"],
  ["WSE", "2025-01-06T10:00:00Z", "closed", "Epiphany"],
  ["WSE", "2025-11-11T07:45:00Z", "closed", "Independence Day: no pre-opening either"],
  ["WSE", "2025-03-29T10:00:00Z", "closed", "Saturday"],
  ["WSE", "2025-07-04T10:00:00Z", "open", "the US holiday is a WSE trading day"],

  // NYSE, winter time (EST, UTC-5), Friday before the US change on Sunday 2025-03-09.
  ["NYSE", "2025-03-07T08:59:59.999Z", "closed", "03:59:59.999 EST"],
  ["NYSE", "2025-03-07T09:00:00Z", "pre", "04:00 EST, pre-market"],
  ["NYSE", "2025-03-07T14:29:59.999Z", "pre", "09:29:59.999 EST"],
  ["NYSE", "2025-03-07T14:30:00Z", "open", "09:30 EST"],
  ["NYSE", "2025-03-07T20:59:59.999Z", "open", "15:59:59.999 EST"],
  ["NYSE", "2025-03-07T21:00:00Z", "post", "16:00 EST, after-hours"],
  ["NYSE", "2025-03-08T00:59:59.999Z", "post", "19:59:59.999 EST, already Saturday in UTC"],
  ["NYSE", "2025-03-08T01:00:00Z", "closed", "20:00 EST"],
  // Sunday of the change (02:00 EST → 03:00 EDT) and the Monday after, now UTC-4.
  ["NYSE", "2025-03-09T07:30:00Z", "closed", "Sunday 03:30 EDT, just after the skipped hour"],
  ["NYSE", "2025-03-09T15:00:00Z", "closed", "Sunday"],
  ["NYSE", "2025-03-10T07:59:59Z", "closed", "Monday 03:59:59 EDT"],
  ["NYSE", "2025-03-10T08:00:00Z", "pre", "Monday 04:00 EDT"],
  ["NYSE", "2025-03-10T13:30:00Z", "open", "Monday 09:30 EDT: an hour earlier in UTC than on Friday"],
  ["NYSE", "2025-03-10T14:29:00Z", "open", "Monday 10:29 EDT"],
  ["NYSE", "2025-03-10T20:00:00Z", "post", "Monday 16:00 EDT"],
  ["NYSE", "2025-03-10T23:59:59Z", "post", "Monday 19:59:59 EDT"],
  ["NYSE", "2025-03-11T00:00:00Z", "closed", "Monday 20:00 EDT, Tuesday in UTC: not Tuesday's pre-market"],
  // In the weeks between the two spring changes New York is five hours behind Warsaw, not six.
  ["WSE", "2025-03-10T08:00:00Z", "open", "WSE still on CET: 09:00"],
  ["NYSE", "2025-03-10T16:00:00Z", "open", "12:00 EDT"],
  ["WSE", "2025-03-10T16:00:00Z", "post", "17:00 CET while New York trades"],
  // Autumn: the US returns to EST on Sunday 2025-11-02; the week before it is still EDT.
  ["NYSE", "2025-10-27T13:30:00Z", "open", "Monday 09:30 EDT, a day after Europe's change"],
  ["NYSE", "2025-11-02T06:30:00Z", "closed", "Sunday 01:30, the hour that happens twice"],
  ["NYSE", "2025-11-03T13:30:00Z", "pre", "Monday 08:30 EST"],
  ["NYSE", "2025-11-03T14:30:00Z", "open", "Monday 09:30 EST"],
  ["NYSE", "2025-11-03T21:00:00Z", "post", "Monday 16:00 EST"],
  // Holidays.
  ["NYSE", "2025-07-04T15:00:00Z", "closed", "Independence Day"],
  ["NYSE", "2025-07-04T10:00:00Z", "closed", "Independence Day: no pre-market"],
  ["NYSE", "2025-01-09T15:00:00Z", "closed", "national day of mourning (one-off closure)"],
  ["NYSE", "2025-11-27T16:00:00Z", "closed", "Thanksgiving"],
  ["NYSE", "2025-04-18T15:00:00Z", "closed", "Good Friday"],
  ["NYSE", "2025-04-21T14:00:00Z", "open", "Easter Monday trades in New York"],
  // Early closes at 13:00, after-hours until 17:00.
  ["NYSE", "2025-07-03T16:59:59.999Z", "open", "July 3 (Thursday) 12:59:59.999 EDT"],
  ["NYSE", "2025-07-03T17:00:00Z", "post", "July 3 13:00 EDT, early close"],
  ["NYSE", "2025-07-03T20:59:59Z", "post", "July 3 16:59:59 EDT"],
  ["NYSE", "2025-07-03T21:00:00Z", "closed", "July 3 17:00 EDT: after-hours end early too"],
  ["NYSE", "2025-11-28T17:59:59Z", "open", "day after Thanksgiving 12:59:59 EST"],
  ["NYSE", "2025-11-28T18:00:00Z", "post", "day after Thanksgiving 13:00 EST"],
  ["NYSE", "2025-11-28T22:00:00Z", "closed", "day after Thanksgiving 17:00 EST"],
  ["NYSE", "2025-12-24T18:00:00Z", "post", "Christmas Eve (Wednesday) 13:00 EST"],
  ["NYSE", "2025-12-24T09:00:00Z", "pre", "Christmas Eve 04:00 EST: the pre-market is not shortened"],
  ["NYSE", "2025-12-26T20:00:00Z", "open", "the day after Christmas is a full day"],
  ["NYSE", "2003-12-26T18:00:00Z", "post", "2003-12-26, a one-off early close from the shipped exceptions"],
  ["NYSE", "2002-09-11T15:30:00Z", "pre", "2002-09-11 opened late at 12:00: 11:30 EDT is still pre-market"],
  ["NYSE", "2002-09-11T16:00:00Z", "open", "2002-09-11 12:00 EDT"],
  ["NYSE", "2002-09-11T20:00:00Z", "post", "2002-09-11 closed at the usual 16:00: after-hours as usual"],
  ["NYSE", "2002-09-12T00:00:00Z", "closed", "2002-09-11 20:00 EDT"],
  // Weekends.
  ["NYSE", "2025-03-08T15:00:00Z", "closed", "Saturday"],
  ["NYSE", "2025-03-08T09:00:00Z", "closed", "Saturday 04:00: no pre-market"],
];

describe("marketPhase over instants", () => {
  test.each(CASES)("%s %s is %s (%s)", (market, instant, phase) => {
    expect(marketPhase(market, at(instant))).toBe(phase);
  });
});

describe("isOpen with phases", () => {
  test("by default only the regular session counts", () => {
    expect(isOpen("WSE", at("2025-03-31T07:00:00Z"))).toBe(true);
    expect(isOpen("WSE", at("2025-03-31T06:30:00Z"))).toBe(false); // pre
    expect(isOpen("WSE", at("2025-03-31T15:00:00Z"))).toBe(false); // post
    expect(isOpen("NYSE", at("2025-07-03T17:00:00Z"))).toBe(false); // early close
  });

  test("phases widen or narrow the window", () => {
    expect(isOpen("WSE", at("2025-03-31T06:30:00Z"), ["pre", "open"])).toBe(true);
    expect(isOpen("WSE", at("2025-03-31T15:00:00Z"), ["open", "post"])).toBe(true);
    expect(isOpen("WSE", at("2025-03-31T07:00:00Z"), ["post"])).toBe(false);
    expect(isOpen("NYSE", at("2025-07-03T17:00:00Z"), ["post"])).toBe(true);
    expect(isOpen("NYSE", at("2025-03-08T09:00:00Z"), ["pre", "open", "post"])).toBe(false); // Saturday
  });

  // Worked by hand from the exchanges' published hours and 2025 calendars (nyse.com "Holidays
  // and Trading Hours"; gpw.pl "Trading calendar"): NYSE 09:30-16:00 ET, pre-market from 04:00,
  // after-hours to 20:00 (to 17:00 after a 13:00 early close); WSE 09:00-17:00 Warsaw time,
  // pre-opening from 08:30, trading at last to 17:05. The US moved clocks on 2025-03-09 and
  // 2025-11-02, Europe on 2025-03-30 and 2025-10-26.
  test.each([
    // NYSE: the session's ends on each side of the US spring change.
    ["NYSE", "2025-03-07T14:29:59.999Z", undefined, false, "Fri 09:29:59.999 EST"],
    ["NYSE", "2025-03-07T14:30:00Z", undefined, true, "Fri 09:30 EST"],
    ["NYSE", "2025-03-07T20:59:59.999Z", undefined, true, "Fri 15:59:59.999 EST"],
    ["NYSE", "2025-03-10T13:30:00Z", undefined, true, "Mon 09:30 EDT, an hour earlier in UTC"],
    ["NYSE", "2025-03-10T14:29:59Z", undefined, true, "Mon 10:29:59 EDT (09:29:59 had it been EST)"],
    ["NYSE", "2025-03-10T20:00:00Z", undefined, false, "Mon 16:00 EDT"],
    ["NYSE", "2025-03-31T13:30:00Z", undefined, true, "after Europe's change too: still 09:30 EDT"],
    ["NYSE", "2025-11-03T13:30:00Z", undefined, false, "Mon 08:30 EST, after the autumn change"],
    ["NYSE", "2025-11-03T14:30:00Z", undefined, true, "Mon 09:30 EST"],
    // NYSE holidays and early closes of 2025.
    ["NYSE", "2025-01-09T15:00:00Z", undefined, false, "national day of mourning for President Carter"],
    ["NYSE", "2025-01-20T15:00:00Z", undefined, false, "Martin Luther King Jr. Day"],
    ["NYSE", "2025-04-18T15:00:00Z", undefined, false, "Good Friday"],
    ["NYSE", "2025-06-19T15:00:00Z", undefined, false, "Juneteenth"],
    ["NYSE", "2025-07-03T16:59:59Z", undefined, true, "12:59:59 EDT before Independence Day"],
    ["NYSE", "2025-07-03T17:00:00Z", undefined, false, "13:00 EDT early close"],
    ["NYSE", "2025-11-27T16:00:00Z", undefined, false, "Thanksgiving"],
    ["NYSE", "2025-11-28T17:59:59Z", undefined, true, "12:59:59 EST the day after Thanksgiving"],
    ["NYSE", "2025-11-28T18:00:00Z", undefined, false, "13:00 EST early close"],
    ["NYSE", "2025-12-24T18:00:00Z", undefined, false, "Christmas Eve 13:00 EST early close"],
    ["NYSE", "2025-12-26T15:00:00Z", undefined, true, "26 December is a trading day in New York"],
    // NYSE extended hours.
    ["NYSE", "2025-03-10T07:59:59.999Z", ["pre"], false, "Mon 03:59:59.999 EDT"],
    ["NYSE", "2025-03-10T08:00:00Z", ["pre"], true, "Mon 04:00 EDT"],
    ["NYSE", "2025-03-07T00:59:59Z", ["post"], true, "Thu 19:59:59 EST"],
    ["NYSE", "2025-03-07T01:00:00Z", ["post"], false, "Thu 20:00 EST"],
    ["NYSE", "2025-11-28T21:59:59Z", ["post"], true, "16:59:59 EST after an early close"],
    ["NYSE", "2025-11-28T22:00:00Z", ["post"], false, "17:00 EST after an early close"],
    ["NYSE", "2025-11-27T20:00:00Z", ["pre", "open", "post"], false, "Thanksgiving has no extended hours"],
    // WSE: the session's ends on each side of both European changes.
    ["WSE", "2025-03-28T07:59:59.999Z", undefined, false, "Fri 08:59:59.999 CET"],
    ["WSE", "2025-03-28T08:00:00Z", undefined, true, "Fri 09:00 CET"],
    ["WSE", "2025-03-31T07:00:00Z", undefined, true, "Mon 09:00 CEST"],
    ["WSE", "2025-03-31T14:59:59Z", undefined, true, "Mon 16:59:59 CEST"],
    ["WSE", "2025-03-31T15:59:59Z", undefined, false, "Mon 17:59:59 CEST (16:59:59 had it been CET)"],
    ["WSE", "2025-10-24T15:00:00Z", undefined, false, "Fri 17:00 CEST"],
    ["WSE", "2025-10-27T07:00:00Z", undefined, false, "Mon 08:00 CET, after the autumn change"],
    ["WSE", "2025-10-27T08:00:00Z", undefined, true, "Mon 09:00 CET"],
    // WSE holidays of 2025 (GPW closes on Good Friday and Christmas Eve as well).
    ["WSE", "2025-01-06T10:00:00Z", undefined, false, "Epiphany"],
    ["WSE", "2025-04-18T10:00:00Z", undefined, false, "Good Friday"],
    ["WSE", "2025-04-21T10:00:00Z", undefined, false, "Easter Monday"],
    ["WSE", "2025-04-22T10:00:00Z", undefined, true, "the Tuesday after Easter"],
    ["WSE", "2025-06-19T10:00:00Z", undefined, false, "Corpus Christi"],
    ["WSE", "2025-08-15T10:00:00Z", undefined, false, "Assumption"],
    ["WSE", "2025-11-11T10:00:00Z", undefined, false, "Independence Day"],
    ["WSE", "2025-12-24T10:00:00Z", undefined, false, "Christmas Eve"],
    ["WSE", "2025-12-31T10:00:00Z", undefined, false, "New Year's Eve"],
    ["WSE", "2025-12-30T10:00:00Z", undefined, true, "30 December"],
    // WSE pre-opening and trading at last.
    ["WSE", "2025-10-27T07:30:00Z", ["pre"], true, "Mon 08:30 CET"],
    ["WSE", "2025-10-24T15:04:59Z", ["post"], true, "Fri 17:04:59 CEST"],
    ["WSE", "2025-10-24T15:05:00Z", ["post"], false, "Fri 17:05 CEST"],
  ] as [Market, string, SessionPhase[] | undefined, boolean, string][])("%s %s phases %p: open %p (%s)", (market, instant, phases, open) => {
    expect(phases ? isOpen(market, at(instant), phases) : isOpen(market, at(instant))).toBe(open);
  });

  test("bad phases and instants are rejected", () => {
    expect(() => isOpen("WSE", at("2025-03-31T07:00:00Z"), [])).toThrow(RangeError);
    expect(() => isOpen("WSE", at("2025-03-31T07:00:00Z"), ["lunch" as "open"])).toThrow(RangeError);
    expect(() => marketPhase("WSE", Number.NaN)).toThrow(RangeError);
    expect(() => marketPhase("XYZ" as Market, at("2025-03-31T07:00:00Z"))).toThrow(RangeError);
    expect(() => nextOpen("NYSE", at("2025-03-31T07:00:00Z"), [])).toThrow(RangeError);
  });
});

describe("nextOpen", () => {
  test("already open: the instant itself", () => {
    expect(iso(nextOpen("WSE", at("2025-03-31T10:00:00Z")))).toBe("2025-03-31T10:00:00.000Z");
    expect(iso(nextOpen("NYSE", at("2025-03-07T22:00:00Z"), ["post"]))).toBe("2025-03-07T22:00:00.000Z");
  });

  test("over a weekend with a clock change in it", () => {
    // Friday after the close (CET) → Monday 09:00 CEST.
    expect(iso(nextOpen("WSE", at("2025-03-28T16:10:00Z")))).toBe("2025-03-31T07:00:00.000Z");
    expect(iso(nextOpen("WSE", at("2025-03-28T16:10:00Z"), ["pre"]))).toBe("2025-03-31T06:30:00.000Z");
    // Friday after-hours end (EST) → Monday 09:30 EDT, or 04:00 EDT for the pre-market.
    expect(iso(nextOpen("NYSE", at("2025-03-08T01:00:00Z")))).toBe("2025-03-10T13:30:00.000Z");
    expect(iso(nextOpen("NYSE", at("2025-03-08T01:00:00Z"), ["pre", "open"]))).toBe("2025-03-10T08:00:00.000Z");
    // Autumn: Friday (CEST) → Monday (CET).
    expect(iso(nextOpen("WSE", at("2025-10-24T16:00:00Z")))).toBe("2025-10-27T08:00:00.000Z");
    expect(iso(nextOpen("NYSE", at("2025-11-01T12:00:00Z")))).toBe("2025-11-03T14:30:00.000Z");
  });

  test("skips holidays and one-off closures", () => {
    expect(iso(nextOpen("WSE", at("2024-03-28T16:00:00Z")))).toBe("2024-04-02T07:00:00.000Z"); // Good Friday, Easter Monday
    expect(iso(nextOpen("WSE", at("2025-12-23T16:10:00Z")))).toBe("2025-12-29T08:00:00.000Z"); // 24-26 December, weekend
    expect(iso(nextOpen("NYSE", at("2025-01-08T21:00:00Z")))).toBe("2025-01-10T14:30:00.000Z"); // Carter day of mourning
    expect(iso(nextOpen("NYSE", at("2025-07-03T18:00:00Z")))).toBe("2025-07-07T13:30:00.000Z"); // early close, July 4, weekend
  });

  test("from before the day's phase, and into the after-hours of an early close", () => {
    expect(iso(nextOpen("NYSE", at("2025-07-03T05:00:00Z"), ["post"]))).toBe("2025-07-03T17:00:00.000Z");
    expect(iso(nextOpen("NYSE", at("2025-07-03T21:00:00Z"), ["post"]))).toBe("2025-07-07T20:00:00.000Z");
    expect(iso(nextOpen("WSE", at("2025-03-31T15:05:00Z"), ["post"]))).toBe("2025-04-01T15:00:00.000Z");
  });

  test("the result is in the wanted phase and nothing earlier is", () => {
    // Step through two weeks around a clock change in 7-minute steps.
    for (const market of ["WSE", "NYSE"] as const) {
      for (let t = at("2025-03-05T00:00:00Z"); t < at("2025-03-19T00:00:00Z"); t += 7 * 60_000) {
        const o = nextOpen(market, t);
        expect(o).toBeGreaterThanOrEqual(t);
        expect(isOpen(market, o)).toBe(true);
        if (o > t) expect(isOpen(market, o - 1)).toBe(false);
      }
    }
  });
});

describe("phasesOn", () => {
  test("a regular and an early-close NYSE day", () => {
    expect(phasesOn("NYSE", "2025-11-28").map((s) => [s.phase, iso(s.from), iso(s.to)])).toEqual([
      ["pre", "2025-11-28T09:00:00.000Z", "2025-11-28T14:30:00.000Z"],
      ["open", "2025-11-28T14:30:00.000Z", "2025-11-28T18:00:00.000Z"],
      ["post", "2025-11-28T18:00:00.000Z", "2025-11-28T22:00:00.000Z"],
    ]);
    expect(phasesOn("WSE", "2025-06-02").map((s) => [s.phase, iso(s.from), iso(s.to)])).toEqual([
      ["pre", "2025-06-02T06:30:00.000Z", "2025-06-02T07:00:00.000Z"],
      ["open", "2025-06-02T07:00:00.000Z", "2025-06-02T15:00:00.000Z"],
      ["post", "2025-06-02T15:00:00.000Z", "2025-06-02T15:05:00.000Z"],
    ]);
    expect(phasesOn("WSE", "2025-06-19")).toEqual([]); // Corpus Christi
    expect(phasesOn("NYSE", "2025-06-21")).toEqual([]); // Saturday
  });

  test("every trading day 2000-2035: three contiguous phases around the session, of the expected lengths", () => {
    const H = 3_600_000;
    const earlyCloses: Record<"WSE" | "NYSE", string[]> = { WSE: [], NYSE: [] };
    for (const market of ["WSE", "NYSE"] as const) {
      for (const date of tradingDaysBetween(market, "1999-12-31", "2036-01-01")) {
        const spans = phasesOn(market, date);
        const session = sessionFor(market, date)!;
        expect(spans.map((s) => s.phase)).toEqual(["pre", "open", "post"]);
        expect([date, spans[0]!.to, spans[1]!.from, spans[1]!.to, spans[2]!.from]).toEqual([date, session.open, session.open, session.close, session.close]);
        const lengths = spans.map((s) => (s.to - s.from) / H);
        if (market === "WSE") expect([date, ...lengths]).toEqual([date, 0.5, 8, 5 / 60]);
        else if (date === "2002-09-11") expect(lengths).toEqual([8, 4, 4]); // the late open: 04:00-12:00-16:00-20:00
        else if (session.early) {
          earlyCloses.NYSE.push(date);
          expect([date, ...lengths]).toEqual([date, 5.5, 3.5, 4]); // 04:00-09:30-13:00-17:00
        } else expect([date, ...lengths]).toEqual([date, 5.5, 6.5, 4]);
      }
    }
    expect(isTradingDay("NYSE", "2002-09-11")).toBe(true);
    // Early closes per year: the day after Thanksgiving always, Christmas Eve on Mon-Thu, the
    // day before (or, before 2013, after) Independence Day on most weekdays; 2003 also had
    // December 26 (a one-off in the shipped exceptions), so at most four.
    const perYear = new Map<string, number>();
    for (const d of earlyCloses.NYSE) perYear.set(d.slice(0, 4), (perYear.get(d.slice(0, 4)) ?? 0) + 1);
    for (let y = 2000; y <= 2035; y++) expect([y, (perYear.get(String(y)) ?? 0) >= 1 && (perYear.get(String(y)) ?? 0) <= 4]).toEqual([y, true]);
    expect(earlyCloses.NYSE.filter((d) => d.startsWith("2003"))).toEqual(["2003-07-03", "2003-11-28", "2003-12-24", "2003-12-26"]);
    expect(earlyCloses.NYSE.filter((d) => d.startsWith("2025"))).toEqual(["2025-07-03", "2025-11-28", "2025-12-24"]);
    expect(earlyCloses.NYSE.filter((d) => d.startsWith("2026"))).toEqual(["2026-11-27", "2026-12-24"]);
  });
});
