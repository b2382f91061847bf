// Alpha Vantage TIME_SERIES_DAILY: `Time Series (Daily)` keyed by date, newest first, values
// as strings. Its throttling comes as HTTP 200 with a "Note" or "Information" message, and a
// bad symbol as 200 with "Error Message". Latest quotes (mode = "quote"): GLOBAL_QUOTE, one
// symbol per request → {"Global Quote": {"01. symbol", "02. open", "03. high", "04. low",
// "05. price", "06. volume", "07. latest trading day", ...}}; `{"Global Quote": {}}` for a
// symbol it does not know.
import type { RawRow } from "../domain/bar.ts";
import { providerSpelling } from "../domain/symbols.ts";
import { ProviderError, parseJsonBody } from "../lib/http.ts";
import { providerCall, providerDescriptor, type FetchRequest, type ProviderImpl, type QuoteRequest } from "./provider.ts";

const COMPACT_DAYS = 100; // "compact" returns the newest 100 sessions

/** An Alpha Vantage answer as JSON, after its 200-with-a-message errors and throttling. */
function avJson(res: Response, body: string, providerSymbol: string): any {
  const json = parseJsonBody(body, `alphavantage ${providerSymbol}`);
  const note = json?.Note ?? json?.Information;
  if (typeof note === "string") {
    // Throttling in a 200: per minute it passes (retry after a pause); a per-day cap does
    // not, so the provider is not called again for an hour.
    const text = `alphavantage ${providerSymbol}: ${note.slice(0, 160)}`;
    if (/per day/i.test(note) && !/per minute/i.test(note)) throw new ProviderError(text, "rate_limited", { quotaExhaustedForMs: 3_600_000 });
    throw new ProviderError(text, "rate_limited", { retryable: true });
  }
  const error = json?.["Error Message"];
  if (typeof error === "string") {
    const cause = /apikey/i.test(error) ? "auth" : "not_found";
    throw new ProviderError(`alphavantage ${providerSymbol}: ${error.slice(0, 160)}`, cause);
  }
  if (!res.ok) throw new ProviderError(`alphavantage ${providerSymbol}: HTTP ${res.status}`, "client_error", { status: res.status });
  return json;
}

/** The object under `key` of one Alpha Vantage call's answer (a time series, a quote). */
function avCall<T>(req: FetchRequest | QuoteRequest, url: string, providerSymbol: string, key: string): Promise<T> {
  return providerCall(req, url, (res, body) => {
    const value = avJson(res, body, providerSymbol)?.[key];
    if (!value || typeof value !== "object") throw new ProviderError(`alphavantage ${providerSymbol}: no "${key}" in the response`, "bad_response", { retryable: true });
    return value as T;
  });
}

export const alphaVantageImpl: ProviderImpl = {
  providerSymbol: (ticker, market) => providerSpelling("alphavantage", ticker, market),
  async *fetchDaily(req) {
    // compact covers ~140 calendar days; anything older needs the full series.
    const outputsize = Date.now() - req.from < (COMPACT_DAYS * 7) / 5 * 86_400_000 - 10 * 86_400_000 ? "compact" : "full";
    const url = `${req.baseUrl}/query?function=TIME_SERIES_DAILY&symbol=${encodeURIComponent(req.providerSymbol)}&outputsize=${outputsize}&datatype=json&apikey=${encodeURIComponent(req.apiKey ?? "")}`;
    const series = await avCall<Record<string, Record<string, string>>>(req, url, req.providerSymbol, "Time Series (Daily)");
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
  },
};

alphaVantageImpl.quotes = {
  batch: 1,
  async fetch(req) {
    const { symbol, providerSymbol } = req.symbols[0]!;
    const url = `${req.baseUrl}/query?function=GLOBAL_QUOTE&symbol=${encodeURIComponent(providerSymbol)}&datatype=json&apikey=${encodeURIComponent(req.apiKey ?? "")}`;
    const q = await avCall<Record<string, string>>(req, url, providerSymbol, "Global Quote");
    const date = q["07. latest trading day"];
    if (!date) return { rows: [], missing: [symbol] };
    const fields = { symbol, ts: date, open: q["02. open"], high: q["03. high"], low: q["04. low"], close: q["05. price"], volume: q["06. volume"] ?? "" };
    return { rows: [{ locator: `alphavantage:quote:${providerSymbol}:${date}`, fields }], missing: [] };
  },
};

// The free tier: 5 calls per minute (and a daily cap).
export const alphaVantageDescriptor = providerDescriptor({
  type: "alphavantage",
  summary: "Alpha Vantage daily bars, or its latest quotes (free tier: 5 calls a minute)",
  defaults: { baseUrl: "https://www.alphavantage.co", rateLimit: { perMinute: 5 }, concurrency: 1 },
  impl: alphaVantageImpl,
});
