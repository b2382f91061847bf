// Dates as day numbers (days since 1970-01-01) and clock times as ms into the day: the arithmetic
// the exchange calendars and the markets' holiday rules share. Pure arithmetic: the calendar asks
// once per row whether a date trades, so the hot path allocates no Date and runs no regex.

export const DAY_MS = 86_400_000;

/** The number written in s[from, to), or -1 when a character there is not a digit. */
export function digits(s: string, from: number, to: number): number {
  let v = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil). */
export function dayNumber(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  return era * 146_097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719_468;
}

export function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** Day number of a `YYYY-MM-DD` string; a malformed or impossible date is a caller bug. */
export function parseDate(date: string): number {
  if (typeof date === "string" && date.length === 10 && date.charCodeAt(4) === 45 && date.charCodeAt(7) === 45) {
    const y = digits(date, 0, 4);
    const m = digits(date, 5, 7);
    const d = digits(date, 8, 10);
    if (y >= 0 && m >= 1 && m <= 12 && d >= 1 && d <= daysInMonth(y, m)) return dayNumber(y, m, d);
  }
  throw new RangeError(`invalid date ${JSON.stringify(date)}: expected YYYY-MM-DD`);
}

export function formatDate(n: number): string {
  return new Date(n * DAY_MS).toISOString().slice(0, 10);
}

/** 0 = Sunday … 6 = Saturday; 1970-01-01 was a Thursday. */
export function weekday(n: number): number {
  return (((n + 4) % 7) + 7) % 7;
}

/** Easter Sunday, anonymous Gregorian algorithm (Meeus/Jones/Butcher). */
export function easterSunday(y: number): number {
  const a = y % 19;
  const b = Math.floor(y / 100);
  const c = y % 100;
  const d = Math.floor(b / 4);
  const e = b % 4;
  const f = Math.floor((b + 8) / 25);
  const g = Math.floor((b - f + 1) / 3);
  const h = (19 * a + b - d - g + 15) % 30;
  const i = Math.floor(c / 4);
  const k = c % 4;
  const l = (32 + 2 * e + 2 * i - h - k) % 7;
  const m = Math.floor((a + 11 * h + 22 * l) / 451);
  const month = Math.floor((h + l - 7 * m + 114) / 31);
  const day = ((h + l - 7 * m + 114) % 31) + 1;
  return dayNumber(y, month, day);
}

/** The nth (1-based) given weekday of a month. */
export function nthWeekday(y: number, m: number, wd: number, nth: number): number {
  const first = dayNumber(y, m, 1);
  return first + ((wd - weekday(first) + 7) % 7) + 7 * (nth - 1);
}

export function lastWeekday(y: number, m: number, wd: number): number {
  const last = dayNumber(y, m, daysInMonth(y, m));
  return last - ((weekday(last) - wd + 7) % 7);
}

/** Ms into the day of `HH:MM` or `HH:MM:SS`. */
export function parseClock(hhmm: string): number {
  const withSeconds = typeof hhmm === "string" && hhmm.length === 8 && hhmm.charCodeAt(5) === 58;
  if (typeof hhmm === "string" && (hhmm.length === 5 || withSeconds) && hhmm.charCodeAt(2) === 58) {
    const h = digits(hhmm, 0, 2);
    const m = digits(hhmm, 3, 5);
    const s = withSeconds ? digits(hhmm, 6, 8) : 0;
    if (h >= 0 && h <= 23 && m >= 0 && m <= 59 && s >= 0 && s <= 59) return ((h * 60 + m) * 60 + s) * 1000;
  }
  throw new RangeError(`invalid time ${JSON.stringify(hhmm)}: expected HH:MM or HH:MM:SS`);
}

/** Ms into the day of a phase's end: `parseClock`, or `24:00` for the end of the day (a 24-hour session). */
export function parseEndClock(hhmm: string): number {
  return hhmm === "24:00" ? DAY_MS : parseClock(hhmm);
}
