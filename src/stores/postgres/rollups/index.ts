// Materialised rollups in Postgres: for every stored series whose symbol has a known market, its
// bars rolled up into every coarser interval that canRollUp builds from them (1m → 5m … 1mo,
// 1d → 1w and 1mo), in the table `rollups`, keyed by (finer series id, interval, ts). The buckets
// are src/domain/rollup.ts's own, so /api/bars answers from this table exactly as it would roll up
// on read: intraday series are rolled up by createRoller itself; daily series (into ISO weeks and
// months, the bulk of a daily load) many at a time without an object per bar, by a fold that is
// createRoller's step for step on bucketOf's buckets (see recomputeDaily).
//
// Incremental: a run that stored bars is queued in `rollup_pending` when it finishes (or is found
// interrupted), and worked off later, in the background of the long-running service (or by
// `ticksync rollups`), one run per transaction; `run_series` says which series the run wrote and
// the ts range, and its bars are read through the (series_id, ts) key. When an intraday series'
// bars all lie after the newest finer bar its rollups hold (`rollup_series.upto`: bars arriving
// in order, the common case), its buckets are carried on from the stored rows: a rollup is a left
// fold in ts order, so continuing it from the row gives exactly what a fold from the start gives.
// Otherwise the ISO week and month around each day the run touched (every bucket of a bar there
// lies inside) are rolled up again from their finer bars. Either way only buckets that changed
// are written, and re-running it changes nothing.
// Finer bars outside every regular session are counted per stretch (`rollup_excluded`), so a
// page can say how many it left out, as on read.
//
// A run's deleted bars (deleteBarKeys, src/stores/postgres/deletes.ts) widen its run_series range
// and leave their UTC days in `rollup_dirty`: their buckets are rolled up again without them.
//
// Retention (deleteBars) keeps rollups: buckets wholly before a series' cutoff stay as they were
// (a daily history outlives 1m retention); the deleted bars of the buckets the cutoff cuts through
// are kept aside in `rollup_carry` until the cutoff has passed them, so those buckets stay whole.
//
// Here: queueing runs, rolling one up (rollUpRun), catching up, retention's carry, deletes' marks, rebuilding;
// intraday.ts and daily.ts roll series up, page.ts reads, worker.ts is the store's catch-up loop.
import { coveringSpan, isIntraday } from "../../../domain/rollup.ts";
import { log } from "../../../lib/log.ts";
import type { BarQuery } from "../../types.ts";
import {
  advance,
  dailyWindow,
  epochMs,
  isDaily,
  iso,
  merge,
  RollupInterrupted,
  seriesInfo,
  type Pass,
  type RollSeries,
  type RollupCounts,
  type RunCounts,
  type Span,
  type Sql,
  type Tx,
} from "./common.ts";
import { recomputeDaily } from "./daily.ts";
import { append, recompute } from "./intraday.ts";
import { rollupPage } from "./page.ts";
import { errorText } from "../../../lib/errors.ts";

export { RollupInterrupted, rollupTargets, type RollupCounts } from "./common.ts";

/**
 * Every rolled-up interval of every series, built from scratch (migration 8, and tests); with
 * `intradayOnly`, of intraday series only (migration 11: the intervals added since, 2m, 30m and
 * 4h, are all intraday; daily series roll up into 1w and 1mo as before).
 */
export async function rebuildRollups(tx: Tx, opts: { intradayOnly?: boolean } = {}): Promise<{ written: number; deleted: number }> {
  const ids = (await tx`SELECT id FROM series WHERE bars > 0 ORDER BY id`).map((r) => r.id as number);
  let written = 0;
  let deleted = 0;
  const daily: { s: RollSeries; window: Span }[] = [];
  for (const s of await seriesInfo(tx, ids)) {
    if (opts.intradayOnly && !isIntraday(s.interval)) continue;
    const [r] = await tx.unsafe(`SELECT ${epochMs("min(ts)")} AS lo, ${epochMs("max(ts)")} AS hi FROM bars WHERE series_id = $1`, [s.id]);
    if (r?.lo == null) continue;
    if (isDaily(s)) {
      daily.push({ s, window: dailyWindow(s, Number(r.lo), Number(r.hi)) });
      continue;
    }
    const window = merge([coveringSpan(Number(r.lo), s.interval, s.market), coveringSpan(Number(r.hi), s.interval, s.market)]);
    const c = await recompute(tx, s, { start: window[0]!.start, end: window[window.length - 1]!.end }, null);
    await advance(tx, s.id, c.newest);
    written += c.written;
    deleted += c.deleted;
  }
  const d = await recomputeDaily(tx, daily, null, () => {});
  return { written: written + d.written, deleted: deleted + d.deleted };
}

/**
 * Queue a finishing run's bars for the rollups (before the run is marked finished, so a crash in
 * between leaves it queued), with the ts range its batches recorded and the summary's.
 */
