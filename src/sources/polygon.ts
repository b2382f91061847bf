// Polygon.io, US listings: bars from the v2 aggregates, daily and intraday (polygon-aggs.ts: the
// calls, paging by `next_url`, errors; the `sessions` option for intraday bars).
// Latest quotes (mode = "quote"): the stocks snapshot, many tickers per request,
// `/v2/snapshot/locale/us/markets/stocks/tickers?tickers=AAPL,MSFT` → `tickers[]` of
// {ticker, day: {o, h, l, c, v, vw}, updated (ns), prevDay, min, lastTrade}. Snapshots are
// cleared at 3:30 ET and refill as trades come: a zero `day` is no bar yet. (Snapshots need a
// paid Polygon plan; the free tier answers 403, reported as auth.)
// Reference data (opt-in, `actions = true` / `details = true`: each is one or more extra calls
// per symbol under the same rate limit, so each is asked at most once per referenceRefreshHours
// and symbol, and splits/dividends only from a recent date on; see polygonImplWith):
// `/v3/reference/splits?ticker=` → results[] of
// {execution_date, split_from, split_to} (4-for-1: from 1, to 4), `/v3/reference/dividends?ticker=`
// → results[] of {ex_dividend_date, cash_amount, currency, pay_date, declaration_date, frequency,
// dividend_type}, both paginated by `next_url` like the aggregates; `/v3/reference/tickers/<T>` →
// results {name, primary_exchange, type, currency_name, sic_description, share_class_figi}. Cash
// amounts are as declared (not split-adjusted), and the aggregates are asked with adjusted=false,
// so stored bars are raw and a split is applied once, on read.
import * as v from "valibot";
import type { RawRow } from "../domain/bar.ts";
import { providerSpelling } from "../domain/symbols.ts";
import { isIntraday } from "../domain/rollup.ts";
import { ProviderError } from "../lib/http.ts";
import { dateInZone, isInstant, providerDescriptor, type FetchRequest, type ProviderImpl, type ProviderPage } from "./provider.ts";
import { MAX_PAGES, POLYGON_INTERVALS, fetchDailyAggs, fetchIntradayAggs, nextPageUrl, polygonGet } from "./polygon-aggs.ts";
import { sessionsEntry, type Sessions } from "./sessions.ts";
import type { Cursor } from "./types.ts";

/** Polygon's config fields beyond every provider's: the opt-in reference data. */
const referenceEntries = {
  actions: v.optional(v.pipe(v.boolean(), v.description("Splits and dividends per symbol (two more calls per symbol and refresh, more when paginated).")), false),
  details: v.optional(v.pipe(v.boolean(), v.description("Ticker details per symbol as its instrument (one more call per symbol and refresh).")), false),
  referenceRefreshHours: v.optional(
    v.pipe(v.number(), v.minValue(0), v.description("Reference data (actions, details) is asked again per symbol after this long; 0: every run.")),
    24,
  ),
  actionsOverlapDays: v.optional(
    v.pipe(
      v.number(),
      v.integer(),
      v.minValue(0),
      v.maxValue(3660),
      v.description("Splits and dividends are asked again from this many days before the newest one known (or the last ask)."),
    ),
    30,
  ),
};

type Reference<T> = { status?: string; error?: string; message?: string; results?: T; next_url?: string };
type Split = { execution_date?: string; split_from?: number; split_to?: number };
type Dividend = { ex_dividend_date?: string; cash_amount?: number; currency?: string; pay_date?: string; declaration_date?: string; frequency?: number; dividend_type?: string };
type TickerDetails = { name?: string; primary_exchange?: string; type?: string; currency_name?: string; sic_description?: string; share_class_figi?: string };

/** All pages of a /v3/reference list: `next_url` carries a cursor and no key (added again). */
async function referenceList<T>(first: string, req: FetchRequest, what: string): Promise<T[]> {
  const out: T[] = [];
  let url: string | null = first;
  for (let page = 1; url; page++) {
    if (page > MAX_PAGES) throw new ProviderError(`polygon ${what}: more than ${MAX_PAGES} pages (next_url does not end)`, "bad_response");
    const body: Reference<T[]> = await polygonGet<Reference<T[]>>(url, req, what);
    if (body.results !== undefined && !Array.isArray(body.results)) throw new ProviderError(`polygon ${what}: results is not a list`, "bad_response", { retryable: true });
    out.push(...(body.results ?? []));
    url = nextPageUrl(body.next_url, req, what);
  }
  return out;
}

const dayMs = (s: string | null | undefined) => (typeof s === "string" && /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(s)) ? Date.parse(s) : null);

/**
 * Splits and dividends of one ticker as CorporateAction records, all of them or those dated on or
 * after `since` (YYYY-MM-DD: Polygon's execution_date.gte / ex_dividend_date.gte filters);
 * malformed entries are left out.
 */
