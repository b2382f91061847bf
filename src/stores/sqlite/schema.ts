// The SQLite store's schema: its versioned migrations, applied in order, and what opening a
// store does after them (runs cut off by a process that ended are marked interrupted).
import { ownerGone } from "../common.ts";
import type { SqliteContext } from "./db.ts";

type Migration = { version: number; name: string; sql: string };

/** Versioned schema. Append only: a released migration is never edited. */
export const SQLITE_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: "bars, checkpoints, quarantine, runs, series",
    sql: `
      -- Key order (symbol, interval, ts, source) serves the common read, one symbol's range.
      CREATE TABLE bars (
        symbol TEXT NOT NULL, interval TEXT NOT NULL, ts INTEGER NOT NULL, source TEXT NOT NULL,
        open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL,
        adj_close REAL, turnover REAL, trades INTEGER,
        run_id INTEGER NOT NULL, updated_at INTEGER NOT NULL,
        PRIMARY KEY (symbol, interval, ts, source)
      ) WITHOUT ROWID;
      CREATE TABLE series (
        source TEXT NOT NULL, symbol TEXT NOT NULL, interval TEXT NOT NULL,
        first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL, bars INTEGER NOT NULL,
        PRIMARY KEY (source, symbol, interval)
      ) WITHOUT ROWID;
      CREATE TABLE checkpoints (
        stream TEXT PRIMARY KEY, cursor TEXT NOT NULL, last_ts INTEGER, last_key TEXT,
        run_id INTEGER, updated_at INTEGER NOT NULL
      );
      CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, source TEXT NOT NULL, locator TEXT NOT NULL,
        rule TEXT NOT NULL, reason TEXT NOT NULL, symbol TEXT, ts INTEGER, raw TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (source, locator)
      );
      CREATE INDEX quarantine_rule ON quarantine (rule, id);
      CREATE TABLE runs (
        id INTEGER PRIMARY KEY, kind TEXT NOT NULL, source TEXT NOT NULL, job TEXT, params TEXT,
        owner TEXT NOT NULL, started_at INTEGER NOT NULL, finished_at INTEGER, duration_ms INTEGER,
        outcome TEXT NOT NULL, read INTEGER NOT NULL DEFAULT 0, inserted INTEGER NOT NULL DEFAULT 0,
        updated INTEGER NOT NULL DEFAULT 0, unchanged INTEGER NOT NULL DEFAULT 0,
        quarantined INTEGER NOT NULL DEFAULT 0, from_ts INTEGER, to_ts INTEGER, quality TEXT, error TEXT
      );
      CREATE INDEX runs_source ON runs (source, id);
    `,
  },
  {
    version: 2,
    name: "per-stream run state, failures by cause",
    sql: `
      ALTER TABLE runs ADD COLUMN failures TEXT;
      CREATE TABLE run_streams (
        run_id INTEGER NOT NULL, stream TEXT NOT NULL, status TEXT NOT NULL, cause TEXT, error TEXT,
        rows INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL,
        PRIMARY KEY (run_id, stream)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 3,
    name: "change order for sinks",
    sql: `
      -- A WITHOUT ROWID table's index carries the primary key after its own columns, so this is
      -- the (run_id, symbol, interval, ts, source) order sinks read changes in.
      CREATE INDEX bars_changes ON bars (run_id);
    `,
  },
  {
    version: 4,
    name: "event journal",
    sql: `
      -- The bars each batch inserted or changed, compact (src/stores/events.ts), for the stream's
      -- replay. AUTOINCREMENT: a batch number is never reused, even after pruning.
      CREATE TABLE journal (
        batch INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL, created_at INTEGER NOT NULL,
        n INTEGER NOT NULL, series TEXT NOT NULL, ops BLOB NOT NULL, data BLOB NOT NULL
      );
      CREATE INDEX journal_created ON journal (created_at);
    `,
  },
  {
    version: 5,
    name: "leases",
    sql: `CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;`,
  },
  // --- instruments and corporate actions ---
  {
    version: 6,
    name: "instruments, corporate actions",
    sql: `
      CREATE TABLE instruments (
        source TEXT NOT NULL, symbol TEXT NOT NULL, name TEXT, exchange TEXT, currency TEXT, type TEXT,
        sector TEXT, industry TEXT, isin TEXT, updated_at INTEGER NOT NULL,
        PRIMARY KEY (source, symbol)
      ) WITHOUT ROWID;
      CREATE TABLE actions (
        symbol TEXT NOT NULL, type TEXT NOT NULL, ex_date INTEGER NOT NULL, source TEXT NOT NULL,
        numerator REAL, denominator REAL, amount REAL, currency TEXT, pay_date INTEGER, updated_at INTEGER NOT NULL,
        PRIMARY KEY (symbol, type, ex_date, source)
      ) WITHOUT ROWID;
    `,
  },
  // --- end instruments and corporate actions ---
  // --- retention and no-data sessions ---
  {
    version: 7,
    name: "no-data sessions",
    sql: `
      CREATE TABLE no_data (
        source TEXT NOT NULL, symbol TEXT NOT NULL, interval TEXT NOT NULL, session TEXT NOT NULL, recorded_at INTEGER NOT NULL,
        PRIMARY KEY (source, symbol, interval, session)
      ) WITHOUT ROWID;
    `,
  },
  // --- end retention and no-data sessions ---
  // --- bar extras ---
  {
    version: 8,
    name: "bar extras (a table source's extra numeric columns, beside their bars)",
    sql: `
      CREATE TABLE bar_extras (
        symbol TEXT NOT NULL, interval TEXT NOT NULL, ts INTEGER NOT NULL, source TEXT NOT NULL, extras TEXT NOT NULL,
        PRIMARY KEY (symbol, interval, ts, source)
      ) WITHOUT ROWID;
    `,
  },
  // --- end bar extras ---
  {
    version: 9,
    // Every bar page looks up its symbol's series (rollups, indicators, resolving a bare ticker);
    // the key starts with source, so without this each lookup scanned the whole table.
    name: "series by symbol",
    sql: `CREATE INDEX series_symbol ON series (symbol, interval, source);`,
  },
];

export const SQLITE_SCHEMA_VERSION = SQLITE_MIGRATIONS[SQLITE_MIGRATIONS.length - 1]!.version;

export const schemaVersion = (cx: SqliteContext): number =>
  (cx.db.query("SELECT max(version) AS v FROM schema_migrations").get() as { v: number | null }).v ?? 0;

export async function migrate(cx: SqliteContext): Promise<{ applied: number[]; version: number }> {
  const { db } = cx;
  const current = schemaVersion(cx);
  const applied: number[] = [];
  for (const m of SQLITE_MIGRATIONS) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(m.version, m.name, Date.now());
    }).immediate();
    applied.push(m.version);
  }
  recoverInterruptedRuns(cx);
  return { applied, version: schemaVersion(cx) };
}

/** A run left 'running' by a process that no longer exists was cut off: say so. */
function recoverInterruptedRuns(cx: SqliteContext) {
  const running = cx.db.query("SELECT id, owner FROM runs WHERE outcome = 'running'").all() as { id: number; owner: string }[];
  for (const r of running) {
    if (ownerGone(r.owner, cx.owner))
      cx.db.query("UPDATE runs SET outcome = 'interrupted', finished_at = ?, error = 'process ended before the run finished' WHERE id = ?").run(Date.now(), r.id);
  }
}
