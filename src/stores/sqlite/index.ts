// The embedded store: one SQLite file in WAL mode, through bun:sqlite. It is the default, so a
// user with no database server still gets a durable, idempotent, resumable service.
// Modules: db (connection, write statements), schema (migrations), writes (the batch
// transaction), reads, ledger (runs, checkpoints, quarantine), journal (events, leases),
// reference (instruments, actions, retention), backup (snapshot and restore).
import type { Database } from "bun:sqlite";
import { resolve } from "node:path";
import { newOwner, readiness } from "../common.ts";
import { bindBarReader, bindJournal, bindLeases, bindLedger, bindReferenceData, bindRetention } from "../compose.ts";
import type { BarEvent } from "../events.ts";
import type { Store } from "../types.ts";
import { openDatabase, sqlitePath, type SqliteContext } from "./db.ts";
import * as journal from "./journal.ts";
import * as ledger from "./ledger.ts";
import * as reads from "./reads.ts";
import * as reference from "./reference.ts";
import { migrate, schemaVersion, SQLITE_SCHEMA_VERSION } from "./schema.ts";
import { commitBatch, commitTransaction, dropBatchStatements, putCheckpoints } from "./writes.ts";
import { deleteBarKeysTransaction, deletesSince } from "./deletes.ts";
import { readRange } from "./replay.ts";

export { sqlitePath } from "./db.ts";
export { SQLITE_MIGRATIONS, SQLITE_SCHEMA_VERSION } from "./schema.ts";

/**
 * The store at `url`; or, given `db`, a view of that open connection (a backup's snapshot: it
 * reads within the caller's transaction, and closing the view leaves the connection open).
 */
export function sqliteStore(url: string, db?: Database): Store {
  const path = sqlitePath(url);
  const cx: SqliteContext = { db: db ?? openDatabase(path), owner: newOwner(), stmts: null, listeners: new Set<(events: BarEvent[]) => void>() };
  const commit = commitTransaction(cx);
  return {
    kind: "sqlite",
    journal: true,
    location: path === ":memory:" ? ":memory:" : resolve(path),
    migrate: () => migrate(cx),
    ready: () => readiness(async () => schemaVersion(cx), SQLITE_SCHEMA_VERSION),
    commitBatch: (batch) => commitBatch(cx, commit, batch),
    ...bindLedger(cx, { ...ledger, putCheckpoints }),
    deleteQuarantine: (ids) => ledger.deleteQuarantine(cx, ids),
    ...bindBarReader(cx, reads),
    queryBarValues: (q) => reads.queryBarValues(cx, q),
    queryBarFields: (q, fields) => reads.queryBarFields(cx, q, fields),
    ...bindJournal(cx, journal),
    // Other processes on this file are seen by polling the journal.
    watchEvents: async () => null,
    ...bindLeases(cx, journal),
    ...bindReferenceData(cx, reference),
    ...bindRetention(cx, reference),
    deleteBarKeys: deleteBarKeysTransaction(cx),
    deletesSince: (after, limit) => deletesSince(cx, after, limit),
    readRange: (q) => readRange(cx, q),
    async close() {
      cx.stmts = null;
      dropBatchStatements(cx.db);
      if (!db) cx.db.close();
    },
  };
}
