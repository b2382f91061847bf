// Reads of the materialised rollups: /api/bars' rolled-up page, when the table holds it up to date.
import type { Bar } from "../../../domain/bar.ts";
import { bucketSpan, isIntraday, rollupSources } from "../../../domain/rollup.ts";
import { marketOf } from "../../../domain/symbols.ts";
import type { BarQuery, RollupPage } from "../../types.ts";
import { iso, type Sql } from "./common.ts";

/**
 * A page of `q.interval` bars from the rollups, or null when they are not what /api/bars
 * would roll up (bars stored at the interval, nothing finer, no known market) or not up to
 * date (a finer bar of a run still running or queued): the caller then rolls up on read.
 * The base is the coarsest finer interval with bars, as on read; when retention has emptied
 * every finer series, the coarsest one it left rollups of.
 */
export async function rollupPage(sql: Sql, q: BarQuery): Promise<RollupPage | null> {
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
      SELECT run_id AS id FROM rollup_pending UNION ALL SELECT id FROM runs WHERE outcome = 'running' AND from_ts IS NOT NULL
    ) r
    WHERE EXISTS (SELECT 1 FROM run_series rs WHERE rs.run_id = r.id AND rs.series_id = ANY(${ids}::int[]))
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
}
