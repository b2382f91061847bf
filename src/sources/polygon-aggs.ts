// Polygon.io v2 aggregates, `/v2/aggs/ticker/<T>/range/<multiplier>/<timespan>/<from>/<to>`:
// `results[]` of {t, o, h, l, c, v, vw, n} (t: the bar's open instant, UTC epoch ms), `status`
// OK or DELAYED (both carry results), `resultsCount: 0` and no `results` for an empty range, and
// `next_url` for the rest: an absolute URL carrying a `cursor` and no key (ours is added again,
// and only for Polygon's own origin). Failures come as {status: "ERROR", error} or, for data the
// plan does not cover, HTTP 403 {status: "NOT_AUTHORIZED", message}.
// `limit` (at most 50,000) counts the base bars a request reads, and minute and hour bars are
// built from minute bars (per polygon.io/blog/aggs-api-updates), so intraday ranges are asked in
// windows of INTRADAY_WINDOW_DAYS: 30 days of a market trading around the clock are 43,200
// minutes, under the limit; next_url pages through whatever a window still holds. Bars are asked
// adjusted=false: stored bars are as traded and splits are applied once, on read.
// Day, week and month bars start at midnight New York, weeks on Sunday, months on the 1st (per
// Polygon's knowledge base, "How does Polygon treat hourly bars…"): for US listings a Sunday week
// holds the sessions of the ISO week, so a week or month is stamped, as rollups stamp it, with the
// date of its first session (domain/rollup.ts bucketOf).
import type { Interval, RawRow } from "../domain/bar.ts";
import { INTERVAL_MS } from "../domain/bar.ts";
import { addDays, bucketOf, dateMs, dateOf } from "../domain/rollup.ts";
import { ProviderError, parseJsonBody } from "../lib/http.ts";
import { NO_DATA_SPAN_MS, dateInZone, isInstant, providerCall, type FetchRequest, type QuoteRequest } from "./provider.ts";
import { RegularSession, type Sessions } from "./sessions.ts";

/** Polygon's multiplier and timespan for each interval ticksync loads from it. */
export const POLYGON_RANGE: Partial<Record<Interval, string>> = { "1m": "1/minute", "2m": "2/minute", "5m": "5/minute", "15m": "15/minute", "30m": "30/minute", "1h": "1/hour", "1d": "1/day", "1w": "1/week", "1mo": "1/month" };
export const POLYGON_INTERVALS = Object.keys(POLYGON_RANGE) as Interval[];

const DAY = 86_400_000;
/** Days one intraday request covers: see the header. */
export const INTRADAY_WINDOW_DAYS = 30;
/** Polygon's largest `limit`; a page with more results than that is not Polygon's. */
export const AGGS_LIMIT = 50_000;
/** Pages one request (a window) may take: a next_url chain longer than this is broken, not data. */
export const MAX_PAGES = 50;

type AggEntry = { t: number; o: number; h: number; l: number; c: number; v: number; vw?: number; n?: number };
type Aggs = { status?: string; error?: string; message?: string; resultsCount?: number; results?: AggEntry[]; next_url?: string };

export const withKey = (url: string, key: string | undefined) => (key ? `${url}${url.includes("?") ? "&" : "?"}apiKey=${encodeURIComponent(key)}` : url);

type PolygonBody = { status?: string; error?: string; message?: string };
export type GetOptions<T> = {
  /** What a 404 is: an unknown ticker (not_found, the default), nothing there (null), or a failure like any other 4xx. */
  on404?: "not_found" | "null" | "client_error";
  /** The failure a 403 is instead of auth (the aggregates: data the plan does not cover). */
  on403?: (msg: string) => ProviderError;
  /** More checks of the answer, inside the call: what they throw as retryable is retried. */
  check?: (json: T, msg: string) => void;
};

/** One Polygon GET with the key added, its errors classified. */
export function polygonGet<T extends PolygonBody>(url: string, req: FetchRequest | QuoteRequest, what: string, o: GetOptions<T> & { on404: "null" }): Promise<T | null>;
export function polygonGet<T extends PolygonBody>(url: string, req: FetchRequest | QuoteRequest, what: string, o?: GetOptions<T> & { on404?: "not_found" | "client_error" }): Promise<T>;
export function polygonGet<T extends PolygonBody>(url: string, req: FetchRequest | QuoteRequest, what: string, o: GetOptions<T> = {}): Promise<T | null> {
  return providerCall(req, withKey(url, req.apiKey), (res, text) => {
    const json = parseJsonBody(text, `polygon ${what}`) as T;
    const msg = `polygon ${what}: ${json.error ?? json.message ?? `HTTP ${res.status}`}`;
    if (res.status === 403 && o.on403) throw o.on403(msg);
    if (res.status === 401 || res.status === 403) throw new ProviderError(msg, "auth", { status: res.status });
    if (res.status === 404 && o.on404 !== "client_error") {
      if (o.on404 === "null") return null;
      throw new ProviderError(msg, "not_found", { status: res.status });
    }
    if (!res.ok || json.status === "ERROR") throw new ProviderError(msg, "client_error", { status: res.status });
    o.check?.(json, msg);
    return json;
  });
}

