// The holiday rules of a market file, evaluated for one year: the days they name, as day numbers.
// Run once per (market, year) by the calendar, which caches the result.
import { dayNumber, easterSunday, lastWeekday, nthWeekday, weekday } from "../days.ts";
import { WEEKDAYS, type HolidayRule } from "./schema.ts";

const weekdayIndex = (name: (typeof WEEKDAYS)[number]) => WEEKDAYS.indexOf(name);

/** US federal observance: a Saturday holiday moves to Friday, a Sunday one to Monday. */
function nearestWeekday(n: number): number {
  const wd = weekday(n);
  return wd === 6 ? n - 1 : wd === 0 ? n + 1 : n;
}

/** The day a rule names in a year, before its offset; null when it is not observed that year. */
function namedDay(rule: HolidayRule, y: number): number | null {
  if ("easter" in rule) return easterSunday(y) + rule.easter;
  if ("nth" in rule) {
    const wd = weekdayIndex(rule.weekday);
    return rule.nth === "last" ? lastWeekday(y, rule.month, wd) : nthWeekday(y, rule.month, wd, rule.nth);
  }
  const n = dayNumber(y, Number(rule.date.slice(0, 2)), Number(rule.date.slice(3, 5)));
  if (rule.observed === "nearest-weekday") return nearestWeekday(n);
  // A Saturday one is not observed at all; a Sunday one moves to Monday.
  if (rule.observed === "sunday-to-monday") return weekday(n) === 6 ? null : weekday(n) === 0 ? n + 1 : n;
  return n;
}

/** The days (day numbers) the rules name in year `y`, in the rules' order. */
export function ruleDays(rules: readonly HolidayRule[], y: number): number[] {
  const days: number[] = [];
  for (const rule of rules) {
    if ((rule.from !== undefined && y < rule.from) || (rule.until !== undefined && y > rule.until)) continue;
    const named = namedDay(rule, y);
    if (named === null) continue;
    const n = named + (rule.offset ?? 0);
    if (rule.onWeekdays !== undefined && !rule.onWeekdays.some((w) => weekdayIndex(w) === weekday(n))) continue;
    days.push(n);
  }
  return days;
}
