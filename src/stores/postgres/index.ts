// PostgreSQL (and TimescaleDB when its extension is there) through postgres.js. Bars are keyed
// by (series_id, ts): an int and a timestamp index far cheaper than the text natural key, which
// lives once per series in the series table. A batch is one binary COPY: straight into bars when
// every bar is newer than its series' newest stored bar (the series rows are locked first, so
// that stays true until commit), otherwise into a temporary staging table upserted from there,
// so re-loading is idempotent. The checkpoint, the quarantine and the run's counters commit in
// the same transaction.
import postgres from "postgres";
import { decodeJournal, eventBatch, eventId, eventIndex, type BarEvent } from "../events.ts";
import { newOwner, ownerGone, readiness } from "../common.ts";
import { pgRollups, queueRun, queueRuns, rebuildRollups, type RollupCounts } from "./rollups/index.ts";
import { log } from "../../lib/log.ts";
import type { Bar, Interval } from "../../domain/bar.ts";
import { barAt, COLUMN_WIDTH, columnsOf, tsRange, type BarColumns } from "../../domain/columns.ts";
import { redactUrl } from "../../lib/redact.ts";
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
  RunStream,
  SeriesInfo,
  Store,
} from "../types.ts";

type Sql = postgres.Sql<{}>;
type Tx = postgres.TransactionSql<{}>;
type Migration = { version: number; name: string; up: (sql: Tx, opts: { timescale: boolean }) => Promise<unknown> };

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
      // both forms give way to one table kept by src/stores/postgres/rollups.ts.
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
];

/** NOTIFY channel: a batch was journaled (payload: its batch number). One channel per schema. */
const eventsChannel = (schema: string) => (schema.length <= 40 ? `ticksync_events_${schema}` : `ticksync_events_${Bun.hash(schema).toString(36)}`);

/** A journal row holding keys (series id, ts) rather than copies of the bars. */
const JOURNAL_KEYS = "keys:v1";

/** Advisory lock key that orders journal batch numbers by commit. */
const JOURNAL_LOCK = 0x7469636b; // "tick"
export const PG_SCHEMA_VERSION = PG_MIGRATIONS[PG_MIGRATIONS.length - 1]!.version;

/** `?schema=name` picks the schema (default public); it is ours, not a libpq option. */
export function parsePgUrl(url: string): { url: string; schema: string } {
  const u = new URL(url.replace(/^postgresql:/, "postgres:"));
  const schema = u.searchParams.get("schema") ?? "public";
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`schema ${JSON.stringify(schema)} must be a lower-case SQL identifier`);
  u.searchParams.delete("schema");
  return { url: u.toString(), schema };
}

/** The URL without its password (the one redaction: src/lib/redact.ts). */
export const redactPgUrl = (url: string): string => redactUrl(url);


/** The columns a batch is COPYed into, bars or its staging table, in this order. */
const COPY_COLUMNS = "series_id, ts, open, high, low, close, volume, adj_close, turnover, trades, run_id";
const COPY_FIELDS = 11;
/** The widest row: field count, 11 lengths, int4 and 10 eight-byte values. */
const COPY_ROW_MAX = 2 + COPY_FIELDS * 4 + 4 + 10 * 8;
const COPY_SIGNATURE = [0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00]; // PGCOPY\n\377\r\n\0
/** Postgres counts timestamps in microseconds from 2000-01-01 UTC. */
const PG_EPOCH_MS = 946_684_800_000;
const TWO_32 = 4_294_967_296;

/**
 * Bars in COPY's binary format: no number is formatted as text on this side or parsed on the
 * server's, which is most of what a text COPY costs both. Non-finite numbers go as NULL.
 * `seriesIds` holds the series id of each of the columns' series.
 */
export function encodeCopy(c: BarColumns, seriesIds: Int32Array, runId: number): Uint8Array {
  const out = new Uint8Array(19 + c.n * COPY_ROW_MAX + 2);
  const dv = new DataView(out.buffer);
  out.set(COPY_SIGNATURE);
  let o = 19; // signature, flags and header extension length (both 0)
  const f = c.f64;
  // Integers up to 2^53 as two 32-bit halves: no BigInt per value.
  const int8 = (x: number) => {
    const hi = Math.floor(x / TWO_32);
    dv.setInt32(o, 8);
    dv.setInt32(o + 4, hi);
    dv.setUint32(o + 8, x - hi * TWO_32);
    o += 12;
  };
  const float8 = (x: number) => {
    if (Number.isFinite(x)) {
      dv.setInt32(o, 8);
      dv.setFloat64(o + 4, x);
      o += 12;
    } else {
      dv.setInt32(o, -1);
      o += 4;
    }
  };
  for (let i = 0, k = 0; i < c.n; i++, k += COLUMN_WIDTH) {
    dv.setInt16(o, COPY_FIELDS);
    dv.setInt32(o + 2, 4);
    dv.setInt32(o + 6, seriesIds[c.row[i]!]!);
    o += 10;
    int8((f[k]! - PG_EPOCH_MS) * 1000);
    float8(f[k + 1]!);
    float8(f[k + 2]!);
    float8(f[k + 3]!);
    float8(f[k + 4]!);
    float8(f[k + 5]!);
    float8(f[k + 6]!);
    float8(f[k + 7]!);
    const trades = f[k + 8]!;
    if (Number.isFinite(trades)) int8(Math.round(trades));
    else dv.setInt32(o, -1), (o += 4);
    int8(runId);
  }
  dv.setInt16(o, -1);
  return out.subarray(0, o + 2);
}

const seriesKey = (source: string, symbol: string, interval: string) => `${source}\u0000${symbol}\u0000${interval}`;

/** A batch's bars of one series: where its bars' ts lie, and whether they rise strictly (no key twice). */
type BatchSeries = { key: string; source: string; symbol: string; interval: string; id: number; min: number; max: number; n: number; last: number; rising: boolean };

const ms = (d: Date | string | null | undefined) => (d == null ? null : new Date(d).getTime());

function rowToRun(r: any): RunRecord {
  return {
    id: Number(r.id),
    kind: r.kind,
    source: r.source,
    job: r.job ?? undefined,
    params: r.params ?? undefined,
    startedAt: ms(r.started_at)!,
    finishedAt: ms(r.finished_at),
    durationMs: r.duration_ms === null ? null : Number(r.duration_ms),
    outcome: r.outcome,
    read: Number(r.read),
    inserted: Number(r.inserted),
    updated: Number(r.updated),
    unchanged: Number(r.unchanged),
    stored: Number(r.inserted) + Number(r.updated),
    quarantined: Number(r.quarantined),
    fromTs: ms(r.from_ts),
    toTs: ms(r.to_ts),
    quality: r.quality ?? null,
    error: r.error,
    failures: r.failures ?? {},
  };
}

