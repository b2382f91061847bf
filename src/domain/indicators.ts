// Derived fields over a bar series: returns, volatility, moving averages, RSI, VWAP. Each is a
// pure function of the bars (oldest first, one series) returning one value per bar, null where
// the indicator is not defined yet (its warm-up) or cannot be (VWAP without volume).
import * as v from "valibot";
import type { Bar } from "./bar.ts";

export type Series = (number | null)[];

/**
 * A series as columns, oldest first: what the indicators read. Float64Arrays filled straight from
 * a store's row values (/api/indicators), so no object is made per bar; barColumns for Bars.
 */
export type BarColumns = { length: number; ts: Float64Array; high: Float64Array; low: Float64Array; close: Float64Array; volume: Float64Array };

/** Empty columns for `length` bars, to be filled. */
export function allocColumns(length: number): BarColumns {
  return { length, ts: new Float64Array(length), high: new Float64Array(length), low: new Float64Array(length), close: new Float64Array(length), volume: new Float64Array(length) };
}

/** Bars as columns. */
export function barColumns(bars: readonly Bar[]): BarColumns {
  const c = allocColumns(bars.length);
  for (let i = 0; i < bars.length; i++) {
    const b = bars[i]!;
    c.ts[i] = b.ts;
    c.high[i] = b.high;
    c.low[i] = b.low;
    c.close[i] = b.close;
    c.volume[i] = b.volume;
  }
  return c;
}

/** Simple return close[i] / close[i-1] - 1; null for the first bar. */
export const simpleReturn = (bars: readonly Bar[]): Series => simpleReturnOf(barColumns(bars).close);
/** Log return ln(close[i] / close[i-1]); null for the first bar. */
export const logReturn = (bars: readonly Bar[]): Series => logReturnOf(barColumns(bars).close);
/** volatilityOf over bars' closes. */
export const volatility = (bars: readonly Bar[], n: number, periodsPerYear?: number): Series => volatilityOf(barColumns(bars).close, n, periodsPerYear);
/** smaOf over bars' closes. */
export const sma = (bars: readonly Bar[], n: number): Series => smaOf(barColumns(bars).close, n);
/** emaOf over bars' closes. */
export const ema = (bars: readonly Bar[], n: number): Series => emaOf(barColumns(bars).close, n);
/** rsiOf over bars' closes. */
export const rsi = (bars: readonly Bar[], n: number): Series => rsiOf(barColumns(bars).close, n);
/** vwapOf over bars; `sessionOf` names a bar's session (by default each bar is its own). */
export const vwap = (bars: readonly Bar[], sessionOf?: (b: Bar) => string | number): Series =>
  vwapOf(barColumns(bars), sessionOf && ((i) => sessionOf(bars[i]!)));

export function simpleReturnOf(close: Float64Array): Series {
  const out: Series = new Array(close.length);
  for (let i = 0; i < close.length; i++) out[i] = i === 0 ? null : close[i]! / close[i - 1]! - 1;
  return out;
}

export function logReturnOf(close: Float64Array): Series {
  const out: Series = new Array(close.length);
  for (let i = 0; i < close.length; i++) out[i] = i === 0 ? null : Math.log(close[i]! / close[i - 1]!);
  return out;
}

/**
 * Rolling volatility: the sample standard deviation (n - 1 in the denominator) of the last `n`
 * log returns, so first defined at bar n (it needs n + 1 closes). `annualise` multiplies by
 * √periodsPerYear (252 trading days for daily bars: vol × √252; 52 weekly, 12 monthly).
 */
export function volatilityOf(close: Float64Array, n: number, periodsPerYear?: number): Series {
  if (!(Number.isInteger(n) && n >= 2)) throw new RangeError("volatility needs a window of at least 2 returns");
  const r = logReturnOf(close);
  const scale = periodsPerYear === undefined ? 1 : Math.sqrt(periodsPerYear);
  const out: Series = new Array(close.length);
  for (let i = 0; i < close.length; i++) {
    if (i < n) {
      out[i] = null;
      continue;
    }
    let mean = 0;
    for (let j = i - n + 1; j <= i; j++) mean += r[j]!;
    mean /= n;
    let ss = 0;
    for (let j = i - n + 1; j <= i; j++) ss += (r[j]! - mean) ** 2;
    out[i] = Math.sqrt(ss / (n - 1)) * scale;
  }
  return out;
}

/** Simple moving average of the last `n` closes; first defined at bar n - 1. */
export function smaOf(close: Float64Array, n: number): Series {
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError("sma needs a window of at least 1");
  const out: Series = new Array(close.length);
  let sum = 0;
  for (let i = 0; i < close.length; i++) {
    sum += close[i]!;
    if (i >= n) sum -= close[i - n]!;
    out[i] = i >= n - 1 ? sum / n : null;
  }
  return out;
}

