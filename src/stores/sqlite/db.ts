// The SQLite store's connection: the file opened in WAL mode with its pragmas, the statements of
// the write path (prepared once, on first use), and the context every module of the store takes.
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { BarEvent } from "../events.ts";

export const BAR_COLS = "symbol, interval, ts, source, open, high, low, close, volume, adj_close, turnover, trades, run_id, updated_at";

/** What the store's modules share: one per opened store. */
export type SqliteContext = {
  readonly db: Database;
  /** Who owns the runs this process starts (src/stores/common.ts). */
  readonly owner: string;
  /** The write path's statements, prepared on first use, dropped on close. */
  stmts: WriteStatements | null;
  /** onEvents subscribers: told of each committed batch's events in this process. */
  readonly listeners: Set<(events: BarEvent[]) => void>;
  /** The connection's wal_autocheckpoint now (pages), as the write path last set it. */
  checkpointPages?: number;
};

/**
 * Path of a `sqlite:` store URL (`sqlite:./data/x.db`, `sqlite:///abs/x.db`) or a bare path. The
 * scheme is matched in any case, as the store registry matches it (stores/registry.ts).
 */
export function sqlitePath(url: string): string {
  const scheme = url.slice(0, 9).toLowerCase();
  if (scheme === "sqlite://") return url.slice("sqlite://".length) || ":memory:";
  if (scheme.startsWith("sqlite:")) return url.slice("sqlite:".length);
  if (scheme.startsWith("file:")) return url.slice("file:".length);
  return url;
}

export function openDatabase(path: string): Database {
  if (path !== ":memory:") mkdirSync(dirname(resolve(path)), { recursive: true });
  const db = new Database(path, { create: true, strict: false });
  // busy_timeout first: even the journal_mode pragma can meet another process's lock (bun's close()
  // finishes lazily, when its statements are collected, and checkpoints the WAL under that lock).
  db.exec("PRAGMA busy_timeout = 10000");
  db.exec("PRAGMA journal_mode = WAL");
  // NORMAL in WAL mode: a committed transaction survives a process crash (kill -9); only an OS
  // crash or power loss can roll back the last transactions, never corrupt the file.
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec("PRAGMA temp_store = MEMORY");
  db.exec("PRAGMA cache_size = -65536");
  // The WAL file is cut back to 64 MiB after a checkpoint (the most a bulk load lets it grow:
  // see BULK_CHECKPOINT_PAGES in writes.ts).
  db.exec("PRAGMA journal_size_limit = 67108864");
  db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
  return db;
}

export type WriteStatements = ReturnType<typeof prepareWrites>;

export const prepareWrites = (db: Database) => ({
  journal: db.prepare("INSERT INTO journal (run_id, created_at, n, series, ops, data) VALUES (?, ?, ?, ?, ?, ?) RETURNING batch"),
  insertBar: db.prepare(`INSERT INTO bars (${BAR_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING`),
  // Touches the row only when a value differs, so an unchanged re-delivery writes nothing.
  updateBar: db.prepare(
    `UPDATE bars SET open=?5, high=?6, low=?7, close=?8, volume=?9, adj_close=?10, turnover=?11, trades=?12, run_id=?13, updated_at=?14
     WHERE symbol=?1 AND interval=?2 AND ts=?3 AND source=?4
       AND (open IS NOT ?5 OR high IS NOT ?6 OR low IS NOT ?7 OR close IS NOT ?8 OR volume IS NOT ?9
            OR adj_close IS NOT ?10 OR turnover IS NOT ?11 OR trades IS NOT ?12)`,
  ),
  upsertSeries: db.prepare(
    `INSERT INTO series (source, symbol, interval, first_ts, last_ts, bars) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (source, symbol, interval) DO UPDATE SET
       first_ts = min(first_ts, excluded.first_ts), last_ts = max(last_ts, excluded.last_ts), bars = bars + excluded.bars`,
  ),
  quarantine: db.prepare(
    `INSERT INTO quarantine (run_id, source, locator, rule, reason, symbol, ts, raw, created_at) VALUES (?,?,?,?,?,?,?,?,?)
     ON CONFLICT (source, locator) DO UPDATE SET run_id = excluded.run_id, rule = excluded.rule, reason = excluded.reason,
       symbol = excluded.symbol, ts = excluded.ts, raw = excluded.raw
     WHERE quarantine.rule IS NOT excluded.rule OR quarantine.raw IS NOT excluded.raw`,
  ),
  // The run's counters move with its batches, so an interrupted run still says what it did.
  runProgress: db.prepare(
    `UPDATE runs SET read = read + ?2, inserted = inserted + ?3, updated = updated + ?4, unchanged = unchanged + ?5,
       quarantined = quarantined + ?6,
       from_ts = CASE WHEN ?7 IS NULL THEN from_ts ELSE min(coalesce(from_ts, ?7), ?7) END,
       to_ts = CASE WHEN ?8 IS NULL THEN to_ts ELSE max(coalesce(to_ts, ?8), ?8) END WHERE id = ?1`,
  ),
  checkpoint: db.prepare(
    `INSERT INTO checkpoints (stream, cursor, last_ts, last_key, run_id, updated_at) VALUES (?,?,?,?,?,?)
     ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor, last_ts = excluded.last_ts,
       last_key = excluded.last_key, run_id = excluded.run_id, updated_at = excluded.updated_at`,
  ),
});

/** The write statements, prepared on first use. */
export const writeStatements = (cx: SqliteContext): WriteStatements => (cx.stmts ??= prepareWrites(cx.db));
