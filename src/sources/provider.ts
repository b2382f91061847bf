// What every market-data provider source shares: its config (symbols or a universe, base URL,
// key, rate limit, retries, overlap) and descriptor, one stream per symbol, incremental reading
// from the last stored bar less an overlap window so late corrections are picked up, and the
// rate-limited, retried HTTP call a provider file makes (providerCall).
import * as v from "valibot";
import { INTERVAL_MS, type Interval, type RawRow } from "../domain/bar.ts";
import type { CorporateAction, Instrument } from "../domain/actions.ts";
import { normaliseSymbol, type SymbolMarket } from "../domain/symbols.ts";
import { isIntraday } from "../domain/rollup.ts";
import { parseTimestamp } from "../domain/time.ts";
import { createRateLimiter, type RateLimit, type RateLimiter } from "../lib/ratelimit.ts";
import { resolveUniverse } from "../universes/universes.ts";
import { DEFAULT_RETRY, ProviderError, providerRequest, type RetryPolicy } from "../lib/http.ts";
import { MarketSchema, minQualitySchema, sourceType } from "./common.ts";
import { SourceError, type Cursor, type ReadRange, type Source, type SourceBatch, type SourceContext, type SourceDescriptor } from "./types.ts";

const DAY = 86_400_000;
/** A range this long with no bar at all means the symbol is unknown (or was not trading). */
export const NO_DATA_SPAN_MS = 7 * DAY;

const Positive = v.pipe(v.number(), v.gtValue(0, "must be greater than 0"));
export const rateLimitSchema = v.pipe(
  v.strictObject({
    perSecond: v.optional(v.pipe(Positive, v.description("Calls per second (or perMinute)."))),
    perMinute: v.optional(v.pipe(Positive, v.description("Calls per minute (or perSecond)."))),
    burst: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.description("Calls that may go at once before the even spacing applies (default 1)."))),
  }),
  v.check((r) => (r.perSecond === undefined) !== (r.perMinute === undefined), "give exactly one of perSecond or perMinute"),
  v.description("The provider's rate limit, shared by every symbol in flight; the defaults follow its free tier."),
);

const DateString = v.pipe(v.string(), v.regex(/^\d{4}-\d{2}-\d{2}$/, "expected a date YYYY-MM-DD"));

const retrySchema = v.pipe(
  v.strictObject({
    attempts: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(20), v.description(`Tries of a call that failed transiently (network, 5xx) (default ${DEFAULT_RETRY.attempts}).`))),
    rateLimitAttempts: v.optional(
      v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(50), v.description(`Tries of a call the provider throttled (429, its own limit messages) (default ${DEFAULT_RETRY.rateLimitAttempts}).`)),
    ),
    baseDelayMs: v.optional(v.pipe(v.number(), v.minValue(0), v.description(`Backoff base, ms: retry n waits a random time up to baseDelayMs × 2^n (default ${DEFAULT_RETRY.baseDelayMs}).`))),
    maxDelayMs: v.optional(v.pipe(v.number(), v.minValue(0), v.description(`Longest backoff wait, ms (default ${DEFAULT_RETRY.maxDelayMs}).`))),
  }),
  v.description("Retries with backoff; Retry-After is honoured."),
);

/** What differs between providers in the fields they share: where they are and how much they allow. */
/** A provider's defaults; `symbols` are a starter's (`ticksync init`), in the provider's market. */
type ProviderDefaults = { baseUrl: string; rateLimit: RateLimit; concurrency: number; symbols: string[] };

/** Bars re-read before the last stored intraday bar (capped by overlapDays): late corrections without re-reading whole days of 1m bars. */
export const INTRADAY_OVERLAP_BARS = 60;

/** Where an incremental read starts: the last stored bar less the overlap (days for daily and longer bars, a few bars intraday). */
export function overlapStart(lastTs: number, interval: Interval, overlapDays: number): number {
  if (!isIntraday(interval)) return lastTs - overlapDays * DAY;
  return lastTs - Math.min(overlapDays * DAY, INTRADAY_OVERLAP_BARS * INTERVAL_MS[interval]);
}