/**
 * Exponential moving average with α = 2 / (n + 1), seeded with the SMA of the first n closes
 * (so first defined at bar n - 1, equal to sma there): ema[i] = α·close[i] + (1 - α)·ema[i-1].
 */
export function emaOf(close: Float64Array, n: number): Series {
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError("ema needs a window of at least 1");
  const alpha = 2 / (n + 1);
  const out: Series = new Array(close.length);
  let prev = 0;
  for (let i = 0; i < close.length; i++) {
    const c = close[i]!;
    if (i < n - 1) {
      prev += c;
      out[i] = null;
    } else if (i === n - 1) {
      prev = (prev + c) / n;
      out[i] = prev;
    } else {
      prev = alpha * c + (1 - alpha) * prev;
      out[i] = prev;
    }
  }
  return out;
}

/**
 * Relative Strength Index with Wilder's smoothing. With changes d = close[i] - close[i-1],
 * gains max(d, 0) and losses max(-d, 0): the first averages are the plain means of the first n
 * gains and losses (defined at bar n), then avg = (avg·(n - 1) + current) / n. RSI = 100 -
 * 100 / (1 + avgGain / avgLoss); 100 when avgLoss is 0, 50 when both are 0 (no movement).
 */
export function rsiOf(close: Float64Array, n: number): Series {
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError("rsi needs a window of at least 1");
  const out: Series = new Array(close.length);
  if (close.length > 0) out[0] = null;
  let gain = 0;
  let loss = 0;
  for (let i = 1; i < close.length; i++) {
    const d = close[i]! - close[i - 1]!;
    const g = d > 0 ? d : 0;
    const l = d < 0 ? -d : 0;
    if (i <= n) {
      gain += g;
      loss += l;
      if (i < n) {
        out[i] = null;
        continue;
      }
      gain /= n;
      loss /= n;
    } else {
      gain = (gain * (n - 1) + g) / n;
      loss = (loss * (n - 1) + l) / n;
    }
    out[i] = loss === 0 ? (gain === 0 ? 50 : 100) : 100 - 100 / (1 + gain / loss);
  }
  return out;
}

/**
 * Volume-weighted average price per session: Σ typical·volume / Σ volume over the session's bars
 * so far, typical = (high + low + close) / 3. `sessionOf(i)` names bar i's session (for intraday
 * bars its exchange date); by default each bar is its own (daily bars: VWAP = typical price).
 * Bars with no volume add nothing; null until the session has traded some volume.
 */
export function vwapOf(c: BarColumns, sessionOf: (i: number) => string | number = (i) => c.ts[i]!): Series {
  const out: Series = new Array(c.length);
  let session: string | number | undefined;
  let pv = 0;
  let vol = 0;
  for (let i = 0; i < c.length; i++) {
    const s = sessionOf(i);
    if (s !== session) {
      session = s;
      pv = 0;
      vol = 0;
    }
    const v = c.volume[i]!;
    if (v > 0) {
      pv += ((c.high[i]! + c.low[i]! + c.close[i]!) / 3) * v;
      vol += v;
    }
    out[i] = vol > 0 ? pv / vol : null;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Indicator sets as the API and the config name them: `sma:20`, `ema:12`, `rsi:14`, `vol:20`,
// `vol:20:ann` (annualised), `ret`, `logret`, `vwap`.

export type IndicatorSpec =
  | { kind: "ret"; key: string }
  | { kind: "logret"; key: string }
  | { kind: "vwap"; key: string }
  | { kind: "sma"; key: string; n: number }
  | { kind: "ema"; key: string; n: number }
  | { kind: "rsi"; key: string; n: number }
  | { kind: "vol"; key: string; n: number; annualised: boolean };

export const MAX_WINDOW = 1000;
const SPEC = /^(?:(ret|logret|vwap)|(sma|ema|rsi):(\d{1,4})|vol:(\d{1,4})(:ann)?)$/;

/** Parse one indicator name; a string says what is wrong. */
export function parseIndicator(text: string): IndicatorSpec | string {
  const m = SPEC.exec(text.trim());
  if (!m) return `unknown indicator ${JSON.stringify(text)}: expected sma:N, ema:N, rsi:N, vol:N, vol:N:ann, ret, logret or vwap`;
  const key = text.trim();
  if (m[1]) return { kind: m[1] as "ret" | "logret" | "vwap", key } as IndicatorSpec;
  const n = Number(m[3] ?? m[4]);
  const min = m[4] !== undefined ? 2 : 1;
  if (n < min || n > MAX_WINDOW) return `${key}: the window must be between ${min} and ${MAX_WINDOW}`;
  if (m[2]) return { kind: m[2] as "sma" | "ema" | "rsi", key, n } as IndicatorSpec;
  return { kind: "vol", key, n, annualised: m[5] !== undefined };
}

/** A list of indicator names, e.g. from the config: each checked, duplicates not allowed. */
export const IndicatorListSchema = v.pipe(
  v.array(v.string("expected an indicator name such as \"sma:20\"")),
  v.nonEmpty("expected at least one indicator"),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    for (const s of dataset.value) {
      const r = parseIndicator(s);
      if (typeof r === "string") addIssue({ message: r });
    }
    if (new Set(dataset.value.map((s) => s.trim())).size !== dataset.value.length) addIssue({ message: "an indicator is listed twice" });
  }),
);

