// The PostgreSQL store's deletes of single bars (a table source's reconciliation, deleteMissing):
// in one transaction the rows and their extras, their series' bounds and counts, the rollups told
// which days to roll up again (rollups/index.ts, deleted), and a journal row of "delete" events holding the whole bars (a
// replay cannot read a deleted bar back by key), announced by NOTIFY as a commit's are.
import type { Bar } from "../../domain/bar.ts";
import { decodeJournal, encodeJournal, eventBatch, eventId, eventIndex, opByte, type BarEvent } from "../events.ts";
import { rowToBar } from "../rows.ts";
import type { BarKey } from "../types.ts";
import type { PgContext } from "./context.ts";
import { eventsChannel, JOURNAL_LOCK } from "./journal.ts";
import type { Tx } from "./sql.ts";

const iso = (t: number) => new Date(t).toISOString();

/** Delete these bars of `source`; returns how many existed. */
export async function deleteBarKeys(ctx: PgContext, { runId, source, keys }: { runId: number; source: string; keys: BarKey[] }): Promise<number> {
  if (keys.length === 0) return 0;
  const events = (await ctx.sql.begin((tx) => deleteInTx(ctx, tx, runId, source, keys))) as BarEvent[];
  if (events.length && ctx.listeners.size) for (const fn of ctx.listeners) fn(events);
  return events.length;
}

async function deleteInTx(ctx: PgContext, tx: Tx, runId: number, source: string, keys: BarKey[]): Promise<BarEvent[]> {
  // The series rows locked in id order, as every writer locks them, so counts and bounds stay exact.
  const pairs = [...new Set(keys.map((k) => `${k.symbol}\u0000${k.interval}`))].map((p) => p.split("\u0000"));
  const series = await tx`
    SELECT id, symbol, interval FROM series
    WHERE source = ${source} AND (symbol, interval) IN (SELECT * FROM unnest(${pairs.map((p) => p[0]!)}::text[], ${pairs.map((p) => p[1]!)}::text[]))
    ORDER BY id FOR UPDATE`;
  if (series.length === 0) return [];
  const idOf = new Map(series.map((s) => [`${s.symbol}\u0000${s.interval}`, s.id as number]));
  const sids: number[] = [];
  const tss: string[] = [];
  for (const k of keys) {
    const id = idOf.get(`${k.symbol}\u0000${k.interval}`);
    if (id !== undefined) sids.push(id), tss.push(iso(k.ts));
  }
  // In the order of the keys, as the SQLite store journals them.
  const rows = await tx`
    WITH d AS (
      DELETE FROM bars b USING unnest(${sids}::int[], ${tss}::timestamptz[]) WITH ORDINALITY AS k(series_id, ts, ord)
      WHERE b.series_id = k.series_id AND b.ts = k.ts
      RETURNING k.ord, b.series_id, b.ts, b.open, b.high, b.low, b.close, b.volume, b.adj_close, b.turnover, b.trades)
    SELECT d.*, s.source, s.symbol, s.interval FROM d JOIN series s ON s.id = d.series_id ORDER BY d.ord`;
  if (rows.length === 0) return [];
  const gone: Bar[] = rows.map((r) => rowToBar(r));
  const goneIds = rows.map((r) => r.series_id as number);
  const goneTs = rows.map((r) => iso((r.ts as Date).getTime()));
  // Per series: how many went, and the first and last of them (the rollups' range for the run).
  const per = new Map<number, { n: number; lo: number; hi: number }>();
  for (let i = 0; i < gone.length; i++) {
    const t = gone[i]!.ts;
    const p = per.get(goneIds[i]!);
    if (p) (p.n++, (p.lo = Math.min(p.lo, t)), (p.hi = Math.max(p.hi, t)));
    else per.set(goneIds[i]!, { n: 1, lo: t, hi: t });
  }
  const ids = [...per.keys()].sort((a, b) => a - b);
  // The bookkeeping in one round trip (postgres.js pipelines what is sent together).
  await Promise.all([
    // A bar's extra columns go with it.
    tx`DELETE FROM bar_extras e USING unnest(${goneIds}::int[], ${goneTs}::timestamptz[]) AS k(series_id, ts) WHERE e.series_id = k.series_id AND e.ts = k.ts`,
    // Exact bounds through the (series_id, ts) key; an emptied series keeps its row with bars = 0
    // (listSeries leaves it out; its id stays the rollups' and run_series' key), as retention does.
    tx`
      UPDATE series SET bars = series.bars - u.n,
        first_ts = coalesce((SELECT min(b.ts) FROM bars b WHERE b.series_id = series.id), series.first_ts),
        last_ts = coalesce((SELECT max(b.ts) FROM bars b WHERE b.series_id = series.id), series.last_ts)
      FROM unnest(${ids}::int[], ${ids.map((id) => String(per.get(id)!.n))}::bigint[]) AS u(id, n)
      WHERE series.id = u.id`,
  ]);
  await ctx.rollups.deleted(tx, runId, ids.map((id) => ({ id, ...per.get(id)! })), goneIds, goneTs);
  // Last, as a commit's journal row: the batch number follows commit order under the journal's lock.
  const j = encodeJournal(gone, gone.map(() => "delete"));
  const [, [row]] = await Promise.all([
    tx`SELECT pg_advisory_xact_lock(${JOURNAL_LOCK})`,
    tx`INSERT INTO journal (run_id, n, series, ops, data) VALUES (${runId}, ${j.n}, ${j.series}, ${Buffer.from(j.ops)}, ${Buffer.from(j.data)}) RETURNING batch`,
    tx`SELECT pg_notify(${eventsChannel(ctx.schema)}, currval(pg_get_serial_sequence('journal', 'batch'))::text)`,
  ]);
  const batch = Number(row!.batch);
  return gone.map((bar, i): BarEvent => ({ id: eventId(batch, i), type: "bar", op: "delete", bar }));
}

/** Journal rows read per query by deletesSince, and the op byte of a delete. */
const DELETE_OP = Buffer.from([opByte("delete")]);
const PAGE_ROWS = 50;

/**
 * Delete events after `after` (fewer than `limit` only when no more): only journal rows holding
 * one (an op byte 2; a commit's key rows hold 0 and 1) are read and decoded.
 */
export async function deletesSince({ sql }: PgContext, after: number, limit: number): Promise<BarEvent[]> {
  const first = eventBatch(after);
  const out: BarEvent[] = [];
  let from = first;
  for (;;) {
    const rows = await sql`
      SELECT batch, series, ops, data FROM journal
      WHERE batch >= ${from} AND position(${DELETE_OP}::bytea IN ops) > 0 ORDER BY batch LIMIT ${PAGE_ROWS}`;
    for (const r of rows) {
      const batch = Number(r.batch);
      for (const e of decodeJournal(batch, r.series, r.ops, r.data, batch === first ? eventIndex(after) + 1 : 0)) if (e.op === "delete") out.push(e);
      if (out.length >= limit) return out;
    }
    if (rows.length < PAGE_ROWS) return out;
    from = Number(rows[rows.length - 1]!.batch) + 1;
  }
}
