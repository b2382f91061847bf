// Exchange calendars: which local dates a market trades on, and the UTC instants its sessions
// open and close. Holidays are rules (Easter, "third Monday", weekend shifts), so every year has
// an answer; the one-off closures no rule predicts ship as JSON beside this file. They are
// imported statically so `bun build --compile` bundles them: the binary needs no data files.
import wseExceptions from "./holidays/wse.json";
import nyseExceptions from "./holidays/nyse.json";
// The hours of a trading day and its phases (pre-open, regular session, after-hours) per market,
// with the sources they were read from.
import sessionHours from "./sessions.json";

export type Market = "WSE" | "NYSE";

export type Session = {
  /** Local exchange date, YYYY-MM-DD. */
  date: string;
  /** Epoch ms UTC. */
  open: number;
  /** Epoch ms UTC. */
  close: number;
  /** A shortened session: early close or late open. */
  early: boolean;
};

export const MARKET_TIMEZONES: Record<Market, string> = {
  WSE: "Europe/Warsaw",
  NYSE: "America/New_York",
};

type Hours = { open: string; close: string };

/**
 * The phase a market is in at an instant. `open` is the regular session (what `sessionFor`
 * returns, and what prices are formed in); `pre` is the time before it in which orders are taken
 * (WSE: the opening-auction call) or traded (NYSE: the pre-market session); `post` is the time
 * after it (WSE: trading at last, only at the closing price; NYSE: the after-hours session).
 * Any other time, and all of a non-trading day, is `closed`.
 */
export type MarketPhase = "closed" | "pre" | "open" | "post";
/** The phases a trading day is made of, in order. */
export type SessionPhase = Exclude<MarketPhase, "closed">;
export const SESSION_PHASES: readonly SessionPhase[] = ["pre", "open", "post"];

type Span = { from: string; to: string };
type DayHours = { pre: Span; open: Span; post: Span; earlyClose?: { close: string; postTo: string } };

const DAY_HOURS: Record<Market, DayHours> = { WSE: sessionHours.WSE, NYSE: sessionHours.NYSE };

// GPW main market: price formation ends with the closing auction at 17:00, so that is the close;
// the five minutes of trading at last after it move no prices and are the `post` phase.
const REGULAR_HOURS: Record<Market, Hours> = {
  WSE: { open: DAY_HOURS.WSE.open.from, close: DAY_HOURS.WSE.open.to },
  NYSE: { open: DAY_HOURS.NYSE.open.from, close: DAY_HOURS.NYSE.open.to },
};

// Rules are today's rules; the one-off closures are known for these years (and past the build
// date nobody knows the next day of mourning). Earlier years still get an answer from the rules,
// but NYSE hours and holidays of the 1990s and before differed, so do not trust them there.
const COVERAGE = { from: "2000-01-01", to: "2035-12-31" } as const;

type Exceptions = {
  closures: { date: string; reason: string }[];
  /** Dates a rule makes a holiday on which the exchange nevertheless traded. */
  openDespiteRule?: { date: string; reason: string }[];
  /** Trading days with other than the regular hours (times are local). */
  specialSessions?: { date: string; open?: string; close?: string; reason: string }[];
};

const EXCEPTIONS: Record<Market, Exceptions> = { WSE: wseExceptions, NYSE: nyseExceptions };

const DAY_MS = 86_400_000;

// ---------------------------------------------------------------------------------------------
// Dates as day numbers (days since 1970-01-01). Pure arithmetic: isTradingDay runs once per row,
// so the hot path allocates no Date and runs no regex.

function digits(s: string, from: number, to: number): number {
  let v = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil). */
