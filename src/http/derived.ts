// Bars rolled up on read: /api/bars' and /api/indicators' fallback when the store has no bars at
// the interval asked for but finer ones, rolled up along the exchange's sessions. Through the
// store contract only (listSeries, queryBars or queryBarValues, and the optional materialised
// rollupPage): every store serves them alike.
import { INTERVAL_MS, type Bar, type Interval } from "../domain/bar.ts";
import type { Market } from "../domain/calendar.ts";
import { bucketOf, bucketSpan, createDailyRoller, createRoller, isIntraday, rollupSources } from "../domain/rollup.ts";
import { marketOf } from "../domain/symbols.ts";
import type { SeriesInfo, Store } from "../stores/types.ts";
import type { BarCursor } from "./query.ts";

const DAY_MS = 86_400_000;
/** Finer bars read for one rolled-up page at most; a page that reaches it ends early, with `next`. */
export const ROLLUP_READ_BUDGET = 1_000_000;
/** Bars asked of the store in one read. */
export const CHUNK = 10_000;

/** How far a rolled-up bar's finer bars can lie from its ts (a bound, not a length). */
export function reach(to: Interval): number {
  return isIntraday(to) ? INTERVAL_MS[to] : to === "1d" ? DAY_MS : to === "1w" ? 8 * DAY_MS : 32 * DAY_MS;
}

/**
 * The finer interval to roll `interval` up from for a symbol, or null when the store has bars at
 * `interval` itself (of `source`, when given) or none it could be built from. The coarsest
 * usable interval is taken: it is the least to read.
 */
export async function rollupBase(store: Store, symbol: string, interval: Interval, source?: string, listed?: SeriesInfo[]): Promise<Interval | null> {
  // `listed`: the symbol's series when the caller has read them already (one store call fewer).
  const series = (listed ?? (await store.listSeries({ symbol }))).filter((s) => s.bars > 0 && (source === undefined || s.source === source));
  if (series.some((s) => s.interval === interval)) return null;
  return rollupSources(interval).find((i) => series.some((s) => s.interval === i)) ?? null;
}

/**
 * `excluded`: the finer bars outside every regular session between the start of the page's first
 * bucket and the end of its last (none on an empty page); `materialised`: read from the store's
 * materialised rollups rather than rolled up here.
 */
export type RolledPage = { bars: Bar[]; next: BarCursor | null; from: Interval; excluded: number; materialised: boolean };

type RollupQuery = { symbol: string; market: Market; base: Interval; interval: Interval; source?: string; from?: number; to?: number; limit: number; after?: BarCursor };

/** Where the finer bars of a page are read from and to, and which rolled-up bars the page keeps. */
function readWindow(q: RollupQuery) {
  const start = q.after !== undefined ? Math.max(q.after.ts, q.from ?? -Infinity) : q.from;
  const lookback = INTERVAL_MS[q.base] + reach(q.interval);
  const keep = (b: Bar) =>
    (q.from === undefined || b.ts >= q.from) &&
    (q.to === undefined || b.ts <= q.to) &&
    (q.after === undefined || b.ts > q.after.ts || (b.ts === q.after.ts && b.source > q.after.source));
  return { fetchFrom: start === undefined ? undefined : start - lookback, fetchTo: q.to === undefined ? undefined : q.to + reach(q.interval), lookback, keep };
}

/**
 * One page of rolled-up bars, in (ts, source) order like a stored page, filtered by the rolled-up
 * bars' ts (from, to) and keyset-paged after `after` (the previous page's last (ts, source)).
 * The finer bars are read from a little before the first bucket (its finer bars may start before
 * its ts) in the store's own pages; a bucket is emitted once a finer bar at or after its end has
 * been read (or there are no more), so a page never holds a half-built bar. Weeks and months of
 * daily bars are folded from the store's rows (readDailyRolledUp); other rollups go
 * through the roller (readRolledUpBars). `sources`: how many series the finer bars come from,
 * when known, to size the first read to the page.
 */
export function readRolledUp(store: Store, q: RollupQuery & { sources?: number }): Promise<RolledPage> {
  return q.base === "1d" && (q.interval === "1w" || q.interval === "1mo") ? readDailyRolledUp(store, { ...q, interval: q.interval }) : readRolledUpBars(store, q);
}

