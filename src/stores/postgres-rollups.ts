// Materialised rollups in Postgres: for every stored series whose symbol has a known market, its
// bars rolled up into every coarser interval that canRollUp builds from them (1m → 5m … 1mo,
// 1d → 1w and 1mo), in the table `rollups`, keyed by (finer series id, interval, ts). The buckets
// are src/domain/rollup.ts's own (createRoller), computed here in TypeScript: one source of truth
// for the session rules, so /api/bars answers from this table exactly as it would roll up on read.
//
// Incremental: a run that stored bars is queued in `rollup_pending` when it finishes (or is found
// interrupted); its queue entry is worked off in one transaction that finds the run's bars through
// the BRIN index on bars.run_id (within the run's ts range). When they all lie after the newest
// finer bar a series' rollups hold (`rollup_series.upto`: bars arriving in order, the common
// case), their buckets are carried on from the stored rows: a rollup is a left fold in ts order,
// so continuing it from the row gives exactly what a fold from the start gives. Otherwise the ISO
// week and month around each day the run touched (every bucket of a bar there lies inside) are
// rolled up again from their finer bars. Either way only buckets that changed are written, and
// re-running it changes nothing.
// Finer bars outside every regular session are counted per stretch (`rollup_excluded`), so a
// page can say how many it left out, as on read.
//
// Retention (deleteBars) keeps rollups: buckets wholly before a series' cutoff stay as they were
// (a daily history outlives 1m retention); the deleted bars of the buckets the cutoff cuts through
// are kept aside in `rollup_carry` until the cutoff has passed them, so those buckets stay whole.
import type postgres from "postgres";
import { INTERVAL_MS, INTERVALS, type Bar, type Interval } from "../domain/bar.ts";
import type { Market } from "../domain/calendar.ts";
import { bucketOf, bucketSpan, canRollUp, coveringSpan, createRoller, isIntraday, outOfSessionSpan, rollupSources, sessionAt } from "../domain/rollup.ts";
import { marketOf } from "../domain/symbols.ts";
import { log } from "../monitor/log.ts";
import type { BarQuery, RollupPage } from "./types.ts";

type Sql = postgres.Sql<{}>;
type Tx = postgres.TransactionSql<{}>;

/** Finer bars read per query, and rolled-up rows written per statement. */
const READ_CHUNK = 20_000;
const WRITE_CHUNK = 5_000;

type Span = { start: number; end: number };

/** What one pass wrote, and the newest finer bar it read (null: none). */
type Pass = { written: number; deleted: number; newest: number | null };

/** An instant after every bar (9999-12-31). */
const FAR = 253_402_214_400_000;

type RollSeries = {
  id: number;
  source: string;
  symbol: string;
  interval: Interval;
  market: Market;
  targets: Interval[];
  /** Retention's latest cutoff: buckets ending before it are kept as they are. */
  cutoff: number | null;
  /** The newest finer bar the rollups hold (none newer is in them), or null before the first. */
  upto: number | null;
};

/** Runs rolled up; rows written and removed; series carried on from their rows, or rolled up again over weeks and months. */
export type RollupCounts = { runs: number; written: number; deleted: number; appended: number; recomputed: number };
type RunCounts = Omit<RollupCounts, "runs">;

const iso = (t: number) => new Date(t).toISOString();
const epochMs = (col: string) => `(extract(epoch FROM ${col}) * 1000)::float8`;

/** The intervals a series' bars are materialised at. */
export const rollupTargets = (from: Interval) => INTERVALS.filter((t) => canRollUp(from, t));

/** Spans merged where they overlap or touch, in order. */
function merge(spans: Span[]): Span[] {
  const out: Span[] = [];
  for (const s of [...spans].sort((a, b) => a.start - b.start)) {
    const last = out[out.length - 1];
    if (last && s.start <= last.end) last.end = Math.max(last.end, s.end);
    else out.push({ ...s });
  }
  return out;
}

