// DST weeks on three continents, through the calendar's public answers: the week New York moves its
// clocks (second Sunday of March) while London and Frankfurt have not (NYSE opens at 13:30Z, LSE
// still at 08:00Z), the week Europe moves (last Sunday of March), and Sydney's April and October
// changes (the other way round: summer time ends in April). For each: session open and close in
// UTC, the phase at the boundary instants, the gaps of open-aligned 1h bars over the week (none,
// and a removed session is exactly one), and their daily rollup (one bar per session, every 1h bar
// in exactly one: none lost, none doubled).
import { describe, expect, test } from "bun:test";
import type { Bar } from "../src/domain/bar.ts";
import { marketPhase, sessionFor, type Market } from "../src/domain/calendar.ts";
import { expectedUnits, findGaps, nextBarDue } from "../src/domain/gaps.ts";
import { rollup } from "../src/domain/rollup.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const at = (iso: string) => Date.parse(iso);
const HOUR = 3_600_000;

/** [open, close] of a session in UTC, ISO. */
function hours(market: Market, date: string): [string, string] | null {
  const s = sessionFor(market, date);
  return s && [new Date(s.open).toISOString(), new Date(s.close).toISOString()];
}

/** Open-aligned 1h bars of every session between two dates (the last one cut at the close), volume 1 each. */
function hourBars(market: Market, dates: string[]): Bar[] {
  const bars: Bar[] = [];
  for (const date of dates) {
    const s = sessionFor(market, date);
    if (!s) continue;
    for (let t = s.open; t < s.close; t += HOUR) bars.push({ source: "t", symbol: "X", interval: "1h", ts: t, open: 1, high: 1, low: 1, close: 1, volume: 1 });
  }
  return bars;
}

function week(from: string, days: number): string[] {
  return Array.from({ length: days }, (_, i) => new Date(at(`${from}T00:00:00Z`) + i * 86_400_000).toISOString().slice(0, 10));
}

/**
 * The 1h bars of `dates` at a market: no gap; without one session's bars exactly that session is
 * missing, with the bars it should hold; rolled up to 1d, one bar per session holding all of its
 * 1h bars.
 */
function checkHourBars(market: Market, dates: string[], drop: string) {
  const bars = hourBars(market, dates);
  const sessions = dates.filter((d) => sessionFor(market, d) !== null);
  const end = bars.at(-1)!.ts + HOUR; // just after the last session closed: nothing trailing
  expect(findGaps(market, "1h", bars.map((b) => b.ts), end)).toEqual([]);
  const dropped = sessionFor(market, drop)!;
  const kept = bars.filter((b) => b.ts < dropped.open || b.ts >= dropped.close);
  const perSession = Math.ceil((dropped.close - dropped.open) / HOUR);
  expect(findGaps(market, "1h", kept.map((b) => b.ts), end)).toEqual([{ from: drop, to: drop, units: 1, sessions: 1, bars: perSession, trailing: false }]);
  // The calendar's count of bars per session is what the bars hold, on both sides of the change.
  const units = expectedUnits(market, "1h", dates[0]!, dates.at(-1)!);
  expect(units.map((u) => u.key)).toEqual(sessions);
  expect(units.reduce((n, u) => n + u.bars, 0)).toBe(bars.length);
  const daily = rollup(bars, "1d", market);
  expect(daily.map((b) => new Date(b.ts).toISOString().slice(0, 10))).toEqual(sessions);
  expect(daily.reduce((n, b) => n + b.volume, 0)).toBe(bars.length);
  for (const b of daily) expect(b.volume).toBe(units.find((u) => u.key === new Date(b.ts).toISOString().slice(0, 10))!.bars);
}

