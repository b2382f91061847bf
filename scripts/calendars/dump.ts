// Prints what ticksync's calendar says of every weekday of a market in a range of years (every day
// for a market that trades on weekends, CRYPTO), one line per day, for scripts/calendars/check.py
// to compare with exchange-calendars. Run by hand:
//   bun scripts/calendars/dump.ts WSE 2000 2035 [--csv]
// Only the exported calendar API is used, so what is printed is what the service answers.
import { formatDate, parseClock, parseDate, parseEndClock, weekday } from "../../src/domain/days.ts";
import { isTradingDay, MARKET_TIMEZONES, regularHoursOn, sessionFor } from "../../src/domain/calendar.ts";
import { isMarket, marketChoices, marketInfo, type Market } from "../../src/domain/markets/index.ts";
import { WEEKDAYS } from "../../src/domain/markets/schema.ts";

type Day = {
  date: string;
  trading: boolean;
  open?: string; // local HH:MM
  close?: string;
  openUtc?: string; // ISO instant
  closeUtc?: string;
  half?: boolean; // closes before the regular close: an early close
  lateOpen?: boolean; // opens after the regular open
  breaks?: { from: string; to: string }[]; // breaks in the session (a lunch break), ISO instants
};

const USAGE = `usage: bun scripts/calendars/dump.ts MARKET FROM_YEAR TO_YEAR [--csv]  (MARKET: ${marketChoices()})`;

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

/** HH:MM of an instant in a zone (the calendar keeps no seconds in session times). */
function localClock(ms: number, timeZone: string): string {
  return new Intl.DateTimeFormat("en-GB", { timeZone, hourCycle: "h23", hour: "2-digit", minute: "2-digit" }).format(ms);
}

// `Session.early` means "shortened" (an early close or a late open); the check needs the two apart,
// so each is told from the local times against the regular session's.
function dayOf(market: Market, date: string, timeZone: string): Day {
  const s = sessionFor(market, date);
  // Two answers of one API must agree, or the dump would compare the wrong thing.
  if ((s !== null) !== isTradingDay(market, date)) throw new Error(`${market} ${date}: sessionFor and isTradingDay disagree`);
  if (s === null) return { date, trading: false };
  const regular = regularHoursOn(market, date); // the date's own regular hours (Tokyo closed at 15:00 before 2024-11-05)
  const open = localClock(s.open, timeZone);
  const close = localClock(s.close, timeZone);
  // A 24:00 close reads 00:00 on the clock: the regular close, not an early one.
  const half = close !== (regular.close === "24:00" ? "00:00" : regular.close) && parseClock(close) < parseEndClock(regular.close);
  const lateOpen = parseClock(open) > parseClock(regular.open);
  if (s.early !== (half || lateOpen)) throw new Error(`${market} ${date}: early=${s.early} but hours ${open}-${close}`);
  return {
    date,
    trading: true,
    open,
    close,
    openUtc: new Date(s.open).toISOString(),
    closeUtc: new Date(s.close).toISOString(),
    half,
    lateOpen,
    breaks: (s.breaks ?? []).map((b) => ({ from: new Date(b.from).toISOString(), to: new Date(b.to).toISOString() })),
  };
}

const args = process.argv.slice(2).filter((a) => a !== "--csv");
const csv = process.argv.includes("--csv");
const [market, fromArg, toArg] = args;
if (market === undefined || fromArg === undefined || toArg === undefined || args.length !== 3) fail(USAGE);
if (!isMarket(market)) fail(`unknown market ${JSON.stringify(market)}: expected ${marketChoices()}`);
const from = Number(fromArg);
const to = Number(toArg);
if (!Number.isInteger(from) || !Number.isInteger(to) || from > to || from < 1900 || to > 2200) fail(USAGE);

const timeZone = MARKET_TIMEZONES[market];
const out: string[] = [];
if (csv) out.push("market,mic,date,trading,open,close,open_utc,close_utc,half,late_open,breaks_utc");
const mic = marketInfo(market)!.mic;
const weekend = (marketInfo(market)!.tradingWeekdays ?? []).filter((w) => w === "Sat" || w === "Sun");
for (let n = parseDate(`${from}-01-01`), end = parseDate(`${to}-12-31`); n <= end; n++) {
  const wd = weekday(n);
  // Weekdays, and the weekend days the market trades on (the check compares what is printed).
  if ((wd === 0 || wd === 6) && !weekend.includes(WEEKDAYS[wd]!)) continue;
  const d = dayOf(market, formatDate(n), timeZone);
  if (csv) out.push([market, mic, d.date, d.trading, d.open ?? "", d.close ?? "", d.openUtc ?? "", d.closeUtc ?? "", d.half ?? "", d.lateOpen ?? "", (d.breaks ?? []).map((b) => `${b.from}/${b.to}`).join(" ")].join(","));
  else out.push(JSON.stringify({ market, mic, ...d }));
}
process.stdout.write(out.join("\n") + "\n");