function dayNumber(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  return era * 146_097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719_468;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** Day number of a `YYYY-MM-DD` string; a malformed or impossible date is a caller bug. */
function parseDate(date: string): number {
  if (typeof date === "string" && date.length === 10 && date.charCodeAt(4) === 45 && date.charCodeAt(7) === 45) {
    const y = digits(date, 0, 4);
    const m = digits(date, 5, 7);
    const d = digits(date, 8, 10);
    if (y >= 0 && m >= 1 && m <= 12 && d >= 1 && d <= daysInMonth(y, m)) return dayNumber(y, m, d);
  }
  throw new RangeError(`invalid date ${JSON.stringify(date)}: expected YYYY-MM-DD`);
}

function formatDate(n: number): string {
  return new Date(n * DAY_MS).toISOString().slice(0, 10);
}

/** 0 = Sunday … 6 = Saturday; 1970-01-01 was a Thursday. */
function weekday(n: number): number {
  return (((n + 4) % 7) + 7) % 7;
}

/** Easter Sunday, anonymous Gregorian algorithm (Meeus/Jones/Butcher). */
function easterSunday(y: number): number {
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
function nthWeekday(y: number, m: number, wd: number, nth: number): number {
  const first = dayNumber(y, m, 1);
  return first + ((wd - weekday(first) + 7) % 7) + 7 * (nth - 1);
}

function lastWeekday(y: number, m: number, wd: number): number {
  const last = dayNumber(y, m, daysInMonth(y, m));
  return last - ((weekday(last) - wd + 7) % 7);
}

/** US federal observance: a Saturday holiday moves to Friday, a Sunday one to Monday. */
function nearestWeekday(n: number): number {
  const wd = weekday(n);
  return wd === 6 ? n - 1 : wd === 0 ? n + 1 : n;
}

// ---------------------------------------------------------------------------------------------
// Holidays per (market, year), built once and cached: a hot loop pays one Map and one Set lookup.

type YearCalendar = {
  /** Dates the exchange is closed (only weekdays matter; weekends are closed anyway). */
  closed: Set<string>;
  /** Trading days whose hours differ from the regular ones. */
  special: Map<string, Partial<Hours>>;
};

function wseRules(y: number): { closed: number[]; early: number[] } {
  const easter = easterSunday(y);
  const closed = [
    dayNumber(y, 1, 1),
    easter - 2, // Good Friday: not a public holiday in Poland, but the exchange is closed
    easter + 1,
    dayNumber(y, 5, 1),
    dayNumber(y, 5, 3),
    easter + 60, // Corpus Christi
    dayNumber(y, 8, 15),
    dayNumber(y, 11, 1),
    dayNumber(y, 11, 11),
    dayNumber(y, 12, 24), // an exchange holiday long before it became a public one in 2025
    dayNumber(y, 12, 25),
    dayNumber(y, 12, 26),
  ];
  // Epiphany became a public holiday in 2011; the exchange has closed on New Year's Eve since then.
  if (y >= 2011) closed.push(dayNumber(y, 1, 6), dayNumber(y, 12, 31));
  // Polish holidays falling on a weekend are not moved, and WSE has no shortened sessions.
  return { closed, early: [] };
}

function nyseRules(y: number): { closed: number[]; early: number[] } {
  const closed: number[] = [];
  // New Year's Day on a Sunday is observed Monday; on a Saturday it is not observed at all
  // (NYSE Rule 7.2: the Friday before would close the previous year's books).
  const newYear = dayNumber(y, 1, 1);
  if (weekday(newYear) !== 6) closed.push(nearestWeekday(newYear));
  const thanksgiving = nthWeekday(y, 11, 4, 4);
  closed.push(
    nthWeekday(y, 1, 1, 3), // Martin Luther King Jr. Day
    nthWeekday(y, 2, 1, 3), // Washington's Birthday
    easterSunday(y) - 2, // Good Friday
    lastWeekday(y, 5, 1), // Memorial Day
    nearestWeekday(dayNumber(y, 7, 4)),
    nthWeekday(y, 9, 1, 1), // Labor Day
    thanksgiving,
    nearestWeekday(dayNumber(y, 12, 25)),
  );
  if (y >= 2022) closed.push(nearestWeekday(dayNumber(y, 6, 19))); // Juneteenth, first observed 2022

  const early = [thanksgiving + 1];
  // Christmas Eve closes early Mon-Thu; on a Friday it is the observed Christmas holiday.
  const christmasEve = dayNumber(y, 12, 24);
  if (weekday(christmasEve) >= 1 && weekday(christmasEve) <= 4) early.push(christmasEve);
  // The trading day before Independence Day closes early when July 3 is Mon, Tue or Thu, and
  // Wed since 2013. Before 2013 a Thursday July 4 shortened Friday July 5 instead. A Friday
  // July 3 is the observed holiday itself (July 4 on Saturday), so nothing is shortened then.
  const july3 = dayNumber(y, 7, 3);
  const wd = weekday(july3);
  if (wd === 1 || wd === 2 || wd === 4 || (wd === 3 && y >= 2013)) early.push(july3);
  if (wd === 3 && y < 2013) early.push(july3 + 2);
  return { closed, early };
}

// A Map, not an object: a market name from config ("constructor", say) must not hit a prototype.
const calendars = new Map<Market, Map<number, YearCalendar>>([
  ["WSE", new Map()],
  ["NYSE", new Map()],
]);

function unknownMarket(market: string): RangeError {
  return new RangeError(`unknown market ${JSON.stringify(market)}: expected WSE or NYSE`);
}

function timeZoneOf(market: Market): string {
  if (!Object.hasOwn(MARKET_TIMEZONES, market)) throw unknownMarket(market);
  return MARKET_TIMEZONES[market];
}

function yearCalendar(market: Market, year: number): YearCalendar {
  const byYear = calendars.get(market);
  if (byYear === undefined) throw unknownMarket(market);
  let cal = byYear.get(year);
  if (cal !== undefined) return cal;

  const rules = market === "WSE" ? wseRules(year) : nyseRules(year);
  const exceptions = EXCEPTIONS[market];
  const inYear = (e: { date: string }) => digits(e.date, 0, 4) === year;
  const closed = new Set(rules.closed.map(formatDate));
  for (const e of exceptions.closures.filter(inYear)) closed.add(e.date);
  for (const e of (exceptions.openDespiteRule ?? []).filter(inYear)) closed.delete(e.date);

  const special = new Map<string, Partial<Hours>>();
  const earlyClose = DAY_HOURS[market].earlyClose?.close;
  if (rules.early.length > 0 && earlyClose === undefined) throw new Error(`${market} has early closes but no earlyClose hours in sessions.json`);
  for (const n of rules.early) special.set(formatDate(n), { close: earlyClose });
  for (const e of (exceptions.specialSessions ?? []).filter(inYear)) {
    special.set(e.date, { ...(e.open ? { open: e.open } : {}), ...(e.close ? { close: e.close } : {}) });
  }
  for (const date of special.keys()) if (closed.has(date)) special.delete(date);

  cal = { closed, special };
  byYear.set(year, cal);
  return cal;
}

function tradingDay(market: Market, n: number, date: string): boolean {
  const wd = weekday(n);
  if (wd === 0 || wd === 6) return false;
  return !yearCalendar(market, digits(date, 0, 4)).closed.has(date);
}

// ---------------------------------------------------------------------------------------------
// Time zones, with no dependency: Intl knows the tz database. Formatters are costly to build and
// formatToParts is slow, so formatters are cached per zone and offsets per (zone, UTC day).

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** UTC offset of a zone at an instant, in ms (local = utc + offset), asked of Intl. */
function intlOffset(timeZone: string, t: number): number {
  const s = Math.floor(t / 1000) * 1000; // the tz database has second resolution
  let y = 0, mo = 1, d = 1, h = 0, mi = 0, sec = 0;
  for (const p of formatterFor(timeZone).formatToParts(s)) {
    if (p.type === "year") y = +p.value;
    else if (p.type === "month") mo = +p.value;
    else if (p.type === "day") d = +p.value;
    else if (p.type === "hour") h = +p.value;
    else if (p.type === "minute") mi = +p.value;
    else if (p.type === "second") sec = +p.value;
  }
  return dayNumber(y, mo, d) * DAY_MS + ((h * 60 + mi) * 60 + sec) * 1000 - s;
}

const offsetCache = new Map<string, Map<number, number>>();
const OFFSET_CACHE_LIMIT = 100_000; // days per zone; a bound, not a tuning knob

function offsetAt(timeZone: string, t: number): number {
  let byDay = offsetCache.get(timeZone);
  if (byDay === undefined) offsetCache.set(timeZone, (byDay = new Map()));
  const day = Math.floor(t / DAY_MS);
  const hit = byDay.get(day);
  if (hit !== undefined) return hit;
  const start = intlOffset(timeZone, day * DAY_MS);
  // A day with a transition in it has no single offset: ask Intl for this instant and cache nothing.
  if (intlOffset(timeZone, day * DAY_MS + DAY_MS - 1000) !== start) return intlOffset(timeZone, t);
  if (byDay.size >= OFFSET_CACHE_LIMIT) byDay.clear();
  byDay.set(day, start);
  return start;
}

function parseClock(hhmm: string): number {
  const withSeconds = typeof hhmm === "string" && hhmm.length === 8 && hhmm.charCodeAt(5) === 58;
  if (typeof hhmm === "string" && (hhmm.length === 5 || withSeconds) && hhmm.charCodeAt(2) === 58) {
    const h = digits(hhmm, 0, 2);
    const m = digits(hhmm, 3, 5);
    const s = withSeconds ? digits(hhmm, 6, 8) : 0;
    if (h >= 0 && h <= 23 && m >= 0 && m <= 59 && s >= 0 && s <= 59) return ((h * 60 + m) * 60 + s) * 1000;
  }
  throw new RangeError(`invalid time ${JSON.stringify(hhmm)}: expected HH:MM or HH:MM:SS`);
}

/**
 * The UTC instant (epoch ms) of a wall-clock time in a zone, correct across DST changes.
 * A time skipped by a spring-forward gap is read with the offset before the jump, i.e. moved
 * forward by the gap (02:30 → 03:30); a time repeated by a fall-back is its first occurrence.
 * Both match Temporal's "compatible" disambiguation.
 */
export function zonedTimeToUtc(date: string, hhmm: string, timeZone: string): number {
  const wall = parseDate(date) * DAY_MS + parseClock(hhmm); // the wall time read as if it were UTC
  // Any transition that affects this wall time lies within a day either side of it (offsets stay
  // within ±14 h), so equal offsets there mean there is none.
  const before = offsetAt(timeZone, wall - DAY_MS);
  const after = offsetAt(timeZone, wall + DAY_MS);
  if (before === after) return wall - before;
  const withBefore = wall - before;
  const withAfter = wall - after;
  const beforeHolds = offsetAt(timeZone, withBefore) === before;
  const afterHolds = offsetAt(timeZone, withAfter) === after;
  if (beforeHolds && afterHolds) return Math.min(withBefore, withAfter);
  if (afterHolds) return withAfter;
  return withBefore;
}

// ---------------------------------------------------------------------------------------------
// Public API

export function isTradingDay(market: Market, date: string): boolean {
  return tradingDay(market, parseDate(date), date);
}

/** Local opening and closing times of a trading day, or null when the exchange does not trade. */
function hoursOn(market: Market, n: number, date: string): (Hours & { early: boolean }) | null {
  if (!tradingDay(market, n, date)) return null;
  const special = yearCalendar(market, digits(date, 0, 4)).special.get(date);
  const regular = REGULAR_HOURS[market];
  return { open: special?.open ?? regular.open, close: special?.close ?? regular.close, early: special !== undefined };
}

/** The session of a local exchange date, or null when the exchange does not trade that day. */
export function sessionFor(market: Market, date: string): Session | null {
  const hours = hoursOn(market, parseDate(date), date);
  if (hours === null) return null;
  const timeZone = timeZoneOf(market);
  return {
    date,
    open: zonedTimeToUtc(date, hours.open, timeZone),
    close: zonedTimeToUtc(date, hours.close, timeZone),
    early: hours.early,
  };
}

/** Trading days strictly between two dates, ascending; empty when `toDate` is not after `fromDate`. */
export function tradingDaysBetween(market: Market, fromDate: string, toDate: string): string[] {
  const to = parseDate(toDate);
  const days: string[] = [];
  for (let n = parseDate(fromDate) + 1; n < to; n++) {
    const date = formatDate(n);
    if (tradingDay(market, n, date)) days.push(date);
  }
  return days;
}

// The longest run of closed days is a handful (2001-09-11..17 at NYSE); a year without a trading
// day means the calendar data is broken, and looping forever would hide that.
const MAX_SEARCH_DAYS = 366;

function stepTradingDay(market: Market, date: string, step: 1 | -1): string {
  let n = parseDate(date);
  for (let i = 0; i < MAX_SEARCH_DAYS; i++) {
    n += step;
    const candidate = formatDate(n);
    if (tradingDay(market, n, candidate)) return candidate;
  }
  throw new Error(`no ${market} trading day within ${MAX_SEARCH_DAYS} days of ${date}`);
}

/** The first trading day strictly after `date`. */
export function nextTradingDay(market: Market, date: string): string {
  return stepTradingDay(market, date, 1);
}

/** The last trading day strictly before `date`. */
export function previousTradingDay(market: Market, date: string): string {
  return stepTradingDay(market, date, -1);
}

// ---------------------------------------------------------------------------------------------
// Phases of the trading day. Every phase lies within one local day (no market here trades across
// midnight), so the phase at an instant is decided by that instant's local date alone.

export type PhaseSpan = {
  phase: SessionPhase;
  /** Epoch ms UTC, inclusive. */
  from: number;
  /** Epoch ms UTC, exclusive. */
  to: number;
};

function phaseSpans(market: Market, n: number, date: string): PhaseSpan[] {
  const hours = hoursOn(market, n, date);
  if (hours === null) return [];
  const day = DAY_HOURS[market];
  const timeZone = timeZoneOf(market);
  const at = (hhmm: string) => zonedTimeToUtc(date, hhmm, timeZone);
  const open = at(hours.open);
  const close = at(hours.close);
  // A shortened day ends its after-hours earlier too (NYSE: 17:00 instead of 20:00).
  const shortened = parseClock(hours.close) < parseClock(REGULAR_HOURS[market].close);
  const postTo = at(shortened && day.earlyClose ? day.earlyClose.postTo : day.post.to);
  const spans: PhaseSpan[] = [
    { phase: "pre", from: at(day.pre.from), to: open },
    { phase: "open", from: open, to: close },
    { phase: "post", from: close, to: postTo },
  ];
  return spans.filter((s) => s.from < s.to);
}

/** The phases of a local exchange date in order, as UTC instants; empty on a non-trading day. */
export function phasesOn(market: Market, date: string): PhaseSpan[] {
  return phaseSpans(market, parseDate(date), date);
}

/** Local exchange date (day number) of an instant. */
function localDay(market: Market, instantMs: number): number {
  if (!Number.isFinite(instantMs)) throw new RangeError(`invalid instant ${instantMs}`);
  return Math.floor((instantMs + offsetAt(timeZoneOf(market), instantMs)) / DAY_MS);
}

/** The phase of a market at an instant (epoch ms); see `MarketPhase`. */
export function marketPhase(market: Market, instantMs: number): MarketPhase {
  const n = localDay(market, instantMs);
  for (const s of phaseSpans(market, n, formatDate(n))) if (instantMs >= s.from && instantMs < s.to) return s.phase;
  return "closed";
}

function checkPhases(phases: readonly SessionPhase[]): void {
  if (phases.length === 0) throw new RangeError("no phases given: expected some of pre, open, post");
  for (const p of phases) if (!SESSION_PHASES.includes(p)) throw new RangeError(`unknown phase ${JSON.stringify(p)}: expected pre, open or post`);
}

/**
 * Whether a market is in one of `phases` at an instant; by default the regular session only.
 * Each phase starts inclusive and ends exclusive, so at the closing instant the market is `post`.
 */
export function isOpen(market: Market, instantMs: number, phases: readonly SessionPhase[] = ["open"]): boolean {
  checkPhases(phases);
  return (phases as readonly MarketPhase[]).includes(marketPhase(market, instantMs));
}

/**
 * The first instant at or after `instantMs` at which the market is in one of `phases`: the
 * instant itself when it already is, else the start of the next such phase.
 */
export function nextOpen(market: Market, instantMs: number, phases: readonly SessionPhase[] = ["open"]): number {
  checkPhases(phases);
  let n = localDay(market, instantMs);
  for (let i = 0; i <= MAX_SEARCH_DAYS; i++, n++) {
    for (const s of phaseSpans(market, n, formatDate(n))) {
      if (phases.includes(s.phase) && s.to > instantMs) return Math.max(s.from, instantMs);
    }
  }
  throw new Error(`no ${market} ${phases.join("/")} phase within ${MAX_SEARCH_DAYS} days of ${new Date(instantMs).toISOString()}`);
}

// The shipped hours must make one day of contiguous phases in order; a broken file stops start-up.
for (const market of Object.keys(DAY_HOURS) as Market[]) {
  const d = DAY_HOURS[market];
  const times = [d.pre.from, d.pre.to, d.open.from, d.open.to, d.post.from, d.post.to].map(parseClock);
  const ordered = times[0]! < times[1]! && times[1] === times[2] && times[2]! < times[3]! && times[3] === times[4] && times[4]! < times[5]!;
  const early = d.earlyClose === undefined || (times[2]! < parseClock(d.earlyClose.close) && parseClock(d.earlyClose.close) < parseClock(d.earlyClose.postTo));
  if (!ordered || !early) throw new Error(`sessions.json: the ${market} phases are not contiguous and in order`);
}

/** The dates for which holidays, including one-off closures, are shipped. */
export function calendarCoverage(market: Market): { from: string; to: string } {
  timeZoneOf(market);
  return { from: COVERAGE.from, to: COVERAGE.to };
}
