// Exchange calendars: which local dates a market trades on, and the UTC instants its sessions
// and phases open and close. The markets (zone, hours, holiday rules, one-off closures) are data
// in markets/; this module turns them into answers. Holidays are rules (Easter, "third Monday",
// weekend shifts), so every year has an answer. A market trades on its tradingWeekdays; a session
// may open the evening before its trade date (FX: 17:00 New York) or last a whole day (CRYPTO).
import { DAY_MS, dayNumber, digits, formatDate, parseClock, parseDate, parseEndClock, weekday } from "./days.ts";
import { MARKETS, marketChoices, type Market, type MarketInfo } from "./markets/index.ts";
import { ruleDays } from "./markets/rules.ts";
import { isOvernight, WEEKDAYS } from "./markets/schema.ts";

export type { Market } from "./markets/index.ts";

export type Session = {
  /** Local exchange date, YYYY-MM-DD. */
  date: string;
  /** Epoch ms UTC. */
  open: number;
  /** Epoch ms UTC. */
  close: number;
  /** A shortened session: early close or late open. */
  early: boolean;
  /** Breaks in the session (Tokyo's lunch), epoch ms UTC, [from, to); absent when it has none. */
  breaks?: readonly { from: number; to: number }[];
};

export const MARKET_TIMEZONES: Record<Market, string> = Object.fromEntries(MARKETS.map((m) => [m.code, m.timeZone])) as Record<Market, string>;

type Clocks = { from: string; to: string };
/** A day's regular hours, local times. */
type Hours = { open: string; close: string; breaks: readonly Clocks[] };

/**
 * The phase a market is in at an instant. `open` is the regular session (what `sessionFor`
 * returns, and what prices are formed in); `pre` is the time before it in which orders are taken
 * (WSE: the opening-auction call) or traded (NYSE: the pre-market session); `post` is the time
 * after it (WSE: trading at last, only at the closing price; NYSE: the after-hours session);
 * `break` is a break inside the regular session (Tokyo's lunch), in which nothing trades.
 * Any other time, and all of a non-trading day, is `closed`.
 */
export type MarketPhase = "closed" | "pre" | "open" | "break" | "post";
/**
 * The phases a job may be gated by (a market "is open" in them): a `break` in the session (a lunch
 * break) is closed for trading, so it is not one.
 */
export type SessionPhase = Exclude<MarketPhase, "closed" | "break">;
/** The phases a trading day is made of: pre, open (and break, where the session has one), post. */
export type DayPhase = Exclude<MarketPhase, "closed">;
export const SESSION_PHASES: readonly SessionPhase[] = ["pre", "open", "post"];

// ---------------------------------------------------------------------------------------------
// Holidays per (market, year), built once and cached: a hot loop pays one Map and one Set lookup.

type YearCalendar = {
  /** Dates the exchange is closed (only weekdays matter; weekends are closed anyway). */
  closed: Set<string>;
  /** Trading days whose hours differ from the regular ones. */
  special: Map<string, Partial<Pick<Hours, "open" | "close">>>;
};

type MarketCalendar = {
  info: MarketInfo;
  /** The regular session's local times today. */
  regular: Hours;
  /** The regular hours of earlier years, oldest first: each applies up to its `until` date, with its half days' close if it differs. */
  history: readonly { until: string; hours: Hours; earlyClose?: string }[];
  /** Year → its holidays and special sessions, built on first use. */
  years: Map<number, YearCalendar>;
  /** By weekday (0 = Sunday): whether that day of the week has a session. */
  weekdays: readonly boolean[];
  /** The session opens on the calendar day before its trade date (FX). */
  overnight: boolean;
  /** Local clock time the trade day starts at: midnight, or for an overnight market its first phase's start the evening before. */
  dayStart: string;
  /** How much earlier than local midnight the trade day starts (FX: 7 h, from 17:00 the evening before). */
  rollMs: number;
  /** The phases its file defines (FX and CRYPTO: open only). */
  defined: readonly SessionPhase[];
};