/** The series among `ids` that roll up into something (a known market, a coarser interval). */
async function seriesInfo(tx: Tx, ids: number[]): Promise<RollSeries[]> {
  if (ids.length === 0) return [];
  const rows = await tx.unsafe(
    `SELECT s.id, s.source, s.symbol, s.interval, ${epochMs("c.before")} AS cutoff, ${epochMs("u.upto")} AS upto
     FROM series s LEFT JOIN rollup_cutoffs c ON c.series_id = s.id LEFT JOIN rollup_series u ON u.series_id = s.id
     WHERE s.id = ANY($1::int[]) ORDER BY s.id`,
    [ids],
  );
  const out: RollSeries[] = [];
  for (const r of rows) {
    // Canonical symbols carry their market (PKN.WA, AAPL.US); one without a known suffix has no
    // sessions to roll up along, and is served as stored (as on read).
    const market = marketOf(r.symbol);
    const targets = rollupTargets(r.interval);
    if (market === undefined || targets.length === 0) continue;
    out.push({ id: r.id, source: r.source, symbol: r.symbol, interval: r.interval, market, targets, cutoff: r.cutoff === null ? null : Number(r.cutoff), upto: r.upto === null ? null : Number(r.upto) });
  }
  return out;
}

type Row = { t: number; open: number; high: number; low: number; close: number; volume: number; adj_close: number | null; turnover: number | null; trades: number | null };

const COLS = `${epochMs("ts")} AS t, open, high, low, close, volume, adj_close, turnover, trades::float8 AS trades`;

function toBar(s: RollSeries, r: Row): Bar {
  const bar: Bar = { source: s.source, symbol: s.symbol, interval: s.interval, ts: r.t, open: r.open, high: r.high, low: r.low, close: r.close, volume: r.volume };
  if (r.adj_close !== null) bar.adjClose = r.adj_close;
  if (r.turnover !== null) bar.turnover = r.turnover;
  if (r.trades !== null) bar.trades = r.trades;
  return bar;
}

/**
 * The finer bars of a series in [span.start, span.end) (`after`: after span.start), in ts order:
 * the stored ones, and the ones retention deleted but kept aside (a stored bar wins over a kept
 * one with its ts).
 */
async function* finerBars(tx: Tx, s: RollSeries, span: Span, after = false): AsyncGenerator<Bar[]> {
  let op = after ? ">" : ">=";
  const carry: Row[] =
    s.cutoff === null
      ? []
      : ((await tx.unsafe(`SELECT ${COLS} FROM rollup_carry WHERE series_id = $1 AND ts ${op} $2 AND ts < $3 ORDER BY ts`, [s.id, iso(span.start), iso(span.end)])) as unknown as Row[]);
  let c = 0;
  let from = iso(span.start);
  for (;;) {
    const rows = (await tx.unsafe(`SELECT ${COLS} FROM bars WHERE series_id = $1 AND ts ${op} $2 AND ts < $3 ORDER BY ts LIMIT ${READ_CHUNK}`, [s.id, from, iso(span.end)])) as unknown as Row[];
    const out: Bar[] = [];
    for (const r of rows) {
      while (c < carry.length && carry[c]!.t <= r.t) {
        if (carry[c]!.t < r.t) out.push(toBar(s, carry[c]!));
        c++;
      }
      out.push(toBar(s, r));
    }
    const done = rows.length < READ_CHUNK;
    if (done) while (c < carry.length) out.push(toBar(s, carry[c++]!));
    if (out.length) yield out;
    if (done) return;
    from = iso(rows[rows.length - 1]!.t);
    op = ">";
  }
}

type Built = { bar: Bar; bars: number; last: number };

