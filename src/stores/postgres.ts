// PostgreSQL (and TimescaleDB when its extension is there) through postgres.js. Bars are
// COPYed into a temporary staging table and upserted from there in one statement, so a batch
// is one round of the fastest load path Postgres has and re-loading it is idempotent. The
// checkpoint, the quarantine and the run's counters commit in the same transaction.
import postgres from "postgres";
import { newOwner, ownerGone, readiness } from "./common.ts";
import type { Bar, Interval } from "../domain/bar.ts";
import type {
  BarQuery,
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
} from "./types.ts";

type Sql = postgres.Sql<{}>;
type Tx = postgres.TransactionSql<{}>;
type Migration = { version: number; name: string; up: (sql: Tx, opts: { timescale: boolean }) => Promise<unknown> };

const PG_MIGRATIONS: Migration[] = [
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
];
export const PG_SCHEMA_VERSION = PG_MIGRATIONS[PG_MIGRATIONS.length - 1]!.version;

/** `?schema=name` picks the schema (default public); it is ours, not a libpq option. */
export function parsePgUrl(url: string): { url: string; schema: string } {
  const u = new URL(url.replace(/^postgresql:/, "postgres:"));
  const schema = u.searchParams.get("schema") ?? "public";
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`schema ${JSON.stringify(schema)} must be a lower-case SQL identifier`);
  u.searchParams.delete("schema");
  return { url: u.toString(), schema };
}

export function redactPgUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]*@/, "$1***@");
}

const INTRADAY = new Set(["1m", "5m", "15m", "1h"]);

