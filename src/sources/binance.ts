// Binance spot klines, keyless: `GET /api/v3/klines?symbol=BTCUSDT&interval=1m&startTime=&endTime=
// &limit=1000` → an array of [openTime, open, high, low, close, volume, closeTime, quoteVolume,
// trades, takerBase, takerQuote, ignore], prices and volumes as strings, times in UTC ms; a bar's
// ts is its openTime. Pages follow on from the last open time plus one interval, 1,000 klines each.
// Limits are by request weight per IP (klines weigh 2): every answer says the weight used this
// minute (X-MBX-USED-WEIGHT-1M), and near the limit every caller of the shared limiter waits for
// the next minute; 429 (Retry-After) pauses everyone and retries; 418 is an IP ban: no call at all
// until Retry-After ends, every symbol failing with one line. Errors come as {code, msg}
// (-1121 "Invalid symbol."). A kline whose closeTime is ahead is in progress: stored like the
// current session's bar of a quote poll, and rewritten by the next read (the overlap re-reads it).
// mode = "live": the WebSocket kline stream (binance-live.ts). See docs/sources.md, Binance.
import * as v from "valibot";
import { INTERVAL_MS, type Interval, type RawRow } from "../domain/bar.ts";
import { isIntraday } from "../domain/rollup.ts";
import { normaliseSymbol, providerSpelling } from "../domain/symbols.ts";
import { DEFAULT_RETRY, ProviderError, parseJsonBody, retryAfterMs } from "../lib/http.ts";
import { NO_DATA_SPAN_MS, isInstant, providerCall, providerDescriptor, providerSource, providerSymbols, sharedLimiter, type FetchRequest, type ProviderConfig, type ProviderImpl } from "./provider.ts";
import { LIVE_DEFAULTS, binanceLiveSource, liveOptionsSchema, nextOpen, type KlinePage, type LiveSymbol } from "./binance-live.ts";
import { SourceError } from "./types.ts";

/** Binance's spelling of each interval ticksync has (Binance also has 1s 3m 30m 2h 4h 6h 8h 12h 3d). */
export const BINANCE_INTERVAL: Partial<Record<Interval, string>> = { "1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1h", "4h": "4h", "1d": "1d", "1w": "1w", "1mo": "1M" };
export const BINANCE_INTERVALS = Object.keys(BINANCE_INTERVAL) as Interval[];

/** Klines per request: Binance's maximum. */
export const KLINES_PAGE = 1000;
/** The spot REQUEST_WEIGHT limit per minute and IP that exchangeInfo lists today (it was 1,200 before 2023). */
export const DEFAULT_WEIGHT_PER_MINUTE = 6000;
/** Share of the weight limit at which every caller waits for the next window. */
export const WEIGHT_SLOWDOWN_AT = 0.9;
/** A 418 without Retry-After: Binance's shortest ban. */
const DEFAULT_BAN_MS = 120_000;

export type BinanceOptions = {
  weightPerMinute: number;
  /** Length of Binance's weight window (a minute; tests shorten it). */
  weightWindowMs?: number;
};

type BinanceError = { code?: number; msg?: string };

/** Binance's weight header: near the limit, every caller of this provider waits for the next window. */
function watchWeight(res: Response, req: Pick<FetchRequest, "limiter">, o: BinanceOptions): void {
  const used = Number(res.headers.get("x-mbx-used-weight-1m"));
  if (!Number.isFinite(used) || used < o.weightPerMinute * WEIGHT_SLOWDOWN_AT) return;
  const window = o.weightWindowMs ?? 60_000;
  // The window is a fixed one: it starts again on the next whole window (a minute).
  const wait = window - (Date.now() % window) + Math.min(250, window / 10);
  req.limiter.throttled(wait, `request weight ${used} of ${o.weightPerMinute} used this minute`);
}

/** The time a 418 ban ends: Retry-After, else the "banned until <ms>" of its message, else the shortest ban. */
function banMs(res: Response, msg: string | undefined): number {
  const after = retryAfterMs(res.headers.get("retry-after"));
  if (after !== undefined) return Math.max(after, 1000);
  const until = /until (\d{12,14})/.exec(msg ?? "");
  return until ? Math.max(Number(until[1]) - Date.now(), 1000) : DEFAULT_BAN_MS;
}

