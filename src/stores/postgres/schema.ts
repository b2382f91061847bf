// The store's schema: its migrations, in order, and the migrator that applies the pending ones
// (one process at a time, across replicas) and learns how the bars table was made.
import { rebuildRollups } from "./rollups/index.ts";
import type { PgContext } from "./context.ts";
import type { Tx } from "./sql.ts";

export type Migration = { version: number; name: string; up: (sql: Tx, opts: { timescale: boolean }) => Promise<unknown> };

/** In order; exported for the test that upgrades a schema made by an earlier version. */
export const PG_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: "bars (hypertable or range-partitioned), series, checkpoints, quarantine, runs, run_streams",
    async up(sql, { timescale }) {
      await sql`
        CREATE TABLE bars (
          symbol text NOT NULL, interval text NOT NULL, ts timestamptz NOT NULL, source text NOT NULL,
          open float8 NOT NULL, high float8 NOT NULL, low float8 NOT NULL, close float8 NOT NULL, volume float8 NOT NULL,
          adj_close float8, turnover float8, trades bigint,
          run_id bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (symbol, interval, ts, source)
        ) ${timescale ? sql`` : sql`PARTITION BY RANGE (ts)`}`;
      if (timescale) {
        await sql`SELECT create_hypertable('bars', 'ts', chunk_time_interval => interval '90 days')`;
        await sql`ALTER TABLE bars SET (timescaledb.compress, timescaledb.compress_segmentby = 'symbol, interval, source', timescaledb.compress_orderby = 'ts')`;
        await sql`SELECT add_compression_policy('bars', interval '180 days')`;
        // Daily bars from intraday ones, kept up to date by TimescaleDB itself.
        await sql`
          CREATE MATERIALIZED VIEW bars_1d_from_intraday WITH (timescaledb.continuous) AS
          SELECT symbol, source, time_bucket('1 day', ts) AS day,
                 first(open, ts) AS open, max(high) AS high, min(low) AS low, last(close, ts) AS close, sum(volume) AS volume
          FROM bars WHERE interval IN ('1m', '5m', '15m', '1h') GROUP BY symbol, source, day WITH NO DATA`;
        await sql`SELECT add_continuous_aggregate_policy('bars_1d_from_intraday', start_offset => interval '7 days', end_offset => interval '1 hour', schedule_interval => interval '1 hour')`;
      } else {
        // Without TimescaleDB: yearly range partitions, made before a batch needs them.
        await sql`
          CREATE MATERIALIZED VIEW bars_1d_from_intraday AS
          SELECT symbol, source, date_trunc('day', ts) AS day,
                 (array_agg(open ORDER BY ts))[1] AS open, max(high) AS high, min(low) AS low,
                 (array_agg(close ORDER BY ts DESC))[1] AS close, sum(volume) AS volume
          FROM bars WHERE interval IN ('1m', '5m', '15m', '1h') GROUP BY symbol, source, day WITH NO DATA`;
        await sql`CREATE UNIQUE INDEX bars_1d_from_intraday_key ON bars_1d_from_intraday (symbol, source, day)`;
      }
      await sql`
        CREATE TABLE series (
          source text NOT NULL, symbol text NOT NULL, interval text NOT NULL,
          first_ts timestamptz NOT NULL, last_ts timestamptz NOT NULL, bars bigint NOT NULL,
          PRIMARY KEY (source, symbol, interval))`;
      await sql`
        CREATE TABLE checkpoints (
          stream text PRIMARY KEY, cursor jsonb NOT NULL, last_ts timestamptz, last_key text,
          run_id bigint, updated_at timestamptz NOT NULL DEFAULT now())`;
      await sql`
        CREATE TABLE quarantine (
          id bigserial PRIMARY KEY, run_id bigint NOT NULL, source text NOT NULL, locator text NOT NULL,
          rule text NOT NULL, reason text NOT NULL, symbol text, ts timestamptz, raw jsonb NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(), UNIQUE (source, locator))`;
      await sql`CREATE INDEX quarantine_rule ON quarantine (rule, id)`;
      await sql`
        CREATE TABLE runs (
          id bigserial PRIMARY KEY, kind text NOT NULL, source text NOT NULL, job text, params jsonb,
          owner text NOT NULL, started_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz, duration_ms bigint,
          outcome text NOT NULL, read bigint NOT NULL DEFAULT 0, inserted bigint NOT NULL DEFAULT 0,
          updated bigint NOT NULL DEFAULT 0, unchanged bigint NOT NULL DEFAULT 0, quarantined bigint NOT NULL DEFAULT 0,
          from_ts timestamptz, to_ts timestamptz, quality jsonb, error text, failures jsonb)`;
      await sql`CREATE INDEX runs_source ON runs (source, id)`;
      await sql`
        CREATE TABLE run_streams (
          run_id bigint NOT NULL, stream text NOT NULL, status text NOT NULL, cause text, error text,
          rows bigint NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run_id, stream))`;
    },
  },
  {
    version: 2,
    name: "bars keyed by (series_id, ts): series get an id, existing bars move to the new table",
    async up(sql, { timescale }) {
      // A series row is made (with bars = 0) before its first bars, in the same transaction.
      await sql`ALTER TABLE series ADD COLUMN id int GENERATED BY DEFAULT AS IDENTITY`;
      await sql`ALTER TABLE series ADD CONSTRAINT series_id_key UNIQUE (id)`;
      await sql`
        INSERT INTO series (source, symbol, interval, first_ts, last_ts, bars)
        SELECT source, symbol, interval, min(ts), max(ts), count(*) FROM bars GROUP BY source, symbol, interval
        ON CONFLICT (source, symbol, interval) DO NOTHING`;
      const [rollup] = await sql`SELECT ispopulated FROM pg_matviews WHERE schemaname = current_schema() AND matviewname = 'bars_1d_from_intraday'`;
      await sql`DROP MATERIALIZED VIEW bars_1d_from_intraday`;
      // The old table and its partitions and indexes step aside under other names, so the new
      // ones can have theirs; they are dropped once the bars are copied.
      await sql`ALTER TABLE bars RENAME TO bars_v1`;
      const old = sql`SELECT 'bars_v1'::regclass UNION ALL SELECT inhrelid FROM pg_inherits WHERE inhparent = 'bars_v1'::regclass`;
      for (const r of await sql`SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid IN (${old}) AND i.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'bars_v1'::regclass)`)
        await sql.unsafe(`ALTER INDEX "${r.relname}" RENAME TO "${r.relname}_v1"`);
      const years: number[] = [];
      if (!timescale)
        for (const r of await sql`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'bars_v1'::regclass`) {
          const y = /^bars_y(\d{4})$/.exec(r.relname)?.[1];
          if (!y) continue;
          await sql.unsafe(`ALTER TABLE bars_y${y} RENAME TO bars_v1_y${y}`);
          years.push(Number(y));
        }
      await sql`
        CREATE TABLE bars (
          series_id int NOT NULL, ts timestamptz NOT NULL,
          open float8 NOT NULL, high float8 NOT NULL, low float8 NOT NULL, close float8 NOT NULL, volume float8 NOT NULL,
          adj_close float8, turnover float8, trades bigint,
          run_id bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (series_id, ts)
        ) ${timescale ? sql`` : sql`PARTITION BY RANGE (ts)`}`;
      if (timescale) {
        await sql`SELECT create_hypertable('bars', 'ts', chunk_time_interval => interval '90 days')`;
        await sql`ALTER TABLE bars SET (timescaledb.compress, timescaledb.compress_segmentby = 'series_id', timescaledb.compress_orderby = 'ts')`;
        await sql`SELECT add_compression_policy('bars', interval '180 days')`;
      } else for (const y of years) await sql.unsafe(`CREATE TABLE bars_y${y} PARTITION OF bars FOR VALUES FROM ('${y}-01-01 00:00:00+00') TO ('${y + 1}-01-01 00:00:00+00')`);
      await sql`
        INSERT INTO bars (series_id, ts, open, high, low, close, volume, adj_close, turnover, trades, run_id, updated_at)
        SELECT s.id, b.ts, b.open, b.high, b.low, b.close, b.volume, b.adj_close, b.turnover, b.trades, b.run_id, b.updated_at
        FROM bars_v1 b JOIN series s ON s.source = b.source AND s.symbol = b.symbol AND s.interval = b.interval`;
      await sql`DROP TABLE bars_v1`;
      if (timescale) {
        // Daily bars per series, kept up to date by TimescaleDB itself; the view names them.
        await sql`
          CREATE MATERIALIZED VIEW bars_1d_by_series WITH (timescaledb.continuous) AS
          SELECT series_id, time_bucket('1 day', ts) AS day,
                 first(open, ts) AS open, max(high) AS high, min(low) AS low, last(close, ts) AS close, sum(volume) AS volume
          FROM bars GROUP BY series_id, day WITH NO DATA`;
        await sql`SELECT add_continuous_aggregate_policy('bars_1d_by_series', start_offset => interval '7 days', end_offset => interval '1 hour', schedule_interval => interval '1 hour')`;
        await sql`
          CREATE VIEW bars_1d_from_intraday AS
          SELECT s.symbol, s.source, d.day, d.open, d.high, d.low, d.close, d.volume
          FROM bars_1d_by_series d JOIN series s ON s.id = d.series_id WHERE s.interval IN ('1m', '5m', '15m', '1h')`;
      } else {
        await sql`
          CREATE MATERIALIZED VIEW bars_1d_from_intraday AS
          SELECT s.symbol, s.source, date_trunc('day', b.ts) AS day,
                 (array_agg(b.open ORDER BY b.ts))[1] AS open, max(b.high) AS high, min(b.low) AS low,
                 (array_agg(b.close ORDER BY b.ts DESC))[1] AS close, sum(b.volume) AS volume
          FROM bars b JOIN series s ON s.id = b.series_id
          WHERE s.interval IN ('1m', '5m', '15m', '1h') GROUP BY s.symbol, s.source, day WITH NO DATA`;
        await sql`CREATE UNIQUE INDEX bars_1d_from_intraday_key ON bars_1d_from_intraday (symbol, source, day)`;
        // Filled again when it was filled before.
        if (rollup?.ispopulated) await sql`REFRESH MATERIALIZED VIEW bars_1d_from_intraday`;
      }
    },
  },
  {
    version: 3,
    name: "change order for sinks: a BRIN index on bars.run_id",
    async up(sql) {
      // Sinks read the bars of one run at a time. A run's bars sit in the blocks written while it
      // ran, so a block-range index finds a small run's bars without a btree to keep up on load.
      await sql`CREATE INDEX bars_run ON bars USING brin (run_id)`;
    },
  },
  {
    version: 4,
    name: "event journal",
    async up(sql) {
      // The bars each batch inserted or changed, compact (src/stores/events.ts), for the stream's
      // replay. Batch numbers follow commit order: a batch takes JOURNAL_LOCK before it takes its
      // number and holds it until it commits.
      await sql`
        CREATE TABLE journal (
          batch bigserial PRIMARY KEY, run_id bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
          n int NOT NULL, series text NOT NULL, ops bytea NOT NULL, data bytea NOT NULL)`;
      await sql`CREATE INDEX journal_created ON journal (created_at)`;
    },
  },
  {
    version: 5,
    name: "leases",
    async up(sql) {
      await sql`CREATE TABLE leases (name text PRIMARY KEY, holder text NOT NULL, expires_at timestamptz NOT NULL)`;
    },
  },
  // --- instruments and corporate actions ---
  {
    version: 6,
    name: "instruments, corporate actions",
    async up(sql) {
      await sql`
        CREATE TABLE instruments (
          source text NOT NULL, symbol text NOT NULL, name text, exchange text, currency text, type text,
          sector text, industry text, isin text, updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (source, symbol))`;
      await sql`CREATE INDEX instruments_symbol ON instruments (symbol)`;
      await sql`
        CREATE TABLE actions (
          symbol text NOT NULL, type text NOT NULL CHECK (type IN ('split', 'dividend')), ex_date timestamptz NOT NULL, source text NOT NULL,
          numerator double precision, denominator double precision, amount double precision, currency text, pay_date timestamptz,
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (symbol, type, ex_date, source))`;
    },
  },
  // --- end instruments and corporate actions ---
  // --- retention and no-data sessions ---
  {
    version: 7,
    name: "no-data sessions",
    async up(sql) {
      await sql`
        CREATE TABLE no_data (
          source text NOT NULL, symbol text NOT NULL, interval text NOT NULL, session date NOT NULL,
          recorded_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (source, symbol, interval, session))`;
    },
  },
  // --- end retention and no-data sessions ---
  // --- materialised rollups ---
  {
    version: 8,
    name: "rollups: every coarser interval along exchange sessions, refreshed per run (replaces the UTC-day bars_1d_from_intraday)",
    async up(sql, { timescale }) {
      // The daily rollup of versions 1-7 cut days at 00:00 UTC: not a WSE or NYSE session. Its
      // TimescaleDB form (a continuous aggregate, time_bucket on a fixed grid) cannot follow
      // sessions either (opens at 09:30 ET, early closes, holidays, a time zone per market), so
      // both forms give way to one table kept by src/stores/postgres/rollups/.
      if (timescale) {
        await sql`DROP VIEW IF EXISTS bars_1d_from_intraday`;
        await sql`DROP MATERIALIZED VIEW IF EXISTS bars_1d_by_series`;
      } else await sql`DROP MATERIALIZED VIEW IF EXISTS bars_1d_from_intraday`;
      await sql`
        CREATE TABLE rollups (
          series_id int NOT NULL, interval text NOT NULL, ts timestamptz NOT NULL,
          open float8 NOT NULL, high float8 NOT NULL, low float8 NOT NULL, close float8 NOT NULL, volume float8 NOT NULL,
          adj_close float8, turnover float8, trades bigint,
          bars int NOT NULL, last_ts timestamptz NOT NULL, run_id bigint, updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (series_id, interval, ts))`;
      // Per series, the newest finer bar the rollups hold: a run with only newer bars carries on.
      await sql`CREATE TABLE rollup_series (series_id int PRIMARY KEY, upto timestamptz NOT NULL)`;
      // Finer bars outside every regular session, per stretch (a night, a weekend day, ...).
      await sql`
        CREATE TABLE rollup_excluded (
          series_id int NOT NULL, start_ts timestamptz NOT NULL, end_ts timestamptz NOT NULL, bars int NOT NULL, run_id bigint,
          PRIMARY KEY (series_id, start_ts))`;
      // Runs whose bars are stored but not rolled up yet, with the ts range they wrote.
      await sql`CREATE TABLE rollup_pending (run_id bigint PRIMARY KEY, from_ts timestamptz NOT NULL, to_ts timestamptz NOT NULL)`;
      // Retention: the latest cutoff per series, and the deleted bars of buckets it cuts through.
      await sql`CREATE TABLE rollup_cutoffs (series_id int PRIMARY KEY, before timestamptz NOT NULL)`;
      await sql`
        CREATE TABLE rollup_carry (
          series_id int NOT NULL, ts timestamptz NOT NULL,
          open float8 NOT NULL, high float8 NOT NULL, low float8 NOT NULL, close float8 NOT NULL, volume float8 NOT NULL,
          adj_close float8, turnover float8, trades bigint, PRIMARY KEY (series_id, ts))`;
      // A read of rollups asks whether a running run wrote finer bars of its series.
      await sql`CREATE INDEX runs_running ON runs (id) WHERE outcome = 'running'`;
      await rebuildRollups(sql);
    },
  },
  // --- end materialised rollups ---
  {
    version: 9,
    name: "run_series: the series each run wrote and the ts range, instead of the BRIN index on bars.run_id",
    async up(sql) {
      // Readers of a run's bars (sinks' change order, rollups) go series by series through the
      // (series_id, ts) key within these ranges. Kept by each batch as it commits; a block-range
      // index on run_id cost a load ~20% more server time (summarising every page it writes).
      await sql`
        CREATE TABLE run_series (
          run_id bigint NOT NULL, series_id int NOT NULL, min_ts timestamptz NOT NULL, max_ts timestamptz NOT NULL,
          PRIMARY KEY (run_id, series_id))`;
      await sql`INSERT INTO run_series (run_id, series_id, min_ts, max_ts) SELECT run_id, series_id, min(ts), max(ts) FROM bars GROUP BY run_id, series_id`;
      await sql`DROP INDEX IF EXISTS bars_run`;
    },
  },
  {
    version: 10,
    name: "journal keys compressed with lz4 where the server has it",
    async up(sql) {
      // A batch's keys (16 bytes a bar) are compressed on their way to TOAST; pglz took a load
      // ~2.5× the server time lz4 takes for about the same size. PostgreSQL 14+ built with lz4
      // (Debian's is); elsewhere the column keeps pglz.
      await sql.unsafe(`DO $$ BEGIN
          EXECUTE 'ALTER TABLE journal ALTER COLUMN data SET COMPRESSION lz4';
        EXCEPTION WHEN others THEN NULL;
        END $$`);
    },
  },
  {
    version: 11,
    name: "rollups at 2m, 30m and 4h: intraday series rolled up again into the intervals added",
    async up(sql) {
      // rollupTargets now gives every intraday series more intervals (1m: 2m, 30m, 4h; 5m and
      // 15m: 30m, 4h; 1h: 4h). Until their rows exist a page of them would read empty, so they
      // are built here; the buckets that were there already come out the same and are not rewritten.
      await rebuildRollups(sql, { intradayOnly: true });
    },
  },
  // --- bar extras ---
  {
    version: 12,
    name: "bar extras (a table source's extra numeric columns, beside their bars)",
    async up(sql) {
      await sql`
        CREATE TABLE bar_extras (
          series_id int NOT NULL, ts timestamptz NOT NULL, extras jsonb NOT NULL,
          PRIMARY KEY (series_id, ts))`;
    },
  },
  // --- end bar extras ---
  // --- bar deletes ---
  {
    version: 13,
    name: "rollup_dirty: the UTC days whose bars a run deleted, for the rollups to roll up again",
    async up(sql) {
      // A deleted bar is gone from bars, so a run's rollup cannot find its day by reading them:
      // deleteBarKeys (deletes.ts) records the day here, with the deleted bars' first and last ts.
      await sql`
        CREATE TABLE rollup_dirty (
          run_id bigint NOT NULL, series_id int NOT NULL, day date NOT NULL, min_ts timestamptz NOT NULL, max_ts timestamptz NOT NULL,
          PRIMARY KEY (run_id, series_id, day))`;
    },
  },
  // --- end bar deletes ---
  // --- replicas share the work ---
  {
    version: 14,
    name: "job_claims and rate_buckets: jobs claimed per tick, provider rate limits shared by replicas",
    async up(sql) {
      // A job is run by the replica that claims it: held (expires_at, renewed by a heartbeat)
      // while it runs; last_tick keeps another replica from running the same cron tick again.
      await sql`CREATE TABLE job_claims (job text PRIMARY KEY, holder text NOT NULL, expires_at timestamptz NOT NULL, last_tick bigint NOT NULL)`;
      // One token bucket per provider endpoint and key: a GCRA schedule (tat, ms since the epoch
      // on the database's clock), a pause (a 429's Retry-After), and the last grants as a ring, so
      // no window of the provider's length holds more than its limit.
      await sql`
        CREATE TABLE rate_buckets (
          key text PRIMARY KEY, tat double precision NOT NULL, paused_until double precision NOT NULL,
          ring double precision[] NOT NULL, pos int NOT NULL)`;
      // One round trip per grant: reserve the next slot and say how long to wait for it.
      await sql.unsafe(`
        CREATE FUNCTION rate_reserve(k text, step double precision, calls int, window_ms double precision, burst int) RETURNS double precision
        LANGUAGE plpgsql AS $fn$
        DECLARE
          b rate_buckets%ROWTYPE;
          now_ms double precision := extract(epoch FROM clock_timestamp()) * 1000;
          slot double precision;
        BEGIN
          INSERT INTO rate_buckets (key, tat, paused_until, ring, pos)
          VALUES (k, 0, 0, array_fill(0::double precision, ARRAY[calls]), 0) ON CONFLICT (key) DO NOTHING;
          SELECT * INTO b FROM rate_buckets WHERE key = k FOR UPDATE;
          IF coalesce(array_length(b.ring, 1), 0) <> calls THEN
            b.ring := array_fill(0::double precision, ARRAY[calls]);
            b.pos := 0;
          END IF;
          slot := greatest(now_ms, b.paused_until, b.tat - (burst - 1) * step, b.ring[b.pos + 1] + window_ms);
          b.ring[b.pos + 1] := slot;
          UPDATE rate_buckets SET tat = greatest(b.tat, slot) + step, ring = b.ring, pos = (b.pos + 1) % calls WHERE key = k;
          RETURN slot - now_ms;
        END $fn$`);
    },
  },
  // --- end replicas share the work ---
];