function intervalSchema(type: string, intervals: readonly Interval[]) {
  const list = intervals.join(", ");
  const [only] = intervals;
  const message = intervals.length === 1 ? `${type} loads ${only} bars only (interval = "${only}")` : `${type} offers the intervals ${list}`;
  return v.optional(v.pipe(v.picklist(intervals as Interval[], message), v.description(`Bar interval; ${type} offers ${list}.`)), "1d" as Interval);
}

/** Config fields every provider has; each provider adds its `type` (with its summary) and defaults. */
function providerConfigEntries<T extends string>(type: T, summary: string, defaults: ProviderDefaults, intervals: readonly Interval[] = ["1d"]) {
  return {
    type: sourceType(type, summary),
    minQuality: v.optional(minQualitySchema),
    baseUrl: v.optional(v.pipe(v.string(), v.url("expected a URL such as https://host/path"), v.description("The provider's API root (a mirror or a test double).")), defaults.baseUrl),
    apiKey: v.optional(v.pipe(v.string(), v.nonEmpty(), v.description("Never logged; prefer the TICKSYNC_SOURCES__<NAME>__API_KEY environment variable."))),
    symbols: v.optional(v.pipe(v.array(v.pipe(v.string(), v.nonEmpty())), v.description("Symbols to load, in any provider spelling (with or besides universe)."), v.examples([defaults.symbols]))),
    universe: v.optional(v.pipe(v.string(), v.nonEmpty(), v.description("A bundled universe (wig80, sp500, etf-us) or one of [universes]."))),
    market: v.optional(MarketSchema),
    interval: intervalSchema(type, intervals),
    start: v.optional(v.pipe(DateString, v.description("Where history starts when a symbol has no stored bars yet.")), "2000-01-01"),
    overlapDays: v.optional(
      v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(366), v.description(`Days re-read before the last stored bar, for late corrections (intraday: ${INTRADAY_OVERLAP_BARS} bars, at most these days).`)),
      5,
    ),
    rateLimit: v.optional(rateLimitSchema, defaults.rateLimit),
    timeoutMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(100), v.description("Time a call may take, ms.")), 15_000),
    retry: v.optional(retrySchema, {}),
    concurrency: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(64), v.description("Symbols fetched at once (all share the rate limit).")), defaults.concurrency),
    symbolMap: v.optional(
      v.pipe(v.record(v.string(), v.string()), v.description("Provider spellings that the default mapping gets wrong: canonical → provider symbol.")),
      {},
    ),
    mode: v.optional(
      v.pipe(
        v.picklist(["history", "quote"], "expected history or quote"),
        v.description("history: daily bars from the last stored one on. quote: the provider's latest-quote endpoint, turned into the current session's daily bar (updated in place by each poll)."),
      ),
      "history",
    ),
  };
}

export type ProviderConfig = {
  type: string;
  baseUrl: string;
  apiKey?: string;
  symbols?: string[];
  universe?: string;
  market?: SymbolMarket;
  interval: Interval;
  start: string;
  overlapDays: number;
  rateLimit: RateLimit;
  timeoutMs: number;
  retry: Partial<RetryPolicy>;
  concurrency: number;
  symbolMap: Record<string, string>;
  mode: "history" | "quote";
};

/** What a provider file implements: the symbol spelling and one fetch of a date range. */
export type ProviderImpl = {
  /** Provider's spelling of a canonical symbol, or null when the provider has no such market. */
  providerSymbol(symbol: string, market: SymbolMarket): string | null;
  /**
   * Rows of [from, to] (epoch ms, inclusive days), oldest first, in one or more pages; a page
   * may carry the corporate actions and instrument metadata the provider sent with it.
   */
  fetchDaily(req: FetchRequest): AsyncIterable<RawRow[] | ProviderPage>;
  /** The latest-quote endpoint (mode = "quote"), when the provider has one. */
  quotes?: {
    /** Symbols one request may carry. */
    batch: number;
    /**
     * Today's bar of each symbol the provider quoted, as raw rows (ts = the session date). Symbols
     * the provider does not know are returned in `missing`, not thrown: the others still count.
     */
    fetch(req: QuoteRequest): Promise<{ rows: RawRow[]; missing: string[] }>;
  };
};

