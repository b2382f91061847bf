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

/** ISO strings of recent timestamps: pages of many symbols repeat the same ts. Bounded: cleared when full. */
const isoCache = new Map<number, string>();
const ISO_CACHE_MAX = 50_000;

/**
 * `new Date(ts).toISOString()`, cached: formatting costs ~130 ns a bar, a third of a JSON page's
 * writing, and a 1,000-bar page of daily bars shares its ts with every other symbol's page.
 */
export function isoTs(ts: number): string {
  let s = isoCache.get(ts);
  if (s === undefined) {
    s = new Date(ts).toISOString();
    if (isoCache.size >= ISO_CACHE_MAX) isoCache.clear();
    isoCache.set(ts, s);
  }
  return s;
}

/** A bar as the HTTP API and the stream show it: ts as an ISO instant, absent extras left out. */
export function barJson(b: Bar): BarJson {
  // Fields added, not spread: one shape per set of fields present, a quarter faster to build.
  const o: BarJson = { source: b.source, symbol: b.symbol, interval: b.interval, ts: isoTs(b.ts), open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume };
  if (b.adjClose != null) o.adjClose = b.adjClose;
  if (b.turnover != null) o.turnover = b.turnover;
  if (b.trades != null) o.trades = b.trades;
  return o;
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

/**
 * A bar as JSON (barJson's shape): what /api/bars pages, replay lines and stream messages carry.
 * `adjClose`, `turnover` and `trades` only when stored. The OpenAPI and AsyncAPI documents
 * describe bars by it.
 */
export const BarJsonSchema = v.strictObject({
  source: v.pipe(v.string(), v.description("the source it came from")),
  symbol: v.pipe(v.string(), v.description("normalised symbol (PKN.WA)")),
  interval: IntervalSchema,
  ts: v.pipe(v.string(), v.isoTimestamp(), v.description("the bar's start, ISO 8601 UTC")),
  open: v.number(),
  high: v.number(),
  low: v.number(),
  close: v.number(),
  volume: v.number(),
  adjClose: v.optional(v.number()),
  turnover: v.optional(v.number()),
  trades: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
});
export type BarJson = v.InferOutput<typeof BarJsonSchema>;

/**
 * `JSON.stringify(rows.slice(0, n).map(barJson))` for a store's BarValues rows: the driver's
 * arrays go straight to barJson's flat objects (no row object, no Bar). Not a string builder:
 * measured in Bun, JSON.stringify of one flat object per row writes the numbers faster than a
 * template per row does (docs/benchmarks.md, "Reads").
 */
export function barValuesJson(rows: readonly BarValues[], n = rows.length): string {
  const out: BarJson[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    const o: BarJson = { source: r[0], symbol: r[1], interval: r[2], ts: isoTs(r[3]), open: r[4], high: r[5], low: r[6], close: r[7], volume: r[8] };
    // As rowToBar reads a row: null or NaN (QuestDB's null double) is absent.
    if (r[9] != null && r[9] === r[9]) o.adjClose = r[9];
    if (r[10] != null && r[10] === r[10]) o.turnover = r[10];
    if (r[11] != null) o.trades = Number(r[11]);
    out[i] = o;
  }
  return JSON.stringify(out);
}

/** `JSON.stringify(bars.map(barJson))`. */
export const barsJson = (bars: readonly Bar[]): string => JSON.stringify(bars.map(barJson));

/**
 * A price's change against the previous close, as quote feeds print it: the difference to 6
 * decimals and the percentage to 4 (no float noise in a UI); null without a previous close.
 */
export function priceChange(price: number, previousClose: number | null): { change: number; changePercent: number } | null {
  if (previousClose === null || previousClose === 0) return null;
  const change = price - previousClose;
  return { change: Math.round(change * 1e6) / 1e6, changePercent: Math.round((change / previousClose) * 100 * 1e4) / 1e4 };
}
