// Every market of the registry as the dashboard shows it at an instant: its phase, its local date,
// the next regular open and close, and the holiday it is closed for today (if it is). Read from
// the calendars only, in registry order: a market added as a data file shows up here by itself.
import { marketPhase, nextOpen, sessionFor, type Market, type MarketPhase } from "../domain/calendar.ts";
import { holidayName } from "../domain/holidays.ts";
import { MARKETS } from "../domain/markets/index.ts";
import { localDate } from "../domain/rollup.ts";

export type MarketStatus = {
  market: Market;
  name: string;
  timeZone: string;
  /** The market's local date now. */
  date: string;
  phase: MarketPhase;
  /** The next start of the regular session (now, when it is open), ISO; null beyond the calendar. */
  nextOpen: string | null;
  /** The end of the regular session that is open now, else of the next one, ISO. */
  nextClose: string | null;
  /** The holiday the market is closed for on its local date today; null on a trading day or a weekend. */
  holiday: string | null;
};

const iso = (t: number) => new Date(t).toISOString();

export function marketStatus(market: Market, now: number): MarketStatus {
  const info = MARKETS.find((m) => m.code === market);
  if (info === undefined) throw new RangeError(`unknown market ${JSON.stringify(market)}`);
  const date = localDate(market, now);
  let open: number | null = null;
  let close: number | null = null;
  try {
    open = nextOpen(market, now);
    // The session that opens at `open` (now, when it is open) is the one of its local date.
    close = sessionFor(market, localDate(market, open))?.close ?? null;
  } catch {
    // Beyond the calendar's search horizon: no next session is known.
  }
  return { market, name: info.name, timeZone: info.timeZone, date, phase: marketPhase(market, now), nextOpen: open === null ? null : iso(open), nextClose: close === null ? null : iso(close), holiday: holidayName(market, date) };
}

/** Every market of the registry, in its order. */
export function marketsStatus(now: number): MarketStatus[] {
  return MARKETS.map((m) => marketStatus(m.code, now));
}