/** A page of rows with what came beside them (source = the source's name, filled in here). */
export type ProviderPage = {
  rows: RawRow[];
  actions?: Omit<CorporateAction, "source">[];
  instrument?: Omit<Instrument, "source">;
  /**
   * Fields the provider keeps in the stream's cursor beside `lastTs` (e.g. when it last asked a
   * reference endpoint), from this page on: committed with the page's rows, in one transaction.
   */
  cursor?: Record<string, string | number | null>;
};

export type QuoteRequest = Omit<FetchRequest, "symbol" | "interval" | "providerSymbol" | "market" | "from" | "to" | "cursor"> & {
  symbols: { symbol: string; providerSymbol: string; market: SymbolMarket }[];
};

export type FetchRequest = {
  symbol: string;
  /** The source's interval (absent: 1d). */
  interval?: Interval;
  providerSymbol: string;
  market: SymbolMarket;
  from: number;
  to: number;
  limiter: RateLimiter;
  retry: RetryPolicy;
  timeoutMs: number;
  baseUrl: string;
  apiKey?: string;
  signal?: AbortSignal;
  /** The stream's cursor as last committed (null: never read), with the provider's own fields. */
  cursor: Cursor | null;
};

/** Limiters are shared per provider endpoint and key, across sources and workers in the process. */
const limiters = new Map<string, RateLimiter>();
export function sharedLimiter(cfg: ProviderConfig): RateLimiter {
  const key = `${cfg.type}|${cfg.baseUrl}|${cfg.apiKey ? Bun.hash(cfg.apiKey).toString(16) : ""}|${JSON.stringify(cfg.rateLimit)}`;
  let l = limiters.get(key);
  if (!l) limiters.set(key, (l = createRateLimiter(cfg.type, cfg.rateLimit, { sharedKey: key })));
  return l;
}

/** Forget every shared limiter (tests start each case with fresh provider state). */
export function resetSharedLimiters() {
  limiters.clear();
}

/** The symbols of a provider source: its own list plus its universe, canonical, de-duplicated. */
export function providerSymbols(name: string, cfg: ProviderConfig, ctx: SourceContext = {}): string[] {
  const out: string[] = [];
  const bad: string[] = [];
  if (cfg.universe) {
    const u = resolveUniverse(cfg.universe, ctx.universes);
    if (!u.ok) throw new SourceError(`source ${name}: ${u.reason}`);
    out.push(...u.universe.symbols);
  }
  for (const s of cfg.symbols ?? []) {
    const n = normaliseSymbol(s, cfg.market);
    if (n.ok) out.push(n.symbol);
    else bad.push(n.reason);
  }
  if (bad.length) throw new SourceError(`source ${name}: ${bad.join("; ")}`);
  if (out.length === 0) throw new SourceError(`source ${name}: no symbols: set symbols or universe`);
  return [...new Set(out)];
}

/** A stream's symbol, canonical and as the provider spells it (null: the provider has no such market). */
function spell(cfg: ProviderConfig, impl: ProviderImpl, stream: string) {
  const sym = normaliseSymbol(stream);
  if (!sym.ok) throw new SourceError(sym.reason);
  return { symbol: sym.symbol, market: sym.market, providerSymbol: cfg.symbolMap[sym.symbol] ?? impl.providerSymbol(sym.ticker, sym.market) };
}

function noProviderSymbol(name: string, cfg: ProviderConfig, s: { symbol: string; market: SymbolMarket }) {
  return new SourceError(`source ${name} (${cfg.type}) has no data for ${s.market} symbols like ${s.symbol}`);
}

/** What every request of a source carries, whatever it asks. */
function requestBase(cfg: ProviderConfig, ctx: SourceContext, retry: RetryPolicy) {
  return { limiter: sharedLimiter(cfg), retry, timeoutMs: cfg.timeoutMs, baseUrl: cfg.baseUrl.replace(/\/+$/, ""), apiKey: cfg.apiKey, signal: ctx.signal };
}