/** One answer of /api/v3/klines: the klines, or its error classified (the weight header read either way). */
function klinesOf(res: Response, body: string, req: FetchRequest, o: BinanceOptions): unknown[] {
  watchWeight(res, req, o);
  const what = `binance ${req.providerSymbol}`;
  if (!res.ok) {
    let err: BinanceError = {};
    try {
      err = JSON.parse(body) as BinanceError;
    } catch {
      /* not JSON (a proxy's page): the status says it */
    }
    const msg = `${what}: HTTP ${res.status}${typeof err?.code === "number" ? ` (code ${err.code})` : ""}${typeof err?.msg === "string" ? `: ${err.msg.slice(0, 200)}` : ""}`;
    if (res.status === 418) {
      const ms = banMs(res, err?.msg);
      throw new ProviderError(`${msg}; IP banned for ${Math.ceil(ms / 1000)} s`, "rate_limited", { status: 418, quotaExhaustedForMs: ms });
    }
    if (err?.code === -1121) throw new ProviderError(msg, "not_found", { status: res.status });
    if (res.status === 403) throw new ProviderError(`${msg} (refused by Binance's firewall)`, "client_error", { status: 403 });
    throw new ProviderError(msg, "client_error", { status: res.status });
  }
  const json = parseJsonBody(body, what);
  if (!Array.isArray(json)) throw new ProviderError(`${what}: the klines are not a list`, "bad_response", { retryable: true });
  return json;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** A kline's row: intraday ts its open instant, daily and longer its UTC date (Binance's days are UTC days). */
export function klineRow(symbol: string, providerSymbol: string, k: unknown, i: number, daily: boolean): RawRow {
  const a: unknown[] = Array.isArray(k) ? k : [];
  const t = a[0];
  const ts = isInstant(t) ? (daily ? iso(t).slice(0, 10) : iso(t)) : String(t);
  return {
    locator: `binance:${providerSymbol}:${isInstant(t) ? iso(t) : `#${i}`}`,
    fields: { symbol, ts, open: a[1], high: a[2], low: a[3], close: a[4], volume: a[5], turnover: a[7], trades: a[8] },
  };
}

/**
 * Klines of [from, to] in pages of 1,000, each with the open time of its newest closed kline (one
 * whose closeTime has passed). Bounded: never more pages than the range holds, and a page that
 * does not move forward is a broken answer.
 */
export async function* klinePages(req: FetchRequest, o: BinanceOptions): AsyncIterable<KlinePage> {
  const interval = req.interval ?? "1d";
  const spelled = BINANCE_INTERVAL[interval];
  if (!spelled) throw new ProviderError(`binance has no ${interval} klines`, "client_error");
  const daily = !isIntraday(interval);
  let start = req.from;
  if (start > req.to) return;
  const maxPages = Math.ceil((req.to - start + 1) / (KLINES_PAGE * INTERVAL_MS[interval])) + 2;
  for (let page = 1; start <= req.to; page++) {
    if (page > maxPages) throw new ProviderError(`binance ${req.providerSymbol}: more pages than ${iso(req.from)}..${iso(req.to)} holds`, "bad_response");
    const url = `${req.baseUrl}/api/v3/klines?symbol=${encodeURIComponent(req.providerSymbol)}&interval=${spelled}&startTime=${start}&endTime=${req.to}&limit=${KLINES_PAGE}`;
    const klines = await providerCall(req, url, (res, body) => klinesOf(res, body, req, o), { accept: "application/json" });
    // An empty answer over a week or more: a pair that did not trade (delisted, not listed yet).
    if (page === 1 && klines.length === 0 && req.to - req.from >= NO_DATA_SPAN_MS)
      throw new ProviderError(`binance ${req.providerSymbol}: no klines in ${iso(req.from)}..${iso(req.to)} (not trading)`, "no_data");
    const now = Date.now();
    const rows: RawRow[] = new Array(klines.length);
    let closedTs: number | null = null;
    for (let i = 0; i < klines.length; i++) {
      const k = klines[i] as unknown[];
      rows[i] = klineRow(req.symbol, req.providerSymbol, k, i, daily);
      if (Array.isArray(k) && isInstant(k[0]) && isInstant(k[6]) && k[6] < now && (closedTs === null || k[0] > closedTs)) closedTs = k[0];
    }
    yield { rows, closedTs };
    if (klines.length < KLINES_PAGE) return;
    const last = (klines.at(-1) as unknown[] | undefined)?.[0];
    if (!isInstant(last) || last < start) throw new ProviderError(`binance ${req.providerSymbol}: a full page that does not move forward`, "bad_response");
    start = nextOpen(last, interval);
  }
}

export function binanceImpl(o: BinanceOptions): ProviderImpl {
  return {
    providerSymbol: (ticker, market) => providerSpelling("binance", ticker, market),
    async *fetchDaily(req) {
      for await (const page of klinePages(req, o)) yield page.rows;
    },
  };
}

