// Polygon.io v2 aggregates: `results[]` of {t, o, h, l, c, v, vw, n}, paginated by `next_url`
// (which carries no key: we add it), with `status` and `error` on failures. US listings only.
// Latest quotes (mode = "quote"): the stocks snapshot, many tickers per request,
// `/v2/snapshot/locale/us/markets/stocks/tickers?tickers=AAPL,MSFT` → `tickers[]` of
// {ticker, day: {o, h, l, c, v, vw}, updated (ns), prevDay, min, lastTrade}. Snapshots are
// cleared at 3:30 ET and refill as trades come: a zero `day` is no bar yet. (Snapshots need a
// paid Polygon plan; the free tier answers 403, reported as auth.)
import * as v from "valibot";
import type { RawRow } from "../domain/bar.ts";
import { ProviderError, parseJsonBody, providerRequest } from "./http.ts";
import { NO_DATA_SPAN_MS, dateInZone, providerConfigEntries, providerSource, type ProviderConfig, type ProviderImpl } from "./provider.ts";
import type { SourceContext } from "./types.ts";

export const polygonSourceSchema = v.strictObject(
  // The free tier allows 5 calls per minute.
  providerConfigEntries("polygon", { baseUrl: "https://api.polygon.io", rateLimit: { perMinute: 5 }, concurrency: 2 }),
);
export type PolygonSourceConfig = v.InferOutput<typeof polygonSourceSchema>;

type Aggs = { status?: string; error?: string; message?: string; results?: { t: number; o: number; h: number; l: number; c: number; v: number; vw?: number; n?: number }[]; next_url?: string };

const withKey = (url: string, key: string | undefined) => (key ? `${url}${url.includes("?") ? "&" : "?"}apiKey=${encodeURIComponent(key)}` : url);

export const polygonImpl: ProviderImpl = {
  providerSymbol: (ticker, market) => (market === "NYSE" ? ticker.replace(/-/g, ".") : null),
  async *fetchDaily(req) {
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    let url: string | null =
      `${req.baseUrl}/v2/aggs/ticker/${encodeURIComponent(req.providerSymbol)}/range/1/day/${day(req.from)}/${day(req.to)}?adjusted=false&sort=asc&limit=50000`;
    let page = 0;
    while (url) {
      page++;
      const body: Aggs = await providerRequest(withKey(url, req.apiKey), {
        limiter: req.limiter,
        retry: req.retry,
        timeoutMs: req.timeoutMs,
        signal: req.signal,
        parse: (res, text) => {
          const json = parseJsonBody(text, `polygon ${req.providerSymbol}`) as Aggs;
          const msg = `polygon ${req.providerSymbol}: ${json.error ?? json.message ?? `HTTP ${res.status}`}`;
          if (res.status === 401 || res.status === 403) throw new ProviderError(msg, "auth", { status: res.status });
          if (res.status === 404) throw new ProviderError(msg, "not_found", { status: res.status });
          if (!res.ok || json.status === "ERROR") throw new ProviderError(msg, "client_error", { status: res.status });
          return json;
        },
      });
      const results = body.results ?? [];
      // An unknown ticker is a 200 with no results. Over a week or more that is worth a failure
      // record; over a few days (an incremental run over a weekend) it is just nothing new.
      if (page === 1 && results.length === 0 && !body.next_url && req.to - req.from >= NO_DATA_SPAN_MS)
        throw new ProviderError(`polygon ${req.providerSymbol}: no data in ${day(req.from)}..${day(req.to)} (unknown ticker or no trading)`, "no_data");
      const rows: RawRow[] = results.map((r) => {
        // Daily aggregates start at midnight New York time.
        const date = dateInZone(r.t, "America/New_York");
        return {
          locator: `polygon:${req.providerSymbol}:${date}`,
          fields: { symbol: req.symbol, ts: date, open: r.o, high: r.h, low: r.l, close: r.c, volume: r.v, trades: r.n, turnover: r.vw !== undefined ? r.vw * r.v : undefined },
        };
      });
      yield rows;
      url = body.next_url ?? null;
    }
  },
};

type Snapshot = { status?: string; error?: string; message?: string; tickers?: { ticker?: string; updated?: number; day?: { o?: number; h?: number; l?: number; c?: number; v?: number; vw?: number } }[] };

polygonImpl.quotes = {
  batch: 50,
  async fetch(req) {
    const list = req.symbols.map((s) => s.providerSymbol).join(",");
    const what = req.symbols.length === 1 ? list : `${req.symbols.length} tickers`;
    const url = `${req.baseUrl}/v2/snapshot/locale/us/markets/stocks/tickers?tickers=${encodeURIComponent(list)}`;
    const body: Snapshot = await providerRequest(withKey(url, req.apiKey), {
      limiter: req.limiter,
      retry: req.retry,
      timeoutMs: req.timeoutMs,
      signal: req.signal,
      parse: (res, text) => {
        const json = parseJsonBody(text, `polygon snapshot (${what})`) as Snapshot;
        const msg = `polygon snapshot (${what}): ${json.error ?? json.message ?? `HTTP ${res.status}`}`;
        if (res.status === 401 || res.status === 403) throw new ProviderError(msg, "auth", { status: res.status });
        if (!res.ok || json.status === "ERROR") throw new ProviderError(msg, "client_error", { status: res.status });
        if (json.tickers !== undefined && !Array.isArray(json.tickers)) throw new ProviderError(`${msg}: tickers is not a list`, "bad_response", { retryable: true });
        return json;
      },
    });
    const bySymbol = new Map(req.symbols.map((s) => [s.providerSymbol, s.symbol]));
    const rows: RawRow[] = [];
    const seen = new Set<string>();
    for (const t of body.tickers ?? []) {
      const symbol = t.ticker !== undefined ? bySymbol.get(t.ticker) : undefined;
      if (!symbol) continue;
      seen.add(t.ticker!);
      const d = t.day;
      if (!d || !(d.o! > 0) || typeof t.updated !== "number") continue; // cleared overnight: no bar yet
      // `updated` is in nanoseconds (older answers: milliseconds).
      const ms = t.updated > 1e15 ? Math.floor(t.updated / 1e6) : t.updated;
      const date = dateInZone(ms, "America/New_York");
      rows.push({
        locator: `polygon:snapshot:${t.ticker}:${date}`,
        fields: { symbol, ts: date, open: d.o, high: d.h, low: d.l, close: d.c, volume: d.v ?? "", turnover: d.vw !== undefined && d.v !== undefined ? d.vw * d.v : undefined },
      });
    }
    return { rows, missing: req.symbols.filter((s) => !seen.has(s.providerSymbol)).map((s) => s.symbol) };
  },
};

export function polygonSource(name: string, cfg: PolygonSourceConfig, ctx?: SourceContext) {
  return providerSource(name, cfg as ProviderConfig, polygonImpl, ctx);
}
