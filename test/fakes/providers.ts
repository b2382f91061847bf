// One local HTTP server that answers like Stooq, Yahoo Finance (v8 chart), Polygon (v2 aggregates)
// and Alpha Vantage (TIME_SERIES_DAILY), plus their latest-quote endpoints (Stooq's light quote
// CSV, Polygon's stocks snapshot, Alpha Vantage's GLOBAL_QUOTE; Yahoo's is the chart with
// range=1d), where a symbol's latest quote is its last bar, in their real wire formats: bodies, status codes, error
// and rate-limit answers, quirks included (Stooq's 200 "No data", Polygon's 200 with no
// `results`, Alpha Vantage's 200 {"Note"}, Yahoo's float32 prices). Tests queue faults, set a
// server-side rate limit and read the request log to prove what a client did.
//
// It deliberately shares no code with src/: a time-zone or parsing bug in the client must not be
// reproduced by the fake that is meant to catch it.
import { rng } from "../../scripts/gen-demo.ts";

export type FakeBar = { date: string /* YYYY-MM-DD */; open: number; high: number; low: number; close: number; volume: number; adjClose: number };

export type Fault =
  | { kind: "429"; retryAfterSeconds?: number | null; times: number } // HTTP 429 + Retry-After (null: without one), in the provider's own 429 body
  | { kind: "polygon-not-authorized"; times: number } // Polygon 403 NOT_AUTHORIZED: the plan does not cover the data asked for
  | { kind: "polygon-delayed"; times: number } // Polygon's answer as usual, with status DELAYED (plans with delayed data)
  | { kind: "av-note"; times: number } // Alpha Vantage 200 {"Note": "...5 calls per minute..."}
  | { kind: "av-information"; times: number } // Alpha Vantage 200 {"Information": "...rate limit..."}, quoting the key it saw
  | { kind: "av-premium"; times: number } // Alpha Vantage 200 {"Information": "...This is a premium endpoint..."}
  | { kind: "stooq-limit"; times: number } // Stooq 200 "Exceeded the daily hits limit"
  | { kind: "5xx"; status?: 500 | 502 | 503; times: number } // default 500
  | { kind: "truncated"; times: number } // 200 with the real body cut in half
  | { kind: "hang"; times: number } // never answers, until the client aborts
  | { kind: "empty"; times?: number }; // a valid answer with no bars; without `times`, until reset()

export type ProviderName = "stooq" | "yahoo" | "polygon" | "alphavantage";

/** `at`: arrival, epoch ms; `mono`: arrival on the monotonic clock (performance.now()), for rates: the wall clock may be stepped mid-run. */
export type FakeRequest = { provider: string; path: string; query: Record<string, string>; at: number; mono: number; status: number };

export type FakeProviders = {
  /** Base URL, e.g. http://127.0.0.1:PORT; a client's base URL is `${url}/yahoo` etc. */
  url: string;
  /** Every request in arrival order. `path` is below the provider prefix (`/v8/finance/chart/AAPL`); status 0 while unanswered (hung). */
  requests: FakeRequest[];
  setBars(provider: ProviderName, symbol: string, bars: FakeBar[]): void;
  /**
   * Splits and dividends of a symbol. Yahoo: the chart's `events` when asked with events=div,splits
   * (amounts split-adjusted, as Yahoo gives them). Polygon: /v3/reference/splits and /dividends
   * (amounts as declared), and aggregates asked with adjusted=true get the splits taken into the
   * prices and volumes before them (the bars set are raw).
   */
  setEvents(provider: "yahoo" | "polygon", symbol: string, events: FakeEvents): void;
  /** `opts.path`: only requests whose path (below the provider prefix) starts with it get the fault. */
  fault(provider: string, symbol: string | "*", f: Fault, opts?: { path?: string }): void;
  rateLimit(provider: string, perSecond: number): void;
  violations(provider: string): number;
  reset(): void;
  stop(): Promise<void>;
};

export type FakeProvidersOptions = {
  /** Polygon's page size; a page holds min(limit, polygonPageSize) bars. Default 5000 (Polygon's default limit). */
  polygonPageSize?: number;
  /** Yahoo stores prices as float32 and prints them as doubles (185.64 → 185.63999938964844). Default true. */
  yahooFloat32?: boolean;
};

const PROVIDERS: readonly ProviderName[] = ["stooq", "yahoo", "polygon", "alphavantage"];
const isProvider = (p: string): p is ProviderName => (PROVIDERS as readonly string[]).includes(p);

// Each provider's own idea of symbol case: Stooq and Yahoo and Alpha Vantage ignore it, Polygon does not.
function symbolKey(provider: ProviderName, symbol: string): string {
  if (symbol === "*") return symbol;
  if (provider === "stooq") return symbol.toLowerCase();
  if (provider === "polygon") return symbol;
  return symbol.toUpperCase();
}

// ---------------------------------------------------------------------------------------------
// Time zones. Intl knows the history of DST rules; results are cached per day.

