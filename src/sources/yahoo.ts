// Yahoo Finance v8 chart API: `timestamp[]` with `indicators.quote[0]` arrays and
// `indicators.adjclose[0].adjclose`; errors come as `chart.error` ({code, description}).
// Corporate actions come with the bars (`events=div,splits`): `events.dividends` and
// `events.splits`, objects keyed by the ex-date's session-open timestamp, {date, amount} and
// {date, numerator, denominator, splitRatio}. Yahoo's `close` (and volume, and dividend amounts)
// are already adjusted for every split up to now; ticksync stores raw bars and adjusts on read,
// so those splits are taken out again here, which is why history is always asked up to now.
// `meta` names the listing (longName, exchange, currency, instrumentType): the instrument.
// Latest quotes (mode = "quote"): the same chart with `range=1d&interval=1d`, one symbol per
// request; its last entry is the current (or last) session's bar, its close the latest price.
// Intraday (1m, 2m, 5m, 15m, 30m, 60m): Yahoo keeps a short look-back per interval and caps 1m
// requests at 7 days; older ranges are answered 422 "Unprocessable Entity". Ranges are clipped to the look-back
// and asked in windows it accepts; intraday rows are bars' open instants (UTC), as Yahoo sends them,
// pre-market and after-hours bars included only with sessions = "extended" (includePrePost=true).
import type { Interval, RawRow } from "../domain/bar.ts";
import { log } from "../lib/log.ts";
import { providerSpelling } from "../domain/symbols.ts";
import { MARKET_TIMEZONES } from "../domain/calendar.ts";
import { ProviderError, parseJsonBody } from "../lib/http.ts";
import { sessionsEntry, type Sessions } from "./sessions.ts";
import { NO_DATA_SPAN_MS, dateInZone, isInstant, knownZone, providerCall, providerDescriptor, type FetchRequest, type ProviderImpl, type ProviderPage, type QuoteRequest } from "./provider.ts";

type Chart = {
  chart?: {
    result?: {
      meta?: {
        exchangeTimezoneName?: string;
        symbol?: string;
        currency?: string;
        exchangeName?: string;
        fullExchangeName?: string;
        instrumentType?: string;
        longName?: string;
        shortName?: string;
      };
      timestamp?: number[];
      events?: {
        dividends?: Record<string, { date?: number; amount?: number }>;
        splits?: Record<string, { date?: number; numerator?: number; denominator?: number; splitRatio?: string }>;
      };
      indicators?: { quote?: Record<string, (number | null)[]>[]; adjclose?: { adjclose?: (number | null)[] }[] };
    }[] | null;
    error?: { code?: string; description?: string } | null;
  };
};

/**
 * Yahoo keeps prices as 32-bit floats, so 185.64 arrives as 185.63999938964844. The shortest
 * decimal that is the same float32 is the price that was published.
 */
export function fromFloat32(x: number | null | undefined): number | null | undefined {
  if (typeof x !== "number" || !Number.isFinite(x)) return x;
  const f = Math.fround(x);
  if (f !== x) return x; // not a float32 value: leave it as it came
  for (let d = 0; d <= 8; d++) {
    const r = Number(x.toFixed(d));
    if (Math.fround(r) === f) return r;
  }
  return x;
}

