// Rollups: bars of a coarser interval built from finer ones along the exchange's own boundaries.
// An intraday bucket starts at the session open in exchange time and steps by its length, the
// last one cut at the close (NYSE 1h: 09:30-10:30 … 15:30-16:00, 12:30-13:00 on an early close;
// 4h alike: 09:30-13:30 and 13:30-16:00, one 09:30-13:00 bucket on an early close);
// a session with a break (Tokyo's lunch) is two parts, each bucketed from its own start, so no
// bucket spans the break (TSE 1h: 09:00-10:00, 10:00-11:00, 11:00-11:30, 12:30-13:30 …);
// a daily bar is one session (a WSE daily bar is the Warsaw session, not a UTC day; an FX one runs
// 17:00 to 17:00 New York; a CRYPTO one is a UTC day); a weekly bar is the sessions of one ISO
// week of trade dates (FX: Sunday 17:00 to Friday 17:00), a monthly bar those of one calendar
// month. DST needs no special case: session opens and closes are UTC instants the calendar
// computes per trade date.
import { INTERVAL_MS, INTERVALS, type Bar, type Interval } from "./bar.ts";
import { isTradingDay, sessionFor, tradeDate, tradeDayStart, type Market, type Session } from "./calendar.ts";

const DAY_MS = 86_400_000;

export const INTRADAY: readonly Interval[] = ["1m", "2m", "5m", "15m", "30m", "1h", "4h"];
export const isIntraday = (i: Interval) => INTRADAY.includes(i);

// ---------------------------------------------------------------------------------------------
// Dates (`YYYY-MM-DD`) as UTC midnights.

export const dateMs = (date: string) => Date.parse(`${date}T00:00:00Z`);
export const dateOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
export const addDays = (date: string, n: number) => dateOf(dateMs(date) + n * DAY_MS);

/** Monday of the ISO week a date is in. */
export function isoWeekMonday(date: string): string {
  const t = dateMs(date);
  return dateOf(t - ((new Date(t).getUTCDay() + 6) % 7) * DAY_MS);
}

export const monthStart = (date: string) => `${date.slice(0, 8)}01`;

export function nextMonthStart(date: string): string {
  const y = Number(date.slice(0, 4));
  const m = Number(date.slice(5, 7));
  return m === 12 ? `${y + 1}-01-01` : `${y}-${String(m + 1).padStart(2, "0")}-01`;
}

/**
 * Trade date of an instant at a market: its local date (the time zone's calendar day), or for a
 * market whose session opens the evening before (FX) the date of that session's day.
 */
export const localDate = (market: Market, ts: number) => tradeDate(market, ts);

/**
 * UTC instant a trade date's day starts at a market: local midnight, or the evening before for an
 * overnight market (FX: 17:00 New York). Memoised: weekly and monthly buckets ask per bar.
 */
export const localMidnight = (market: Market, date: string) => memo(midnightMemo, `${market} ${date}`, () => tradeDayStart(market, date));

// Sessions are asked for once per bar; memoise them (bounded: a long read must not grow it forever).
const sessionMemo = new Map<string, Session | null>();
const firstSessionMemo = new Map<string, string | null>();
const midnightMemo = new Map<string, number>();
const MEMO_LIMIT = 50_000;

function memo<T>(map: Map<string, T>, key: string, make: () => T): T {
  if (map.has(key)) return map.get(key)!;
  if (map.size >= MEMO_LIMIT) map.clear();
  const value = make();
  map.set(key, value);
  return value;
}

export const sessionOn = (market: Market, date: string) => memo(sessionMemo, `${market} ${date}`, () => sessionFor(market, date));

let lastDay: { market: Market; day: number; sessions: (Session | null)[] } | null = null;

/**
 * The regular session a bar [ts, ts + lengthMs) falls in: the one it overlaps. A bar that starts
 * before the open but runs into it (a clock-aligned 09:00 hour bar at NYSE) belongs to it; a
 * pre-market or after-hours bar, or one on a non-trading day, belongs to none.
 */
