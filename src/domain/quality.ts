// Quality rules: turn raw rows into bars or into rejections with a rule name and a reason a
// person can read. Each batch gets a score 0..1 and the rule counts behind it.
import * as v from "valibot";
import { BarSchema, checkExtras, INTERVALS, type Bar, type Interval, type RawRow } from "./bar.ts";
import { calendarCoverage, tradesOnWeekends, tradingDaysBetween, type Market } from "./calendar.ts";
import { normaliseSymbol, type SymbolMarket } from "./symbols.ts";
import { parseTimestamp, utcDate, floorUtcDay, type TsFormat } from "./time.ts";

/** Rule names as they appear in quarantine records, metrics and the API. */
export const RULES = {
  required: "a required field is missing or empty",
  number: "a numeric field is not a number",
  symbol: "the symbol cannot be normalised",
  timestamp: "the timestamp is not a valid instant",
  future: "the timestamp is in the future",
  price: "a price is not a finite positive number",
  volume: "volume is negative or not finite",
  high: "high is below open, close or low",
  low: "low is above open, close or high",
  duplicate: "the same (symbol, interval, ts) appears twice in the batch",
  gap: "trading sessions are missing between two bars (warning)",
  sink: "a sink (Pocketbase) refused the record; its error is in the reason",
} as const;
export type Rule = keyof typeof RULES;

export type Rejection = { locator: string; rule: Rule; reason: string; raw: Record<string, unknown>; symbol?: string; ts?: number };
export type GapWarning = { rule: "gap"; symbol: string; interval: Interval; after: string; before: string; missing: number };

export type QualityReport = {
  read: number;
  accepted: number;
  rejected: number;
  /** Missing trading sessions found by the gap rule (warnings, not rejections). */
  gapSessions: number;
  score: number;
  rules: Partial<Record<Rule, number>>;
};

export type ValidatedBatch = { bars: Bar[]; rejections: Rejection[]; warnings: GapWarning[]; report: QualityReport };

export type ValidateContext = {
  source: string;
  interval: Interval;
  /** Market for bare tickers. */
  market?: SymbolMarket;
  tsFormat?: TsFormat;
  timeZone?: string;
  /** Clock, injectable so tests can pin "now". */
  now?: number;
  /** Allowed clock skew before a bar counts as from the future. */
  futureToleranceMs?: number;
  /** Last bar ts per symbol seen before this batch, carried across batches by the caller for gap checks. */
  lastTs?: Map<string, number>;
  /** Memo carried across batches by the caller (see ValidateCache). */
  cache?: ValidateCache;
};

const PRICE_FIELDS = new Set(["open", "high", "low", "close", "adjClose"]);

function isEmpty(x: unknown): boolean {
  if (x === undefined || x === null || x === "") return true;
  if (typeof x !== "string") return false;
  const c0 = x.charCodeAt(0);
  const cn = x.charCodeAt(x.length - 1);
  // Only a cell that starts or ends with white space can be all white space.
  return (c0 <= 32 || cn <= 32) && x.trim() === "";
}

function toNumber(x: unknown): number {
  if (typeof x === "number") return x;
  if (typeof x === "bigint") return Number(x);
  if (typeof x === "string") {
    // Number("") is 0 and Number("0x10") is 16: neither is a price.
    if (x === "" || ((x.includes("x") || x.includes("X")) && /^\s*[+-]?0x/i.test(x))) return NaN;
    const n = Number(x);
    return n === 0 && x.trim() === "" ? NaN : n;
  }
  return NaN;
}

/**
 * Per-run memo of the pure, repetitive parts of validation: a file has few distinct symbols and
 * (across symbols) few distinct dates. Bounded, so a long run does not grow it without end.
 */
export type ValidateCache = {
  symbols: Map<string, ReturnType<typeof normaliseSymbol>>;
  ts: Map<string, number | null>;
  /** ts by a number made of a row's date and time digits (see src/domain/cells.ts). */
  tsKey: Map<number, number | null>;
};
export const CACHE_LIMIT = 100_000;
export const newValidateCache = (): ValidateCache => ({ symbols: new Map(), ts: new Map(), tsKey: new Map() });