function chartResult(res: Response, body: string, providerSymbol: string) {
  const json = parseJsonBody(body, `yahoo ${providerSymbol}`) as Chart;
  const error = json.chart?.error;
  if (error || !res.ok) {
    const text = `yahoo ${providerSymbol}: ${error?.code ?? `HTTP ${res.status}`}${error?.description ? `: ${error.description}` : ""}`;
    if (res.status === 404 || error?.code === "Not Found") throw new ProviderError(text, "not_found", { status: res.status });
    if (res.status === 401 || res.status === 403) throw new ProviderError(text, "auth", { status: res.status });
    // HTTP 422 {"code": "Unprocessable Entity", "description": "1m data not available for startTime=… The
    // requested range must be within the last 30 days."}: beyond the interval's look-back; asking again won't help.
    if (res.status === 422 || error?.code === "Unprocessable Entity") throw new ProviderError(text, "no_data", { status: res.status, retryable: false });
    // HTTP 400 {"code": "Bad Request", "description": "Data doesn't exist for startDate = …, endDate = …"}:
    // the symbol has no bars in the period (delisted, not listed yet), not a bad request of ours.
    if (/data doesn.t exist/i.test(error?.description ?? "")) throw new ProviderError(text, "no_data", { status: res.status });
    throw new ProviderError(text, "client_error", { status: res.status });
  }
  const result = json.chart?.result?.[0];
  if (!result || typeof result !== "object") throw new ProviderError(`yahoo ${providerSymbol}: no chart result in the response`, "bad_response", { retryable: true });
  // A hostile or broken body: entries may be anything, but the arrays must be arrays.
  if (result.timestamp != null && !Array.isArray(result.timestamp)) throw new ProviderError(`yahoo ${providerSymbol}: timestamp is not a list`, "bad_response", { retryable: true });
  return result;
}

/** One chart call (history or the latest session), its answer checked by chartResult. */
function chartCall(req: FetchRequest | QuoteRequest, url: string, providerSymbol: string) {
  return providerCall(req, url, (res, body) => chartResult(res, body, providerSymbol), { accept: "application/json" });
}

const text = (x: unknown) => (typeof x === "string" ? x : null);

/** The chart's quote arrays (open, high, …); a field that is not a list counts as absent (entries may still be anything: fromFloat32 and the rules take care of them). */
function quoteOf(chart: ReturnType<typeof chartResult>): Record<string, (number | null)[]> {
  const q: unknown = chart.indicators?.quote?.[0];
  const out: Record<string, (number | null)[]> = {};
  if (q && typeof q === "object") for (const k of ["open", "high", "low", "close", "volume"]) if (Array.isArray((q as any)[k])) out[k] = (q as any)[k];
  return out;
}

type Cell = number | null | undefined;
type ChartBar = { i: number; t: number; open: Cell; high: Cell; low: Cell; close: Cell; volume: Cell };

/**
 * A chart's entries as bars, in order. Yahoo pads its arrays with all-null entries where it had no
 * trade: no bar, not a broken one, so skipped (a partly null entry is broken: the quarantine says
 * so). An entry whose timestamp is no time still makes a row, pushed onto `rows` for the
 * quarantine (rule ts).
 */
function* chartBars(req: FetchRequest, chart: ReturnType<typeof chartResult>, rows: RawRow[]): Generator<ChartBar> {
  const ts: unknown[] = chart.timestamp ?? [];
  const q = quoteOf(chart);
  for (let i = 0; i < ts.length; i++) {
    const [open, high, low, close, volume] = [q.open?.[i], q.high?.[i], q.low?.[i], q.close?.[i], q.volume?.[i]];
    if (open == null && high == null && low == null && close == null) continue;
    const t = (ts[i] as number) * 1000;
    if (isInstant(t)) yield { i, t, open, high, low, close, volume };
    else rows.push({ locator: `yahoo:${req.providerSymbol}:#${i}`, fields: { symbol: req.symbol, ts: String(ts[i]), open, high, low, close, volume: volume ?? "" } });
  }
}

/** Prices to 8 decimals: undoing a split must not leave 125.85750000000002 behind. */
const roundPrice = (x: number) => Number(x.toFixed(8));

type YahooEvents = NonNullable<NonNullable<NonNullable<Chart["chart"]>["result"]>[number]["events"]>;

