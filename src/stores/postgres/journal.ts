// The event journal: per batch, the keys of the bars it inserted or changed, numbered in commit
// order (src/stores/events.ts makes event ids of them); replayed by reading the bars back, and
// announced to other processes by NOTIFY on the schema's channel.
import { barAt, COLUMN_WIDTH, type BarColumns } from "../../domain/columns.ts";
import { decodeJournal, eventBatch, eventId, eventIndex, type BarEvent } from "../events.ts";
import { rowToBar } from "../rows.ts";
import type { PgContext } from "./context.ts";
import type { Tx } from "./sql.ts";

/** NOTIFY channel: a batch was journaled (payload: its batch number). One channel per schema. */
export const eventsChannel = (schema: string) => (schema.length <= 40 ? `ticksync_events_${schema}` : `ticksync_events_${Bun.hash(schema).toString(36)}`);

/** A journal row holding keys (series id, ts) rather than copies of the bars. */
const JOURNAL_KEYS = "keys:v1";

/** Advisory lock key that orders journal batch numbers by commit. */
export const JOURNAL_LOCK = 0x7469636b; // "tick"

/**
 * Last in a batch's transaction: the `n` bars it inserted or changed, as one journal row whose
 * number follows commit order (its lock is held until commit), and the NOTIFY that announces it.
 * `ids` holds each bar's series id; `changedKeys` which bars changed, by `series id|ts` (null:
 * every bar, all inserted). Returns the events for this process' listeners (none without any).
 */
export async function journalBatch(
  { schema, listeners }: PgContext,
  tx: Tx,
  runId: number,
  c: BarColumns,
  ids: Int32Array,
  changedKeys: Map<string, "insert" | "update"> | null,
  n: number,
): Promise<BarEvent[]> {
  const f = c.f64;
  // Keys only (series id and ts per bar): a copy of every bar would add a third to a
  // load's cost here; a replay reads the bars back by key (their current values).
  const keys = new Float64Array(n * 2);
  const ops = new Uint8Array(n);
  const changed = new Int32Array(n); // which bars, for this process' listeners
  let k = 0;
  for (let i = 0; i < c.n && k < n; i++) {
    const ts = f[i * COLUMN_WIDTH]!;
    const op = changedKeys ? changedKeys.get(`${ids[i]}|${ts}`) : "insert";
    if (!op) continue;
    keys[2 * k] = ids[i]!;
    keys[2 * k + 1] = ts;
    ops[k] = op === "update" ? 1 : 0;
    changed[k++] = i;
  }
  // One round trip (postgres.js pipelines what is sent together, in order): the lock, the
  // row, and the notification that is delivered when (and only if) this commits.
  const [, [row]] = await Promise.all([
    tx`SELECT pg_advisory_xact_lock(${JOURNAL_LOCK})`,
    tx`INSERT INTO journal (run_id, n, series, ops, data) VALUES (${runId}, ${k}, ${JOURNAL_KEYS}, ${Buffer.from(ops.buffer, 0, k)}, ${Buffer.from(keys.buffer, 0, k * 16)}) RETURNING batch`,
    tx`SELECT pg_notify(${eventsChannel(schema)}, currval(pg_get_serial_sequence('journal', 'batch'))::text)`,
  ]);
  const batch = Number(row!.batch);
  let events: BarEvent[] = [];
  if (listeners.size > 0) {
    events = new Array(k);
    for (let e = 0; e < k; e++) events[e] = { id: eventId(batch, e), type: "bar", op: ops[e] === 1 ? "update" : "insert", bar: barAt(c, changed[e]!) };
  }
  return events;
}

export async function eventsSince({ sql }: PgContext, after: number, limit: number): Promise<BarEvent[]> {
  const first = eventBatch(after);
  const perRead = Math.max(1, Math.ceil(limit / 100) + 1);
  const out: BarEvent[] = [];
  // Rows whose bars were all deleted since give no event: reading goes on past them, a page of
  // rows at a time, until `limit` events or the end (fewer than `limit`: the journal has no more).
  for (let next = first; ; ) {
    const rows = await sql`SELECT batch, series, ops, data FROM journal WHERE batch >= ${next} ORDER BY batch LIMIT ${perRead}`;
    await eventsOfRows(sql, rows, first, after, limit, out);
    if (out.length >= limit || rows.length < perRead) return out;
    next = Number(rows[rows.length - 1]!.batch) + 1;
  }
}

/** The events of some journal rows (from the event after `after` in its batch) into `out`, up to about `limit`. */
async function eventsOfRows(sql: PgContext["sql"], rows: readonly Record<string, any>[], first: number, after: number, limit: number, out: BarEvent[]): Promise<void> {
  for (const r of rows) {
    const batch = Number(r.batch);
    const from = batch === first ? eventIndex(after) + 1 : 0;
    if (r.series !== JOURNAL_KEYS) out.push(...decodeJournal(batch, r.series, r.ops, r.data, from));
    else {
      const raw: Uint8Array = r.data;
      const keys = new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      const sids: number[] = [];
      const tss: string[] = [];
      for (let i = from; i < r.ops.length; i++) {
        sids.push(keys[i * 2]!);
        tss.push(new Date(keys[i * 2 + 1]!).toISOString());
      }
      if (!sids.length) continue;
      // A bar deleted since (retention) has no event left to replay; the others keep their ids.
      const found = await sql`
        SELECT k.ord, s.source, s.symbol, s.interval, b.ts, b.open, b.high, b.low, b.close, b.volume, b.adj_close, b.turnover, b.trades
        FROM unnest(${sids}::int[], ${tss}::timestamptz[]) WITH ORDINALITY AS k(series_id, ts, ord)
        JOIN bars b ON b.series_id = k.series_id AND b.ts = k.ts JOIN series s ON s.id = k.series_id
        ORDER BY k.ord`;
      for (const f of found) {
        const i = from + Number(f.ord) - 1;
        out.push({ id: eventId(batch, i), type: "bar", op: r.ops[i] === 1 ? "update" : "insert", bar: rowToBar(f) });
      }
    }
    if (out.length >= limit) break;
  }
}

export async function eventBounds({ sql }: PgContext): Promise<{ last: number; first: number | null }> {
  const [r] = await sql`SELECT min(batch) AS first, max(batch) AS last FROM journal`;
  if (r?.last == null) return { last: 0, first: null };
  const [l] = await sql`SELECT n FROM journal WHERE batch = ${r.last}`;
  return { last: eventId(Number(r.last), Number(l!.n) - 1), first: eventId(Number(r.first), 0) };
}

export async function pruneEvents({ sql }: PgContext, before: number): Promise<number> {
  return (await sql`DELETE FROM journal WHERE created_at < ${new Date(before)}`).count;
}

export function onEvents({ listeners }: PgContext, fn: (events: BarEvent[]) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export async function watchEvents({ sql, schema }: PgContext, fn: () => void): Promise<() => Promise<void>> {
  const { unlisten } = await sql.listen(eventsChannel(schema), () => fn());
  return unlisten;
}
