// Alpha Vantage TIME_SERIES_DAILY: `Time Series (Daily)` keyed by date, newest first, values
// as strings. Its throttling comes as HTTP 200 with a "Note" or "Information" message, and a
// bad symbol as 200 with "Error Message". Latest quotes (mode = "quote"): GLOBAL_QUOTE, one
// symbol per request → {"Global Quote": {"01. symbol", "02. open", "03. high", "04. low",
// "05. price", "06. volume", "07. latest trading day", ...}}; `{"Global Quote": {}}` for a
// symbol it does not know.
// Intraday (1m, 5m, 15m, 30m, 1h): TIME_SERIES_INTRADAY with interval=1min|5min|15min|30min|60min,
// outputsize=full, adjusted=false (raw prices, as every bar ticksync stores) and month=YYYY-MM:
// one request per calendar month from the range's first to its last (the current one included;
// Alpha Vantage serves "any month since 2000-01"). `Time Series (5min)` is keyed by local
// "YYYY-MM-DD HH:MM:SS" in Meta Data's "6. Time Zone" (US/Eastern), and a key is the bar's start
// (an extended-hours 5min series ends at 19:55:00, the session at 20:00), so a key read in that
// zone is the bar's open instant. extended_hours follows the source's `sessions` option. Without
// a premium plan the call answers 200 {"Information": "… This is a premium endpoint …"}: a clear
// failure, not a rate limit to wait out.
import type { Interval, RawRow } from "../domain/bar.ts";
import { MARKET_TIMEZONES } from "../domain/calendar.ts";
import { providerSpelling } from "../domain/symbols.ts";
import { parseTimestamp } from "../domain/time.ts";
import { ProviderError, parseJsonBody, type FailureCause } from "../lib/http.ts";
import * as v from "valibot";
import { dateInZone, knownZone, providerCall, providerDescriptor, type FetchRequest, type ProviderImpl, type QuoteRequest } from "./provider.ts";

const COMPACT_DAYS = 100; // "compact" returns the newest 100 sessions

/** Alpha Vantage's spelling of each intraday interval ticksync loads from it. */
export const AV_INTERVAL: Partial<Record<Interval, string>> = { "1m": "1min", "5m": "5min", "15m": "15min", "30m": "30min", "1h": "60min" };
const AV_INTERVALS: Interval[] = ["1m", "5m", "15m", "30m", "1h", "1d"];
/** The first month TIME_SERIES_INTRADAY serves. */
const FIRST_MONTH = "2000-01";

/** Words of Alpha Vantage's rate-limit messages ("…standard API rate limit is 25 requests per day…", "…5 calls per minute…"). */
const RATE_LIMIT_TEXT = /rate limit|call frequency|calls per|requests per/i;

type AvOptions = { providerSymbol: string; apiKey?: string; errorCause: FailureCause };

/** An Alpha Vantage message with the key masked: its rate-limit text quotes the key it saw. */
function avMessage(text: string, apiKey: string | undefined): string {
  const cut = text.slice(0, 200);
  return apiKey && apiKey.length >= 4 ? cut.split(apiKey).join("***") : cut;
}

/** An Alpha Vantage answer as JSON, after its 200-with-a-message errors and throttling. */
function avJson(res: Response, body: string, o: AvOptions): any {
  const json = parseJsonBody(body, `alphavantage ${o.providerSymbol}`);
  const note = json?.Note ?? json?.Information;
  if (typeof note === "string") {
    const text = `alphavantage ${o.providerSymbol}: ${avMessage(note, o.apiKey)}`;
    // "This is a premium endpoint. You may subscribe to any of the premium plans …": the key's plan
    // lacks the call; asking again will not change that (its rate-limit texts mention premium plans too).
    if (/premium endpoint/i.test(note) && !RATE_LIMIT_TEXT.test(note)) throw new ProviderError(`${text} [premium-only for this API key]`, "auth");
    // Throttling in a 200: per minute it passes (retry after a pause); a per-day cap does
    // not, so the provider is not called again for an hour.
    if (/per day/i.test(note) && !/per minute/i.test(note)) throw new ProviderError(text, "rate_limited", { quotaExhaustedForMs: 3_600_000 });
    throw new ProviderError(text, "rate_limited", { retryable: true });
  }
  const error = json?.["Error Message"];
  if (typeof error === "string") {
    const cause = /apikey/i.test(error) ? "auth" : o.errorCause;
    throw new ProviderError(`alphavantage ${o.providerSymbol}: ${avMessage(error, o.apiKey)}`, cause);
  }
  if (!res.ok) throw new ProviderError(`alphavantage ${o.providerSymbol}: HTTP ${res.status}`, "client_error", { status: res.status });
  return json;
}

