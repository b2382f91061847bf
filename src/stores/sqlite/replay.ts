// The SQLite store's range reads (/api/replay, the WebSocket's replay): several symbols' bars at
// one interval, merged in (ts, symbol, source) order, a keyset page per query. One UNION ALL arm
// per symbol, each a range of the primary key (symbol, interval, ts, source), so each arm comes in
// (ts, source) order and SQLite merges the arms (its plan: MERGE (UNION ALL), no temporary
// B-tree); no extra index, so writes pay nothing for it. SQLite allows 500 arms in one compound
// SELECT (SQLITE_MAX_COMPOUND_SELECT), which bounds `replay.maxSymbols`.
import { eventId } from "../events.ts";
import type { RangePage, RangeQuery, RangeReader, RangeRow } from "../types.ts";
import type { SqliteContext } from "./db.ts";

/** Arms one range query may have (SQLite's compound SELECT limit). */
export const SQLITE_MAX_RANGE_SYMBOLS = 500;

const COLS = "ts, symbol, source, open, high, low, close, volume, adj_close, turnover, trades";

/**
 * The page query for `n` symbols. ?1 interval, ?2 to, ?3 source (null: any), ?4 limit; per arm i
 * ?(5+3i) symbol, ?(6+3i) a, ?(7+3i) b: the arm's rows with ts > a, or ts = a and source > b
 * (b null: none), which expresses each symbol's side of the keyset cursor.
 */
export function rangeSql(n: number): string {
  const arms: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = 5 + 3 * i;
    arms.push(
      `SELECT ${COLS} FROM bars WHERE symbol = ?${s} AND interval = ?1 AND ts >= ?${s + 1} AND ts <= ?2 AND (ts > ?${s + 1} OR source > ?${s + 2}) AND (?3 IS NULL OR source = ?3)`,
    );
  }
  return `${arms.join(" UNION ALL ")} ORDER BY 1, 2, 3 LIMIT ?4`;
}

/** Byte order of ASCII/BMP strings, as SQLite's BINARY collation compares their UTF-8. */
const byBytes = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function readRange(cx: SqliteContext, q: RangeQuery): RangeReader {
  const symbols = [...new Set(q.symbols)].sort(byBytes);
  if (symbols.length > SQLITE_MAX_RANGE_SYMBOLS) throw new Error(`a range read takes at most ${SQLITE_MAX_RANGE_SYMBOLS} symbols on SQLite (got ${symbols.length})`);
  const stmt = symbols.length ? cx.db.query(rangeSql(symbols.length)) : null;
  const journal = cx.db.query("SELECT batch, n FROM journal ORDER BY batch DESC LIMIT 1");
  let after = q.after ?? null;
  const params: (string | number | null)[] = [q.interval, q.to, q.source ?? null, 0];
  for (const s of symbols) params.push(s, 0, null);
  // The page and the journal's end in one read transaction: one snapshot (WAL).
  const page = cx.db.transaction((limit: number): RangePage => {
    const j = journal.get() as { batch: number; n: number } | null;
    const journalAt = j ? eventId(j.batch, j.n - 1) : 0;
    if (!stmt) return { rows: [], journalAt };
    params[3] = limit;
    for (let i = 0; i < symbols.length; i++) {
      const s = symbols[i]!;
      const k = 5 + 3 * i;
      // Before the cursor's symbol: strictly later ts; after it: the same ts too; at it: later source.
      if (!after) (params[k] = q.from - 1), (params[k + 1] = null);
      else if (s < after.symbol) (params[k] = after.ts), (params[k + 1] = null);
      else if (s > after.symbol) (params[k] = after.ts - 1), (params[k + 1] = null);
      else (params[k] = after.ts), (params[k + 1] = after.source);
    }
    return { rows: stmt.values(...(params as any[])) as RangeRow[], journalAt };
  });
  return {
    async next(limit) {
      const p = page.deferred(limit);
      const last = p.rows[p.rows.length - 1];
      if (last) after = { ts: last[0], symbol: last[1], source: last[2] };
      return p;
    },
  };
}