/** Write rolled-up bars of one series and interval; only rows that differ are rewritten. */
async function writeRollups(tx: Tx, seriesId: number, interval: Interval, rows: Built[], runId: number | null, keepExisting: boolean): Promise<number> {
  let n = 0;
  for (let i = 0; i < rows.length; i += WRITE_CHUNK) {
    const part = rows.slice(i, i + WRITE_CHUNK);
    const col = <T>(f: (b: Built) => T) => part.map(f);
    const values = [
      col((b) => iso(b.bar.ts)),
      col((b) => b.bar.open),
      col((b) => b.bar.high),
      col((b) => b.bar.low),
      col((b) => b.bar.close),
      col((b) => b.bar.volume),
      col((b) => b.bar.adjClose ?? null),
      col((b) => b.bar.turnover ?? null),
      col((b) => (b.bar.trades == null ? null : String(Math.round(b.bar.trades)))),
      col((b) => b.bars),
      col((b) => iso(b.last)),
    ];
    // Buckets wholly before a retention cutoff keep what they were built from, when they have a row.
    const onConflict = keepExisting
      ? `DO NOTHING`
      : `DO UPDATE SET open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close, volume = excluded.volume,
           adj_close = excluded.adj_close, turnover = excluded.turnover, trades = excluded.trades, bars = excluded.bars, last_ts = excluded.last_ts,
           run_id = excluded.run_id, updated_at = now()
         WHERE (rollups.open, rollups.high, rollups.low, rollups.close, rollups.volume, rollups.adj_close, rollups.turnover, rollups.trades, rollups.bars, rollups.last_ts)
           IS DISTINCT FROM (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume, excluded.adj_close, excluded.turnover, excluded.trades, excluded.bars, excluded.last_ts)`;
    const r = await tx.unsafe(
      `INSERT INTO rollups (series_id, interval, ts, open, high, low, close, volume, adj_close, turnover, trades, bars, last_ts, run_id)
       SELECT $1::int, $2::text, u.*, $14::bigint
       FROM unnest($3::timestamptz[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::bigint[], $12::int[], $13::timestamptz[])
         AS u(ts, open, high, low, close, volume, adj_close, turnover, trades, bars, last_ts)
       ON CONFLICT (series_id, interval, ts) ${onConflict}`,
      [seriesId, interval, ...values, runId] as never[],
    );
    n += r.count;
  }
  return n;
}

/**
 * Roll a series' finer bars in `window` (whole weeks and months) up again: every bucket lying
 * wholly inside is written when it changed, removed when it has no finer bar any more; the same
 * for its stretches of bars outside the sessions. Buckets and stretches wholly before the series'
 * retention cutoff are only added, never changed.
 */