export function sessionAt(market: Market, ts: number, lengthMs: number): Session | null {
  // Bars come in ts order: the candidate sessions of the last UTC day asked about are kept.
  const day = Math.floor(ts / DAY_MS);
  let c = lastDay;
  if (c === null || c.market !== market || c.day !== day) {
    const d = dateOf(day * DAY_MS);
    c = lastDay = { market, day, sessions: [sessionOn(market, d), sessionOn(market, addDays(d, -1)), sessionOn(market, addDays(d, 1))] };
  }
  for (const s of c.sessions) if (s && ts < s.close && ts + lengthMs > s.open) return s.breaks === undefined || partAt(s, ts, lengthMs) >= 0 ? s : null;
  return null;
}

/**
 * The part of a session between its breaks that a bar [ts, ts + lengthMs) overlaps first, as its
 * index (0: open to the first break; the last: the last break's end to the close); -1 for a bar
 * wholly inside a break. An index, not a span, so the per-bar path allocates nothing.
 */
function partAt(s: Session, ts: number, lengthMs: number): number {
  const breaks = s.breaks ?? [];
  for (let i = 0; i <= breaks.length; i++) {
    if (ts < partTo(s, i) && ts + lengthMs > partFrom(s, i)) return i;
  }
  return -1;
}
const partFrom = (s: Session, i: number) => (i === 0 ? s.open : s.breaks![i - 1]!.to);
const partTo = (s: Session, i: number) => (s.breaks === undefined || i === s.breaks.length ? s.close : s.breaks[i]!.from);

/** First trading day in [from, from + days), or null. */
function firstSessionIn(market: Market, from: string, days: number): string | null {
  return memo(firstSessionMemo, `${market} ${from} ${days}`, () => {
    for (let i = 0; i < days; i++) {
      const d = addDays(from, i);
      if (isTradingDay(market, d)) return d;
    }
    return null;
  });
}

// ---------------------------------------------------------------------------------------------

/**
 * Whether bars of `to` can be built exactly from bars of `from`: an intraday interval from a
 * finer one that divides it, so that both bucket grids start at the session open and every finer
 * bucket lies in one coarser bucket (5m from 1m; 30m from 1m, 2m, 5m or 15m; 4h from any finer
 * intraday interval; but not 5m or 15m from 2m, whose buckets straddle theirs), 1d from any
 * intraday interval, 1w and 1mo from intraday or daily bars. Weeks and months do not nest, so
 * neither is built from the other.
 */
export function canRollUp(from: Interval, to: Interval): boolean {
  if (INTERVALS.indexOf(from) >= INTERVALS.indexOf(to)) return false;
  if (isIntraday(to)) return isIntraday(from) && INTERVAL_MS[to] % INTERVAL_MS[from] === 0;
  if (to === "1d") return isIntraday(from);
  return isIntraday(from) || from === "1d";
}

/** The finer intervals a `to` bar can be built from, coarsest first (the cheapest to read). */
export function rollupSources(to: Interval): Interval[] {
  return INTERVALS.filter((i) => canRollUp(i, to)).reverse();
}

/**
 * The bucket a `from` bar starting at `ts` belongs to: the rolled-up bar's ts, and `end`, an
 * exclusive bound on the ts of every finer bar in it (all of a bucket is read once a bar at or
 * after `end` is). Null when the bar lies outside every regular session (intraday bars only).
 * Daily and longer buckets keep the store's convention: ts is 00:00Z of a session date — the
 * session's own for 1d, the first session of the ISO week (1w) or month (1mo); a week or month
 * without any session (daily bars only) starts at its Monday or its 1st.
 */