export async function polygonActions(req: FetchRequest, since: string | null = null): Promise<NonNullable<ProviderPage["actions"]>> {
  const t = encodeURIComponent(req.providerSymbol);
  const from = (field: string) => (since ? `&${field}.gte=${since}` : "");
  const splits = await referenceList<Split>(`${req.baseUrl}/v3/reference/splits?ticker=${t}${from("execution_date")}&order=asc&sort=execution_date&limit=1000`, req, `splits ${req.providerSymbol}`);
  const dividends = await referenceList<Dividend>(`${req.baseUrl}/v3/reference/dividends?ticker=${t}${from("ex_dividend_date")}&order=asc&sort=ex_dividend_date&limit=1000`, req, `dividends ${req.providerSymbol}`);
  const actions: NonNullable<ProviderPage["actions"]> = [];
  for (const sp of splits) {
    const exDate = dayMs(sp.execution_date);
    if (exDate === null || !(sp.split_from! > 0) || !(sp.split_to! > 0)) continue;
    // split_to new shares for split_from old ones: numerator/denominator.
    actions.push({ symbol: req.symbol, type: "split", exDate, numerator: sp.split_to!, denominator: sp.split_from!, amount: null, currency: null, payDate: null });
  }
  for (const d of dividends) {
    const exDate = dayMs(d.ex_dividend_date);
    if (exDate === null || !(d.cash_amount! > 0)) continue;
    actions.push({ symbol: req.symbol, type: "dividend", exDate, numerator: null, denominator: null, amount: d.cash_amount!, currency: d.currency?.toUpperCase() ?? null, payDate: dayMs(d.pay_date) });
  }
  return actions;
}

/** Ticker details as the instrument; an unknown ticker (404) is no instrument, not a failure. */
export async function polygonInstrument(req: FetchRequest): Promise<ProviderPage["instrument"]> {
  const body = await polygonGet<Reference<TickerDetails>>(`${req.baseUrl}/v3/reference/tickers/${encodeURIComponent(req.providerSymbol)}`, req, `ticker ${req.providerSymbol}`, { on404: "null" });
  const r = body?.results;
  if (!r || typeof r !== "object") return undefined;
  // SIC's description is an industry ("ELECTRONIC COMPUTERS"); Polygon gives no sector or ISIN.
  return { symbol: req.symbol, name: r.name ?? null, exchange: r.primary_exchange ?? null, currency: r.currency_name?.toUpperCase() ?? null, type: r.type ?? null, sector: null, industry: r.sic_description ?? null, isin: null };
}

const DAY = 86_400_000;
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * What the stream's cursor keeps of the reference calls, committed with the batch their records
 * came with (a crash before that commit only means asking again): when actions and details were
 * last asked (epoch ms) and the newest ex-date of any split or dividend seen (YYYY-MM-DD).
 */
export type ReferenceState = { actionsAt: number | null; actionsNewest: string | null; detailsAt: number | null };

export function referenceState(cursor: Cursor | null): ReferenceState {
  const num = (x: unknown) => (typeof x === "number" && Number.isFinite(x) ? x : null);
  const newest = cursor?.actionsNewest;
  return { actionsAt: num(cursor?.actionsAt), actionsNewest: typeof newest === "string" && dayMs(newest) !== null ? newest : null, detailsAt: num(cursor?.detailsAt) };
}

/**
 * First ex-date to ask splits and dividends from: the earlier of the newest one known and the day
 * of the last ask, less the overlap (records Polygon publishes or corrects late, and an
 * announced dividend whose ex-date is still ahead); null: never asked, so everything.
 */
export function actionsSince(state: ReferenceState, overlapDays: number): string | null {
  if (state.actionsAt === null) return null;
  const asked = isoDay(state.actionsAt);
  const through = state.actionsNewest !== null && state.actionsNewest < asked ? state.actionsNewest : asked;
  return isoDay(Date.parse(through) - overlapDays * DAY);
}

export type ReferenceOptions = { actions: boolean; details: boolean; refreshHours: number; overlapDays: number; sessions?: Sessions };

/**
 * Polygon's impl with the reference endpoints when opted in: asked with a symbol's first page of
 * bars when its last ask is older than refreshHours (a paid, rate-limited API is not asked daily
 * facts on every 5-minute run), splits and dividends incrementally from actionsSince.
 */
