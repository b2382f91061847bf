// The SQLite store's write path: a batch's bars, series, quarantine, run counters, checkpoint and
// journal entry in one transaction; and checkpoints written as they are (migration).
import { barsOf } from "../../domain/columns.ts";
import type { Bar } from "../../domain/bar.ts";
import { encodeJournal, eventId, type BarEvent } from "../events.ts";
import type { Checkpoint, CommitBatch, CommitResult } from "../types.ts";
import { writeStatements, type SqliteContext } from "./db.ts";

/** One batch, inside the transaction `commitBatch` opens; returns its events for the listeners. */
export function commitRows(cx: SqliteContext, b: CommitBatch): CommitResult & { events: BarEvent[] } {
  const s = writeStatements(cx);
  const now = Date.now();
  let inserted = 0;
  let updated = 0;
  let unchanged = 0;
  const changed: Bar[] = [];
  const ops: ("insert" | "update")[] = [];
  // New bars per series, so `series` stays exact without scanning `bars`.
  const series = new Map<string, { source: string; symbol: string; interval: string; first: number; last: number; n: number }>();
  const bars = barsOf(b.bars);
  for (const bar of bars) {
    const adj = bar.adjClose ?? null;
    const turnover = bar.turnover ?? null;
    const trades = bar.trades ?? null;
    const ins = s.insertBar.run(bar.symbol, bar.interval, bar.ts, bar.source, bar.open, bar.high, bar.low, bar.close, bar.volume, adj, turnover, trades, b.runId, now);
    if (ins.changes === 1) {
      inserted++;
      changed.push(bar);
      ops.push("insert");
      const key = `${bar.source}\u0000${bar.symbol}\u0000${bar.interval}`;
      const se = series.get(key);
      if (se) {
        se.n++;
        if (bar.ts < se.first) se.first = bar.ts;
        if (bar.ts > se.last) se.last = bar.ts;
      } else series.set(key, { source: bar.source, symbol: bar.symbol, interval: bar.interval, first: bar.ts, last: bar.ts, n: 1 });
      continue;
    }
    const upd = s.updateBar.run(bar.symbol, bar.interval, bar.ts, bar.source, bar.open, bar.high, bar.low, bar.close, bar.volume, adj, turnover, trades, b.runId, now);
    if (upd.changes === 1) {
      updated++;
      changed.push(bar);
      ops.push("update");
    } else unchanged++;
  }
  if (b.extras?.length)
    for (const bar of writeExtras(cx, b, bars, now)) {
      updated++;
      unchanged--;
      changed.push(bar);
      ops.push("update");
    }
  for (const se of series.values()) s.upsertSeries.run(se.source, se.symbol, se.interval, se.first, se.last, se.n);
  let quarantined = 0;
  for (const q of b.quarantine) {
    const r = s.quarantine.run(b.runId, b.source, q.locator, q.rule, q.reason, q.symbol ?? null, q.ts ?? null, JSON.stringify(q.raw), now);
    quarantined += r.changes;
  }
  let minTs: number | null = null;
  let maxTs: number | null = null;
  for (const bar of bars) {
    if (minTs === null || bar.ts < minTs) minTs = bar.ts;
    if (maxTs === null || bar.ts > maxTs) maxTs = bar.ts;
  }
  s.runProgress.run(b.runId, b.read, inserted, updated, unchanged, b.quarantine.length, minTs, maxTs);
  if (b.checkpoint) {
    const c = b.checkpoint;
    s.checkpoint.run(c.stream, JSON.stringify(c.cursor), c.lastTs, c.lastKey, b.runId, now);
  }
  let events: BarEvent[] = [];
  if (changed.length) {
    const j = encodeJournal(changed, ops);
    const { batch } = s.journal.get(b.runId, now, j.n, j.series, j.ops, j.data) as { batch: number };
    events = changed.map((bar, i) => ({ id: eventId(batch, i), type: "bar", op: ops[i]!, bar }));
  }
  return { inserted, updated, unchanged, quarantined, events };
}

/**
 * The batch's extras beside their bars. A bar whose extras changed while its prices did not is
 * given this run's id, so a sink's next sync re-sends it with the new values: those bars are
 * returned (counted as updated, journaled).
 */
function writeExtras(cx: SqliteContext, b: CommitBatch, bars: readonly Bar[], now: number): Bar[] {
  const put = cx.db.query(
    `INSERT INTO bar_extras (symbol, interval, ts, source, extras) VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT DO UPDATE SET extras = excluded.extras WHERE bar_extras.extras IS NOT excluded.extras`,
  );
  const touch = cx.db.query(`UPDATE bars SET run_id = ?5, updated_at = ?6 WHERE symbol = ?1 AND interval = ?2 AND ts = ?3 AND source = ?4 AND run_id <> ?5`);
  const remarked: Bar[] = [];
  let byKey: Map<string, Bar> | null = null;
  for (const e of b.extras!) {
    if (put.run(e.symbol, e.interval, e.ts, b.source, JSON.stringify(e.values)).changes !== 1) continue;
    if (touch.run(e.symbol, e.interval, e.ts, b.source, b.runId, now).changes !== 1) continue;
    byKey ??= new Map(bars.map((x) => [`${x.symbol}\u0000${x.interval}\u0000${x.ts}`, x]));
    const bar = byKey.get(`${e.symbol}\u0000${e.interval}\u0000${e.ts}`);
    if (bar) remarked.push(bar);
  }
  return remarked;
}

/** `commitRows` as one immediate transaction, made once per store. */
export type CommitTransaction = (b: CommitBatch) => CommitResult & { events: BarEvent[] };

export const commitTransaction = (cx: SqliteContext): CommitTransaction => {
  const tx = cx.db.transaction((b: CommitBatch) => commitRows(cx, b));
  return (b) => tx.immediate(b);
};

export async function commitBatch(cx: SqliteContext, commit: CommitTransaction, batch: CommitBatch): Promise<CommitResult> {
  const { events, ...result } = commit(batch);
  // After the commit, in commit order: SQLite commits one batch at a time, synchronously.
  if (events.length) for (const fn of cx.listeners) fn(events);
  return result;
}

export async function putCheckpoints(cx: SqliteContext, list: Checkpoint[], runId: number): Promise<void> {
  const s = writeStatements(cx);
  const now = Date.now();
  cx.db.transaction(() => {
    for (const c of list) s.checkpoint.run(c.stream, JSON.stringify(c.cursor), c.lastTs, c.lastKey, runId, now);
  }).immediate();
}
