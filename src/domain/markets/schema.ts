// What a market's data file says, as a valibot schema: the registry (index.ts) checks every file
// with it when the process starts, so a broken file stops start-up with the field that is wrong
// instead of giving wrong sessions later.
import * as v from "valibot";
import { DAY_MS, parseClock, parseDate, parseEndClock } from "../days.ts";

const Text = v.pipe(v.string(), v.nonEmpty());
const Clock = v.pipe(
  v.string(),
  v.check((s) => isValid(() => parseClock(s)), "expected HH:MM or HH:MM:SS"),
  v.description("local exchange time, HH:MM or HH:MM:SS"),
);
const EndClock = v.pipe(
  v.string(),
  v.check((s) => isValid(() => parseEndClock(s)), "expected HH:MM, HH:MM:SS or 24:00"),
  v.description("local exchange time, HH:MM or HH:MM:SS; 24:00 is the end of the day"),
);
const IsoDate = v.pipe(
  v.string(),
  v.check((s) => isValid(() => parseDate(s)), "expected YYYY-MM-DD"),
  v.description("local exchange date, YYYY-MM-DD"),
);
const Year = v.pipe(v.number(), v.integer(), v.minValue(1900), v.maxValue(2200));
const TimeZone = v.pipe(
  v.string(),
  v.check((s) => isValid(() => new Intl.DateTimeFormat("en-US", { timeZone: s })), "expected an IANA time zone such as Europe/Warsaw"),
  v.description("IANA time zone of the exchange's local time"),
);

function isValid(f: () => unknown): boolean {
  try {
    f();
    return true;
  } catch {
    return false;
  }
}

/** Weekday names as the files spell them, in `weekday()` order (0 = Sunday). */
export const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"] as const;
const Weekday = v.picklist(WEEKDAYS, `expected one of ${WEEKDAYS.join(", ")}`);

/** A suffix as it is written after the dot of a symbol, upper case (`WA`, `NASDAQ`, London's `L`). */
const Suffix = v.pipe(v.string(), v.regex(/^[A-Z]{1,8}$/, "expected 1 to 8 upper-case letters"));

// Fields every holiday rule may add to the day it names, applied in this order: the observance
// moves the day, the offset shifts it, then onWeekdays and from/until decide whether it counts.
const RuleFields = {
  what: v.pipe(Text, v.description("the holiday's name, or why the day is shortened")),
  offset: v.optional(v.pipe(v.number(), v.integer(), v.description("days added to the named day (1: the day after)"))),
  onWeekdays: v.optional(v.pipe(v.array(Weekday), v.description("the rule applies only when its day falls on one of these"))),
  from: v.optional(v.pipe(Year, v.description("first year the rule applies"))),
  until: v.optional(v.pipe(Year, v.description("last year the rule applies"))),
};

const MonthDay = v.pipe(v.string(), v.regex(/^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/, "expected MM-DD"));

/** How a rule's day is observed when it falls on a weekend or on another rule's day (see `Observed` below). */
export const OBSERVANCES = ["nearest-weekday", "sunday-to-monday", "next-weekday", "previous-weekday", "next-free-day", "substitute"] as const;

const SUBSTITUTE =
  "substitute (Japan's substitute holiday): on a Sunday the day stays a holiday and the next day that no rule of the file names (after every rule is applied) is one too, " +
  "so Constitution Day on a Sunday, before Greenery and Children's Day, gives the Wednesday";

const Observed = v.optional(
  v.pipe(
    v.picklist(OBSERVANCES),
    v.description(
      "when it falls on a weekend: nearest-weekday moves Saturday to Friday and Sunday to Monday; sunday-to-monday moves Sunday to Monday and drops a Saturday one; " +
        "next-weekday (substitute days, as in the UK, Canada and Australia) moves it to the next weekday that no rule listed before it has already named, and also moves it off such a day on a weekday " +
        "(Christmas on Saturday and Boxing Day on Sunday are observed Monday and Tuesday; Christmas on Sunday moves to Monday, so Boxing Day on that Monday moves to Tuesday); " +
        "previous-weekday moves Saturday and Sunday to the Friday before (a half day on the last trading day before the date); " +
        "next-free-day (Hong Kong) moves a Sunday one, or one on a weekday a rule listed before it has named, to the next day that is neither; a Saturday one stays " +
        "(Ching Ming on Easter Monday is observed on Tuesday; Lunar New Year's Day on a Sunday pushes the three days to Monday-Wednesday); " +
        SUBSTITUTE,
    ),
  ),
);

