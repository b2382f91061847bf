// A batch's commit: its rows as one binary COPY (straight into bars, or through a staging table
// upserted from there), and in the same transaction the series counts, where the run's bars are
// (run_series), the run's counters, checkpoint, quarantine and the journal. Batches of one stream
// are pipelined (two in flight) and commit in order.
import { columnsOf, type BarColumns } from "../../domain/columns.ts";
import type { BarEvent } from "../events.ts";
import type { CommitBatch, CommitResult } from "../types.ts";
import type { PgContext } from "./context.ts";
import { copyInto, encodeCopy } from "./copy.ts";
import { journalBatch } from "./journal.ts";
import { checkpointBatch, countBatch, quarantineBatch } from "./ledger.ts";
import { prepareSeries, seriesStats, type PreparedSeries } from "./series.ts";
import type { Tx } from "./sql.ts";

/** What a batch's rows did in its transaction, for the statements after them. */
type Loaded = {
  inserted: number;
  updated: number;
  unchanged: number;
  /** Which bars changed, for the journal, by `series id|ts`: null for a direct load (all of them). */
  changedKeys: Map<string, "insert" | "update"> | null;
  /** Per bar: its series' id (null: no bars). */
  ids: Int32Array | null;
  /** New bars per series id (min ts, max ts, count), for the series table. */
  gained: Map<number, [number, number, number]>;
  /** Changed bars (updated ones; the inserted ones are in gained) per series id: min and max ts, for run_series. */
  touched: Map<number, [number, number]>;
};