const MON_TO_FRI = ["Mon", "Tue", "Wed", "Thu", "Fri"] as const;

function marketCalendar(info: MarketInfo): MarketCalendar {
  const tradingWeekdays: readonly string[] = info.tradingWeekdays ?? MON_TO_FRI;
  const overnight = isOvernight(info.phases.open);
  const dayStart = overnight ? (info.phases.pre ?? info.phases.open).from : "00:00";
  const regular: Hours = { open: info.phases.open.from, close: info.phases.open.to, breaks: info.phases.breaks ?? [] };
  return {
    info,
    regular,
    history: (info.hoursHistory ?? []).map((h) => ({
      until: h.until,
      hours: { open: h.open ?? regular.open, close: h.close ?? regular.close, breaks: h.breaks ?? regular.breaks },
      ...(h.earlyClose ? { earlyClose: h.earlyClose } : {}),
    })),
    years: new Map(),
    weekdays: WEEKDAYS.map((w) => tradingWeekdays.includes(w)),
    overnight,
    dayStart,
    rollMs: overnight ? DAY_MS - parseClock(dayStart) : 0,
    defined: SESSION_PHASES.filter((p) => p === "open" || info.phases[p] !== undefined),
  };
}

// A Map, not an object: a market name from config ("constructor", say) must not hit a prototype.
const calendars = new Map<string, MarketCalendar>(MARKETS.map((info) => [info.code, marketCalendar(info)]));

/** The regular hours of a date: today's, or those of the earlier years it lies in. */
function regularOf(cal: MarketCalendar, date: string): Hours {
  for (const h of cal.history) if (date <= h.until) return h.hours;
  return cal.regular;
}

/** A half day's close on a date: its years' own (Hong Kong 12:30 until 2011-03-04), else today's. */
function earlyCloseOf(cal: MarketCalendar, date: string): string | undefined {
  const today = cal.info.phases.earlyClose?.close;
  for (const h of cal.history) if (date <= h.until) return h.earlyClose ?? today;
  return today;
}

function unknownMarket(market: string): RangeError {
  return new RangeError(`unknown market ${JSON.stringify(market)}: expected ${marketChoices()}`);
}

function calendarOf(market: Market): MarketCalendar {
  const cal = calendars.get(market);
  if (cal === undefined) throw unknownMarket(market);
  return cal;
}

function yearCalendar(market: Market, year: number): YearCalendar {
  const years = calendars.get(market)?.years;
  if (years === undefined) throw unknownMarket(market);
  let cal = years.get(year);
  if (cal !== undefined) return cal;
  const marketCal = calendarOf(market);
  const info = marketCal.info;

  const inYear = (e: { date: string }) => digits(e.date, 0, 4) === year;
  const closed = new Set(ruleDays(info.holidays, year).map(formatDate));
  for (const e of info.closures.filter(inYear)) closed.add(e.date);
  for (const e of (info.openDespiteRule ?? []).filter(inYear)) closed.delete(e.date);

  // The registry has checked that a market with half days has their hours.
  const special = new Map<string, Partial<Pick<Hours, "open" | "close">>>();
  for (const n of ruleDays(info.halfDays, year)) special.set(formatDate(n), { close: earlyCloseOf(marketCal, formatDate(n)) });
  for (const e of (info.specialSessions ?? []).filter(inYear)) {
    special.set(e.date, { ...(e.open ? { open: e.open } : {}), ...(e.close ? { close: e.close } : {}) });
  }
  for (const date of special.keys()) if (closed.has(date)) special.delete(date);

  cal = { closed, special };
  years.set(year, cal);
  return cal;
}

