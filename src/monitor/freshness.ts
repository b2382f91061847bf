// Data freshness per series against its market's calendar: for each of the last `days` local
// dates, whether the series has a bar that day, misses one on a trading day, or the market did not
// trade. The dashboard draws it as a heat map; it reads the store's series and bars, and the
// exchange calendars, nothing else.
import type { Interval } from "../domain/bar.ts";
import { MARKET_TIMEZONES, marketPhase, nextOpen, sessionFor, type Market, type MarketPhase } from "../domain/calendar.ts";
import { marketOf } from "../domain/symbols.ts";
import { marketCodes } from "../domain/markets/index.ts";
import { utcDate } from "../domain/time.ts";
import type { BarReader } from "../stores/types.ts";

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
  /** Each market's phase now and its next regular open. */
  markets: Record<Market, { phase: MarketPhase; nextOpen: string | null }>;
  generatedAt: string;
};

/** The local calendar date of an instant in a time zone, YYYY-MM-DD. */
function localDate(instant: number, timeZone: string): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(instant);
}

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

/** `to`: the last column's date (default: today, the later of the markets' local dates). */
export async function freshness(store: BarReader, opts: { days: number; interval: Interval; market?: Market; symbols?: string[]; to?: string; now?: number }): Promise<Freshness> {
  const now = opts.now ?? Date.now();
  const today = opts.to ?? marketCodes().map((m) => localDate(now, MARKET_TIMEZONES[m])).sort().at(-1)!;
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
  const from = Date.parse(`${dates[0]}T00:00:00Z`);
  const to = Date.parse(`${today}T23:59:59.999Z`);
  const rows: FreshnessRow[] = [];
  const wanted = opts.symbols ? new Set(opts.symbols) : null;
  const series = (await store.listSeries()).filter((s) => s.interval === opts.interval && (!wanted || wanted.has(s.symbol)));
  for (const s of series) {
    const market = marketOf(s.symbol) ?? null;
    if (opts.market && market !== opts.market) continue;
    const have = new Set<string>();
    if (s.lastTs >= from) {
      // Daily bars carry their session's date at 00:00 UTC; intraday bars are dated by their UTC day.
      const bars = await store.queryBars({ symbol: s.symbol, interval: s.interval, source: s.source, from, to, limit: opts.days * (s.interval === "1d" ? 1 : 2_000) });
      for (const b of bars) have.add(utcDate(b.ts));
    }
    const firstDate = utcDate(s.firstTs);
    let stored = 0;
    let missing = 0;
    const cells = dates.map((d, i): FreshnessCell => {
      if (have.has(d)) return stored++, "S";
      if (!market || d < firstDate) return "?";
      const l = letters[market][i];
      if (l === "T") return missing++, "M";
      return l === "P" ? "P" : l === "-" ? "-" : "?";
    });
    rows.push({ symbol: s.symbol, source: s.source, market, interval: s.interval, last: new Date(s.lastTs).toISOString(), cells: cells.join(""), stored, missing });
  }
  rows.sort((a, b) => b.missing - a.missing || a.symbol.localeCompare(b.symbol) || a.source.localeCompare(b.source));
  const markets = {} as Freshness["markets"];
  for (const m of marketCodes()) {
    let next: string | null = null;
    try {
      next = new Date(nextOpen(m, now)).toISOString();
    } catch {}
    markets[m] = { phase: marketPhase(m, now), nextOpen: next };
  }
  return { interval: opts.interval, dates, sessions, rows, markets, generatedAt: new Date(now).toISOString() };
}