export function cachedSymbol(cache: ValidateCache, raw: string, market: SymbolMarket | undefined) {
  let r = cache.symbols.get(raw);
  if (r === undefined) {
    if (cache.symbols.size >= CACHE_LIMIT) cache.symbols.clear();
    cache.symbols.set(raw, (r = normaliseSymbol(raw, market)));
  }
  return r;
}

export function cachedTs(cache: ValidateCache, raw: unknown, ctx: ValidateContext): number | null {
  if (typeof raw !== "string") return parseTimestamp(raw, ctx.tsFormat, ctx.timeZone);
  let t = cache.ts.get(raw);
  if (t === undefined) {
    if (cache.ts.size >= CACHE_LIMIT) cache.ts.clear();
    cache.ts.set(raw, (t = parseTimestamp(raw, ctx.tsFormat, ctx.timeZone)));
  }
  return t;
}

export function reject(row: RawRow, rule: Rule, reason: string, extra?: { symbol?: string; ts?: number }): Rejection {
  return { locator: row.locator, rule, reason, raw: storable(row.fields), ...extra };
}

/** The fields as JSON can hold them (stores keep a rejection's raw row as JSON): a bigint as its digits. */
function storable(fields: Record<string, unknown>): Record<string, unknown> {
  for (const k in fields) if (typeof fields[k] === "bigint") return Object.fromEntries(Object.entries(fields).map(([key, x]) => [key, typeof x === "bigint" ? x.toString() : x]));
  return fields;
}

const show = (x: unknown) => (typeof x === "string" ? JSON.stringify(x) : String(x));
/** A value for a reason: JSON where it can be (a bigint, which JSON.stringify refuses, as its digits). */
function json(x: unknown): string {
  if (typeof x === "bigint") return x.toString();
  try {
    return JSON.stringify(x, (_, y) => (typeof y === "bigint" ? y.toString() : y)) ?? String(x);
  } catch {
    return String(x);
  }
}

/** Validate one row; returns the bar or the first rule it breaks. */
export function validateRow(row: RawRow, ctx: ValidateContext, cache: ValidateCache = newValidateCache()): Bar | Rejection {
  return acceptRow(row, ctx, cache) ?? checkRow(row, ctx, cache);
}

/**
 * A field as a number the way checkRow reads it (toNumber): text and numbers only, anything else
 * is NaN and left to checkRow. Text that starts with 1-9 is neither empty, blank nor hex, so
 * toNumber would return Number(x): that is taken without its checks.
 */
function numberOf(x: unknown): number {
  if (typeof x === "number") return x;
  if (typeof x !== "string") return NaN;
  const c0 = x.charCodeAt(0);
  return c0 >= 49 && c0 <= 57 ? Number(x) : toNumber(x);
}

/**
 * The fast path for rows that break no rule: the bar checkRow (and with it BarSchema) would
 * return for this row, or null when the row is not plainly good and must go through checkRow.
 * It reads the fields with checkRow's own helpers and caches and accepts only when every check
 * checkRow makes, and every check of BarSchema, passes:
 * - symbol and ts are text that normalise/parse (an empty or blank one does not);
 * - open, high, low, close are numbers > 0 and < Infinity (so not empty, not NaN, finite), volume
 *   absent or a number in [0, Infinity), adjClose/turnover/trades empty or in their schema's range;
 * - source is non-empty text and interval one of INTERVALS; ts is whole milliseconds;
 * - high is the largest and low the smallest of open, high, low, close;
 * - the source did not mark the row malformed (a CSV row with too few or too many cells).
 * Its bar has BarSchema's output shape: every key of the schema, in the schema's order.
 * test/quality-fast.test.ts checks it against checkRow and v.safeParse(BarSchema) row by row.
 */
