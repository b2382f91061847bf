// The store contract, by capability: bar writes and reads, the run ledger, the event journal,
// leases, and the optional reference data, retention and materialised rollups. Every store
// (SQLite, Postgres, QuestDB) implements `Store`, their composition, so the pipeline, the HTTP
// layer and the tests never know which one they talk to; a caller takes only the part it needs.
import type { Bar, BarExtras, BarValues, Interval } from "../domain/bar.ts";
import type { BarList } from "../domain/columns.ts";
import type { QualityReport, Rejection } from "../domain/quality.ts";
import type { BarEvent } from "./events.ts";
import type { CorporateAction, Instrument } from "../domain/actions.ts";

export type UpsertCounts = { inserted: number; updated: number; unchanged: number };

/**
 * Where a stream (one file, one table, one provider series) was read up to. Constant size: a
 * position in the source plus the last ts and key written, never a list of what was done.
 */
export type Checkpoint = {
  stream: string;
  cursor: Record<string, string | number | null>;
  lastTs: number | null;
  lastKey: string | null;
};

export type CommitBatch = {
  runId: number;
  source: string;
  /** As objects or as columns (bulk loads): the same bars either way. */
  bars: BarList;
  quarantine: Rejection[];
  /** Committed in the same transaction as the rows: a crash leaves both or neither. */
  checkpoint?: Checkpoint;
  /** Rows read for this batch (accepted and rejected); added to the run's counters in the same transaction. */
  read: number;
  /**
   * Extra columns of some of the batch's bars (a table source's `extraColumns`), kept beside the
   * bars in the same transaction; absent for every other source, whose commits do not change.
   */
  extras?: readonly BarExtras[];
};

export type CommitResult = UpsertCounts & {
  quarantined: number;
  /** Bars the store cannot hold (QuestDB: before 1970), quarantined by it: counted as quarantined, not stored. */
  refused?: number;
};

export type RunOutcome = "running" | "succeeded" | "failed" | "interrupted";

export type RunStart = { kind: string; source: string; job?: string; params?: Record<string, unknown> };

/** A run's counters: rows read, how the store took them, and the range of bar timestamps written. */
export type RunCounters = UpsertCounts & { read: number; quarantined: number; fromTs: number | null; toTs: number | null };

export type RunSummary = RunCounters & {
  outcome: Exclude<RunOutcome, "running">;
  quality: QualityReport | null;
  error?: string | null;
  /** Failed streams by cause (not_found, rate_limited, timeout, ...). */
  failures?: Record<string, number>;
};

export type RunRecord = RunStart & RunCounters & {
  id: number;
  startedAt: number;
  finishedAt: number | null;
  durationMs: number | null;
  outcome: RunOutcome;
  /** Bars written: inserted + updated. */
  stored: number;
  quality: QualityReport | null;
  error: string | null;
  failures: Record<string, number>;
};

export type StreamStatus = "pending" | "done" | "failed";
export type RunStream = { stream: string; status: StreamStatus; cause: string | null; error: string | null; rows: number };

export type QuarantineRecord = {
  id: number;
  runId: number;
  source: string;
  locator: string;
  rule: string;
  reason: string;
  symbol: string | null;
  ts: number | null;
  raw: Record<string, unknown>;
  createdAt: number;
};

// --- retention and no-data sessions ---
/** A session (exchange date, YYYY-MM-DD) a provider had no bar for when asked. */
export type NoDataSession = { source: string; symbol: string; interval: Interval; session: string; recordedAt?: number };
// --- end retention and no-data sessions ---

export type SeriesInfo = { source: string; symbol: string; interval: Interval; firstTs: number; lastTs: number; bars: number };

export type BarQuery = {
  symbol: string;
  interval: Interval;
  source?: string;
  from?: number;
  to?: number;
  limit: number;
  /** Keyset cursor: the (ts, source) of the last bar of the previous page. */
  after?: { ts: number; source: string };
};

export type Page<T> = { data: T[]; next: string | null };

/**
 * A page of bars a store keeps rolled up (materialised): up to `limit` bars in (ts, source)
 * order, `more` when there is another after them, `from` the finer interval they were built
 * from, `excluded` the finer bars outside every regular session between the page's first
 * bucket's start and last bucket's end (as a page rolled up on read counts them).
 */