/**
 * The next page's URL, or null. It must be Polygon's (the origin of the configured base URL):
 * the key is added to it, and a key must not go wherever an answer points.
 */
export function nextPageUrl(next: unknown, req: FetchRequest, what: string): string | null {
  if (next == null || next === "") return null;
  let u: URL;
  try {
    u = new URL(String(next));
  } catch {
    throw new ProviderError(`polygon ${what}: next_url is not a URL`, "bad_response", { retryable: true });
  }
  const origin = new URL(req.baseUrl).origin;
  if (u.origin !== origin) throw new ProviderError(`polygon ${what}: next_url leads to ${u.origin}, not ${origin}: not followed (the API key would go with it)`, "bad_response");
  u.searchParams.delete("apiKey"); // ours is added once, whatever the answer carried
  return u.toString();
}

/** One aggregates page: the answer's shape checked (retried when broken), 403 per `on403`. */
function aggsPage(url: string, req: FetchRequest, what: string, on403?: (msg: string) => ProviderError): Promise<Aggs> {
  return polygonGet<Aggs>(url, req, what, {
    on403,
    check: (json) => {
      if (json.results != null && !Array.isArray(json.results)) throw new ProviderError(`polygon ${what}: results is not a list`, "bad_response", { retryable: true });
      if (json.results != null && json.results.length > AGGS_LIMIT) throw new ProviderError(`polygon ${what}: ${json.results.length} results in one page (the limit is ${AGGS_LIMIT})`, "bad_response");
      if (json.next_url != null && typeof json.next_url !== "string") throw new ProviderError(`polygon ${what}: next_url is not a URL`, "bad_response", { retryable: true });
    },
  });
}

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

const NEW_YORK = "America/New_York";

/** The date a day, week or month bar starting at `t` is stamped with: the session's, or the first session's of the week or month. */
function barDate(t: number, interval: Interval, market: FetchRequest["market"]): string {
  const date = dateInZone(t, NEW_YORK);
  if (interval === "1d") return date;
  // A Sunday (or any day of it) and the Monday after it are in the same ISO week.
  return dateOf(bucketOf(dateMs(interval === "1w" ? addDays(date, 1) : date), "1d", interval, market)!.ts);
}

/** Day, week or month aggregates of [from, to] (dates), stamped per barDate. */
export async function* fetchDailyAggs(req: FetchRequest, interval: Interval = "1d"): AsyncIterable<RawRow[]> {
  let url: string | null =
    `${req.baseUrl}/v2/aggs/ticker/${encodeURIComponent(req.providerSymbol)}/range/${POLYGON_RANGE[interval]}/${isoDay(req.from)}/${isoDay(req.to)}?adjusted=false&sort=asc&limit=${AGGS_LIMIT}`;
  let page = 0;
  // A next_url seen before would page forever: a broken answer, not more data.
  const asked = new Set<string>();
  while (url) {
    page++;
    if (asked.has(url) || page > MAX_PAGES) throw new ProviderError(`polygon ${req.providerSymbol}: next_url repeats an earlier page or pages on past ${MAX_PAGES}`, "bad_response");
    asked.add(url);
    const body: Aggs = await aggsPage(url, req, req.providerSymbol);
    const results = body.results ?? [];
    // An unknown ticker is a 200 with no results. Over a week or more that is worth a failure
    // record; over a few days (an incremental run over a weekend) it is just nothing new.
    if (page === 1 && results.length === 0 && !body.next_url && req.to - req.from >= NO_DATA_SPAN_MS)
      throw new ProviderError(`polygon ${req.providerSymbol}: no data in ${isoDay(req.from)}..${isoDay(req.to)} (unknown ticker or no trading)`, "no_data");
    const rows: RawRow[] = [];
    for (let i = 0; i < results.length; i++) {
      // Every entry is a row, a broken one too (the quarantine says what is wrong with it).
      const r: Partial<Record<string, unknown>> = results[i] && typeof results[i] === "object" ? results[i]! : {};
      const date = isInstant(r.t) ? barDate(r.t, interval, req.market) : String(r.t);
      const at = isInstant(r.t) ? date : `#${i}`;
      rows.push({ locator: `polygon:${req.providerSymbol}:${interval === "1d" ? at : `${interval}:${at}`}`, fields: aggFields(req.symbol, date, r) });
    }
    yield rows;
    url = nextPageUrl(body.next_url, req, req.providerSymbol);
  }
}

