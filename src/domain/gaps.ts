// Gaps: the sessions a series should have a bar for, by its market's calendar, and which of them
// it lacks. A holiday is not a gap; a missing ordinary session is. The unit is the session for
// daily and intraday bars (intraday: a session with no bar at all), the ISO week or calendar
// month (with at least one session) for weekly and monthly bars. Sessions are the calendar's: a
// weekend is one at a market that trades on it (a missing CRYPTO Saturday is a gap, FX has none),
// and an intraday bar counts for its trade date (FX: a bar at Sunday 22:00Z is Monday's).
import { INTERVAL_MS, type Interval } from "./bar.ts";
import { calendarCoverage, isTradingDay, nextOpen, nextTradingDay, type Market } from "./calendar.ts";
import { addDays, dateMs, dateOf, isIntraday, isoWeekMonday, localDate, localMidnight, nextMonthStart, sessionOn } from "./rollup.ts";

const DAY_MS = 86_400_000;

/** One expected bar slot: its key, the session dates it spans, and how many bars it should hold. */
export type GapUnit = { key: string; from: string; to: string; sessions: number; bars: number };

/** A run of consecutive missing units; `trailing` when it lies after the series' last bar. */
export type GapRun = { from: string; to: string; units: number; sessions: number; bars: number; trailing: boolean };

// Every trading day of a market over the calendar's coverage, sorted, built once.
const sessionIndex = new Map<Market, string[]>();

function tradingDays(market: Market): string[] {
  let days = sessionIndex.get(market);
  if (days === undefined) {
    days = [];
    const cover = calendarCoverage(market);
    for (let d = cover.from; d <= cover.to; d = addDays(d, 1)) if (isTradingDay(market, d)) days.push(d);
    sessionIndex.set(market, days);
  }
  return days;
}

