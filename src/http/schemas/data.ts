// The bodies of the routes that describe the stored data: /api/symbols, /api/gaps,
// /api/freshness, /api/markets, /api/rates, /api/sinks, and the process's /api/resources.
import * as v from "valibot";
import { Count, Interval, IsoDay, IsoTime, Market, MarketPhase, NullableIso, NullableNumber, listOf } from "./common.ts";

const Text = v.nullable(v.string());

export const SymbolsBody = v.object({
  data: v.array(
    v.object({
      symbol: v.string(),
      market: v.nullable(Market),
      series: v.array(v.object({ source: v.string(), interval: Interval, bars: Count, first: IsoTime, last: IsoTime })),
      name: Text,
      exchange: Text,
      currency: Text,
      type: Text,
      sector: Text,
      industry: Text,
      isin: Text,
      instruments: v.pipe(
        v.array(v.object({ source: v.string(), name: Text, exchange: Text, currency: Text, type: Text, sector: Text, industry: Text, isin: Text, updatedAt: NullableIso })),
        v.description("what each source says the symbol is"),
      ),
    }),
  ),
  count: Count,
});

const GapRunSchema = v.object({
  from: IsoDay,
  to: IsoDay,
  units: Count,
  sessions: Count,
  bars: Count,
  trailing: v.pipe(v.boolean(), v.description("after the series' last bar")),
});

export const GapsBody = v.object({
  interval: Interval,
  series: v.array(
    v.object({
      source: v.string(),
      symbol: v.string(),
      market: Market,
      interval: Interval,
      first: IsoTime,
      last: IsoTime,
      bars: Count,
      expected: Count,
      missingSessions: Count,
      missingBars: Count,
    }),
  ),
  data: v.pipe(v.array(v.object({ source: v.string(), symbol: v.string(), market: Market, interval: Interval, ...GapRunSchema.entries })), v.description("runs of missing bars, at most `limit`")),
  count: Count,
  truncated: v.boolean(),
});

export const MarketStatusSchema = v.object({
  market: Market,
  name: v.string(),
  timeZone: v.string(),
  date: IsoDay,
  phase: MarketPhase,
  nextOpen: NullableIso,
  nextClose: NullableIso,
  holiday: Text,
});
export const MarketsBody = listOf(MarketStatusSchema);

export const FreshnessBody = v.object({
  interval: Interval,
  dates: v.array(IsoDay),
  sessions: v.pipe(v.record(v.string(), v.string()), v.description("per market, one letter per date: T a session, - not one")),
  rows: v.array(
    v.object({
      symbol: v.string(),
      source: v.string(),
      market: v.nullable(Market),
      interval: Interval,
      last: v.string(),
      latestSession: v.nullable(IsoDay),
      cells: v.pipe(v.string(), v.description("one letter per date: S stored, M missing, P pending, - not a session, ? unknown")),
      stored: Count,
      missing: Count,
    }),
  ),
  markets: v.record(v.string(), MarketStatusSchema),
  generatedAt: IsoTime,
});

export const RatesBody = v.object({
  bucketSeconds: Count,
  from: IsoTime,
  to: IsoTime,
  points: v.array(v.object({ t: v.pipe(v.number(), v.description("bucket start, epoch seconds (as chart libraries take time)")), ingestRead: v.number(), ingestStored: v.number(), quarantined: v.number(), synced: v.number() })),
});

export const ConsistencySchema = v.object({
  sink: v.string(),
  collection: v.string(),
  status: v.picklist(["consistent", "inconsistent", "unknown"]),
  checkedAt: NullableIso,
  storeRecords: NullableNumber,
  sinkRecords: NullableNumber,
  differingDays: NullableNumber,
  missing: NullableNumber,
  extra: NullableNumber,
  changed: NullableNumber,
  repaired: v.boolean(),
});

export const SinksBody = listOf(
  v.object({
    name: v.string(),
    kind: v.string(),
    location: v.pipe(v.string(), v.description("where it is, credentials removed")),
    collections: v.array(
      v.object({
        collection: v.string(),
        cursor: v.nullable(v.pipe(v.record(v.string(), v.union([v.string(), v.number(), v.null()])), v.description("the sync cursor (ts as ISO time)"))),
        consistency: ConsistencySchema,
      }),
    ),
  }),
);

/** CPU, memory and event-loop lag (src/monitor/performance.ts). */
export const ProcessStatsEntries = {
  cpu: v.object({ percent: v.number(), cores: Count, userSeconds: v.number(), systemSeconds: v.number() }),
  memory: v.object({ rssBytes: Count, heapUsedBytes: Count, heapTotalBytes: Count, systemTotalBytes: Count, systemFreeBytes: Count, rssPercent: v.number() }),
  eventLoopLagMs: v.object({ mean: NullableNumber, p50: v.number(), p99: v.number(), max: v.number() }),
};

export const ResourcesBody = v.object({
  timestamp: IsoTime,
  uptimeSeconds: Count,
  ...ProcessStatsEntries,
  fds: v.object({ open: v.nullable(Count), max: v.nullable(Count) }),
});
