// The holiday rules of a market file, evaluated for one year: the days they name, as day numbers.
// Run once per (market, year) by the calendar, which caches the result.
import { dayNumber, easterSunday, lastWeekday, nthWeekday, weekday } from "../days.ts";
import { lunarDay, solarTermDay } from "./lunisolar.ts";
import { OBSERVANCES, WEEKDAYS, type HolidayRule } from "./schema.ts";

const weekdayIndex = (name: (typeof WEEKDAYS)[number]) => WEEKDAYS.indexOf(name);

/** US federal observance: a Saturday holiday moves to Friday, a Sunday one to Monday. */
function nearestWeekday(n: number): number {
  const wd = weekday(n);
  return wd === 6 ? n - 1 : wd === 0 ? n + 1 : n;
}

const isWeekend = (n: number) => weekday(n) === 0 || weekday(n) === 6;

/**
 * Substitute-day observance (UK, Canada, Australia): a day on a weekend, or on a day an earlier
 * rule already named, moves to the next weekday that is neither, so that two holidays that both
 * move (Christmas on Saturday, Boxing Day on Sunday) land on Monday and Tuesday.
 */
function nextFreeWeekday(n: number, taken: readonly number[]): number {
  let d = n;
  while (isWeekend(d) || taken.includes(d)) d++;
  return d;
}

/**
 * Hong Kong's observance: a day on a Sunday, or on a weekday an earlier rule already named, moves
 * to the next day that is neither. A Saturday one stays, even on another holiday: Hong Kong does
 * not substitute Saturday holidays, and no coincidence on a Saturday is known to have moved one.
 */
function nextFreeDay(n: number, taken: readonly number[]): number {
  if (weekday(n) === 6) return n;
  let d = n;
  while (weekday(d) === 0 || taken.includes(d)) d++;
  return d;
}

/** The Friday before a weekend day (a weekday stays). */
function previousWeekday(n: number): number {
  const wd = weekday(n);
  return wd === 6 ? n - 1 : wd === 0 ? n - 2 : n;
}

/** The last `wd` on or before day n. */
function weekdayOnOrBefore(n: number, wd: number): number {
  return n - ((weekday(n) - wd + 7) % 7);
}

const monthDay = (y: number, mmdd: string) => dayNumber(y, Number(mmdd.slice(0, 2)), Number(mmdd.slice(3, 5)));

/** Day n as observed; null when it is not observed (sunday-to-monday drops a Saturday one). */
function observe(n: number, observed: (typeof OBSERVANCES)[number] | undefined, taken: readonly number[]): number | null {
  if (observed === "nearest-weekday") return nearestWeekday(n);
  if (observed === "next-weekday") return nextFreeWeekday(n, taken);
  if (observed === "next-free-day") return nextFreeDay(n, taken);
  if (observed === "previous-weekday") return previousWeekday(n);
  if (observed === "substitute") return n; // the day itself; its substitute is added once every rule has named its day
  // A Saturday one is not observed at all; a Sunday one moves to Monday.
  if (observed === "sunday-to-monday") return weekday(n) === 6 ? null : weekday(n) === 0 ? n + 1 : n;
  return n;
}

/**
 * Japan's equinox day in a year, by the approximation its published dates follow (the constants
 * of the formula widely quoted for 1980-2099); null outside those years, where it does not hold.
 * Written here because no library the project ships computes it.
 */
function equinoxDay(kind: "vernal" | "autumnal", y: number): number | null {
  if (y < 1980 || y > 2099) return null;
  const base = kind === "vernal" ? 20.8431 : 23.2488;
  const day = Math.floor(base + 0.242194 * (y - 1980) - Math.floor((y - 1980) / 4));
  return dayNumber(y, kind === "vernal" ? 3 : 9, day);
}

/**
 * The day a rule names in a year, before its offset; null when it is not observed that year.
 * `taken`: the days the rules before it named that year (what a substitute day must avoid).
 */
function namedDay(rule: NamingRule, y: number, taken: readonly number[]): number | null {
  if ("equinox" in rule) return equinoxDay(rule.equinox, y);
  if ("easter" in rule) return easterSunday(y) + rule.easter;
  if ("onOrBefore" in rule) return weekdayOnOrBefore(monthDay(y, rule.onOrBefore), weekdayIndex(rule.weekday));
  if ("nth" in rule) {
    const wd = weekdayIndex(rule.weekday);
    return rule.nth === "last" ? lastWeekday(y, rule.month, wd) : nthWeekday(y, rule.month, wd, rule.nth);
  }
  if ("lunar" in rule) {
    const n = lunarDay(y, Number(rule.lunar.slice(0, 2)), Number(rule.lunar.slice(3, 5)));
    return n === null ? null : observe(n, rule.observed, taken);
  }
  if ("solarTerm" in rule) return observe(solarTermDay(y, rule.solarTerm), rule.observed, taken);
  return observe(monthDay(y, rule.date), rule.observed, taken);
}

type NamingRule = Exclude<HolidayRule, { sandwiched: true }>;

const inYears = (rule: HolidayRule, y: number) => (rule.from === undefined || y >= rule.from) && (rule.until === undefined || y <= rule.until);

/**
 * The days (day numbers) the rules name in year `y`, in the rules' order, then the days between
 * two holidays (`sandwiched`), then the substitutes of Sunday holidays (`observed: "substitute"`).
 * Order matters to `next-weekday` and `next-free-day` observance: a rule moves past the days of the rules before it.
 */
export function ruleDays(rules: readonly HolidayRule[], y: number): number[] {
  const days: number[] = [];
  const sundays: number[] = []; // days of substitute-observed rules that fell on a Sunday
  const unmoved = new Set<number>(); // days named on their own date: what a sandwiched day sits between
  for (const rule of rules) {
    if (!inYears(rule, y) || "sandwiched" in rule) continue;
    const named = namedDay(rule, y, days);
    if (named === null) continue;
    const n = named + (rule.offset ?? 0);
    if (rule.onWeekdays !== undefined && !rule.onWeekdays.some((w) => weekdayIndex(w) === weekday(n))) continue;
    days.push(n);
    if ("observed" in rule && rule.observed === "substitute" && weekday(n) === 0) sundays.push(n);
    if (!("observed" in rule) || rule.observed === undefined || rule.observed === "substitute") unmoved.add(n);
  }
  for (const rule of rules) {
    if (!inYears(rule, y) || !("sandwiched" in rule)) continue;
    for (const n of [...unmoved]) {
      if (unmoved.has(n + 2) && !days.includes(n + 1) && (rule.onWeekdays === undefined || rule.onWeekdays.some((w) => weekdayIndex(w) === weekday(n + 1)))) days.push(n + 1);
    }
  }
  for (const n of sundays.sort((a, b) => a - b)) {
    let d = n + 1;
    while (days.includes(d)) d++;
    days.push(d);
  }
  return days;
}