/** The newest parsable `ts` of the rows, or `newest` when none is newer. */
function newestTs(rows: RawRow[], newest: number | null): number | null {
  for (const r of rows) {
    const t = parseTimestamp(r.fields.ts);
    if (t !== null && (newest === null || t > newest)) newest = t;
  }
  return newest;
}

function sourceOf(name: string, cfg: ProviderConfig, streams: Source["streams"], read: Source["read"]): Source {
  return { name, type: cfg.type, interval: cfg.interval, market: cfg.market, concurrency: cfg.concurrency, waits: sharedLimiter(cfg).waits, streams, read };
}

export function providerSource(name: string, cfg: ProviderConfig, impl: ProviderImpl, ctx: SourceContext = {}): Source {
  const retry: RetryPolicy = { ...DEFAULT_RETRY, ...cfg.retry };
  const start = parseTimestamp(cfg.start)!;

  async function* read(stream: string, cursor: Cursor | null, _batchSize: number, range?: ReadRange): AsyncIterable<SourceBatch> {
    const sym = spell(cfg, impl, stream);
    const providerSymbol = sym.providerSymbol;
    if (!providerSymbol) throw noProviderSymbol(name, cfg, sym);
    const lastTs = typeof cursor?.lastTs === "number" ? cursor.lastTs : null;
    const from = range?.from ?? (lastTs !== null ? overlapStart(lastTs, cfg.interval, cfg.overlapDays) : start);
    const to = range?.to ?? Date.now();
    let newest = lastTs;
    // The provider's own cursor fields ride along unchanged until a page replaces them.
    const { lastTs: _last, ...kept } = cursor ?? {};
    let yielded = false;
    for await (const got of impl.fetchDaily({ symbol: sym.symbol, interval: cfg.interval, providerSymbol, market: sym.market, from, to, ...requestBase(cfg, ctx, retry), cursor })) {
      const page: ProviderPage = Array.isArray(got) ? { rows: got } : got;
      if (page.cursor) Object.assign(kept, page.cursor);
      const rows = page.rows;
      newest = newestTs(rows, newest);
      // The cursor never moves back: a backfill of old years keeps the incremental position.
      const batch: SourceBatch = { rows, cursor: { ...kept, lastTs: newest } };
      if (page.actions?.length) batch.actions = page.actions.map((a) => ({ ...a, source: name }));
      if (page.instrument) batch.instruments = [{ ...page.instrument, source: name }];
      yield batch;
      yielded = true;
    }
    if (!yielded && cursor === null) yield { rows: [], cursor: { lastTs: null } };
  }

  if (cfg.mode === "quote" && cfg.interval !== "1d") throw new SourceError(`source ${name}: mode = "quote" makes daily bars; interval must be 1d (got ${cfg.interval})`);
  if (cfg.mode === "quote") return quoteSource(name, cfg, impl, ctx, retry);
  return sourceOf(name, cfg, async () => providerSymbols(name, cfg, ctx), read);
}

/**
 * mode = "quote": each read asks the provider's latest-quote endpoint once for the symbols of its
 * stream and yields today's bar of each. A stream is as many symbols as one request may carry
 * (Stooq, Polygon: many, joined by ","; Yahoo, Alpha Vantage: one), so a poll of the whole
 * source costs one request per stream, all under the provider's shared rate limit. The bar's
 * natural key is the session date: an unchanged quote rewrites nothing, a moved one updates it.
 */