function aggFields(symbol: string, ts: string, r: Partial<Record<string, unknown>>) {
  return { symbol, ts, open: r.o, high: r.h, low: r.l, close: r.c, volume: r.v, trades: r.n, turnover: typeof r.vw === "number" && typeof r.v === "number" ? r.vw * r.v : undefined };
}

/** HTTP 403 NOT_AUTHORIZED on an intraday window: the plan does not cover these bars; asking again will not help. */
function notCovered(req: FetchRequest, interval: Interval, from: number, to: number) {
  return (msg: string) =>
    new ProviderError(
      `${msg} (${interval} bars ${new Date(from).toISOString()}..${new Date(to).toISOString()}: the Polygon plan does not cover intraday bars, or not that far back; set the source's start to a date it covers)`,
      "no_data",
      { status: 403, retryable: false },
    );
}

/**
 * Intraday aggregates of [from, to] (epoch ms): windows of INTRADAY_WINDOW_DAYS, each followed
 * through its next_url pages, oldest first. Rows: ts = the bar's open instant (ISO, UTC); with
 * sessions = "regular", only bars lying at least in part in the market's regular session. A
 * window with no results is skipped; none at all over NO_DATA_SPAN_MS or more is no_data.
 */
export async function* fetchIntradayAggs(req: FetchRequest, interval: Interval, sessions: Sessions): AsyncIterable<RawRow[]> {
  const what = `${req.providerSymbol} ${interval}`;
  const barMs = INTERVAL_MS[interval];
  const regular = sessions === "regular" ? new RegularSession(req.market) : null;
  const ticker = encodeURIComponent(req.providerSymbol);
  let any = false;
  for (let a = req.from; a <= req.to; a += INTRADAY_WINDOW_DAYS * DAY) {
    const b = Math.min(a + INTRADAY_WINDOW_DAYS * DAY, req.to + 1); // the window is [a, b)
    const on403 = notCovered(req, interval, a, b - 1);
    let url: string | null = `${req.baseUrl}/v2/aggs/ticker/${ticker}/range/${POLYGON_RANGE[interval]}/${a}/${b - 1}?adjusted=false&sort=asc&limit=${AGGS_LIMIT}`;
    // Each page must start after the last one ended: a next_url that goes back is broken.
    let last = -Infinity;
    for (let page = 1; url; page++) {
      if (page > MAX_PAGES) throw new ProviderError(`polygon ${what}: more than ${MAX_PAGES} pages for ${INTRADAY_WINDOW_DAYS} days (next_url does not end)`, "bad_response");
      const body: Aggs = await aggsPage(url, req, what, on403);
      const results = body.results ?? [];
      any ||= results.length > 0;
      const rows: RawRow[] = [];
      for (let i = 0; i < results.length; i++) {
        const r: Partial<Record<string, unknown>> = results[i] && typeof results[i] === "object" ? results[i]! : {};
        const t = r.t;
        if (!isInstant(t)) {
          rows.push({ locator: `polygon:${req.providerSymbol}:${interval}:#${page}.${i}`, fields: aggFields(req.symbol, String(t), r) });
          continue;
        }
        if (t <= last) throw new ProviderError(`polygon ${what}: bars out of order across pages (next_url went back)`, "bad_response");
        last = t;
        if (t < a || t >= b) continue; // another window's (or outside the range asked)
        if (regular) {
          if (t >= regular.close || t < regular.from) regular.moveTo(t);
          if (t + barMs <= regular.open || t >= regular.close) continue;
        }
        const iso = new Date(t).toISOString();
        rows.push({ locator: `polygon:${req.providerSymbol}:${interval}:${iso}`, fields: aggFields(req.symbol, iso, r) });
      }
      if (rows.length) yield rows;
      url = nextPageUrl(body.next_url, req, what);
    }
  }
  if (!any && req.to - req.from >= NO_DATA_SPAN_MS)
    throw new ProviderError(`polygon ${what}: no data in ${new Date(req.from).toISOString()}..${new Date(req.to).toISOString()} (unknown ticker or no trading)`, "no_data");
}
