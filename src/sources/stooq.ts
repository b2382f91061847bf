// Stooq's daily CSV download, one request per symbol: `/q/d/l/?s=<sym>&i=d&d1=&d2=`, for every
// market whose file spells its symbols for Stooq (WSE bare lower-case tickers `pkn`, NYSE `.us`,
// LSE `.uk`, XETRA `.de`, …): nothing here is market-specific. A row's Date is the session date
// at the market, which is a daily bar's ts as every provider stores it (00:00Z of that date), and
// d1/d2 are the UTC dates of the range, i.e. those session dates. Currencies and indices come
// without a Volume column. Stooq answers 200 for everything: `No data` for an unknown symbol,
// `Exceeded the daily hits limit` when throttled.
// Latest quotes (mode = "quote") come from the light quote CSV, many symbols per request:
// `/q/l/?s=pkn+msft.us&f=sd2t2ohlcv&h&e=csv` → `Symbol,Date,Time,Open,High,Low,Close,Volume`,
// one line per symbol, `N/D` in every field for a symbol Stooq does not know.
import type { RawRow } from "../domain/bar.ts";
import { providerSpelling } from "../domain/symbols.ts";
import { ProviderError } from "../lib/http.ts";
import { NO_DATA_SPAN_MS, providerCall, providerDescriptor, type ProviderImpl } from "./provider.ts";
import { splitCsvLine } from "./csv.ts";

const compact = (ms: number) => new Date(ms).toISOString().slice(0, 10).replace(/-/g, "");

/** Stooq's daily-limit answer (HTTP 200, plain text): no calls for an hour (retrying in seconds would not help). */
function checkLimit(body: string, what: string) {
  if (body.trimStart().slice(0, 64).toLowerCase().startsWith("exceeded the daily hits limit"))
    throw new ProviderError(`stooq ${what}: exceeded the daily hits limit`, "rate_limited", { quotaExhaustedForMs: 3_600_000 });
}

/** An HTTP error status (Stooq answers 200 for most failures; checkLimit and the body tell those). */
function checkStatus(res: Response, what: string) {
  if (!res.ok) throw new ProviderError(`stooq ${what}: HTTP ${res.status}`, res.status === 404 ? "not_found" : "client_error", { status: res.status });
}

export const stooqImpl: ProviderImpl = {
  providerSymbol: (ticker, market) => providerSpelling("stooq", ticker, market),
  async *fetchDaily(req) {
    const url = `${req.baseUrl}/q/d/l/?s=${encodeURIComponent(req.providerSymbol)}&i=d&d1=${compact(req.from)}&d2=${compact(req.to)}${req.apiKey ? `&apikey=${encodeURIComponent(req.apiKey)}` : ""}`;
    const text = await providerCall(req, url, (res, body) => {
      checkLimit(body, req.providerSymbol);
      checkStatus(res, req.providerSymbol);
      return body;
    });
    const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
    if (lines.length === 0 || /^no data/i.test(lines[0]!.trim())) {
      if (req.to - req.from >= NO_DATA_SPAN_MS) throw new ProviderError(`stooq ${req.providerSymbol}: no data (unknown symbol or no trading in the range)`, "no_data");
      return;
    }
    const header = splitCsvLine(lines[0]!, ",").map((h) => h.trim().toLowerCase());
    const col = (n: string) => header.indexOf(n);
    const [d, o, h, l, c, vol] = [col("date"), col("open"), col("high"), col("low"), col("close"), col("volume")];
    if (d < 0 || o < 0 || h < 0 || l < 0 || c < 0)
      throw new ProviderError(`stooq ${req.providerSymbol}: unexpected CSV header ${JSON.stringify(lines[0]!.slice(0, 80))}`, "bad_response", { retryable: true });
    const rows: RawRow[] = [];
    for (let i = 1; i < lines.length; i++) {
      const f = splitCsvLine(lines[i]!, ",");
      // A body cut mid-line leaves a short last row: that is a broken response, not a broken bar.
      if (i === lines.length - 1 && f.length < header.length && !text.endsWith("\n"))
        throw new ProviderError(`stooq ${req.providerSymbol}: the response ends mid-row`, "bad_response", { retryable: true });
      rows.push({
        locator: `stooq:${req.providerSymbol}:${f[d]}`,
        fields: { symbol: req.symbol, ts: f[d], open: f[o], high: f[h], low: f[l], close: f[c], ...(vol >= 0 ? { volume: f[vol] ?? "" } : {}) },
      });
    }
    yield rows;
  },
};

