// PostgreSQL (and TimescaleDB when its extension is there) through postgres.js. Bars are keyed
// by (series_id, ts): an int and a timestamp index far cheaper than the text natural key, which
// lives once per series in the series table. A batch is one binary COPY: straight into bars when
// every bar is newer than its series' newest stored bar (the series rows are locked first, so
// that stays true until commit), otherwise into a temporary staging table upserted from there,
// so re-loading is idempotent. The checkpoint, the quarantine and the run's counters commit in
// the same transaction.
//
// This module composes the store from its parts, each a set of functions of the shared context
// (context.ts): schema.ts (migrations), series.ts, copy.ts and batch.ts (the write path),
// bars.ts (reads), ledger.ts (runs, checkpoints, quarantine), journal.ts, deletes.ts, leases.ts,
// reference.ts (instruments, actions), retention.ts, rollups/ (materialised rollups).
import postgres from "postgres";
import { newOwner, readiness } from "../common.ts";
import { bindBarReader, bindJournal, bindLeases, bindLedger, bindReferenceData, bindRetention } from "../compose.ts";
import type { BarEvent } from "../events.ts";
import type { Store } from "../types.ts";
import * as bars from "./bars.ts";
import { commitBatch } from "./batch.ts";
import { deleteBarKeys, deletesSince } from "./deletes.ts";
import { timePoolWaits, type PgContext } from "./context.ts";
import * as journal from "./journal.ts";
import * as leases from "./leases.ts";
import * as ledger from "./ledger.ts";
import * as reference from "./reference.ts";
import * as retention from "./retention.ts";
import { pgRollups } from "./rollups/index.ts";
import { catchUp, rollUpInBackground, rollUpQueued, rollupWorker, stopWorker } from "./rollups/worker.ts";
import { applyMigrations, PG_SCHEMA_VERSION, schemaVersion } from "./schema.ts";
import type { Sql } from "./sql.ts";
import { parsePgUrl, redactPgUrl } from "./url.ts";
import { readRange } from "./replay.ts";

export { encodeCopy } from "./copy.ts";
export { PG_MIGRATIONS, PG_SCHEMA_VERSION } from "./schema.ts";
export { parsePgUrl, redactPgUrl } from "./url.ts";

/** The store's context: a pool of `max` connections (default 4) working in the URL's schema. */
function openContext(url: string, max: number, given?: Sql): PgContext {
  const { url: connUrl, schema } = parsePgUrl(url);
  const sql: Sql = given ?? timePoolWaits(
    postgres(connUrl, {
      max,
      onnotice: () => {},
      connection: { search_path: schema, application_name: "ticksync" },
      types: { bigint: postgres.BigInt },
    }),
  );
  const rollups = pgRollups(sql, schema);
  return {
    sql,
    schema,
    owner: newOwner(),
    listeners: new Set<(events: BarEvent[]) => void>(),
    timescale: false,
    partitions: new Set(),
    making: new Map(),
    seriesIds: new Map(),
    inFlight: new Map(),
    chains: new Map(),
    rollups,
    worker: rollupWorker(rollups),
  };
}

/**
 * The store at `url`; or, given `sql` (a transaction's, say), a view of that connection (a
 * backup's snapshot: it reads within the caller's transaction, and closing it leaves `sql` open).
 */
export function postgresStore(url: string, opts: { max?: number; sql?: Sql } = {}): Store {
  const ctx = openContext(url, opts.max ?? 4, opts.sql);
  const { rollups, worker } = ctx;
  return {
    kind: "postgres",
    journal: true,
    location: redactPgUrl(url),

    async migrate() {
      const applied = await applyMigrations(ctx);
      await ledger.recoverInterruptedRuns(ctx);
      // Runs queued for the rollups and not worked off yet: in the background, when this process keeps them.
      if (worker.background) void rollUpQueued(worker);
      return { applied, version: await schemaVersion(ctx) };
    },
    ready: () => readiness(() => schemaVersion(ctx), PG_SCHEMA_VERSION),
    pipeline: 2,
    commitBatch: (b) => commitBatch(ctx, b),

    ...bindLedger(ctx, ledger),
    deleteQuarantine: (ids) => ledger.deleteQuarantine(ctx, ids),
    deleteBarKeys: (b) => deleteBarKeys(ctx, b),
    deletesSince: (after, limit) => deletesSince(ctx, after, limit),
    ...bindBarReader(ctx, bars),
    queryBarValues: (q) => bars.queryBarValues(ctx, q),
    ...bindJournal(ctx, journal),
    watchEvents: (fn) => journal.watchEvents(ctx, fn),
    ...bindLeases(ctx, leases),
    ...bindReferenceData(ctx, reference),
    ...bindRetention(ctx, retention),

    readRange: (q) => readRange(ctx, q),
    rollupPage: (q) => rollups.page(q),
    rollupPending: () => rollups.pending(),
    rollUp: () => catchUp(worker),
    rollUpInBackground: () => rollUpInBackground(worker),

    async close() {
      // A catch-up in progress stops at its next step and rolls back (its run stays queued).
      await stopWorker(worker);
      if (!opts.sql) await ctx.sql.end({ timeout: 5 });
    },
  };
}