/** The batch's rows into bars: one COPY when `direct`, else COPY into bars_stage and upserts from there. */
async function loadRows(tx: Tx, b: CommitBatch, c: BarColumns, prepared: PreparedSeries, direct: boolean): Promise<Loaded> {
  let inserted = 0;
  let updated = 0;
  let unchanged = 0;
  let changedKeys: Map<string, "insert" | "update"> | null = null;
  const gained = new Map<number, [number, number, number]>();
  const touched = new Map<number, [number, number]>();
  const { list, ids: idOf } = prepared;
  const ids = new Int32Array(c.n);
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
    // First a read: which staged bars are new or differ from the stored ones. The join is held to
    // the batch's series and ts range, so it reads that box of the key index once (a hash join)
    // rather than the whole table or an index probe per bar; an unchanged batch stops here and
    // writes no tuple, journal row, NOTIFY or run_series range.
    const seriesIds = list.map((x) => x.id);
    let lo = Infinity;
    let hi = -Infinity;
    for (const x of list) (lo = Math.min(lo, x.min)), (hi = Math.max(hi, x.max));
    const from = new Date(lo).toISOString();
    const to = new Date(hi).toISOString();
    const [diff] = await tx`
      SELECT count(*) FILTER (WHERE b.ts IS NULL)::int AS fresh, count(*) FILTER (WHERE b.ts IS NOT NULL)::int AS changed
      FROM bars_stage s LEFT JOIN bars b ON b.series_id = s.series_id AND b.ts = s.ts
        AND b.series_id = ANY(${seriesIds}::int[]) AND b.ts >= ${from}::timestamptz AND b.ts <= ${to}::timestamptz
      WHERE b.ts IS NULL
        OR (b.open, b.high, b.low, b.close, b.volume, b.adj_close, b.turnover, b.trades)
          IS DISTINCT FROM (s.open, s.high, s.low, s.close, s.volume, s.adj_close, s.turnover, s.trades)`;
    const fresh: number = diff!.fresh;
    const differ: number = diff!.changed;
    changedKeys = new Map();
    if (fresh + differ === 0) return { inserted: 0, updated: 0, unchanged: c.n, changedKeys, ids, gained, touched };
    // New keys go in; then, when some keys already existed (or another writer stored some of
    // the new ones meanwhile), a second statement updates the rows whose values changed.
    const insertedRows = fresh === 0 ? [] : await tx`
      INSERT INTO bars (series_id, ts, open, high, low, close, volume, adj_close, turnover, trades, run_id)
      SELECT series_id, ts, open, high, low, close, volume, adj_close, turnover, trades, run_id FROM bars_stage
      ON CONFLICT (series_id, ts) DO NOTHING
      RETURNING series_id, (extract(epoch FROM ts) * 1000)::float8 AS t`;
    for (const k of insertedRows) {
      changedKeys.set(`${k.series_id}|${k.t}`, "insert");
      const g = gained.get(k.series_id);
      if (g) (g[0] = Math.min(g[0], k.t)), (g[1] = Math.max(g[1], k.t)), g[2]++;
      else gained.set(k.series_id, [k.t, k.t, 1]);
    }
    inserted = insertedRows.length;
    if (differ > 0 || inserted < fresh) {
      const res = await tx`
        UPDATE bars SET open = s.open, high = s.high, low = s.low, close = s.close, volume = s.volume,
          adj_close = s.adj_close, turnover = s.turnover, trades = s.trades, run_id = s.run_id, updated_at = now()
        FROM bars_stage s
        WHERE bars.series_id = s.series_id AND bars.ts = s.ts
          AND bars.series_id = ANY(${seriesIds}::int[]) AND bars.ts >= ${from}::timestamptz AND bars.ts <= ${to}::timestamptz
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
  return { inserted, updated, unchanged, changedKeys, ids, gained, touched };
}

/**
 * The statements on rows other batches share (series counts, run_series, quarantine, the run's
 * counters, checkpoint), sent together in one round trip; returns the quarantine records written.
 */
async function bookkeeping(tx: Tx, b: CommitBatch, c: BarColumns, loaded: Loaded): Promise<number> {
  const { gained, touched } = loaded;
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
    quarantine = quarantineBatch(tx, b);
    later.push(quarantine);
  }
  later.push(countBatch(tx, b, c, loaded));
  if (b.checkpoint) later.push(checkpointBatch(tx, b.checkpoint, b.runId));
  await Promise.all(later);
  return quarantine ? (await quarantine).count : 0;
}

/**
 * One batch's transaction. Its rows go in first (a COPY, in parallel with the batch before it
 * when that one is still in flight); the statements on rows other batches share — series
 * counts, run counters, checkpoint, quarantine, journal — wait until the batch before has
 * committed (`before`), and none is made when it failed.
 */
async function writeBatch(
  ctx: PgContext,
  b: CommitBatch,
  c: BarColumns,
  prepared: PreparedSeries | null,
  direct: boolean,
  before: Promise<boolean> | undefined,
  started: () => void,
): Promise<{ result: CommitResult; events: BarEvent[] }> {
  let events: BarEvent[] = [];
  const result = await ctx.sql.begin(async (tx) => {
    started();
    const loaded: Loaded = prepared
      ? await loadRows(tx, b, c, prepared, direct)
      : { inserted: 0, updated: 0, unchanged: 0, changedKeys: null, ids: null, gained: new Map(), touched: new Map() };
    // From here on, rows that other batches write too: only after the batch before committed.
    if (before && !(await before)) throw new Error("an earlier batch of this stream was not committed, so this one is not either");
    if (b.extras?.length && prepared) await writeExtras(tx, b, c, prepared, loaded);
    const quarantined = await bookkeeping(tx, b, c, loaded);
    const { inserted, updated, unchanged } = loaded;
    // Last: the journal. Its lock makes batch numbers follow commit order.
    if (inserted + updated > 0) events = await journalBatch(ctx, tx, b.runId, c, loaded.ids!, loaded.changedKeys, inserted + updated);
    return { inserted, updated, unchanged, quarantined };
  });
  return { result: result as CommitResult, events };
}

/**
 * The batch's extras beside their bars (by series id and ts). A bar whose extras changed while its
 * prices did not is given this run's id (counted as updated, in run_series and the journal), so a
 * sink's next sync re-sends it with the new values.
 */
async function writeExtras(tx: Tx, b: CommitBatch, c: BarColumns, prepared: PreparedSeries, loaded: Loaded) {
  const index = new Map<string, number>();
  c.series.forEach((x, i) => index.set(`${x.symbol}\u0000${x.interval}`, prepared.ids[i]!));
  const rows: { s: number; t: number; e: Record<string, number> }[] = [];
  for (const e of b.extras!) {
    const id = index.get(`${e.symbol}\u0000${e.interval}`);
    if (id !== undefined) rows.push({ s: id, t: e.ts, e: e.values });
  }
  if (!rows.length) return;
  const remarked = await tx`
    WITH changed AS (
      INSERT INTO bar_extras (series_id, ts, extras)
      SELECT (x->>'s')::int, to_timestamp((x->>'t')::float8 / 1000), x->'e' FROM jsonb_array_elements(${JSON.stringify(rows)}::text::jsonb) x
      ON CONFLICT (series_id, ts) DO UPDATE SET extras = excluded.extras WHERE bar_extras.extras IS DISTINCT FROM excluded.extras
      RETURNING series_id, ts)
    UPDATE bars SET run_id = ${b.runId}, updated_at = now() FROM changed
    WHERE bars.series_id = changed.series_id AND bars.ts = changed.ts AND bars.run_id <> ${b.runId}
    RETURNING bars.series_id, (extract(epoch FROM bars.ts) * 1000)::float8 AS t`;
  for (const k of remarked) {
    loaded.changedKeys?.set(`${k.series_id}|${k.t}`, "update");
    const u = loaded.touched.get(k.series_id);
    if (u) (u[0] = Math.min(u[0], k.t)), (u[1] = Math.max(u[1], k.t));
    else loaded.touched.set(k.series_id, [k.t, k.t]);
  }
  loaded.updated += remarked.length;
  loaded.unchanged -= remarked.length;
}

/** Commit one batch (Store.commitBatch): after the batch before it of its stream, never after one that failed. */
export async function commitBatch(ctx: PgContext, b: CommitBatch): Promise<CommitResult> {
  const { chains, inFlight, listeners } = ctx;
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
  let prepared: PreparedSeries | null = null;
  try {
    prepared = stats ? await prepareSeries(ctx, c, stats, overlaps) : null;
    // Keys an earlier batch still in flight may hold: write only after it committed, or its
    // rows and these would wait for each other (it in Postgres, this one here). Otherwise the
    // batch before has its connection first, so it can always finish.
    if (overlaps) {
      if (before && !(await before.committed)) throw new Error("an earlier batch of this stream was not committed, so this one is not either");
    } else await before?.started;
    let out: { result: CommitResult; events: BarEvent[] };
    try {
      out = await writeBatch(ctx, b, c, prepared, prepared?.direct ?? false, before?.committed, started);
    } catch (e) {
      if (!(prepared?.direct && (e as { code?: string })?.code === "23505")) throw e;
      // Another writer stored some of these keys meanwhile: upsert them after all.
      out = await writeBatch(ctx, b, c, prepared, false, before?.committed, started);
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
}
