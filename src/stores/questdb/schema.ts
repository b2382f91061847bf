// The QuestDB store's schema: its tables (bars in a WAL table with dedup keys; bookkeeping
// tables over PG wire; the progress table written over ILP) and their versioned migration.
import { ownerGone } from "../common.ts";
import { walApplied, type QdbContext, type TableName } from "./context.ts";
import { expandKey, KEY_HEX, KEY_ROW, newKeyHex, type RowHashKey } from "./rowhash.ts";

const TABLES = (t: Record<TableName, string>) => [
  `CREATE TABLE IF NOT EXISTS "${t.bars}" (
     symbol SYMBOL, interval SYMBOL, source SYMBOL, ts TIMESTAMP,
     open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE, adj_close DOUBLE, turnover DOUBLE, trades LONG,
     run_id LONG, updated_at TIMESTAMP, row_hash LONG
   ) TIMESTAMP(ts) PARTITION BY MONTH WAL DEDUP UPSERT KEYS(ts, symbol, interval, source)`,
  // Bookkeeping tables are small, non-partitioned, written synchronously over PG wire.
  `CREATE TABLE IF NOT EXISTS "${t.checkpoints}" (stream VARCHAR, cursor VARCHAR, last_ts TIMESTAMP, last_key VARCHAR, run_id LONG, updated_at TIMESTAMP)`,
  `CREATE TABLE IF NOT EXISTS "${t.quarantine}" (id LONG, run_id LONG, source VARCHAR, locator VARCHAR, rule VARCHAR, reason VARCHAR, symbol VARCHAR, ts TIMESTAMP, raw VARCHAR, created_at TIMESTAMP)`,
  `CREATE TABLE IF NOT EXISTS "${t.runs}" (
     id LONG, kind VARCHAR, source VARCHAR, job VARCHAR, params VARCHAR, owner VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP,
     duration_ms LONG, outcome VARCHAR, read LONG, inserted LONG, updated LONG, unchanged LONG, quarantined LONG,
     from_ts TIMESTAMP, to_ts TIMESTAMP, quality VARCHAR, error VARCHAR, failures VARCHAR)`,
  `CREATE TABLE IF NOT EXISTS "${t.run_streams}" (run_id LONG, stream VARCHAR, status VARCHAR, cause VARCHAR, error VARCHAR, rows LONG, updated_at TIMESTAMP)`,
];
/**
 * Checkpoints (kind 'checkpoint', key: the stream) and run counters (kind 'run', key: the run id)
 * as rows of one WAL table, written over ILP with the batch's data. All rows share one designated
 * timestamp, so the dedup keys make a row replace the previous one of the same kind and key.
 */
const PROGRESS = (t: Record<TableName, string>) =>
  `CREATE TABLE IF NOT EXISTS "${t.progress}" (
     kind SYMBOL, key VARCHAR, ts TIMESTAMP,
     cursor VARCHAR, last_ts TIMESTAMP, last_key VARCHAR,
     run_id LONG, read LONG, inserted LONG, updated LONG, unchanged LONG, quarantined LONG, from_ts TIMESTAMP, to_ts TIMESTAMP,
     updated_at TIMESTAMP
   ) TIMESTAMP(ts) PARTITION BY YEAR WAL DEDUP UPSERT KEYS(ts, kind, key)`;
export const QDB_SCHEMA_VERSION = 5;

export async function version(cx: QdbContext): Promise<number> {
  const { sql, T } = cx;
  const tables = await sql`SELECT table_name FROM tables() WHERE table_name = ${T.schema_migrations}`;
  if (tables.length === 0) return 0;
  const [r] = await sql`SELECT max(version) AS v FROM ${sql(T.schema_migrations)}`;
  return Number(r?.v ?? 0);
}

const hasColumn = async (cx: QdbContext, table: string, column: string) => (await cx.sql.unsafe(`SELECT "column" FROM table_columns('${table}') WHERE "column" = $1`, [column])).length > 0;

const tableExists = async (cx: QdbContext, name: string) => (await cx.sql`SELECT table_name FROM tables() WHERE table_name = ${name}`).length > 0;