export function bucketOf(ts: number, from: Interval, to: Interval, market: Market): { ts: number; end: number } | null {
  let date: string;
  let endOf: (date: string) => number;
  if (isIntraday(from)) {
    const s = sessionAt(market, ts, INTERVAL_MS[from]);
    if (s === null) return null;
    if (isIntraday(to)) {
      const step = INTERVAL_MS[to];
      const part = s.breaks === undefined ? 0 : partAt(s, ts, INTERVAL_MS[from]); // sessionAt found one
      const open = partFrom(s, part);
      const start = open + Math.floor((Math.max(ts, open) - open) / step) * step;
      return { ts: start, end: Math.min(start + step, partTo(s, part)) };
    }
    if (to === "1d") return { ts: dateMs(s.date), end: s.close };
    date = s.date;
    endOf = (d) => localMidnight(market, d);
  } else {
    // Daily bars come in runs of one week or month: the last bucket answers without a key built.
    const c = lastDailyBucket;
    if (c !== null && c.market === market && c.to === to && ts >= c.start && ts < c.end) return { ts: c.ts, end: c.end };
    date = dateOf(ts - (((ts % DAY_MS) + DAY_MS) % DAY_MS));
    endOf = dateMs;
  }
  if (to !== "1w" && to !== "1mo") throw new RangeError(`cannot roll ${from} bars up to ${to}`);
  // Asked once per finer bar: the week or month of a date is worked out once.
  const p = memo(periodMemo, `${market} ${isIntraday(from) ? "i" : "d"} ${to} ${date}`, () => {
    if (to === "1w") {
      const monday = isoWeekMonday(date);
      return { ts: dateMs(firstSessionIn(market, monday, 7) ?? monday), end: endOf(addDays(monday, 7)) };
    }
    const first = monthStart(date);
    const next = nextMonthStart(date);
    const days = Math.round((dateMs(next) - dateMs(first)) / DAY_MS);
    return { ts: dateMs(firstSessionIn(market, first, days) ?? first), end: endOf(next) };
  });
  if (!isIntraday(from)) lastDailyBucket = { market, to, start: dateMs(to === "1w" ? isoWeekMonday(date) : monthStart(date)), ts: p.ts, end: p.end };
  return { ts: p.ts, end: p.end };
}
const periodMemo = new Map<string, { ts: number; end: number }>();
/** bucketOf's last daily bucket: [start, end) are the UTC midnights its daily bars lie in. */
let lastDailyBucket: { market: Market; to: Interval; start: number; ts: number; end: number } | null = null;

/**
 * The time a rolled-up bar at `ts` (a bucket's ts, as bucketOf gives it) spans: `end` as bucketOf
 * gives it; `start` the bucket's ts for intraday buckets, else the midnight (the market's trade
 * day start for intraday `from` bars, UTC for daily ones, as bucketOf reads them; FX's is 17:00
 * New York the evening before) starting its first date — the
 * session's, the ISO week's Monday, the month's 1st. Every finer bar of the bucket starts in
 * [start - the finer interval, end); pages of rolled-up bars count the bars left out between
 * their first start and last end (see outOfSessionSpan).
 */
export function bucketSpan(ts: number, from: Interval, to: Interval, market: Market): { start: number; end: number } {
  if (!canRollUp(from, to)) throw new RangeError(`cannot roll ${from} bars up to ${to}`);
  const midnight = isIntraday(from) ? (d: string) => localMidnight(market, d) : dateMs;
  if (isIntraday(to)) {
    const s = sessionAt(market, ts, 1);
    if (s === null) throw new RangeError(`no ${market} session at ${new Date(ts).toISOString()} for a ${to} bucket`);
    return { start: ts, end: Math.min(ts + INTERVAL_MS[to], partTo(s, s.breaks === undefined ? 0 : partAt(s, ts, 1))) };
  }
  const date = dateOf(ts - (((ts % DAY_MS) + DAY_MS) % DAY_MS));
  if (to === "1d") {
    const s = sessionOn(market, date);
    return { start: midnight(date), end: s ? s.close : midnight(addDays(date, 1)) };
  }
  if (to === "1w") {
    const monday = isoWeekMonday(date);
    return { start: midnight(monday), end: midnight(addDays(monday, 7)) };
  }
  return { start: midnight(monthStart(date)), end: midnight(nextMonthStart(date)) };
}

