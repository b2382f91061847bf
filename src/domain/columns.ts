// Bars as columns: what a batch of bars looks like where speed matters (the read worker hands
// them over in transferred buffers; stores encode straight from them). Numbers sit in one
// Float64Array, nine per bar (NaN for null); series in a list, each bar by its index into it.
import type { Bar, Interval } from "./bar.ts";

export type SeriesKey = { source: string; symbol: string; interval: Interval };

export type BarColumns = {
  n: number;
  /** The batch's distinct series, in the order of their first bar. */
  series: SeriesKey[];
  /** Per bar: its index into `series`. */
  row: Uint32Array;
  /** n × COLUMN_WIDTH: ts, open, high, low, close, volume, adjClose, turnover, trades. */
  f64: Float64Array;
};

export const COLUMN_WIDTH = 9;
export const C_TS = 0;
export const C_OPEN = 1;
export const C_HIGH = 2;
export const C_LOW = 3;
export const C_CLOSE = 4;
export const C_VOLUME = 5;
export const C_ADJ = 6;
export const C_TURNOVER = 7;
export const C_TRADES = 8;

/** A batch is given either as bar objects or as columns; stores take both. */
export type BarList = readonly Bar[] | BarColumns;

export const isColumns = (x: BarList): x is BarColumns => !Array.isArray(x);
export const countOf = (x: BarList): number => (isColumns(x) ? x.n : x.length);

const num = (x: unknown): number => (typeof x === "number" ? x : NaN);

export function toColumns(bars: readonly Bar[]): BarColumns {
  const n = bars.length;
  const series: SeriesKey[] = [];
  const index = new Map<string, number>();
  const row = new Uint32Array(n);
  const f64 = new Float64Array(n * COLUMN_WIDTH);
  let prev: Bar | undefined;
  let s = 0;
  for (let i = 0; i < n; i++) {
    const b = bars[i]!;
    // Bars of a series usually come together: the map is asked only when the series changes.
    if (!prev || prev.symbol !== b.symbol || prev.source !== b.source || prev.interval !== b.interval) {
      const k = `${b.source}\u0000${b.symbol}\u0000${b.interval}`;
      let found = index.get(k);
      if (found === undefined) {
        index.set(k, (found = series.length));
        series.push({ source: b.source, symbol: b.symbol, interval: b.interval });
      }
      s = found;
      prev = b;
    }
    row[i] = s;
    const o = i * COLUMN_WIDTH;
    // Anything but a number (a null where a number belongs) is NaN: missing, as stores see it.
    f64[o] = num(b.ts);
    f64[o + 1] = num(b.open);
    f64[o + 2] = num(b.high);
    f64[o + 3] = num(b.low);
    f64[o + 4] = num(b.close);
    f64[o + 5] = num(b.volume);
    f64[o + 6] = num(b.adjClose);
    f64[o + 7] = num(b.turnover);
    f64[o + 8] = num(b.trades);
  }
  return { n, series, row, f64 };
}

/** Bar i of the columns, as an object (absent extras left out, as sources make them). */
export function barAt(c: BarColumns, i: number): Bar {
  const f = c.f64;
  const o = i * COLUMN_WIDTH;
  const s = c.series[c.row[i]!]!;
  const bar: Bar = { source: s.source, symbol: s.symbol, interval: s.interval, ts: f[o]!, open: f[o + 1]!, high: f[o + 2]!, low: f[o + 3]!, close: f[o + 4]!, volume: f[o + 5]! };
  if (!Number.isNaN(f[o + 6]!)) bar.adjClose = f[o + 6]!;
  if (!Number.isNaN(f[o + 7]!)) bar.turnover = f[o + 7]!;
  if (!Number.isNaN(f[o + 8]!)) bar.trades = f[o + 8]!;
  return bar;
}

export function fromColumns(c: BarColumns): Bar[] {
  const out: Bar[] = new Array(c.n);
  for (let i = 0; i < c.n; i++) out[i] = barAt(c, i);
  return out;
}

/** The bars as objects (columns are turned into them; an array is returned as it is). */
export const barsOf = (x: BarList): readonly Bar[] => (isColumns(x) ? fromColumns(x) : x);

/** The bars as columns (objects are turned into them; columns are returned as they are). */
export const columnsOf = (x: BarList): BarColumns => (isColumns(x) ? x : toColumns(x));

/** Smallest and largest ts of the columns (null when empty). */
export function tsRange(c: BarColumns): { min: number; max: number } | null {
  if (c.n === 0) return null;
  let min = Infinity;
  let max = -Infinity;
  const f = c.f64;
  for (let o = 0; o < c.n * COLUMN_WIDTH; o += COLUMN_WIDTH) {
    const t = f[o]!;
    if (t < min) min = t;
    if (t > max) max = t;
  }
  return { min, max };
}
