// Quality rules: turn raw rows into bars or into rejections with a rule name and a reason a
// person can read. Each batch gets a score 0..1 and the rule counts behind it.
import * as v from "valibot";
import { BarSchema, type Bar, type Interval, type RawRow } from "./bar.ts";
import { calendarCoverage, tradingDaysBetween } from "./calendar.ts";
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
};

const REQUIRED = ["symbol", "ts", "open", "high", "low", "close"] as const;
const NUMERIC = ["open", "high", "low", "close", "volume", "adjClose", "turnover", "trades"] as const;
const OPTIONAL_NUMERIC = new Set(["adjClose", "turnover", "trades"]);
const PRICE_FIELDS = new Set(["open", "high", "low", "close", "adjClose"]);

const isEmpty = (x: unknown) => x === undefined || x === null || (typeof x === "string" && x.trim() === "");

function toNumber(x: unknown): number {
  if (typeof x === "number") return x;
  if (typeof x === "bigint") return Number(x);
  if (typeof x === "string") {
    const s = x.trim();
    // Number("") is 0 and Number("0x10") is 16: neither is a price.
    return s === "" || /^[+-]?0x/i.test(s) ? NaN : Number(s);
  }
  return NaN;
}

function reject(row: RawRow, rule: Rule, reason: string, extra?: { symbol?: string; ts?: number }): Rejection {
  return { locator: row.locator, rule, reason, raw: row.fields, ...extra };
}

/** Validate one row; returns the bar or the first rule it breaks. */
export function validateRow(row: RawRow, ctx: ValidateContext): Bar | Rejection {
  const f = row.fields;
  for (const name of REQUIRED) if (isEmpty(f[name])) return reject(row, "required", `${name} is missing`);
  const sym = normaliseSymbol(String(f.symbol), ctx.market);
  if (!sym.ok) return reject(row, "symbol", sym.reason);
  const ts = parseTimestamp(f.ts, ctx.tsFormat, ctx.timeZone);
  if (ts === null) return reject(row, "timestamp", `ts ${JSON.stringify(f.ts)} is not a valid timestamp`, { symbol: sym.symbol });
  const interval = ctx.interval;
  const barTs = interval === "1d" || interval === "1w" || interval === "1mo" ? floorUtcDay(ts) : ts;
  const now = ctx.now ?? Date.now();
  if (barTs > now + (ctx.futureToleranceMs ?? 60_000))
    return reject(row, "future", `ts ${new Date(barTs).toISOString()} is in the future`, { symbol: sym.symbol, ts: barTs });

  const nums: Record<string, number | null> = {};
  for (const name of NUMERIC) {
    const x = f[name];
    if (isEmpty(x)) {
      if (OPTIONAL_NUMERIC.has(name)) nums[name] = null;
      else if (name === "volume") {
        // A layout without a volume column (indices) yields undefined: no volume is 0 volume.
        // A volume column with an empty cell is a hole in the data.
        if (x === undefined) nums[name] = 0;
        else return reject(row, "required", "volume is empty", { symbol: sym.symbol, ts: barTs });
      }
      continue;
    }
    const n = toNumber(x);
    if (Number.isNaN(n)) return reject(row, "number", `${name} ${typeof x === "string" ? JSON.stringify(x) : String(x)} is not a number`, { symbol: sym.symbol, ts: barTs });
    nums[name] = n;
  }
  const candidate = {
    source: ctx.source,
    symbol: sym.symbol,
    interval,
    ts: barTs,
    open: nums.open,
    high: nums.high,
    low: nums.low,
    close: nums.close,
    volume: nums.volume,
    adjClose: nums.adjClose,
    turnover: nums.turnover,
    trades: nums.trades,
  };
  const parsed = v.safeParse(BarSchema, candidate);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const key = String(issue.path?.[0]?.key ?? "");
    const rule: Rule = PRICE_FIELDS.has(key) ? "price" : key === "volume" ? "volume" : "number";
    return reject(row, rule, `${issue.message} (got ${JSON.stringify(f[key] ?? issue.input)})`, { symbol: sym.symbol, ts: barTs });
  }
  const bar = parsed.output as Bar;
  const { open, high, low, close } = bar;
  if (high < Math.max(open, close, low))
    return reject(row, "high", `high ${high} is below max(open ${open}, close ${close}, low ${low})`, { symbol: bar.symbol, ts: barTs });
  if (low > Math.min(open, close, high))
    return reject(row, "low", `low ${low} is above min(open ${open}, close ${close}, high ${high})`, { symbol: bar.symbol, ts: barTs });
  return bar;
}

/** Validate a batch: row rules, duplicates within the batch, gaps against the exchange calendar. */
export function validateBatch(rows: RawRow[], ctx: ValidateContext): ValidatedBatch {
  const bars: Bar[] = [];
  const rejections: Rejection[] = [];
  const rules: Partial<Record<Rule, number>> = {};
  const seen = new Map<string, string>();
  const count = (rule: Rule, n = 1) => (rules[rule] = (rules[rule] ?? 0) + n);
  for (const row of rows) {
    const out = validateRow(row, ctx);
    if ("rule" in out) {
      rejections.push(out);
      count(out.rule);
      continue;
    }
    const key = `${out.symbol}\u0000${out.ts}`;
    const first = seen.get(key);
    if (first !== undefined) {
      rejections.push(reject(row, "duplicate", `duplicate of ${first} for ${out.symbol} at ${new Date(out.ts).toISOString()}`, { symbol: out.symbol, ts: out.ts }));
      count("duplicate");
      continue;
    }
    seen.set(key, row.locator);
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

/**
 * Daily gaps per symbol against its market's calendar. `lastTs` carries the newest bar per
 * symbol between batches (one number per symbol: constant in the file size) and is updated.
 */
export function findDailyGaps(bars: Bar[], lastTs: Map<string, number>): GapWarning[] {
  const bySymbol = new Map<string, number[]>();
  for (const b of bars) {
    let list = bySymbol.get(b.symbol);
    if (!list) bySymbol.set(b.symbol, (list = []));
    list.push(b.ts);
  }
  const warnings: GapWarning[] = [];
  for (const [symbol, list] of bySymbol) {
    const sym = normaliseSymbol(symbol);
    list.sort((a, b) => a - b);
    let prev = lastTs.get(symbol);
    for (const ts of list) {
      if (prev !== undefined && ts > prev && sym.ok) {
        const [after, before] = [utcDate(prev), utcDate(ts)];
        const cover = calendarCoverage(sym.market);
        if (after >= cover.from && before <= cover.to) {
          const missing = tradingDaysBetween(sym.market, after, before).length;
          if (missing > 0) warnings.push({ rule: "gap", symbol, interval: "1d", after, before, missing });
        }
      }
      if (prev === undefined || ts > prev) prev = ts;
    }
    if (prev !== undefined) lastTs.set(symbol, prev);
  }
  return warnings;
}
