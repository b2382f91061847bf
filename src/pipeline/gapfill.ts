// Gapfill: the sessions a provider source's series lack by their market's calendar (the gap
// scanner's runs, within a look-back window) are asked for again, each symbol over the range from
// its first to its last missing session, through the ordinary ingest path: one run (kind
// "gapfill"), the provider's shared rate limiter, checkpoints, quarantine and metrics as any
// ingest. Afterwards each asked-for session is one of:
//   filled   a bar is stored now;
//   no_data  the fetch succeeded (or the provider said "no data") and the session is still empty
//            while the series has a bar after it: the provider has nothing for it. Recorded in
//            the store, left out of gap reports, and never asked for again;
//   pending  still empty, but nothing newer is stored either (the provider may not have
//            published it yet): asked again next time;
//   failed   the symbol's fetch failed (rate limit, timeout, ...): asked again next time.
import type { Interval } from "../domain/bar.ts";
import type { Market } from "../domain/calendar.ts";
import { barDate, sessionsIn, unitWindow } from "../domain/gaps.ts";
import { dateMs, dateOf, isIntraday } from "../domain/rollup.ts";
import { createGapScanner } from "./gaps.ts";
import { log } from "../lib/log.ts";
import type { TicksyncMetrics } from "../lib/metrics.ts";
import { ProviderError } from "../lib/http.ts";
import { PROVIDER_SOURCE_TYPES } from "../sources/registry.ts";
import type { ReadRange, Source } from "../sources/types.ts";
import type { NoDataSession, Store } from "../stores/types.ts";
import { ingestFromConfig, type IngestSettings } from "./run.ts";

const DAY = 86_400_000;
const PROVIDERS = new Set(PROVIDER_SOURCE_TYPES);

export type GapfillOptions = {
  /** The config as loaded (its sources, universes, batch size and jobs). */
  loaded: IngestSettings;
  store: Store;
  /** A provider source (history mode) in the config. */
  source: string;
  job?: string;
  /** Only sessions this many days back from now are looked at. */
  lookbackDays: number;
  /** Only the symbols of these markets (a tick gated per symbol); default: every symbol. */
  markets?: readonly Market[];
  metrics?: TicksyncMetrics;
  now?: () => number;
  signal?: AbortSignal;
};

export type GapfillOutcome = "filled" | "no_data" | "pending" | "failed";

export type GapfillResult = {
  runId: number;
  outcome: "succeeded" | "failed" | "interrupted";
  /** Missing sessions asked for, per symbol. */
  requested: Record<string, string[]>;
  sessions: Record<GapfillOutcome, number>;
  /** The no-data sessions recorded by this run. */
  noData: NoDataSession[];
};

type Want = { symbol: string; market: Market; interval: Interval; sessions: string[] };

/** The source read over each symbol's own range; a provider's "no data" is an empty read. */
function rangedSource(source: Source, ranges: Map<string, ReadRange>): Source {
  return {
    name: source.name,
    type: source.type,
    interval: source.interval,
    market: source.market,
    tsFormat: source.tsFormat,
    timeZone: source.timeZone,
    concurrency: source.concurrency,
    waits: source.waits,
    streams: async () => [...ranges.keys()],
    async *read(stream, cursor, batchSize) {
      try {
        yield* source.read(stream, cursor, batchSize, ranges.get(stream));
      } catch (e) {
        if (e instanceof ProviderError && e.failure === "no_data") return;
        throw e;
      }
    },
  };
}