/** Index of the first element >= date. */
function lowerBound(days: string[], date: string): number {
  let lo = 0;
  let hi = days.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (days[mid]! < date) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Trading days in [from, to], both inclusive, within the calendar's coverage. */
export function sessionsIn(market: Market, from: string, to: string): string[] {
  const days = tradingDays(market);
  return days.slice(lowerBound(days, from), lowerBound(days, addDays(to, 1)));
}

/** Number of trading days in [from, to] without building the list: the cheap first check. */
export function countSessions(market: Market, from: string, to: string): number {
  const days = tradingDays(market);
  return Math.max(0, lowerBound(days, addDays(to, 1)) - lowerBound(days, from));
}

/** The unit key of a session date. */
export function unitKey(interval: Interval, date: string): string {
  if (interval === "1w") return isoWeekMonday(date);
  if (interval === "1mo") return date.slice(0, 7);
  return date;
}

/** The date a stored bar counts for: its exchange date for intraday bars, its UTC date otherwise. */
export function barDate(market: Market, interval: Interval, ts: number): string {
  return isIntraday(interval) ? localDate(market, ts) : dateOf(ts - (((ts % DAY_MS) + DAY_MS) % DAY_MS));
}

/** The ts window [from, to) in which a bar of the unit lies. */
export function unitWindow(market: Market, interval: Interval, key: string): { from: number; to: number } {
  if (isIntraday(interval)) return { from: localMidnight(market, key), to: localMidnight(market, addDays(key, 1)) };
  if (interval === "1w") return { from: dateMs(key), to: dateMs(addDays(key, 7)) };
  if (interval === "1mo") return { from: dateMs(`${key}-01`), to: dateMs(nextMonthStart(`${key}-01`)) };
  return { from: dateMs(key), to: dateMs(key) + DAY_MS };
}

/** Bars an intraday session holds at an interval (the last one cut at the close), else 1. */
function barsIn(market: Market, interval: Interval, date: string): number {
  if (!isIntraday(interval)) return 1;
  const s = sessionOn(market, date);
  return s === null ? 0 : Math.ceil((s.close - s.open) / INTERVAL_MS[interval]);
}

/** The units with sessions in [from, to], in order. */
export function expectedUnits(market: Market, interval: Interval, from: string, to: string): GapUnit[] {
  const units: GapUnit[] = [];
  for (const date of sessionsIn(market, from, to)) {
    const key = unitKey(interval, date);
    const last = units[units.length - 1];
    if (last !== undefined && last.key === key) {
      last.to = date;
      last.sessions++;
      if (isIntraday(interval)) last.bars += barsIn(market, interval, date);
    } else units.push({ key, from: date, to: date, sessions: 1, bars: barsIn(market, interval, date) });
  }
  return units;
}

/** The last session that has closed at `now`, or null before the calendar's coverage. */
export function latestCompletedSession(market: Market, now: number): string | null {
  const days = tradingDays(market);
  let i = lowerBound(days, addDays(localDate(market, now), 1)) - 1;
  while (i >= 0) {
    const s = sessionOn(market, days[i]!);
    if (s !== null && s.close <= now) return days[i]!;
    i--;
  }
  return null;
}

/** Consecutive missing units as runs. */
export function missingRuns(units: readonly GapUnit[], present: (key: string) => boolean, trailing = false): GapRun[] {
  const runs: GapRun[] = [];
  let run: GapRun | null = null;
  for (const u of units) {
    if (present(u.key)) {
      run = null;
      continue;
    }
    if (run === null) runs.push((run = { from: u.from, to: u.to, units: 1, sessions: u.sessions, bars: u.bars, trailing }));
    else {
      run.to = u.to;
      run.units++;
      run.sessions += u.sessions;
      run.bars += u.bars;
    }
  }
  return runs;
}

/**
 * Gaps of a series from the ts of its bars (any order), its market and interval: the units
 * between its first and last bar with no bar, then (trailing) those after its last bar up to the
 * latest session completed at `now`. Only the calendar's coverage (2000-2035) is looked at.
 */
export function findGaps(market: Market, interval: Interval, ts: readonly number[], now: number): GapRun[] {
  if (ts.length === 0) return [];
  const present = new Set(ts.map((t) => unitKey(interval, barDate(market, interval, t))));
  let first = Infinity;
  let last = -Infinity;
  for (const t of ts) {
    first = Math.min(first, t);
    last = Math.max(last, t);
  }
  const firstDate = barDate(market, interval, first);
  const lastDate = barDate(market, interval, last);
  return [...missingRuns(expectedUnits(market, interval, firstDate, lastDate), (k) => present.has(k)), ...trailingRuns(market, interval, lastDate, now)];
}

/** Units after the one `lastDate` is in, up to the latest completed session: all missing. */
export function trailingRuns(market: Market, interval: Interval, lastDate: string, now: number): GapRun[] {
  const latest = latestCompletedSession(market, now);
  if (latest === null || latest <= lastDate) return [];
  const lastKey = unitKey(interval, lastDate);
  const units = expectedUnits(market, interval, addDays(lastDate, 1), latest).filter((u) => u.key !== lastKey);
  return missingRuns(units, () => false, true);
}

/**
 * The instant by which the bar after one at `lastTs` should have ended, by the market's sessions:
 * staleness is measured from it, so weekends, holidays and the night between sessions never count.
 * Intraday: the next bar of the same session (cut at the close), else the first bar after the
 * next opening; daily: the close of the next session; weekly and monthly: the close of the last session
 * of the next week or month that has one.
 */
export function nextBarDue(market: Market, interval: Interval, lastTs: number): number {
  const lastDate = barDate(market, interval, lastTs);
  if (isIntraday(interval)) {
    // The next bar starts when the last one ends if the market is open then, else at the next
    // (re)opening: after the close, a weekend, a holiday or a lunch break.
    const ms = INTERVAL_MS[interval];
    const start = nextOpen(market, lastTs + ms);
    const s = sessionOn(market, localDate(market, start));
    return Math.min(start + ms, s?.close ?? start + ms);
  }
  if (interval === "1d") return sessionOn(market, nextTradingDay(market, lastDate))!.close;
  // The next week or month with a session lies well within 70 days of the last bar's.
  const lastKey = unitKey(interval, lastDate);
  const next = expectedUnits(market, interval, addDays(lastDate, 1), addDays(lastDate, 70)).find((u) => u.key !== lastKey);
  if (next === undefined) throw new RangeError(`no ${market} ${interval} unit within 70 days of ${lastDate}`);
  return sessionOn(market, next.to)!.close;
}