describe("New York moves first: 2024-03-10 (EST → EDT), London still on GMT", () => {
  test("session instants and phases at the boundaries", () => {
    expect(hours("NYSE", "2024-03-08")).toEqual(["2024-03-08T14:30:00.000Z", "2024-03-08T21:00:00.000Z"]);
    expect(hours("NYSE", "2024-03-11")).toEqual(["2024-03-11T13:30:00.000Z", "2024-03-11T20:00:00.000Z"]);
    expect(hours("LSE", "2024-03-08")).toEqual(["2024-03-08T08:00:00.000Z", "2024-03-08T16:30:00.000Z"]);
    expect(hours("LSE", "2024-03-11")).toEqual(["2024-03-11T08:00:00.000Z", "2024-03-11T16:30:00.000Z"]);
    expect(hours("XETRA", "2024-03-11")).toEqual(["2024-03-11T08:00:00.000Z", "2024-03-11T16:30:00.000Z"]);
    // NYSE: pre-market until 13:30Z now (it was 14:30Z on Friday), after-hours from 20:00Z.
    expect(marketPhase("NYSE", at("2024-03-11T13:29:59.999Z"))).toBe("pre");
    expect(marketPhase("NYSE", at("2024-03-11T13:30:00Z"))).toBe("open");
    expect(marketPhase("NYSE", at("2024-03-11T19:59:59.999Z"))).toBe("open");
    expect(marketPhase("NYSE", at("2024-03-11T20:00:00Z"))).toBe("post");
    expect(marketPhase("NYSE", at("2024-03-08T14:29:59.999Z"))).toBe("pre");
    expect(marketPhase("NYSE", at("2024-03-08T20:59:59.999Z"))).toBe("open");
    // Pre-market opens at 04:00 New York: 08:00Z on Monday, 09:00Z on Friday.
    expect(marketPhase("NYSE", at("2024-03-11T07:59:59.999Z"))).toBe("closed");
    expect(marketPhase("NYSE", at("2024-03-11T08:00:00Z"))).toBe("pre");
    expect(marketPhase("NYSE", at("2024-03-08T08:30:00Z"))).toBe("closed");
    // London the same Monday: opening auction call 07:50-08:00Z, open until 16:30Z.
    expect(marketPhase("LSE", at("2024-03-11T07:59:59.999Z"))).toBe("pre");
    expect(marketPhase("LSE", at("2024-03-11T08:00:00Z"))).toBe("open");
    expect(marketPhase("LSE", at("2024-03-11T16:30:00Z"))).toBe("post");
    expect(marketPhase("LSE", at("2024-03-11T16:40:00Z"))).toBe("closed");
  });

  test("1h bars across the change: no gap, none lost or doubled in the daily rollup", () => {
    checkHourBars("NYSE", week("2024-03-04", 12), "2024-03-11");
    checkHourBars("LSE", week("2024-03-04", 12), "2024-03-12");
    // Staleness is measured in sessions: Friday's last NYSE bar (15:30 EST) is followed by
    // Monday's first, due at 14:30Z (13:30Z open in EDT + 1 h), not on Saturday.
    expect(new Date(nextBarDue("NYSE", "1h", at("2024-03-08T20:30:00Z"))).toISOString()).toBe("2024-03-11T14:30:00.000Z");
  });
});

describe("Europe moves: 2024-03-31 (CET → CEST, GMT → BST), New York already on EDT", () => {
  test("session instants and phases at the boundaries", () => {
    // Thursday before Easter (Good Friday and Easter Monday close London, Frankfurt and Warsaw).
    expect(hours("LSE", "2024-03-28")).toEqual(["2024-03-28T08:00:00.000Z", "2024-03-28T16:30:00.000Z"]);
    expect(hours("LSE", "2024-04-02")).toEqual(["2024-04-02T07:00:00.000Z", "2024-04-02T15:30:00.000Z"]);
    expect(hours("XETRA", "2024-03-28")).toEqual(["2024-03-28T08:00:00.000Z", "2024-03-28T16:30:00.000Z"]);
    expect(hours("XETRA", "2024-04-02")).toEqual(["2024-04-02T07:00:00.000Z", "2024-04-02T15:30:00.000Z"]);
    expect(hours("WSE", "2024-04-02")).toEqual(["2024-04-02T07:00:00.000Z", "2024-04-02T15:00:00.000Z"]);
    expect(hours("LSE", "2024-04-01")).toBeNull();
    // New York did not move this week: still 13:30Z.
    expect(hours("NYSE", "2024-04-01")).toEqual(["2024-04-01T13:30:00.000Z", "2024-04-01T20:00:00.000Z"]);
    expect(marketPhase("LSE", at("2024-04-02T06:59:59.999Z"))).toBe("pre");
    expect(marketPhase("LSE", at("2024-04-02T07:00:00Z"))).toBe("open");
    expect(marketPhase("LSE", at("2024-04-02T15:30:00Z"))).toBe("post");
    expect(marketPhase("XETRA", at("2024-04-02T15:29:59.999Z"))).toBe("open");
    expect(marketPhase("XETRA", at("2024-04-02T15:30:00Z"))).toBe("post");
    expect(marketPhase("WSE", at("2024-04-02T14:59:59.999Z"))).toBe("open");
    expect(marketPhase("WSE", at("2024-04-02T15:00:00Z"))).toBe("post");
    // Easter Monday in London is closed all day, whatever the clock.
    expect(marketPhase("LSE", at("2024-04-01T10:00:00Z"))).toBe("closed");
  });

  test("1h bars across the change: no gap, none lost or doubled in the daily rollup", () => {
    checkHourBars("LSE", week("2024-03-25", 12), "2024-04-02");
    checkHourBars("XETRA", week("2024-03-25", 12), "2024-03-28");
    // 8 h 30 at London: 9 bars a session on both sides.
    expect(expectedUnits("LSE", "1h", "2024-03-28", "2024-04-02").map((u) => [u.key, u.bars])).toEqual([["2024-03-28", 9], ["2024-04-02", 9]]);
  });
});

