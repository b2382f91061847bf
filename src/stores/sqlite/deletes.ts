// The SQLite store's deletes of single bars (a table source's reconciliation, deleteMissing): the
// rows, their series' bounds and count, and a journal entry of "delete" events in one transaction,
// so the stream and the sinks see them as they see inserts and updates.
import { rowToBar } from "../rows.ts";
import type { Bar } from "../../domain/bar.ts";
import { decodeJournal, encodeJournal, eventBatch, eventId, eventIndex, type BarEvent } from "../events.ts";
import type { BarKey } from "../types.ts";
import { writeStatements, type SqliteContext } from "./db.ts";

export function deleteBarKeysTransaction(cx: SqliteContext) {
  const { db } = cx;
  const tx = db.transaction((runId: number, source: string, keys: BarKey[]): BarEvent[] => {
    const del = db.prepare("DELETE FROM bars WHERE symbol = ? AND interval = ? AND ts = ? AND source = ? RETURNING *");
    // A bar's extra columns (bar_extras) go with it.
    const delExtras = db.prepare("DELETE FROM bar_extras WHERE symbol = ? AND interval = ? AND ts = ? AND source = ?");
    const gone: Bar[] = [];
    const series = new Map<string, { symbol: string; interval: string; n: number }>();
    for (const k of keys) {
      const row = del.get(k.symbol, k.interval, k.ts, source) as Record<string, unknown> | null;
      if (!row) continue;
      delExtras.run(k.symbol, k.interval, k.ts, source);
      gone.push(rowToBar(row));
      const key = `${k.symbol}\u0000${k.interval}`;
      const se = series.get(key);
      if (se) se.n++;
      else series.set(key, { symbol: k.symbol, interval: k.interval, n: 1 });
    }
    for (const se of series.values()) {
      const b = db.query("SELECT min(ts) AS f, max(ts) AS l FROM bars WHERE symbol = ? AND interval = ? AND source = ?").get(se.symbol, se.interval, source) as { f: number | null; l: number | null };
      if (b.f === null) db.query("DELETE FROM series WHERE source = ? AND symbol = ? AND interval = ?").run(source, se.symbol, se.interval);
      else db.query("UPDATE series SET first_ts = ?, last_ts = ?, bars = bars - ? WHERE source = ? AND symbol = ? AND interval = ?").run(b.f, b.l, se.n, source, se.symbol, se.interval);
    }
    if (!gone.length) return [];
    const j = encodeJournal(gone, gone.map(() => "delete"));
    const { batch } = writeStatements(cx).journal.get(runId, Date.now(), j.n, j.series, j.ops, j.data) as { batch: number };
    return gone.map((bar, i) => ({ id: eventId(batch, i), type: "bar", op: "delete", bar }));
  });
  return async ({ runId, source, keys }: { runId: number; source: string; keys: BarKey[] }): Promise<number> => {
    const events = tx.immediate(runId, source, keys);
    if (events.length) for (const fn of cx.listeners) fn(events);
    return events.length;
  };
}

/** Delete events after `after` (fewer than `limit` only when no more): only journal batches holding one (an op byte 2) are decoded. */
export async function deletesSince(cx: SqliteContext, after: number, limit: number): Promise<BarEvent[]> {
  const rows = cx.db.query("SELECT batch, series, ops, data FROM journal WHERE batch >= ? AND instr(ops, X'02') > 0 ORDER BY batch");
  const out: BarEvent[] = [];
  for (const r of rows.iterate(eventBatch(after)) as IterableIterator<{ batch: number; series: string; ops: Uint8Array; data: Uint8Array }>) {
    for (const e of decodeJournal(r.batch, r.series, r.ops, r.data, r.batch === eventBatch(after) ? eventIndex(after) + 1 : 0)) if (e.op === "delete") out.push(e);
    if (out.length >= limit) break;
  }
  return out;
}
