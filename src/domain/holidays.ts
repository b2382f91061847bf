// Why a market is closed on a weekday: the name of the holiday rule, or the reason of the one-off
// closure, that the market file gives for it. For people (the dashboard's market status); the
// calendar itself only needs to know that the day is closed.
import { digits, formatDate, parseDate, weekday } from "./days.ts";
import { isTradingDay, type Market } from "./calendar.ts";
import { marketInfo } from "./markets/index.ts";
import { ruleDays } from "./markets/rules.ts";

// Per (market, year): date → holiday name. Small (a dozen a year) and asked for a few dates.
const names = new Map<string, Map<string, string>>();

/** A rule's name without its note: `Christmas Day (on a weekend: …)`, `Good Friday: not a public holiday…` → the name. */
const shortName = (what: string) => what.split(/: | \(/)[0]!.trim() || what;

function yearNames(market: Market, year: number): Map<string, string> {
  const key = `${market} ${year}`;
  let byDate = names.get(key);
  if (byDate !== undefined) return byDate;
  const info = marketInfo(market)!;
  byDate = new Map();
  // ruleDays leaves out rules not observed that year, so which day is whose is read off the
  // prefixes of the list (a substitute day depends on the rules before it).
  let count = 0;
  for (let i = 0; i < info.holidays.length; i++) {
    const days = ruleDays(info.holidays.slice(0, i + 1), year);
    for (const n of days.slice(count)) byDate.set(formatDate(n), shortName(info.holidays[i]!.what));
    count = days.length;
  }
  for (const c of info.closures) if (digits(c.date, 0, 4) === year) byDate.set(c.date, c.reason);
  if (names.size > 1_000) names.clear();
  names.set(key, byDate);
  return byDate;
}

/**
 * The holiday a market is closed for on a local date, or null: on a trading day, and on a
 * weekend (closed, but for no holiday). An unknown market is a caller bug (RangeError).
 */
export function holidayName(market: Market, date: string): string | null {
  const n = parseDate(date);
  const wd = weekday(n);
  if (wd === 0 || wd === 6 || isTradingDay(market, date)) return null;
  return yearNames(market, digits(date, 0, 4)).get(date) ?? "closed";
}
