// How a store is composed from its modules. Each store writes a capability as functions of its
// context (`getRun(cx, id)`); these bind a capability's functions to one context as the Store's
// methods, so every store forwards the same way and a new method is wired here once. Parts a
// store does differently (commitBatch, watchEvents, migrate, close...) it writes itself.
import type { BarReader, EventJournal, Leases, ReferenceData, Retention, RunLedger } from "./types.ts";

/** T's methods as functions taking the store's context first. */
export type OverContext<C, T> = {
  [K in keyof T]-?: NonNullable<T[K]> extends (...args: infer A) => infer R ? (cx: C, ...args: A) => R : never;
};

/** The run ledger; deleteQuarantine is optional (each store adds its own: QuestDB marks records released). */
type Ledger = Omit<RunLedger, "deleteQuarantine">;

export function bindLedger<C>(cx: C, f: OverContext<C, Ledger>): Ledger {
  return {
    getCheckpoint: (stream) => f.getCheckpoint(cx, stream),
    listCheckpoints: () => f.listCheckpoints(cx),
    putCheckpoints: (list, runId) => f.putCheckpoints(cx, list, runId),
    startRun: (run) => f.startRun(cx, run),
    finishRun: (id, summary) => f.finishRun(cx, id, summary),
    getRun: (id) => f.getRun(cx, id),
    reopenRun: (id) => f.reopenRun(cx, id),
    initRunStreams: (runId, streams) => f.initRunStreams(cx, runId, streams),
    setRunStream: (runId, stream, state) => f.setRunStream(cx, runId, stream, state),
    listRunStreams: (runId, status) => f.listRunStreams(cx, runId, status),
    listRuns: (opts) => f.listRuns(cx, opts),
    lastSuccessByJob: () => f.lastSuccessByJob(cx),
    listQuarantine: (opts) => f.listQuarantine(cx, opts),
  };
}

export function bindBarReader<C>(cx: C, f: OverContext<C, BarReader>): BarReader {
  return {
    listSeries: (opts) => f.listSeries(cx, opts),
    queryBars: (q) => f.queryBars(cx, q),
    countBars: () => f.countBars(cx),
    changedBars: (q) => f.changedBars(cx, q),
    barExtras: (bars) => f.barExtras(cx, bars),
    hasExtras: () => f.hasExtras(cx),
  };
}

/** The journal kept in the store's own tables (SQLite, Postgres); how other processes' commits are seen differs. */
type JournalReads = Pick<EventJournal, "eventsSince" | "eventBounds" | "pruneEvents" | "onEvents">;

export function bindJournal<C>(cx: C, f: OverContext<C, JournalReads>): JournalReads {
  return {
    eventsSince: (after, limit) => f.eventsSince(cx, after, limit),
    eventBounds: () => f.eventBounds(cx),
    pruneEvents: (before) => f.pruneEvents(cx, before),
    onEvents: (fn) => f.onEvents(cx, fn),
  };
}

export function bindLeases<C>(cx: C, f: OverContext<C, Leases>): Leases {
  return {
    tryLease: (name, holder, ttlMs) => f.tryLease(cx, name, holder, ttlMs),
    releaseLease: (name, holder) => f.releaseLease(cx, name, holder),
  };
}

export function bindReferenceData<C>(cx: C, f: OverContext<C, ReferenceData>): ReferenceData {
  return {
    upsertInstruments: (list) => f.upsertInstruments(cx, list),
    listInstruments: (opts) => f.listInstruments(cx, opts),
    upsertActions: (list) => f.upsertActions(cx, list),
    listActions: (symbol) => f.listActions(cx, symbol),
  };
}

export function bindRetention<C>(cx: C, f: OverContext<C, Retention>): Retention {
  return {
    deleteBars: (opts) => f.deleteBars(cx, opts),
    markNoData: (list) => f.markNoData(cx, list),
    listNoData: (opts) => f.listNoData(cx, opts),
  };
}