const FixedDateRule = v.strictObject({
  date: v.pipe(MonthDay, v.description("the same date every year, MM-DD")),
  observed: Observed,
  ...RuleFields,
});
const LunarRule = v.strictObject({
  lunar: v.pipe(
    v.string(),
    v.regex(/^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|30)$/, "expected MM-DD of the Chinese calendar"),
    v.description("a month and day of the Chinese lunisolar calendar, MM-DD (a regular month, not a leap one), in the Chinese year that begins in the rule's year: 01-01 is Lunar New Year, 08-16 the day after Mid-Autumn"),
  ),
  observed: Observed,
  ...RuleFields,
});
const SolarTermRule = v.strictObject({
  solarTerm: v.pipe(
    v.number(),
    v.integer(),
    v.minValue(0),
    v.maxValue(345),
    v.multipleOf(15),
    v.description("a solar term: the day (China's civil time, UTC+8) the sun's apparent longitude reaches these degrees, a multiple of 15 (15: Qingming, Ching Ming, about April 5)"),
  ),
  observed: Observed,
  ...RuleFields,
});
const WeekdayOnOrBeforeRule = v.strictObject({
  weekday: Weekday,
  onOrBefore: v.pipe(MonthDay, v.description("the last such weekday on or before this date, MM-DD (Victoria Day: Mon on or before 05-24)")),
  ...RuleFields,
});
const EasterRule = v.strictObject({
  easter: v.pipe(v.number(), v.integer(), v.description("days after Easter Sunday (Gregorian), e.g. -2 for Good Friday")),
  ...RuleFields,
});
const NthWeekdayRule = v.strictObject({
  month: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(12), v.description("month, 1-12")),
  weekday: Weekday,
  nth: v.pipe(v.union([v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(5)), v.literal("last")]), v.description("1-5, or last")),
  ...RuleFields,
});

const EquinoxRule = v.strictObject({
  equinox: v.pipe(
    v.picklist(["vernal", "autumnal"]),
    v.description("the day of the March (vernal) or September (autumnal) equinox in Japan, by the approximation the Japanese government's dates follow (valid 1980-2099; no day outside)"),
  ),
  observed: v.optional(v.pipe(v.picklist(["substitute"]), v.description(SUBSTITUTE))),
  ...RuleFields,
});
const SandwichedRule = v.strictObject({
  sandwiched: v.pipe(
    v.literal(true),
    v.description("a day no other rule names whose day before and day after other rules name on their own dates (not moved by an observance): Japan's citizens' holiday"),
  ),
  ...RuleFields,
});

/**
 * One yearly holiday or half day: a fixed date, a day relative to Easter, the nth weekday of a
 * month, the last weekday on or before a date, an equinox, a day between two holidays, a date of the
 * Chinese calendar, or a solar term.
 */
export const HolidayRule = v.union([FixedDateRule, EasterRule, NthWeekdayRule, WeekdayOnOrBeforeRule, EquinoxRule, SandwichedRule, LunarRule, SolarTermRule]);
export type HolidayRule = v.InferOutput<typeof HolidayRule>;

const Span = v.strictObject({ from: Clock, to: EndClock, what: Text });
const Breaks = v.pipe(
  v.array(Span),
  v.description("breaks in the regular session (a lunch break), local times strictly inside it, in order and not overlapping; closed for trading"),
);

const ProviderSpelling = v.strictObject({
  case: v.optional(v.pipe(v.picklist(["lower"]), v.description("lower: the provider writes tickers in lower case (default: upper, as stored)"))),
  shareClassSeparator: v.optional(v.pipe(v.string(), v.description("written for the `-` of a share class (BRK-B → BRK.B with `.`)"))),
  stripLeadingZeros: v.optional(v.pipe(v.literal(true), v.description("an all-digit ticker is written without its leading zeros (Stooq's Hong Kong 0700 → 700.hk)"))),
  pairSeparator: v.optional(v.pipe(v.string(), v.maxLength(1), v.description("a pair market: written between base and quote (Yahoo `BTC-USD`: `-`; Binance `BTCUSDT`: none)"))),
  prefix: v.optional(v.pipe(v.string(), v.regex(/^[A-Z]{1,3}:$/, "expected 1 to 3 upper-case letters and a colon"), v.description("put before the ticker, e.g. Polygon's `C:` (EURUSD → C:EURUSD); read back as this market"))),
  suffix: v.optional(v.pipe(v.string(), v.description("appended to the ticker, e.g. `.WA`, or Yahoo's `=X` for currency pairs (read back as this market)"))),
});

/** A code of a currency or crypto asset (EUR, USDT, 1INCH). */
const AssetCode = v.pipe(v.string(), v.regex(/^[A-Z0-9]{2,10}$/, "expected 2 to 10 upper-case letters or digits"));

