// The PostgreSQL store's range reads (/api/replay, the WebSocket's replay): several symbols' bars
// at one interval, merged in (ts, symbol, source) order, a keyset page per query. The series are
// looked up once, ordered by (symbol, source) as bytes (COLLATE "C"), and numbered; a page is one
// UNION ALL arm per series, each a range of the key (series_id, ts) in ts order tagged with its
// number as a literal: the planner merges the arms' index order on ts (Merge Append) and orders
// only the rows of one ts by number (Incremental Sort, presorted on ts), never sorting the range. The journal's last event id comes in the same statement, so in the same snapshot.
import { eventId } from "../events.ts";
import type { RangePage, RangeQuery, RangeReader, RangeRow } from "../types.ts";
import type { PgContext } from "./context.ts";

/** Series one range query may read (arms of one statement). */
export const PG_MAX_RANGE_SERIES = 2000;

type Series = { id: number; symbol: string; source: string };

/** The page statement over `n` series: $1 to, $2 limit, $(3+k) the arm k's lowest ts. */
export function rangeSql(series: readonly Series[]): string {
  const arms = series.map(
    (s, k) =>
      `(SELECT b.ts, ${k} AS k, b.open, b.high, b.low, b.close, b.volume, b.adj_close, b.turnover, b.trades FROM bars b WHERE b.series_id = ${s.id | 0} AND b.ts >= $${3 + k} AND b.ts <= $1 ORDER BY b.ts)`,
  );
  // The journal's end as InitPlans of the same statement (one snapshot); an empty page reads it alone.
  return `SELECT (extract(epoch FROM p.ts) * 1000)::float8 AS t, p.k, p.open, p.high, p.low, p.close, p.volume, p.adj_close, p.turnover, p.trades::float8 AS trades,
      (SELECT max(batch) FROM journal) AS batch, (SELECT n FROM journal ORDER BY batch DESC LIMIT 1) AS n
    FROM (SELECT * FROM (${arms.join(" UNION ALL ")}) u ORDER BY 1, 2 LIMIT $2) p`;
}

export function readRange({ sql }: PgContext, q: RangeQuery): RangeReader {
  let series: Series[] | null = null;
  // Keyset: the last row's ts and arm number; arms after it may repeat its ts, the others may not.
  let after: { ts: number; k: number } | null = null;
  async function lookup(): Promise<Series[]> {
    const rows = await sql`
      SELECT id, symbol, source FROM series
      WHERE interval = ${q.interval} AND symbol = ANY(${sql.array([...new Set(q.symbols)])}::text[]) AND bars > 0
        AND (${q.source ?? null}::text IS NULL OR source = ${q.source ?? null})
      ORDER BY symbol COLLATE "C", source COLLATE "C"`;
    if (rows.length > PG_MAX_RANGE_SERIES) throw new Error(`a range read takes at most ${PG_MAX_RANGE_SERIES} series on PostgreSQL (got ${rows.length})`);
    return rows.map((r) => ({ id: Number(r.id), symbol: r.symbol, source: r.source }));
  }
  async function journalEnd(): Promise<number> {
    const [j] = await sql`SELECT batch, n FROM journal ORDER BY batch DESC LIMIT 1`;
    return j ? eventId(Number(j.batch), Number(j.n) - 1) : 0;
  }
  return {
    async next(limit): Promise<RangePage> {
      series ??= await lookup();
      if (!series.length) return { rows: [], journalAt: await journalEnd() };
      const params: (Date | number)[] = [new Date(q.to), limit];
      const a = q.after;
      for (let k = 0; k < series.length; k++) {
        const s = series[k]!;
        // Arms after the cursor's series may repeat its ts, the others (and its own) may not.
        const lowest = after
          ? k > after.k ? after.ts : after.ts + 1
          : a ? (s.symbol > a.symbol || (s.symbol === a.symbol && s.source > a.source) ? Math.max(q.from, a.ts) : Math.max(q.from, a.ts + 1)) : q.from;
        params.push(new Date(lowest));
      }
      const raw = await sql.unsafe(rangeSql(series), params as any[]).values();
      const first = raw[0];
      if (!first) return { rows: [], journalAt: await journalEnd() };
      const journalAt = first[10] != null ? eventId(Number(first[10]), Number(first[11]) - 1) : 0;
      const rows: RangeRow[] = [];
      let lastK = -1;
      for (const r of raw) {
        if (r[0] == null) continue;
        lastK = r[1] as number;
        const s = series[lastK]!;
        rows.push([r[0], s.symbol, s.source, r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9]] as RangeRow);
      }
      if (rows.length) after = { ts: rows[rows.length - 1]![0], k: lastK };
      return { rows, journalAt };
    },
  };
}