/** Values in COPY's text format: \N for null, backslash escapes only where a string needs them. */
const COPY_SPECIAL = /[\\\t\n\r]/;
function copyText(v: string): string {
  return COPY_SPECIAL.test(v) ? v.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r") : v;
}
function copyNumber(v: number | null | undefined): string {
  return typeof v === "number" && Number.isFinite(v) ? String(v) : "\\N";
}


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
  let timescale = false;
  const partitions = new Set<number>();
  // Runs that wrote intraday bars; their rollup is refreshed when they finish (TimescaleDB's
  // continuous aggregate refreshes itself).
  const intradayRuns = new Set<number>();

  async function ensurePartitions(tx: Tx, bars: Bar[]) {
    if (timescale) return;
    let lo = Infinity;
    let hi = -Infinity;
    for (const b of bars) (lo = b.ts < lo ? b.ts : lo), (hi = b.ts > hi ? b.ts : hi);
    for (let y = new Date(lo).getUTCFullYear(); y <= new Date(hi).getUTCFullYear(); y++) {
      if (partitions.has(y)) continue;
      const name = `bars_y${y}`;
      await tx.unsafe(`CREATE TABLE IF NOT EXISTS "${schema}".${name} PARTITION OF "${schema}".bars FOR VALUES FROM ('${y}-01-01 00:00:00+00') TO ('${y + 1}-01-01 00:00:00+00')`);
      partitions.add(y);
    }
  }

  async function schemaVersion(): Promise<number> {
    const [r] = await sql`SELECT to_regclass(${schema + ".schema_migrations"}) AS t`;
    if (!r?.t) return 0;
    const [v] = await sql`SELECT coalesce(max(version), 0) AS v FROM schema_migrations`;
    return Number(v!.v);
  }

  const store: Store = {
    kind: "postgres",
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
      return { applied, version: await schemaVersion() };
    },

    ready: () => readiness(schemaVersion, PG_SCHEMA_VERSION),

    async commitBatch(b: CommitBatch): Promise<CommitResult> {
      return sql.begin(async (tx) => {
        let inserted = 0;
        let updated = 0;
        let unchanged = 0;
        if (b.bars.length > 0) {
          await ensurePartitions(tx, b.bars);
          if (!timescale && b.bars.some((bar) => INTRADAY.has(bar.interval))) intradayRuns.add(b.runId);
          // ts is staged as epoch milliseconds: formatting dates costs more than the server's cast.
          await tx`CREATE TEMP TABLE IF NOT EXISTS bars_stage (
              symbol text, interval text, ts_ms bigint, source text, open float8, high float8, low float8, close float8,
              volume float8, adj_close float8, turnover float8, trades bigint, run_id bigint) ON COMMIT DELETE ROWS`;
          const stream = await tx`COPY bars_stage (symbol, interval, ts_ms, source, open, high, low, close, volume, adj_close, turnover, trades, run_id) FROM STDIN`.writable();
          const lines: string[] = new Array(b.bars.length);
          const run = String(b.runId);
          for (let i = 0; i < b.bars.length; i++) {
            const bar = b.bars[i]!;
            lines[i] =
              `${copyText(bar.symbol)}\t${copyText(bar.interval)}\t${bar.ts}\t${copyText(bar.source)}\t${copyNumber(bar.open)}\t${copyNumber(bar.high)}\t` +
              `${copyNumber(bar.low)}\t${copyNumber(bar.close)}\t${copyNumber(bar.volume)}\t${copyNumber(bar.adjClose)}\t${copyNumber(bar.turnover)}\t${copyNumber(bar.trades)}\t${run}`;
          }
          await new Promise<void>((resolve, reject) => {
            stream.on("error", reject);
            stream.write(lines.join("\n") + "\n");
            stream.end(() => resolve());
          });
          // New keys go in (and feed the series table) in one statement; only when some keys
          // already existed does a second statement update the rows whose values changed, so
          // an identical re-delivery writes nothing and a fresh load pays for one pass.
          const [r] = await tx`
            WITH ins AS (
              INSERT INTO bars (symbol, interval, ts, source, open, high, low, close, volume, adj_close, turnover, trades, run_id)
              SELECT symbol, interval, to_timestamp(ts_ms / 1000.0), source, open, high, low, close, volume, adj_close, turnover, trades, run_id FROM bars_stage
              ON CONFLICT (symbol, interval, ts, source) DO NOTHING
              RETURNING symbol, interval, ts, source
            ),
            s AS (
              INSERT INTO series (source, symbol, interval, first_ts, last_ts, bars)
              SELECT source, symbol, interval, min(ts), max(ts), count(*) FROM ins GROUP BY source, symbol, interval
              ON CONFLICT (source, symbol, interval) DO UPDATE SET
                first_ts = least(series.first_ts, excluded.first_ts), last_ts = greatest(series.last_ts, excluded.last_ts),
                bars = series.bars + excluded.bars
            )
            SELECT count(*)::int AS inserted FROM ins`;
          inserted = r!.inserted;
          if (inserted < b.bars.length) {
            const res = await tx`
              UPDATE bars SET open = s.open, high = s.high, low = s.low, close = s.close, volume = s.volume,
                adj_close = s.adj_close, turnover = s.turnover, trades = s.trades, run_id = s.run_id, updated_at = now()
              FROM bars_stage s
              WHERE bars.symbol = s.symbol AND bars.interval = s.interval AND bars.ts = to_timestamp(s.ts_ms / 1000.0) AND bars.source = s.source
                AND (bars.open, bars.high, bars.low, bars.close, bars.volume, bars.adj_close, bars.turnover, bars.trades)
                  IS DISTINCT FROM (s.open, s.high, s.low, s.close, s.volume, s.adj_close, s.turnover, s.trades)`;
            updated = res.count;
          }
          unchanged = b.bars.length - inserted - updated;
        }
        let quarantined = 0;
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
          const res = await tx`
            INSERT INTO quarantine ${tx(rows, "run_id", "source", "locator", "rule", "reason", "symbol", "ts", "raw")}
            ON CONFLICT (source, locator) DO UPDATE SET run_id = excluded.run_id, rule = excluded.rule, reason = excluded.reason,
              symbol = excluded.symbol, ts = excluded.ts, raw = excluded.raw
            WHERE quarantine.rule IS DISTINCT FROM excluded.rule OR quarantine.raw IS DISTINCT FROM excluded.raw`;
          quarantined = res.count;
        }
        let minTs: number | null = null;
        let maxTs: number | null = null;
        for (const bar of b.bars) {
          if (minTs === null || bar.ts < minTs) minTs = bar.ts;
          if (maxTs === null || bar.ts > maxTs) maxTs = bar.ts;
        }
        await tx`
          UPDATE runs SET read = read + ${b.read}, inserted = inserted + ${inserted}, updated = updated + ${updated},
            unchanged = unchanged + ${unchanged}, quarantined = quarantined + ${b.quarantine.length},
            from_ts = CASE WHEN ${minTs === null ? null : new Date(minTs)}::timestamptz IS NULL THEN from_ts ELSE least(from_ts, ${minTs === null ? null : new Date(minTs)}::timestamptz) END,
            to_ts = CASE WHEN ${maxTs === null ? null : new Date(maxTs)}::timestamptz IS NULL THEN to_ts ELSE greatest(to_ts, ${maxTs === null ? null : new Date(maxTs)}::timestamptz) END
          WHERE id = ${b.runId}`;
        if (b.checkpoint) {
          const c = b.checkpoint;
          await tx`
            INSERT INTO checkpoints (stream, cursor, last_ts, last_key, run_id, updated_at)
            VALUES (${c.stream}, ${tx.json(c.cursor)}, ${c.lastTs === null ? null : new Date(c.lastTs)}, ${c.lastKey}, ${b.runId}, now())
            ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor, last_ts = excluded.last_ts, last_key = excluded.last_key,
              run_id = excluded.run_id, updated_at = excluded.updated_at`;
        }
        return { inserted, updated, unchanged, quarantined };
      }) as Promise<CommitResult>;
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
      await sql`
        UPDATE runs SET finished_at = now(), duration_ms = (extract(epoch FROM now() - started_at) * 1000)::bigint, outcome = ${s.outcome},
          read = ${s.read}, inserted = ${s.inserted}, updated = ${s.updated}, unchanged = ${s.unchanged}, quarantined = ${s.quarantined},
          from_ts = ${s.fromTs === null ? null : new Date(s.fromTs)}, to_ts = ${s.toTs === null ? null : new Date(s.toTs)},
          quality = ${s.quality ? sql.json(s.quality as unknown as postgres.JSONValue) : null}, error = ${s.error ?? null},
          failures = ${s.failures ? sql.json(s.failures) : null}
        WHERE id = ${id}`;
      if (intradayRuns.delete(id)) await refreshRollups();
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
      const rows = await sql`SELECT * FROM series WHERE (${opts?.symbol ?? null}::text IS NULL OR symbol = ${opts?.symbol ?? null}) ORDER BY symbol, interval, source`;
      return rows.map((r): SeriesInfo => ({ source: r.source, symbol: r.symbol, interval: r.interval, firstTs: ms(r.first_ts)!, lastTs: ms(r.last_ts)!, bars: Number(r.bars) }));
    },

    async queryBars(q: BarQuery) {
      const from = new Date(q.from ?? -8.64e15 / 1000);
      const to = new Date(q.to ?? 8.64e15 / 1000);
      const rows = q.after
        ? await sql`
            SELECT * FROM bars WHERE symbol = ${q.symbol} AND interval = ${q.interval} AND (${q.source ?? null}::text IS NULL OR source = ${q.source ?? null})
              AND ts >= ${from} AND ts <= ${to} AND (ts, source) > (${new Date(q.after.ts)}, ${q.after.source})
            ORDER BY ts, source LIMIT ${q.limit}`
        : await sql`
            SELECT * FROM bars WHERE symbol = ${q.symbol} AND interval = ${q.interval} AND (${q.source ?? null}::text IS NULL OR source = ${q.source ?? null})
              AND ts >= ${from} AND ts <= ${to}
            ORDER BY ts, source LIMIT ${q.limit}`;
      return rows.map(rowToBar);
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

    async close() {
      await sql.end({ timeout: 5 });
    },
  };

  /** Rebuild the plain materialised daily rollup (without TimescaleDB). */
  async function refreshRollups() {
    const [v] = await sql`SELECT ispopulated FROM pg_matviews WHERE schemaname = ${schema} AND matviewname = 'bars_1d_from_intraday'`;
    if (!v) return;
    // CONCURRENTLY keeps it readable during the refresh, once it has been filled the first time.
    if (v.ispopulated) await sql`REFRESH MATERIALIZED VIEW CONCURRENTLY bars_1d_from_intraday`;
    else await sql`REFRESH MATERIALIZED VIEW bars_1d_from_intraday`;
  }

  async function recoverInterruptedRuns() {
    for (const r of await sql`SELECT id, owner FROM runs WHERE outcome = 'running'`) {
      if (ownerGone(String(r.owner), owner))
        await sql`UPDATE runs SET outcome = 'interrupted', finished_at = now(), error = 'process ended before the run finished' WHERE id = ${r.id}`;
    }
  }

  return store;
}
