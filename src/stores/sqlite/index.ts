// The embedded store: one SQLite file in WAL mode, through bun:sqlite. It is the default, so a
// user with no database server still gets a durable, idempotent, resumable service.
// Modules: db (connection, write statements), schema (migrations), writes (the batch
// transaction), reads, ledger (runs, checkpoints, quarantine), journal (events, leases),
// reference (instruments, actions, retention), backup (snapshot and restore).
import { resolve } from "node:path";
import { newOwner, readiness } from "../common.ts";
import type { BarEvent } from "../events.ts";
import type { Store } from "../types.ts";
import { openDatabase, sqlitePath, type SqliteContext } from "./db.ts";
import { eventBounds, eventsSince, onEvents, pruneEvents, releaseLease, tryLease } from "./journal.ts";
import * as ledger from "./ledger.ts";
import { changedBars, countBars, listSeries, queryBars } from "./reads.ts";
import { deleteBars, listActions, listInstruments, listNoData, markNoData, upsertActions, upsertInstruments } from "./reference.ts";
import { migrate, schemaVersion, SQLITE_SCHEMA_VERSION } from "./schema.ts";
import { commitBatch, commitTransaction, putCheckpoints } from "./writes.ts";

export { sqlitePath } from "./db.ts";
export { SQLITE_MIGRATIONS, SQLITE_SCHEMA_VERSION } from "./schema.ts";

export function sqliteStore(url: string): Store {
  const path = sqlitePath(url);
  const cx: SqliteContext = { db: openDatabase(path), owner: newOwner(), stmts: null, listeners: new Set<(events: BarEvent[]) => void>() };
  const commit = commitTransaction(cx);
  return {
    kind: "sqlite",
    journal: true,
    location: path === ":memory:" ? ":memory:" : resolve(path),
    migrate: () => migrate(cx),
    ready: () => readiness(async () => schemaVersion(cx), SQLITE_SCHEMA_VERSION),
    commitBatch: (batch) => commitBatch(cx, commit, batch),
    eventsSince: (after, limit) => eventsSince(cx, after, limit),
    eventBounds: () => eventBounds(cx),
    pruneEvents: (before) => pruneEvents(cx, before),
    onEvents: (fn) => onEvents(cx, fn),
    // Other processes on this file are seen by polling the journal.
    watchEvents: async () => null,
    tryLease: (name, holder, ttlMs) => tryLease(cx, name, holder, ttlMs),
    releaseLease: (name, holder) => releaseLease(cx, name, holder),
    getCheckpoint: (stream) => ledger.getCheckpoint(cx, stream),
    listCheckpoints: () => ledger.listCheckpoints(cx),
    putCheckpoints: (list, runId) => putCheckpoints(cx, list, runId),
    startRun: (run) => ledger.startRun(cx, run),
    finishRun: (id, summary) => ledger.finishRun(cx, id, summary),
    getRun: (id) => ledger.getRun(cx, id),
    reopenRun: (id) => ledger.reopenRun(cx, id),
    initRunStreams: (runId, streams) => ledger.initRunStreams(cx, runId, streams),
    setRunStream: (runId, stream, state) => ledger.setRunStream(cx, runId, stream, state),
    listRunStreams: (runId, status) => ledger.listRunStreams(cx, runId, status),
    listRuns: (opts) => ledger.listRuns(cx, opts),
    lastSuccessByJob: () => ledger.lastSuccessByJob(cx),
    listQuarantine: (opts) => ledger.listQuarantine(cx, opts),
    deleteQuarantine: (ids) => ledger.deleteQuarantine(cx, ids),
    listSeries: (opts) => listSeries(cx, opts),
    queryBars: (q) => queryBars(cx, q),
    countBars: () => countBars(cx),
    changedBars: (q) => changedBars(cx, q),
    upsertInstruments: (list) => upsertInstruments(cx, list),
    listInstruments: (opts) => listInstruments(cx, opts),
    upsertActions: (list) => upsertActions(cx, list),
    listActions: (symbol) => listActions(cx, symbol),
    deleteBars: (opts) => deleteBars(cx, opts),
    markNoData: (list) => markNoData(cx, list),
    listNoData: (opts) => listNoData(cx, opts),
    async close() {
      cx.stmts = null;
      cx.db.close();
    },
  };
}