export function migrate(cx: QdbContext): Promise<{ applied: number[]; version: number }> {
  const { sql, T } = cx;
  return cx.exclusive(async () => {
    const applied: number[] = [];
    await sql`CREATE TABLE IF NOT EXISTS ${sql(T.schema_migrations)} (version INT, name VARCHAR, applied_at TIMESTAMP)`;
    if ((await version(cx)) < 1) {
      for (const ddl of TABLES(T)) await sql.unsafe(ddl);
      await sql`INSERT INTO ${sql(T.schema_migrations)} VALUES (1, 'bars (WAL, dedup keys), bookkeeping tables', ${new Date()})`;
      applied.push(1);
    }
    if ((await version(cx)) < 2) {
      // Checkpoints move into the progress table, written over ILP with their batch. Each
      // step can run again after a crash: the copy upserts the same keys.
      await sql.unsafe(PROGRESS(T));
      if (await tableExists(cx, T.checkpoints)) {
        await sql.unsafe(`INSERT INTO "${T.progress}" (kind, key, ts, cursor, last_ts, last_key, run_id, updated_at)
                            SELECT 'checkpoint', stream, cast(0 AS timestamp), cursor, last_ts, last_key, run_id, updated_at FROM "${T.checkpoints}"`);
        await walApplied(cx, T.progress);
        await sql.unsafe(`DROP TABLE IF EXISTS "${T.checkpoints}"`);
      }
      await sql`INSERT INTO ${sql(T.schema_migrations)} VALUES (2, 'checkpoints and run counters in one WAL table written over ILP', ${new Date()})`;
      applied.push(2);
    }
    // --- bar extras ---
    if ((await version(cx)) < 3) {
      // A table source's extra numeric columns beside their bars, as JSON text under the bars' key.
      await sql.unsafe(`CREATE TABLE IF NOT EXISTS "${T.bar_extras}" (
          symbol SYMBOL, interval SYMBOL, source SYMBOL, ts TIMESTAMP, extras VARCHAR
        ) TIMESTAMP(ts) PARTITION BY YEAR WAL DEDUP UPSERT KEYS(ts, symbol, interval, source)`);
      await sql`INSERT INTO ${sql(T.schema_migrations)} VALUES (3, 'bar extras beside their bars', ${new Date()})`;
      applied.push(3);
    }
    // --- end bar extras ---
    if ((await version(cx)) < 4) {
      // The event journal (src/stores/questdb/journal.ts): keys of each batch's changed bars, by
      // batch number; its marks (last batch, pruned floor) are progress rows with a value. A
      // quarantine record a replay stored is marked released (QuestDB deletes no rows).
      await sql.unsafe(`CREATE TABLE IF NOT EXISTS "${T.journal}" (
          batch_id LONG, at_index INT, events INT, run_id LONG, series VARCHAR, ops VARCHAR, data VARCHAR, ts TIMESTAMP
        ) TIMESTAMP(ts) PARTITION BY DAY WAL`);
      if (!(await hasColumn(cx, T.progress, "value"))) await sql.unsafe(`ALTER TABLE "${T.progress}" ADD COLUMN value LONG`);
      if (!(await hasColumn(cx, T.quarantine, "released_at"))) await sql.unsafe(`ALTER TABLE "${T.quarantine}" ADD COLUMN released_at TIMESTAMP`);
      await walApplied(cx, T.progress);
      await sql`INSERT INTO ${sql(T.schema_migrations)} VALUES (4, 'event journal, released quarantine records', ${new Date()})`;
      applied.push(4);
    }
    if ((await version(cx)) < 5) {
      // Each bar's keyed hash (src/stores/questdb/rowhash.ts), so an unchanged re-load compares
      // sums of hashes instead of reading every bar back; the key is random per store. Bars
      // stored before have none (null) and are looked up bar by bar as before. (A new store's
      // bars table has the column from migration 1.)
      if (!(await hasColumn(cx, T.bars, "row_hash"))) await sql.unsafe(`ALTER TABLE "${T.bars}" ADD COLUMN row_hash LONG`);
      await walApplied(cx, T.bars);
      await sql`INSERT INTO ${sql(T.schema_migrations)} VALUES (5, 'row hashes of bars', ${new Date()})`;
      applied.push(5);
    }
    // The row hash key: made by migration 5, and again whenever it is missing (a store whose
    // progress rows were lost); bars hashed with a lost key are only read back, never misjudged.
    if ((await version(cx)) >= 5) await ensureRowHashKey(cx);
    for (const r of await sql`SELECT id, owner FROM ${sql(T.runs)} WHERE outcome = 'running'`) {
      if (ownerGone(String(r.owner), cx.owner))
        await sql`UPDATE ${sql(T.runs)} SET outcome = 'interrupted', finished_at = ${new Date()}, error = 'process ended before the run finished' WHERE id = ${Number(r.id)}`;
    }
    return { applied, version: await version(cx) };
  });
}

/** The store's key as stored (16 hex digits), or null when there is none. */
async function storedKeyHex(cx: QdbContext): Promise<string | null> {
  const { sql, T } = cx;
  const [r] = await sql`SELECT cursor FROM ${sql(T.progress)} WHERE kind = ${KEY_ROW.kind} AND key = ${KEY_ROW.key}`;
  const hex = String(r?.cursor ?? "");
  return KEY_HEX.test(hex) ? hex : null;
}

async function ensureRowHashKey(cx: QdbContext) {
  const { sql, T } = cx;
  if (await storedKeyHex(cx)) return;
  await sql`INSERT INTO ${sql(T.progress)} (kind, key, ts, cursor, updated_at) VALUES (${KEY_ROW.kind}, ${KEY_ROW.key}, cast(0 AS timestamp), ${newKeyHex()}, ${new Date()})`;
  await walApplied(cx, T.progress);
}

/** The store's key, read once (made by its migration). */
export async function rowHashKey(cx: QdbContext): Promise<RowHashKey> {
  if (cx.rowKey) return cx.rowKey;
  const hex = await storedKeyHex(cx);
  if (!hex) throw new Error("the QuestDB store has no row hash key: it is made when the store is migrated (schema version 5, or any migration after its loss)");
  return (cx.rowKey = expandKey(parseInt(hex.slice(0, 8), 16), parseInt(hex.slice(8), 16)));
}