async function recompute(tx: Tx, s: RollSeries, window: Span, runId: number | null): Promise<Pass> {
  const rollers = s.targets.map((t) => ({ t, roller: createRoller(s.interval, t, s.market), built: [] as Built[], frozen: [] as Built[], seen: new Set<number>() }));
  const stretches = new Map<number, { end: number; n: number }>();
  const intraday = isIntraday(s.interval);
  const frozen = (end: number) => s.cutoff !== null && end <= s.cutoff;
  let written = 0;
  let deleted = 0;
  let newest: number | null = null;
  const take = async (watermark: number) => {
    for (const r of rollers) {
      for (const d of r.roller.drainCounted(watermark)) {
        const span = bucketSpan(d.bar.ts, s.interval, r.t, s.market);
        // Partial buckets at the window's edges are not this pass's to write.
        if (span.start < window.start || span.end > window.end) continue;
        r.seen.add(d.bar.ts);
        (frozen(span.end) ? r.frozen : r.built).push(d);
      }
      if (r.built.length >= WRITE_CHUNK) written += await writeRollups(tx, s.id, r.t, r.built.splice(0), runId, false);
      if (r.frozen.length >= WRITE_CHUNK) written += await writeRollups(tx, s.id, r.t, r.frozen.splice(0), runId, true);
    }
  };
  for await (const chunk of finerBars(tx, s, window)) {
    for (const b of chunk) if (!leftOut(s, b, stretches)) for (const r of rollers) r.roller.push(b);
    newest = chunk[chunk.length - 1]!.ts;
    await take(newest);
  }
  await take(Infinity);
  for (const r of rollers) {
    written += await writeRollups(tx, s.id, r.t, r.built, runId, false);
    written += await writeRollups(tx, s.id, r.t, r.frozen, runId, true);
    // Rows of buckets that have no finer bar any more (in this window, after the cutoff).
    const stale: string[] = [];
    for (const row of await tx.unsafe(`SELECT ${epochMs("ts")} AS t FROM rollups WHERE series_id = $1 AND interval = $2 AND ts >= $3 AND ts < $4`, [s.id, r.t, iso(window.start), iso(window.end)])) {
      const t = Number(row.t);
      if (r.seen.has(t)) continue;
      let span: Span | null = null;
      try {
        span = bucketSpan(t, s.interval, r.t, s.market);
      } catch {
        // a ts no session holds any more: not a bucket at all
      }
      if (span && (span.start < window.start || span.end > window.end || frozen(span.end))) continue;
      stale.push(iso(t));
    }
    if (stale.length) deleted += (await tx.unsafe(`DELETE FROM rollups WHERE series_id = $1 AND interval = $2 AND ts = ANY($3::timestamptz[])`, [s.id, r.t, stale])).count;
  }
  if (intraday) {
    const list = [...stretches].filter(([, v]) => !frozen(v.end));
    const kept = [...stretches].filter(([, v]) => frozen(v.end));
    for (const [rows, conflict] of [
      [list, `DO UPDATE SET end_ts = excluded.end_ts, bars = excluded.bars, run_id = excluded.run_id WHERE (rollup_excluded.end_ts, rollup_excluded.bars) IS DISTINCT FROM (excluded.end_ts, excluded.bars)`],
      [kept, `DO NOTHING`],
    ] as const) {
      if (rows.length === 0) continue;
      const r = await tx.unsafe(
        `INSERT INTO rollup_excluded (series_id, start_ts, end_ts, bars, run_id)
         SELECT $1::int, u.*, $5::bigint FROM unnest($2::timestamptz[], $3::timestamptz[], $4::int[]) AS u(start_ts, end_ts, bars)
         ON CONFLICT (series_id, start_ts) ${conflict}`,
        [s.id, rows.map(([k]) => iso(k)), rows.map(([, v]) => iso(v.end)), rows.map(([, v]) => v.n), runId] as never[],
      );
      written += r.count;
    }
    const gone = await tx.unsafe(
      `DELETE FROM rollup_excluded WHERE series_id = $1 AND start_ts >= $2 AND end_ts <= $3 AND NOT (start_ts = ANY($4::timestamptz[]))
         AND ($5::timestamptz IS NULL OR end_ts > $5::timestamptz)`,
      [s.id, iso(window.start), iso(window.end), [...stretches.keys()].map(iso), s.cutoff === null ? null : iso(s.cutoff)] as never[],
    );
    deleted += gone.count;
  }
  return { written, deleted, newest };
}

/** Count a finer bar outside every regular session in its stretch; true when it is one. */
function leftOut(s: RollSeries, b: Bar, stretches: Map<number, { end: number; n: number }>): boolean {
  if (!isIntraday(s.interval) || sessionAt(s.market, b.ts, INTERVAL_MS[s.interval]) !== null) return false;
  const st = outOfSessionSpan(s.market, b.ts);
  const cur = stretches.get(st.start);
  if (cur) cur.n++;
  else stretches.set(st.start, { end: st.end, n: 1 });
  return true;
}

/**
 * Carry a series' rollups on with its finer bars after `upto`, which are newer than any bar they
 * hold: each interval's newest row starts its roller (as a bar standing for the bars it holds,
 * at the ts of its last one), and the new bars fold onto it exactly as they would onto those bars.
 */
