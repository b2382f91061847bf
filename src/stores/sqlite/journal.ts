// The SQLite store's event journal (src/stores/events.ts) and its leases. Inserted and updated
// bars are journaled as keys (series, ts), as the PostgreSQL store does: copies of the bars made
// the journal 80 bytes a bar, two fifths of a first load's bytes; a replay reads the bars back by
// key (their current values; a bar deleted since has no event left, the others keep their ids).
// Deletes keep whole bars (the bar as it was), in encodeJournal's format.
import type { Statement } from "bun:sqlite";
import { COLUMN_WIDTH, type BarColumns } from "../../domain/columns.ts";
import { decodeJournal, eventBatch, eventId, eventIndex, opOf, type BarEvent, type JournalEntry } from "../events.ts";
import { rowToBar } from "../rows.ts";
import type { SqliteContext } from "./db.ts";

/** A journal row of keys: `series` is this prefix, then the JSON of its (source, symbol, interval) triples. */
export const JOURNAL_KEYS = "keys:v1:";

const barByKey = new WeakMap<SqliteContext["db"], Statement>();

/** The events of a keys row from `from` on: each bar read back by its key. */
function keyEvents(cx: SqliteContext, batch: number, series: string, ops: Uint8Array, data: Uint8Array, from: number, out: BarEvent[], limit: number): void {
  const triples = JSON.parse(series.slice(JOURNAL_KEYS.length)) as [string, string, string][];
  const keys = new Float64Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  let get = barByKey.get(cx.db);
  if (!get) barByKey.set(cx.db, (get = cx.db.prepare("SELECT open, high, low, close, volume, adj_close, turnover, trades FROM bars WHERE symbol = ? AND interval = ? AND ts = ? AND source = ?")));
  for (let i = from; i < ops.length && out.length < limit; i++) {
    const [source, symbol, interval] = triples[keys[2 * i]!]!;
    const ts = keys[2 * i + 1]!;
    const r = get.get(symbol, interval, ts, source) as Record<string, number | null> | null;
    if (!r) continue; // deleted since
    const bar = rowToBar({ source, symbol, interval, ts, ...r });
    out.push({ id: eventId(batch, i), type: "bar", op: opOf(ops[i]), bar });
  }
}

/** Journal rows read per query by eventsSince (a row is one batch, up to 2^20 events). */
const ROWS_PER_READ = 64;

/**
 * Up to `limit` events after `after`, in id order. Rows whose bars were all deleted since give no
 * event: reading goes on past them (a page of rows at a time) until `limit` events or the end, so
 * fewer than `limit` means the journal has no more, as the tailer takes it.
 */
export async function eventsSince(cx: SqliteContext, after: number, limit: number): Promise<BarEvent[]> {
  const page = cx.db.query("SELECT batch, series, ops, data FROM journal WHERE batch > ? ORDER BY batch LIMIT ?");
  const out: BarEvent[] = [];
  const first = eventBatch(after);
  // The batch holding `after` first (from the event after it), then the batches after it.
  const head = cx.db.query("SELECT batch, series, ops, data FROM journal WHERE batch = ?").all(first) as any[];
  let rows = head;
  let last = first;
  for (;;) {
    for (const r of rows) {
      const from = r.batch === first ? eventIndex(after) + 1 : 0;
      if ((r.series as string).startsWith(JOURNAL_KEYS)) keyEvents(cx, r.batch, r.series, r.ops, r.data, from, out, limit);
      else out.push(...decodeJournal(r.batch, r.series, r.ops, r.data, from));
      if (out.length >= limit) return out;
      last = r.batch;
    }
    if (rows !== head && rows.length < ROWS_PER_READ) return out;
    rows = page.all(last, ROWS_PER_READ) as any[];
    if (!rows.length) return out;
  }
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
 * each), as keys: per bar its series' place in the entry's triples and its ts, two float64s.
 */
export function encodeColumnsKeys(c: BarColumns, at: Uint32Array, ops: Uint8Array, count: number): JournalEntry {
  const keys = new Int32Array(c.series.length).fill(-1);
  const series: [string, string, string][] = [];
  const data = new Float64Array(count * 2);
  for (let k = 0; k < count; k++) {
    const i = at[k]!;
    const si = c.row[i]!;
    if (keys[si] === -1) {
      const s = c.series[si]!;
      keys[si] = series.length;
      series.push([s.source, s.symbol, s.interval]);
    }
    data[2 * k] = keys[si]!;
    data[2 * k + 1] = c.f64[i * COLUMN_WIDTH]!;
  }
  return { series: JOURNAL_KEYS + JSON.stringify(series), ops: ops.slice(0, count), data: new Uint8Array(data.buffer), n: count };
}
