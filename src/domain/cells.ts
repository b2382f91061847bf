// Validation straight from the cells of delimited text (CSV), for bulk loads: a row whose cells
// are plainly good becomes a bar in columns without any per-row object or string — numbers are
// read from the characters, a symbol or date equal to the row above is not read again. Any row
// that is not plainly good goes the ordinary way (its RawRow, validateRow), so the result —
// bars, rejections with their reasons, gap warnings, the report — is exactly what
// validateBatch gives for the same rows. test/cells.test.ts holds the two side by side.
import type { Bar, RawRow } from "./bar.ts";
import { INTERVALS } from "./bar.ts";
import { COLUMN_WIDTH, type BarColumns, type SeriesKey } from "./columns.ts";
import {
  CACHE_LIMIT,
  cachedSymbol,
  cachedTs,
  findDailyGapsIn,
  newValidateCache,
  reject,
  scoreBatch,
  validateRow,
  type GapWarning,
  type QualityReport,
  type Rejection,
  type Rule,
  type ValidateCache,
  type ValidateContext,
} from "./quality.ts";
import { floorUtcDay } from "./time.ts";

/** Fields a row's cells may hold, in the order of CellRows.spans. */
export const CELL_FIELDS = ["symbol", "ts", "date", "time", "open", "high", "low", "close", "volume", "adjClose", "turnover", "trades"] as const;
export type CellField = (typeof CELL_FIELDS)[number];
const F_TS = 1;
const F_DATE = 2;
const F_TIME = 3;
const F_OPEN = 4;
const F_VOLUME = 8;
const F_ADJ = 9;
const F_TURNOVER = 10;
const F_TRADES = 11;
export const CELL_SPAN = CELL_FIELDS.length * 2;

/** No column is mapped to the field. */
export const UNMAPPED = -1;
/** A column is mapped, but the row is too short to have it. */
export const MISSING = -2;

/**
 * A batch of text rows as a source cut them: where each field's cell lies in `text`, and how to
 * make the row's RawRow when it is needed (a rejected or not plainly good row). Valid until the
 * source is asked for its next batch (it reuses the arrays).
 */
export type CellRows = {
  n: number;
  text: string;
  /** n × CELL_SPAN: start and end of each field's cell in `text`; start UNMAPPED or MISSING where there is none. */
  spans: Int32Array;
  /** 1 where `spans` hold the row's cells; 0 where only row(i) can read it (quoted cells). */
  plain: Uint8Array;
  /** The symbol of every row when no column holds one (a file's name, the config). */
  symbol?: string;
  /** A decimal comma: number cells may have "," instead of "." (the source's setting). */
  decimalComma: boolean;
  /** The source's rule for a row's ts text from its date and time cells. */
  composeTs(date: string | undefined, time: string | undefined): string | undefined;
  /** Row i as the source's read() yields it. */
  row(i: number): RawRow;
  /** Row i's locator (row(i).locator, without making the row). */
  locator(i: number): string;
};

/** Arrays a batch's columns may be written into (a finished batch's, given back): longer is fine. */
export type ColumnBuffers = { f64: Float64Array; row: Uint32Array };

export type ColumnBatch = { columns: BarColumns; rejections: Rejection[]; warnings: GapWarning[]; report: QualityReport };

const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);

/**
 * The number in text[a, b) when it is plainly one — digits with at most one decimal point and
 * at most 15 digits (the form prices and volumes come in) — else NaN. Equal to Number() of the
 * cell: at most 15 digits make an integer m below 2^53, exact as a double, and m / 10^k (k ≤ 22,
 * also exact) is then the correctly rounded value of the decimal, which is what Number() gives.
 */
export function plainNumber(text: string, a: number, b: number, decimalComma: boolean): number {
  let m = 0;
  let digits = 0;
  let frac = -1;
  for (let i = a; i < b; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      m = m * 10 + (c - 48);
      digits++;
      if (frac >= 0) frac++;
    } else if ((c === 46 || (decimalComma && c === 44)) && frac < 0) frac = 0;
    else return NaN;
  }
  if (digits === 0 || digits > 15 || frac > 22) return NaN;
  return frac > 0 ? m / POW10[frac]! : m;
}

/** Digits of text[a, b) as a number when the cell is exactly `len` ASCII digits, else -1. */
function digitsOf(text: string, a: number, b: number, len: number): number {
  if (b - a !== len) return -1;
  let x = 0;
  for (let i = a; i < b; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    x = x * 10 + (c - 48);
  }
  return x;
}