export async function queueRun(sql: Sql | Tx, runId: number, summary: { fromTs: number | null; toTs: number | null }): Promise<void> {
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

/** How long a catch-up waits before it looks again while another process holds the rollups' lock. */
const BUSY_WAIT_MS = 250;

/** The rollups of one schema: its connections, and the key of the advisory lock every writer of them holds. */
type RollupDb = { sql: Sql; lockKey: string };

/**
 * One queued run: its touched buckets recomputed and its queue entry removed, in one
 * transaction under the rollups' lock (so two processes never roll up at once; "busy" when
 * another holds it). `check` throws to abandon it (the transaction rolls back).
 */
async function rollUpRun({ sql, lockKey }: RollupDb, runId: number, check: () => void = () => {}): Promise<RunCounts | null | "busy"> {
  return (await sql.begin(async (tx) => {
    const [l] = await tx`SELECT pg_try_advisory_xact_lock(hashtext(${lockKey})) AS ok`;
    if (!l!.ok) return "busy";
    const [p] = await tx`SELECT 1 AS queued FROM rollup_pending WHERE run_id = ${runId}`;
    if (!p) return null; // another process did it
    // The series the run wrote, and the ts range it wrote in each.
    const ranges = new Map<number, { lo: number; hi: number }>();
    for (const r of await tx.unsafe(`SELECT series_id, ${epochMs("min_ts")} AS lo, ${epochMs("max_ts")} AS hi FROM run_series WHERE run_id = $1`, [runId]))
      ranges.set(r.series_id, { lo: Number(r.lo), hi: Number(r.hi) });
    const n: RunCounts = { written: 0, deleted: 0, appended: 0, recomputed: 0 };
    const list = await seriesInfo(tx, [...ranges.keys()]);
    // Daily series: their weeks and months from the first bar's to the last's, in SQL.
    const daily = list.filter(isDaily);
    const d = await recomputeDaily(tx, daily.map((s) => ({ s, window: dailyWindow(s, ranges.get(s.id)!.lo, ranges.get(s.id)!.hi) })), runId, check);
    n.recomputed += daily.length;
    n.written += d.written;
    n.deleted += d.deleted;
    // Intraday series: carried on when every bar is after everything rolled up (and after any
    // retention cutoff); else the weeks and months around each UTC day the run wrote, from its
    // first and last ts that day (a day is at most two local dates), read through the key.
    const intraday = list.filter((s) => !isDaily(s));
    const carryOn = (s: RollSeries) => s.upto !== null && ranges.get(s.id)!.lo > s.upto && (s.cutoff === null || s.upto >= s.cutoff);
    const others = intraday.filter((s) => !carryOn(s)).map((s) => s.id);
    const days = new Map<number, number[]>();
    if (others.length > 0)
      for (const g of await tx.unsafe(
        `SELECT rs.series_id, ${epochMs("min(b.ts)")} AS lo, ${epochMs("max(b.ts)")} AS hi
         FROM run_series rs JOIN bars b ON b.series_id = rs.series_id AND b.ts >= rs.min_ts AND b.ts <= rs.max_ts AND b.run_id = rs.run_id
         WHERE rs.run_id = $1 AND rs.series_id = ANY($2::int[]) GROUP BY rs.series_id, date_trunc('day', b.ts AT TIME ZONE 'UTC')
         UNION ALL
         SELECT series_id, ${epochMs("min_ts")}, ${epochMs("max_ts")} FROM rollup_dirty WHERE run_id = $1 AND series_id = ANY($2::int[])`,
        [runId, others] as never[],
      )) {
        const list = days.get(g.series_id) ?? [];
        list.push(Number(g.lo), Number(g.hi));
        days.set(g.series_id, list);
      }
    for (const s of intraday) {
      check();
      const passes: Pass[] = [];
      if (carryOn(s)) {
        n.appended++;
        passes.push(await append(tx, s, runId, check));
      } else {
        const touched = days.get(s.id);
        if (!touched) continue; // every bar it wrote there was written again since, by a run queued after it
        n.recomputed++;
        for (const w of merge(touched.map((t) => coveringSpan(t, s.interval, s.market)))) passes.push(await recompute(tx, s, w, runId, check));
      }
      for (const c of passes) {
        await advance(tx, s.id, c.newest);
        n.written += c.written;
        n.deleted += c.deleted;
      }
    }
    check();
    await tx`DELETE FROM rollup_pending WHERE run_id = ${runId}`;
    await tx`DELETE FROM rollup_dirty WHERE run_id = ${runId}`;
    return n;
  })) as RunCounts | null | "busy";
}

/**
 * Work off every queued run, oldest first, including runs queued meanwhile, until none is
 * left or `stop` says so (the run being rolled up then rolls back and stays queued). A failed
 * run is logged and left queued for the next catch-up. While another process holds the lock,
 * this one waits and looks again: when it looks, that one may have done the work.
 */
async function catchUp(db: RollupDb, stop: () => boolean = () => false): Promise<RollupCounts> {
  const total: RollupCounts = { runs: 0, failed: 0, written: 0, deleted: 0, appended: 0, recomputed: 0 };
  const failed: string[] = [];
  const check = () => {
    if (stop()) throw new RollupInterrupted();
  };
  while (!stop()) {
    const [r] = await db.sql`SELECT run_id FROM rollup_pending WHERE NOT (run_id = ANY(${failed}::bigint[])) ORDER BY run_id LIMIT 1`;
    if (!r) break;
    const run = Number(r.run_id);
    try {
      const c = await rollUpRun(db, run, check);
      if (c === "busy") await Bun.sleep(BUSY_WAIT_MS);
      if (c === null || c === "busy") continue;
      total.runs++;
      for (const k of ["written", "deleted", "appended", "recomputed"] as const) total[k] += c[k];
    } catch (e) {
      if (e instanceof RollupInterrupted) break;
      log.warn("rollup of a run failed; it stays queued", { run, error: errorText(e) });
      failed.push(String(run));
      total.failed++;
    }
  }
  return total;
}

/** Runs queued and not rolled up yet. */
async function pending(sql: Sql): Promise<number> {
  const [r] = await sql`SELECT count(*)::int AS n FROM rollup_pending`;
  return r!.n as number;
}

/**
 * Before retention deletes `interval` bars older than `before` from these (locked) series:
 * record the cutoff, and keep aside the deleted bars of buckets the cutoff cuts through
 * (from the week and month around it); what was kept aside before them is dropped, their
 * buckets now lying wholly before the cutoff.
 */
async function carry(db: RollupDb, tx: Tx, seriesIds: number[], before: number): Promise<void> {
  await tx`SELECT pg_advisory_xact_lock(hashtext(${db.lockKey}))`;
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
}

/**
 * In a transaction deleting bars of these (locked) series for run `runId`: the run's range in
 * each series widened over the deleted bars (a daily series rolls up again from the first to the
 * last), their UTC days recorded (an intraday series' days are found from the run's bars, and
 * these are gone), and the run queued, so pages of these series are rolled up on read until the
 * rollups are rebuilt without them. Under the rollups' lock, shared: a catch-up (which holds it
 * alone) never clears a run's queue entry and days around marks it did not read.
 */
async function deleted(db: RollupDb, tx: Tx, runId: number, series: { id: number; lo: number; hi: number }[], ids: number[], tss: string[]): Promise<void> {
  if (series.length === 0) return;
  await tx`SELECT pg_advisory_xact_lock_shared(hashtext(${db.lockKey}))`;
  const lo = series.reduce((m, s) => Math.min(m, s.lo), Infinity);
  const hi = series.reduce((m, s) => Math.max(m, s.hi), -Infinity);
  await Promise.all([
    tx`
      INSERT INTO run_series (run_id, series_id, min_ts, max_ts)
      SELECT ${runId}, u.* FROM unnest(${series.map((s) => s.id)}::int[], ${series.map((s) => iso(s.lo))}::timestamptz[], ${series.map((s) => iso(s.hi))}::timestamptz[]) AS u(id, f, l)
      ORDER BY u.id
      ON CONFLICT (run_id, series_id) DO UPDATE SET min_ts = least(run_series.min_ts, excluded.min_ts), max_ts = greatest(run_series.max_ts, excluded.max_ts)`,
    tx`
      INSERT INTO rollup_dirty (run_id, series_id, day, min_ts, max_ts)
      SELECT ${runId}, k.series_id, (k.ts AT TIME ZONE 'UTC')::date, min(k.ts), max(k.ts)
      FROM unnest(${ids}::int[], ${tss}::timestamptz[]) AS k(series_id, ts) GROUP BY 2, 3
      ON CONFLICT (run_id, series_id, day) DO UPDATE SET min_ts = least(rollup_dirty.min_ts, excluded.min_ts), max_ts = greatest(rollup_dirty.max_ts, excluded.max_ts)`,
    tx`
      INSERT INTO rollup_pending (run_id, from_ts, to_ts) VALUES (${runId}, ${iso(lo)}::timestamptz, ${iso(hi)}::timestamptz)
      ON CONFLICT (run_id) DO UPDATE SET from_ts = least(rollup_pending.from_ts, excluded.from_ts), to_ts = greatest(rollup_pending.to_ts, excluded.to_ts)`,
  ]);
}

/** The materialised rollups of the schema `sql` works in. */
export function pgRollups(sql: Sql, schema: string) {
  const db: RollupDb = { sql, lockKey: `${schema}.ticksync.rollups` };
  return {
    rollUpRun: (runId: number, check?: () => void) => rollUpRun(db, runId, check),
    catchUp: (stop?: () => boolean) => catchUp(db, stop),
    pending: () => pending(sql),
    carry: (tx: Tx, seriesIds: number[], before: number) => carry(db, tx, seriesIds, before),
    deleted: (tx: Tx, runId: number, series: { id: number; lo: number; hi: number }[], ids: number[], tss: string[]) => deleted(db, tx, runId, series, ids, tss),
    page: (q: BarQuery) => rollupPage(sql, q),
  };
}

/** What pgRollups gives the store. */
export type PgRollups = ReturnType<typeof pgRollups>;