const Pairs = v.pipe(
  v.strictObject({
    separator: v.pipe(v.picklist(["", "-"]), v.description("stored between base and quote: none for FX (EURGBP), `-` for crypto (BTC-USDT)")),
    baseLength: v.optional(v.pipe(v.number(), v.integer(), v.minValue(2), v.maxValue(10), v.description("every base code has this length (3 for ISO 4217 currencies): EURGBP splits 3 + 3"))),
    quotes: v.optional(v.pipe(v.array(AssetCode), v.description("quote assets recognised at the end of a pair written without a separator (BTCUSDT → BTC-USDT); the longest match wins"))),
  }),
  v.description("a market of pairs (FX, crypto): a ticker is a base and a quote asset"),
);

const Dated = { date: IsoDate, reason: Text };

export const MarketFileSchema = v.strictObject({
  code: v.pipe(v.string(), v.regex(/^[A-Z]{2,8}$/), v.description("ticksync's name of the market, as config and the API spell it")),
  mic: v.pipe(v.string(), v.regex(/^[A-Z0-9]{4}$/), v.description("ISO 10383 market identifier code of the exchange")),
  name: v.pipe(Text, v.description("the exchange, as a reader knows it")),
  timeZone: TimeZone,
  currency: v.optional(v.pipe(v.string(), v.regex(/^[A-Z]{3}$/), v.description("ISO 4217 code of the currency most of its listings trade in"))),
  notes: v.optional(v.array(Text)),
  tradingWeekdays: v.optional(
    v.pipe(
      v.array(Weekday),
      v.minLength(1),
      v.description(
        "the days of the week that have a session, as trade dates (default Mon-Fri); all seven for a market that trades every day (CRYPTO). " +
          "An overnight session (phases.open) belongs to the day it closes on: FX's Monday opens on Sunday evening, and Sunday is not listed",
      ),
    ),
  ),
  symbols: v.pipe(
    v.strictObject({
      suffix: v.pipe(Suffix, v.description("canonical suffix of a stored symbol (PKN.WA)")),
      aliases: v.pipe(v.array(Suffix), v.description("other suffixes and prefixes read as this market (pkn.pl, WSE:PKN)")),
      storedAs: v.optional(
        v.pipe(
          v.string(),
          v.regex(/^[A-Z]{2,8}$/),
          v.description("the code of another market whose canonical suffix this market's symbols are stored with (NASDAQ: NYSE, so AAPL.US), where providers write both markets' listings alike"),
        ),
      ),
      shareClassSeparator: v.optional(v.pipe(v.string(), v.length(1), v.description("a share class written after `.`, `/` or `-` is stored with this (BRK.B, BRK/B → BRK-B)"))),
      pairs: v.optional(Pairs),
      padDigits: v.optional(v.pipe(v.number(), v.integer(), v.minValue(2), v.maxValue(8), v.description("an all-digit ticker is stored with this many digits at least, zero-padded, any other leading zeros dropped (Hong Kong 4: 700, 00700 → 0700)"))),
    }),
    v.description("how ticksync spells and reads the market's symbols"),
  ),
  providers: v.pipe(v.record(v.string(), ProviderSpelling), v.description("how each provider spells a ticker of this market; a provider not listed has none of its listings")),
  phases: v.pipe(
    v.strictObject({
      note: v.optional(Text),
      pre: v.optional(Span),
      open: v.pipe(
        Span,
        v.description(
          "the regular session. from < to: within the trade date (to may be 24:00, the next midnight: 00:00-24:00 is a whole day, CRYPTO's UTC day). " +
            "from >= to: an overnight session that opens at `from` on the calendar day before its trade date and closes at `to` on it; " +
            "from = to is 24 hours (FX: 17:00-17:00 New York, Monday's session opens Sunday 17:00). The trade date's day then starts at the first phase's from the evening before",
        ),
      ),
      post: v.optional(Span),
      breaks: v.optional(Breaks),
      earlyClose: v.optional(v.strictObject({ close: Clock, postTo: Clock, what: Text })),
      sources: v.array(Text),
    }),
    v.description(
      "the phases of a trading day in local time, each [from, to): pre, the regular session (open), post; and where a half day ends them. " +
        "pre and post are optional (a market that trades around the clock has neither); an overnight session's pre lies on the evening before, its post on the trade date",
    ),
  ),
  hoursHistory: v.optional(
    v.pipe(
      v.array(
        v.strictObject({
          until: v.pipe(IsoDate, v.description("the last date these hours applied")),
          open: v.optional(Clock),
          close: v.optional(Clock),
          breaks: v.optional(Breaks),
          earlyClose: v.optional(
            v.pipe(Clock, v.description("the close of a half day in these years, inside their session (Hong Kong: 12:30 until 2011-03-04); left out: phases.earlyClose.close")),
          ),
          what: Text,
        }),
      ),
      v.description("the regular hours of earlier years, oldest first: a date up to an entry's until (and after the one before it) has its hours; a field left out is today's (phases)"),
    ),
  ),
  coverage: v.pipe(v.strictObject({ from: IsoDate, to: IsoDate }), v.description("the dates for which the one-off closures are known")),
  holidays: v.pipe(v.array(HolidayRule), v.description("yearly days the exchange is closed")),
  halfDays: v.pipe(v.array(HolidayRule), v.description("yearly days the session ends at phases.earlyClose")),
  closures: v.pipe(v.array(v.strictObject(Dated)), v.description("one-off closures no rule predicts")),
  openDespiteRule: v.optional(v.pipe(v.array(v.strictObject(Dated)), v.description("dates a rule makes a holiday on which the exchange nevertheless traded"))),
  specialSessions: v.optional(
    v.pipe(
      v.array(v.strictObject({ ...Dated, open: v.optional(Clock), close: v.optional(Clock) })),
      v.description("trading days with other than the regular hours (local times)"),
    ),
  ),
});
export type MarketFile = v.InferOutput<typeof MarketFileSchema>;