export async function runGapfill(opts: GapfillOptions): Promise<GapfillResult> {
  const { loaded, store, source } = opts;
  const now = opts.now ?? Date.now;
  const cfg = loaded.config.sources[source];
  if (!cfg) throw new Error(`source ${source} is not defined in the config`);
  if (!PROVIDERS.has(cfg.type) || (cfg as { mode?: string }).mode === "quote")
    throw new Error(`source ${source}: gapfill needs a provider source in history mode (${PROVIDER_SOURCE_TYPES.join(", ")}), not ${cfg.type}`);
  if (!store.listNoData || !store.markNoData) throw new Error(`the ${store.kind} store keeps no no-data sessions; gapfill needs SQLite or Postgres`);

  const interval = ((cfg as { interval?: Interval }).interval ?? "1d") as Interval;
  const since = dateOf(now() - opts.lookbackDays * DAY);
  // The gap scanner already leaves recorded no-data sessions out.
  const found = await createGapScanner(store, { now }).scan({ source, interval });
  const wants = new Map<string, Want>();
  for (const g of found) {
    if (opts.markets && !opts.markets.includes(g.market)) continue;
    const sessions: string[] = [];
    for (const r of g.runs) if (r.to >= since) sessions.push(...sessionsIn(g.market, r.from < since ? since : r.from, r.to));
    if (sessions.length) wants.set(g.symbol, { symbol: g.symbol, market: g.market, interval: g.interval, sessions });
  }
  // Each symbol's range runs from its first to its last missing session by its own market's
  // calendar: an intraday session is its local day (a Sydney session starts the UTC day before).
  const ranges = new Map<string, ReadRange>();
  for (const w of wants.values()) {
    const [first, last] = [w.sessions[0]!, w.sessions[w.sessions.length - 1]!];
    if (isIntraday(w.interval)) ranges.set(w.symbol, { from: unitWindow(w.market, w.interval, first).from, to: unitWindow(w.market, w.interval, last).to - 1 });
    else ranges.set(w.symbol, { from: dateMs(first), to: dateMs(last) });
  }

  const summary = await ingestFromConfig({
    loaded,
    store,
    source,
    job: opts.job ?? `gapfill:${source}`,
    kind: "gapfill",
    streams: [...ranges.keys()],
    trackStreams: true,
    adapt: (s) => rangedSource(s, ranges),
    params: { lookbackDays: opts.lookbackDays, since, ...(opts.markets ? { markets: [...opts.markets] } : {}), symbols: ranges.size, sessions: [...wants.values()].reduce((n, w) => n + w.sessions.length, 0) },
    metrics: opts.metrics,
    signal: opts.signal,
  });

  const failed = new Set(summary.streams.filter((s) => s.error).map((s) => s.stream));
  const counts: Record<GapfillOutcome, number> = { filled: 0, no_data: 0, pending: 0, failed: 0 };
  const noData: NoDataSession[] = [];
  for (const w of wants.values()) {
    if (failed.has(w.symbol) || summary.outcome === "interrupted") {
      counts.failed += w.sessions.length;
      continue;
    }
    // One `limit 1` probe per asked-for session: the range between may hold years of stored bars.
    const present = new Set<string>();
    for (const d of w.sessions) {
      const win = unitWindow(w.market, w.interval, d);
      if ((await store.queryBars({ symbol: w.symbol, interval: w.interval, source, from: win.from, to: win.to - 1, limit: 1 })).length) present.add(d);
    }
    const series = (await store.listSeries({ symbol: w.symbol })).find((s) => s.source === source && s.interval === w.interval);
    const lastDate = series ? barDate(w.market, w.interval, series.lastTs) : null;
    for (const d of w.sessions) {
      if (present.has(d)) counts.filled++;
      else if (lastDate !== null && d < lastDate) {
        counts.no_data++;
        noData.push({ source, symbol: w.symbol, interval: w.interval, session: d });
      } else counts.pending++;
    }
  }
  if (noData.length) await store.markNoData(noData);
  for (const [outcome, n] of Object.entries(counts)) if (n) opts.metrics?.gapfillSessions.inc({ source, outcome }, n);
  log.info("gapfill finished", { source, run: summary.runId, symbols: wants.size, ...counts });
  return { runId: summary.runId, outcome: summary.outcome, requested: Object.fromEntries([...wants].map(([s, w]) => [s, w.sessions])), sessions: counts, noData };
}