export type RollupPage = { from: Interval; bars: Bar[]; more: boolean; excluded: number };
/** What a catch-up of the materialised rollups did: runs rolled up, runs that failed (left queued), rows written and removed. */
export type RollupResult = { runs: number; failed: number; written: number; deleted: number };

/**
 * A position in a store's change order. Every bar carries the id of the run that last inserted
 * or changed it, and each store reads changes in run order, then an order of its own that its
 * indexes serve (SQLite: symbol, interval, ts, source; Postgres: series id, ts). The position is
 * the store's to read: a sink keeps the last one it delivered, as it was given, and hands it back.
 * `runId` is always there; the rest is the store's own.
 */
export type ChangePosition = { runId: number } & Record<string, string | number>;

export type ChangeQuery = {
  /** Exclusive: the last position delivered (null: from the start). */
  after: ChangePosition | null;
  /** Inclusive upper bound on run_id: runs above it may still be writing. */
  uptoRun: number;
  limit: number;
  /** Only bars of these store sources. */
  sources?: string[];
};

export type ChangedBar = { bar: Bar; position: ChangePosition };

export type Readiness = { ok: boolean; schemaVersion: number; expectedVersion: number; error?: string };

/** What every store is and does to open, check and close itself. */
export interface StoreLifecycle {
  readonly kind: string;
  /** Where it is, with any password removed, for logs and /readyz. */
  readonly location: string;
  migrate(): Promise<{ applied: number[]; version: number }>;
  ready(): Promise<Readiness>;
  close(): Promise<void>;
}

/** Bars in: a batch with its quarantine, checkpoint and run counters, in one transaction. */
export interface BarWriter {
  commitBatch(batch: CommitBatch): Promise<CommitResult>;
  /**
   * Batches of one stream (one checkpoint's) that may be in flight at once, default 1: with more,
   * commitBatch is called again before the earlier call settles, and the store commits them in
   * the order of the calls, none after one that failed.
   */
  readonly pipeline?: number;
}

/**
 * queryBars' page as BarValues rows, no object per bar: /api/bars' JSON is written straight from
 * them. Optional in a Store (SQLite, Postgres): without it a reader maps queryBars' bars (barValues).
 */
export interface BarValueReader {
  queryBarValues(q: BarQuery): Promise<BarValues[]>;
}

/** Fields a narrow read can ask for, named as in Bar. */
export type BarField = "source" | "ts" | "open" | "high" | "low" | "close" | "volume" | "adjClose" | "turnover" | "trades";
/** A bar's fields as a narrow read gives them: an absent optional value null. */
export type BarFieldRow = { source: string; ts: number; open: number; high: number; low: number; close: number; volume: number; adjClose: number | null; turnover: number | null; trades: number | null };

/**
 * queryBars' page with only `fields`, a plain object per row keyed by them: every value left out
 * is one not made (/api/indicators reads ts and close; weeks rolled up from daily bars leave out
 * symbol and interval). Optional in a Store (SQLite); without it a reader takes queryBars' bars.
 */
export interface BarFieldReader {
  queryBarFields<F extends BarField>(q: BarQuery, fields: readonly F[]): Promise<Pick<BarFieldRow, F>[]>;
}

/** Bars out: pages of one series, the series kept, and the change order sinks read. */
export interface BarReader {
  listSeries(opts?: { symbol?: string }): Promise<SeriesInfo[]>;
  queryBars(q: BarQuery): Promise<Bar[]>;
  countBars(): Promise<number>;
  /** Bars changed by runs in (after.runId, uptoRun], in change order; for sinks. */
  changedBars(q: ChangeQuery): Promise<ChangedBar[]>;
  /**
   * The extras kept for these bars (by barKey(source, symbol, interval, ts)); bars without any
   * are not in the map. Read by sinks that map extras to fields, a page at a time.
   */
  barExtras(bars: readonly Bar[]): Promise<Map<string, Record<string, number>>>;
  /** Whether any bar has extras (a migration copies them only then). */
  hasExtras(): Promise<boolean>;
}