/** A row of bars joined with its series. */
function rowToBar(r: any): Bar {
  const bar: Bar = { source: r.source, symbol: r.symbol, interval: r.interval as Interval, ts: ms(r.ts)!, open: r.open, high: r.high, low: r.low, close: r.close, volume: r.volume };
  if (r.adj_close !== null) bar.adjClose = r.adj_close;
  if (r.turnover !== null) bar.turnover = r.turnover;
  if (r.trades !== null) bar.trades = Number(r.trades);
  return bar;
}

export function postgresStore(url: string, opts: { max?: number } = {}): Store {
  const { url: connUrl, schema } = parsePgUrl(url);
  const sql: Sql = postgres(connUrl, {
    max: opts.max ?? 4,
    onnotice: () => {},
    connection: { search_path: schema, application_name: "ticksync" },
    types: { bigint: postgres.BigInt },
  });
  const owner = newOwner();
  const listeners = new Set<(events: BarEvent[]) => void>();
  let timescale = false;
  const partitions = new Set<number>();
  const rollups = pgRollups(sql, schema);

  /** Years whose partition is being made or made, by this process. */
  const making = new Map<number, Promise<void>>();

  /**
   * The year partitions of the batch's bars, made when missing: one maker at a time across
   * processes (an advisory lock: two CREATE TABLE IF NOT EXISTS at once may both try), and once
   * per year in this process.
   */
  async function ensurePartitions(c: BarColumns) {
    const range = tsRange(c);
    if (timescale || !range) return;
    const waits: Promise<void>[] = [];
    for (let y = new Date(range.min).getUTCFullYear(); y <= new Date(range.max).getUTCFullYear(); y++) {
      if (partitions.has(y)) continue;
      let m = making.get(y);
      if (!m) {
        const name = `bars_y${y}`;
        m = sql
          .begin(async (tx) => {
            await tx`SELECT pg_advisory_xact_lock(hashtext(${`${schema}.ticksync.partition`}))`;
            await tx.unsafe(`CREATE TABLE IF NOT EXISTS "${schema}".${name} PARTITION OF "${schema}".bars FOR VALUES FROM ('${y}-01-01 00:00:00+00') TO ('${y + 1}-01-01 00:00:00+00')`);
          })
          .then(() => void partitions.add(y))
          .finally(() => making.delete(y));
        making.set(y, m);
      }
      waits.push(m);
    }
    await Promise.all(waits);
  }

  /** Series ids known to be committed, by seriesKey: their rows need not be made. */
  const seriesIds = new Map<string, number>();

  /**
   * Per series, the newest ts of the batches this process has sent and not yet seen committed or
   * failed (`n` of them): a batch after them is new even though they are not visible yet.
   */
  const inFlight = new Map<string, { max: number; n: number }>();

  /**
   * Before a batch's transaction: its year partitions and series rows exist (made and committed
   * here when new: a series row with no bars counts as no series), and what the table already
   * holds of each series. `direct`: the whole batch can go straight into bars — each series'
   * bars rise, start after its newest stored bar and after the batches still in flight, and have
   * no missing value that the staging path would report. Another process writing the same keys
   * at the same time makes the direct COPY fail on the primary key, and the batch is then
   * written again through the staging path.
   */
  /** The batch's series: where their bars' ts lie, whether they rise; `direct` false when a bar misses a value. */
  function seriesStats(c: BarColumns): { list: BatchSeries[]; direct: boolean } {
    const list: BatchSeries[] = c.series.map((x) => ({ key: seriesKey(x.source, x.symbol, x.interval), ...x, id: 0, min: Infinity, max: -Infinity, n: 0, last: -Infinity, rising: true }));
    const f = c.f64;
    let direct = true;
    for (let i = 0, k = 0; i < c.n; i++, k += COLUMN_WIDTH) {
      const s = list[c.row[i]!]!;
      const ts = f[k]!;
      if (ts <= s.last) s.rising = false;
      s.last = ts;
      if (ts < s.min) s.min = ts;
      if (ts > s.max) s.max = ts;
      s.n++;
      if (direct && !(Number.isFinite(f[k + 1]!) && Number.isFinite(f[k + 2]!) && Number.isFinite(f[k + 3]!) && Number.isFinite(f[k + 4]!) && Number.isFinite(f[k + 5]!))) direct = false;
    }
    return { list, direct };
  }

  async function prepareSeries(c: BarColumns, stats: { list: BatchSeries[]; direct: boolean }, overlaps: boolean): Promise<{ list: BatchSeries[]; ids: Int32Array; direct: boolean }> {
    const { list } = stats;
    let direct = stats.direct && !overlaps;
    await ensurePartitions(c);
    const byKey = new Map(list.map((x) => [x.key, x]));
    const cols = (l: BatchSeries[]) => [l.map((x) => x.source), l.map((x) => x.symbol), l.map((x) => x.interval)] as const;
    // New series rows first (committed on their own), then the batch's series as stored.
    const fresh = list.filter((x) => !seriesIds.has(x.key));
    if (fresh.length > 0) {
      const [src, sym, int] = cols(fresh);
      await sql`
        INSERT INTO series (source, symbol, interval, first_ts, last_ts, bars)
        SELECT source, symbol, interval, f, l, 0
        FROM unnest(${src}::text[], ${sym}::text[], ${int}::text[], ${fresh.map((x) => new Date(x.min).toISOString())}::timestamptz[], ${fresh.map((x) => new Date(x.max).toISOString())}::timestamptz[]) AS u(source, symbol, interval, f, l)
        ORDER BY source, symbol, interval
        ON CONFLICT (source, symbol, interval) DO NOTHING`;
    }
    const [src, sym, int] = cols(list);
    const stored = await sql`
      SELECT id, source, symbol, interval, last_ts, bars FROM series
      WHERE (source, symbol, interval) IN (SELECT * FROM unnest(${src}::text[], ${sym}::text[], ${int}::text[]))`;
    for (const r of stored) {
      const x = byKey.get(seriesKey(r.source, r.symbol, r.interval));
      if (!x) continue;
      x.id = r.id;
      seriesIds.set(x.key, r.id);
      if (Number(r.bars) > 0 && x.min <= new Date(r.last_ts).getTime()) direct = false;
    }
    for (const x of list) {
      if (x.id === 0) throw new Error(`series ${x.source}/${x.symbol}/${x.interval} has no row after it was made`);
      if (!x.rising) direct = false;
    }
    return { list, ids: Int32Array.from(list, (x) => x.id), direct };
  }

  /**
   * Batches of one stream may be in flight together: each commits only after the one before it
   * committed, and not at all when that one failed. Per stream (or run, for batches without a
   * checkpoint): when the last batch sent has its connection, and whether it committed.
   */
  const chains = new Map<string, { started: Promise<void>; committed: Promise<boolean> }>();

  /** One binary COPY of encoded bars into `table`. */
  async function copyInto(tx: Tx, table: "bars" | "bars_stage", data: Uint8Array) {
    const stream = await tx.unsafe(`COPY ${table} (${COPY_COLUMNS}) FROM STDIN (FORMAT binary)`).writable();
    await new Promise<void>((resolve, reject) => {
      stream.on("error", reject);
      stream.write(data);
      stream.end(() => resolve());
    });
  }

  async function schemaVersion(): Promise<number> {
    const [r] = await sql`SELECT to_regclass(${schema + ".schema_migrations"}) AS t`;
    if (!r?.t) return 0;
    const [v] = await sql`SELECT coalesce(max(version), 0) AS v FROM schema_migrations`;
    return Number(v!.v);
  }

  /**
   * One batch's transaction. Its rows go in first (a COPY, in parallel with the batch before it
   * when that one is still in flight); the statements on rows other batches share — series
   * counts, run counters, checkpoint, quarantine, journal — wait until the batch before has
   * committed (`before`), and none is made when it failed.
   */
  async function writeBatch(
    b: CommitBatch,
    c: BarColumns,
    prepared: Awaited<ReturnType<typeof prepareSeries>> | null,
    direct: boolean,
    before: Promise<boolean> | undefined,
    started: () => void,
  ): Promise<{ result: CommitResult; events: BarEvent[] }> {
    const f = c.f64;
    let events: BarEvent[] = [];
    const result = await sql.begin(async (tx) => {
      started();
      let inserted = 0;
      let updated = 0;
      let unchanged = 0;
      // Which bars changed, for the journal: all of a direct load; else what the statements return.
      let changedKeys: Map<string, "insert" | "update"> | null = null;
      // Per bar: its series' id.
      let ids: Int32Array | null = null;
      // New bars per series id (min ts, max ts, count), for the series table.
      const gained = new Map<number, [number, number, number]>();
      // Changed bars (updated ones; the inserted ones are in gained) per series id: min and max ts, for run_series.
      const touched = new Map<number, [number, number]>();
      if (prepared) {
        const { list, ids: idOf } = prepared;
        ids = new Int32Array(c.n);
        for (let i = 0; i < c.n; i++) ids[i] = idOf[c.row[i]!]!;
        const data = encodeCopy(c, idOf, b.runId);
        if (direct) {
          // Every bar is newer than its series' newest stored (or in flight) bar: no key can
          // exist, so no upsert is needed.
          await copyInto(tx, "bars", data);
          inserted = c.n;
          for (const x of list) gained.set(x.id, [x.min, x.max, x.n]);
        } else {
          await tx`CREATE TEMP TABLE IF NOT EXISTS bars_stage (
              series_id int, ts timestamptz, open float8, high float8, low float8, close float8,
              volume float8, adj_close float8, turnover float8, trades bigint, run_id bigint) ON COMMIT DELETE ROWS`;
          await copyInto(tx, "bars_stage", data);
          // New keys go in; only when some keys already existed does a second statement update
          // the rows whose values changed, so an identical re-delivery writes nothing.
          const insertedRows = await tx`
            INSERT INTO bars (series_id, ts, open, high, low, close, volume, adj_close, turnover, trades, run_id)
            SELECT series_id, ts, open, high, low, close, volume, adj_close, turnover, trades, run_id FROM bars_stage
            ON CONFLICT (series_id, ts) DO NOTHING
            RETURNING series_id, (extract(epoch FROM ts) * 1000)::float8 AS t`;
          changedKeys = new Map();
          for (const k of insertedRows) {
            changedKeys.set(`${k.series_id}|${k.t}`, "insert");
            const g = gained.get(k.series_id);
            if (g) (g[0] = Math.min(g[0], k.t)), (g[1] = Math.max(g[1], k.t)), g[2]++;
            else gained.set(k.series_id, [k.t, k.t, 1]);
          }
          inserted = insertedRows.length;
          if (inserted < c.n) {
            const res = await tx`
              UPDATE bars SET open = s.open, high = s.high, low = s.low, close = s.close, volume = s.volume,
                adj_close = s.adj_close, turnover = s.turnover, trades = s.trades, run_id = s.run_id, updated_at = now()
              FROM bars_stage s
              WHERE bars.series_id = s.series_id AND bars.ts = s.ts
                AND (bars.open, bars.high, bars.low, bars.close, bars.volume, bars.adj_close, bars.turnover, bars.trades)
                  IS DISTINCT FROM (s.open, s.high, s.low, s.close, s.volume, s.adj_close, s.turnover, s.trades)
              RETURNING bars.series_id, (extract(epoch FROM bars.ts) * 1000)::float8 AS t`;
            for (const k of res) {
              changedKeys.set(`${k.series_id}|${k.t}`, "update");
              const u = touched.get(k.series_id);
              if (u) (u[0] = Math.min(u[0], k.t)), (u[1] = Math.max(u[1], k.t));
              else touched.set(k.series_id, [k.t, k.t]);
            }
            updated = res.length;
          }
        }
        unchanged = c.n - inserted - updated;
      }
      // From here on, rows that other batches write too: only after the batch before committed.
      if (before && !(await before)) throw new Error("an earlier batch of this stream was not committed, so this one is not either");
      // The bookkeeping goes in one round trip (postgres.js pipelines queries sent together).
      const later: Promise<unknown>[] = [];
      if (gained.size > 0) {
        const g = [...gained].sort((x, y) => x[0] - y[0]); // in id order, as every writer locks them
        const iso = (x: number) => new Date(x).toISOString();
        later.push(tx`
          UPDATE series SET first_ts = CASE WHEN series.bars = 0 THEN u.f ELSE least(series.first_ts, u.f) END,
            last_ts = CASE WHEN series.bars = 0 THEN u.l ELSE greatest(series.last_ts, u.l) END, bars = series.bars + u.n
          FROM unnest(${g.map((x) => x[0])}::int[], ${g.map((x) => iso(x[1][0]))}::timestamptz[], ${g.map((x) => iso(x[1][1]))}::timestamptz[], ${g.map((x) => x[1][2])}::bigint[]) AS u(id, f, l, n)
          WHERE series.id = u.id`);
      }
      // Where this run's bars are, series by series (the readers of a run's bars go by it): the
      // ranges of the bars inserted and updated, widened; in series id order, as the series rows.
      for (const [id, g] of gained) {
        const u = touched.get(id);
        if (u) (u[0] = Math.min(u[0], g[0])), (u[1] = Math.max(u[1], g[1]));
        else touched.set(id, [g[0], g[1]]);
      }
      if (touched.size > 0) {
        const t = [...touched].sort((x, y) => x[0] - y[0]);
        const iso = (x: number) => new Date(x).toISOString();
        later.push(tx`
          INSERT INTO run_series (run_id, series_id, min_ts, max_ts)
          SELECT ${b.runId}, u.* FROM unnest(${t.map((x) => x[0])}::int[], ${t.map((x) => iso(x[1][0]))}::timestamptz[], ${t.map((x) => iso(x[1][1]))}::timestamptz[]) AS u(id, f, l)
          ORDER BY u.id
          ON CONFLICT (run_id, series_id) DO UPDATE SET min_ts = least(run_series.min_ts, excluded.min_ts), max_ts = greatest(run_series.max_ts, excluded.max_ts)
          WHERE excluded.min_ts < run_series.min_ts OR excluded.max_ts > run_series.max_ts`);
      }
      let quarantine: Promise<{ count: number }> | null = null;
      if (b.quarantine.length > 0) {
        const rows = b.quarantine.map((q) => ({
          run_id: b.runId,
          source: b.source,
          locator: q.locator,
          rule: q.rule,
          reason: q.reason,
          symbol: q.symbol ?? null,
          ts: q.ts == null ? null : new Date(q.ts),
          raw: JSON.parse(JSON.stringify(q.raw ?? {})),
        }));
        quarantine = tx`
          INSERT INTO quarantine ${tx(rows, "run_id", "source", "locator", "rule", "reason", "symbol", "ts", "raw")}
          ON CONFLICT (source, locator) DO UPDATE SET run_id = excluded.run_id, rule = excluded.rule, reason = excluded.reason,
            symbol = excluded.symbol, ts = excluded.ts, raw = excluded.raw
          WHERE quarantine.rule IS DISTINCT FROM excluded.rule OR quarantine.raw IS DISTINCT FROM excluded.raw`;
        later.push(quarantine);
      }
      const range = tsRange(c);
      const minTs = range ? new Date(range.min) : null;
      const maxTs = range ? new Date(range.max) : null;
      later.push(tx`
        UPDATE runs SET read = read + ${b.read}, inserted = inserted + ${inserted}, updated = updated + ${updated},
          unchanged = unchanged + ${unchanged}, quarantined = quarantined + ${b.quarantine.length},
          from_ts = CASE WHEN ${minTs}::timestamptz IS NULL THEN from_ts ELSE least(from_ts, ${minTs}::timestamptz) END,
          to_ts = CASE WHEN ${maxTs}::timestamptz IS NULL THEN to_ts ELSE greatest(to_ts, ${maxTs}::timestamptz) END
        WHERE id = ${b.runId}`);
      if (b.checkpoint) {
        const cp = b.checkpoint;
        later.push(tx`
          INSERT INTO checkpoints (stream, cursor, last_ts, last_key, run_id, updated_at)
          VALUES (${cp.stream}, ${tx.json(cp.cursor)}, ${cp.lastTs === null ? null : new Date(cp.lastTs)}, ${cp.lastKey}, ${b.runId}, now())
          ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor, last_ts = excluded.last_ts, last_key = excluded.last_key,
            run_id = excluded.run_id, updated_at = excluded.updated_at`);
      }
      await Promise.all(later);
      const quarantined = quarantine ? (await quarantine).count : 0;
      // Last: the journal. Its lock makes batch numbers follow commit order.
      if (inserted + updated > 0) {
        // Keys only (series id and ts per bar): a copy of every bar would add a third to a
        // load's cost here; a replay reads the bars back by key (their current values).
        const n = inserted + updated;
        const keys = new Float64Array(n * 2);
        const ops = new Uint8Array(n);
        const changed = new Int32Array(n); // which bars, for this process' listeners
        let k = 0;
        for (let i = 0; i < c.n && k < n; i++) {
          const ts = f[i * COLUMN_WIDTH]!;
          const op = changedKeys ? changedKeys.get(`${ids![i]}|${ts}`) : "insert";
          if (!op) continue;
          keys[2 * k] = ids![i]!;
          keys[2 * k + 1] = ts;
          ops[k] = op === "update" ? 1 : 0;
          changed[k++] = i;
        }
        // One round trip (postgres.js pipelines what is sent together, in order): the lock, the
        // row, and the notification that is delivered when (and only if) this commits.
        const [, [row]] = await Promise.all([
          tx`SELECT pg_advisory_xact_lock(${JOURNAL_LOCK})`,
          tx`INSERT INTO journal (run_id, n, series, ops, data) VALUES (${b.runId}, ${k}, ${JOURNAL_KEYS}, ${Buffer.from(ops.buffer, 0, k)}, ${Buffer.from(keys.buffer, 0, k * 16)}) RETURNING batch`,
          tx`SELECT pg_notify(${eventsChannel(schema)}, currval(pg_get_serial_sequence('journal', 'batch'))::text)`,
        ]);
        const batch = Number(row!.batch);
        if (listeners.size > 0) {
          events = new Array(k);
          for (let e = 0; e < k; e++) events[e] = { id: eventId(batch, e), type: "bar", op: ops[e] === 1 ? "update" : "insert", bar: barAt(c, changed[e]!) };
        }
      }
      return { inserted, updated, unchanged, quarantined };
    });
    return { result: result as CommitResult, events };
  }

  const store: Store = {
    kind: "postgres",
    journal: true,
    location: redactPgUrl(url),

    async migrate() {
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
      timescale = Number((await sql`SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'timescaledb'`)[0]!.n) > 0;
      const applied: number[] = [];
      // One migrator at a time, across processes and replicas.
      await sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(hashtext(${schema + ".ticksync.migrate"}))`;
        await tx`CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), timescale boolean NOT NULL DEFAULT false)`;
        const [cur] = await tx`SELECT coalesce(max(version), 0) AS v FROM schema_migrations`;
        for (const m of PG_MIGRATIONS) {
          if (m.version <= Number(cur!.v)) continue;
          await m.up(tx, { timescale });
          await tx`INSERT INTO schema_migrations (version, name, timescale) VALUES (${m.version}, ${m.name}, ${timescale})`;
          applied.push(m.version);
        }
      });
      // The bars table was made as a hypertable or as partitions once; follow what it is.
      const [made] = await sql`SELECT timescale FROM schema_migrations WHERE version = 1`;
      timescale = Boolean(made?.timescale);
      if (!timescale) for (const r of await sql`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace WHERE p.relname = 'bars' AND n.nspname = ${schema}`) {
        const y = /^bars_y(\d{4})$/.exec(r.relname)?.[1];
        if (y) partitions.add(Number(y));
      }
      await recoverInterruptedRuns();
      // Runs queued for the rollups and not worked off yet: in the background, when this process keeps them.
      if (background) void rollUpQueued();
      return { applied, version: await schemaVersion() };
    },

    ready: () => readiness(schemaVersion, PG_SCHEMA_VERSION),

    pipeline: 2,

    async commitBatch(b: CommitBatch): Promise<CommitResult> {
      const c = columnsOf(b.bars);
      const chainKey = b.checkpoint ? `stream ${b.checkpoint.stream}` : `run ${b.runId}`;
      const before = chains.get(chainKey);
      let started!: () => void;
      let committed!: (ok: boolean) => void;
      const mine = { started: new Promise<void>((r) => (started = r)), committed: new Promise<boolean>((r) => (committed = r)) };
      chains.set(chainKey, mine);
      // The batch's series, counted in flight at once (before any await), so the next batch
      // sees them: keys it may share with this one make it wait for this one's commit.
      const stats = c.n > 0 ? seriesStats(c) : null;
      let overlaps = false;
      if (stats)
        for (const x of stats.list) {
          const p = inFlight.get(x.key);
          if (p && x.min <= p.max) overlaps = true;
          if (p) (p.max = Math.max(p.max, x.max)), p.n++;
          else inFlight.set(x.key, { max: x.max, n: 1 });
        }
      let prepared: Awaited<ReturnType<typeof prepareSeries>> | null = null;
      try {
        prepared = stats ? await prepareSeries(c, stats, overlaps) : null;
        // Keys an earlier batch still in flight may hold: write only after it committed, or its
        // rows and these would wait for each other (it in Postgres, this one here). Otherwise the
        // batch before has its connection first, so it can always finish.
        if (overlaps) {
          if (before && !(await before.committed)) throw new Error("an earlier batch of this stream was not committed, so this one is not either");
        } else await before?.started;
        let out: { result: CommitResult; events: BarEvent[] };
        try {
          out = await writeBatch(b, c, prepared, prepared?.direct ?? false, before?.committed, started);
        } catch (e) {
          if (!(prepared?.direct && (e as { code?: string })?.code === "23505")) throw e;
          // Another writer stored some of these keys meanwhile: upsert them after all.
          out = await writeBatch(b, c, prepared, false, before?.committed, started);
        }
        committed(true);
        if (out.events.length) for (const fn of listeners) fn(out.events);
        return out.result;
      } catch (e) {
        started();
        committed(false);
        throw e;
      } finally {
        if (chains.get(chainKey) === mine) chains.delete(chainKey);
        if (stats)
          for (const x of stats.list) {
            const p = inFlight.get(x.key);
            if (p && --p.n === 0) inFlight.delete(x.key);
          }
      }
    },

    async getCheckpoint(stream) {
      const [r] = await sql`SELECT stream, cursor, last_ts, last_key FROM checkpoints WHERE stream = ${stream}`;
      return r ? ({ stream: r.stream, cursor: r.cursor, lastTs: ms(r.last_ts), lastKey: r.last_key } as Checkpoint) : null;
    },

    async listCheckpoints() {
      const rows = await sql`SELECT stream, cursor, last_ts, last_key FROM checkpoints ORDER BY stream`;
      return rows.map((r) => ({ stream: r.stream, cursor: r.cursor, lastTs: ms(r.last_ts), lastKey: r.last_key }) as Checkpoint);
    },

    async putCheckpoints(list, runId) {
      if (list.length === 0) return;
      await sql.begin(async (tx) => {
        for (const c of list)
          await tx`
            INSERT INTO checkpoints (stream, cursor, last_ts, last_key, run_id, updated_at)
            VALUES (${c.stream}, ${tx.json(c.cursor)}, ${c.lastTs === null ? null : new Date(c.lastTs)}, ${c.lastKey}, ${runId}, now())
            ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor, last_ts = excluded.last_ts, last_key = excluded.last_key,
              run_id = excluded.run_id, updated_at = excluded.updated_at`;
      });
    },

    async startRun(run: RunStart) {
      const [r] = await sql`
        INSERT INTO runs (kind, source, job, params, owner, outcome)
        VALUES (${run.kind}, ${run.source}, ${run.job ?? null}, ${run.params ? sql.json(run.params as postgres.JSONValue) : null}, ${owner}, 'running') RETURNING id`;
      return Number(r!.id);
    },

    async finishRun(id, s: RunSummary) {
      // Queued for the rollups in the transaction that marks it finished; rolled up later, in the
      // background of a process that keeps them (serve), never here: the load is done.
      await sql.begin(async (tx) => {
        await queueRun(tx, id, s);
        await tx`
        UPDATE runs SET finished_at = now(), duration_ms = (extract(epoch FROM now() - started_at) * 1000)::bigint, outcome = ${s.outcome},
          read = ${s.read}, inserted = ${s.inserted}, updated = ${s.updated}, unchanged = ${s.unchanged}, quarantined = ${s.quarantined},
          from_ts = ${s.fromTs === null ? null : new Date(s.fromTs)}, to_ts = ${s.toTs === null ? null : new Date(s.toTs)},
          quality = ${s.quality ? tx.json(s.quality as unknown as postgres.JSONValue) : null}, error = ${s.error ?? null},
          failures = ${s.failures ? tx.json(s.failures) : null}
        WHERE id = ${id}`;
      });
      if (background) void rollUpQueued();
    },

    async getRun(id) {
      const [r] = await sql`SELECT * FROM runs WHERE id = ${id}`;
      return r ? rowToRun(r) : null;
    },

    async reopenRun(id) {
      await sql`UPDATE runs SET outcome = 'running', owner = ${owner}, finished_at = NULL, error = NULL WHERE id = ${id}`;
    },

    async initRunStreams(runId, streams) {
      if (streams.length === 0) return;
      await sql`INSERT INTO run_streams (run_id, stream, status) SELECT ${runId}, unnest(${sql.array(streams)}::text[]), 'pending' ON CONFLICT DO NOTHING`;
    },

    async setRunStream(runId, stream, st) {
      await sql`
        INSERT INTO run_streams (run_id, stream, status, cause, error, rows) VALUES (${runId}, ${stream}, ${st.status}, ${st.cause ?? null}, ${st.error ?? null}, ${st.rows})
        ON CONFLICT (run_id, stream) DO UPDATE SET status = excluded.status, cause = excluded.cause, error = excluded.error,
          rows = run_streams.rows + excluded.rows, updated_at = now()`;
    },

    async listRunStreams(runId, status) {
      const rows = await sql`SELECT stream, status, cause, error, rows FROM run_streams WHERE run_id = ${runId} AND (${status ?? null}::text IS NULL OR status = ${status ?? null}) ORDER BY stream`;
      return rows.map((r): RunStream => ({ stream: r.stream, status: r.status, cause: r.cause, error: r.error, rows: Number(r.rows) }));
    },

    async listRuns({ limit, before, source }) {
      const rows = await sql`
        SELECT * FROM runs WHERE id < ${before ?? Number.MAX_SAFE_INTEGER} AND (${source ?? null}::text IS NULL OR source = ${source ?? null})
        ORDER BY id DESC LIMIT ${limit}`;
      return rows.map(rowToRun);
    },

    async lastSuccessByJob() {
      const rows = await sql`SELECT coalesce(job, kind || ':' || source) AS job, max(finished_at) AS t FROM runs WHERE outcome = 'succeeded' GROUP BY 1`;
      return new Map(rows.map((r) => [r.job as string, ms(r.t)!]));
    },

    async listSeries(opts) {
      // A series row with no bars is one whose first batch has not committed yet.
      const rows = await sql`
        SELECT source, symbol, interval, first_ts, last_ts, bars FROM series
        WHERE bars > 0 AND (${opts?.symbol ?? null}::text IS NULL OR symbol = ${opts?.symbol ?? null}) ORDER BY symbol, interval, source`;
      return rows.map((r): SeriesInfo => ({ source: r.source, symbol: r.symbol, interval: r.interval, firstTs: ms(r.first_ts)!, lastTs: ms(r.last_ts)!, bars: Number(r.bars) }));
    },

    async queryBars(q: BarQuery) {
      const from = new Date(q.from ?? -8.64e15 / 1000);
      const to = new Date(q.to ?? 8.64e15 / 1000);
      // Each matching series (one per source) gives at most a page in its index order; the
      // pages are merged by (ts, source).
      const after = q.after ? sql`AND b.ts >= ${new Date(q.after.ts)} AND (b.ts > ${new Date(q.after.ts)} OR s.source > ${q.after.source})` : sql``;
      const rows = await sql`
        SELECT s.source, s.symbol, s.interval, b.ts, b.open, b.high, b.low, b.close, b.volume, b.adj_close, b.turnover, b.trades
        FROM series s CROSS JOIN LATERAL (
          SELECT * FROM bars b WHERE b.series_id = s.id AND b.ts >= ${from} AND b.ts <= ${to} ${after}
          ORDER BY b.ts LIMIT ${q.limit}
        ) b
        WHERE s.symbol = ${q.symbol} AND s.interval = ${q.interval} AND (${q.source ?? null}::text IS NULL OR s.source = ${q.source ?? null})
        ORDER BY b.ts, s.source LIMIT ${q.limit}`;
      return rows.map(rowToBar);
    },

    async deleteQuarantine(ids) {
      if (ids.length === 0) return 0;
      const r = await sql`DELETE FROM quarantine WHERE id = ANY(${sql.array(ids)}::bigint[])`;
      return r.count;
    },

    async listQuarantine({ limit, before, source, rule, runId }) {
      const rows = await sql`
        SELECT * FROM quarantine WHERE id < ${before ?? Number.MAX_SAFE_INTEGER} AND (${source ?? null}::text IS NULL OR source = ${source ?? null})
          AND (${rule ?? null}::text IS NULL OR rule = ${rule ?? null}) AND (${runId ?? null}::bigint IS NULL OR run_id = ${runId ?? null})
        ORDER BY id DESC LIMIT ${limit}`;
      return rows.map(
        (r): QuarantineRecord => ({
          id: Number(r.id),
          runId: Number(r.run_id),
          source: r.source,
          locator: r.locator,
          rule: r.rule,
          reason: r.reason,
          symbol: r.symbol,
          ts: ms(r.ts),
          raw: r.raw,
          createdAt: ms(r.created_at)!,
        }),
      );
    },

    async countBars() {
      const [r] = await sql`SELECT count(*)::bigint AS n FROM bars`;
      return Number(r!.n);
    },

    async eventsSince(after, limit) {
      const first = eventBatch(after);
      const rows = await sql`SELECT batch, series, ops, data FROM journal WHERE batch >= ${first} ORDER BY batch LIMIT ${Math.max(1, Math.ceil(limit / 100) + 1)}`;
      const out: BarEvent[] = [];
      for (const r of rows) {
        const batch = Number(r.batch);
        const from = batch === first ? eventIndex(after) + 1 : 0;
        if (r.series !== JOURNAL_KEYS) out.push(...decodeJournal(batch, r.series, r.ops, r.data, from));
        else {
          const raw: Uint8Array = r.data;
          const keys = new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
          const sids: number[] = [];
          const tss: string[] = [];
          for (let i = from; i < r.ops.length; i++) {
            sids.push(keys[i * 2]!);
            tss.push(new Date(keys[i * 2 + 1]!).toISOString());
          }
          if (!sids.length) continue;
          // A bar deleted since (retention) has no event left to replay; the others keep their ids.
          const found = await sql`
            SELECT k.ord, s.source, s.symbol, s.interval, b.ts, b.open, b.high, b.low, b.close, b.volume, b.adj_close, b.turnover, b.trades
            FROM unnest(${sids}::int[], ${tss}::timestamptz[]) WITH ORDINALITY AS k(series_id, ts, ord)
            JOIN bars b ON b.series_id = k.series_id AND b.ts = k.ts JOIN series s ON s.id = k.series_id
            ORDER BY k.ord`;
          for (const f of found) {
            const i = from + Number(f.ord) - 1;
            out.push({ id: eventId(batch, i), type: "bar", op: r.ops[i] === 1 ? "update" : "insert", bar: rowToBar(f) });
          }
        }
        if (out.length >= limit) break;
      }
      return out;
    },

    async eventBounds() {
      const [r] = await sql`SELECT min(batch) AS first, max(batch) AS last FROM journal`;
      if (r?.last == null) return { last: 0, first: null };
      const [l] = await sql`SELECT n FROM journal WHERE batch = ${r.last}`;
      return { last: eventId(Number(r.last), Number(l!.n) - 1), first: eventId(Number(r.first), 0) };
    },

    async pruneEvents(before) {
      return (await sql`DELETE FROM journal WHERE created_at < ${new Date(before)}`).count;
    },

    onEvents(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },

    async watchEvents(fn) {
      const { unlisten } = await sql.listen(eventsChannel(schema), () => fn());
      return unlisten;
    },

    async tryLease(name, holder, ttlMs) {
      const rows = await sql`
        INSERT INTO leases (name, holder, expires_at) VALUES (${name}, ${holder}, now() + ${ttlMs} * interval '1 millisecond')
        ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
        WHERE leases.holder = excluded.holder OR leases.expires_at < now()
        RETURNING holder`;
      return rows[0]?.holder === holder;
    },

    async releaseLease(name, holder) {
      await sql`DELETE FROM leases WHERE name = ${name} AND holder = ${holder}`;
    },

    // Change order here: run, then (series_id, ts), the primary key's order. Runs that stored
    // nothing are skipped by their counters; a run's series come from run_series in id order,
    // and each one's bars are read through the key within the range the run wrote there, so a
    // page never sorts more than one series' page of bars.
    async changedBars(q: ChangeQuery): Promise<ChangedBar[]> {
      const a = q.after;
      const startRun = a?.runId ?? 0;
      const hasKey = typeof a?.seriesId === "number" && typeof a?.ts === "number";
      const runs = await sql`
        SELECT id FROM runs WHERE id >= ${startRun} AND id <= ${q.uptoRun} AND inserted + updated > 0 ORDER BY id`;
      const sources = q.sources?.length ? sql`AND s.source = ANY(${sql.array(q.sources)}::text[])` : sql``;
      const out: ChangedBar[] = [];
      for (const r of runs) {
        const run = Number(r.id);
        if (run === startRun && a && !hasKey) continue;
        const resume = run === startRun && hasKey;
        // After the position: later series, or later bars of its series.
        const sid = resume ? (a!.seriesId as number) : 0;
        const ts = resume ? new Date(a!.ts as number).toISOString() : "-infinity";
        const left = q.limit - out.length;
        const rows = await sql`
          SELECT rs.series_id, s.source, s.symbol, s.interval, b.ts, b.open, b.high, b.low, b.close, b.volume, b.adj_close, b.turnover, b.trades
          FROM run_series rs JOIN series s ON s.id = rs.series_id
          CROSS JOIN LATERAL (
            SELECT * FROM bars b
            WHERE b.series_id = rs.series_id AND b.ts >= rs.min_ts AND b.ts <= rs.max_ts AND b.run_id = rs.run_id
              AND b.ts > CASE WHEN rs.series_id = ${sid} THEN ${ts}::text::timestamptz ELSE '-infinity'::timestamptz END
            ORDER BY b.ts LIMIT ${left}
          ) b
          WHERE rs.run_id = ${run} AND rs.series_id >= ${sid} ${sources}
          ORDER BY rs.series_id, b.ts LIMIT ${left}`;
        for (const row of rows) {
          const bar = rowToBar(row);
          out.push({ bar, position: { runId: run, seriesId: Number(row.series_id), ts: bar.ts } });
        }
        if (out.length >= q.limit) break;
      }
      return out;
    },

    // --- instruments and corporate actions ---
    async upsertInstruments(list) {
      if (list.length === 0) return;
      const rows = list.map((i) => ({ source: i.source, symbol: i.symbol, name: i.name, exchange: i.exchange, currency: i.currency, type: i.type, sector: i.sector, industry: i.industry, isin: i.isin }));
      await sql`
        INSERT INTO instruments ${sql(rows, "source", "symbol", "name", "exchange", "currency", "type", "sector", "industry", "isin")}
        ON CONFLICT (source, symbol) DO UPDATE SET name = excluded.name, exchange = excluded.exchange, currency = excluded.currency,
          type = excluded.type, sector = excluded.sector, industry = excluded.industry, isin = excluded.isin, updated_at = now()`;
    },
    async listInstruments(opts) {
      const rows = await sql`
        SELECT * FROM instruments WHERE (${opts?.symbol ?? null}::text IS NULL OR symbol = ${opts?.symbol ?? null}) ORDER BY symbol, source`;
      return rows.map((r) => ({ source: r.source, symbol: r.symbol, name: r.name, exchange: r.exchange, currency: r.currency, type: r.type, sector: r.sector, industry: r.industry, isin: r.isin, updatedAt: ms(r.updated_at)! }));
    },
    async upsertActions(list) {
      if (list.length === 0) return 0;
      // One row per key in a statement (ON CONFLICT cannot touch a row twice); the last one wins.
      const byKey = new Map(list.map((a) => [`${a.symbol}|${a.type}|${a.exDate}|${a.source}`, a]));
      const rows = [...byKey.values()].map((a) => ({
        symbol: a.symbol, type: a.type, ex_date: new Date(a.exDate), source: a.source, numerator: a.numerator, denominator: a.denominator,
        amount: a.amount, currency: a.currency, pay_date: a.payDate === null ? null : new Date(a.payDate),
      }));
      // Rewrites a record only when a value differs, so re-reading the same events changes nothing.
      const r = await sql`
        INSERT INTO actions ${sql(rows, "symbol", "type", "ex_date", "source", "numerator", "denominator", "amount", "currency", "pay_date")}
        ON CONFLICT (symbol, type, ex_date, source) DO UPDATE SET numerator = excluded.numerator, denominator = excluded.denominator,
          amount = excluded.amount, currency = excluded.currency, pay_date = excluded.pay_date, updated_at = now()
        WHERE (actions.numerator, actions.denominator, actions.amount, actions.currency, actions.pay_date)
          IS DISTINCT FROM (excluded.numerator, excluded.denominator, excluded.amount, excluded.currency, excluded.pay_date)`;
      return r.count;
    },
    async listActions(symbol) {
      const rows = await sql`SELECT * FROM actions WHERE symbol = ${symbol} ORDER BY ex_date, type, source`;
      return rows.map((r) => ({
        source: r.source, symbol: r.symbol, type: r.type, exDate: ms(r.ex_date)!, numerator: r.numerator, denominator: r.denominator,
        amount: r.amount, currency: r.currency, payDate: ms(r.pay_date), updatedAt: ms(r.updated_at)!,
      }));
    },
    // --- end instruments and corporate actions ---

    // --- retention and no-data sessions ---
    async deleteBars({ interval, before }) {
      // One DELETE over the (series_id, ts) key; TimescaleDB included: its chunks hold every
      // interval, so drop_chunks / add_retention_policy would take the daily bars too. The
      // series rows are locked first (as a commit does) and keep their first ts and count exact;
      // an emptied series keeps its row with bars = 0, which listSeries leaves out.
      const cutoff = new Date(before);
      // Rollups keep what retention deletes: first every finished run rolled up, then, with the
      // delete, the cutoff recorded and the bars of buckets it cuts through kept aside.
      await rollUpQueued();
      return sql.begin(async (tx) => {
        const ids = (await tx`SELECT id FROM series WHERE interval = ${interval} AND first_ts < ${cutoff} AND bars > 0 ORDER BY id FOR UPDATE`).map((r) => r.id as number);
        if (ids.length === 0) return 0;
        await rollups.carry(tx, ids, before);
        const counts = await tx`
          WITH d AS (DELETE FROM bars WHERE series_id = ANY(${ids}::int[]) AND ts < ${cutoff} RETURNING series_id)
          SELECT series_id, count(*)::bigint AS n FROM d GROUP BY series_id`;
        await tx`
          UPDATE series SET bars = series.bars - u.n,
            first_ts = coalesce((SELECT min(b.ts) FROM bars b WHERE b.series_id = series.id), series.first_ts)
          FROM unnest(${counts.map((c) => c.series_id)}::int[], ${counts.map((c) => String(c.n))}::bigint[]) AS u(id, n)
          WHERE series.id = u.id`;
        return counts.reduce((t, c) => t + Number(c.n), 0);
      }) as Promise<number>;
    },
    async markNoData(list) {
      if (list.length === 0) return 0;
      const rows = list.map((d) => ({ source: d.source, symbol: d.symbol, interval: d.interval, session: d.session }));
      const r = await sql`INSERT INTO no_data ${sql(rows, "source", "symbol", "interval", "session")} ON CONFLICT DO NOTHING`;
      return r.count;
    },
    async listNoData(opts) {
      const rows = await sql`
        SELECT source, symbol, interval, to_char(session, 'YYYY-MM-DD') AS session, recorded_at FROM no_data
        WHERE (${opts?.source ?? null}::text IS NULL OR source = ${opts?.source ?? null}) ORDER BY source, symbol, interval, session`;
      return rows.map((r) => ({ source: r.source, symbol: r.symbol, interval: r.interval, session: r.session, recordedAt: ms(r.recorded_at)! }));
    },
    // --- end retention and no-data sessions ---

    // --- materialised rollups ---
    rollupPage: (q) => rollups.page(q),
    rollupPending: () => rollups.pending(),
    rollUp: () => catchUp(),
    rollUpInBackground() {
      if (background) return;
      background = true;
      void rollUpQueued();
    },
    // --- end materialised rollups ---

    async close() {
      // A catch-up in progress stops at its next step and rolls back (its run stays queued).
      closing = true;
      await catching?.catch(() => {});
      await sql.end({ timeout: 5 });
    },
  };

  /**
   * The catch-up in progress in this process (one at a time), and whether another was asked for
   * meanwhile: runs queued after it last looked are then worked off by it too.
   */
  let catching: Promise<RollupCounts> | null = null;
  let again = false;
  let closing = false;
  /** Whether this process keeps the rollups in the background (serve): after its runs, and at start. */
  let background = false;

  /** Roll up every queued run: the one in progress, then again for runs queued since it looked. */
  function catchUp(): Promise<RollupCounts> {
    again = true;
    if (catching) return catching;
    const run = (async () => {
      const total: RollupCounts = { runs: 0, failed: 0, written: 0, deleted: 0, appended: 0, recomputed: 0 };
      try {
        while (again && !closing) {
          again = false;
          const c = await rollups.catchUp(() => closing);
          for (const k of Object.keys(total) as (keyof RollupCounts)[]) total[k] += c[k];
        }
      } finally {
        catching = null;
      }
      return total;
    })();
    catching = run;
    return run;
  }

  /**
   * Roll up the runs queued for the materialised rollups, never failing: a failure is logged and
   * the run stays queued for the next catch-up (after the next run this process finishes, or the
   * next start).
   */
  async function rollUpQueued() {
    try {
      const c = await catchUp();
      if (c.runs > 0 || c.failed > 0) log.info("rollups caught up", { runs: c.runs, failed: c.failed, written: c.written, deleted: c.deleted });
    } catch (e) {
      if (!closing) log.warn("rollups not refreshed; their runs stay queued", { error: (e as Error).message });
    }
  }

  async function recoverInterruptedRuns() {
    const interrupted: number[] = [];
    for (const r of await sql`SELECT id, owner FROM runs WHERE outcome = 'running'`) {
      if (ownerGone(String(r.owner), owner)) {
        await sql`UPDATE runs SET outcome = 'interrupted', finished_at = now(), error = 'process ended before the run finished' WHERE id = ${r.id}`;
        interrupted.push(Number(r.id));
      }
    }
    // Their committed bars stay: queued for the rollups like a finished run's.
    await queueRuns(sql, interrupted);
  }

  return store;
}
