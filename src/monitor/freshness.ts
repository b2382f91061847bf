// Data freshness per series against its own market's calendar (the market of its symbol): for
// each of the last `days` session dates, whether the series has a bar that day, misses one on a
// trading day, or the market did not trade. The columns are dates, the same for every row; a
// series' cell of a date is its market's session of that local date. The dashboard draws it as a
// heat map; it reads the store's series and bars, and the exchange calendars, nothing else.
import type { Interval } from "../domain/bar.ts";
import { sessionFor, type Market } from "../domain/calendar.ts";
import { barDate, latestCompletedSession } from "../domain/gaps.ts";
import { marketOf } from "../domain/symbols.ts";
import { marketCodes } from "../domain/markets/index.ts";
import type { BarReader } from "../stores/types.ts";
import { marketsStatus, type MarketStatus } from "./markets.ts";

/**
 * One letter per day, oldest first:
 *   S  stored: the series has a bar dated that day
 *   M  missing: a trading day whose session has closed and no bar is stored
 *   P  pending: a trading day whose session has not closed yet (no bar yet is not a gap)
 *   -  not a session: weekend, holiday or one-off closure
 *   ?  unknown: the symbol has no market, or the series had not started yet
 */
export type FreshnessCell = "S" | "M" | "P" | "-" | "?";

export type FreshnessRow = {
  symbol: string;
  source: string;
  market: Market | null;
  interval: Interval;
  last: string;
  /** The latest session of its market that has closed (null: no market); later cells are pending or closed. */
  latestSession: string | null;
  /** The cells as one string, one letter per date in `dates`. */
  cells: string;
  stored: number;
  missing: number;
};

export type Freshness = {
  interval: Interval;
  /** The local dates of the columns, oldest first (the same for every market). */
  dates: string[];
  /** Per market, one letter per date: T trading day, - not a session. */
  sessions: Record<Market, string>;
  rows: FreshnessRow[];
  /** Every market of the registry now: phase, next open and close, today's holiday. */
  markets: Record<Market, MarketStatus>;
  generatedAt: string;
};

function addDays(date: string, n: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
}

/** The session of a date, or null; a date outside the shipped calendar counts as unknown (undefined). */
function sessionOrUnknown(market: Market, date: string) {
  try {
    return sessionFor(market, date);
  } catch {
    return undefined;
  }
}

/** The latest completed session of a market, or null outside the calendar's coverage. */
function latestOrNull(market: Market, now: number): string | null {
  try {
    return latestCompletedSession(market, now);
  } catch {
    return null;
  }
}

/**
 * `to`: the last column's date; by default the UTC date of `now`. Every market's session of a
 * later date is still to come or under way (no exchange closes before its date begins in UTC),
 * so no closed session is ever cut off, and a day only Sydney or Tokyo has reached is not shown
 * as pending for every other market.
 */
export async function freshness(store: BarReader, opts: { days: number; interval: Interval; market?: Market; symbols?: string[]; to?: string; now?: number }): Promise<Freshness> {
  const now = opts.now ?? Date.now();
  const today = opts.to ?? new Date(now).toISOString().slice(0, 10);
  const dates = Array.from({ length: opts.days }, (_, i) => addDays(today, i - opts.days + 1));
  const sessions = {} as Record<Market, string>;
  const sessionLetters = (market: Market) =>
    dates.map((d) => {
      const s = sessionOrUnknown(market, d);
      if (s === undefined) return "?";
      if (s === null) return "-";
      return s.close > now ? "P" : "T";
    });
  const letters = Object.fromEntries(marketCodes().map((m) => [m, sessionLetters(m)])) as Record<Market, string[]>;
  for (const m of marketCodes()) sessions[m] = letters[m].join("");
  // A local date's bars lie within a day either side of the UTC day of that date.
  const from = Date.parse(`${dates[0]}T00:00:00Z`) - 86_400_000;
  const to = Date.parse(`${today}T23:59:59.999Z`) + 86_400_000;
  const rows: FreshnessRow[] = [];
  const wanted = opts.symbols ? new Set(opts.symbols) : null;
  const series = (await store.listSeries()).filter((s) => s.interval === opts.interval && (!wanted || wanted.has(s.symbol)));
  for (const s of series) {
    const market = marketOf(s.symbol) ?? null;
    if (opts.market && market !== opts.market) continue;
    // A bar counts for its session's date: a daily bar's own date, an intraday bar's local date
    // at its market (a Sydney bar at 23:00Z belongs to the next day's session); with no market,
    // its UTC date.
    const dateOf = (ts: number) => (market ? barDate(market, s.interval, ts) : new Date(ts).toISOString().slice(0, 10));
    const have = new Set<string>();
    if (s.lastTs >= from) {
      const bars = await store.queryBars({ symbol: s.symbol, interval: s.interval, source: s.source, from, to, limit: (opts.days + 2) * (s.interval === "1d" ? 1 : 2_000) });
      for (const b of bars) have.add(dateOf(b.ts));
    }
    const firstDate = dateOf(s.firstTs);
    let stored = 0;
    let missing = 0;
    const cells = dates.map((d, i): FreshnessCell => {
      if (have.has(d)) return stored++, "S";
      if (!market || d < firstDate) return "?";
      const l = letters[market][i];
      if (l === "T") return missing++, "M";
      return l === "P" ? "P" : l === "-" ? "-" : "?";
    });
    const latestSession = market ? latestOrNull(market, now) : null;
    rows.push({ symbol: s.symbol, source: s.source, market, interval: s.interval, last: new Date(s.lastTs).toISOString(), latestSession, cells: cells.join(""), stored, missing });
  }
  rows.sort((a, b) => b.missing - a.missing || a.symbol.localeCompare(b.symbol) || a.source.localeCompare(b.source));
  const markets = Object.fromEntries(marketsStatus(now).map((m) => [m.market, m])) as Record<Market, MarketStatus>;
  return { interval: opts.interval, dates, sessions, rows, markets, generatedAt: new Date(now).toISOString() };
}
