// GET /api/indicators: technical indicators (src/domain/indicators.ts) over one series' bars,
// stored or rolled up, keyset-paged like /api/bars. Each page reads the bars before it that its
// first values need (warm-up), so a value does not depend on where a page starts.
import { Hono } from "hono";
import * as v from "valibot";
import { INTERVAL_MS, isoTs, type Interval } from "../../domain/bar.ts";
import type { Market } from "../../domain/calendar.ts";
import { allocColumns, computeIndicatorColumns, parseIndicator, PERIODS_PER_YEAR, warmupBars, type BarColumns, type IndicatorSpec } from "../../domain/indicators.ts";
import { isIntraday, localDate } from "../../domain/rollup.ts";
import { marketOf } from "../../domain/symbols.ts";
import type { BarField, Store } from "../../stores/types.ts";
import { resolveUniverse } from "../../universes/universes.ts";
import { CHUNK, reach, readRolledUp, rollupBase } from "../derived.ts";
import type { AppDeps } from "../deps.ts";
import { barPageEntries, encodeBarCursor, invalid, type BarCursor } from "../query.ts";
import { binaryBody, describe, NOT_MODIFIED, PAGE_HEADERS, query, schemaOf } from "../openapi.ts";
import { IndicatorPage, type IndicatorRow } from "../schemas/bars.ts";
import type { Body } from "../schemas/common.ts";
import { MAX_INDICATOR_CELLS, MAX_INDICATORS } from "../limits.ts";
import { resolveSymbol } from "../resolve-symbol.ts";
import { pageClosedAt, sendPage } from "../representation.ts";
import { indicatorsArrow } from "../../domain/arrow-bars.ts";

const DAY_MS = 86_400_000;