/** The run ledger: runs and their streams, checkpoints, and the quarantine of rejected rows. */
export interface RunLedger {
  getCheckpoint(stream: string): Promise<Checkpoint | null>;
  /** Every checkpoint (for migration between stores). */
  listCheckpoints(): Promise<Checkpoint[]>;
  /** Write checkpoints as they are (migration); an existing one for the stream is replaced. */
  putCheckpoints(checkpoints: Checkpoint[], runId: number): Promise<void>;
  startRun(run: RunStart): Promise<number>;
  finishRun(id: number, summary: RunSummary): Promise<void>;
  getRun(id: number): Promise<RunRecord | null>;
  /** Take over an unfinished run (resume): it is running again, owned by this process. */
  reopenRun(id: number): Promise<void>;
  /** Per-stream state of a run (kept for resumable runs, and for failures of any run). */
  initRunStreams(runId: number, streams: string[]): Promise<void>;
  setRunStream(runId: number, stream: string, state: { status: StreamStatus; cause?: string | null; error?: string | null; rows: number }): Promise<void>;
  listRunStreams(runId: number, status?: StreamStatus): Promise<RunStream[]>;
  listRuns(opts: { limit: number; before?: number; source?: string }): Promise<RunRecord[]>;
  lastSuccessByJob(): Promise<Map<string, number>>;
  listQuarantine(opts: { limit: number; before?: number; source?: string; rule?: string; runId?: number }): Promise<QuarantineRecord[]>;
  /**
   * Remove quarantine records by id (a replay stored their rows); returns how many were removed.
   * QuestDB deletes no rows: it marks them released, and no read sees them after.
   */
  deleteQuarantine?(ids: number[]): Promise<number>;
}

/** The event journal: the bars each committed batch changed, live and (where kept) replayable. */
export interface EventJournal {
  /** Whether committed events are journaled (eventsSince can replay them); false: onEvents is live only. */
  readonly journal: boolean;
  /**
   * Events (bars inserted or changed) journaled after event id `after`, in id order, at most
   * `limit` (whole batches may make it a little more). The journal keeps what `pruneEvents` left.
   */
  eventsSince(after: number, limit: number): Promise<BarEvent[]>;
  /** The newest event id in the journal (0: none), and the oldest still kept (null: empty). */
  eventBounds(): Promise<{ last: number; first: number | null }>;
  /** Drop journaled batches older than this instant (epoch ms); returns the batches dropped. */
  pruneEvents(before: number): Promise<number>;
  /**
   * Called with each committed batch's events, in commit order, right after its commit, in the
   * process that committed it. Returns the unsubscribe function.
   */
  onEvents(fn: (events: BarEvent[]) => void): () => void;
  /**
   * Called (without the events) when any process commits a batch to this store, where the store
   * can tell (Postgres: LISTEN/NOTIFY); a reader then fetches them with eventsSince.
   * Resolves to the unsubscribe function, or null where the store cannot tell.
   */
  watchEvents(fn: () => void): Promise<(() => Promise<void>) | null>;
}