export function polygonImplWith(ref: ReferenceOptions): ProviderImpl {
  const bars: ProviderImpl = ref.sessions === undefined || ref.sessions === "regular" ? polygonImpl : { ...polygonBarsImpl(ref.sessions), quotes: polygonQuotes };
  if (!ref.actions && !ref.details) return bars;
  const refreshMs = ref.refreshHours * 3_600_000;
  // A time ahead of the clock (the clock was set back) counts as due rather than never.
  const due = (at: number | null, now: number) => at === null || at > now || now - at >= refreshMs;
  return {
    ...bars,
    async *fetchDaily(req) {
      const now = Date.now();
      const was = referenceState(req.cursor);
      const actions = ref.actions && due(was.actionsAt, now);
      const details = ref.details && due(was.detailsAt, now);
      if (!actions && !details) return yield* bars.fetchDaily(req);
      let first = true;
      for await (const got of bars.fetchDaily(req)) {
        const rows = Array.isArray(got) ? got : got.rows;
        if (!first) {
          yield rows;
          continue;
        }
        // After the first page of bars (an unknown ticker has failed by then): the actions and
        // instrument ride with it, whatever the range (they are facts for any read), and so does
        // the record of having asked.
        first = false;
        const page: ProviderPage = { rows, cursor: {} };
        if (actions) {
          page.actions = await polygonActions(req, actionsSince(was, ref.overlapDays));
          let newest = was.actionsNewest;
          for (const a of page.actions) if (newest === null || isoDay(a.exDate) > newest) newest = isoDay(a.exDate);
          Object.assign(page.cursor!, { actionsAt: now, actionsNewest: newest });
        }
        if (details) {
          page.instrument = await polygonInstrument(req);
          page.cursor!.detailsAt = now;
        }
        yield page;
      }
    },
  };
}

/** Polygon's bars: daily, or intraday with the sessions asked for (see polygon-aggs.ts). */
export function polygonBarsImpl(sessions: Sessions): ProviderImpl {
  return {
    providerSymbol: (ticker, market) => providerSpelling("polygon", ticker, market),
    fetchDaily(req) {
      const interval = req.interval ?? "1d";
      return isIntraday(interval) ? fetchIntradayAggs(req, interval, sessions) : fetchDailyAggs(req, interval);
    },
  };
}

type Snapshot = { status?: string; error?: string; message?: string; tickers?: { ticker?: string; updated?: number; day?: { o?: number; h?: number; l?: number; c?: number; v?: number; vw?: number } }[] };

const polygonQuotes: NonNullable<ProviderImpl["quotes"]> = {
  batch: 50,
  async fetch(req) {
    const list = req.symbols.map((s) => s.providerSymbol).join(",");
    const what = req.symbols.length === 1 ? list : `${req.symbols.length} tickers`;
    const url = `${req.baseUrl}/v2/snapshot/locale/us/markets/stocks/tickers?tickers=${encodeURIComponent(list)}`;
    const body = await polygonGet<Snapshot>(url, req, `snapshot (${what})`, {
      on404: "client_error",
      check: (json, msg) => {
        if (json.tickers !== undefined && !Array.isArray(json.tickers)) throw new ProviderError(`${msg}: tickers is not a list`, "bad_response", { retryable: true });
      },
    });
    const bySymbol = new Map(req.symbols.map((s) => [s.providerSymbol, s.symbol]));
    const rows: RawRow[] = [];
    const seen = new Set<string>();
    for (const t of body.tickers ?? []) {
      const symbol = t && typeof t.ticker === "string" ? bySymbol.get(t.ticker) : undefined;
      if (!symbol) continue;
      seen.add(t.ticker!);
      const d = t.day;
      if (!d || typeof d !== "object" || !(d.o! > 0) || typeof t.updated !== "number") continue; // cleared overnight: no bar yet
      // `updated` is in nanoseconds (older answers: milliseconds).
      const ms = t.updated > 1e15 ? Math.floor(t.updated / 1e6) : t.updated;
      if (!isInstant(ms)) {
        seen.delete(t.ticker!); // no time: no quote of any session, so missing
        continue;
      }
      const date = dateInZone(ms, "America/New_York");
      rows.push({
        locator: `polygon:snapshot:${t.ticker}:${date}`,
        fields: { symbol, ts: date, open: d.o, high: d.h, low: d.l, close: d.c, volume: d.v ?? "", turnover: d.vw !== undefined && d.v !== undefined ? d.vw * d.v : undefined },
      });
    }
    return { rows, missing: req.symbols.filter((s) => !seen.has(s.providerSymbol)).map((s) => s.symbol) };
  },
};

export const polygonImpl: ProviderImpl = { ...polygonBarsImpl("regular"), quotes: polygonQuotes };

// The free tier allows 5 calls per minute.
export const polygonDescriptor = providerDescriptor({
  type: "polygon",
  apiKey: "required",
  summary: "Polygon.io bars of US listings (1m to 1mo; intraday regular or extended hours), optionally with splits, dividends and ticker details",
  defaults: { baseUrl: "https://api.polygon.io", rateLimit: { perMinute: 5 }, concurrency: 2, symbols: ["AAPL.US", "MSFT.US"] },
  intervals: POLYGON_INTERVALS,
  entries: { ...referenceEntries, ...sessionsEntry },
  impl: (cfg) =>
    polygonImplWith({ actions: cfg.actions, details: cfg.details, refreshHours: cfg.referenceRefreshHours, overlapDays: cfg.actionsOverlapDays, sessions: cfg.sessions }),
});