/** Splits and dividends of a chart's `events`, by exchange date; malformed entries are left out. */
export function yahooEvents(events: YahooEvents | undefined, tz: string) {
  const splits: { date: string; numerator: number; denominator: number }[] = [];
  const dividends: { date: string; amount: number }[] = [];
  for (const [key, sp] of Object.entries(events?.splits ?? {})) {
    const t = typeof sp?.date === "number" ? sp.date : Number(key);
    if (!isInstant(t * 1000) || !(sp?.numerator! > 0) || !(sp?.denominator! > 0) || !Number.isFinite(sp.numerator! / sp.denominator!)) continue;
    splits.push({ date: dateInZone(t * 1000, tz), numerator: sp.numerator!, denominator: sp.denominator! });
  }
  for (const [key, d] of Object.entries(events?.dividends ?? {})) {
    const t = typeof d?.date === "number" ? d.date : Number(key);
    if (!isInstant(t * 1000) || !(d?.amount! > 0) || !Number.isFinite(d.amount)) continue;
    dividends.push({ date: dateInZone(t * 1000, tz), amount: fromFloat32(d.amount)! });
  }
  return { splits, dividends };
}

/** Yahoo's spelling of each interval ticksync loads from it. */
export const YAHOO_INTERVAL: Partial<Record<Interval, string>> = { "1m": "1m", "2m": "2m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "60m", "1d": "1d", "1w": "1wk", "1mo": "1mo" };
export const YAHOO_INTERVALS = Object.keys(YAHOO_INTERVAL) as Interval[];
const DAY = 86_400_000;
/** How far back Yahoo serves an intraday interval, and the longest range one request may ask (days). 1d, 1wk, 1mo: unlimited. */
export const YAHOO_LOOKBACK: Partial<Record<Interval, { days: number; windowDays: number }>> = {
  "1m": { days: 30, windowDays: 7 },
  "2m": { days: 60, windowDays: 60 },
  "5m": { days: 60, windowDays: 60 },
  "15m": { days: 60, windowDays: 60 },
  "30m": { days: 60, windowDays: 60 },
  "1h": { days: 730, windowDays: 730 },
};
/** Clipped starts stay this far inside the look-back, so a request sent a moment later is still accepted. */
const LOOKBACK_MARGIN_MS = 10 * 60_000;

function lookbackError(req: FetchRequest, interval: Interval, e: ProviderError): ProviderError {
  const { days, windowDays } = YAHOO_LOOKBACK[interval]!;
  const cap = windowDays < days ? `, at most ${windowDays} days per request` : "";
  return new ProviderError(`${e.message} (Yahoo's ${YAHOO_INTERVAL[interval]} bars reach back ${days} days only${cap})`, "no_data", {
    status: e.opts.status,
    retryable: false,
  });
}

/**
 * Intraday bars: [from, to] clipped to the interval's look-back (one warning when clipped), asked
 * in windows Yahoo accepts, one page per window. A range wholly beyond the look-back is asked once
 * as it is: Yahoo's 422 becomes a no_data failure naming the limit (not retried).
 */
async function* fetchIntraday(req: FetchRequest, interval: Interval, sessions: Sessions): AsyncIterable<ProviderPage> {
  const { days, windowDays } = YAHOO_LOOKBACK[interval]!;
  const earliest = Date.now() - days * DAY + LOOKBACK_MARGIN_MS;
  let from = req.from;
  if (from < earliest && req.to >= earliest) {
    log.warn(`yahoo ${req.providerSymbol}: ${YAHOO_INTERVAL[interval]} bars reach back ${days} days only; loading from ${new Date(earliest).toISOString()} instead of ${new Date(from).toISOString()}`);
    from = earliest;
  }
  let lastNoData: ProviderError | null = null;
  let any = false;
  for (let a = from; a <= req.to; ) {
    // period2 is rounded up to a second: the window stays a second short of its limit.
    const b = Math.min(a + windowDays * DAY - 1000, req.to + 1);
    const url =
      `${req.baseUrl}/v8/finance/chart/${encodeURIComponent(req.providerSymbol)}?period1=${Math.floor(a / 1000)}` +
      `&period2=${Math.ceil(b / 1000)}&interval=${YAHOO_INTERVAL[interval]}&includePrePost=${sessions === "extended"}`;
    let chart: ReturnType<typeof chartResult>;
    try {
      chart = await chartCall(req, url, req.providerSymbol);
    } catch (e) {
      if (!(e instanceof ProviderError) || e.failure !== "no_data") throw e;
      if (e.opts.status === 422) throw lookbackError(req, interval, e);
      // No bars in this window (a weekend, a holiday): the other windows may have some.
      lastNoData = e;
      a = b;
      continue;
    }
    const page = intradayPage(req, chart, a, b);
    any ||= page.rows.length > 0;
    yield page;
    a = b;
  }
  if (!any && lastNoData && req.to - req.from >= NO_DATA_SPAN_MS) throw lastNoData;
}

/** One window's intraday rows: ts = the bar's open instant in UTC (Yahoo's epoch seconds), prices as Yahoo sends them. */
function intradayPage(req: FetchRequest, chart: ReturnType<typeof chartResult>, from: number, end: number): ProviderPage {
  const rows: RawRow[] = [];
  for (const { t, open, high, low, close, volume } of chartBars(req, chart, rows)) {
    if (t < from || t >= end || t < req.from || t > req.to) continue;
    const iso = new Date(t).toISOString();
    rows.push({
      locator: `yahoo:${req.providerSymbol}:${iso}`,
      fields: { symbol: req.symbol, ts: iso, open: fromFloat32(open), high: fromFloat32(high), low: fromFloat32(low), close: fromFloat32(close), volume: volume ?? "" },
    });
  }
  return { rows };
}

export const yahooImpl: ProviderImpl = {
  providerSymbol: (ticker, market) => providerSpelling("yahoo", ticker, market),
  async *fetchDaily(req) {
    const interval = req.interval ?? "1d";
    if (YAHOO_LOOKBACK[interval]) return yield* fetchIntraday(req, interval, "regular");
    // Up to now, whatever `to` is: every split after a bar must be in the events to undo it.
    // From a day early: Yahoo stamps a daily bar with its session's open, which east of UTC
    // (Sydney 10:00, a currency's London midnight in summer) falls on the UTC day before its date.
    const url =
      `${req.baseUrl}/v8/finance/chart/${encodeURIComponent(req.providerSymbol)}?period1=${Math.floor(req.from / 1000) - 86_400}` +
      `&period2=${Math.max(Math.floor(req.to / 1000) + 86_400, Math.floor(Date.now() / 1000))}&interval=${YAHOO_INTERVAL[interval]}&events=div%2Csplits&includeAdjustedClose=true`;
    let chart: ReturnType<typeof chartResult>;
    try {
      chart = await chartCall(req, url, req.providerSymbol);
    } catch (e) {
      // As with the other providers: no bars over a few days (a weekend) is just nothing new.
      if (e instanceof ProviderError && e.failure === "no_data" && req.to - req.from < NO_DATA_SPAN_MS) return;
      throw e;
    }
    const adj = chart.indicators?.adjclose?.[0]?.adjclose;
    const tz = knownZone(chart.meta?.exchangeTimezoneName, MARKET_TIMEZONES[req.market]);
    const { splits, dividends } = yahooEvents(chart.events, tz);
    // Yahoo's split-adjusted values times the ratios of the splits after them: the raw ones.
    const unsplit = (date: string) => {
      let k = 1;
      for (const sp of splits) if (sp.date > date) k *= sp.numerator / sp.denominator;
      return k;
    };
    const raw = (x: number | null | undefined, k: number) => (typeof x === "number" && k !== 1 ? roundPrice(x * k) : x);
    const actions: NonNullable<ProviderPage["actions"]> = [];
    for (const sp of splits)
      actions.push({ symbol: req.symbol, type: "split", exDate: Date.parse(sp.date), numerator: sp.numerator, denominator: sp.denominator, amount: null, currency: null, payDate: null });
    for (const d of dividends)
      actions.push({ symbol: req.symbol, type: "dividend", exDate: Date.parse(d.date), numerator: null, denominator: null, amount: roundPrice(d.amount * unsplit(d.date)), currency: chart.meta?.currency ?? null, payDate: null });
    const m = chart.meta;
    const instrument: ProviderPage["instrument"] =
      m && typeof m === "object"
        ? { symbol: req.symbol, name: text(m.longName) ?? text(m.shortName), exchange: text(m.fullExchangeName) ?? text(m.exchangeName), currency: text(m.currency), type: text(m.instrumentType), sector: null, industry: null, isin: null }
        : undefined;
    const rows: RawRow[] = [];
    for (const { i, t, open, high, low, close, volume } of chartBars(req, chart, rows)) {
      const date = dateInZone(t, tz);
      if (Date.parse(date) < req.from || Date.parse(date) > req.to) continue;
      const k = unsplit(date);
      rows.push({
        locator: `yahoo:${req.providerSymbol}:${date}`,
        fields: {
          symbol: req.symbol,
          ts: date,
          open: raw(fromFloat32(open), k),
          high: raw(fromFloat32(high), k),
          low: raw(fromFloat32(low), k),
          close: raw(fromFloat32(close), k),
          volume: volume == null ? "" : k !== 1 && typeof volume === "number" ? Math.round(volume / k) : volume,
          // Yahoo's own adjusted close, as published (relative to now): kept for comparison.
          adjClose: fromFloat32(adj?.[i]) ?? undefined,
        },
      });
    }
    // Actions outside the range asked for are stored too: they are facts whichever bars are read.
    yield { rows, actions, instrument };
  },
};

yahooImpl.quotes = {
  batch: 1,
  async fetch(req) {
    const { symbol, providerSymbol, market } = req.symbols[0]!;
    const url = `${req.baseUrl}/v8/finance/chart/${encodeURIComponent(providerSymbol)}?range=1d&interval=1d&includePrePost=false`;
    const chart = await chartCall(req, url, providerSymbol);
    const ts = chart.timestamp ?? [];
    const q = quoteOf(chart);
    const tz = knownZone(chart.meta?.exchangeTimezoneName, MARKET_TIMEZONES[market]);
    // The newest entry with prices; none (before the first trade of a listing) is no bar yet.
    for (let i = ts.length - 1; i >= 0; i--) {
      const [open, high, low, close, volume] = [q.open?.[i], q.high?.[i], q.low?.[i], q.close?.[i], q.volume?.[i]];
      if (open == null && high == null && low == null && close == null) continue;
      if (!isInstant((ts[i] as unknown as number) * 1000)) continue; // no time: not the latest quote
      const date = dateInZone(ts[i]! * 1000, tz);
      const fields = { symbol, ts: date, open: fromFloat32(open), high: fromFloat32(high), low: fromFloat32(low), close: fromFloat32(close), volume: volume ?? "" };
      return { rows: [{ locator: `yahoo:quote:${providerSymbol}:${date}`, fields }], missing: [] };
    }
    return { rows: [], missing: [] };
  },
};

/** Yahoo with pre-market and after-hours intraday bars too (sessions = "extended": includePrePost=true). */
const yahooExtendedImpl: ProviderImpl = {
  ...yahooImpl,
  fetchDaily(req) {
    const interval = req.interval ?? "1d";
    return YAHOO_LOOKBACK[interval] ? fetchIntraday(req, interval, "extended") : yahooImpl.fetchDaily(req);
  },
};

export const yahooDescriptor = providerDescriptor({
  type: "yahoo",
  summary: "Yahoo Finance bars (1m, 2m, 5m, 15m, 30m, 1h, 1d, 1w, 1mo; daily and longer with splits and dividends), or its latest quotes",
  defaults: { baseUrl: "https://query1.finance.yahoo.com", rateLimit: { perSecond: 2 }, concurrency: 4, symbols: ["AAPL.US", "MSFT.US"] },
  intervals: YAHOO_INTERVALS,
  entries: sessionsEntry,
  impl: (cfg) => (cfg.sessions === "extended" ? yahooExtendedImpl : yahooImpl),
});