/** Named leases (replicas: one leader runs the scheduled jobs). QuestDB's are epoch tables (src/stores/questdb/leases.ts). */
export interface Leases {
  /**
   * Take or keep the named lease for `ttlMs`. True when `holder` has it now: it was free,
   * expired, or already this holder's.
   */
  tryLease(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Give the lease up (on shutdown), if `holder` has it. */
  releaseLease(name: string, holder: string): Promise<void>;
}

/**
 * Instruments and corporate actions (src/domain/actions.ts). Optional in a Store: absent where
 * the store does not keep them (QuestDB: see docs/stores.md); callers say so, never drop them silently.
 */
export interface ReferenceData {
  /** Insert or replace instruments by (source, symbol). */
  upsertInstruments(instruments: Instrument[]): Promise<void>;
  /** Instruments of every source, or of one symbol; ordered by symbol, source. */
  listInstruments(opts?: { symbol?: string }): Promise<Instrument[]>;
  /** Insert or replace actions by (source, symbol, type, exDate); returns how many were new or changed. */
  upsertActions(actions: CorporateAction[]): Promise<number>;
  /** A symbol's actions from every source, by ex-date. */
  listActions(symbol: string): Promise<CorporateAction[]>;
}

/** Retention and no-data sessions (src/pipeline/retention.ts, src/pipeline/gapfill.ts). Optional in a Store. */
export interface Retention {
  /**
   * Delete the bars of one interval (every source and symbol) with ts < `before`, keeping each
   * series' first ts and bar count exact (a series left empty is removed from listSeries).
   * Returns the bars deleted. Absent where the store cannot delete rows (QuestDB).
   */
  deleteBars(opts: { interval: Interval; before: number }): Promise<number>;
  /** Record sessions a provider was asked for and had no bar for; returns how many were new. */
  markNoData(sessions: NoDataSession[]): Promise<number>;
  /** The recorded no-data sessions, of one source or all, by source, symbol, interval, session. */
  listNoData(opts?: { source?: string }): Promise<NoDataSession[]>;
}

/** A bar's natural key within one source. */
export type BarKey = { symbol: string; interval: Interval; ts: number };

/** Deleting single bars (a table source's reconciliation, deleteMissing). Optional in a Store. */
export interface BarDeletes {
  /**
   * Delete these bars of `source` in one transaction, journaled as "delete" events so the stream
   * and the sinks see them; series stay exact. Returns the bars that existed and were deleted.
   * Absent where the store cannot delete rows (QuestDB).
   */
  deleteBarKeys(batch: { runId: number; source: string; keys: BarKey[] }): Promise<number>;
  /**
   * The "delete" events journaled after event id `after`, in id order, at most about `limit`:
   * what eventsSince gives less the inserts and updates, found without decoding them (sinks).
   */
  deletesSince(after: number, limit: number): Promise<BarEvent[]>;
}

/** Materialised rollups (Postgres; src/stores/postgres/rollups.ts). Optional in a Store. */
export interface MaterialisedRollups {
  /**
   * /api/bars' rolled-up page from the store's materialised rollups, equal to the page rolled up
   * on read (src/http/derived.ts); null when the store has none for this query or they are not
   * up to date yet (finer bars of a run still running or queued), and the caller rolls up on read.
   * Absent where nothing is materialised (SQLite, QuestDB).
   */
  rollupPage(q: BarQuery): Promise<RollupPage | null>;
  /** Runs whose stored bars are not in the materialised rollups yet. */
  rollupPending(): Promise<number>;
  /**
   * Roll up every queued run now (after the catch-up already in progress in this process, if
   * any); runs that failed stay queued. A run finishing only queues itself: the rollups serve
   * /api/bars, so `serve` keeps them (rollUpInBackground), and `ticksync rollups` catches up.
   */
  rollUp(): Promise<RollupResult>;
  /** From now on roll up queued runs in the background: at once, and after each run this process finishes. */
  rollUpInBackground(): void;
}

/** Where a range read ended: the (ts, symbol, source) of the last bar it gave. */
export type RangePosition = { ts: number; symbol: string; source: string };

/** Bars of several symbols at one interval in [from, to], merged in (ts, symbol, source) order. */
export type RangeQuery = { symbols: readonly string[]; interval: Interval; source?: string; from: number; to: number; after?: RangePosition };

/**
 * A bar of a range read as a row, no object per bar:
 * [ts, symbol, source, open, high, low, close, volume, adjClose, turnover, trades].
 */
export type RangeRow = [number, string, string, number, number, number, number, number, number | null, number | null, number | null];

/** A page of a range read, and the journal's last event id in the same snapshot (what the page reflects). */
export type RangePage = { rows: RangeRow[]; journalAt: number };

/** A range read in progress: each call reads the next page (empty at the end). */
export type RangeReader = { next(limit: number): Promise<RangePage> };

/**
 * Range reads across symbols in time order (/api/replay, the WebSocket's replay). Optional in a
 * Store: where absent, callers merge per-symbol queryBars pages themselves. Ties order by symbol
 * then source, compared as bytes; the series read are those existing when the read starts.
 */
export interface RangeReads {
  readRange(q: RangeQuery): RangeReader;
}

/**
 * A whole store: every capability, the optional ones where it has them. Callers that need only
 * one part take that part's type (e.g. the stream takes an EventJournal).
 */
export interface Store
  extends StoreLifecycle,
    BarWriter,
    BarReader,
    Partial<BarValueReader>,
    Partial<BarFieldReader>,
    RunLedger,
    EventJournal,
    Leases,
    Partial<ReferenceData>,
    Partial<Retention>,
    Partial<BarDeletes>,
    Partial<MaterialisedRollups>,
    Partial<RangeReads> {}