/** True when the cell is not empty and neither starts nor ends with white space (no trimming to do). */
const bare = (text: string, a: number, b: number) => b > a && text.charCodeAt(a) > 32 && text.charCodeAt(b - 1) > 32;

/**
 * One batch's validation in progress: its series, the columns accepted bars go into, and the
 * rejections and rule counts so far. The per-row steps below take it as their first argument.
 */
type CellsRun = {
  readonly rows: CellRows;
  readonly ctx: ValidateContext;
  readonly cache: ValidateCache;
  readonly text: string;
  readonly spans: Int32Array;
  readonly series: SeriesKey[];
  readonly seriesOf: Map<string, number>;
  // Per series: its newest accepted ts so far and whether its bars rose until then; once they do
  // not, a map of its keys to the row that had them first (made from the bars accepted before).
  readonly newest: number[];
  readonly rising: boolean[];
  readonly byTs: (Map<number, number> | null)[];
  /** Series in the order of their first accepted bar (the order validateBatch sees them in). */
  readonly order: number[];
  readonly rowSeries: Uint32Array;
  /** The cell row of each accepted bar. */
  readonly fromRow: Int32Array;
  readonly f64: Float64Array;
  /** Bars accepted so far. */
  out: number;
  readonly rejections: Rejection[];
  readonly rules: Partial<Record<Rule, number>>;
};

function newCellsRun(rows: CellRows, ctx: ValidateContext, reuse: ColumnBuffers | undefined): CellsRun {
  const n = rows.n;
  return {
    rows,
    ctx,
    cache: ctx.cache ?? newValidateCache(),
    text: rows.text,
    spans: rows.spans,
    series: [],
    seriesOf: new Map(),
    newest: [],
    rising: [],
    byTs: [],
    order: [],
    rowSeries: reuse && reuse.row.length >= n ? reuse.row : new Uint32Array(n),
    fromRow: new Int32Array(n),
    f64: reuse && reuse.f64.length >= n * COLUMN_WIDTH ? reuse.f64 : new Float64Array(n * COLUMN_WIDTH),
    out: 0,
    rejections: [],
    rules: {},
  };
}

const count = (r: CellsRun, rule: Rule) => (r.rules[rule] = (r.rules[rule] ?? 0) + 1);

function seriesIndex(r: CellsRun, symbol: string): number {
  let s = r.seriesOf.get(symbol);
  if (s === undefined) {
    r.seriesOf.set(symbol, (s = r.series.length));
    r.series.push({ source: r.ctx.source, symbol, interval: r.ctx.interval });
    r.newest.push(-Infinity);
    r.rising.push(true);
    r.byTs.push(null);
  }
  return s;
}

/** Accept bar values at row i (already checked), or find it a duplicate. */
function accept(r: CellsRun, i: number, s: number, ts: number, open: number, high: number, low: number, close: number, volume: number, adj: number, turnover: number, trades: number): void {
  const { newest, rising, rowSeries, f64 } = r;
  const out = r.out;
  if (newest[s] === -Infinity) r.order.push(s);
  else if (ts <= newest[s]! && rising[s]) {
    // Not after this series' newest bar of the batch: from now on its keys are looked up.
    rising[s] = false;
    const m = new Map<number, number>();
    for (let j = 0; j < out; j++) if (rowSeries[j] === s) m.set(f64[j * COLUMN_WIDTH]!, r.fromRow[j]!);
    r.byTs[s] = m;
  }
  const m = r.byTs[s];
  if (m) {
    const first = m.get(ts);
    if (first !== undefined) {
      const symbol = r.series[s]!.symbol;
      r.rejections.push(reject(r.rows.row(i), "duplicate", `duplicate of ${r.rows.locator(first)} for ${symbol} at ${new Date(ts).toISOString()}`, { symbol, ts }));
      count(r, "duplicate");
      return;
    }
    m.set(ts, i);
  }
  if (ts > newest[s]!) newest[s] = ts;
  rowSeries[out] = s;
  r.fromRow[out] = i;
  const o = out * COLUMN_WIDTH;
  f64[o] = ts;
  f64[o + 1] = open;
  f64[o + 2] = high;
  f64[o + 3] = low;
  f64[o + 4] = close;
  f64[o + 5] = volume;
  f64[o + 6] = adj;
  f64[o + 7] = turnover;
  f64[o + 8] = trades;
  r.out = out + 1;
}