function quoteSource(name: string, cfg: ProviderConfig, impl: ProviderImpl, ctx: SourceContext, retry: RetryPolicy): Source {
  const quotes = impl.quotes;
  if (!quotes) throw new SourceError(`source ${name}: ${cfg.type} has no latest-quote endpoint (mode = "quote")`);

  async function streams(): Promise<string[]> {
    const out: string[] = [];
    let chunk: string[] = [];
    for (const s of providerSymbols(name, cfg, ctx)) {
      // A symbol the provider cannot spell gets a stream of its own, which fails alone.
      if (spell(cfg, impl, s).providerSymbol === null) out.push(s);
      else if (chunk.push(s) >= quotes!.batch) out.push(chunk.join(",")), (chunk = []);
    }
    if (chunk.length) out.push(chunk.join(","));
    return out;
  }

  async function* read(stream: string, cursor: Cursor | null, _batchSize: number, range?: ReadRange): AsyncIterable<SourceBatch> {
    if (range) throw new SourceError(`source ${name}: mode = "quote" reads only the latest quotes; a backfill needs mode = "history"`);
    const symbols = stream.split(",").map((s) => spell(cfg, impl, s));
    const bad = symbols.find((s) => s.providerSymbol === null);
    if (bad) throw noProviderSymbol(name, cfg, bad);
    const { rows, missing } = await quotes!.fetch({
      symbols: symbols as { symbol: string; providerSymbol: string; market: SymbolMarket }[],
      ...requestBase(cfg, ctx, retry),
    });
    const newest = newestTs(rows, typeof cursor?.lastTs === "number" ? cursor.lastTs : null);
    yield { rows, cursor: { lastTs: newest } };
    // The quotes that came are stored (the batch above commits first); the unknown ones fail the stream.
    if (missing.length)
      throw new ProviderError(`${cfg.type}: no quote for ${missing.join(", ")} (unknown symbol or no trading yet)`, symbols.length === 1 ? "not_found" : "no_data");
  }

  return sourceOf(name, cfg, streams, read);
}

/** One provider call under the request's rate limiter, retry policy, timeout and abort signal. */
export function providerCall<T>(req: Pick<FetchRequest, "limiter" | "retry" | "timeoutMs" | "signal">, url: string, parse: (res: Response, body: string) => T, headers?: Record<string, string>): Promise<T> {
  return providerRequest(url, { limiter: req.limiter, retry: req.retry, timeoutMs: req.timeoutMs, signal: req.signal, headers, parse });
}

type ProviderSchema<T extends string, E extends v.ObjectEntries> = v.StrictObjectSchema<ReturnType<typeof providerConfigEntries<T>> & E, undefined>;

/**
 * A provider's descriptor: the fields every provider shares (with its defaults) plus its own
 * `entries`, and a source reading through `impl` (or the impl its config asks for).
 */
export function providerDescriptor<T extends string, E extends v.ObjectEntries = {}>(spec: {
  type: T;
  summary: string;
  defaults: ProviderDefaults;
  entries?: E;
  /** The intervals the provider offers (default daily only). */
  intervals?: readonly Interval[];
  /** Whether it wants an API key (absent: it takes none). */
  apiKey?: "required" | "optional";
  impl: ProviderImpl | ((cfg: v.InferOutput<ProviderSchema<T, E>>) => ProviderImpl);
}): SourceDescriptor<ProviderSchema<T, E>> {
  const { type, summary, impl } = spec;
  const schema = v.strictObject({ ...providerConfigEntries(type, summary, spec.defaults, spec.intervals), ...spec.entries } as ReturnType<typeof providerConfigEntries<T>> & E);
  return {
    type,
    summary,
    schema,
    create: (name, cfg, _baseDir, ctx) => providerSource(name, cfg as ProviderConfig, typeof impl === "function" ? impl(cfg) : impl, ctx),
    provider: true,
    rebuildInWorker: false,
    ...(spec.apiKey ? { apiKey: spec.apiKey } : {}),
  };
}

/** An epoch-ms value a Date can hold: a provider's timestamp that is anything else is not a time. */
export function isInstant(ms: unknown): ms is number {
  return typeof ms === "number" && Number.isFinite(ms) && Math.abs(ms) <= 8.64e15;
}

/** A time zone a provider named, if Intl knows it; else the market's own. */
export function knownZone(tz: unknown, fallback: string): string {
  if (typeof tz !== "string" || tz === "") return fallback;
  try {
    dateInZone(0, tz);
    return tz;
  } catch {
    return fallback;
  }
}

/** `YYYY-MM-DD` of an instant in a time zone: the exchange date of a bar. */
const dateFormatters = new Map<string, Intl.DateTimeFormat>();
export function dateInZone(ms: number, timeZone: string): string {
  let f = dateFormatters.get(timeZone);
  if (!f) dateFormatters.set(timeZone, (f = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" })));
  return f.format(ms);
}