/**
 * The stretch of time outside the regular session an intraday bar at `ts` lies in (one that
 * bucketOf leaves out): a non-trading day's whole trade day (local midnight to midnight; FX
 * 17:00 to 17:00 New York), the part of a trading day before its open or after its close, or a
 * break in its session. Stretches never cross a trade day's start, an open, a close or a break's
 * ends, so a span from a bucket's start to a bucket's end holds each one whole or not at all.
 */
export function outOfSessionSpan(market: Market, ts: number): { start: number; end: number } {
  const d = localDate(market, ts);
  const s = sessionOn(market, d);
  const next = localMidnight(market, addDays(d, 1));
  if (s === null) return { start: localMidnight(market, d), end: next };
  for (const b of s.breaks ?? []) if (ts >= b.from && ts < b.to) return { start: b.from, end: b.to };
  return ts < s.open ? { start: localMidnight(market, d), end: s.open } : { start: s.close, end: next };
}

/**
 * The ISO week and calendar month around the date a `from` bar at `ts` is on (its market's trade
 * date for intraday bars, the UTC date for daily ones), as one span: every bucket of every
 * interval a bar there rolls up into lies inside it. Recomputing the buckets of a changed bar
 * reads the finer bars of this span.
 */
export function coveringSpan(ts: number, from: Interval, market: Market): { start: number; end: number } {
  const date = isIntraday(from) ? localDate(market, ts) : dateOf(ts - (((ts % DAY_MS) + DAY_MS) % DAY_MS));
  const midnight = isIntraday(from) ? (d: string) => localMidnight(market, d) : dateMs;
  const monday = isoWeekMonday(date);
  const first = monthStart(date);
  return {
    start: midnight(monday < first ? monday : first),
    end: Math.max(midnight(addDays(monday, 7)), midnight(nextMonthStart(date))),
  };
}

type Open = { ts: number; end: number; bar: Bar; turnoverAll: boolean; tradesAll: boolean; n: number; last: number };

function finish(o: Open): Bar {
  return { ...o.bar, turnover: o.turnoverAll ? o.bar.turnover : null, trades: o.tradesAll ? o.bar.trades : null };
}

export type Roller = {
  /** Add the next finer bar; each source's bars must come in ts order (the store's order). */
  push(bar: Bar): void;
  /**
   * The rolled-up bars complete at `watermark` (every finer bar with ts < watermark has been
   * pushed; Infinity: all of them), in (ts, source) order, each returned once. A bucket of any
   * source not returned yet ends after every bar returned, so consecutive drains keep that order.
   */
  drain(watermark: number): Bar[];
  /** As drain, with the number of finer bars in each rolled-up bar and the ts of its last one. */
  drainCounted(watermark: number): { bar: Bar; bars: number; last: number }[];
  /** Finer bars outside every regular session, left out. */
  readonly excluded: number;
};

/**
 * A streaming rollup of `from` bars into `to` bars at a market: open = first, high = max,
 * low = min, close = last, volume = sum; turnover and trades are summed when every finer bar has
 * them (a partial sum would understate), else null; adjClose is the last bar's (null if it has
 * none). Several sources are rolled up side by side, each into its own bars.
 */