/** The ordinary way: the row's RawRow through validateRow. */
function slow(r: CellsRun, i: number): void {
  const v = validateRow(r.rows.row(i), r.ctx, r.cache);
  if ("rule" in v) {
    r.rejections.push(v);
    count(r, v.rule);
    return;
  }
  const bar = v as Bar;
  accept(r, i, seriesIndex(r, bar.symbol), bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.adjClose ?? NaN, bar.turnover ?? NaN, bar.trades ?? NaN);
}

/** ts of the row at span offset p, or null when it is not plainly good. */
function tsAt(r: CellsRun, p: number): number | null {
  const { spans, text, cache, ctx } = r;
  const tA = spans[p + 2 * F_TS]!;
  if (tA !== UNMAPPED) {
    const tB = spans[p + 2 * F_TS + 1]!;
    if (tA < 0 || !bare(text, tA, tB)) return null;
    return cachedTs(cache, text.slice(tA, tB), ctx);
  }
  const dA = spans[p + 2 * F_DATE]!;
  const dB = spans[p + 2 * F_DATE + 1]!;
  if (dA < 0 || !bare(text, dA, dB)) return null;
  const hA = spans[p + 2 * F_TIME]!;
  const hB = spans[p + 2 * F_TIME + 1]!;
  // A date of 8 digits with no time, an empty one or one of 6 digits: the digits are the key.
  const date = digitsOf(text, dA, dB, 8);
  const time = hA < 0 || hA === hB ? 0 : digitsOf(text, hA, hB, 6);
  if (date >= 0 && time >= 0) {
    const key = date * 1e6 + time;
    let t = cache.tsKey.get(key);
    if (t === undefined) {
      if (cache.tsKey.size >= CACHE_LIMIT) cache.tsKey.clear();
      const ts = r.rows.composeTs(text.slice(dA, dB), hA < 0 ? undefined : text.slice(hA, hB));
      cache.tsKey.set(key, (t = ts === undefined ? null : cachedTs(cache, ts, ctx)));
    }
    return t;
  }
  if (hA >= 0 && hA < hB && !bare(text, hA, hB)) return null;
  const ts = r.rows.composeTs(text.slice(dA, dB), hA < 0 ? undefined : text.slice(hA, hB));
  return ts === undefined ? null : cachedTs(cache, ts, ctx);
}

/** Every row of the batch: plainly good ones read from their cells, the others the ordinary way. */
function validateRows(r: CellsRun): void {
  const { rows, ctx, cache, text, spans } = r;
  const { n, plain } = rows;
  const interval = ctx.interval;
  const daily = interval === "1d" || interval === "1w" || interval === "1mo";
  // What acceptRow checks of the context, once: when it fails, every row takes the ordinary way.
  const fastOk = typeof ctx.source === "string" && ctx.source !== "" && INTERVALS.includes(interval);
  const latest = (ctx.now ?? Date.now()) + (ctx.futureToleranceMs ?? 60_000);
  const comma = rows.decimalComma;
  // The symbol of the row above (its cell's place in the text, and what it normalised to).
  let symA = -1;
  let symB = -1;
  let symIdx = -1;
  const fileSymbol = rows.symbol;
  let fileIdx = -1;
  if (fileSymbol !== undefined && fastOk) {
    const sym = cachedSymbol(cache, fileSymbol, ctx.market);
    if (sym.ok) fileIdx = seriesIndex(r, sym.symbol);
  }

  for (let i = 0; i < n; i++) {
    if (!fastOk || plain[i] === 0) {
      slow(r, i);
      continue;
    }
    const p = i * CELL_SPAN;
    // Symbol: the file's, the row above's, or normalised (memoised) from the cell.
    let s = fileIdx;
    if (fileSymbol === undefined) {
      const a = spans[p]!;
      const b = spans[p + 1]!;
      if (a < 0 || !bare(text, a, b)) {
        slow(r, i);
        continue;
      }
      if (symIdx >= 0 && b - a === symB - symA) {
        let k = 0;
        while (k < b - a && text.charCodeAt(a + k) === text.charCodeAt(symA + k)) k++;
        if (k === b - a) s = symIdx;
      }
      if (s < 0) {
        const sym = cachedSymbol(cache, text.slice(a, b), ctx.market);
        if (!sym.ok) {
          symIdx = -1;
          slow(r, i);
          continue;
        }
        s = seriesIndex(r, sym.symbol);
      }
      symA = a;
      symB = b;
      symIdx = s;
    } else if (s < 0) {
      slow(r, i);
      continue;
    }
    const t = tsAt(r, p);
    if (t === null) {
      slow(r, i);
      continue;
    }
    const ts = daily ? floorUtcDay(t) : t;
    if (!Number.isInteger(ts) || ts > latest) {
      slow(r, i);
      continue;
    }
    const o = p + 2 * F_OPEN;
    // A missing (short row) price cell has start MISSING: plainNumber of an empty range is NaN.
    const open = plainNumber(text, spans[o]!, spans[o + 1]!, comma);
    const high = plainNumber(text, spans[o + 2]!, spans[o + 3]!, comma);
    const low = plainNumber(text, spans[o + 4]!, spans[o + 5]!, comma);
    const close = plainNumber(text, spans[o + 6]!, spans[o + 7]!, comma);
    if (!(open > 0 && high > 0 && low > 0 && close > 0)) {
      slow(r, i);
      continue;
    }
    if (!(high >= open && high >= close && high >= low && low <= open && low <= close)) {
      slow(r, i);
      continue;
    }
    // Volume: no column is 0, as in acceptRow; a missing cell (a short row, which the source
    // leaves to row(i) anyway) or an empty one is not plain.
    const vA = spans[p + 2 * F_VOLUME]!;
    const volume = vA === UNMAPPED ? 0 : vA < 0 ? NaN : plainNumber(text, vA, spans[p + 2 * F_VOLUME + 1]!, comma);
    if (!(volume >= 0)) {
      slow(r, i);
      continue;
    }
    // Extras: no cell or an empty one is null (NaN here); otherwise plain and in range.
    const xA = spans[p + 2 * F_ADJ]!;
    const xB = spans[p + 2 * F_ADJ + 1]!;
    const adj = xA < 0 || xA === xB ? NaN : plainNumber(text, xA, xB, comma);
    const uA = spans[p + 2 * F_TURNOVER]!;
    const uB = spans[p + 2 * F_TURNOVER + 1]!;
    const turnover = uA < 0 || uA === uB ? NaN : plainNumber(text, uA, uB, comma);
    const rA = spans[p + 2 * F_TRADES]!;
    const rB = spans[p + 2 * F_TRADES + 1]!;
    const trades = rA < 0 || rA === rB ? NaN : plainNumber(text, rA, rB, comma);
    if ((xA >= 0 && xA < xB && !(adj > 0)) || (uA >= 0 && uA < uB && !(turnover >= 0)) || (rA >= 0 && rA < rB && !(trades >= 0 && Number.isInteger(trades)))) {
      slow(r, i);
      continue;
    }
    accept(r, i, s, ts, open, high, low, close, volume, adj, turnover, trades);
  }
}

