// Dates of the Chinese calendar for holiday rules (Hong Kong's Lunar New Year, Tuen Ng, Chung
// Yeung...): a lunar month and day, and a solar term (Ching Ming). Day numbers as in days.ts.
// The lunar dates come from the runtime's ICU (Intl's `chinese` calendar), not from a table of
// our own: ICU carries the calendar, computed astronomically for China's zone, for any year.
import { dayNumber } from "../days.ts";

const DAY_MS = 86_400_000;

// One formatter, built once: Intl formatters are costly to build. UTC noon of a day number reads
// back that civil date; the Chinese calendar's new moons are ICU's, reckoned at UTC+8.
const CHINESE = new Intl.DateTimeFormat("en-u-ca-chinese", { timeZone: "UTC", year: "numeric", month: "numeric", day: "numeric" });

type ChineseDate = { year: number; month: number; leap: boolean; day: number };

/** The Chinese date of day n: `year` is the Gregorian year in which that Chinese year began. */
function chineseDate(n: number): ChineseDate {
  let year = NaN;
  let month = NaN;
  let day = NaN;
  let leap = false;
  for (const p of CHINESE.formatToParts(n * DAY_MS + DAY_MS / 2)) {
    const type: string = p.type; // "relatedYear" is missing from TypeScript's lib
    if (type === "relatedYear" || type === "year") year = Number.parseInt(p.value, 10);
    else if (p.type === "day") day = Number.parseInt(p.value, 10);
    else if (p.type === "month") {
      month = Number.parseInt(p.value, 10);
      leap = !/^\d+$/.test(p.value); // ICU writes a leap month with a mark ("6bis" in English)
    }
  }
  if (!(year > 0 && month >= 1 && month <= 12 && day >= 1 && day <= 30)) throw new Error("this runtime's Intl has no Chinese calendar (ICU without calendar data)");
  return { year, month, leap, day };
}

/** The first day of the Chinese month after the one day n is in (a month has 29 or 30 days). */
function nextMonthStart(n: number): number {
  const c = n + 30 - chineseDate(n).day;
  return chineseDate(c).day === 1 ? c : c + 1;
}

/**
 * The day on which the Chinese date month-day (of a regular month, not a leap one) falls in the
 * Chinese year that begins in Gregorian year y (Lunar New Year is between Jan 21 and Feb 20);
 * null when that month has no such day (a 30th in a 29-day month). ICU numbers the months (which
 * new moon begins which month, and which month is a leap one); the day a month begins is the
 * day of its new moon in China's civil time, taken from `newMoonInstant`, because ICU's own
 * astronomy misses new moons minutes from midnight (it puts Lunar New Year 2027 on February 7
 * and 2030 on February 2; the Hong Kong Observatory has February 6 and 3).
 */
export function lunarDay(y: number, month: number, day: number): number | null {
  const start = chinaDay(newMoonInstant(icuMonthStarts(y)[month - 1]!));
  if (day < 30) return start + day - 1;
  return chinaDay(newMoonInstant(start + 30)) > start + 29 ? start + 29 : null;
}

// ICU month starts per Chinese year, cached: some 25 format calls a year, asked by every lunar
// rule of it. One entry per year asked, as the calendar's own cache of years (calendar.ts).
const MONTH_STARTS = new Map<number, number[]>();

/** The first days (by ICU) of the twelve regular months of the Chinese year that begins in y. */
function icuMonthStarts(y: number): number[] {
  const cached = MONTH_STARTS.get(y);
  if (cached !== undefined) return cached;
  let n = dayNumber(y, 1, 21);
  let c = chineseDate(n);
  while (!(c.year === y && c.month === 1 && !c.leap)) {
    n = nextMonthStart(n);
    c = chineseDate(n);
  }
  n -= c.day - 1; // Lunar New Year's Day, by ICU
  const starts: number[] = [];
  for (c = chineseDate(n); starts.length < 12; n = nextMonthStart(n), c = chineseDate(n)) if (!c.leap) starts.push(n);
  MONTH_STARTS.set(y, starts);
  return starts;
}

/** The civil day (UTC+8, the zone the Chinese calendar is reckoned in) of an instant. */
const chinaDay = (ms: number) => Math.floor((ms + 8 * 3_600_000) / DAY_MS);

const rad = Math.PI / 180;
const sin = (degrees: number) => Math.sin(degrees * rad);