async function append(tx: Tx, s: RollSeries, runId: number): Promise<Pass> {
  const latest = await tx.unsafe(
    `SELECT r.interval, ${epochMs("r.last_ts")} AS last, r.bars, r.open, r.high, r.low, r.close, r.volume, r.adj_close, r.turnover, r.trades::float8 AS trades
     FROM unnest($2::text[]) AS t(interval) CROSS JOIN LATERAL (SELECT * FROM rollups r WHERE r.series_id = $1 AND r.interval = t.interval ORDER BY r.ts DESC LIMIT 1) r`,
    [s.id, s.targets] as never[],
  );
  const rollers = s.targets.map((t) => {
    const roller = createRoller(s.interval, t, s.market);
    const row = latest.find((r) => r.interval === t);
    if (row)
      roller.push({
        source: s.source, symbol: s.symbol, interval: s.interval, ts: Number(row.last), open: row.open, high: row.high, low: row.low, close: row.close,
        volume: row.volume, adjClose: row.adj_close, turnover: row.turnover, trades: row.trades,
      });
    return { t, roller, seed: row ? { last: Number(row.last), bars: Number(row.bars) } : null, built: [] as Built[] };
  });
  const stretches = new Map<number, { end: number; n: number }>();
  let written = 0;
  let newest: number | null = null;
  const take = async (watermark: number) => {
    for (const r of rollers) {
      for (const d of r.roller.drainCounted(watermark)) {
        // The seed counted once; it stands for the row's bars.
        if (r.seed && bucketOfLast(s, r.t, r.seed.last) === d.bar.ts) r.built.push({ ...d, bars: d.bars - 1 + r.seed.bars });
        else r.built.push(d);
      }
      if (r.built.length >= WRITE_CHUNK || watermark === Infinity) written += await writeRollups(tx, s.id, r.t, r.built.splice(0), runId, false);
    }
  };
  for await (const chunk of finerBars(tx, s, { start: s.upto!, end: FAR }, true)) {
    for (const b of chunk) if (!leftOut(s, b, stretches)) for (const r of rollers) r.roller.push(b);
    newest = chunk[chunk.length - 1]!.ts;
    await take(newest);
  }
  await take(Infinity);
  if (stretches.size > 0) {
    const rows = [...stretches];
    const r = await tx.unsafe(
      `INSERT INTO rollup_excluded (series_id, start_ts, end_ts, bars, run_id)
       SELECT $1::int, u.*, $5::bigint FROM unnest($2::timestamptz[], $3::timestamptz[], $4::int[]) AS u(start_ts, end_ts, bars)
       ON CONFLICT (series_id, start_ts) DO UPDATE SET bars = rollup_excluded.bars + excluded.bars, run_id = excluded.run_id`,
      [s.id, rows.map(([k]) => iso(k)), rows.map(([, v]) => iso(v.end)), rows.map(([, v]) => v.n), runId] as never[],
    );
    written += r.count;
  }
  return { written, deleted: 0, newest };
}

const bucketOfLast = (s: RollSeries, to: Interval, last: number) => bucketOf(last, s.interval, to, s.market)?.ts;

/** Record the newest finer bar a series' rollups now hold. */
async function advance(tx: Tx, seriesId: number, newest: number | null): Promise<void> {
  if (newest === null) return;
  await tx`
    INSERT INTO rollup_series (series_id, upto) VALUES (${seriesId}, ${iso(newest)}::timestamptz)
    ON CONFLICT (series_id) DO UPDATE SET upto = greatest(rollup_series.upto, excluded.upto)`;
}

