// Read-side market data computed from stored bars: rollups for /api/bars when the store has no
// bars at the interval asked for, /api/indicators and /api/gaps, and the ticksync_gap_bars gauge.
// Through the store contract only (listSeries, queryBars): every store serves them alike.
import type { Context, Hono } from "hono";
import * as v from "valibot";
import { INTERVAL_MS, IntervalSchema, type Bar, type Interval } from "../domain/bar.ts";
import type { Market } from "../domain/calendar.ts";
import { computeIndicators, parseIndicator, PERIODS_PER_YEAR, warmupBars, type IndicatorSpec, type IndicatorsConfig } from "../domain/indicators.ts";
import { bucketOf, bucketSpan, createRoller, isIntraday, localDate, rollupSources } from "../domain/rollup.ts";
import { marketOf, normaliseSymbol } from "../domain/symbols.ts";
import { MarketSchema, marketCodes } from "../domain/markets/index.ts";
import { createGapScanner, type SeriesGaps } from "../pipeline/gaps.ts";
import type { TicksyncMetrics } from "../lib/metrics.ts";
import { log } from "../lib/log.ts";
import type { Store } from "../stores/types.ts";
import { resolveUniverse } from "../universes/universes.ts";
import { badRequest, BarCursorParam, encodeBarCursor, Instant, invalid, Limit, type BarCursor } from "./query.ts";
import { MAX_GAPS_PAGE, MAX_INDICATOR_CELLS, MAX_INDICATORS } from "./limits.ts";

const DAY_MS = 86_400_000;
/** Finer bars read for one rolled-up page at most; a page that reaches it ends early, with `next`. */
export const ROLLUP_READ_BUDGET = 1_000_000;
const CHUNK = 10_000;


/** How far a rolled-up bar's finer bars can lie from its ts (a bound, not a length). */
function reach(to: Interval): number {
  return isIntraday(to) ? INTERVAL_MS[to] : to === "1d" ? DAY_MS : to === "1w" ? 8 * DAY_MS : 32 * DAY_MS;
}

/**
 * The finer interval to roll `interval` up from for a symbol, or null when the store has bars at
 * `interval` itself (of `source`, when given) or none it could be built from. The coarsest
 * usable interval is taken: it is the least to read.
 */
export async function rollupBase(store: Store, symbol: string, interval: Interval, source?: string): Promise<Interval | null> {
  const series = (await store.listSeries({ symbol })).filter((s) => s.bars > 0 && (source === undefined || s.source === source));
  if (series.some((s) => s.interval === interval)) return null;
  return rollupSources(interval).find((i) => series.some((s) => s.interval === i)) ?? null;
}

/**
 * `excluded`: the finer bars outside every regular session between the start of the page's first
 * bucket and the end of its last (none on an empty page); `materialised`: read from the store's
 * materialised rollups rather than rolled up here.
 */
export type RolledPage = { bars: Bar[]; next: BarCursor | null; from: Interval; excluded: number; materialised: boolean };

/**
 * One page of rolled-up bars, in (ts, source) order like a stored page, filtered by the rolled-up
 * bars' ts (from, to) and keyset-paged after `after` (the previous page's last (ts, source)).
 * The finer bars are read from a little before the first bucket (its finer bars may start before
 * its ts) in the store's own pages; a bucket is emitted once a finer bar at or after its end has
 * been read (or there are no more), so a page never holds a half-built bar.
 */
