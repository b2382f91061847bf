// Bar: one OHLCV candle of one symbol at one interval, the unit everything in ticksync moves.
// The natural key is (source, symbol, interval, ts); every store upserts on it.
import * as v from "valibot";

/** Shortest first: rollups (canRollUp) and pickers rely on the order. */
export const INTERVALS = ["1m", "2m", "5m", "15m", "30m", "1h", "4h", "1d", "1w", "1mo"] as const;
export type Interval = (typeof INTERVALS)[number];
export const IntervalSchema = v.picklist(INTERVALS, `expected one of ${INTERVALS.join(", ")}`);

/** Length of an interval in ms; calendar intervals (1w, 1mo) use their shortest length. */
export const INTERVAL_MS: Record<Interval, number> = {
  "1m": 60_000,
  "2m": 120_000,
  "5m": 300_000,
  "15m": 900_000,
  "30m": 1_800_000,
  "1h": 3_600_000,
  "4h": 14_400_000,
  "1d": 86_400_000,
  "1w": 7 * 86_400_000,
  "1mo": 28 * 86_400_000,
};

export type Bar = {
  source: string;
  symbol: string;
  interval: Interval;
  /** Start of the bar, epoch ms UTC. Daily and longer bars start at 00:00Z of their session date. */
  ts: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  adjClose?: number | null;
  turnover?: number | null;
  trades?: number | null;
  /**
   * Extra numeric columns a table source declared (`extraColumns`, e.g. rsi, sma_20): finite
   * numbers by name. Absent on every other bar; stores keep them beside the bar (see stores).
   */
  extras?: Record<string, number>;
};

/** A bar's extras as a store keeps them: its key within the batch's source, and the values. */
export type BarExtras = { symbol: string; interval: Interval; ts: number; values: Record<string, number> };

/** The key of a bar as a string (maps of extras by bar). */
export const barKey = (source: string, symbol: string, interval: string, ts: number) => `${source}\u0000${symbol}\u0000${interval}\u0000${ts}`;

/**
 * A row's extra columns as finite numbers, or why not (the row is quarantined, rule "number").
 * A null or empty column is left out (an indicator undefined at a series' start is not an error).
 */
export function checkExtras(raw: unknown): Record<string, number> | string {
  if (raw === null || typeof raw !== "object") return `extras ${JSON.stringify(raw)} are not a map of numbers`;
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(raw as Record<string, unknown>)) {
    if (x === null || x === undefined || x === "") continue;
    const n = typeof x === "number" ? x : typeof x === "string" || typeof x === "bigint" ? Number(x) : NaN;
    if (!Number.isFinite(n)) return `extra ${k} ${typeof x === "string" ? JSON.stringify(x) : typeof x === "object" ? JSON.stringify(x) : String(x)} is not a finite number`;
    out[k] = n;
  }
  return out;
}

const price = (field: string) =>
  v.pipe(
    v.number(`${field} must be a number`),
    v.finite(`${field} must be finite`),
    v.gtValue(0, `${field} must be positive`),
  );

const optionalNonNegative = (field: string) =>
  v.optional(
    v.nullable(v.pipe(v.number(`${field} must be a number`), v.finite(`${field} must be finite`), v.minValue(0, `${field} must not be negative`))),
  );

/** Structural schema of a bar: types, finiteness and signs. Cross-field rules live in quality.ts. */
export const BarSchema = v.object({
  source: v.pipe(v.string(), v.nonEmpty("source is required")),
  symbol: v.pipe(v.string(), v.nonEmpty("symbol is required")),
  interval: IntervalSchema,
  ts: v.pipe(v.number("ts must be a timestamp"), v.integer("ts must be whole milliseconds"), v.finite("ts must be finite")),
  open: price("open"),
  high: price("high"),
  low: price("low"),
  close: price("close"),
  volume: v.pipe(v.number("volume must be a number"), v.finite("volume must be finite"), v.minValue(0, "volume must not be negative")),
  adjClose: v.optional(v.nullable(price("adjClose"))),
  turnover: optionalNonNegative("turnover"),
  trades: v.optional(v.nullable(v.pipe(v.number(), v.integer("trades must be a whole number"), v.minValue(0, "trades must not be negative")))),
});

/**
 * A row as a source read it, before validation: field values are still text (CSV) or whatever
 * type the source database held. `locator` says where it came from (file:line, table:rowid) so a
 * quarantined row can be found and replayed.
 */