export function createRoller(from: Interval, to: Interval, market: Market): Roller {
  if (!canRollUp(from, to)) throw new RangeError(`cannot roll ${from} bars up to ${to}`);
  const open = new Map<string, Open>();
  let closed: Open[] = [];
  let excluded = 0;
  function drainCounted(watermark: number): { bar: Bar; bars: number; last: number }[] {
    const done: Open[] = [];
    const keep: Open[] = [];
    for (const o of closed) (o.end <= watermark ? done : keep).push(o);
    closed = keep;
    for (const [source, o] of open)
      if (o.end <= watermark) {
        done.push(o);
        open.delete(source);
      }
    return done
      .map((o) => ({ bar: finish(o), bars: o.n, last: o.last }))
      .sort((x, y) => x.bar.ts - y.bar.ts || (x.bar.source < y.bar.source ? -1 : x.bar.source > y.bar.source ? 1 : 0));
  }
  return {
    push(b) {
      const k = bucketOf(b.ts, from, to, market);
      if (k === null) {
        excluded++;
        return;
      }
      const cur = open.get(b.source);
      if (cur !== undefined && cur.ts === k.ts) {
        const a = cur.bar;
        a.high = Math.max(a.high, b.high);
        a.low = Math.min(a.low, b.low);
        a.close = b.close;
        a.volume += b.volume;
        a.adjClose = b.adjClose ?? null;
        if (b.turnover == null) cur.turnoverAll = false;
        else a.turnover = (a.turnover ?? 0) + b.turnover;
        if (b.trades == null) cur.tradesAll = false;
        else a.trades = (a.trades ?? 0) + b.trades;
        cur.n++;
        cur.last = b.ts;
        return;
      }
      if (cur !== undefined) closed.push(cur);
      open.set(b.source, {
        ts: k.ts,
        end: k.end,
        n: 1,
        last: b.ts,
        turnoverAll: b.turnover != null,
        tradesAll: b.trades != null,
        bar: {
          source: b.source,
          symbol: b.symbol,
          interval: to,
          ts: k.ts,
          open: b.open,
          high: b.high,
          low: b.low,
          close: b.close,
          volume: b.volume,
          adjClose: b.adjClose ?? null,
          turnover: b.turnover ?? null,
          trades: b.trades ?? null,
        },
      });
    },
    drain: (watermark) => drainCounted(watermark).map((d) => d.bar),
    drainCounted,
    get excluded() {
      return excluded;
    },
  };
}

/** Roll a whole list of `from` bars (any order, any sources) up to `to`; (ts, source) order. */
export function rollup(bars: readonly Bar[], to: Interval, market: Market): Bar[] {
  if (bars.length === 0) return [];
  const roller = createRoller(bars[0]!.interval, to, market);
  for (const b of [...bars].sort((a, b) => a.ts - b.ts)) roller.push(b);
  return roller.drain(Infinity);
}

// ---------------------------------------------------------------------------------------------
// Daily bars to weeks and months straight from a store's rows (/api/bars and /api/indicators
// rolling up on read): no Bar per daily bar, no bucket object per bar, no date strings. The week or month of a trade date is the same for every symbol of a market, so its
// bucket is worked out once per (market, interval, period) and kept.

/** A week's or month's bucket of daily bars: [start, end) the UTC midnights its daily bars lie in, ts the rolled-up bar's (bucketOf's). */
export type DailyBucket = { start: number; end: number; ts: number };

const dailyBucketMemo = new Map<string, Map<number, DailyBucket>>();

/**
 * bucketOf(ts, "1d", to, market) with the period's start: the ISO week (Monday 00:00Z) or
 * calendar month (the 1st, 00:00Z) the UTC date of `ts` lies in, its ts that of its first
 * session (or the period's start when it has none). The period is found by arithmetic on the day
 * number (1970-01-01 was a Thursday), the bucket memoised by its start.
 */
export function dailyBucket(ts: number, to: "1w" | "1mo", market: Market): DailyBucket {
  const day = Math.floor(ts / DAY_MS);
  let start: number;
  if (to === "1w") start = (day - ((((day + 3) % 7) + 7) % 7)) * DAY_MS;
  else {
    const d = new Date(day * DAY_MS);
    start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }
  const key = `${market} ${to}`;
  let periods = dailyBucketMemo.get(key);
  if (periods === undefined) dailyBucketMemo.set(key, (periods = new Map()));
  let b = periods.get(start);
  if (b === undefined) {
    if (periods.size >= MEMO_LIMIT) periods.clear();
    const first = dateOf(start);
    const end = to === "1w" ? start + 7 * DAY_MS : dateMs(nextMonthStart(first));
    b = { start, end, ts: dateMs(firstSessionIn(market, first, Math.round((end - start) / DAY_MS)) ?? first) };
    periods.set(start, b);
  }
  return b;
}