const IndicatorSet = v.pipe(
  v.string(),
  v.description(`indicators, comma-separated (at most ${MAX_INDICATORS}): sma:20, ema:12, rsi:14, macd, bb:20:2, vol:20, vwap…; default: the set configured for the symbol`),
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

const indicatorsQuery = (maxPageSize: number) =>
  v.strictObject({
    ...barPageEntries(maxPageSize),
    set: v.optional(IndicatorSet),
    /** json (the page object) or arrow (an Arrow IPC stream: ts, close, a column per indicator; `next` in X-Ticksync-Next). */
    format: v.optional(v.picklist(["json", "arrow"], "expected one of json, arrow"), "json"),
  });

/**
 * The indicator set of a symbol when a request names none: the first universe of
 * `[indicators.universes]` (in config order) listing it, else `[indicators] default`. Throws when
 * a configured universe does not resolve.
 */
function configuredSets(deps: Pick<AppDeps, "indicators" | "universes">): (symbol: string) => IndicatorSpec[] {
  const universeSets: { symbols: Set<string>; specs: IndicatorSpec[] }[] = [];
  for (const [name, list] of Object.entries(deps.indicators?.universes ?? {})) {
    const u = resolveUniverse(name, deps.universes ?? {});
    if (!u.ok) throw new Error(`indicators.universes.${name}: ${u.reason}`);
    universeSets.push({ symbols: new Set(u.universe.symbols), specs: list.map((s) => parseIndicator(s) as IndicatorSpec) });
  }
  const defaultSpecs = (deps.indicators?.default ?? ["sma:20", "rsi:14"]).map((s) => parseIndicator(s) as IndicatorSpec);
  return (symbol) => universeSets.find((u) => u.symbols.has(symbol))?.specs ?? defaultSpecs;
}

/** One series, as stored (`base` null) or rolled up from `base` bars. */
type Series = { symbol: string; market: Market | undefined; base: Interval | null; interval: Interval; source: string };

/** A bar of the series as the indicators read it: a Bar, or a store's narrow row (ts and close; high, low and volume for VWAP). */
type SeriesRow = { ts: number; close: number; high?: number; low?: number; volume?: number };

/** Rows of the series in [fromTs, toTs], at most `max`, stored (only the `fields` the set needs) or rolled up. */
async function readSeries(store: Store, s: Series, fields: readonly BarField[], fromTs: number | undefined, toTs: number | undefined, max: number): Promise<SeriesRow[]> {
  const { symbol, market, base, interval, source } = s;
  let out: SeriesRow[] | undefined;
  let after: BarCursor | undefined;
  for (;;) {
    const n = Math.min(CHUNK, max - (out?.length ?? 0));
    let page: SeriesRow[];
    let next: BarCursor | null;
    if (base !== null) {
      const r = await readRolledUp(store, { symbol, market: market!, base, interval, source, from: fromTs, to: toTs, limit: n, after, sources: 1 });
      page = r.bars;
      next = r.next;
    } else {
      const q = { symbol, interval, source, from: fromTs, to: toTs, limit: n, after };
      page = store.queryBarFields ? await store.queryBarFields(q, fields) : await store.queryBars(q);
      const last = page[page.length - 1];
      // One series: every row is of `source`.
      next = page.length === n && last ? { ts: last.ts, source } : null;
    }
    // The common read is one chunk: its rows are the answer, not copied.
    if (out === undefined) out = page;
    else for (const r of page) out.push(r);
    if (next === null || out.length >= max) return out;
    after = next;
  }
}

/**
 * Warm-up: the `need` rows before `t0` that make a page's first values right (see warmupBars), or
 * as many as there are back to the series' first bar (`firstTs`).
 */
async function warmUp(store: Store, s: Series, fields: readonly BarField[], t0: number, need: number, firstTs: number): Promise<SeriesRow[]> {
  const { interval } = s;
  // A first guess of the span that holds `need` bars (sessions are a fraction of the clock),
  // doubled until it does or reaches back to the series' first bar.
  let span = need * INTERVAL_MS[interval] * (isIntraday(interval) ? 6 : interval === "1d" ? 1.6 : 1.2) + INTERVAL_MS[interval];
  let warm: SeriesRow[];
  for (;;) {
    const lo = t0 - span;
    warm = await readSeries(store, s, fields, lo, t0 - 1, Number.MAX_SAFE_INTEGER);
    if (warm.length >= need || lo <= firstTs - reach(interval)) break;
    span *= 2;
  }
  return warm.slice(Math.max(0, warm.length - need));
}

/** The warm-up rows then the page's rows as columns, one pass (high, low and volume NaN where not read). */
function columnsOf(warm: readonly SeriesRow[], rows: readonly SeriesRow[]): BarColumns {
  const c = allocColumns(warm.length + rows.length);
  let i = 0;
  for (const part of [warm, rows])
    for (const r of part) {
      c.ts[i] = r.ts;
      c.close[i] = r.close;
      c.high[i] = r.high ?? NaN;
      c.low[i] = r.low ?? NaN;
      c.volume[i] = r.volume ?? NaN;
      i++;
    }
  return c;
}

/** The fields a set reads: every one the close; VWAP also high, low and volume. */
const fieldsFor = (specs: readonly IndicatorSpec[]): readonly BarField[] => (specs.some((s) => s.kind === "vwap") ? ["ts", "high", "low", "close", "volume"] : ["ts", "close"]);

export function indicatorRoutes(deps: Pick<AppDeps, "store" | "indicators" | "universes">, maxPageSize: number, cache: { now: () => number; privateCache: boolean }): Hono {
  const { store } = deps;
  const specsFor = configuredSets(deps);
  const IndicatorsQuery = indicatorsQuery(maxPageSize);
  const app = new Hono();
  const doc = describe({
    summary: "Technical indicators over one series' bars",
    description: "Keyset-paged like /api/bars. `set` lists indicators (sma:20,ema:12,rsi:14,macd,bb:20:2,vol:20,vwap…); without it, the set configured for the symbol ([indicators]). Each page reads the bars before it that its first values need.",
    tags: ["data"],
    responses: {
      200: {
        description: "the page: format=json the page object; arrow an Arrow IPC stream (ts, close, a column per indicator; `next` in X-Ticksync-Next)",
        headers: PAGE_HEADERS,
        content: { "application/json": schemaOf(IndicatorPage), "application/vnd.apache.arrow.stream": binaryBody("an Arrow IPC stream: ts, close, a column per indicator") },
      },
      304: NOT_MODIFIED,
    },
  });
  app.get("/", doc, query(IndicatorsQuery), async (c) => {
    const q = { output: c.req.valid("query") };
    const { interval, from, to, cursor, format } = q.output;
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
    const listed = await store.listSeries({ symbol });
    const base = await rollupBase(store, symbol, interval, q.output.source, listed);
    const readInterval = base ?? interval;
    const series = listed.filter((s) => s.interval === readInterval && s.bars > 0 && (!q.output.source || s.source === q.output.source));
    const sources = [...new Set(series.map((s) => s.source))];
    if (sources.length > 1) return invalid(c, [{ field: "source", message: `${symbol} has ${readInterval} bars from several sources, choose one: ${sources.join(", ")}` }]);
    const source = sources[0];
    const head = { symbol, interval, source: source ?? null, set: specs.map((s) => s.key), ...(base ? { rolledUpFrom: base } : {}) };
    const arrowMeta = () => ({ symbol, interval, source: source ?? "", set: head.set.join(",") });
    const empty = () => (format === "arrow" ? sendPage(c, indicatorsArrow([], head.set, {}, 0, arrowMeta()), "arrow", { closed: false, privateCache: cache.privateCache }) : c.json({ ...head, data: [], next: null } satisfies Body<typeof IndicatorPage>));
    if (source === undefined) return empty();
    if (base !== null && market === undefined) return empty();
    const one: Series = { symbol, market, base, interval, source };

    const start = cursor ? Math.max(cursor.ts + 1, from ?? -Infinity) : from;
    const fields = fieldsFor(specs);
    const page = await readSeries(store, one, fields, start, to, limit + 1);
    const n = Math.min(page.length, limit);
    const barsPerDay = isIntraday(interval) ? DAY_MS / INTERVAL_MS[interval] : 1;
    const firstTs = Math.min(...series.map((s) => s.firstTs));
    // A page of stored bars starting at the series' first bar has nothing before it to read.
    const need = n > 0 && !(base === null && page[0]!.ts <= firstTs) ? warmupBars(specs, barsPerDay) : 0;
    const warm = need > 0 ? await warmUp(store, one, fields, page[0]!.ts, need, firstTs) : [];
    const rows = page.length > n ? page.slice(0, n) : page;
    const colsIn = columnsOf(warm, rows);
    const sessionOf = isIntraday(interval) && market ? (i: number) => localDate(market, colsIn.ts[i]!) : undefined;
    const cols = computeIndicatorColumns(colsIn, specs, { periodsPerYear, sessionOf });
    const last = rows[n - 1];
    const next = page.length > limit && last ? encodeBarCursor({ ts: last.ts, source }) : null;
    // ETag, 304 and Cache-Control as /api/bars (src/http/representation.ts): the values follow from the page's bars.
    const closed = n > 0 && pageClosedAt(symbol, interval, last!.ts, next !== null, to, cache.now());
    if (format === "arrow") {
      if (next) c.header("X-Ticksync-Next", next);
      return sendPage(c, indicatorsArrow(rows, head.set, cols, warm.length, arrowMeta()), "arrow", { closed, privateCache: cache.privateCache });
    }
    const w = warm.length;
    const columns = specs.map((s) => cols[s.key]!);
    const data: Body<typeof IndicatorRow>[] = new Array(n);
    for (let i = 0; i < n; i++) {
      // A cast: TypeScript cannot write "ts a string, every other key a number" (the schema can).
      const row = { ts: isoTs(rows[i]!.ts), close: rows[i]!.close } as Body<typeof IndicatorRow>;
      for (let k = 0; k < specs.length; k++) row[specs[k]!.key] = columns[k]![w + i] ?? null;
      data[i] = row;
    }
    return sendPage(c, JSON.stringify({ ...head, data, next } satisfies Body<typeof IndicatorPage>), "json", { closed, privateCache: cache.privateCache });
  });
  return app;
}