export function acceptRow(row: RawRow, ctx: ValidateContext, cache: ValidateCache): Bar | null {
  const f = row.fields;
  if (f.malformed !== undefined || f.extras !== undefined) return null;
  const source = ctx.source;
  const interval = ctx.interval;
  if (typeof source !== "string" || source === "" || !INTERVALS.includes(interval)) return null;
  const rawSymbol = f.symbol;
  const rawTs = f.ts;
  if (typeof rawSymbol !== "string" || typeof rawTs !== "string") return null;
  const sym = cachedSymbol(cache, rawSymbol, ctx.market);
  if (!sym.ok) return null;
  const ts = cachedTs(cache, rawTs, ctx);
  if (ts === null) return null;
  const barTs = interval === "1d" || interval === "1w" || interval === "1mo" ? floorUtcDay(ts) : ts;
  if (!Number.isInteger(barTs) || barTs > (ctx.now ?? Date.now()) + (ctx.futureToleranceMs ?? 60_000)) return null;
  const open = numberOf(f.open);
  const high = numberOf(f.high);
  const low = numberOf(f.low);
  const close = numberOf(f.close);
  if (!(open > 0 && open < Infinity && high > 0 && high < Infinity && low > 0 && low < Infinity && close > 0 && close < Infinity)) return null;
  if (!(high >= open && high >= close && high >= low && low <= open && low <= close)) return null;
  const rawVolume = f.volume;
  const volume = rawVolume === undefined ? 0 : numberOf(rawVolume);
  if (!(volume >= 0 && volume < Infinity)) return null;
  let adjClose: number | null = null;
  let turnover: number | null = null;
  let trades: number | null = null;
  if (!isEmpty(f.adjClose) && !((adjClose = numberOf(f.adjClose)) > 0 && adjClose < Infinity)) return null;
  if (!isEmpty(f.turnover) && !((turnover = numberOf(f.turnover)) >= 0 && turnover < Infinity)) return null;
  if (!isEmpty(f.trades) && !((trades = numberOf(f.trades)) >= 0 && Number.isInteger(trades))) return null;
  return { source, symbol: sym.symbol, interval, ts: barTs, open, high, low, close, volume, adjClose, turnover, trades };
}

/** The rules one by one, in order: the bar, or the first rule the row breaks with its reason. */
export function checkRow(row: RawRow, ctx: ValidateContext, cache: ValidateCache = newValidateCache()): Bar | Rejection {
  const f = row.fields;
  // A source's word that the row's cells do not line up (a CSV row short of or past its header).
  if (f.malformed !== undefined) return reject(row, "required", String(f.malformed));
  if (isEmpty(f.symbol)) return reject(row, "required", "symbol is missing");
  if (isEmpty(f.ts)) return reject(row, "required", "ts is missing");
  if (isEmpty(f.open)) return reject(row, "required", "open is missing");
  if (isEmpty(f.high)) return reject(row, "required", "high is missing");
  if (isEmpty(f.low)) return reject(row, "required", "low is missing");
  if (isEmpty(f.close)) return reject(row, "required", "close is missing");
  const sym = cachedSymbol(cache, String(f.symbol), ctx.market);
  if (!sym.ok) return reject(row, "symbol", sym.reason);
  const ts = cachedTs(cache, f.ts, ctx);
  if (ts === null) return reject(row, "timestamp", `ts ${json(f.ts)} is not a valid timestamp`, { symbol: sym.symbol });
  const interval = ctx.interval;
  const barTs = interval === "1d" || interval === "1w" || interval === "1mo" ? floorUtcDay(ts) : ts;
  const now = ctx.now ?? Date.now();
  if (barTs > now + (ctx.futureToleranceMs ?? 60_000))
    return reject(row, "future", `ts ${new Date(barTs).toISOString()} is in the future`, { symbol: sym.symbol, ts: barTs });
  const where = { symbol: sym.symbol, ts: barTs };

  const open = toNumber(f.open);
  if (Number.isNaN(open)) return reject(row, "number", `open ${show(f.open)} is not a number`, where);
  const high = toNumber(f.high);
  if (Number.isNaN(high)) return reject(row, "number", `high ${show(f.high)} is not a number`, where);
  const low = toNumber(f.low);
  if (Number.isNaN(low)) return reject(row, "number", `low ${show(f.low)} is not a number`, where);
  const close = toNumber(f.close);
  if (Number.isNaN(close)) return reject(row, "number", `close ${show(f.close)} is not a number`, where);
  let volume: number;
  if (f.volume === undefined) volume = 0; // a layout without a volume column (indices): no volume is 0 volume
  else if (isEmpty(f.volume)) return reject(row, "required", "volume is empty", where); // a column with a hole
  else if (Number.isNaN((volume = toNumber(f.volume)))) return reject(row, "number", `volume ${show(f.volume)} is not a number`, where);
  let adjClose: number | null = null;
  let turnover: number | null = null;
  let trades: number | null = null;
  if (!isEmpty(f.adjClose) && Number.isNaN((adjClose = toNumber(f.adjClose)))) return reject(row, "number", `adjClose ${show(f.adjClose)} is not a number`, where);
  if (!isEmpty(f.turnover) && Number.isNaN((turnover = toNumber(f.turnover)))) return reject(row, "number", `turnover ${show(f.turnover)} is not a number`, where);
  if (!isEmpty(f.trades) && Number.isNaN((trades = toNumber(f.trades)))) return reject(row, "number", `trades ${show(f.trades)} is not a number`, where);

  const candidate = { source: ctx.source, symbol: sym.symbol, interval, ts: barTs, open, high, low, close, volume, adjClose, turnover, trades };
  // Every row goes through the Bar schema: types, finiteness, signs.
  const parsed = v.safeParse(BarSchema, candidate);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const key = String(issue.path?.[0]?.key ?? "");
    const rule: Rule = PRICE_FIELDS.has(key) ? "price" : key === "volume" ? "volume" : "number";
    return reject(row, rule, `${issue.message} (got ${json(f[key] ?? issue.input)})`, where);
  }
  const bar = parsed.output as Bar;
  if (high < Math.max(open, close, low)) return reject(row, "high", `high ${high} is below max(open ${open}, close ${close}, low ${low})`, where);
  if (low > Math.min(open, close, high)) return reject(row, "low", `low ${low} is above min(open ${open}, close ${close}, high ${high})`, where);
  // A table source's extra columns (only sources that declare some set f.extras).
  if (f.extras !== undefined) {
    const extras = checkExtras(f.extras);
    if (typeof extras === "string") return reject(row, "number", extras, where);
    bar.extras = extras;
  }
  return bar;
}