/** One source's week or month being folded: bucket, the bar so far, whether every daily bar had turnover and trades. */
type Fold = DailyBucket & { bar: Bar; turnoverAll: boolean; tradesAll: boolean };

/**
 * A daily bar's fields as the fold reads them: a Bar, or a store's narrow row (queryBarFields)
 * that may leave out `source` (one series) and the optional values.
 */
export type DailyRow = { source?: string; ts: number; open: number; high: number; low: number; close: number; volume: number; adjClose?: number | null; turnover?: number | null; trades?: number | null };

export type DailyRoller = {
  /** Add daily rows (each source's in ts order, as a store's page gives them). */
  push(rows: readonly DailyRow[]): void;
  /** As Roller.drain: the rolled-up bars whose bucket ends at or before `watermark`, in (ts, source) order, each once. */
  drain(watermark: number): Bar[];
};

/**
 * createRoller("1d", to, market) over a symbol's daily rows, with the same bars (open first, high
 * max, low min, close last, volume summed in order, turnover and trades summed when every daily
 * bar has them, adjClose the last bar's): a row is folded by comparing its ts with its source's
 * current bucket, and a bucket is looked up (dailyBucket) only when a row leaves it. `source`
 * names rows that carry none. A null or NaN value (QuestDB's null double) is absent, as rowToBar
 * reads it.
 */
export function createDailyRoller(to: "1w" | "1mo", market: Market, symbol: string, source = ""): DailyRoller {
  const open = new Map<string, Fold>();
  let closed: Fold[] = [];
  let last: Fold | undefined;
  return {
    push(rows) {
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i]!;
        const src = r.source ?? source;
        const ts = r.ts;
        let f = last !== undefined && last.bar.source === src ? last : open.get(src);
        const adj = r.adjClose != null && r.adjClose === r.adjClose ? r.adjClose : null;
        const turnover = r.turnover != null && r.turnover === r.turnover ? r.turnover : null;
        const trades = r.trades != null ? Number(r.trades) : null;
        if (f !== undefined && ts >= f.start && ts < f.end) {
          const a = f.bar;
          if (r.high > a.high) a.high = r.high;
          if (r.low < a.low) a.low = r.low;
          a.close = r.close;
          a.volume += r.volume;
          a.adjClose = adj;
          if (turnover === null) f.turnoverAll = false;
          else a.turnover = (a.turnover ?? 0) + turnover;
          if (trades === null) f.tradesAll = false;
          else a.trades = (a.trades ?? 0) + trades;
          last = f;
          continue;
        }
        if (f !== undefined) closed.push(f);
        const k = dailyBucket(ts, to, market);
        const bar: Bar = { source: src, symbol, interval: to, ts: k.ts, open: r.open, high: r.high, low: r.low, close: r.close, volume: r.volume, adjClose: adj, turnover, trades };
        f = { start: k.start, end: k.end, ts: k.ts, bar, turnoverAll: turnover !== null, tradesAll: trades !== null };
        open.set(src, f);
        last = f;
      }
    },
    drain(watermark) {
      const done: Fold[] = [];
      const keep: Fold[] = [];
      for (const f of closed) (f.end <= watermark ? done : keep).push(f);
      closed = keep;
      for (const [src, f] of open)
        if (f.end <= watermark) {
          done.push(f);
          open.delete(src);
          if (last === f) last = undefined;
        }
      const bars: Bar[] = new Array(done.length);
      for (let i = 0; i < done.length; i++) {
        const f = done[i]!;
        if (!f.turnoverAll) f.bar.turnover = null;
        if (!f.tradesAll) f.bar.trades = null;
        bars[i] = f.bar;
      }
      return bars.sort((x, y) => x.ts - y.ts || (x.source < y.source ? -1 : x.source > y.source ? 1 : 0));
    },
  };
}
