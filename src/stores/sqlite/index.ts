// The embedded store: one SQLite file in WAL mode, through bun:sqlite. It is the default, so a
// user with no database server still gets a durable, idempotent, resumable service.
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { barsOf } from "../../domain/columns.ts";
import { newOwner, ownerGone, readiness } from "../common.ts";
import { decodeJournal, encodeJournal, eventBatch, eventId, eventIndex, type BarEvent } from "../events.ts";
import type { Bar, Interval } from "../../domain/bar.ts";
import type {
  BarQuery,
  ChangedBar,
  ChangeQuery,
  Checkpoint,
  CommitBatch,
  CommitResult,
  QuarantineRecord,
  RunRecord,
  RunStart,
  RunSummary,
  SeriesInfo,
  Store,
} from "../types.ts";

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
];

export const SQLITE_SCHEMA_VERSION = SQLITE_MIGRATIONS[SQLITE_MIGRATIONS.length - 1]!.version;

const BAR_COLS = "symbol, interval, ts, source, open, high, low, close, volume, adj_close, turnover, trades, run_id, updated_at";

function rowToBar(r: any): Bar {
  const bar: Bar = {
    source: r.source,
    symbol: r.symbol,
    interval: r.interval as Interval,
    ts: r.ts,
    open: r.open,
    high: r.high,
    low: r.low,
    close: r.close,
    volume: r.volume,
  };
  if (r.adj_close !== null) bar.adjClose = r.adj_close;
  if (r.turnover !== null) bar.turnover = r.turnover;
  if (r.trades !== null) bar.trades = r.trades;
  return bar;
}

function rowToRun(r: any): RunRecord {
  return {
    id: r.id,
    kind: r.kind,
    source: r.source,
    job: r.job ?? undefined,
    params: r.params ? JSON.parse(r.params) : undefined,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    durationMs: r.duration_ms,
    outcome: r.outcome,
    read: r.read,
    stored: r.inserted + r.updated,
    inserted: r.inserted,
    updated: r.updated,
    unchanged: r.unchanged,
    quarantined: r.quarantined,
    fromTs: r.from_ts,
    toTs: r.to_ts,
    quality: r.quality ? JSON.parse(r.quality) : null,
    error: r.error,
    failures: r.failures ? JSON.parse(r.failures) : {},
  };
}


/** Path of a `sqlite:` store URL (`sqlite:./data/x.db`, `sqlite:///abs/x.db`) or a bare path. */
export function sqlitePath(url: string): string {
  if (url.startsWith("sqlite://")) return url.slice("sqlite://".length) || ":memory:";
  if (url.startsWith("sqlite:")) return url.slice("sqlite:".length);
  if (url.startsWith("file:")) return url.slice("file:".length);
  return url;
}