/** Symbols per light-quote request: Stooq takes many; a URL this long stays well under limits. */
const QUOTE_BATCH = 50;

stooqImpl.quotes = {
  batch: QUOTE_BATCH,
  async fetch(req) {
    const list = req.symbols.map((s) => encodeURIComponent(s.providerSymbol)).join("+");
    const what = req.symbols.length === 1 ? req.symbols[0]!.providerSymbol : `${req.symbols.length} symbols`;
    const url = `${req.baseUrl}/q/l/?s=${list}&f=sd2t2ohlcv&h&e=csv${req.apiKey ? `&apikey=${encodeURIComponent(req.apiKey)}` : ""}`;
    const text = await providerCall(req, url, (res, body) => {
      checkLimit(body, what);
      checkStatus(res, `quotes (${what})`);
      const lines = body.split(/\r?\n/).filter((l) => l.trim() !== "");
      const header = splitCsvLine(lines[0] ?? "", ",").map((h) => h.trim().toLowerCase());
      if (["symbol", "date", "open", "high", "low", "close"].some((c) => !header.includes(c)))
        throw new ProviderError(`stooq quotes (${what}): unexpected reply ${JSON.stringify(body.slice(0, 80))}`, "bad_response", { retryable: true });
      // A body cut short is a broken reply, retried whole: never half of a poll.
      if (!body.endsWith("\n") && splitCsvLine(lines.at(-1)!, ",").length < header.length)
        throw new ProviderError(`stooq quotes (${what}): the response ends mid-row`, "bad_response", { retryable: true });
      return { header, lines: lines.slice(1) };
    });
    const col = (n: string) => text.header.indexOf(n);
    const [sy, d, o, h, l, c, vol] = [col("symbol"), col("date"), col("open"), col("high"), col("low"), col("close"), col("volume")];
    const wanted = new Map(req.symbols.map((s) => [s.providerSymbol.toLowerCase(), s.symbol]));
    const rows: RawRow[] = [];
    const seen = new Set<string>();
    for (const line of text.lines) {
      const f = splitCsvLine(line, ",");
      const key = (f[sy] ?? "").trim().toLowerCase();
      const symbol = wanted.get(key);
      if (!symbol) continue; // not one we asked for
      const raw = (f[d] ?? "").trim();
      if (raw === "" || raw === "N/D") continue; // unknown to Stooq
      seen.add(key);
      // The light endpoint prints dates as YYYY-MM-DD (d2) or YYYYMMDD.
      const date = /^\d{8}$/.test(raw) ? `${raw.slice(0, 4)}-${raw.slice(4, 6)}-${raw.slice(6, 8)}` : raw;
      rows.push({
        locator: `stooq:quote:${key}:${date}`,
        fields: { symbol, ts: date, open: f[o], high: f[h], low: f[l], close: f[c], ...(vol >= 0 ? { volume: f[vol] === "N/D" ? "" : (f[vol] ?? "") } : {}) },
      });
    }
    return { rows, missing: req.symbols.filter((s) => !seen.has(s.providerSymbol.toLowerCase())).map((s) => s.symbol) };
  },
};

export const stooqDescriptor = providerDescriptor({
  type: "stooq",
  apiKey: "optional",
  summary: "Stooq daily bars over HTTP (every market with a Stooq spelling: WSE, NYSE, LSE, XETRA, …), or its latest quotes",
  defaults: { baseUrl: "https://stooq.com", rateLimit: { perSecond: 1 }, concurrency: 2, symbols: ["PKN.WA", "CDR.WA"] },
  impl: stooqImpl,
});
