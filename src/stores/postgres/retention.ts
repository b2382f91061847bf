// Retention and no-data sessions: deleting one interval's old bars (the rollups keep what they
// held), and the sessions a provider had no bar for.
import type { NoDataSession, Store } from "../types.ts";
import type { PgContext } from "./context.ts";
import { rollUpQueued } from "./rollups/worker.ts";
import { ms } from "./sql.ts";

export async function deleteBars({ sql, rollups, worker }: PgContext, { interval, before }: Parameters<NonNullable<Store["deleteBars"]>>[0]): Promise<number> {
  // One DELETE over the (series_id, ts) key; TimescaleDB included: its chunks hold every
  // interval, so drop_chunks / add_retention_policy would take the daily bars too. The
  // series rows are locked first (as a commit does) and keep their first ts and count exact;
  // an emptied series keeps its row with bars = 0, which listSeries leaves out.
  const cutoff = new Date(before);
  // Rollups keep what retention deletes: first every finished run rolled up, then, with the
  // delete, the cutoff recorded and the bars of buckets it cuts through kept aside.
  await rollUpQueued(worker);
  return sql.begin(async (tx) => {
    const ids = (await tx`SELECT id FROM series WHERE interval = ${interval} AND first_ts < ${cutoff} AND bars > 0 ORDER BY id FOR UPDATE`).map((r) => r.id as number);
    if (ids.length === 0) return 0;
    await rollups.carry(tx, ids, before);
    const counts = await tx`
      WITH d AS (DELETE FROM bars WHERE series_id = ANY(${ids}::int[]) AND ts < ${cutoff} RETURNING series_id)
      SELECT series_id, count(*)::bigint AS n FROM d GROUP BY series_id`;
    // The deleted bars' extras (a table source's extra columns) go with them.
    await tx`DELETE FROM bar_extras WHERE series_id = ANY(${ids}::int[]) AND ts < ${cutoff}`;
    await tx`
      UPDATE series SET bars = series.bars - u.n,
        first_ts = coalesce((SELECT min(b.ts) FROM bars b WHERE b.series_id = series.id), series.first_ts)
      FROM unnest(${counts.map((c) => c.series_id)}::int[], ${counts.map((c) => String(c.n))}::bigint[]) AS u(id, n)
      WHERE series.id = u.id`;
    return counts.reduce((t, c) => t + Number(c.n), 0);
  }) as Promise<number>;
}

export async function markNoData({ sql }: PgContext, list: NoDataSession[]): Promise<number> {
  if (list.length === 0) return 0;
  const rows = list.map((d) => ({ source: d.source, symbol: d.symbol, interval: d.interval, session: d.session }));
  const r = await sql`INSERT INTO no_data ${sql(rows, "source", "symbol", "interval", "session")} ON CONFLICT DO NOTHING`;
  return r.count;
}

export async function listNoData({ sql }: PgContext, opts?: { source?: string }): Promise<NoDataSession[]> {
  const rows = await sql`
    SELECT source, symbol, interval, to_char(session, 'YYYY-MM-DD') AS session, recorded_at FROM no_data
    WHERE (${opts?.source ?? null}::text IS NULL OR source = ${opts?.source ?? null}) ORDER BY source, symbol, interval, session`;
  return rows.map((r) => ({ source: r.source, symbol: r.symbol, interval: r.interval, session: r.session, recordedAt: ms(r.recorded_at)! }));
}
