// Gap scanning over a store: for every series, the sessions (or weeks, months) its market traded
// with no bar, through the store contract only. Cheap first: a daily, weekly or monthly series
// whose bar count equals the calendar's count of units between its first and last bar has no
// hole (listSeries carries the counts), and is not read at all. The others are read (daily and
// longer: all bars, in pages) or probed one unit at a time (intraday: one `limit 1` query per
// session, never the bars themselves). Results are kept per series and redone only where the
// series changed, and then only for the units that could have changed: the ones missing before
// and the ones after its previous last bar (a grown series), everything when it shrank or its
// first bar moved (retention, a delete). Sessions a gapfill found the provider has no data for
// (the store's no-data records) are not gaps: they are left out of the runs, for daily and
// intraday series (whose unit is the session).
import type { Interval } from "../domain/bar.ts";
import type { Market } from "../domain/calendar.ts";
import { barDate, expectedUnits, latestCompletedSession, missingRuns, trailingRuns, unitKey, unitWindow, type GapRun } from "../domain/gaps.ts";
import { addDays, isIntraday } from "../domain/rollup.ts";
import { marketOf } from "../domain/symbols.ts";
import type { SeriesInfo, Store } from "../stores/types.ts";

export type SeriesGaps = {
  source: string;
  symbol: string;
  market: Market;
  interval: Interval;
  firstTs: number;
  lastTs: number;
  bars: number;
  /** Units (sessions; weeks or months for 1w/1mo) between the first and the last bar, both included. */
  expected: number;
  /** Runs of missing units, oldest first: between the bars, then the trailing one after the last bar. */
  runs: GapRun[];
  missingSessions: number;
  /** Bars the missing units should hold (intraday: the whole sessions' worth). */
  missingBars: number;
};

export type GapFilter = { symbol?: string; market?: Market; interval?: Interval; source?: string };

type Cached = { info: SeriesInfo; lastKey: string; missing: Set<string> };

const READ_CHUNK = 10_000;