/** Validate a batch: row rules, duplicates within the batch, gaps against the exchange calendar. */
export function validateBatch(rows: RawRow[], ctx: ValidateContext): ValidatedBatch {
  const bars: Bar[] = [];
  const rejections: Rejection[] = [];
  const rules: Partial<Record<Rule, number>> = {};
  // symbol → ts → locator of the first row with that key, for duplicate detection.
  const seen = new Map<string, Map<number, string>>();
  const cache = ctx.cache ?? newValidateCache();
  const count = (rule: Rule, n = 1) => (rules[rule] = (rules[rule] ?? 0) + n);
  for (const row of rows) {
    const out = validateRow(row, ctx, cache);
    if ("rule" in out) {
      rejections.push(out);
      count(out.rule);
      continue;
    }
    let bySymbol = seen.get(out.symbol);
    if (!bySymbol) seen.set(out.symbol, (bySymbol = new Map()));
    const first = bySymbol.get(out.ts);
    if (first !== undefined) {
      rejections.push(reject(row, "duplicate", `duplicate of ${first} for ${out.symbol} at ${new Date(out.ts).toISOString()}`, { symbol: out.symbol, ts: out.ts }));
      count("duplicate");
      continue;
    }
    bySymbol.set(out.ts, row.locator);
    bars.push(out);
  }
  const warnings = ctx.interval === "1d" ? findDailyGaps(bars, ctx.lastTs ?? new Map()) : [];
  const gapSessions = warnings.reduce((n, w) => n + w.missing, 0);
  if (gapSessions > 0) count("gap", gapSessions);
  return { bars, rejections, warnings, report: scoreBatch(rows.length, bars.length, gapSessions, rules) };
}

/**
 * Score 0..1: the share of rows accepted, reduced by half the share of expected sessions that
 * are missing (a gap is a warning: it costs less than a rejected row, but it is not free).
 */
export function scoreBatch(read: number, accepted: number, gapSessions: number, rules: Partial<Record<Rule, number>>): QualityReport {
  const acceptedShare = read === 0 ? 1 : accepted / read;
  const missingShare = accepted + gapSessions === 0 ? 0 : gapSessions / (accepted + gapSessions);
  const score = Math.max(0, Math.min(1, acceptedShare * (1 - 0.5 * missingShare)));
  return { read, accepted, rejected: read - accepted, gapSessions, score: Math.round(score * 1e6) / 1e6, rules };
}

