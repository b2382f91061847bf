// Reads of bars: the series, a symbol's page of bars, the count, and the bars runs changed (the
// sinks' change order).
import { barKey, type Bar, type BarValues } from "../../domain/bar.ts";
import type { BarQuery, ChangedBar, ChangeQuery, SeriesInfo, Store } from "../types.ts";
import { rowToBar, rowToSeries } from "../rows.ts";
import type { PgContext } from "./context.ts";

export async function listSeries({ sql }: PgContext, opts?: Parameters<Store["listSeries"]>[0]): Promise<SeriesInfo[]> {
  // A series row with no bars is one whose first batch has not committed yet.
  const rows = await sql`
    SELECT source, symbol, interval, first_ts, last_ts, bars FROM series
    WHERE bars > 0 AND (${opts?.symbol ?? null}::text IS NULL OR symbol = ${opts?.symbol ?? null}) ORDER BY symbol, interval, source`;
  return rows.map(rowToSeries);
}

/**
 * A page's FROM and WHERE, shared by queryBars and queryBarValues: each matching series (one per
 * source) gives at most a page in its index order; the pages are merged by (ts, source).
 */
function pageSource(sql: PgContext["sql"], q: BarQuery) {
  const from = new Date(q.from ?? -8.64e15 / 1000);
  const to = new Date(q.to ?? 8.64e15 / 1000);
  const after = q.after ? sql`AND b.ts >= ${new Date(q.after.ts)} AND (b.ts > ${new Date(q.after.ts)} OR s.source > ${q.after.source})` : sql``;
  return sql`
    FROM series s CROSS JOIN LATERAL (
      SELECT * FROM bars b WHERE b.series_id = s.id AND b.ts >= ${from} AND b.ts <= ${to} ${after}
      ORDER BY b.ts LIMIT ${q.limit}
    ) b
    WHERE s.symbol = ${q.symbol} AND s.interval = ${q.interval} AND (${q.source ?? null}::text IS NULL OR s.source = ${q.source ?? null})
    ORDER BY b.ts, s.source LIMIT ${q.limit}`;
}

export async function queryBars({ sql }: PgContext, q: BarQuery): Promise<Bar[]> {
  const rows = await sql`
    SELECT s.source, s.symbol, s.interval, b.ts, b.open, b.high, b.low, b.close, b.volume, b.adj_close, b.turnover, b.trades
    ${pageSource(sql, q)}`;
  return rows.map(rowToBar);
}

/**
 * queryBars' page as BarValues rows: the driver's arrays (.values()), ts as epoch ms (floor: the
 * ms a Date of the timestamp holds), trades as float8, so no object or Date per bar.
 */
export async function queryBarValues({ sql }: PgContext, q: BarQuery): Promise<BarValues[]> {
  return (await sql`
    SELECT s.source, s.symbol, s.interval, floor(extract(epoch FROM b.ts) * 1000)::float8, b.open, b.high, b.low, b.close, b.volume, b.adj_close, b.turnover, b.trades::float8
    ${pageSource(sql, q)}`.values()) as unknown as BarValues[];
}

export async function countBars({ sql }: PgContext): Promise<number> {
  const [r] = await sql`SELECT count(*)::bigint AS n FROM bars`;
  return Number(r!.n);
}

// Change order here: run, then (series_id, ts), the primary key's order. Runs that stored
// nothing are skipped by their counters; a run's series come from run_series in id order,
// and each one's bars are read through the key within the range the run wrote there, so a
// page never sorts more than one series' page of bars.
export async function changedBars({ sql }: PgContext, q: ChangeQuery): Promise<ChangedBar[]> {
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
}

/** The extras kept for these bars, by barKey: one statement per page of bars. */
export async function barExtras({ sql }: PgContext, bars: readonly Bar[]): Promise<Map<string, Record<string, number>>> {
  const out = new Map<string, Record<string, number>>();
  if (!bars.length) return out;
  const keys = bars.map((b) => ({ source: b.source, symbol: b.symbol, interval: b.interval, t: b.ts }));
  const rows = await sql`
    SELECT s.source, s.symbol, s.interval, (extract(epoch FROM e.ts) * 1000)::float8 AS t, e.extras
    FROM jsonb_to_recordset(${JSON.stringify(keys)}::text::jsonb) AS k(source text, symbol text, interval text, t float8)
    JOIN series s ON s.source = k.source AND s.symbol = k.symbol AND s.interval = k.interval
    JOIN bar_extras e ON e.series_id = s.id AND e.ts = to_timestamp(k.t / 1000)`;
  for (const r of rows) out.set(barKey(r.source, r.symbol, r.interval, Math.round(Number(r.t))), typeof r.extras === "string" ? JSON.parse(r.extras) : r.extras);
  return out;
}

export async function hasExtras({ sql }: PgContext): Promise<boolean> {
  return (await sql`SELECT 1 FROM bar_extras LIMIT 1`).length > 0;
}