export async function readRolledUp(
  store: Store,
  q: { symbol: string; market: Market; base: Interval; interval: Interval; source?: string; from?: number; to?: number; limit: number; after?: BarCursor },
): Promise<RolledPage> {
  const start = q.after !== undefined ? Math.max(q.after.ts, q.from ?? -Infinity) : q.from;
  const lookback = INTERVAL_MS[q.base] + reach(q.interval);
  const fetchFrom = start === undefined ? undefined : start - lookback;
  const fetchTo = q.to === undefined ? undefined : q.to + reach(q.interval);
  const roller = createRoller(q.base, q.interval, q.market);
  const keep = (b: Bar) =>
    (q.from === undefined || b.ts >= q.from) &&
    (q.to === undefined || b.ts <= q.to) &&
    (q.after === undefined || b.ts > q.after.ts || (b.ts === q.after.ts && b.source > q.after.source));
  const out: Bar[] = [];
  const left: number[] = [];
  let after: BarCursor | undefined;
  let read = 0;
  let exhausted = false;
  for (;;) {
    const rows = await store.queryBars({ symbol: q.symbol, interval: q.base, source: q.source, from: fetchFrom, to: fetchTo, limit: CHUNK, after });
    for (const b of rows) {
      if (bucketOf(b.ts, q.base, q.interval, q.market) === null) left.push(b.ts);
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
  const base = await rollupBase(store, q.symbol, q.interval, q.source);
  if (base === null) return null;
  return readRolledUp(store, { ...q, market, base });
}

// ---------------------------------------------------------------------------------------------

const IndicatorSet = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const parts = dataset.value.split(",");
    // Counted before any is parsed: the work of a refusal does not grow with the list.
    if (parts.length > MAX_INDICATORS) {
      addIssue({ message: `at most ${MAX_INDICATORS} indicators (got ${parts.length})` });
      return NEVER;
    }
    const specs: IndicatorSpec[] = [];
    for (const part of parts) {
      const r = parseIndicator(part);
      if (typeof r === "string") addIssue({ message: r });
      else if (specs.some((s) => s.key === r.key)) addIssue({ message: `${r.key} is listed twice` });
      else specs.push(r);
    }
    return specs.length > 0 && specs.length === parts.length ? specs : NEVER;
  }),
);

/** `PKN.WA`, `pkn.pl` and (when only one market has it) `PKN` all name the stored symbol. */
async function resolveSymbol(store: Store, raw: string): Promise<{ symbol: string } | { error: string }> {
  const sym = normaliseSymbol(raw);
  if (sym.ok) return { symbol: sym.symbol };
  const candidates = new Set<string>();
  for (const m of marketCodes()) {
    const n = normaliseSymbol(raw, m);
    if (n.ok && (await store.listSeries({ symbol: n.symbol })).length > 0) candidates.add(n.symbol);
  }
  if (candidates.size === 1) return { symbol: [...candidates][0]! };
  if (candidates.size > 1) return { error: `ambiguous symbol, use one of ${[...candidates].join(", ")}` };
  return { error: sym.reason };
}

export type DerivedDeps = {
  store: Store;
  metrics: TicksyncMetrics;
  maxPageSize: number;
  indicators?: IndicatorsConfig;
  /** The config's own universes, for `[indicators.universes]`. */
  universes?: Record<string, string[]>;
  now?: () => number;
};

/**
 * Adds GET /api/indicators and GET /api/gaps to the app; returns `updateGapMetric`, which
 * /metrics calls on a scrape to set ticksync_gap_bars{market,interval}.
 */