export type RawRow = {
  locator: string;
  fields: Record<string, unknown>;
};

export const BAR_FIELDS = ["ts", "open", "high", "low", "close", "volume", "adjClose", "turnover", "trades"] as const;

/** A bar as the HTTP API and the stream show it: ts as an ISO instant, absent extras left out. */
export function barJson(b: Bar) {
  return {
    source: b.source,
    symbol: b.symbol,
    interval: b.interval,
    ts: new Date(b.ts).toISOString(),
    open: b.open,
    high: b.high,
    low: b.low,
    close: b.close,
    volume: b.volume,
    ...(b.adjClose != null ? { adjClose: b.adjClose } : {}),
    ...(b.turnover != null ? { turnover: b.turnover } : {}),
    ...(b.trades != null ? { trades: b.trades } : {}),
  };
}

/**
 * A bar as a store's read returns it without an object per bar: the columns in this order, ts
 * as epoch ms, an absent optional value null (or NaN, QuestDB's null double).
 */
export type BarValues = [
  source: string,
  symbol: string,
  interval: Interval,
  ts: number,
  open: number,
  high: number,
  low: number,
  close: number,
  volume: number,
  adjClose: number | null,
  turnover: number | null,
  trades: number | null,
];

/** A Bar as BarValues (stores without a values read). */
export const barValues = (b: Bar): BarValues => [b.source, b.symbol, b.interval, b.ts, b.open, b.high, b.low, b.close, b.volume, b.adjClose ?? null, b.turnover ?? null, b.trades ?? null];

/** JSON text of a string; source and symbol repeat down a page, so the last one is kept. */
let lastText = "";
let lastJson = '""';
function jsonString(s: string): string {
  if (s !== lastText) [lastText, lastJson] = [s, JSON.stringify(s)];
  return lastJson;
}
const jsonNumber = (n: number) => (Number.isFinite(n) ? `${n}` : "null");
/** An optional value of a store's row: left out when null or NaN (as rowToBar leaves it out). */
const optField = (name: string, n: number | null | undefined) => (n == null || n !== n ? "" : `,"${name}":${jsonNumber(n)}`);
/** An optional field of a Bar: left out when null or undefined (as barJson). */
const barField = (name: string, n: number | null | undefined) => (n == null ? "" : `,"${name}":${jsonNumber(n)}`);

/**
 * `JSON.stringify(bars.map(barJson))` written straight from BarValues rows (the first `n`), with
 * no object per bar: the same bytes, a string builder (the read path's cost per row).
 */
export function barValuesJson(rows: readonly BarValues[], n = rows.length): string {
  let out = "[";
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    out += `${i ? "," : ""}{"source":${jsonString(r[0])},"symbol":${jsonString(r[1])},"interval":"${r[2]}","ts":"${new Date(r[3]).toISOString()}","open":${jsonNumber(r[4])},"high":${jsonNumber(r[5])},"low":${jsonNumber(r[6])},"close":${jsonNumber(r[7])},"volume":${jsonNumber(r[8])}${optField("adjClose", r[9])}${optField("turnover", r[10])}${optField("trades", r[11])}}`;
  }
  return out + "]";
}

/** `JSON.stringify(bars.map(barJson))` written straight from the bars (no object per bar). */
export function barsJson(bars: readonly Bar[]): string {
  let out = "[";
  for (let i = 0; i < bars.length; i++) {
    const b = bars[i]!;
    out += `${i ? "," : ""}{"source":${jsonString(b.source)},"symbol":${jsonString(b.symbol)},"interval":"${b.interval}","ts":"${new Date(b.ts).toISOString()}","open":${jsonNumber(b.open)},"high":${jsonNumber(b.high)},"low":${jsonNumber(b.low)},"close":${jsonNumber(b.close)},"volume":${jsonNumber(b.volume)}${barField("adjClose", b.adjClose)}${barField("turnover", b.turnover)}${barField("trades", b.trades)}}`;
  }
  return out + "]";
}

/**
 * A price's change against the previous close, as quote feeds print it: the difference to 6
 * decimals and the percentage to 4 (no float noise in a UI); null without a previous close.
 */
export function priceChange(price: number, previousClose: number | null): { change: number; changePercent: number } | null {
  if (previousClose === null || previousClose === 0) return null;
  const change = price - previousClose;
  return { change: Math.round(change * 1e6) / 1e6, changePercent: Math.round((change / previousClose) * 100 * 1e4) / 1e4 };
}