describe("Sydney moves the other way: AEDT ends 2024-04-07, starts 2024-10-06", () => {
  test("session instants and phases at the boundaries", () => {
    // April: 10:00 AEDT is 23:00Z the day before; from Monday 10:00 AEST is 00:00Z.
    expect(hours("ASX", "2024-04-05")).toEqual(["2024-04-04T23:00:00.000Z", "2024-04-05T05:00:00.000Z"]);
    expect(hours("ASX", "2024-04-08")).toEqual(["2024-04-08T00:00:00.000Z", "2024-04-08T06:00:00.000Z"]);
    // October: the other way.
    expect(hours("ASX", "2024-10-04")).toEqual(["2024-10-04T00:00:00.000Z", "2024-10-04T06:00:00.000Z"]);
    expect(hours("ASX", "2024-10-07")).toEqual(["2024-10-06T23:00:00.000Z", "2024-10-07T05:00:00.000Z"]);
    expect(marketPhase("ASX", at("2024-04-04T22:59:59.999Z"))).toBe("pre");
    expect(marketPhase("ASX", at("2024-04-04T23:00:00Z"))).toBe("open");
    expect(marketPhase("ASX", at("2024-04-05T05:00:00Z"))).toBe("post");
    expect(marketPhase("ASX", at("2024-04-07T23:30:00Z"))).toBe("pre"); // 09:30 AEST Monday
    expect(marketPhase("ASX", at("2024-04-08T00:00:00Z"))).toBe("open");
    expect(marketPhase("ASX", at("2024-04-08T05:59:59.999Z"))).toBe("open");
    expect(marketPhase("ASX", at("2024-10-06T22:59:59.999Z"))).toBe("pre");
    expect(marketPhase("ASX", at("2024-10-06T23:00:00Z"))).toBe("open");
    expect(marketPhase("ASX", at("2024-10-07T05:00:00Z"))).toBe("post");
    // 2024-10-06 is a Sunday in Sydney: closed at what would be the open.
    expect(marketPhase("ASX", at("2024-10-06T00:00:00Z"))).toBe("closed");
  });

  test("1h bars across both changes: no gap, none lost or doubled; a Sydney session is its local day", () => {
    checkHourBars("ASX", week("2024-04-01", 12), "2024-04-05");
    checkHourBars("ASX", week("2024-09-30", 12), "2024-10-07");
    // The first bar of the 2024-10-07 session is stamped on the UTC day before, and counts for the 7th.
    const oct = hourBars("ASX", ["2024-10-04", "2024-10-07"]);
    expect(new Date(oct[6]!.ts).toISOString()).toBe("2024-10-06T23:00:00.000Z");
    const daily = rollup(oct, "1d", "ASX");
    expect(daily.map((b) => [new Date(b.ts).toISOString().slice(0, 10), b.volume])).toEqual([["2024-10-04", 6], ["2024-10-07", 6]]);
    // The bar after Friday's last one (15:00 AEST) is Monday's first, due at 00:00Z (AEDT open 23:00Z + 1 h).
    expect(new Date(nextBarDue("ASX", "1h", at("2024-10-04T05:00:00Z"))).toISOString()).toBe("2024-10-07T00:00:00.000Z");
  });
});