export function sqliteStore(url: string): Store {
  const path = sqlitePath(url);
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
  db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
  const owner = newOwner();

  let stmts: ReturnType<typeof prepare> | null = null;
  const prepare = () => ({
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

  const listeners = new Set<(events: BarEvent[]) => void>();
  const commit = db.transaction((b: CommitBatch): CommitResult & { events: BarEvent[] } => {
    const s = (stmts ??= prepare());
    const now = Date.now();
    let inserted = 0;
    let updated = 0;
    let unchanged = 0;
    const changed: Bar[] = [];
    const ops: ("insert" | "update")[] = [];
    // New bars per series, so `series` stays exact without scanning `bars`.
    const series = new Map<string, { source: string; symbol: string; interval: string; first: number; last: number; n: number }>();
    const bars = barsOf(b.bars);
    for (const bar of bars) {
      const adj = bar.adjClose ?? null;
      const turnover = bar.turnover ?? null;
      const trades = bar.trades ?? null;
      const ins = s.insertBar.run(bar.symbol, bar.interval, bar.ts, bar.source, bar.open, bar.high, bar.low, bar.close, bar.volume, adj, turnover, trades, b.runId, now);
      if (ins.changes === 1) {
        inserted++;
        changed.push(bar);
        ops.push("insert");
        const key = `${bar.source}\u0000${bar.symbol}\u0000${bar.interval}`;
        const se = series.get(key);
        if (se) {
          se.n++;
          if (bar.ts < se.first) se.first = bar.ts;
          if (bar.ts > se.last) se.last = bar.ts;
        } else series.set(key, { source: bar.source, symbol: bar.symbol, interval: bar.interval, first: bar.ts, last: bar.ts, n: 1 });
        continue;
      }
      const upd = s.updateBar.run(bar.symbol, bar.interval, bar.ts, bar.source, bar.open, bar.high, bar.low, bar.close, bar.volume, adj, turnover, trades, b.runId, now);
      if (upd.changes === 1) {
        updated++;
        changed.push(bar);
        ops.push("update");
      } else unchanged++;
    }
    for (const se of series.values()) s.upsertSeries.run(se.source, se.symbol, se.interval, se.first, se.last, se.n);
    let quarantined = 0;
    for (const q of b.quarantine) {
      const r = s.quarantine.run(b.runId, b.source, q.locator, q.rule, q.reason, q.symbol ?? null, q.ts ?? null, JSON.stringify(q.raw), now);
      quarantined += r.changes;
    }
    let minTs: number | null = null;
    let maxTs: number | null = null;
    for (const bar of bars) {
      if (minTs === null || bar.ts < minTs) minTs = bar.ts;
      if (maxTs === null || bar.ts > maxTs) maxTs = bar.ts;
    }
    s.runProgress.run(b.runId, b.read, inserted, updated, unchanged, b.quarantine.length, minTs, maxTs);
    if (b.checkpoint) {
      const c = b.checkpoint;
      s.checkpoint.run(c.stream, JSON.stringify(c.cursor), c.lastTs, c.lastKey, b.runId, now);
    }
    let events: BarEvent[] = [];
    if (changed.length) {
      const j = encodeJournal(changed, ops);
      const { batch } = s.journal.get(b.runId, now, j.n, j.series, j.ops, j.data) as { batch: number };
      events = changed.map((bar, i) => ({ id: eventId(batch, i), type: "bar", op: ops[i]!, bar }));
    }
    return { inserted, updated, unchanged, quarantined, events };
  });

  const schemaVersion = (): number =>
    (db.query("SELECT max(version) AS v FROM schema_migrations").get() as { v: number | null }).v ?? 0;

  const store: Store = {
    kind: "sqlite",
    journal: true,
    location: path === ":memory:" ? ":memory:" : resolve(path),

    async migrate() {
      const current = schemaVersion();
      const applied: number[] = [];
      for (const m of SQLITE_MIGRATIONS) {
        if (m.version <= current) continue;
        db.transaction(() => {
          db.exec(m.sql);
          db.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(m.version, m.name, Date.now());
        }).immediate();
        applied.push(m.version);
      }
      recoverInterruptedRuns();
      return { applied, version: schemaVersion() };
    },

    ready: () => readiness(async () => schemaVersion(), SQLITE_SCHEMA_VERSION),

    async commitBatch(batch) {
      const { events, ...result } = commit.immediate(batch);
      // After the commit, in commit order: SQLite commits one batch at a time, synchronously.
      if (events.length) for (const fn of listeners) fn(events);
      return result;
    },

    async eventsSince(after, limit) {
      const rows = db.query("SELECT batch, series, ops, data FROM journal WHERE batch >= ? ORDER BY batch LIMIT ?").all(eventBatch(after), Math.max(1, Math.ceil(limit / 100) + 1)) as any[];
      const out: BarEvent[] = [];
      for (const r of rows) {
        out.push(...decodeJournal(r.batch, r.series, r.ops, r.data, r.batch === eventBatch(after) ? eventIndex(after) + 1 : 0));
        if (out.length >= limit) break;
      }
      return out;
    },

    async eventBounds() {
      const r = db.query("SELECT min(batch) AS first, max(batch) AS last, (SELECT n FROM journal ORDER BY batch DESC LIMIT 1) AS n FROM journal").get() as any;
      return r?.last == null ? { last: 0, first: null } : { last: eventId(r.last, r.n - 1), first: eventId(r.first, 0) };
    },

    async pruneEvents(before) {
      return db.query("DELETE FROM journal WHERE created_at < ?").run(before).changes;
    },

    onEvents(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },

    // Other processes on this file are seen by polling the journal.
    async watchEvents() {
      return null;
    },

    async tryLease(name, holder, ttlMs) {
      const now = Date.now();
      const r = db
        .query(
          `INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
           ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
           WHERE leases.holder = excluded.holder OR leases.expires_at < ?4
           RETURNING holder`,
        )
        .get(name, holder, now + ttlMs, now) as { holder: string } | null;
      return r?.holder === holder;
    },

    async releaseLease(name, holder) {
      db.query("DELETE FROM leases WHERE name = ? AND holder = ?").run(name, holder);
    },

    async getCheckpoint(stream) {
      const r = db.query("SELECT stream, cursor, last_ts, last_key FROM checkpoints WHERE stream = ?").get(stream) as any;
      return r ? { stream: r.stream, cursor: JSON.parse(r.cursor), lastTs: r.last_ts, lastKey: r.last_key } : null;
    },

    async listCheckpoints() {
      const rows = db.query("SELECT stream, cursor, last_ts, last_key FROM checkpoints ORDER BY stream").all() as any[];
      return rows.map((r) => ({ stream: r.stream, cursor: JSON.parse(r.cursor), lastTs: r.last_ts, lastKey: r.last_key }));
    },

    async putCheckpoints(list, runId) {
      const s = (stmts ??= prepare());
      const now = Date.now();
      db.transaction(() => {
        for (const c of list) s.checkpoint.run(c.stream, JSON.stringify(c.cursor), c.lastTs, c.lastKey, runId, now);
      }).immediate();
    },

    async startRun(run: RunStart) {
      const r = db
        .query("INSERT INTO runs (kind, source, job, params, owner, started_at, outcome) VALUES (?, ?, ?, ?, ?, ?, 'running') RETURNING id")
        .get(run.kind, run.source, run.job ?? null, run.params ? JSON.stringify(run.params) : null, owner, Date.now()) as { id: number };
      return r.id;
    },

    async finishRun(id, s: RunSummary) {
      const now = Date.now();
      db.query(
        `UPDATE runs SET finished_at = ?, duration_ms = ? - started_at, outcome = ?, read = ?, inserted = ?, updated = ?,
           unchanged = ?, quarantined = ?, from_ts = ?, to_ts = ?, quality = ?, error = ?, failures = ? WHERE id = ?`,
      ).run(now, now, s.outcome, s.read, s.inserted, s.updated, s.unchanged, s.quarantined, s.fromTs, s.toTs, s.quality ? JSON.stringify(s.quality) : null, s.error ?? null, s.failures ? JSON.stringify(s.failures) : null, id);
    },

    async getRun(id) {
      const r = db.query("SELECT * FROM runs WHERE id = ?").get(id);
      return r ? rowToRun(r) : null;
    },

    async reopenRun(id) {
      db.query("UPDATE runs SET outcome = 'running', owner = ?, finished_at = NULL, error = NULL WHERE id = ?").run(owner, id);
    },

    async initRunStreams(runId, streams) {
      const ins = db.prepare("INSERT INTO run_streams (run_id, stream, status, updated_at) VALUES (?, ?, 'pending', ?) ON CONFLICT DO NOTHING");
      const now = Date.now();
      db.transaction(() => {
        for (const s of streams) ins.run(runId, s, now);
      }).immediate();
    },

    async setRunStream(runId, stream, st) {
      db.query(
        `INSERT INTO run_streams (run_id, stream, status, cause, error, rows, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (run_id, stream) DO UPDATE SET status = ?3, cause = ?4, error = ?5, rows = run_streams.rows + ?6, updated_at = ?7`,
      ).run(runId, stream, st.status, st.cause ?? null, st.error ?? null, st.rows, Date.now());
    },

    async listRunStreams(runId, status) {
      const rows = db
        .query("SELECT stream, status, cause, error, rows FROM run_streams WHERE run_id = ?1 AND (?2 IS NULL OR status = ?2) ORDER BY stream")
        .all(runId, status ?? null) as { stream: string; status: any; cause: string | null; error: string | null; rows: number }[];
      return rows;
    },

    async listRuns({ limit, before, source }) {
      const rows = db
        .query(`SELECT * FROM runs WHERE id < ?1 AND (?2 IS NULL OR source = ?2) ORDER BY id DESC LIMIT ?3`)
        .all(before ?? Number.MAX_SAFE_INTEGER, source ?? null, limit);
      return rows.map(rowToRun);
    },

    async lastSuccessByJob() {
      const rows = db
        .query(`SELECT coalesce(job, kind || ':' || source) AS job, max(finished_at) AS t FROM runs WHERE outcome = 'succeeded' GROUP BY 1`)
        .all() as { job: string; t: number }[];
      return new Map(rows.map((r) => [r.job, r.t]));
    },

    async listSeries(opts) {
      const rows = db
        .query(`SELECT * FROM series WHERE (?1 IS NULL OR symbol = ?1) ORDER BY symbol, interval, source`)
        .all(opts?.symbol ?? null) as any[];
      return rows.map((r): SeriesInfo => ({ source: r.source, symbol: r.symbol, interval: r.interval, firstTs: r.first_ts, lastTs: r.last_ts, bars: r.bars }));
    },

    async queryBars(q: BarQuery) {
      const afterTs = q.after?.ts ?? Number.MIN_SAFE_INTEGER;
      const afterSource = q.after?.source ?? "";
      const rows = db
        .query(
          `SELECT * FROM bars WHERE symbol = ?1 AND interval = ?2 AND (?3 IS NULL OR source = ?3)
             AND ts >= ?4 AND ts <= ?5 AND (ts > ?6 OR (ts = ?6 AND source > ?7))
           ORDER BY ts, source LIMIT ?8`,
        )
        .all(q.symbol, q.interval, q.source ?? null, q.from ?? Number.MIN_SAFE_INTEGER, q.to ?? Number.MAX_SAFE_INTEGER, afterTs, afterSource, q.limit);
      return rows.map(rowToBar);
    },

    async deleteQuarantine(ids) {
      let n = 0;
      const del = db.prepare("DELETE FROM quarantine WHERE id = ?");
      db.transaction(() => {
        for (const id of ids) n += del.run(id).changes;
      })();
      return n;
    },

    async listQuarantine({ limit, before, source, rule, runId }) {
      const rows = db
        .query(
          `SELECT * FROM quarantine WHERE id < ?1 AND (?2 IS NULL OR source = ?2) AND (?3 IS NULL OR rule = ?3) AND (?4 IS NULL OR run_id = ?4)
           ORDER BY id DESC LIMIT ?5`,
        )
        .all(before ?? Number.MAX_SAFE_INTEGER, source ?? null, rule ?? null, runId ?? null, limit) as any[];
      return rows.map(
        (r): QuarantineRecord => ({
          id: r.id,
          runId: r.run_id,
          source: r.source,
          locator: r.locator,
          rule: r.rule,
          reason: r.reason,
          symbol: r.symbol,
          ts: r.ts,
          raw: JSON.parse(r.raw),
          createdAt: r.created_at,
        }),
      );
    },

    async countBars() {
      return (db.query("SELECT count(*) AS n FROM bars").get() as { n: number }).n;
    },

    async changedBars(q: ChangeQuery): Promise<ChangedBar[]> {
      const p = q.after;
      const a =
        p && typeof p.symbol === "string" && typeof p.interval === "string" && typeof p.ts === "number" && typeof p.source === "string"
          ? { runId: p.runId, symbol: p.symbol, interval: p.interval, ts: p.ts, source: p.source }
          : { runId: p?.runId ?? 0, symbol: "", interval: "", ts: Number.MIN_SAFE_INTEGER, source: "" };
      const rows = db
        .query(
          `SELECT * FROM bars
           WHERE (run_id, symbol, interval, ts, source) > (?1, ?2, ?3, ?4, ?5) AND run_id <= ?6
             AND (?7 IS NULL OR source IN (SELECT value FROM json_each(?7)))
           ORDER BY run_id, symbol, interval, ts, source LIMIT ?8`,
        )
        .all(a.runId, a.symbol, a.interval, a.ts, a.source, q.uptoRun, q.sources?.length ? JSON.stringify(q.sources) : null, q.limit) as any[];
      return rows.map((r) => ({ bar: rowToBar(r), position: { runId: r.run_id, symbol: r.symbol, interval: r.interval, ts: r.ts, source: r.source } }));
    },

    // --- instruments and corporate actions ---
    async upsertInstruments(list) {
      const st = db.prepare(
        `INSERT INTO instruments (source, symbol, name, exchange, currency, type, sector, industry, isin, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)
         ON CONFLICT (source, symbol) DO UPDATE SET name = excluded.name, exchange = excluded.exchange, currency = excluded.currency,
           type = excluded.type, sector = excluded.sector, industry = excluded.industry, isin = excluded.isin, updated_at = excluded.updated_at`,
      );
      const now = Date.now();
      db.transaction(() => {
        for (const i of list) st.run(i.source, i.symbol, i.name, i.exchange, i.currency, i.type, i.sector, i.industry, i.isin, now);
      }).immediate();
    },
    async listInstruments(opts) {
      const rows = (
        opts?.symbol
          ? db.query("SELECT * FROM instruments WHERE symbol = ? ORDER BY symbol, source").all(opts.symbol)
          : db.query("SELECT * FROM instruments ORDER BY symbol, source").all()
      ) as any[];
      return rows.map((r) => ({ source: r.source, symbol: r.symbol, name: r.name, exchange: r.exchange, currency: r.currency, type: r.type, sector: r.sector, industry: r.industry, isin: r.isin, updatedAt: r.updated_at }));
    },
    async upsertActions(list) {
      // Rewrites a record only when a value differs, so re-reading the same events changes nothing.
      const st = db.prepare(
        `INSERT INTO actions (symbol, type, ex_date, source, numerator, denominator, amount, currency, pay_date, updated_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)
         ON CONFLICT (symbol, type, ex_date, source) DO UPDATE SET numerator = ?5, denominator = ?6, amount = ?7, currency = ?8, pay_date = ?9, updated_at = ?10
         WHERE numerator IS NOT ?5 OR denominator IS NOT ?6 OR amount IS NOT ?7 OR currency IS NOT ?8 OR pay_date IS NOT ?9`,
      );
      const now = Date.now();
      let n = 0;
      db.transaction(() => {
        for (const a of list) n += st.run(a.symbol, a.type, a.exDate, a.source, a.numerator, a.denominator, a.amount, a.currency, a.payDate, now).changes;
      }).immediate();
      return n;
    },
    async listActions(symbol) {
      const rows = db.query("SELECT * FROM actions WHERE symbol = ? ORDER BY ex_date, type, source").all(symbol) as any[];
      return rows.map((r) => ({
        source: r.source, symbol: r.symbol, type: r.type, exDate: r.ex_date, numerator: r.numerator, denominator: r.denominator,
        amount: r.amount, currency: r.currency, payDate: r.pay_date, updatedAt: r.updated_at,
      }));
    },
    // --- end instruments and corporate actions ---

    // --- retention and no-data sessions ---
    async deleteBars({ interval, before }) {
      // Series by series, so each one's first ts and count stay exact; an emptied series goes.
      let total = 0;
      db.transaction(() => {
        const series = db.query("SELECT source, symbol, bars FROM series WHERE interval = ? AND first_ts < ?").all(interval, before) as { source: string; symbol: string; bars: number }[];
        for (const se of series) {
          const n = db.query("DELETE FROM bars WHERE symbol = ? AND interval = ? AND source = ? AND ts < ?").run(se.symbol, interval, se.source, before).changes;
          total += n;
          const first = db.query("SELECT min(ts) AS t FROM bars WHERE symbol = ? AND interval = ? AND source = ?").get(se.symbol, interval, se.source) as { t: number | null };
          if (first.t === null) db.query("DELETE FROM series WHERE source = ? AND symbol = ? AND interval = ?").run(se.source, se.symbol, interval);
          else db.query("UPDATE series SET first_ts = ?, bars = bars - ? WHERE source = ? AND symbol = ? AND interval = ?").run(first.t, n, se.source, se.symbol, interval);
        }
      }).immediate();
      return total;
    },
    async markNoData(list) {
      const st = db.prepare("INSERT INTO no_data (source, symbol, interval, session, recorded_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING");
      const now = Date.now();
      let n = 0;
      db.transaction(() => {
        for (const d of list) n += st.run(d.source, d.symbol, d.interval, d.session, now).changes;
      }).immediate();
      return n;
    },
    async listNoData(opts) {
      const rows = db
        .query("SELECT * FROM no_data WHERE (?1 IS NULL OR source = ?1) ORDER BY source, symbol, interval, session")
        .all(opts?.source ?? null) as any[];
      return rows.map((r) => ({ source: r.source, symbol: r.symbol, interval: r.interval, session: r.session, recordedAt: r.recorded_at }));
    },
    // --- end retention and no-data sessions ---

    async close() {
      stmts = null;
      db.close();
    },
  };

  /** A run left 'running' by a process that no longer exists was cut off: say so. */
  function recoverInterruptedRuns() {
    const running = db.query("SELECT id, owner FROM runs WHERE outcome = 'running'").all() as { id: number; owner: string }[];
    for (const r of running) {
      if (ownerGone(r.owner, owner))
        db.query("UPDATE runs SET outcome = 'interrupted', finished_at = ?, error = 'process ended before the run finished' WHERE id = ?").run(Date.now(), r.id);
    }
  }

  return store;
}