/** Every rolled-up interval of every series, built from scratch (migration 8, and tests). */
export async function rebuildRollups(tx: Tx): Promise<{ written: number; deleted: number }> {
  const ids = (await tx`SELECT id FROM series WHERE bars > 0 ORDER BY id`).map((r) => r.id as number);
  let written = 0;
  let deleted = 0;
  for (const s of await seriesInfo(tx, ids)) {
    const [r] = await tx.unsafe(`SELECT ${epochMs("min(ts)")} AS lo, ${epochMs("max(ts)")} AS hi FROM bars WHERE series_id = $1`, [s.id]);
    if (r?.lo == null) continue;
    const window = merge([coveringSpan(Number(r.lo), s.interval, s.market), coveringSpan(Number(r.hi), s.interval, s.market)]);
    const c = await recompute(tx, s, { start: window[0]!.start, end: window[window.length - 1]!.end }, null);
    await advance(tx, s.id, c.newest);
    written += c.written;
    deleted += c.deleted;
  }
  return { written, deleted };
}

/**
 * Queue a finishing run's bars for the rollups (before the run is marked finished, so a crash in
 * between leaves it queued), with the ts range its batches recorded and the summary's.
 */
export async function queueRun(sql: Sql, runId: number, summary: { fromTs: number | null; toTs: number | null }): Promise<void> {
  const f = summary.fromTs === null ? null : iso(summary.fromTs);
  const t = summary.toTs === null ? null : iso(summary.toTs);
  await sql`
    INSERT INTO rollup_pending (run_id, from_ts, to_ts)
    SELECT id, least(from_ts, ${f}::timestamptz), greatest(to_ts, ${t}::timestamptz) FROM runs
    WHERE id = ${runId} AND coalesce(from_ts, ${f}::timestamptz) IS NOT NULL
    ON CONFLICT (run_id) DO UPDATE SET from_ts = least(rollup_pending.from_ts, excluded.from_ts), to_ts = greatest(rollup_pending.to_ts, excluded.to_ts)`;
}

/** Queue runs found interrupted (their committed bars stay). */
export async function queueRuns(sql: Sql, runIds: number[]): Promise<void> {
  if (runIds.length === 0) return;
  await sql`
    INSERT INTO rollup_pending (run_id, from_ts, to_ts)
    SELECT id, from_ts, to_ts FROM runs WHERE id = ANY(${runIds}::bigint[]) AND from_ts IS NOT NULL
    ON CONFLICT (run_id) DO UPDATE SET from_ts = least(rollup_pending.from_ts, excluded.from_ts), to_ts = greatest(rollup_pending.to_ts, excluded.to_ts)`;
}

