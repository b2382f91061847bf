// The market_updates snapshot a sink mirrors after each sync (see sinks/pocketbase/mirrors.ts):
// per symbol of the sink's series, its newest bar (the series with the newest bar; a finer
// interval on a tie), its previous close and market status as the streaming service's clients get
// them (stream/previous-close.ts, stream/status.ts), and the volume of the bar. Reads are bounded:
// one bar per symbol plus its previous session's close.
import { INTERVALS, type Bar } from "../domain/bar.ts";
import { marketOf } from "../domain/symbols.ts";
import type { SeriesInfo, Store } from "../stores/types.ts";
import { compatMarketStatus } from "../stream/compat-messages.ts";
import { PreviousCloses } from "../stream/previous-close.ts";
import { marketState } from "../stream/status.ts";
import { bareClashes, clashError, rejectionOf, SinkError, type MarketUpdate, type PocketbaseSink } from "../sinks/pocketbase/index.ts";


/** The streaming service's market status words for a market at an instant (as its WebSocket clients get them). */
export function marketStatus(market: ReturnType<typeof marketOf>, now: number): string {
  return market === undefined ? "CLOSED" : compatMarketStatus(marketState(market, now));
}

/** The series a symbol's latest price comes from: the newest bar, a finer interval on a tie. */
function latestSeries(series: SeriesInfo[]): SeriesInfo {
  return series.reduce((a, b) => (b.lastTs > a.lastTs || (b.lastTs === a.lastTs && INTERVALS.indexOf(b.interval) < INTERVALS.indexOf(a.interval)) ? b : a));
}

async function lastBarIn(store: Store, s: Pick<SeriesInfo, "symbol" | "interval" | "source">, from: number, to: number): Promise<Bar | null> {
  // A day of 1m bars is at most 1440 (2880 across a DST change): one page.
  const bars = await store.queryBars({ symbol: s.symbol, interval: s.interval, source: s.source, from, to, limit: 3000 });
  return bars.length ? bars[bars.length - 1]! : null;
}

/** One symbol's update, or null when its newest bar cannot be read; its previous close as the streaming clients get it. */
async function updateOf(store: Store, symbol: string, series: SeriesInfo[], now: number, closes: PreviousCloses): Promise<MarketUpdate | null> {
  const s = latestSeries(series);
  const bar = await lastBarIn(store, s, s.lastTs, s.lastTs);
  if (!bar) return null;
  const market = marketOf(symbol);
  const previousClose = await closes.before(bar, market);
  return { symbol, market: market ?? null, price: bar.close, previousClose, volume: bar.volume, ts: bar.ts, marketStatus: marketStatus(market, now) };
}

/** The sink's series (its `sources` only), by symbol. */
export async function sinkSeries(store: Store, sink: PocketbaseSink): Promise<Map<string, SeriesInfo[]>> {
  const sources = sink.config.sources ? new Set(sink.config.sources) : null;
  const by = new Map<string, SeriesInfo[]>();
  for (const s of await store.listSeries()) {
    if (sources && !sources.has(s.source)) continue;
    const list = by.get(s.symbol);
    if (list) list.push(s);
    else by.set(s.symbol, [s]);
  }
  return by;
}

/** symbolField = "bare" with two symbols of one ticker: the one-line error, thrown before anything is written. */
export function refuseBareClashes(sink: PocketbaseSink, symbols: Iterable<string>) {
  if (!sink.shape.bare) return;
  const clashes = bareClashes(symbols);
  if (clashes.length) throw new SinkError(clashError(sink.name, clashes), "config");
}

/** Per sink, the updates built so far: a symbol is read again only when a sync delivered its bars. */
const known = new WeakMap<PocketbaseSink, Map<string, MarketUpdate>>();
/** Per sink, symbols whose bars were delivered since the last snapshot written (kept across a failed cycle). */
const pending = new WeakMap<PocketbaseSink, Set<string>>();

/** The set a sync adds the symbols it delivers to, for the next snapshot. */
export function deliveredSymbols(sink: PocketbaseSink): Set<string> {
  let set = pending.get(sink);
  if (!set) pending.set(sink, (set = new Set()));
  return set;
}

/**
 * Build and upsert the market_updates snapshot; refused records are quarantined under `runId`.
 * Symbols whose bars were delivered since the last snapshot and those not seen yet are read from the
 * store; the others only get their market status again (no read), so a quiet cycle costs the
 * series list and sends only what changed.
 */
export async function mirrorMarketUpdates(store: Store, sink: PocketbaseSink, runId: number, now = Date.now()): Promise<{ sent: number; rejected: number }> {
  if (!sink.config.mirrors?.market_updates) return { sent: 0, rejected: 0 };
  const touched = deliveredSymbols(sink);
  const by = await sinkSeries(store, sink);
  refuseBareClashes(sink, by.keys());
  let cache = known.get(sink);
  if (!cache) known.set(sink, (cache = new Map()));
  const updates: MarketUpdate[] = [];
  const closes = new PreviousCloses(store);
  for (const [symbol, series] of by) {
    const had = cache.get(symbol);
    const u = had && !touched.has(symbol) ? { ...had, marketStatus: marketStatus(marketOf(symbol), now) } : await updateOf(store, symbol, series, now, closes);
    if (!u) continue;
    cache.set(symbol, u);
    updates.push(u);
  }
  for (const symbol of cache.keys()) if (!by.has(symbol)) cache.delete(symbol);
  const r = await sink.mirrorMarketUpdates(updates);
  touched.clear();
  if (r.rejected.length) await store.commitBatch({ runId, source: `sink:${sink.name}`, bars: [], quarantine: r.rejected.map((x) => rejectionOf(sink.name, x)), read: 0 });
  return { sent: r.sent, rejected: r.rejected.length };
}