/**
 * `[indicators]` in the config: the set /api/indicators computes when a request names none.
 * `default` for every symbol; `universes` maps a universe name (bundled or from `[universes]`)
 * to its own set, which wins for the symbols in it (the first listed universe that has a symbol).
 */
export const indicatorsConfigSchema = v.strictObject({
  default: v.optional(v.pipe(IndicatorListSchema, v.description('Indicators computed for every symbol, e.g. "sma:20", "ema:50", "rsi:14".')), ["sma:20", "rsi:14"]),
  universes: v.optional(
    v.pipe(
      v.record(v.string(), v.pipe(IndicatorListSchema, v.description("The indicator set of this universe."))),
      v.description("Per universe (bundled or from [universes]) its own set, which wins for the symbols in it (the first listed universe that has a symbol)."),
    ),
    {},
  ),
});
export type IndicatorsConfig = v.InferOutput<typeof indicatorsConfigSchema>;

/**
 * Bars before the first one asked for that make its values right: n - 1 for SMA, n returns for
 * volatility, one for returns. EMA and RSI are recursive; their seed's weight after k more bars
 * is (1 - α)^k, below e^-37 ≈ 1e-16 (double precision) once k ≥ 37/α, so that many bars make
 * the value equal, to rounding, to one seeded at the series' first bar. VWAP (intraday) needs
 * its session so far: a day's worth of bars. `barsPerDay` is 1 for daily and longer bars.
 */
export function warmupBars(specs: readonly IndicatorSpec[], barsPerDay: number): number {
  let w = 0;
  for (const s of specs) {
    const need =
      s.kind === "ret" || s.kind === "logret"
        ? 1
        : s.kind === "vwap"
          ? barsPerDay > 1 ? barsPerDay : 0
          : s.kind === "sma"
            ? s.n - 1
            : s.kind === "vol"
              ? s.n
              : s.kind === "ema"
                ? s.n - 1 + Math.ceil((37 * (s.n + 1)) / 2)
                : s.n + Math.ceil(37 * s.n);
    w = Math.max(w, need);
  }
  return w;
}

/** Compute a set over bars: one column per spec, keyed by its name. */
export function computeIndicators(
  bars: readonly Bar[],
  specs: readonly IndicatorSpec[],
  opts: { periodsPerYear?: number; sessionOf?: (b: Bar) => string | number } = {},
): Record<string, Series> {
  const { sessionOf } = opts;
  return computeIndicatorColumns(barColumns(bars), specs, { periodsPerYear: opts.periodsPerYear, sessionOf: sessionOf && ((i) => sessionOf(bars[i]!)) });
}

/** computeIndicators over columns; `sessionOf(i)` names bar i's session for VWAP. */
export function computeIndicatorColumns(
  cols: BarColumns,
  specs: readonly IndicatorSpec[],
  opts: { periodsPerYear?: number; sessionOf?: (i: number) => string | number } = {},
): Record<string, Series> {
  const out: Record<string, Series> = {};
  for (const s of specs) {
    if (s.kind === "ret") out[s.key] = simpleReturnOf(cols.close);
    else if (s.kind === "logret") out[s.key] = logReturnOf(cols.close);
    else if (s.kind === "vwap") out[s.key] = vwapOf(cols, opts.sessionOf);
    else if (s.kind === "sma") out[s.key] = smaOf(cols.close, s.n);
    else if (s.kind === "ema") out[s.key] = emaOf(cols.close, s.n);
    else if (s.kind === "rsi") out[s.key] = rsiOf(cols.close, s.n);
    else {
      if (s.annualised && opts.periodsPerYear === undefined) throw new RangeError(`${s.key}: annualised volatility needs daily, weekly or monthly bars`);
      out[s.key] = volatilityOf(cols.close, s.n, s.annualised ? opts.periodsPerYear : undefined);
    }
  }
  return out;
}

/** Periods per year used to annualise: 252 sessions, 52 weeks, 12 months; none for intraday. */
export const PERIODS_PER_YEAR: Partial<Record<Bar["interval"], number>> = { "1d": 252, "1w": 52, "1mo": 12 };