function tradingDay(market: Market, n: number, date: string): boolean {
  if (!calendarOf(market).weekdays[weekday(n)]) return false;
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

/** Whether Saturday or Sunday has a session at a market (CRYPTO): a weekend can hide a missing bar. */
export function tradesOnWeekends(market: Market): boolean {
  const { weekdays } = calendarOf(market);
  return weekdays[0]! || weekdays[6]!;
}

/**
 * Local hours of a trading day, or null when the exchange does not trade: the regular hours of
 * its date, with a special session's open or close. A session that closes before or inside a break
 * ends there (a half day ending at lunch), one opening inside a break opens at its end.
 */
function hoursOn(market: Market, n: number, date: string): (Hours & { early: boolean; regular: Hours }) | null {
  if (!tradingDay(market, n, date)) return null;
  const special = yearCalendar(market, digits(date, 0, 4)).special.get(date);
  const regular = regularOf(calendarOf(market), date);
  if (special === undefined) return { ...regular, early: false, regular };
  return { ...clipToBreaks(special.open ?? regular.open, special.close ?? regular.close, regular.breaks), early: true, regular };
}

/**
 * A session's hours with its breaks: a close before or inside a break ends the session at the
 * break's start (a half day ending at lunch), an open inside one moves to its end, and only the
 * breaks wholly inside what is left are kept. Local times.
 */
export function clipToBreaks(open: string, close: string, breaks: readonly Clocks[]): { open: string; close: string; breaks: Clocks[] } {
  const kept: Clocks[] = [];
  for (const b of breaks) {
    if (parseClock(b.to) <= parseClock(open) || parseClock(b.from) >= parseClock(close)) continue;
    if (parseClock(b.from) <= parseClock(open)) open = b.to;
    else if (parseClock(b.to) >= parseClock(close)) close = b.from;
    else kept.push(b);
  }
  return { open, close, breaks: kept };
}

/**
 * The regular hours of a local exchange date as local times (HH:MM): the session's open and close
 * and its breaks on a day with no special hours; today's or, for a past date, those of its years.
 */
export function regularHoursOn(market: Market, date: string): { open: string; close: string; breaks: { from: string; to: string }[] } {
  parseDate(date);
  const h = regularOf(calendarOf(market), date);
  return { open: h.open, close: h.close, breaks: h.breaks.map((b) => ({ from: b.from, to: b.to })) };
}

/** The UTC instant of a local clock time on day n in a zone; 24:00 is the next day's midnight. */
function instantOn(n: number, clock: string, timeZone: string): number {
  return clock === "24:00" ? zonedTimeToUtc(formatDate(n + 1), "00:00", timeZone) : zonedTimeToUtc(formatDate(n), clock, timeZone);
}

/**
 * The session of a trade date (a local exchange date), or null when the exchange does not trade
 * that day. An overnight session opens the evening before: FX's 2025-01-06 (a Monday) is
 * [Sunday 17:00, Monday 17:00) New York.
 */
export function sessionFor(market: Market, date: string): Session | null {
  const n = parseDate(date);
  const hours = hoursOn(market, n, date);
  if (hours === null) return null;
  const { info, overnight } = calendarOf(market);
  const session: Session = {
    date,
    open: instantOn(overnight ? n - 1 : n, hours.open, info.timeZone),
    close: instantOn(n, hours.close, info.timeZone),
    early: hours.early,
  };
  if (hours.breaks.length > 0) session.breaks = hours.breaks.map((b) => ({ from: instantOn(n, b.from, info.timeZone), to: instantOn(n, b.to, info.timeZone) }));
  return session;
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
// Phases of the trading day. Every phase lies within one trade day (local midnight to midnight, or
// for an overnight market the first phase's start the evening before to the next such start), so
// the phase at an instant is decided by that instant's trade date alone.

export type PhaseSpan = {
  phase: DayPhase;
  /** Epoch ms UTC, inclusive. */
  from: number;
  /** Epoch ms UTC, exclusive. */
  to: number;
};

function phaseSpans(market: Market, n: number, date: string): PhaseSpan[] {
  const hours = hoursOn(market, n, date);
  if (hours === null) return [];
  const { info, overnight } = calendarOf(market);
  const day = info.phases;
  const timeZone = info.timeZone;
  // An overnight session's pre and open are on the evening before the trade date; breaks are on it.
  const open = instantOn(overnight ? n - 1 : n, hours.open, timeZone);
  const close = instantOn(n, hours.close, timeZone);
  const spans: PhaseSpan[] = [];
  if (day.pre) spans.push({ phase: "pre", from: instantOn(overnight ? n - 1 : n, day.pre.from, timeZone), to: open });
  let from = open;
  for (const b of hours.breaks) {
    const [breakFrom, breakTo] = [instantOn(n, b.from, timeZone), instantOn(n, b.to, timeZone)];
    spans.push({ phase: "open", from, to: breakFrom }, { phase: "break", from: breakFrom, to: breakTo });
    from = breakTo;
  }
  spans.push({ phase: "open", from, to: close });
  if (day.post) {
    // A shortened day ends its after-hours earlier too (NYSE: 17:00 instead of 20:00).
    const shortened = parseEndClock(hours.close) < parseEndClock(hours.regular.close);
    spans.push({ phase: "post", from: close, to: instantOn(n, shortened && day.earlyClose ? day.earlyClose.postTo : day.post.to, timeZone) });
  }
  return spans.filter((s) => s.from < s.to);
}

/** The phases of a local exchange date in order, as UTC instants; empty on a non-trading day. */
export function phasesOn(market: Market, date: string): PhaseSpan[] {
  return phaseSpans(market, parseDate(date), date);
}

/** Trade date (day number) of an instant: its local date, moved on by the roll of an overnight market. */
function localDay(market: Market, instantMs: number): number {
  if (!Number.isFinite(instantMs)) throw new RangeError(`invalid instant ${instantMs}`);
  const cal = calendarOf(market);
  return Math.floor((instantMs + offsetAt(cal.info.timeZone, instantMs) + cal.rollMs) / DAY_MS);
}

/**
 * The trade date of an instant, YYYY-MM-DD: its local date at the market, or for an overnight
 * market the date whose trade day it lies in (FX: Sunday 17:00 New York onwards is Monday's).
 * Weekends and holidays have trade dates too: the day that would hold their session.
 */
export function tradeDate(market: Market, instantMs: number): string {
  return formatDate(localDay(market, instantMs));
}

/**
 * The UTC instant a trade date's day starts: local midnight, or for an overnight market its first
 * phase's start on the evening before (FX 2025-01-06: Sunday 2025-01-05 17:00 New York, 22:00Z).
 * Consecutive trade days tile time: a day ends where the next one starts.
 */
export function tradeDayStart(market: Market, date: string): number {
  const cal = calendarOf(market);
  const n = parseDate(date);
  return cal.overnight ? instantOn(n - 1, cal.dayStart, cal.info.timeZone) : instantOn(n, "00:00", cal.info.timeZone);
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
 * In a break of the session (`break`) it is in none of them: closed for trading.
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
  // A phase the market never has (FX's pre) would be searched for a year in vain.
  const { defined } = calendarOf(market);
  if (!phases.some((p) => defined.includes(p))) throw new RangeError(`${market} has no ${phases.join(" or ")} phase: it has ${defined.join(", ")}`);
  let n = localDay(market, instantMs);
  for (let i = 0; i <= MAX_SEARCH_DAYS; i++, n++) {
    for (const s of phaseSpans(market, n, formatDate(n))) {
      if ((phases as readonly DayPhase[]).includes(s.phase) && s.to > instantMs) return Math.max(s.from, instantMs);
    }
  }
  throw new Error(`no ${market} ${phases.join("/")} phase within ${MAX_SEARCH_DAYS} days of ${new Date(instantMs).toISOString()}`);
}

/**
 * The dates for which holidays, including one-off closures, are shipped. The rules are today's
 * rules and past the build date nobody knows the next day of mourning; earlier years still get an
 * answer from the rules, but hours and holidays of the 1990s and before differed.
 */
export function calendarCoverage(market: Market): { from: string; to: string } {
  const { from, to } = calendarOf(market).info.coverage;
  return { from, to };
}
