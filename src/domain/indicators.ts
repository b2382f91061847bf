// Derived fields over a bar series: returns, volatility, moving averages, RSI, VWAP. Each is a
// pure function of the bars (oldest first, one series) returning one value per bar, null where
// the indicator is not defined yet (its warm-up) or cannot be (VWAP without volume).
import * as v from "valibot";
import type { Bar } from "./bar.ts";

export type Series = (number | null)[];

/** Simple return close[i] / close[i-1] - 1; null for the first bar. */
export function simpleReturn(bars: readonly Bar[]): Series {
  return bars.map((b, i) => (i === 0 ? null : b.close / bars[i - 1]!.close - 1));
}

/** Log return ln(close[i] / close[i-1]); null for the first bar. */
export function logReturn(bars: readonly Bar[]): Series {
  return bars.map((b, i) => (i === 0 ? null : Math.log(b.close / bars[i - 1]!.close)));
}

/**
 * Rolling volatility: the sample standard deviation (n - 1 in the denominator) of the last `n`
 * log returns, so first defined at bar n (it needs n + 1 closes). `annualise` multiplies by
 * √periodsPerYear (252 trading days for daily bars: vol × √252; 52 weekly, 12 monthly).
 */
export function volatility(bars: readonly Bar[], n: number, periodsPerYear?: number): Series {
  if (!(Number.isInteger(n) && n >= 2)) throw new RangeError("volatility needs a window of at least 2 returns");
  const r = logReturn(bars);
  const scale = periodsPerYear === undefined ? 1 : Math.sqrt(periodsPerYear);
  return bars.map((_, i) => {
    if (i < n) return null;
    let mean = 0;
    for (let j = i - n + 1; j <= i; j++) mean += r[j]!;
    mean /= n;
    let ss = 0;
    for (let j = i - n + 1; j <= i; j++) ss += (r[j]! - mean) ** 2;
    return Math.sqrt(ss / (n - 1)) * scale;
  });
}

/** Simple moving average of the last `n` closes; first defined at bar n - 1. */
export function sma(bars: readonly Bar[], n: number): Series {
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError("sma needs a window of at least 1");
  let sum = 0;
  return bars.map((b, i) => {
    sum += b.close;
    if (i >= n) sum -= bars[i - n]!.close;
    return i >= n - 1 ? sum / n : null;
  });
}

/**
 * Exponential moving average with α = 2 / (n + 1), seeded with the SMA of the first n closes
 * (so first defined at bar n - 1, equal to sma there): ema[i] = α·close[i] + (1 - α)·ema[i-1].
 */
export function ema(bars: readonly Bar[], n: number): Series {
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError("ema needs a window of at least 1");
  const alpha = 2 / (n + 1);
  const out: Series = [];
  let prev = 0;
  for (let i = 0; i < bars.length; i++) {
    const c = bars[i]!.close;
    if (i < n - 1) {
      prev += c;
      out.push(null);
    } else if (i === n - 1) {
      prev = (prev + c) / n;
      out.push(prev);
    } else {
      prev = alpha * c + (1 - alpha) * prev;
      out.push(prev);
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
export function rsi(bars: readonly Bar[], n: number): Series {
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError("rsi needs a window of at least 1");
  const out: Series = bars.length > 0 ? [null] : [];
  let gain = 0;
  let loss = 0;
  for (let i = 1; i < bars.length; i++) {
    const d = bars[i]!.close - bars[i - 1]!.close;
    const g = d > 0 ? d : 0;
    const l = d < 0 ? -d : 0;
    if (i <= n) {
      gain += g;
      loss += l;
      if (i < n) {
        out.push(null);
        continue;
      }
      gain /= n;
      loss /= n;
    } else {
      gain = (gain * (n - 1) + g) / n;
      loss = (loss * (n - 1) + l) / n;
    }
    out.push(loss === 0 ? (gain === 0 ? 50 : 100) : 100 - 100 / (1 + gain / loss));
  }
  return out;
}

/**
 * Volume-weighted average price per session: Σ typical·volume / Σ volume over the session's bars
 * so far, typical = (high + low + close) / 3. `sessionOf` names a bar's session (for intraday
 * bars its exchange date); by default each bar is its own (daily bars: VWAP = typical price).
 * Bars with no volume add nothing; null until the session has traded some volume.
 */
export function vwap(bars: readonly Bar[], sessionOf: (b: Bar) => string | number = (b) => b.ts): Series {
  let session: string | number | undefined;
  let pv = 0;
  let vol = 0;
  return bars.map((b) => {
    const s = sessionOf(b);
    if (s !== session) {
      session = s;
      pv = 0;
      vol = 0;
    }
    if (b.volume > 0) {
      pv += ((b.high + b.low + b.close) / 3) * b.volume;
      vol += b.volume;
    }
    return vol > 0 ? pv / vol : null;
  });
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
  const out: Record<string, Series> = {};
  for (const s of specs) {
    if (s.kind === "ret") out[s.key] = simpleReturn(bars);
    else if (s.kind === "logret") out[s.key] = logReturn(bars);
    else if (s.kind === "vwap") out[s.key] = vwap(bars, opts.sessionOf);
    else if (s.kind === "sma") out[s.key] = sma(bars, s.n);
    else if (s.kind === "ema") out[s.key] = ema(bars, s.n);
    else if (s.kind === "rsi") out[s.key] = rsi(bars, s.n);
    else {
      if (s.annualised && opts.periodsPerYear === undefined) throw new RangeError(`${s.key}: annualised volatility needs daily, weekly or monthly bars`);
      out[s.key] = volatility(bars, s.n, s.annualised ? opts.periodsPerYear : undefined);
    }
  }
  return out;
}

/** Periods per year used to annualise: 252 sessions, 52 weeks, 12 months; none for intraday. */
export const PERIODS_PER_YEAR: Partial<Record<Bar["interval"], number>> = { "1d": 252, "1w": 52, "1mo": 12 };