export function registerDerivedRoutes(app: Hono, deps: DerivedDeps) {
  const { store, metrics, maxPageSize } = deps;
  const now = deps.now ?? Date.now;
  const gaps = createGapScanner(store, { now });

  // Per-symbol indicator sets from the config: the first universe (in config order) listing it.
  const universeSets: { symbols: Set<string>; specs: IndicatorSpec[] }[] = [];
  for (const [name, list] of Object.entries(deps.indicators?.universes ?? {})) {
    const u = resolveUniverse(name, deps.universes ?? {});
    if (!u.ok) throw new Error(`indicators.universes.${name}: ${u.reason}`);
    universeSets.push({ symbols: new Set(u.universe.symbols), specs: list.map((s) => parseIndicator(s) as IndicatorSpec) });
  }
  const defaultSpecs = (deps.indicators?.default ?? ["sma:20", "rsi:14"]).map((s) => parseIndicator(s) as IndicatorSpec);
  const specsFor = (symbol: string) => universeSets.find((u) => u.symbols.has(symbol))?.specs ?? defaultSpecs;

  const IndicatorsQuery = v.strictObject({
    symbol: v.pipe(v.string("symbol is required"), v.nonEmpty("symbol is required")),
    interval: v.optional(IntervalSchema, "1d"),
    source: v.optional(v.pipe(v.string(), v.nonEmpty())),
    from: v.optional(Instant),
    to: v.optional(Instant),
    limit: Limit(maxPageSize),
    cursor: v.optional(BarCursorParam),
    set: v.optional(IndicatorSet),
  });

  app.get("/api/indicators", async (c) => {
    const q = v.safeParse(IndicatorsQuery, c.req.query());
    if (!q.success) return badRequest(c, q.issues);
    const { interval, from, to, cursor } = q.output;
    let limit = q.output.limit ?? Math.min(1000, maxPageSize);
    if (from !== undefined && to !== undefined && from > to) return invalid(c, [{ field: "from", message: "from must not be after to" }]);
    const resolved = await resolveSymbol(store, q.output.symbol);
    if ("error" in resolved) return invalid(c, [{ field: "symbol", message: resolved.error }]);
    const symbol = resolved.symbol;
    const market = marketOf(symbol);
    const specs = q.output.set ?? specsFor(symbol);
    // Rows × indicators bounds the values computed and sent; a default page shrinks to fit.
    const cells = limit * specs.length;
    if (cells > MAX_INDICATOR_CELLS) {
      if (q.output.limit !== undefined) return invalid(c, [{ field: "limit", message: `limit × indicators: at most ${MAX_INDICATOR_CELLS} values per page (got ${limit} × ${specs.length} = ${cells})` }]);
      limit = Math.floor(MAX_INDICATOR_CELLS / specs.length);
    }
    const periodsPerYear = PERIODS_PER_YEAR[interval];
    const ann = specs.find((s) => s.kind === "vol" && s.annualised);
    if (ann && periodsPerYear === undefined) return invalid(c, [{ field: "set", message: `${ann.key}: annualised volatility needs 1d, 1w or 1mo bars` }]);

    // One series: indicators over bars of two sources interleaved would mean nothing.
    const base = await rollupBase(store, symbol, interval, q.output.source);
    const readInterval = base ?? interval;
    const series = (await store.listSeries({ symbol })).filter((s) => s.interval === readInterval && s.bars > 0 && (!q.output.source || s.source === q.output.source));
    const sources = [...new Set(series.map((s) => s.source))];
    if (sources.length > 1) return invalid(c, [{ field: "source", message: `${symbol} has ${readInterval} bars from several sources, choose one: ${sources.join(", ")}` }]);
    const source = sources[0];
    const head = { symbol, interval, source: source ?? null, set: specs.map((s) => s.key), ...(base ? { rolledUpFrom: base } : {}) };
    if (source === undefined) return c.json({ ...head, data: [], next: null });
    if (base !== null && market === undefined) return c.json({ ...head, data: [], next: null });

    // Bars of the series in [fromTs, toTs], at most `max`, stored or rolled up.
    const read = async (fromTs: number | undefined, toTs: number | undefined, max: number): Promise<Bar[]> => {
      const out: Bar[] = [];
      let after: BarCursor | undefined;
      while (out.length < max) {
        const n = Math.min(CHUNK, max - out.length);
        let page: Bar[];
        let next: BarCursor | null;
        if (base !== null) {
          const r = await readRolledUp(store, { symbol, market: market!, base, interval, source, from: fromTs, to: toTs, limit: n, after });
          page = r.bars;
          next = r.next;
        } else {
          page = await store.queryBars({ symbol, interval, source, from: fromTs, to: toTs, limit: n, after });
          const last = page[page.length - 1];
          next = page.length === n && last ? { ts: last.ts, source: last.source } : null;
        }
        out.push(...page);
        if (next === null) break;
        after = next;
      }
      return out;
    };

    const start = cursor ? Math.max(cursor.ts + 1, from ?? -Infinity) : from;
    const page = await read(start, to, limit + 1);
    const rows = page.slice(0, limit);
    // Warm-up: the bars before the page that make its first values right (see warmupBars).
    const barsPerDay = isIntraday(interval) ? DAY_MS / INTERVAL_MS[interval] : 1;
    const need = rows.length > 0 ? warmupBars(specs, barsPerDay) : 0;
    let warm: Bar[] = [];
    if (need > 0) {
      const firstTs = Math.min(...series.map((s) => s.firstTs));
      const t0 = rows[0]!.ts;
      // A first guess of the span that holds `need` bars (sessions are a fraction of the clock),
      // doubled until it does or reaches back to the series' first bar.
      let span = need * INTERVAL_MS[interval] * (isIntraday(interval) ? 6 : interval === "1d" ? 1.6 : 1.2) + INTERVAL_MS[interval];
      for (;;) {
        const lo = t0 - span;
        warm = await read(lo, t0 - 1, Number.MAX_SAFE_INTEGER);
        if (warm.length >= need || lo <= firstTs - reach(interval)) break;
        span *= 2;
      }
      warm = warm.slice(Math.max(0, warm.length - need));
    }
    const all = [...warm, ...rows];
    const sessionOf = isIntraday(interval) && market ? (b: Bar) => localDate(market, b.ts) : undefined;
    const cols = computeIndicators(all, specs, { periodsPerYear, sessionOf });
    const data = rows.map((b, i) => {
      const row: Record<string, unknown> = { ts: new Date(b.ts).toISOString(), close: b.close };
      for (const s of specs) row[s.key] = cols[s.key]![warm.length + i] ?? null;
      return row;
    });
    const last = rows[rows.length - 1];
    return c.json({ ...head, data, next: page.length > limit && last ? encodeBarCursor({ ts: last.ts, source: last.source }) : null });
  });

  const GapsQuery = v.strictObject({
    symbol: v.optional(v.pipe(v.string(), v.nonEmpty())),
    market: v.optional(MarketSchema),
    interval: v.optional(IntervalSchema, "1d"),
    source: v.optional(v.pipe(v.string(), v.nonEmpty())),
    limit: Limit(MAX_GAPS_PAGE),
  });

  const iso = (t: number) => new Date(t).toISOString();

  app.get("/api/gaps", async (c) => {
    const q = v.safeParse(GapsQuery, c.req.query());
    if (!q.success) return badRequest(c, q.issues);
    let symbol: string | undefined;
    if (q.output.symbol !== undefined) {
      const r = await resolveSymbol(store, q.output.symbol);
      if ("error" in r) return invalid(c, [{ field: "symbol", message: r.error }]);
      symbol = r.symbol;
    }
    const limit = q.output.limit ?? 1000;
    const found = await gaps.scan({ symbol, market: q.output.market, interval: q.output.interval, source: q.output.source });
    const runs = found.flatMap((g) => g.runs.map((r) => ({ source: g.source, symbol: g.symbol, market: g.market, interval: g.interval, ...r })));
    return c.json({
      interval: q.output.interval,
      series: found.map((g) => ({
        source: g.source,
        symbol: g.symbol,
        market: g.market,
        interval: g.interval,
        first: iso(g.firstTs),
        last: iso(g.lastTs),
        bars: g.bars,
        expected: g.expected,
        missingSessions: g.missingSessions,
        missingBars: g.missingBars,
      })),
      data: runs.slice(0, limit),
      count: runs.length,
      truncated: runs.length > limit,
    });
  });

  // Every (market, interval) the gauge has shown keeps a value: 0 once its gaps are gone.
  const shown = new Set<string>();
  async function updateGapMetric(): Promise<void> {
    let all: SeriesGaps[];
    try {
      all = await gaps.scanAll();
    } catch (e) {
      log.warn("gap scan failed", { error: (e as Error).message });
      return;
    }
    const sums = new Map<string, number>([...shown].map((k) => [k, 0]));
    for (const g of all) {
      const k = `${g.market}\u0000${g.interval}`;
      sums.set(k, (sums.get(k) ?? 0) + g.missingBars);
    }
    for (const [k, n] of sums) {
      const [market, interval] = k.split("\u0000") as [string, string];
      metrics.gapBars.set({ market, interval }, n);
      shown.add(k);
    }
  }

  return { updateGapMetric, gaps };
}