export function createGapScanner(store: Store, opts: { now?: () => number } = {}) {
  const now = opts.now ?? Date.now;
  const cache = new Map<string, Cached>();
  const keyOf = (s: { source: string; symbol: string; interval: string }) => `${s.source}\u0000${s.symbol}\u0000${s.interval}`;

  async function presentIn(info: SeriesInfo, market: Market, keys: string[]): Promise<Set<string>> {
    const present = new Set<string>();
    for (const key of keys) {
      const w = unitWindow(market, info.interval, key);
      const rows = await store.queryBars({ symbol: info.symbol, interval: info.interval, source: info.source, from: w.from, to: w.to - 1, limit: 1 });
      if (rows.length > 0) present.add(key);
    }
    return present;
  }

  async function allPresent(info: SeriesInfo, market: Market): Promise<Set<string>> {
    const present = new Set<string>();
    let after: { ts: number; source: string } | undefined;
    for (;;) {
      const rows = await store.queryBars({ symbol: info.symbol, interval: info.interval, source: info.source, limit: READ_CHUNK, after });
      for (const b of rows) present.add(unitKey(info.interval, barDate(market, info.interval, b.ts)));
      if (rows.length < READ_CHUNK) return present;
      const last = rows[rows.length - 1]!;
      after = { ts: last.ts, source: last.source };
    }
  }

  /** Recorded no-data sessions per series (the store may keep none). */
  async function loadNoData(): Promise<Map<string, Set<string>>> {
    const out = new Map<string, Set<string>>();
    for (const d of (await store.listNoData?.()) ?? []) {
      const k = keyOf(d);
      let set = out.get(k);
      if (!set) out.set(k, (set = new Set()));
      set.add(d.session);
    }
    return out;
  }

  /** Units after the one `lastDate` is in, up to the latest completed session, less the no-data ones. */
  function trailing(market: Market, info: SeriesInfo, lastDate: string, skip: Set<string> | undefined): GapRun[] {
    if (!skip) return trailingRuns(market, info.interval, lastDate, now());
    const latest = latestCompletedSession(market, now());
    if (latest === null || latest <= lastDate) return [];
    const lastKey = unitKey(info.interval, lastDate);
    const units = expectedUnits(market, info.interval, addDays(lastDate, 1), latest).filter((u) => u.key !== lastKey);
    return missingRuns(units, (k) => skip.has(k), true);
  }

  async function scanSeries(info: SeriesInfo, market: Market, noData: Map<string, Set<string>>): Promise<SeriesGaps> {
    const firstDate = barDate(market, info.interval, info.firstTs);
    const lastDate = barDate(market, info.interval, info.lastTs);
    const lastKey = unitKey(info.interval, lastDate);
    const units = expectedUnits(market, info.interval, firstDate, lastDate);
    const key = keyOf(info);
    const c = cache.get(key);
    let missing: Set<string>;
    if (c && c.info.bars === info.bars && c.info.firstTs === info.firstTs && c.info.lastTs === info.lastTs) missing = c.missing;
    else if (!isIntraday(info.interval) && info.bars === units.length) missing = new Set();
    else if (c && c.info.firstTs === info.firstTs && info.bars >= c.info.bars && info.lastTs >= c.info.lastTs) {
      const candidates = units.filter((u) => c.missing.has(u.key) || u.key > c.lastKey).map((u) => u.key);
      const present = await presentIn(info, market, candidates);
      missing = new Set(candidates.filter((k) => !present.has(k)));
    } else {
      const present = isIntraday(info.interval) ? await presentIn(info, market, units.map((u) => u.key)) : await allPresent(info, market);
      missing = new Set(units.filter((u) => !present.has(u.key)).map((u) => u.key));
    }
    cache.set(key, { info, lastKey, missing });
    const skip = noData.get(key);
    const runs = [...missingRuns(units, (k) => !missing.has(k) || skip?.has(k) === true), ...trailing(market, info, lastDate, skip)];
    return {
      source: info.source,
      symbol: info.symbol,
      market,
      interval: info.interval,
      firstTs: info.firstTs,
      lastTs: info.lastTs,
      bars: info.bars,
      expected: units.length,
      runs,
      missingSessions: runs.reduce((n, r) => n + r.sessions, 0),
      missingBars: runs.reduce((n, r) => n + r.bars, 0),
    };
  }

  let inFlight: Promise<SeriesGaps[]> | null = null;

  /** Every series' gaps (cached where nothing changed); concurrent calls share one scan. */
  function scanAll(): Promise<SeriesGaps[]> {
    inFlight ??= (async () => {
      try {
        const out: SeriesGaps[] = [];
        const seen = new Set<string>();
        const noData = await loadNoData();
        for (const info of await store.listSeries()) {
          const market = marketOf(info.symbol);
          if (market === undefined || info.bars === 0) continue;
          seen.add(keyOf(info));
          out.push(await scanSeries(info, market, noData));
        }
        for (const k of cache.keys()) if (!seen.has(k)) cache.delete(k);
        return out;
      } finally {
        inFlight = null;
      }
    })();
    return inFlight;
  }

  return {
    scanAll,
    /** The series matching a filter (symbol canonical). */
    async scan(filter: GapFilter = {}): Promise<SeriesGaps[]> {
      const out: SeriesGaps[] = [];
      const noData = await loadNoData();
      for (const info of await store.listSeries(filter.symbol ? { symbol: filter.symbol } : undefined)) {
        const market = marketOf(info.symbol);
        if (market === undefined || info.bars === 0) continue;
        if (filter.market && market !== filter.market) continue;
        if (filter.interval && info.interval !== filter.interval) continue;
        if (filter.source && info.source !== filter.source) continue;
        out.push(await scanSeries(info, market, noData));
      }
      return out;
    },
  };
}

export type GapScanner = ReturnType<typeof createGapScanner>;