export function pgRollups(sql: Sql, schema: string) {
  const lockKey = `${schema}.ticksync.rollups`;
  const lock = (tx: Tx) => tx`SELECT pg_advisory_xact_lock(hashtext(${lockKey}))`;

  /** One queued run: its touched buckets recomputed and its queue entry removed, in one transaction. */
  async function rollUpRun(runId: number): Promise<RunCounts | null> {
    return (await sql.begin(async (tx) => {
      await lock(tx);
      const [p] = await tx`SELECT from_ts, to_ts FROM rollup_pending WHERE run_id = ${runId}`;
      if (!p) return null; // another process did it
      // Per series and UTC day the run wrote: the first and last ts (a day is at most two local dates).
      const groups = await tx.unsafe(
        `SELECT series_id, ${epochMs("min(ts)")} AS lo, ${epochMs("max(ts)")} AS hi FROM bars
         WHERE run_id = $1 AND ts >= $2 AND ts <= $3 GROUP BY series_id, date_trunc('day', ts AT TIME ZONE 'UTC')`,
        [runId, p.from_ts, p.to_ts],
      );
      const bySeries = new Map<number, number[]>();
      for (const g of groups) {
        const list = bySeries.get(g.series_id) ?? [];
        list.push(Number(g.lo), Number(g.hi));
        bySeries.set(g.series_id, list);
      }
      const n: RunCounts = { written: 0, deleted: 0, appended: 0, recomputed: 0 };
      for (const s of await seriesInfo(tx, [...bySeries.keys()])) {
        const touched = bySeries.get(s.id)!;
        const first = Math.min(...touched);
        // Bars after everything rolled up (and after any retention cutoff): carried on from the rows.
        const carryOn = s.upto !== null && first > s.upto && (s.cutoff === null || s.upto >= s.cutoff);
        n[carryOn ? "appended" : "recomputed"]++;
        const passes = carryOn
            ? [await append(tx, s, runId)]
            : await (async () => {
                const out: Pass[] = [];
                for (const w of merge(touched.map((t) => coveringSpan(t, s.interval, s.market)))) out.push(await recompute(tx, s, w, runId));
                return out;
              })();
        for (const c of passes) {
          await advance(tx, s.id, c.newest);
          n.written += c.written;
          n.deleted += c.deleted;
        }
      }
      await tx`DELETE FROM rollup_pending WHERE run_id = ${runId}`;
      return n;
    })) as RunCounts | null;
  }

  return {
    rollUpRun,

    /** Work off every queued run, oldest first; a failure is logged and left queued for the next pass. */
    async catchUp(): Promise<RollupCounts> {
      const total: RollupCounts = { runs: 0, written: 0, deleted: 0, appended: 0, recomputed: 0 };
      for (const r of await sql`SELECT run_id FROM rollup_pending ORDER BY run_id`) {
        const run = Number(r.run_id);
        try {
          const c = await rollUpRun(run);
          if (c === null) continue;
          total.runs++;
          for (const k of ["written", "deleted", "appended", "recomputed"] as const) total[k] += c[k];
        } catch (e) {
          log.warn("rollup of a run failed; it stays queued", { run, error: (e as Error).message });
        }
      }
      return total;
    },

    async pending(): Promise<number> {
      const [r] = await sql`SELECT count(*)::int AS n FROM rollup_pending`;
      return r!.n as number;
    },

    /**
     * Before retention deletes `interval` bars older than `before` from these (locked) series:
     * record the cutoff, and keep aside the deleted bars of buckets the cutoff cuts through
     * (from the week and month around it); what was kept aside before them is dropped, their
     * buckets now lying wholly before the cutoff.
     */
    async carry(tx: Tx, seriesIds: number[], before: number): Promise<void> {
      await lock(tx);
      const list = await seriesInfo(tx, seriesIds);
      if (list.length === 0) return;
      const ids = list.map((s) => s.id);
      const cut = list.map((s) => Math.max(s.cutoff ?? -Infinity, before));
      const from = list.map((s, i) => iso(coveringSpan(cut[i]!, s.interval, s.market).start));
      await tx`
        INSERT INTO rollup_carry (series_id, ts, open, high, low, close, volume, adj_close, turnover, trades)
        SELECT b.series_id, b.ts, b.open, b.high, b.low, b.close, b.volume, b.adj_close, b.turnover, b.trades
        FROM unnest(${ids}::int[], ${from}::timestamptz[]) AS u(id, lo) JOIN bars b ON b.series_id = u.id AND b.ts >= u.lo AND b.ts < ${iso(before)}::timestamptz
        ON CONFLICT (series_id, ts) DO UPDATE SET open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
          volume = excluded.volume, adj_close = excluded.adj_close, turnover = excluded.turnover, trades = excluded.trades`;
      await tx`DELETE FROM rollup_carry c USING unnest(${ids}::int[], ${from}::timestamptz[]) AS u(id, lo) WHERE c.series_id = u.id AND c.ts < u.lo`;
      await tx`
        INSERT INTO rollup_cutoffs (series_id, before) SELECT * FROM unnest(${ids}::int[], ${cut.map(iso)}::timestamptz[])
        ON CONFLICT (series_id) DO UPDATE SET before = greatest(rollup_cutoffs.before, excluded.before)`;
    },

    /**
     * A page of `q.interval` bars from the rollups, or null when they are not what /api/bars
     * would roll up (bars stored at the interval, nothing finer, no known market) or not up to
     * date (a finer bar of a run still running or queued): the caller then rolls up on read.
     * The base is the coarsest finer interval with bars, as on read; when retention has emptied
     * every finer series, the coarsest one it left rollups of.
     */
    async page(q: BarQuery): Promise<RollupPage | null> {
      const market = marketOf(q.symbol);
      if (market === undefined) return null;
      const source = q.source ?? null;
      const series = await sql`
        SELECT s.id, s.interval, s.bars, c.series_id IS NOT NULL AS cut FROM series s LEFT JOIN rollup_cutoffs c ON c.series_id = s.id
        WHERE s.symbol = ${q.symbol} AND (${source}::text IS NULL OR s.source = ${source})`;
      if (series.some((s) => s.interval === q.interval && Number(s.bars) > 0)) return null;
      const finer = rollupSources(q.interval);
      const base = finer.find((i) => series.some((s) => s.interval === i && Number(s.bars) > 0)) ?? finer.find((i) => series.some((s) => s.interval === i && s.cut));
      if (base === undefined) return null;
      const ids = series.filter((s) => s.interval === base).map((s) => s.id as number);
      const [busy] = await sql`
        SELECT 1 AS busy FROM (
          SELECT run_id AS id, from_ts, to_ts FROM rollup_pending
          UNION ALL SELECT id, from_ts, to_ts FROM runs WHERE outcome = 'running' AND from_ts IS NOT NULL
        ) r
        WHERE EXISTS (SELECT 1 FROM bars b WHERE b.run_id = r.id AND b.series_id = ANY(${ids}::int[]) AND b.ts >= r.from_ts AND b.ts <= r.to_ts)
        LIMIT 1`;
      if (busy) return null;
      const after = q.after ? sql`AND r.ts >= ${iso(q.after.ts)}::timestamptz AND (r.ts > ${iso(q.after.ts)}::timestamptz OR s.source > ${q.after.source})` : sql``;
      const rows = await sql`
        SELECT s.source, s.symbol, r.interval, (extract(epoch FROM r.ts) * 1000)::float8 AS t, r.open, r.high, r.low, r.close, r.volume, r.adj_close, r.turnover, r.trades::float8 AS trades
        FROM series s CROSS JOIN LATERAL (
          SELECT * FROM rollups r WHERE r.series_id = s.id AND r.interval = ${q.interval}
            AND r.ts >= ${iso(q.from ?? -8.64e12)}::timestamptz AND r.ts <= ${iso(q.to ?? 8.64e12)}::timestamptz ${after}
          ORDER BY r.ts LIMIT ${q.limit + 1}
        ) r
        WHERE s.id = ANY(${ids}::int[])
        ORDER BY r.ts, s.source LIMIT ${q.limit + 1}`;
      // Shaped as createRoller's bars are (missing values null), so the two paths' pages are equal.
      const bars = rows.slice(0, q.limit).map(
        (r): Bar => ({
          source: r.source, symbol: r.symbol, interval: r.interval, ts: Number(r.t), open: r.open, high: r.high, low: r.low, close: r.close, volume: r.volume,
          adjClose: r.adj_close, turnover: r.turnover, trades: r.trades === null ? null : Number(r.trades),
        }),
      );
      let excluded = 0;
      if (bars.length > 0 && isIntraday(base)) {
        const lo = bucketSpan(bars[0]!.ts, base, q.interval, market).start;
        const hi = bucketSpan(bars[bars.length - 1]!.ts, base, q.interval, market).end;
        const [e] = await sql`
          SELECT coalesce(sum(bars), 0)::int AS n FROM rollup_excluded
          WHERE series_id = ANY(${ids}::int[]) AND start_ts >= ${iso(lo)}::timestamptz AND end_ts <= ${iso(hi)}::timestamptz`;
        excluded = e!.n as number;
      }
      return { from: base, bars, more: rows.length > q.limit, excluded };
    },
  };
}