// Meeus, Astronomical Algorithms (2nd ed.), ch. 49: the periodic terms of a true new moon
// ([coefficient, multiples of M' (moon's anomaly), M (sun's), F (latitude argument)], the ones
// with M multiplied by E to its power) and the planetary arguments A1-A14 [a, b·k, coefficient].
const NEW_MOON_TERMS: readonly (readonly [number, number, number, number])[] = [
  [-0.4072, 1, 0, 0], [0.17241, 0, 1, 0], [0.01608, 2, 0, 0], [0.01039, 0, 0, 2], [0.00739, 1, -1, 0],
  [-0.00514, 1, 1, 0], [0.00208, 0, 2, 0], [-0.00111, 1, 0, -2], [-0.00057, 1, 0, 2], [0.00056, 2, 1, 0],
  [-0.00042, 3, 0, 0], [0.00042, 0, 1, 2], [0.00038, 0, 1, -2], [-0.00024, 2, -1, 0], [-0.00007, 1, 2, 0],
  [0.00004, 2, 0, -2], [0.00004, 0, 3, 0], [0.00003, 1, 1, -2], [0.00003, 2, 0, 2], [-0.00003, 1, 1, 2],
  [0.00003, 1, -1, 2], [-0.00002, 1, -1, -2], [-0.00002, 3, 1, 0], [0.00002, 4, 0, 0],
];
const PLANETARY_TERMS: readonly (readonly [number, number, number])[] = [
  [299.77, 0.107408, 0.000325], [251.88, 0.016321, 0.000165], [251.83, 26.651886, 0.000164], [349.42, 36.412478, 0.000126],
  [84.66, 18.206239, 0.00011], [141.74, 53.303771, 0.000062], [207.14, 2.453732, 0.00006], [154.84, 7.30686, 0.000056],
  [34.52, 27.261239, 0.000047], [207.19, 0.121824, 0.000042], [291.34, 1.844379, 0.00004], [161.72, 24.198154, 0.000037],
  [239.56, 25.513099, 0.000035], [331.55, 3.592518, 0.000023],
];
/** TT - UT, seconds: 64 s in 2000, 69 s since 2017; taken as 69 s (a few seconds off this century). */
const DELTA_T_S = 69;
const JD_UNIX_EPOCH = 2_440_587.5;

/**
 * The instant (ms, UT) of the new moon nearest to day n, by Meeus ch. 49 (mean error some
 * seconds, at most about half a minute): enough to tell the day of a new moon but within a minute
 * of midnight. Written here because no library of ours computes it (ICU's is the one that errs).
 */
export function newMoonInstant(n: number): number {
  const k = Math.round((n + JD_UNIX_EPOCH - 2_451_550.09766) / 29.530588861);
  const t = k / 1236.85;
  const e = 1 - 0.002516 * t - 0.0000074 * t * t;
  const m = 2.5534 + 29.1053567 * k - 0.0000014 * t * t - 0.00000011 * t ** 3;
  const mm = 201.5643 + 385.81693528 * k + 0.0107582 * t * t + 0.00001238 * t ** 3 - 0.000000058 * t ** 4;
  const f = 160.7108 + 390.67050284 * k - 0.0016118 * t * t - 0.00000227 * t ** 3 + 0.000000011 * t ** 4;
  const omega = 124.7746 - 1.56375588 * k + 0.0020672 * t * t + 0.00000215 * t ** 3;
  let jde = 2_451_550.09766 + 29.530588861 * k + 0.00015437 * t * t - 0.00000015 * t ** 3 + 0.00000000073 * t ** 4;
  for (const [coefficient, moon, sun, lat] of NEW_MOON_TERMS) jde += coefficient * e ** Math.abs(sun) * sin(moon * mm + sun * m + lat * f);
  jde += -0.00017 * sin(omega);
  for (const [a, b, coefficient] of PLANETARY_TERMS) jde += coefficient * sin(a + b * k - (a === 299.77 ? 0.009173 * t * t : 0));
  return (jde - JD_UNIX_EPOCH) * DAY_MS - DELTA_T_S * 1000;
}


/**
 * The sun's apparent ecliptic longitude (degrees, 0-360) at an instant, by Meeus's low-accuracy
 * formulas (Astronomical Algorithms, ch. 25: about 0.01°, some 15 minutes of the sun's motion;
 * ΔT, about a minute this century, is ignored). Written here: a few lines, where no library of
 * ours computes it.
 */
function solarLongitude(ms: number): number {
  const t = (ms / DAY_MS + 2_440_587.5 - 2_451_545) / 36_525; // Julian centuries from J2000
  const l0 = 280.46646 + 36_000.76983 * t + 0.0003032 * t * t;
  const m = (357.52911 + 35_999.05029 * t - 0.0001537 * t * t) * rad;
  const c = (1.914602 - 0.004817 * t - 0.000014 * t * t) * Math.sin(m) + (0.019993 - 0.000101 * t) * Math.sin(2 * m) + 0.000289 * Math.sin(3 * m);
  const omega = (125.04 - 1934.136 * t) * rad;
  const lon = l0 + c - 0.00569 - 0.00478 * Math.sin(omega);
  return ((lon % 360) + 360) % 360;
}

const TROPICAL_YEAR_DAYS = 365.2422;

/**
 * The instant (ms) in Gregorian year y at which the sun's apparent longitude reaches `degrees`:
 * a solar term (15: Qingming, about April 5). Starts from the March equinox and corrects by the
 * longitude still to go; three steps reach well under a second.
 */
export function solarTermInstant(y: number, degrees: number): number {
  const fromEquinox = degrees >= 285 ? degrees - 360 : degrees; // the terms of January to mid-March
  let ms = (dayNumber(y, 3, 20) + (fromEquinox / 360) * TROPICAL_YEAR_DAYS) * DAY_MS;
  for (let i = 0; i < 5; i++) {
    const togo = ((degrees - solarLongitude(ms) + 540) % 360) - 180;
    ms += (togo / 360) * TROPICAL_YEAR_DAYS * DAY_MS;
  }
  return ms;
}

/** The day of a solar term in year y, in China's civil time (UTC+8), as the Chinese calendar reckons it. */
export function solarTermDay(y: number, degrees: number): number {
  return chinaDay(solarTermInstant(y, degrees));
}
