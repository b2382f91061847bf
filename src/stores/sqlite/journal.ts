// The SQLite store's event journal (src/stores/events.ts) and its leases.
import { COLUMN_WIDTH, type BarColumns } from "../../domain/columns.ts";
import { decodeJournal, eventBatch, eventId, eventIndex, type BarEvent, type JournalEntry } from "../events.ts";
import type { SqliteContext } from "./db.ts";

/** A journaled bar's float64s: its series' index, then the nine columns (src/stores/events.ts). */
const JOURNAL_FIELDS = 1 + COLUMN_WIDTH;

export async function eventsSince(cx: SqliteContext, after: number, limit: number): Promise<BarEvent[]> {
  const rows = cx.db.query("SELECT batch, series, ops, data FROM journal WHERE batch >= ? ORDER BY batch LIMIT ?").all(eventBatch(after), Math.max(1, Math.ceil(limit / 100) + 1)) as any[];
  const out: BarEvent[] = [];
  for (const r of rows) {
    out.push(...decodeJournal(r.batch, r.series, r.ops, r.data, r.batch === eventBatch(after) ? eventIndex(after) + 1 : 0));
    if (out.length >= limit) break;
  }
  return out;
}

export async function eventBounds(cx: SqliteContext): Promise<{ last: number; first: number | null }> {
  const r = cx.db.query("SELECT min(batch) AS first, max(batch) AS last, (SELECT n FROM journal ORDER BY batch DESC LIMIT 1) AS n FROM journal").get() as any;
  return r?.last == null ? { last: 0, first: null } : { last: eventId(r.last, r.n - 1), first: eventId(r.first, 0) };
}

export async function pruneEvents(cx: SqliteContext, before: number): Promise<number> {
  return cx.db.query("DELETE FROM journal WHERE created_at < ?").run(before).changes;
}

export function onEvents(cx: SqliteContext, fn: (events: BarEvent[]) => void): () => void {
  cx.listeners.add(fn);
  return () => cx.listeners.delete(fn);
}

export async function tryLease(cx: SqliteContext, name: string, holder: string, ttlMs: number): Promise<boolean> {
  const now = Date.now();
  const r = cx.db
    .query(
      `INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE leases.holder = excluded.holder OR leases.expires_at < ?4
       RETURNING holder`,
    )
    .get(name, holder, now + ttlMs, now) as { holder: string } | null;
  return r?.holder === holder;
}

export async function releaseLease(cx: SqliteContext, name: string, holder: string): Promise<void> {
  cx.db.query("DELETE FROM leases WHERE name = ? AND holder = ?").run(name, holder);
}

/**
 * The journal entry of some bars of a batch given as columns (rows `at[0..count)`, ops one byte
 * each), in encodeJournal's format: the write path journals without making bar objects.
 */
export function encodeColumnsJournal(c: BarColumns, at: Uint32Array, ops: Uint8Array, count: number): JournalEntry {
  const keys = new Int32Array(c.series.length).fill(-1);
  const series: [string, string, string][] = [];
  const data = new Float64Array(count * JOURNAL_FIELDS);
  for (let k = 0; k < count; k++) {
    const i = at[k]!;
    const si = c.row[i]!;
    if (keys[si] === -1) {
      const s = c.series[si]!;
      keys[si] = series.length;
      series.push([s.source, s.symbol, s.interval]);
    }
    const o = k * JOURNAL_FIELDS;
    data[o] = keys[si]!;
    // ts, open, high, low, close, volume, adjClose, turnover, trades: the columns' own order.
    data.set(c.f64.subarray(i * COLUMN_WIDTH, i * COLUMN_WIDTH + COLUMN_WIDTH), o + 1);
  }
  return { series: JSON.stringify(series), ops: ops.slice(0, count), data: new Uint8Array(data.buffer), n: count };
}