/** readRolledUp through createRoller over Bars (every base; intraday bars outside every session counted in `excluded`). */
export async function readRolledUpBars(store: Store, q: RollupQuery): Promise<RolledPage> {
  const { fetchFrom, fetchTo, keep } = readWindow(q);
  const roller = createRoller(q.base, q.interval, q.market);
  const out: Bar[] = [];
  const left: number[] = [];
  let after: BarCursor | undefined;
  let read = 0;
  let exhausted = false;
  // Only intraday bars can lie outside every session (bucketOf null); daily bars skip the check.
  const sessioned = isIntraday(q.base);
  for (;;) {
    const rows = await store.queryBars({ symbol: q.symbol, interval: q.base, source: q.source, from: fetchFrom, to: fetchTo, limit: CHUNK, after });
    for (const b of rows) {
      if (sessioned && bucketOf(b.ts, q.base, q.interval, q.market) === null) left.push(b.ts);
      roller.push(b);
    }
    read += rows.length;
    exhausted = rows.length < CHUNK;
    const last = rows[rows.length - 1];
    if (last) after = { ts: last.ts, source: last.source };
    for (const b of roller.drain(exhausted ? Infinity : (last?.ts ?? -Infinity))) if (keep(b)) out.push(b);
    if (out.length > q.limit || exhausted || (read >= ROLLUP_READ_BUDGET && out.length > 0)) break;
  }
  const bars = out.slice(0, q.limit);
  const more = out.length > q.limit || !exhausted;
  const lastBar = bars[bars.length - 1];
  // Counted over the page's own span (every finer bar in it has been read), so the count does not
  // depend on how far the reading went, and a materialised page can give the same.
  let excluded = 0;
  if (lastBar) {
    const lo = bucketSpan(bars[0]!.ts, q.base, q.interval, q.market).start;
    const hi = bucketSpan(lastBar.ts, q.base, q.interval, q.market).end;
    for (const t of left) if (t >= lo && t < hi) excluded++;
  }
  return { bars, next: more && lastBar ? { ts: lastBar.ts, source: lastBar.source } : null, from: q.base, excluded, materialised: false };
}

/** The daily bars' fields a week or month is folded from: symbol and interval are the query's. */
const DAILY_FIELDS = ["source", "ts", "open", "high", "low", "close", "volume", "adjClose", "turnover", "trades"] as const;

/**
 * readRolledUp for weeks and months of daily bars: the store's narrow rows (queryBarFields, or
 * queryBars' bars) folded by createDailyRoller. The first read is sized to the page (a week
 * holds at most 7 daily bars a source, a month 31, plus the lookback), later ones are CHUNK
 * rows. Daily bars are sessions: none is left out (`excluded` 0).
 */
export async function readDailyRolledUp(store: Store, q: RollupQuery & { interval: "1w" | "1mo"; sources?: number }): Promise<RolledPage> {
  const { fetchFrom, fetchTo, lookback, keep } = readWindow(q);
  const roller = createDailyRoller(q.interval, q.market, q.symbol);
  const perBucket = q.interval === "1w" ? 7 : 31;
  let limit = Math.min(CHUNK, ((q.limit + 2) * perBucket + Math.ceil(lookback / DAY_MS)) * Math.max(1, q.sources ?? 1));
  const out: Bar[] = [];
  let after: BarCursor | undefined;
  let read = 0;
  let exhausted = false;
  for (;;) {
    const bq = { symbol: q.symbol, interval: q.base, source: q.source, from: fetchFrom, to: fetchTo, limit, after };
    const rows = store.queryBarFields ? await store.queryBarFields(bq, DAILY_FIELDS) : await store.queryBars(bq);
    roller.push(rows);
    read += rows.length;
    exhausted = rows.length < limit;
    const last = rows[rows.length - 1];
    if (last) after = { ts: last.ts, source: last.source };
    for (const b of roller.drain(exhausted ? Infinity : (last?.ts ?? -Infinity))) if (keep(b)) out.push(b);
    if (out.length > q.limit || exhausted || (read >= ROLLUP_READ_BUDGET && out.length > 0)) break;
    limit = CHUNK;
  }
  const bars = out.length > q.limit ? out.slice(0, q.limit) : out;
  const more = out.length > q.limit || !exhausted;
  const lastBar = bars[bars.length - 1];
  return { bars, next: more && lastBar ? { ts: lastBar.ts, source: lastBar.source } : null, from: q.base, excluded: 0, materialised: false };
}

/**
 * /api/bars' fallback: a page rolled up from finer bars when the store has none at `interval`
 * for the symbol (and source), or null to read the stored bars as usual. From the store's
 * materialised rollups when it keeps them up to date (Postgres), else rolled up here; the two
 * give the same page.
 */
export async function rolledUpBars(
  store: Store,
  q: { symbol: string; interval: Interval; source?: string; from?: number; to?: number; limit: number; after?: BarCursor },
): Promise<RolledPage | null> {
  const market = marketOf(q.symbol);
  if (market === undefined) return null;
  const m = await store.rollupPage?.(q);
  if (m) {
    const last = m.bars[m.bars.length - 1];
    return { bars: m.bars, next: m.more && last ? { ts: last.ts, source: last.source } : null, from: m.from, excluded: m.excluded, materialised: true };
  }
  const listed = await store.listSeries({ symbol: q.symbol });
  const base = await rollupBase(store, q.symbol, q.interval, q.source, listed);
  if (base === null) return null;
  const sources = listed.filter((s) => s.interval === base && s.bars > 0 && (q.source === undefined || s.source === q.source)).length;
  return readRolledUp(store, { ...q, market, base, sources });
}