const dtfCache = new Map<string, Intl.DateTimeFormat>();
function offsetMinutes(timeZone: string, utcMs: number): number {
  let dtf = dtfCache.get(timeZone);
  if (!dtf) {
    dtf = new Intl.DateTimeFormat("en-US", { timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
    dtfCache.set(timeZone, dtf);
  }
  const p: Record<string, number> = {};
  for (const part of dtf.formatToParts(utcMs)) if (part.type !== "literal") p[part.type] = Number(part.value);
  const asUtc = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour! % 24, p.minute!, p.second!);
  return Math.round((asUtc - Math.floor(utcMs / 1000) * 1000) / 60_000);
}

const zonedCache = new Map<string, number>();
/** Epoch ms of local wall time `hh:mm` on `date` in `timeZone`. */
function zonedMs(date: string, hh: number, mm: number, timeZone: string): number {
  const key = `${timeZone} ${date} ${hh}:${mm}`;
  const hit = zonedCache.get(key);
  if (hit !== undefined) return hit;
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  const guess = Date.UTC(y, m - 1, d, hh, mm);
  let t = guess - offsetMinutes(timeZone, guess) * 60_000;
  const second = guess - offsetMinutes(timeZone, t) * 60_000;
  if (second !== t) t = second;
  zonedCache.set(key, t);
  return t;
}

// ---------------------------------------------------------------------------------------------
// Synthetic bars

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const round = (x: number, dp: number) => Math.round(x * 10 ** dp) / 10 ** dp;
const DAY_MS = 86_400_000;
const WALK_EPOCH = Date.UTC(1970, 0, 1);
const ADJ_REFERENCE = Date.UTC(2030, 0, 1);

/**
 * Daily bars for `symbol` from `from` to `to` (inclusive, YYYY-MM-DD), weekdays only unless
 * `weekdaysOnly: false`. Deterministic: a given symbol and date always get the same bar, whatever
 * the range asked for (the walk starts at a fixed epoch and steps over every calendar day).
 * Prices have 2 decimals and stay between ~10 and ~1000 (a mean-reverting walk); adjClose is close
 * times a dividend-like factor ≤ 1 (4 decimals); volume is a positive integer.
 */
export function syntheticBars(symbol: string, from: string, to: string, opts: { weekdaysOnly?: boolean } = {}): FakeBar[] {
  const weekdaysOnly = opts.weekdaysOnly ?? true;
  const start = Date.parse(`${from}T00:00:00Z`);
  const end = Date.parse(`${to}T00:00:00Z`);
  if (Number.isNaN(start) || Number.isNaN(end)) throw new Error(`syntheticBars: bad range ${from}..${to}`);
  const rand = rng(fnv1a(symbol));
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const base = Math.log(20 + rand() * 380);
  let dev = 0;
  let prevClose = Math.exp(base);
  const out: FakeBar[] = [];
  for (let t = Math.min(start, WALK_EPOCH); t <= end; t += DAY_MS) {
    // Every calendar day draws the same number of random values, so the output for a date does
    // not depend on weekdaysOnly or on the range.
    const [g1, g2, u1, u2, u3] = [gauss(), gauss(), rand(), rand(), rand()];
    dev = 0.995 * dev + 0.015 * g2;
    const open = Math.min(1000, Math.max(10, prevClose * (1 + 0.004 * g1)));
    const close = Math.min(1000, Math.max(10, Math.exp(base + dev)));
    prevClose = close;
    if (t < start) continue;
    const dow = new Date(t).getUTCDay();
    if (weekdaysOnly && (dow === 0 || dow === 6)) continue;
    const o = round(open, 2);
    const c = round(close, 2);
    const h = round(Math.max(o, c) * (1 + 0.012 * u1), 2);
    const l = round(Math.min(o, c) * (1 - 0.012 * u2), 2);
    const factor = Math.min(1, Math.exp((-0.015 * (ADJ_REFERENCE - t)) / (365.25 * DAY_MS)));
    out.push({
      date: new Date(t).toISOString().slice(0, 10),
      open: o,
      high: Math.max(h, o, c),
      low: Math.min(l, o, c),
      close: c,
      volume: Math.max(1, Math.round(Math.exp(13 + 1.2 * u3 + 0.3 * g1 * g1))),
      adjClose: round(c * factor, 4),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Shared bits

const requestId = () => crypto.randomUUID().replaceAll("-", "");
const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json; charset=utf-8", ...headers } });
const text = (body: string, status = 200, contentType = "text/plain; charset=utf-8", headers: Record<string, string> = {}) =>
  new Response(body, { status, headers: { "content-type": contentType, ...headers } });

const STATUS_TEXT: Record<number, string> = { 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable" };
// What a load balancer in front of any of them sends for 502/503.
const gatewayPage = (status: number) =>
  text(`<html>\r\n<head><title>${status} ${STATUS_TEXT[status]}</title></head>\r\n<body>\r\n<center><h1>${status} ${STATUS_TEXT[status]}</h1></center>\r\n</body>\r\n</html>\r\n`, status, "text/html");

const AV_NOTE =
  "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and 500 calls per day. Please visit https://www.alphavantage.co/premium/ if you would like to target a higher API call frequency.";
const AV_INFORMATION =
  "We have detected your API key as XXXX and our standard API rate limit is 25 requests per day. Please subscribe to any of the premium plans at https://www.alphavantage.co/premium/ to instantly remove all daily rate limits.";
const AV_PREMIUM =
  "Thank you for using Alpha Vantage! This is a premium endpoint. You may subscribe to any of the premium plans at https://www.alphavantage.co/premium/ to instantly unlock all premium endpoints";
const AV_MISSING_KEY =
  "the parameter apikey is invalid or missing. Please claim your free API key on (https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds.";
const avInvalidCall = (fn: string) => `Invalid API call. Please retry or visit the documentation (https://www.alphavantage.co/documentation/) for ${fn}.`;
const POLYGON_429 = "You've exceeded the maximum requests per minute, please wait or upgrade your subscription to continue. https://polygon.io/pricing";
const STOOQ_LIMIT = "Exceeded the daily hits limit";

// Alpha Vantage pretty-prints its JSON with four spaces.
const avJson = (body: unknown) => new Response(JSON.stringify(body, null, 4), { headers: { "content-type": "application/json" } });

function tooManyRequests(provider: ProviderName, retryAfterSeconds: number | null): Response {
  const headers: Record<string, string> = retryAfterSeconds === null ? {} : { "retry-after": String(retryAfterSeconds) };
  if (provider === "polygon") return json({ status: "ERROR", request_id: requestId(), error: POLYGON_429 }, 429, headers);
  return text("Too Many Requests", 429, "text/plain; charset=utf-8", headers);
}

/** What the provider answers when a client goes over its limit (for rateLimit()). */
function limitAnswer(provider: ProviderName): Response {
  if (provider === "stooq") return text(STOOQ_LIMIT, 200, "text/csv");
  if (provider === "alphavantage") return avJson({ Note: AV_NOTE });
  return tooManyRequests(provider, 1);
}

function serverError(provider: ProviderName, status: 500 | 502 | 503): Response {
  if (status !== 500) return gatewayPage(status);
  if (provider === "polygon") return json({ status: "ERROR", request_id: requestId(), error: "Internal Server Error" }, 500);
  if (provider === "yahoo") return json({ chart: { result: null, error: { code: "Internal Server Error", description: "Internal Server Error" } } }, 500);
  return gatewayPage(500);
}

/** Bars of a symbol as the handler sees them: undefined = unknown symbol. */
type Lookup = (symbol: string) => FakeBar[] | undefined;
/** Corporate actions a provider publishes for a symbol (Yahoo: the chart's `events`). Amounts as Yahoo gives them (split-adjusted). */
export type FakeEvents = { dividends?: { date: string; amount: number }[]; splits?: { date: string; numerator: number; denominator: number }[] };

// Polygon reference: GET /v3/reference/splits|dividends?ticker=&limit=&order=&sort= (and the date
// filters execution_date[.gte|.gt|.lte|.lt] / ex_dividend_date[...]), paged by a
// `next_url` carrying only `cursor`; GET /v3/reference/tickers/<T> (ticker details).
function polygonReference({ url, path, base, lookup, events }: Ctx, pageSize: number): Response {
  const q = url.searchParams;
  const details = /^\/v3\/reference\/tickers\/([^/]+)$/.exec(path);
  if (details) {
    const ticker = decodeURIComponent(details[1]!);
    if (!lookup(ticker)) return json({ status: "NOT_FOUND", request_id: requestId(), message: "Ticker not found." }, 404);
    return json({
      request_id: requestId(),
      results: {
        ticker,
        name: `${ticker} Holdings Inc. Common Stock`,
        market: "stocks",
        locale: "us",
        primary_exchange: "XNAS",
        type: "CS",
        active: true,
        currency_name: "usd",
        cik: "0000320193",
        composite_figi: "BBG000B9XRY4",
        share_class_figi: "BBG001S5N8V8",
        market_cap: 2_771_126_040_150,
        phone_number: "(408) 996-1010",
        description: "A fake listing.",
        sic_code: "3571",
        sic_description: "ELECTRONIC COMPUTERS",
        ticker_root: ticker,
        list_date: "1980-12-12",
        share_class_shares_outstanding: 16_406_400_000,
        weighted_shares_outstanding: 16_334_371_000,
        round_lot: 100,
      },
      status: "OK",
    });
  }
  const kind = path === "/v3/reference/splits" ? "splits" : path === "/v3/reference/dividends" ? "dividends" : null;
  if (!kind) return text("404 page not found", 404);
  let opts = q;
  const cursor = q.get("cursor");
  if (cursor) {
    opts = new URLSearchParams(Buffer.from(cursor, "base64url").toString("utf8"));
    if (!opts.has("offset")) return polygonError(400, "Invalid cursor");
  }
  const ticker = opts.get("ticker") ?? "";
  const limitRaw = Number(opts.get("limit") ?? 10);
  const limit = Math.min(1000, Math.max(1, Number.isFinite(limitRaw) ? Math.floor(limitRaw) : 10));
  const offset = Number(opts.get("offset") ?? 0);
  const plusDays = (date: string, n: number) => new Date(Date.parse(date) + n * 86_400_000).toISOString().slice(0, 10);
  const all: Record<string, unknown>[] =
    kind === "splits"
      ? (events?.splits ?? []).map((sp, i) => ({ execution_date: sp.date, id: `E${ticker}S${i}`, split_from: sp.denominator, split_to: sp.numerator, ticker }))
      : (events?.dividends ?? []).map((d, i) => ({
          cash_amount: d.amount,
          currency: "USD",
          declaration_date: plusDays(d.date, -28),
          dividend_type: "CD",
          ex_dividend_date: d.date,
          frequency: 4,
          id: `E${ticker}D${i}`,
          pay_date: plusDays(d.date, 7),
          record_date: plusDays(d.date, 1),
          ticker,
        }));
  const dateKey = kind === "splits" ? "execution_date" : "ex_dividend_date";
  // Polygon's range filters on the date field: execution_date.gte=2024-01-01 and so on (and = for one day).
  const ops: Record<string, (d: string, v: string) => boolean> = { "": (d, v) => d === v, ".gte": (d, v) => d >= v, ".gt": (d, v) => d > v, ".lte": (d, v) => d <= v, ".lt": (d, v) => d < v };
  for (const [op, test] of Object.entries(ops)) {
    const value = opts.get(dateKey + op);
    if (value === null) continue;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return polygonError(400, `Could not parse the query parameter: '${dateKey}${op}'. Use YYYY-MM-DD`);
    for (let i = all.length - 1; i >= 0; i--) if (!test(String(all[i]![dateKey]), value)) all.splice(i, 1);
  }
  all.sort((a, b) => String(a[dateKey]).localeCompare(String(b[dateKey])));
  if (opts.get("order") !== "asc") all.reverse(); // Polygon's default order is descending
  const size = Math.min(limit, pageSize);
  const results = all.slice(offset, offset + size);
  const body: Record<string, unknown> = { results, status: "OK", request_id: requestId() };
  if (offset + size < all.length) {
    const next = new URLSearchParams(opts);
    next.set("offset", String(offset + size));
    body.next_url = `${base}/polygon${path}?cursor=${Buffer.from(next.toString()).toString("base64url")}`;
  }
  return json(body);
}

type Ctx = { url: URL; path: string; req: Request; base: string; lookup: Lookup; events?: FakeEvents; delayed?: boolean };

// ---------------------------------------------------------------------------------------------
// Stooq: GET /q/d/l/?s=<sym>&i=d[&d1=YYYYMMDD&d2=YYYYMMDD]

// Stooq light quotes: GET /q/l/?s=<sym>+<sym>&f=sd2t2ohlcv&h&e=csv — one line per symbol asked,
// in the order asked; `N/D` in every field for a symbol Stooq does not know.
function stooqQuotes({ url, lookup }: Ctx): Response {
  const q = url.searchParams;
  const f = q.get("f") ?? "sd2t2ohlcv";
  if (f !== "sd2t2ohlcv") return text(`fake stooq serves f=sd2t2ohlcv only (got f=${f})`, 400);
  const symbols = (q.get("s") ?? "").split(/[ +]/).filter(Boolean);
  const lines = symbols.map((s) => {
    const last = lookup(s.toLowerCase())?.at(-1);
    const sym = s.toUpperCase();
    if (!last) return [sym, "N/D", "N/D", "N/D", "N/D", "N/D", "N/D", "N/D"].join(",");
    const time = sym.includes(".") ? "22:00:09" : "17:04:58";
    return [sym, last.date, time, last.open, last.high, last.low, last.close, last.volume].join(",");
  });
  const head = q.has("h") ? ["Symbol,Date,Time,Open,High,Low,Close,Volume"] : [];
  return text([...head, ...lines].join("\r\n") + "\r\n", 200, "text/csv", { "content-disposition": "attachment;filename=q.csv" });
}

function stooq(ctx: Ctx): Response {
  const { url, path, lookup } = ctx;
  if (path === "/q/l/" || path === "/q/l") return stooqQuotes(ctx);
  if (path !== "/q/d/l/" && path !== "/q/d/l") return text("Not Found", 404, "text/html");
  const q = url.searchParams;
  const s = (q.get("s") ?? "").toLowerCase();
  const i = q.get("i") ?? "d";
  if (i !== "d") return text(`fake stooq serves i=d only (got i=${i})`, 400);
  const compact = (v: string | null) => (v && /^\d{8}$/.test(v) ? `${v.slice(0, 4)}-${v.slice(4, 6)}-${v.slice(6, 8)}` : null);
  const d1 = compact(q.get("d1"));
  const d2 = compact(q.get("d2"));
  const all = s ? lookup(s) : undefined;
  const rows = (all ?? []).filter((b) => (!d1 || b.date >= d1) && (!d2 || b.date <= d2));
  if (rows.length === 0) return text("No data", 200, "text/csv");
  // Indices and currencies come without a Volume column.
  const withVolume = (all ?? []).some((b) => b.volume !== 0);
  const head = withVolume ? "Date,Open,High,Low,Close,Volume" : "Date,Open,High,Low,Close";
  const lines = rows.map((b) => [b.date, b.open, b.high, b.low, b.close, ...(withVolume ? [b.volume] : [])].join(","));
  return text(`${head}\r\n${lines.join("\r\n")}\r\n`, 200, "text/csv", {
    "content-disposition": `attachment;filename=${s.replace(/[^a-z0-9]/g, "_")}_d.csv`,
  });
}

// ---------------------------------------------------------------------------------------------
// Yahoo: GET /v8/finance/chart/<SYM>?period1=&period2=&interval=1d&events=div,splits&includeAdjustedClose=true

const YAHOO_INTERVALS = ["1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h", "4h", "1d", "5d", "1wk", "1mo", "3mo"];
const YAHOO_RANGES: Record<string, number> = { "1d": 1, "5d": 5, "1mo": 31, "3mo": 92, "6mo": 183, "1y": 366, "2y": 731, "5y": 1827, "10y": 3653 };

type Venue = { tz: string; open: [number, number]; close: [number, number]; currency: string; exchangeName: string; fullExchangeName: string; abbr: [string, string] };
const NEW_YORK: Venue = { tz: "America/New_York", open: [9, 30], close: [16, 0], currency: "USD", exchangeName: "NMS", fullExchangeName: "NasdaqGS", abbr: ["EST", "EDT"] };
const WARSAW: Venue = { tz: "Europe/Warsaw", open: [9, 0], close: [17, 0], currency: "PLN", exchangeName: "WSE", fullExchangeName: "Warsaw", abbr: ["CET", "CEST"] };
const SYDNEY: Venue = { tz: "Australia/Sydney", open: [10, 0], close: [16, 0], currency: "AUD", exchangeName: "ASX", fullExchangeName: "ASX", abbr: ["AEDT", "AEST"] };
// Yahoo's currency pairs (EURGBP=X: exchange "CCY", days of London) and crypto pairs (BTC-USD:
// "CCC", UTC days): daily bars stamped at the day's midnight, quoted in the pair's quote currency.
const CURRENCY: Venue = { tz: "Europe/London", open: [0, 0], close: [23, 59], currency: "GBP", exchangeName: "CCY", fullExchangeName: "CCY", abbr: ["GMT", "BST"] };
const CRYPTO: Venue = { tz: "UTC", open: [0, 0], close: [23, 59], currency: "USD", exchangeName: "CCC", fullExchangeName: "CCC", abbr: ["UTC", "UTC"] };

/** The venue of a Yahoo symbol, by its spelling: `.WA` Warsaw, `.AX` Sydney, `=X` currencies, `BASE-USD` crypto, else New York. */
function venueOf(symbol: string): Venue {
  if (symbol.endsWith(".WA")) return WARSAW;
  if (symbol.endsWith(".AX")) return SYDNEY;
  if (symbol.endsWith("=X")) return { ...CURRENCY, currency: symbol.slice(3, 6) };
  if (/^[A-Z0-9]+-(USD|EUR|GBP)$/.test(symbol)) return { ...CRYPTO, currency: symbol.slice(-3) };
  return NEW_YORK;
}

const yahooError = (status: number, code: string, description: string) => json({ chart: { result: null, error: { code, description } } }, status);

function yahoo({ url, path, lookup, events }: Ctx, float32: boolean): Response {
  const m = /^\/v8\/finance\/chart\/([^/]+)$/.exec(path);
  if (!m) return json({ finance: { result: null, error: { code: "Not Found", description: "HTTP 404 Not Found" } } }, 404);
  const symbol = decodeURIComponent(m[1]!).toUpperCase();
  const q = url.searchParams;
  const interval = q.get("interval") ?? "1d";
  if (!YAHOO_INTERVALS.includes(interval))
    return yahooError(400, "Bad Request", `Invalid input - interval=${interval} is not supported. Valid intervals: [${YAHOO_INTERVALS.join(", ")}]`);
  if (interval in YAHOO_INTRADAY) return yahooIntraday(symbol, q, interval, lookup, float32);
  if (interval !== "1d") return yahooError(400, "Bad Request", `fake yahoo serves interval=1d and 1m, 2m, 5m, 15m, 30m, 60m only (got ${interval})`);
  const now = Math.floor(Date.now() / 1000);
  const int = (name: string) => {
    const v = q.get(name);
    return v === null ? undefined : /^-?\d+$/.test(v) ? Number(v) : NaN;
  };
  let period1 = int("period1");
  let period2 = int("period2");
  const range = q.get("range");
  if (Number.isNaN(period1) || Number.isNaN(period2))
    return yahooError(400, "Bad Request", `Invalid input - period1 and period2 must be integers (epoch seconds). period1 = ${q.get("period1")}, period2 = ${q.get("period2")}`);
  if (period1 === undefined) {
    if (range && range !== "max" && range !== "ytd" && !(range in YAHOO_RANGES))
      return yahooError(400, "Bad Request", `Invalid input - range=${range} is not supported. Valid ranges: [1d, 5d, 1mo, 3mo, 6mo, 1y, 2y, 5y, 10y, ytd, max]`);
    period2 = now;
    const r = range ?? "1mo";
    period1 = r === "max" ? -2208988800 : r === "ytd" ? Date.UTC(new Date().getUTCFullYear(), 0, 1) / 1000 : now - YAHOO_RANGES[r]! * 86_400;
  }
  period2 ??= now;
  if (period1 > period2) return yahooError(400, "Bad Request", `Invalid input - start date cannot be after end date. startDate = ${period1}, endDate = ${period2}`);

  const all = lookup(symbol);
  if (!all) return yahooError(404, "Not Found", "No data found, symbol may be delisted");
  const venue = venueOf(symbol);
  const openS = (date: string) => zonedMs(date, venue.open[0], venue.open[1], venue.tz) / 1000;
  const rows = all.map((b) => ({ b, ts: openS(b.date) })).filter((r) => period1 <= r.ts && r.ts < period2);
  const f = float32 ? Math.fround : (x: number) => x;
  // A period wholly after a symbol's last bar (delisted, or no trading since): Yahoo answers 400.
  if (q.has("period1") && rows.length === 0 && all.length > 0 && period1 > openS(all.at(-1)!.date))
    return yahooError(400, "Bad Request", `Data doesn't exist for startDate = ${period1}, endDate = ${period2}`);

  const last = all.at(-1);
  const marketTime = last ? zonedMs(last.date, venue.close[0], venue.close[1], venue.tz) / 1000 : now;
  const gmtoffset = offsetMinutes(venue.tz, marketTime * 1000) * 60;
  const janOffset = offsetMinutes(venue.tz, Date.UTC(new Date(marketTime * 1000).getUTCFullYear(), 0, 15)) * 60;
  const timezone = venue.abbr[gmtoffset === janOffset ? 0 : 1];
  const period = (start: number, end: number) => ({ timezone, start, end, gmtoffset });
  const lastDate = last?.date ?? new Date(now * 1000).toISOString().slice(0, 10);
  const regStart = zonedMs(lastDate, venue.open[0], venue.open[1], venue.tz) / 1000;
  const regEnd = zonedMs(lastDate, venue.close[0], venue.close[1], venue.tz) / 1000;
  const firstIdx = rows.length ? all.indexOf(rows[0]!.b) : -1;
  const previous = firstIdx > 0 ? all[firstIdx - 1]! : undefined;
  const meta: Record<string, unknown> = {
    currency: venue.currency,
    symbol,
    exchangeName: symbol.startsWith("^") ? (venue === WARSAW ? "WSE" : "SNP") : venue.exchangeName,
    fullExchangeName: venue.fullExchangeName,
    instrumentType: symbol.startsWith("^") ? "INDEX" : venue.exchangeName === "CCY" ? "CURRENCY" : venue.exchangeName === "CCC" ? "CRYPTOCURRENCY" : "EQUITY",
    firstTradeDate: all.length ? openS(all[0]!.date) : null,
    regularMarketTime: marketTime,
    hasPrePostMarketData: venue === NEW_YORK,
    gmtoffset,
    timezone,
    exchangeTimezoneName: venue.tz,
    regularMarketPrice: last ? f(last.close) : null,
    fiftyTwoWeekHigh: all.length ? f(Math.max(...all.slice(-252).map((b) => b.high))) : null,
    fiftyTwoWeekLow: all.length ? f(Math.min(...all.slice(-252).map((b) => b.low))) : null,
    regularMarketDayHigh: last ? f(last.high) : null,
    regularMarketDayLow: last ? f(last.low) : null,
    regularMarketVolume: last?.volume ?? 0,
    longName: symbol,
    shortName: symbol,
    chartPreviousClose: previous ? f(previous.close) : rows.length ? f(rows[0]!.b.open) : null,
    priceHint: 2,
    currentTradingPeriod: {
      pre: venue === NEW_YORK ? period(regStart - 5.5 * 3600, regStart) : period(regStart, regStart),
      regular: period(regStart, regEnd),
      post: venue === NEW_YORK ? period(regEnd, regEnd + 4 * 3600) : period(regEnd, regEnd),
    },
    dataGranularity: "1d",
    range: q.has("period1") ? "" : (range ?? "1mo"),
    validRanges: ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
  };
  if (rows.length === 0) return json({ chart: { result: [{ meta, indicators: { quote: [{}] } }], error: null } });
  const quote = {
    open: rows.map((r) => f(r.b.open)),
    high: rows.map((r) => f(r.b.high)),
    low: rows.map((r) => f(r.b.low)),
    close: rows.map((r) => f(r.b.close)),
    volume: rows.map((r) => r.b.volume),
  };
  const indicators: Record<string, unknown> = { quote: [quote] };
  if (q.get("includeAdjustedClose") !== "false") indicators.adjclose = [{ adjclose: rows.map((r) => f(r.b.adjClose)) }];
  // Yahoo's events: objects keyed by the ex-date's session-open timestamp, within the period.
  const asked = (q.get("events") ?? "").split(/[,|]/);
  const inPeriod = (date: string) => period1 <= openS(date) && openS(date) < period2;
  const ev: Record<string, unknown> = {};
  const divs = (events?.dividends ?? []).filter((d) => inPeriod(d.date));
  const splits = (events?.splits ?? []).filter((d) => inPeriod(d.date));
  if (asked.includes("div") && divs.length) ev.dividends = Object.fromEntries(divs.map((d) => [String(openS(d.date)), { amount: f(d.amount), date: openS(d.date) }]));
  if (asked.includes("splits") && splits.length)
    ev.splits = Object.fromEntries(splits.map((d) => [String(openS(d.date)), { date: openS(d.date), numerator: d.numerator, denominator: d.denominator, splitRatio: `${d.numerator}:${d.denominator}` }]));
  const result: Record<string, unknown> = { meta, timestamp: rows.map((r) => r.ts), ...(Object.keys(ev).length ? { events: ev } : {}), indicators };
  return json({ chart: { result: [result], error: null } });
}

// Yahoo intraday: GET /v8/finance/chart/<SYM>?period1=&period2=&interval=1m|2m|5m|15m|30m|60m. Each daily bar
// set becomes its regular session's bars (New York 09:30-16:00, Warsaw 09:00-17:00), stamped with
// their open instants; 60m bars start at the open (09:30, 10:30, …). Yahoo's look-back: 1m within
// the last 30 days and at most 7 days per request, 2m, 5m, 15m and 30m within 60 days, 60m within 730 days;
// anything else is its HTTP 422 "Unprocessable Entity".
const YAHOO_INTRADAY: Record<string, { step: number; days: number }> = {
  "1m": { step: 60, days: 30 },
  "2m": { step: 120, days: 60 },
  "5m": { step: 300, days: 60 },
  "15m": { step: 900, days: 60 },
  "30m": { step: 1800, days: 60 },
  "60m": { step: 3600, days: 730 },
};

function yahooIntraday(symbol: string, q: URLSearchParams, interval: string, lookup: Lookup, float32: boolean): Response {
  const { step, days } = YAHOO_INTRADAY[interval]!;
  const period1 = Number(q.get("period1"));
  const period2 = Number(q.get("period2"));
  if (!/^\d+$/.test(q.get("period1") ?? "") || !/^\d+$/.test(q.get("period2") ?? ""))
    return yahooError(400, "Bad Request", `Invalid input - period1 and period2 must be integers (epoch seconds). period1 = ${q.get("period1")}, period2 = ${q.get("period2")}`);
  const now = Math.floor(Date.now() / 1000);
  const notAvailable = `${interval} data not available for startTime=${period1} and endTime=${period2}.`;
  if (period1 < now - days * 86_400) return yahooError(422, "Unprocessable Entity", `${notAvailable} The requested range must be within the last ${days} days.`);
  if (interval === "1m" && period2 - period1 > 7 * 86_400)
    return yahooError(422, "Unprocessable Entity", `${notAvailable} Only 7 days worth of 1m granularity data are allowed to be fetched per request.`);
  const all = lookup(symbol);
  if (!all) return yahooError(404, "Not Found", "No data found, symbol may be delisted");
  const venue = venueOf(symbol);
  const f = float32 ? Math.fround : (x: number) => x;
  const ts: number[] = [];
  const quote = { open: [] as number[], high: [] as number[], low: [] as number[], close: [] as number[], volume: [] as number[] };
  for (const b of all) {
    const open = zonedMs(b.date, venue.open[0], venue.open[1], venue.tz) / 1000;
    const close = zonedMs(b.date, venue.close[0], venue.close[1], venue.tz) / 1000;
    if (close <= period1 || open >= period2) continue;
    const n = Math.ceil((close - open) / step);
    const price = (k: number) => round(b.open + ((b.close - b.open) * k) / n, 2);
    for (let k = 0; k < n; k++) {
      const t = open + k * step;
      if (t < period1 || t >= period2) continue;
      const [o, c] = [price(k), price(k + 1)];
      ts.push(t);
      quote.open.push(f(o));
      quote.close.push(f(c));
      quote.high.push(f(round(Math.max(o, c) + 0.01, 2)));
      quote.low.push(f(round(Math.min(o, c) - 0.01, 2)));
      quote.volume.push(Math.round(b.volume / n));
    }
  }
  const meta = { currency: venue.currency, symbol, exchangeName: venue.exchangeName, fullExchangeName: venue.fullExchangeName, instrumentType: "EQUITY", exchangeTimezoneName: venue.tz, dataGranularity: interval, range: "" };
  if (ts.length === 0) return json({ chart: { result: [{ meta, indicators: { quote: [{}] } }], error: null } });
  return json({ chart: { result: [{ meta, timestamp: ts, indicators: { quote: [quote] } }], error: null } });
}

// ---------------------------------------------------------------------------------------------
// Polygon: GET /v2/aggs/ticker/<T>/range/<multiplier>/<day|minute|hour>/<from>/<to>?adjusted=&sort=&limit=&apiKey=

const polygonError = (status: number, error: string) => json({ status: "ERROR", request_id: requestId(), error }, status);
const nyMidnight = (date: string) => zonedMs(date, 0, 0, "America/New_York");

// Polygon stocks snapshot: GET /v2/snapshot/locale/us/markets/stocks/tickers?tickers=A,B — the
// tickers it knows, in no promised order; `updated` in nanoseconds (the last bar's 16:00 New York).
function polygonSnapshot({ url, lookup }: Ctx): Response {
  const asked = (url.searchParams.get("tickers") ?? "").split(",").filter(Boolean);
  const agg = (b: FakeBar) => ({ o: b.open, h: b.high, l: b.low, c: b.close, v: b.volume, vw: round((b.high + b.low + b.close) / 3, 4) });
  const tickers = asked.flatMap((t) => {
    const all = lookup(t);
    const last = all?.at(-1);
    if (!all || !last) return [];
    const prev = all.at(-2) ?? last;
    const updatedMs = zonedMs(last.date, 16, 0, "America/New_York");
    return [
      {
        ticker: t,
        todaysChange: round(last.close - prev.close, 2),
        todaysChangePerc: round(((last.close - prev.close) / prev.close) * 100, 4),
        updated: updatedMs * 1_000_000,
        day: agg(last),
        min: { ...agg(last), t: updatedMs - 60_000, n: 12, av: last.volume },
        prevDay: agg(prev),
        lastTrade: { i: "52983525029461", p: last.close, s: 100, t: updatedMs * 1_000_000, x: 4, c: [14, 41] },
      },
    ];
  });
  return json({ status: "OK", request_id: requestId(), count: tickers.length, tickers });
}

function polygon(ctx: Ctx, pageSize: number): Response {
  const { url, path, req, base, lookup } = ctx;
  const q = url.searchParams;
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.get("authorization") ?? "")?.[1];
  const key = q.get("apiKey") || bearer;
  if (path === "/v2/snapshot/locale/us/markets/stocks/tickers") {
    if (!key) return polygonError(401, "API Key was not provided");
    if (key === "bad") return polygonError(401, "Unknown API Key");
    return polygonSnapshot(ctx);
  }
  if (path.startsWith("/v3/reference/")) {
    if (!key) return polygonError(401, "API Key was not provided");
    if (key === "bad") return polygonError(401, "Unknown API Key");
    return polygonReference(ctx, pageSize);
  }
  const m = /^\/v2\/aggs\/ticker\/([^/]+)\/range\/([^/]+)\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(path);
  if (!m) return text("404 page not found", 404);
  if (!key) return polygonError(401, "API Key was not provided");
  if (key === "bad") return polygonError(401, "Unknown API Key");

  const ticker = decodeURIComponent(m[1]!);
  const [multiplierRaw, timespan, fromRaw, toRaw] = [m[2]!, m[3]!, decodeURIComponent(m[4]!), decodeURIComponent(m[5]!)];
  const multiplier = /^[1-9]\d{0,3}$/.test(multiplierRaw) ? Number(multiplierRaw) : NaN;
  if (Number.isNaN(multiplier)) return polygonError(400, `Could not parse the multiplier: '${multiplierRaw}'`);
  const stepMs = timespan === "minute" ? multiplier * 60_000 : timespan === "hour" ? multiplier * 3_600_000 : null;
  const calendar = timespan === "week" || timespan === "month";
  if (stepMs === null && ((timespan !== "day" && !calendar) || multiplier !== 1))
    return polygonError(400, `fake polygon serves range/1/day, 1/week, 1/month and minute and hour ranges only (got ${multiplierRaw}/${timespan})`);
  const bound = (v: string) => (/^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(v)) ? nyMidnight(v) : /^\d+$/.test(v) ? Number(v) : NaN);
  const fromMs = bound(fromRaw);
  const toMs = bound(toRaw);
  if (Number.isNaN(fromMs)) return polygonError(400, "Could not parse the time parameter: 'from'. Use YYYY-MM-DD or Unix MS Timestamps");
  if (Number.isNaN(toMs)) return polygonError(400, "Could not parse the time parameter: 'to'. Use YYYY-MM-DD or Unix MS Timestamps");

  // next_url carries only `cursor`: the options of the first page ride inside it.
  const opts = new URLSearchParams(q);
  const cursor = q.get("cursor");
  if (cursor) {
    let decoded: URLSearchParams;
    try {
      decoded = new URLSearchParams(Buffer.from(cursor, "base64url").toString("utf8"));
    } catch {
      return polygonError(400, "Invalid cursor");
    }
    if (!decoded.has("sort")) return polygonError(400, "Invalid cursor");
    for (const [k, v] of decoded) opts.set(k, v);
  }
  const adjusted = opts.get("adjusted") !== "false";
  const sort = opts.get("sort") === "desc" ? "desc" : "asc";
  const limitRaw = Number(opts.get("limit") ?? 5000);
  const limit = Math.min(50_000, Math.max(1, Number.isFinite(limitRaw) ? Math.floor(limitRaw) : 5000));
  const size = Math.min(limit, pageSize);
  const status = ctx.delayed ? "DELAYED" : "OK";

  const all = lookup(ticker);
  let results: PolygonAgg[];
  let nextT: number | undefined;
  if (stepMs !== null) {
    if (sort !== "asc") return polygonError(400, "fake polygon serves intraday ranges in sort=asc only");
    // One more than a page: whether there is a next page, and where it starts.
    results = polygonIntraday(all ?? [], fromMs, toMs, stepMs, size + 1);
    nextT = results[size]?.t;
    results = results.slice(0, size);
  } else {
    // Weeks start on Sunday, months on the 1st, at midnight New York; `from` snaps back to the start of its week or month…
    const periodStart = (date: string) => (timespan === "week" ? plusDays(date, -new Date(`${date}T00:00:00Z`).getUTCDay()) : timespan === "month" ? `${date.slice(0, 8)}01` : date);
    const snapped = calendar ? nyMidnight(periodStart(new Date(fromMs + offsetMinutes("America/New_York", fromMs) * 60_000).toISOString().slice(0, 10))) : fromMs;
    // …and `to` forward to the end of its week or month.
    const toDate = new Date(toMs + offsetMinutes("America/New_York", toMs) * 60_000).toISOString().slice(0, 10);
    const nextStart = timespan === "week" ? plusDays(periodStart(toDate), 7) : plusDays(`${toDate.slice(0, 8)}01`, 32).slice(0, 8) + "01";
    const toSnapped = calendar ? nyMidnight(nextStart) - 1 : toMs;
    const daily = (all ?? []).map((b) => ({ b, t: nyMidnight(b.date) })).filter((r) => snapped <= r.t && r.t <= toSnapped);
    const rows = calendar ? calendarBars(daily.map((r) => r.b), periodStart) : daily;
    if (sort === "desc") rows.reverse();
    const page = rows.slice(0, size);
    nextT = rows[size]?.t;
    // Polygon's `adjusted` is for splits only: with adjusted=true the prices before each split set
    // with setEvents are divided by its ratio and the volumes multiplied (a FakeBar's adjClose is
    // Yahoo's dividend-and-split figure, not used here).
    const splitK = (date: string) => (adjusted ? (ctx.events?.splits ?? []).filter((sp) => date < sp.date).reduce((k, sp) => (k * sp.denominator) / sp.numerator, 1) : 1);
    results = page.map(({ b, t }) => {
      const k = splitK(b.date);
      const px = (x: number) => (k === 1 ? x : round(x * k, 4));
      return {
        v: k === 1 ? b.volume : Math.round(b.volume / k),
        vw: round(((b.high + b.low + b.close) / 3) * k, 4),
        o: px(b.open),
        c: px(b.close),
        h: px(b.high),
        l: px(b.low),
        t,
        n: Math.max(1, Math.round(b.volume / 137)),
      };
    });
  }
  if (results.length === 0) return json({ ticker, queryCount: 0, resultsCount: 0, adjusted, status, request_id: requestId(), count: 0 });
  const body: Record<string, unknown> = { ticker, queryCount: results.length, resultsCount: results.length, adjusted, results, status, request_id: requestId(), count: results.length };
  if (nextT !== undefined) {
    // Polygon's own form: the range with `from` moved to the next bar, and a cursor holding the options.
    const c = Buffer.from(`adjusted=${adjusted}&limit=${limit}&sort=${sort}`).toString("base64url");
    const [f, t] = sort === "asc" ? [String(nextT), toRaw] : [fromRaw, String(nextT)];
    body.next_url = `${base}/polygon/v2/aggs/ticker/${encodeURIComponent(ticker)}/range/${multiplierRaw}/${timespan}/${f}/${t}?cursor=${c}`;
  }
  return json(body);
}

type PolygonAgg = { v: number; vw: number; o: number; c: number; h: number; l: number; t: number; n: number };

const plusDays = (date: string, n: number) => new Date(Date.parse(`${date}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);

/** Daily bars grouped into weeks or months (by `periodStart` of each date), t = that start's New York midnight. */
function calendarBars(days: FakeBar[], periodStart: (date: string) => string): { b: FakeBar; t: number }[] {
  const out: { b: FakeBar; t: number }[] = [];
  for (const d of days) {
    const start = periodStart(d.date);
    const last = out.at(-1);
    if (last && last.b.date === start) {
      last.b = { ...last.b, high: Math.max(last.b.high, d.high), low: Math.min(last.b.low, d.low), close: d.close, volume: last.b.volume + d.volume, adjClose: d.adjClose };
    } else out.push({ b: { ...d, date: start }, t: nyMidnight(start) });
  }
  return out;
}

/**
 * Polygon intraday: each daily bar set becomes the minute bars of New York's extended day, as
 * Polygon has them for a US listing: every minute of the regular session 09:30-16:00 (prices
 * walking from the day's open to its close) and, extended-hours trading being thin, every 5th
 * minute of the pre-market 04:00-09:30 (at the open) and the after-hours 16:00-20:00 (at the
 * close). Coarser bars aggregate them on clock-aligned buckets (a 1-hour bar at 09:00 holds
 * 09:00-09:59: pre-market and regular minutes). Bars with t in [from, to], at most `max` of them.
 * The fake's page counts result bars (Polygon's `limit` counts the base minutes behind them).
 */
function polygonIntraday(days: FakeBar[], from: number, to: number, stepMs: number, max: number): PolygonAgg[] {
  const out: PolygonAgg[] = [];
  let cur: PolygonAgg | null = null;
  let turnover = 0;
  const flush = () => {
    if (cur && cur.t >= from && cur.t <= to) out.push({ ...cur, vw: round(turnover / cur.v, 4) });
    cur = null;
  };
  for (const b of days) {
    const dayStart = zonedMs(b.date, 4, 0, "America/New_York"); // no DST change between 04:00 and 20:00
    if (dayStart + 16 * 3_600_000 <= from - stepMs || dayStart > to) continue;
    const regular = 390;
    for (let minute = 0; minute < 16 * 60; minute++) {
      const inRegular = minute >= 330 && minute < 330 + regular;
      if (!inRegular && minute % 5 !== 0) continue;
      const k = minute - 330;
      const px = (j: number) => round(b.open + ((b.close - b.open) * j) / regular, 2);
      const [o, c] = inRegular ? [px(k), px(k + 1)] : minute < 330 ? [b.open, b.open] : [b.close, b.close];
      const [h, l] = inRegular ? [round(Math.max(o, c) + 0.01, 2), round(Math.min(o, c) - 0.01, 2)] : [round(o + 0.02, 2), round(o - 0.02, 2)];
      const v = Math.max(1, Math.round(inRegular ? b.volume / regular : b.volume / 5000));
      const t = dayStart + minute * 60_000;
      const bucket = t - (t % stepMs);
      if (cur === null || cur.t !== bucket) {
        flush();
        if (out.length >= max) return out;
        cur = { v: 0, vw: 0, o, c, h, l, t: bucket, n: 0 };
        turnover = 0;
      }
      const a: PolygonAgg = cur;
      a.c = c;
      a.h = Math.max(a.h, h);
      a.l = Math.min(a.l, l);
      a.v += v;
      a.n += Math.max(1, Math.round(v / 50));
      turnover += ((h + l + c) / 3) * v;
    }
  }
  flush();
  return out.slice(0, max);
}

// ---------------------------------------------------------------------------------------------
// Alpha Vantage: GET /query?function=TIME_SERIES_DAILY&symbol=&outputsize=compact|full&apikey=[&datatype=json|csv]

function alphavantage({ url, path, lookup }: Ctx): Response {
  if (path !== "/query") return text("Not Found", 404, "text/html");
  const q = url.searchParams;
  if (!q.get("apikey")) return avJson({ "Error Message": AV_MISSING_KEY });
  const fn = q.get("function") ?? "";
  if (fn === "GLOBAL_QUOTE") return avGlobalQuote(q.get("symbol") ?? "", lookup);
  if (fn === "TIME_SERIES_INTRADAY") return avIntraday(q, lookup);
  if (fn !== "TIME_SERIES_DAILY") return avJson({ "Error Message": avInvalidCall(fn) });
  const symbol = q.get("symbol") ?? "";
  const all = symbol ? lookup(symbol.toUpperCase()) : undefined;
  if (!all) return avJson({ "Error Message": avInvalidCall(fn) });
  const full = q.get("outputsize") === "full";
  const newest = [...all].reverse();
  const rows = full ? newest : newest.slice(0, 100);
  const s4 = (x: number) => x.toFixed(4);
  if (q.get("datatype") === "csv") {
    const lines = rows.map((b) => [b.date, s4(b.open), s4(b.high), s4(b.low), s4(b.close), String(b.volume)].join(","));
    return text(["timestamp,open,high,low,close,volume", ...lines].join("\r\n") + "\r\n", 200, "application/x-download", {
      "content-disposition": `attachment; filename=daily_${symbol}.csv`,
    });
  }
  const series: Record<string, Record<string, string>> = {};
  for (const b of rows) series[b.date] = { "1. open": s4(b.open), "2. high": s4(b.high), "3. low": s4(b.low), "4. close": s4(b.close), "5. volume": String(b.volume) };
  return avJson({
    "Meta Data": {
      "1. Information": "Daily Prices (open, high, low, close) and Volumes",
      "2. Symbol": symbol,
      "3. Last Refreshed": newest[0]?.date ?? new Date().toISOString().slice(0, 10),
      "4. Output Size": full ? "Full size" : "Compact",
      "5. Time Zone": "US/Eastern",
    },
    "Time Series (Daily)": series,
  });
}

// Alpha Vantage TIME_SERIES_INTRADAY: interval=1min|5min|15min|30min|60min, month=YYYY-MM (that
// month; without it the trailing 30 days), outputsize=compact (the newest 100) or full,
// extended_hours=true (default: 04:00-20:00 New York) or false (09:30-16:00). Keys are New York
// wall times "YYYY-MM-DD HH:MM:SS", each bar's start, newest first; each daily bar set becomes
// its session's bars, stepping from the first minute (60min too: 09:30, 10:30, … when regular).
// An unknown symbol, and (assumed: a case the docs leave open) a month without bars, answer
// {"Error Message": "Invalid API call. …"}.
const AV_STEPS: Record<string, number> = { "1min": 1, "5min": 5, "15min": 15, "30min": 30, "60min": 60 };

function avIntraday(q: URLSearchParams, lookup: Lookup): Response {
  const fn = "TIME_SERIES_INTRADAY";
  const interval = q.get("interval") ?? "";
  const step = AV_STEPS[interval];
  const symbol = q.get("symbol") ?? "";
  const all = symbol ? lookup(symbol.toUpperCase()) : undefined;
  const month = q.get("month");
  if (!step || !all || (month !== null && !/^\d{4}-\d{2}$/.test(month))) return avJson({ "Error Message": avInvalidCall(fn) });
  const extended = q.get("extended_hours") !== "false";
  const [from, to] = extended ? [4 * 60, 20 * 60] : [9 * 60 + 30, 16 * 60];
  const trailingFrom = new Date(Date.now() - 30 * DAY_MS).toISOString().slice(0, 10);
  const days = all.filter((b) => (month !== null ? b.date.startsWith(month) : b.date >= trailingFrom));
  if (month !== null && days.length === 0) return avJson({ "Error Message": avInvalidCall(fn) });
  const s4 = (x: number) => x.toFixed(4);
  const pad = (n: number) => String(n).padStart(2, "0");
  const bars: [string, Record<string, string>][] = [];
  for (const b of days) {
    const regular = Math.ceil((16 * 60 - (9 * 60 + 30)) / step);
    let k = 0;
    for (let m = from; m < to; m += step) {
      const inSession = m >= 9 * 60 + 30 && m < 16 * 60;
      const [o, c] = inSession ? [b.open + ((b.close - b.open) * k) / regular, b.open + ((b.close - b.open) * (k + 1)) / regular] : m < 9 * 60 + 30 ? [b.open, b.open] : [b.close, b.close];
      if (inSession) k++;
      const volume = inSession ? Math.round(b.volume / regular) : 100;
      bars.push([`${b.date} ${pad(Math.floor(m / 60))}:${pad(m % 60)}:00`, { "1. open": s4(o), "2. high": s4(Math.max(o, c) + 0.01), "3. low": s4(Math.min(o, c) - 0.01), "4. close": s4(c), "5. volume": String(volume) }]);
    }
  }
  const full = q.get("outputsize") === "full";
  const newest = bars.reverse().slice(0, full ? undefined : 100);
  return avJson({
    "Meta Data": {
      "1. Information": `Intraday (${interval}) open, high, low, close prices and volume`,
      "2. Symbol": symbol,
      "3. Last Refreshed": newest[0]?.[0] ?? "",
      "4. Interval": interval,
      "5. Output Size": full ? "Full size" : "Compact",
      "6. Time Zone": "US/Eastern",
    },
    [`Time Series (${interval})`]: Object.fromEntries(newest),
  });
}

// Alpha Vantage GLOBAL_QUOTE: values as strings; an unknown symbol is 200 {"Global Quote": {}}.
function avGlobalQuote(symbol: string, lookup: Lookup): Response {
  const all = symbol ? lookup(symbol.toUpperCase()) : undefined;
  const last = all?.at(-1);
  if (!all || !last) return avJson({ "Global Quote": {} });
  const prev = all.at(-2) ?? last;
  const s4 = (x: number) => x.toFixed(4);
  return avJson({
    "Global Quote": {
      "01. symbol": symbol.toUpperCase(),
      "02. open": s4(last.open),
      "03. high": s4(last.high),
      "04. low": s4(last.low),
      "05. price": s4(last.close),
      "06. volume": String(last.volume),
      "07. latest trading day": last.date,
      "08. previous close": s4(prev.close),
      "09. change": s4(last.close - prev.close),
      "10. change percent": `${(((last.close - prev.close) / prev.close) * 100).toFixed(4)}%`,
    },
  });
}

// ---------------------------------------------------------------------------------------------
// The server

function symbolOf(provider: ProviderName, path: string, q: URLSearchParams): string {
  const seg = (re: RegExp) => {
    const m = re.exec(path);
    return m ? decodeURIComponent(m[1]!) : "";
  };
  if (provider === "stooq") return symbolKey(provider, q.get("s") ?? "");
  if (provider === "yahoo") return symbolKey(provider, seg(/^\/v8\/finance\/chart\/([^/]+)/));
  if (provider === "polygon") {
    if (path.startsWith("/v2/snapshot/")) return q.get("tickers") ?? "";
    if (path.startsWith("/v3/reference/tickers/")) return seg(/^\/v3\/reference\/tickers\/([^/]+)$/);
    if (path.startsWith("/v3/reference/")) {
      const cursor = q.get("cursor");
      return (cursor ? new URLSearchParams(Buffer.from(cursor, "base64url").toString("utf8")) : q).get("ticker") ?? "";
    }
    return seg(/^\/v2\/aggs\/ticker\/([^/]+)\//);
  }
  return symbolKey(provider, q.get("symbol") ?? "");
}

type QueuedFault = { symbol: string; fault: Fault; left: number; path?: string };

export async function startFakeProviders(opts: FakeProvidersOptions = {}): Promise<FakeProviders> {
  const pageSize = Math.max(1, opts.polygonPageSize ?? 5000);
  const float32 = opts.yahooFloat32 ?? true;
  const bars = new Map<ProviderName, Map<string, FakeBar[]>>();
  const events = new Map<string, FakeEvents>();
  const faults = new Map<ProviderName, QueuedFault[]>();
  const limits = new Map<ProviderName, { perSecond: number; hits: number[] }>();
  const violationCount = new Map<string, number>();
  const requests: FakeRequest[] = [];
  const hung = new Set<() => void>();

  const takeFault = (provider: ProviderName, symbol: string, path: string): Fault | undefined => {
    const queue = faults.get(provider);
    if (!queue) return undefined;
    const i = queue.findIndex((f) => (f.symbol === "*" || f.symbol === symbol) && (f.path === undefined || path.startsWith(f.path)));
    if (i < 0) return undefined;
    const entry = queue[i]!;
    if (--entry.left <= 0) queue.splice(i, 1);
    return entry.fault;
  };

  // Sliding one-second window over the requests the server admitted.
  const overLimit = (provider: ProviderName): boolean => {
    const limit = limits.get(provider);
    if (!limit) return false;
    const now = performance.now();
    while (limit.hits.length && limit.hits[0]! <= now - 1000) limit.hits.shift();
    if (limit.hits.length >= limit.perSecond) {
      violationCount.set(provider, (violationCount.get(provider) ?? 0) + 1);
      return true;
    }
    limit.hits.push(now);
    return false;
  };

  let base = "";
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0, // a hung request must stay open until the client gives up
    async fetch(req, srv) {
      const url = new URL(req.url);
      const [, prefix = "", ...rest] = url.pathname.split("/");
      const path = `/${rest.join("/")}`;
      const entry: FakeRequest = { provider: prefix, path, query: Object.fromEntries(url.searchParams), at: Date.now(), mono: performance.now(), status: 0 };
      requests.push(entry);
      const answer = (res: Response) => {
        entry.status = res.status;
        return res;
      };
      if (!isProvider(prefix)) return answer(text("Not Found", 404));
      const provider = prefix;
      if (overLimit(provider)) return answer(limitAnswer(provider));

      const symbol = symbolOf(provider, path, url.searchParams);
      const fault = takeFault(provider, symbol, path);
      const table = bars.get(provider);
      const ctx: Ctx = { url, path, req, base, lookup: (s) => table?.get(symbolKey(provider, s)), events: events.get(`${provider}|${symbol}`) };
      const handle = (c: Ctx) =>
        provider === "stooq" ? stooq(c) : provider === "yahoo" ? yahoo(c, float32) : provider === "polygon" ? polygon(c, pageSize) : alphavantage(c);

      switch (fault?.kind) {
        case undefined:
          return answer(handle(ctx));
        case "429":
          return answer(tooManyRequests(provider, fault.retryAfterSeconds === undefined ? 1 : fault.retryAfterSeconds));
        case "polygon-not-authorized":
          // As Polygon words it (per polygon-io/issues#313: an aggregates range the plan does not cover).
          return answer(json({ status: "NOT_AUTHORIZED", request_id: requestId(), message: "Your plan doesn't include this data timeframe. Please upgrade your plan at https://polygon.io/pricing" }, 403));
        case "polygon-delayed":
          return answer(handle({ ...ctx, delayed: true }));
        case "av-note":
          return answer(avJson({ Note: AV_NOTE }));
        case "av-information":
          return answer(avJson({ Information: AV_INFORMATION.replace("XXXX", url.searchParams.get("apikey") ?? "") }));
        case "av-premium":
          return answer(avJson({ Information: AV_PREMIUM }));
        case "stooq-limit":
          return answer(text(STOOQ_LIMIT, 200, "text/csv"));
        case "5xx":
          return answer(serverError(provider, fault.status ?? 500));
        case "empty":
          return answer(handle({ ...ctx, lookup: () => [] }));
        case "truncated": {
          const real = handle(ctx);
          const body = await real.text();
          return answer(new Response(body.slice(0, Math.floor(body.length / 2)), { status: real.status, headers: { "content-type": real.headers.get("content-type") ?? "text/plain" } }));
        }
        case "hang": {
          srv.timeout(req, 0);
          await new Promise<void>((resolve) => {
            const done = () => {
              hung.delete(done);
              resolve();
            };
            hung.add(done);
            if (req.signal.aborted) done();
            else req.signal.addEventListener("abort", done, { once: true });
          });
          return new Response(null, { status: 504 }); // nobody is listening any more; status stays 0 in the log
        }
      }
    },
  });
  base = `http://127.0.0.1:${server.port}`;

  const providerOf = (p: string): ProviderName => {
    if (!isProvider(p)) throw new Error(`unknown provider "${p}" (expected one of ${PROVIDERS.join(", ")})`);
    return p;
  };

  return {
    url: base,
    requests,
    setBars(provider, symbol, list) {
      const p = providerOf(provider);
      const sorted = [...list].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
      if (!bars.has(p)) bars.set(p, new Map());
      bars.get(p)!.set(symbolKey(p, symbol), sorted);
    },
    setEvents(provider, symbol, ev) {
      events.set(`${providerOf(provider)}|${symbolKey(providerOf(provider), symbol)}`, ev);
    },
    fault(provider, symbol, f, opts) {
      const p = providerOf(provider);
      // These answers exist only at one provider; anywhere else the test is mistaken.
      if ((f.kind === "av-note" || f.kind === "av-information" || f.kind === "av-premium") && p !== "alphavantage") throw new Error(`fault(${p}): ${f.kind} is an Alpha Vantage answer`);
      if (f.kind === "stooq-limit" && p !== "stooq") throw new Error(`fault(${p}): stooq-limit is a Stooq answer`);
      if ((f.kind === "polygon-not-authorized" || f.kind === "polygon-delayed") && p !== "polygon") throw new Error(`fault(${p}): ${f.kind} is a Polygon answer`);
      const left = f.kind === "empty" ? (f.times ?? Infinity) : f.times;
      if (!(left > 0)) return;
      if (!faults.has(p)) faults.set(p, []);
      faults.get(p)!.push({ symbol: symbolKey(p, symbol), fault: f, left, ...(opts?.path !== undefined ? { path: opts.path } : {}) });
    },
    rateLimit(provider, perSecond) {
      const p = providerOf(provider);
      if (!(perSecond > 0) || perSecond === Infinity) limits.delete(p);
      else limits.set(p, { perSecond, hits: [] });
    },
    violations(provider) {
      return violationCount.get(provider) ?? 0;
    },
    reset() {
      bars.clear();
      events.clear();
      faults.clear();
      limits.clear();
      violationCount.clear();
      requests.length = 0;
    },
    async stop() {
      for (const release of [...hung]) release();
      await server.stop(true);
    },
  };
}