/** One Alpha Vantage call's answer, with the object under `key` (a time series, a quote) checked. */
function avCall<T>(req: FetchRequest | QuoteRequest, url: string, key: string, o: AvOptions): Promise<{ json: any; value: T }> {
  return providerCall(req, url, (res, body) => {
    const json = avJson(res, body, o);
    const value = json?.[key];
    if (!value || typeof value !== "object") throw new ProviderError(`alphavantage ${o.providerSymbol}: no "${key}" in the response`, "bad_response", { retryable: true });
    return { json, value: value as T };
  });
}

/** `YYYY-MM` months from `first` to `last`, both included. */
export function monthsBetween(first: string, last: string): string[] {
  const out: string[] = [];
  let [y, m] = [Number(first.slice(0, 4)), Number(first.slice(5, 7))];
  for (let s = first; s <= last; s = `${y}-${String(m).padStart(2, "0")}`) {
    out.push(s);
    if (++m > 12) [y, m] = [y + 1, 1];
  }
  return out;
}

type Series = Record<string, Record<string, unknown>>;

/** One answer's intraday rows in [from, to], oldest first: ts = the key read in the answer's time zone. */
function intradayRows(req: FetchRequest, json: any, series: Series): RawRow[] {
  const tz = knownZone(json?.["Meta Data"]?.["6. Time Zone"], MARKET_TIMEZONES[req.market]);
  const out: { t: number; row: RawRow }[] = [];
  for (const [key, entry] of Object.entries(series)) {
    const t = parseTimestamp(key, "auto", tz);
    // Outside the range asked is left out; a key that is no time is a row for the quarantine.
    if (t !== null && (t < req.from || t > req.to)) continue;
    const values: Record<string, unknown> = entry && typeof entry === "object" ? entry : {};
    const ts = t === null ? key : new Date(t).toISOString();
    out.push({
      t: t ?? -Infinity,
      row: { locator: `alphavantage:${req.providerSymbol}:${key}`, fields: { symbol: req.symbol, ts, open: values["1. open"], high: values["2. high"], low: values["3. low"], close: values["4. close"], volume: values["5. volume"] ?? "" } },
    });
  }
  return out.sort((a, b) => a.t - b.t).map((x) => x.row);
}

/**
 * Intraday bars of [from, to], one page per calendar month (in the market's zone). A month the
 * symbol has no bars in (before its listing, say) may be answered with "Error Message" as an
 * unknown symbol is; so the first such answer, before any month had bars, is checked once against
 * the most recent days: if those fail too the symbol is unknown (no_data), else the month is empty.
 */
async function* fetchIntraday(req: FetchRequest, interval: Interval, extended: boolean): AsyncIterable<RawRow[]> {
  const avInterval = AV_INTERVAL[interval]!;
  const key = `Time Series (${avInterval})`;
  const o: AvOptions = { providerSymbol: req.providerSymbol, apiKey: req.apiKey, errorCause: "no_data" };
  const tz = MARKET_TIMEZONES[req.market];
  const base =
    `${req.baseUrl}/query?function=TIME_SERIES_INTRADAY&symbol=${encodeURIComponent(req.providerSymbol)}&interval=${avInterval}` +
    `&adjusted=false&extended_hours=${extended}&datatype=json&apikey=${encodeURIComponent(req.apiKey ?? "")}`;
  const first = dateInZone(req.from, tz).slice(0, 7);
  const last = dateInZone(Math.min(req.to, Date.now()), tz).slice(0, 7);
  let known = false;
  for (const month of monthsBetween(first < FIRST_MONTH ? FIRST_MONTH : first, last)) {
    let got: { json: any; value: Series };
    try {
      got = await avCall<Series>(req, `${base}&outputsize=full&month=${month}`, key, o);
    } catch (e) {
      if (!(e instanceof ProviderError) || e.failure !== "no_data") throw e;
      if (!known) {
        await avCall(req, `${base}&outputsize=compact`, key, o).catch((p: unknown) => {
          if (p instanceof ProviderError && p.failure === "no_data") throw new ProviderError(`${p.message} (no intraday bars for ${month} nor for the latest days: unknown symbol?)`, "no_data");
          throw p;
        });
        known = true;
      }
      continue;
    }
    known = true;
    yield intradayRows(req, got.json, got.value);
  }
}