const Int = (min: number, max: number, text: string) => v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max), v.description(text));

/** Binance's config fields beyond every provider's. */
const binanceEntries = {
  mode: v.optional(
    v.pipe(
      v.picklist(["history", "live"], "expected history or live"),
      v.description(
        "history: klines from the last stored bar on (a kline still in progress is stored and rewritten by the next read). live: the WebSocket kline stream, closed and in-progress bars as they come, with a REST backfill of what was missed after every (re)connect; runs until stopped.",
      ),
    ),
    "history",
  ),
  weightPerMinute: v.optional(
    Int(10, 1_000_000, `Binance's request-weight limit per minute for this IP (exchangeInfo REQUEST_WEIGHT); at ${WEIGHT_SLOWDOWN_AT * 100}% of it used, every call waits for the next minute.`),
    DEFAULT_WEIGHT_PER_MINUTE,
  ),
  streamUrl: v.optional(
    v.pipe(v.string(), v.regex(/^wss?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/, "expected a ws:// or wss:// URL without a query"), v.description("The WebSocket stream root (mode = live); /stream?streams=… is added.")),
    "wss://stream.binance.com:9443",
  ),
  live: v.optional(liveOptionsSchema, {}),
};

type BinanceConfig = ProviderConfig & { weightPerMinute: number; streamUrl: string; live: Partial<typeof LIVE_DEFAULTS> };

/** Each symbol of a live source as Binance spells it; one it cannot spell stops the source at start. */
function liveSymbols(name: string, cfg: BinanceConfig, impl: ProviderImpl, ctx: Parameters<typeof providerSymbols>[2]): LiveSymbol[] {
  return providerSymbols(name, cfg, ctx).map((symbol) => {
    const n = normaliseSymbol(symbol);
    const providerSymbol = n.ok ? (cfg.symbolMap[n.symbol] ?? impl.providerSymbol(n.ticker, n.market)) : null;
    if (!n.ok || providerSymbol === null) throw new SourceError(`source ${name} (binance) has no data for symbols like ${symbol}`);
    return { symbol: n.symbol, providerSymbol, market: n.market };
  });
}

const base = providerDescriptor({
  type: "binance",
  summary: "Binance spot klines of crypto pairs (1m to 1mo, no key), by REST or live from its WebSocket stream",
  // Klines weigh 2: 10 calls a second is a third of today's weight limit, room for other clients on the IP.
  defaults: { baseUrl: "https://api.binance.com", rateLimit: { perSecond: 10 }, concurrency: 4, symbols: ["BTC-USDT.CRYPTO", "ETH-USDT.CRYPTO"] },
  intervals: BINANCE_INTERVALS,
  entries: binanceEntries,
  impl: (cfg) => binanceImpl({ weightPerMinute: cfg.weightPerMinute }),
});

/** A Binance source: the provider's history reads, or (mode = live) the kline stream over them. */
export function binanceSource(name: string, given: BinanceConfig, ctx: Parameters<typeof providerSymbols>[2] = {}, o: BinanceOptions = { weightPerMinute: given.weightPerMinute }) {
  // Binance lists crypto pairs only: a bare BTCUSDT is one.
  const cfg: BinanceConfig = { ...given, market: given.market ?? "CRYPTO" };
  const impl = binanceImpl(o);
  const history = providerSource(name, { ...cfg, mode: "history" }, impl, ctx);
  if ((cfg.mode as string) !== "live") return history;
  const retry = { ...DEFAULT_RETRY, ...cfg.retry };
  const request = { limiter: sharedLimiter(cfg), retry, timeoutMs: cfg.timeoutMs, baseUrl: cfg.baseUrl.replace(/\/+$/, ""), signal: ctx.signal };
  return binanceLiveSource(name, {
    interval: cfg.interval,
    spelled: BINANCE_INTERVAL[cfg.interval]!,
    start: Date.parse(cfg.start),
    streamUrl: cfg.streamUrl.replace(/\/+$/, ""),
    options: { ...LIVE_DEFAULTS, ...cfg.live },
    history,
    signal: ctx.signal,
    symbols: () => liveSymbols(name, cfg, impl, ctx),
    backfill: (s, from, to) => klinePages({ ...request, symbol: s.symbol, providerSymbol: s.providerSymbol, interval: cfg.interval, market: s.market, from, to, cursor: null }, o),
  });
}

export const binanceDescriptor: typeof base = {
  ...base,
  create: (name, cfg, _baseDir, ctx) => binanceSource(name, cfg as unknown as BinanceConfig, ctx),
};