export const PG_SCHEMA_VERSION = PG_MIGRATIONS[PG_MIGRATIONS.length - 1]!.version;

/** The schema's version: the newest migration applied (0: none). */
export async function schemaVersion({ sql, schema }: PgContext): Promise<number> {
  const [r] = await sql`SELECT to_regclass(${schema + ".schema_migrations"}) AS t`;
  if (!r?.t) return 0;
  const [v] = await sql`SELECT coalesce(max(version), 0) AS v FROM schema_migrations`;
  return Number(v!.v);
}

/**
 * Apply the pending migrations (TimescaleDB made available first where the server has it), and
 * follow what the bars table was made as: sets ctx.timescale and the year partitions that exist.
 * Returns the versions applied.
 */
export async function applyMigrations(ctx: PgContext): Promise<number[]> {
  const { sql, schema } = ctx;
  await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  const [ext] = await sql`SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'timescaledb'`;
  const [avail] = await sql`SELECT count(*)::int AS n FROM pg_available_extensions WHERE name = 'timescaledb'`;
  if (!ext!.n && avail!.n) {
    try {
      await sql`CREATE EXTENSION IF NOT EXISTS timescaledb`;
    } catch {
      // present but not preloaded: plain Postgres it is
    }
  }
  ctx.timescale = Number((await sql`SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'timescaledb'`)[0]!.n) > 0;
  const applied: number[] = [];
  // One migrator at a time, across processes and replicas.
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtext(${schema + ".ticksync.migrate"}))`;
    await tx`CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), timescale boolean NOT NULL DEFAULT false)`;
    const [cur] = await tx`SELECT coalesce(max(version), 0) AS v FROM schema_migrations`;
    for (const m of PG_MIGRATIONS) {
      if (m.version <= Number(cur!.v)) continue;
      await m.up(tx, { timescale: ctx.timescale });
      await tx`INSERT INTO schema_migrations (version, name, timescale) VALUES (${m.version}, ${m.name}, ${ctx.timescale})`;
      applied.push(m.version);
    }
  });
  // The bars table was made as a hypertable or as partitions once; follow what it is.
  const [made] = await sql`SELECT timescale FROM schema_migrations WHERE version = 1`;
  ctx.timescale = Boolean(made?.timescale);
  if (!ctx.timescale) for (const r of await sql`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace WHERE p.relname = 'bars' AND n.nspname = ${schema}`) {
    const y = /^bars_y(\d{4})$/.exec(r.relname)?.[1];
    if (y) ctx.partitions.add(Number(y));
  }
  return applied;
}