/** Gaps against the calendar, per symbol over its accepted bars (daily bars only). */
function gapWarnings(r: CellsRun): GapWarning[] {
  if (r.ctx.interval !== "1d") return [];
  const { order, series, rowSeries, f64 } = r;
  const lists = new Map<number, number[]>(order.map((s) => [s, []]));
  for (let j = 0; j < r.out; j++) lists.get(rowSeries[j]!)!.push(f64[j * COLUMN_WIDTH]!);
  const bySymbol = new Map<string, number[]>(order.map((s) => [series[s]!.symbol, lists.get(s)!]));
  const risen = new Set(order.filter((s) => r.rising[s]).map((s) => series[s]!.symbol));
  return findDailyGapsIn(bySymbol, r.ctx.lastTs ?? new Map(), (symbol) => risen.has(symbol));
}

/** The columns' series: those with bars, in the order of their first bar. */
function columnsOf(r: CellsRun): BarColumns {
  const { order, series, rowSeries, f64, out } = r;
  if (order.length === series.length && order.every((s, k) => s === k)) return { n: out, series, row: rowSeries, f64 };
  const renumber = new Uint32Array(series.length);
  order.forEach((s, k) => (renumber[s] = k));
  for (let i = 0; i < out; i++) rowSeries[i] = renumber[rowSeries[i]!]!;
  return { n: out, series: order.map((s) => series[s]!), row: rowSeries, f64 };
}

/**
 * Validate a batch of cell rows into columns. `ctx` as for validateBatch (lastTs and cache are
 * carried across batches the same way).
 */
export function validateCells(rows: CellRows, ctx: ValidateContext, reuse?: ColumnBuffers): ColumnBatch {
  const r = newCellsRun(rows, ctx, reuse);
  validateRows(r);
  const warnings = gapWarnings(r);
  const gapSessions = warnings.reduce((k, w) => k + w.missing, 0);
  if (gapSessions > 0) r.rules.gap = (r.rules.gap ?? 0) + gapSessions;
  return { columns: columnsOf(r), rejections: r.rejections, warnings, report: scoreBatch(rows.n, r.out, gapSessions, r.rules) };
}
