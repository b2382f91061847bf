// The SQLite store's range reads (/api/replay, the WebSocket's replay): several symbols' bars at
// one interval, merged in (ts, symbol, source) order, a keyset page per read transaction. Each
// symbol is a cursor over its range of the primary key (symbol, interval, ts, source), read in
// chunks, so each comes in (ts, source) order; a binary heap keyed by (ts, symbol) merges them.
// Why not one UNION ALL query merged by SQLite: its merge costs ~1.2 µs a bar (CPU), these range
// scans plus the heap ~0.8 (docs/benchmarks.md, "Replay"). No extra index: writes pay nothing.
import { eventId } from "../events.ts";
import type { RangePage, RangeQuery, RangeReader, RangeRow } from "../types.ts";
import type { SqliteContext } from "./db.ts";

/** Symbols one range read may merge (`replay.maxSymbols` is at most this): a page queries each at least once. */
export const SQLITE_MAX_RANGE_SYMBOLS = 500;

/**
 * One symbol's chunk: ?1 symbol, ?2 interval, ?3 a, ?4 to, ?5 b, ?6 source (null: any), ?7 limit:
 * rows with ts > a, or ts = a and source > b (b null: none). The symbol column is read as NULL and
 * set from the cursor's own string, so no string is made for it per row.
 */
export const CHUNK_SQL =
  "SELECT ts, NULL, source, open, high, low, close, volume, adj_close, turnover, trades FROM bars WHERE symbol = ?1 AND interval = ?2 AND ts >= ?3 AND ts <= ?4 AND (ts > ?3 OR source > ?5) AND (?6 IS NULL OR source = ?6) ORDER BY ts, source LIMIT ?7";

/** The smallest chunk a symbol reads (within the cap); its first chunk of a page is what it gave the last page, plus one. */
const MIN_CHUNK = 32;
/** Chunks grow (doubling) to this many pages' share per symbol: what a reader buffers at most. */
const CHUNK_PAGES = 4;

/** Byte order of ASCII/BMP strings, as SQLite's BINARY collation compares their UTF-8. */
const byBytes = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function readRange(cx: SqliteContext, q: RangeQuery): RangeReader {
  const symbols = [...new Set(q.symbols)].sort(byBytes);
  const n = symbols.length;
  if (n > SQLITE_MAX_RANGE_SYMBOLS) throw new Error(`a range read takes at most ${SQLITE_MAX_RANGE_SYMBOLS} symbols on SQLite (got ${n})`);
  const chunkStmt = cx.db.query(CHUNK_SQL);
  const journal = cx.db.query("SELECT batch, n FROM journal ORDER BY batch DESC LIMIT 1");
  // What the snapshot is: data_version changes when another connection committed since this
  // connection's last read transaction began, total_changes() with each row this connection wrote.
  const version = cx.db.query("SELECT (SELECT data_version FROM pragma_data_version()) AS dv, total_changes() AS tc");
  const params: (string | number | null)[] = ["", q.interval, 0, q.to, null, q.source ?? null, 0];
  // Per symbol: its buffered chunk, the next row's index in it, its head ts, whether the chunk was
  // full (more may follow), the rows it gave the last page (sizes its next first chunk).
  const bufs: RangeRow[][] = new Array(n).fill([]);
  const at = new Int32Array(n);
  const headTs = new Float64Array(n);
  const full = new Uint8Array(n);
  const gave = new Int32Array(n).fill(-1);
  // The heap of symbol indexes with rows, least (ts, index) first; index order is symbol byte order.
  const heap = new Int32Array(n);
  let size = 0;
  const less = (i: number, j: number) => headTs[i]! < headTs[j]! || (headTs[i] === headTs[j] && i < j);
  function siftDown(k: number) {
    const x = heap[k]!;
    for (;;) {
      let c = 2 * k + 1;
      if (c >= size) break;
      if (c + 1 < size && less(heap[c + 1]!, heap[c]!)) c++;
      if (!less(heap[c]!, x)) break;
      heap[k] = heap[c]!;
      k = c;
    }
    heap[k] = x;
  }
  function siftUp(k: number) {
    const x = heap[k]!;
    while (k > 0) {
      const p = (k - 1) >> 1;
      if (!less(x, heap[p]!)) break;
      heap[k] = heap[p]!;
      k = p;
    }
    heap[k] = x;
  }
  /** Read symbol i's next `count` rows after (a, b); true when it has any. */
  function fill(i: number, a: number, b: string | null, count: number): boolean {
    params[0] = symbols[i]!;
    params[2] = a;
    params[4] = b;
    params[6] = count;
    const rows = chunkStmt.values(...(params as any[])) as unknown as RangeRow[];
    bufs[i] = rows;
    at[i] = 0;
    full[i] = rows.length === count ? 1 : 0;
    if (!rows.length) return false;
    headTs[i] = rows[0]![0];
    return true;
  }
  let after = q.after ?? null;
  // The snapshot the buffered chunks were read in; `kept` while they are whole and usable.
  let dv = -1;
  let tc = -1;
  let kept = false;
  // The page and the journal's end in one read transaction: one snapshot (WAL). Rows buffered past
  // the page serve the next one only when no write was committed in between (the same snapshot);
  // else every symbol reads again from the cursor in the new one.
  const page = cx.db.transaction((limit: number): RangePage => {
    const j = journal.get() as { batch: number; n: number } | null;
    const journalAt = j ? eventId(j.batch, j.n - 1) : 0;
    const v = version.get() as { dv: number; tc: number };
    const same = kept && v.dv === dv && v.tc === tc;
    (dv = v.dv), (tc = v.tc), (kept = false);
    const out: RangeRow[] = [];
    // Chunks of all symbols together hold at most CHUNK_PAGES pages (plus one row a symbol).
    const cap = Math.ceil((CHUNK_PAGES * limit) / Math.max(1, n));
    if (!same) size = 0;
    for (let i = 0; i < n; i++) {
      const given = gave[i]!;
      gave[i] = 0;
      if (same) continue;
      const s = symbols[i]!;
      const want = Math.min(cap, Math.max(MIN_CHUNK, given < 0 ? Math.ceil(limit / n) + 1 : given + 1));
      // Before the cursor's symbol: strictly later ts; after it: the same ts too; at it: later source.
      const has = !after
        ? fill(i, q.from - 1, null, want)
        : s < after.symbol ? fill(i, after.ts, null, want) : s > after.symbol ? fill(i, after.ts - 1, null, want) : fill(i, after.ts, after.source, want);
      if (has) (heap[size] = i), siftUp(size++);
      else bufs[i] = [];
    }
    while (out.length < limit && size > 0) {
      const i = heap[0]!;
      const buf = bufs[i]!;
      const k = at[i]! + 1;
      const row = buf[k - 1]!;
      row[1] = symbols[i]!;
      out.push(row);
      gave[i]!++;
      at[i] = k;
      if (k < buf.length) headTs[i] = buf[k]![0];
      // This symbol's chunk is spent: the next, up to twice as large, in the same snapshot.
      else if (!full[i] || !fill(i, row[0], row[2], Math.min(cap, 2 * buf.length))) {
        heap[0] = heap[--size]!;
        bufs[i] = [];
      }
      if (size > 0) siftDown(0);
    }
    kept = true;
    return { rows: out, journalAt };
  });
  return {
    async next(limit) {
      if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`a page takes a whole number of rows above 0 (got ${limit})`);
      const p = page.deferred(limit);
      const last = p.rows[p.rows.length - 1];
      if (last) after = { ts: last[0], symbol: last[1], source: last[2] };
      return p;
    },
  };
}