/** Breaks strictly inside [open, close], in order, not overlapping, each of some length. */
function breaksInside(open: string, close: string, breaks: readonly { from: string; to: string }[]): boolean {
  if (breaks.length === 0) return true; // also an overnight session's (FX 17:00-17:00), which has none
  let last = parseClock(open);
  for (const b of breaks) {
    if (!(last < parseClock(b.from) && parseClock(b.from) < parseClock(b.to))) return false;
    last = parseClock(b.to);
  }
  return last < parseEndClock(close);
}

/**
 * Whether the regular session opens on the calendar day before its trade date (FX 17:00-17:00
 * New York; CME-style 17:00-16:00): `open.from` at or after `open.to`.
 */
export function isOvernight(open: { from: string; to: string }): boolean {
  return parseClock(open.from) >= parseEndClock(open.to);
}

/**
 * The phases of a trade date as [from, to) ms on one axis from its local midnight (an overnight
 * session's evening before is negative), in order: pre, open, post, those the file has.
 */
export function phaseAxis(phases: MarketFile["phases"]): { from: number; to: number }[] {
  const eve = isOvernight(phases.open) ? -DAY_MS : 0;
  const spans: { from: number; to: number }[] = [];
  if (phases.pre) spans.push({ from: parseClock(phases.pre.from) + eve, to: parseEndClock(phases.pre.to) + eve });
  spans.push({ from: parseClock(phases.open.from) + eve, to: parseEndClock(phases.open.to) });
  if (phases.post) spans.push({ from: parseClock(phases.post.from), to: parseEndClock(phases.post.to) });
  return spans;
}

/**
 * What the schema cannot say: the phases make one trade day, in order, no longer than 24 hours
 * (a day's first phase starts no earlier than the day before's last one ends), breaks lie inside
 * the session, a half day has hours, no weekday is listed twice, and earlier hours are in date
 * order and make a session each (with a half day's close inside it).
 */
export function phaseProblem(file: MarketFile): string | undefined {
  const d = file.phases;
  const axis = phaseAxis(d);
  const ordered = axis.every((s, i) => s.from < s.to && (i === 0 || axis[i - 1]!.to === s.from)) && axis.at(-1)!.to - axis[0]!.from <= DAY_MS;
  const open = axis[d.pre ? 1 : 0]!;
  const early = d.earlyClose === undefined || (open.from < parseClock(d.earlyClose.close) && parseClock(d.earlyClose.close) < parseClock(d.earlyClose.postTo));
  if (!ordered || !early) return `the ${file.code} phases are not contiguous and in order`;
  if (!breaksInside(d.open.from, d.open.to, d.breaks ?? [])) return `the ${file.code} breaks are not inside phases.open, in order and apart`;
  if (file.halfDays.length > 0 && d.earlyClose === undefined) return `${file.code} has half days but no phases.earlyClose hours`;
  if (new Set(file.tradingWeekdays).size !== (file.tradingWeekdays ?? []).length) return `${file.code} lists a day twice in tradingWeekdays`;
  let previous = "";
  for (const h of file.hoursHistory ?? []) {
    const open = h.open ?? d.open.from;
    const close = h.close ?? d.open.to;
    if (h.until <= previous) return `the ${file.code} hoursHistory is not in date order`;
    if (!(axis[0]!.from <= parseClock(open) && parseClock(open) < parseEndClock(close) && parseEndClock(close) <= axis.at(-1)!.to) || !breaksInside(open, close, h.breaks ?? d.breaks ?? [])) {
      return `the ${file.code} hoursHistory entry until ${h.until} is not a session inside the day's phases with its breaks inside it`;
    }
    if (h.earlyClose !== undefined && !(parseClock(open) < parseClock(h.earlyClose) && parseClock(h.earlyClose) < parseEndClock(close))) {
      return `the ${file.code} hoursHistory entry until ${h.until} has an earlyClose outside its session`;
    }
    previous = h.until;
  }
  return undefined;
}