async function* fetchDaily(req: FetchRequest): AsyncIterable<RawRow[]> {
  // compact covers ~140 calendar days; anything older needs the full series.
  const outputsize = Date.now() - req.from < (COMPACT_DAYS * 7) / 5 * 86_400_000 - 10 * 86_400_000 ? "compact" : "full";
  const url = `${req.baseUrl}/query?function=TIME_SERIES_DAILY&symbol=${encodeURIComponent(req.providerSymbol)}&outputsize=${outputsize}&datatype=json&apikey=${encodeURIComponent(req.apiKey ?? "")}`;
  const { value: series } = await avCall<Series>(req, url, "Time Series (Daily)", { providerSymbol: req.providerSymbol, apiKey: req.apiKey, errorCause: "not_found" });
  const rows: RawRow[] = [];
  for (const [date, entry] of Object.entries(series)) {
    const t = Date.parse(date);
    // Outside the range asked is left out; a key that is no date is a row for the quarantine.
    if (!Number.isNaN(t) && !(t >= req.from && t <= req.to)) continue;
    const values: Record<string, unknown> = entry && typeof entry === "object" ? entry : {};
    rows.push({
      locator: `alphavantage:${req.providerSymbol}:${date}`,
      fields: { symbol: req.symbol, ts: date, open: values["1. open"], high: values["2. high"], low: values["3. low"], close: values["4. close"], volume: values["5. volume"] ?? "" },
    });
  }
  rows.sort((a, b) => String(a.fields.ts).localeCompare(String(b.fields.ts)));
  yield rows;
}

export type AvSessions = "regular" | "extended";

/** The provider for one source: intraday bars of the regular session only, or extended hours too. */
export function alphaVantageImplFor(sessions: AvSessions): ProviderImpl {
  return {
    providerSymbol: (ticker, market) => providerSpelling("alphavantage", ticker, market),
    fetchDaily(req) {
      const interval = req.interval ?? "1d";
      return AV_INTERVAL[interval] ? fetchIntraday(req, interval, sessions === "extended") : fetchDaily(req);
    },
    quotes: {
      batch: 1,
      async fetch(req) {
        const { symbol, providerSymbol } = req.symbols[0]!;
        const url = `${req.baseUrl}/query?function=GLOBAL_QUOTE&symbol=${encodeURIComponent(providerSymbol)}&datatype=json&apikey=${encodeURIComponent(req.apiKey ?? "")}`;
        const { value: q } = await avCall<Record<string, string>>(req, url, "Global Quote", { providerSymbol, apiKey: req.apiKey, errorCause: "not_found" });
        const date = q["07. latest trading day"];
        if (!date) return { rows: [], missing: [symbol] };
        const fields = { symbol, ts: date, open: q["02. open"], high: q["03. high"], low: q["04. low"], close: q["05. price"], volume: q["06. volume"] ?? "" };
        return { rows: [{ locator: `alphavantage:quote:${providerSymbol}:${date}`, fields }], missing: [] };
      },
    },
  };
}

export const alphaVantageImpl = alphaVantageImplFor("regular");

// The free tier: 5 calls per minute (and a daily cap); intraday needs a premium plan.
export const alphaVantageDescriptor = providerDescriptor({
  type: "alphavantage",
  apiKey: "required",
  summary: "Alpha Vantage daily bars, intraday bars (1m to 1h, premium plans) or its latest quotes (free tier: 5 calls a minute)",
  defaults: { baseUrl: "https://www.alphavantage.co", rateLimit: { perMinute: 5 }, concurrency: 1, symbols: ["IBM.US"] },
  intervals: AV_INTERVALS,
  entries: {
    sessions: v.optional(
      v.pipe(
        v.picklist(["regular", "extended"], "expected regular or extended"),
        v.description("Intraday bars of the regular session only (regular), or with pre- and post-market trading too (extended: Alpha Vantage's extended_hours, 04:00-20:00 New York)."),
      ),
      "regular",
    ),
  },
  impl: (cfg) => (cfg.sessions === "extended" ? alphaVantageImplFor("extended") : alphaVantageImpl),
});