const DAY_MS = 86_400_000;
/** True when no session can lie strictly between the two UTC days: no weekday does, or (a market with weekend sessions) no day at all. */
function adjacentWeekdays(a: number, b: number, market: Market): boolean {
  const da = Math.floor(a / DAY_MS);
  const db = Math.floor(b / DAY_MS);
  if (db - da <= 1) return true;
  if (tradesOnWeekends(market)) return false; // CRYPTO: Friday → Monday skips two sessions
  const weekday = (((da + 4) % 7) + 7) % 7; // 1970-01-01 was a Thursday (4)
  // From Friday, Saturday or Sunday the next weekday is Monday.
  const toMonday = weekday === 5 ? 3 : weekday === 6 ? 2 : weekday === 0 ? 1 : 1;
  return db - da <= toMonday;
}

/**
 * Sessions missing strictly between two UTC days of a market, by market and day pair: every
 * symbol of a market shares its holidays, so a bulk file asks the calendar the same few pairs
 * again and again. Bounded: emptied when it grows past GAP_CACHE_MAX pairs.
 */
const missingCache = new Map<Market, Map<number, number>>();
const GAP_CACHE_MAX = 100_000;
let missingCached = 0;

function missingSessions(market: Market, prev: number, ts: number): number {
  const da = Math.floor(prev / DAY_MS);
  const span = Math.floor(ts / DAY_MS) - da;
  // One number per pair (a span this long is rare: not cached).
  const key = span < 4096 ? da * 4096 + span : NaN;
  let byPair = missingCache.get(market);
  const hit = byPair?.get(key);
  if (hit !== undefined) return hit;
  const [after, before] = [utcDate(prev), utcDate(ts)];
  const cover = calendarCoverage(market);
  const missing = after >= cover.from && before <= cover.to ? tradingDaysBetween(market, after, before).length : 0;
  if (Number.isNaN(key)) return missing;
  if (missingCached >= GAP_CACHE_MAX) (missingCache.clear(), (missingCached = 0), (byPair = undefined));
  if (!byPair) missingCache.set(market, (byPair = new Map()));
  byPair.set(key, missing);
  missingCached++;
  return missing;
}

/**
 * Daily gaps per symbol against its market's calendar. `lastTs` carries the newest bar per
 * symbol between batches (one number per symbol: constant in the file size) and is updated.
 */
export function findDailyGaps(bars: readonly Bar[], lastTs: Map<string, number>): GapWarning[] {
  const bySymbol = new Map<string, number[]>();
  for (const b of bars) {
    let list = bySymbol.get(b.symbol);
    if (!list) bySymbol.set(b.symbol, (list = []));
    list.push(b.ts);
  }
  return findDailyGapsIn(bySymbol, lastTs);
}

/**
 * findDailyGaps over each symbol's bar timestamps; `rising` names the symbols whose list is
 * known to be in increasing order already (it is sorted otherwise, in place).
 */
export function findDailyGapsIn(bySymbol: Map<string, number[]>, lastTs: Map<string, number>, rising?: (symbol: string) => boolean): GapWarning[] {
  const warnings: GapWarning[] = [];
  for (const [symbol, list] of bySymbol) {
    const sym = normaliseSymbol(symbol);
    if (!rising?.(symbol)) list.sort((a, b) => a - b);
    let prev = lastTs.get(symbol);
    for (const ts of list) {
      // Consecutive weekdays (or Friday → Monday) cannot hide a session: skip the calendar.
      if (prev !== undefined && ts > prev && sym.ok && !adjacentWeekdays(prev, ts, sym.market)) {
        const missing = missingSessions(sym.market, prev, ts);
        if (missing > 0) warnings.push({ rule: "gap", symbol, interval: "1d", after: utcDate(prev), before: utcDate(ts), missing });
      }
      if (prev === undefined || ts > prev) prev = ts;
    }
    if (prev !== undefined) lastTs.set(symbol, prev);
  }
  return warnings;
}
