// The SQLite store's bar reads: series, pages of one series, the count, and the change order sinks read.
import { rowToBar, rowToSeries } from "../rows.ts";
import { barKey, type Bar, type BarValues } from "../../domain/bar.ts";
import type { BarField, BarFieldRow, BarQuery, ChangedBar, ChangeQuery, SeriesInfo } from "../types.ts";
import type { SqliteContext } from "./db.ts";

export async function listSeries(cx: SqliteContext, opts?: { symbol?: string }): Promise<SeriesInfo[]> {
  // Two statements: `(?1 IS NULL OR symbol = ?1)` would keep SQLite off the series_symbol index.
  const rows = opts?.symbol !== undefined
    ? cx.db.query(`SELECT * FROM series WHERE symbol = ?1 ORDER BY symbol, interval, source`).all(opts.symbol)
    : cx.db.query(`SELECT * FROM series ORDER BY symbol, interval, source`).all();
  return rows.map(rowToSeries);
}

export async function queryBars(cx: SqliteContext, q: BarQuery): Promise<Bar[]> {
  const afterTs = q.after?.ts ?? Number.MIN_SAFE_INTEGER;
  const afterSource = q.after?.source ?? "";
  const rows = cx.db
    .query(
      `SELECT * FROM bars WHERE symbol = ?1 AND interval = ?2 AND (?3 IS NULL OR source = ?3)
         AND ts >= ?4 AND ts <= ?5 AND (ts > ?6 OR (ts = ?6 AND source > ?7))
       ORDER BY ts, source LIMIT ?8`,
    )
    .all(q.symbol, q.interval, q.source ?? null, q.from ?? Number.MIN_SAFE_INTEGER, q.to ?? Number.MAX_SAFE_INTEGER, afterTs, afterSource, q.limit);
  return rows.map(rowToBar);
}

/**
 * queryBars' page as BarValues rows (stmt.values(): an array per row, no object). db.query keeps
 * the compiled statement (bun:sqlite caches it by its text), so a page costs no prepare.
 */
export async function queryBarValues(cx: SqliteContext, q: BarQuery): Promise<BarValues[]> {
  return cx.db
    .query(
      `SELECT source, symbol, interval, ts, open, high, low, close, volume, adj_close, turnover, trades FROM bars
       WHERE symbol = ?1 AND interval = ?2 AND (?3 IS NULL OR source = ?3)
         AND ts >= ?4 AND ts <= ?5 AND (ts > ?6 OR (ts = ?6 AND source > ?7))
       ORDER BY ts, source LIMIT ?8`,
    )
    .values(q.symbol, q.interval, q.source ?? null, q.from ?? Number.MIN_SAFE_INTEGER, q.to ?? Number.MAX_SAFE_INTEGER, q.after?.ts ?? Number.MIN_SAFE_INTEGER, q.after?.source ?? "", q.limit) as BarValues[];
}

/** A narrow read's columns (adj_close under Bar's name). */
const FIELD_SQL: Record<BarField, string> = { source: "source", ts: "ts", open: "open", high: "high", low: "low", close: "close", volume: "volume", adjClose: "adj_close AS adjClose", turnover: "turnover", trades: "trades" };

/** queryBars' page, only `fields`: stmt.all() of those columns (objects: faster than stmt.values() arrays in bun:sqlite). */
export async function queryBarFields<F extends BarField>(cx: SqliteContext, q: BarQuery, fields: readonly F[]): Promise<Pick<BarFieldRow, F>[]> {
  for (const f of fields) if (!Object.hasOwn(FIELD_SQL, f)) throw new RangeError(`no bar field ${String(f)}`);
  const cols = fields.map((f) => FIELD_SQL[f]);
  return cx.db
    .query(
      `SELECT ${cols.join(", ")} FROM bars
       WHERE symbol = ?1 AND interval = ?2 AND (?3 IS NULL OR source = ?3)
         AND ts >= ?4 AND ts <= ?5 AND (ts > ?6 OR (ts = ?6 AND source > ?7))
       ORDER BY ts, source LIMIT ?8`,
    )
    .all(q.symbol, q.interval, q.source ?? null, q.from ?? Number.MIN_SAFE_INTEGER, q.to ?? Number.MAX_SAFE_INTEGER, q.after?.ts ?? Number.MIN_SAFE_INTEGER, q.after?.source ?? "", q.limit) as Pick<BarFieldRow, F>[];
}

export async function countBars(cx: SqliteContext): Promise<number> {
  return (cx.db.query("SELECT count(*) AS n FROM bars").get() as { n: number }).n;
}

export async function changedBars(cx: SqliteContext, q: ChangeQuery): Promise<ChangedBar[]> {
  const p = q.after;
  const a =
    p && typeof p.symbol === "string" && typeof p.interval === "string" && typeof p.ts === "number" && typeof p.source === "string"
      ? { runId: p.runId, symbol: p.symbol, interval: p.interval, ts: p.ts, source: p.source }
      : { runId: p?.runId ?? 0, symbol: "", interval: "", ts: Number.MIN_SAFE_INTEGER, source: "" };
  const rows = cx.db
    .query(
      `SELECT * FROM bars
       WHERE (run_id, symbol, interval, ts, source) > (?1, ?2, ?3, ?4, ?5) AND run_id <= ?6
         AND (?7 IS NULL OR source IN (SELECT value FROM json_each(?7)))
       ORDER BY run_id, symbol, interval, ts, source LIMIT ?8`,
    )
    .all(a.runId, a.symbol, a.interval, a.ts, a.source, q.uptoRun, q.sources?.length ? JSON.stringify(q.sources) : null, q.limit) as any[];
  return rows.map((r) => ({ bar: rowToBar(r), position: { runId: r.run_id, symbol: r.symbol, interval: r.interval, ts: r.ts, source: r.source } }));
}

/** The extras kept for these bars, by barKey. */
export async function barExtras(cx: SqliteContext, bars: readonly Bar[]): Promise<Map<string, Record<string, number>>> {
  const out = new Map<string, Record<string, number>>();
  const get = cx.db.query("SELECT extras FROM bar_extras WHERE symbol = ?1 AND interval = ?2 AND ts = ?3 AND source = ?4");
  for (const b of bars) {
    const r = get.get(b.symbol, b.interval, b.ts, b.source) as { extras: string } | null;
    if (r) out.set(barKey(b.source, b.symbol, b.interval, b.ts), JSON.parse(r.extras));
  }
  return out;
}

export async function hasExtras(cx: SqliteContext): Promise<boolean> {
  return cx.db.query("SELECT 1 FROM bar_extras LIMIT 1").get() !== null;
}
