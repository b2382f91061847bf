// The SQLite store's write path: a batch's bars, series, quarantine, run counters, checkpoint and
// journal entry in one transaction; and checkpoints written as they are (migration).
// Bars are written in key order (series, then ts), so the primary key's B-tree is appended to
// page by page, whatever the file's order. Rows a series' stored range cannot hold are inserted
// by multi-row statements; rows inside it are read back in one range scan and compared, so an
// unchanged re-delivery writes nothing and journals nothing.
import type { Database, Statement } from "bun:sqlite";
import { barAt, barsOf, columnsOf, COLUMN_WIDTH, countOf, type BarColumns } from "../../domain/columns.ts";
import type { Bar } from "../../domain/bar.ts";
import { eventId, opOf, type BarEvent } from "../events.ts";
import type { Checkpoint, CommitBatch, CommitResult } from "../types.ts";
import { BAR_COLS, writeStatements, type SqliteContext, type WriteStatements } from "./db.ts";
import { encodeColumnsKeys } from "./journal.ts";

/** Rows per multi-row INSERT: 9 parameters each, well under SQLite's 32,766. */
const INSERT_ROWS = 256;
/**
 * Parameters per row of a multi-row INSERT: ts and the eight values. A statement holds one
 * series' rows, so symbol, interval, source, run_id and updated_at are five shared parameters:
 * binding the three strings once per statement rather than once per row is a tenth of the insert's cost.
 */
const ROW_PARAMS = 9;
const SHARED_PARAMS = 5;
const OP_INSERT = 0;
const OP_UPDATE = 1;

/** The batch path's own statements, per database: multi-row INSERTs by row count (INSERT_ROWS and the powers of two below it), and the range reads. */
type BatchStatements = { inserts: Map<number, Statement>; seriesRange: Statement; storedRange: Statement };
const batchStatements = new WeakMap<Database, BatchStatements>();

function statementsOf(db: Database): BatchStatements {
  let st = batchStatements.get(db);
  if (!st)
    batchStatements.set(
      db,
      (st = {
        inserts: new Map(),
        seriesRange: db.prepare("SELECT first_ts, last_ts FROM series WHERE source = ? AND symbol = ? AND interval = ?"),
        storedRange: db.prepare(
          "SELECT ts, open, high, low, close, volume, adj_close, turnover, trades FROM bars WHERE symbol = ?1 AND interval = ?2 AND ts BETWEEN ?3 AND ?4 AND source = ?5 ORDER BY ts",
        ),
      }),
    );
  return st;
}

/** Finalize the batch path's statements of a database being closed. */
export function dropBatchStatements(db: Database): void {
  const st = batchStatements.get(db);
  if (!st) return;
  for (const s of [...st.inserts.values(), st.seriesRange, st.storedRange]) s.finalize();
  batchStatements.delete(db);
}

function insertStatement(db: Database, rows: number): Statement {
  const byRows = statementsOf(db).inserts;
  let s = byRows.get(rows);
  if (!s) {
    const values: string[] = [];
    for (let r = 0, p = SHARED_PARAMS + 1; r < rows; r++, p += ROW_PARAMS) {
      const q: string[] = [];
      for (let k = 0; k < ROW_PARAMS; k++) q.push(`?${p + k}`);
      values.push(`(?1,?2,${q[0]},?3,${q.slice(1).join(",")},?4,?5)`);
    }
    // No ON CONFLICT: a row already stored fails the statement, which SQLite undoes alone; the
    // caller then writes those rows one by one.
    byRows.set(rows, (s = db.prepare(`INSERT INTO bars (${BAR_COLS}) VALUES ${values.join(",")}`)));
  }
  return s;
}

/** A number column's value as SQLite takes it: NaN (absent) is NULL. */
const nullable = (x: number) => (x !== x ? null : x);

/** One batch's state while it is written: what changed, in write order, and the series' new bars. */
type BatchWrite = {
  readonly c: BarColumns;
  readonly s: WriteStatements;
  readonly db: Database;
  readonly runId: number;
  readonly now: number;
  /** Per row of c: 0 unchanged (or not written yet), else its op + 1. */
  readonly opAt: Uint8Array;
  inserted: number;
  updated: number;
  /** Per series of c: bars inserted, and their first and last ts. */
  readonly added: Float64Array;
  readonly first: Float64Array;
  readonly last: Float64Array;
  /** Rows waiting for a multi-row INSERT, and the parameters it binds. */
  readonly pending: Uint32Array;
  nPending: number;
  readonly params: (string | number | null)[];
};

function noteChange(w: BatchWrite, i: number, op: number): void {
  w.opAt[i] = op + 1;
  if (op === OP_UPDATE) {
    w.updated++;
    return;
  }
  w.inserted++;
  const si = w.c.row[i]!;
  const t = w.c.f64[i * COLUMN_WIDTH]!;
  w.added[si]!++;
  if (t < w.first[si]!) w.first[si] = t;
  if (t > w.last[si]!) w.last[si] = t;
}

/** Rows one by one, as an upsert: insert, else update when a value differs (a file's duplicate rows, a stale series range). */
function writeRowByRow(w: BatchWrite, rows: Uint32Array, from: number, to: number): void {
  const { c, s } = w;
  const f = c.f64;
  for (let k = from; k < to; k++) {
    const i = rows[k]!;
    const se = c.series[c.row[i]!]!;
    const o = i * COLUMN_WIDTH;
    const args = [se.symbol, se.interval, f[o]!, se.source, f[o + 1]!, f[o + 2]!, f[o + 3]!, f[o + 4]!, f[o + 5]!, nullable(f[o + 6]!), nullable(f[o + 7]!), nullable(f[o + 8]!), w.runId, w.now] as const;
    if (s.insertBar.run(...args).changes === 1) noteChange(w, i, OP_INSERT);
    else if (s.updateBar.run(...args).changes === 1) noteChange(w, i, OP_UPDATE);
  }
}

/** `rows` pending rows (one series') from `from` in one multi-row INSERT; true when it went in (no row was stored already). */
function insertRows(w: BatchWrite, from: number, rows: number): boolean {
  const { c, params } = w;
  const f = c.f64;
  const se = c.series[c.row[w.pending[from]!]!]!;
  params[0] = se.symbol;
  params[1] = se.interval;
  params[2] = se.source;
  params.length = SHARED_PARAMS + rows * ROW_PARAMS;
  for (let k = 0, p = SHARED_PARAMS; k < rows; k++, p += ROW_PARAMS) {
    const o = w.pending[from + k]! * COLUMN_WIDTH;
    params[p] = f[o]!;
    params[p + 1] = f[o + 1]!;
    params[p + 2] = f[o + 2]!;
    params[p + 3] = f[o + 3]!;
    params[p + 4] = f[o + 4]!;
    params[p + 5] = f[o + 5]!;
    params[p + 6] = nullable(f[o + 6]!);
    params[p + 7] = nullable(f[o + 7]!);
    params[p + 8] = nullable(f[o + 8]!);
  }
  try {
    insertStatement(w.db, rows).run(...params);
  } catch (e) {
    if ((e as { code?: string }).code !== "SQLITE_CONSTRAINT_PRIMARYKEY") throw e;
    return false;
  }
  for (let k = 0; k < rows; k++) noteChange(w, w.pending[from + k]!, OP_INSERT);
  return true;
}

/** The pending rows, in statements of INSERT_ROWS (all: the rest in powers of two, so few statements are cached). */
function flushInserts(w: BatchWrite, all: boolean): void {
  let from = 0;
  while (w.nPending - from >= INSERT_ROWS || (all && w.nPending > from)) {
    const left = w.nPending - from;
    const rows = left >= INSERT_ROWS ? INSERT_ROWS : 2 ** Math.floor(Math.log2(left));
    if (!insertRows(w, from, rows)) writeRowByRow(w, w.pending, from, from + rows);
    from += rows;
  }
  w.pending.copyWithin(0, from, w.nPending);
  w.nPending -= from;
}

function queueInsert(w: BatchWrite, i: number): void {
  w.pending[w.nPending++] = i;
  if (w.nPending >= INSERT_ROWS) flushInserts(w, false);
}

/**
 * The row order to write in: by series in key order (symbol, interval, source), then by ts. A
 * counting sort by series keeps a file's order within each series; only a series whose rows are
 * out of ts order is sorted again.
 */
function keyOrder(c: BarColumns): { order: Uint32Array; starts: Uint32Array; bySeries: Uint32Array } {
  const ns = c.series.length;
  const bySeries = new Uint32Array(ns);
  for (let s = 0; s < ns; s++) bySeries[s] = s;
  const key = c.series;
  bySeries.sort((a, b) => (key[a]!.symbol < key[b]!.symbol ? -1 : key[a]!.symbol > key[b]!.symbol ? 1 : key[a]!.interval < key[b]!.interval ? -1 : key[a]!.interval > key[b]!.interval ? 1 : key[a]!.source < key[b]!.source ? -1 : key[a]!.source > key[b]!.source ? 1 : 0));
  const rank = new Uint32Array(ns);
  for (let r = 0; r < ns; r++) rank[bySeries[r]!] = r;
  const starts = new Uint32Array(ns + 1);
  for (let i = 0; i < c.n; i++) starts[rank[c.row[i]!]! + 1]!++;
  for (let r = 0; r < ns; r++) starts[r + 1]! += starts[r]!;
  const next = starts.slice(0, ns);
  const order = new Uint32Array(c.n);
  for (let i = 0; i < c.n; i++) order[next[rank[c.row[i]!]!]!++] = i;
  const f = c.f64;
  for (let r = 0; r < ns; r++) {
    let sorted = true;
    for (let k = starts[r]! + 1; k < starts[r + 1]! && sorted; k++) sorted = f[order[k - 1]! * COLUMN_WIDTH]! <= f[order[k]! * COLUMN_WIDTH]!;
    if (!sorted) order.subarray(starts[r]!, starts[r + 1]!).sort((a, b) => f[a * COLUMN_WIDTH]! - f[b * COLUMN_WIDTH]! || a - b);
  }
  return { order, starts, bySeries };
}

/** Whether row i differs from a stored row (ts, open, …, trades; NULL as NaN). */
function differs(f: Float64Array, i: number, stored: (number | null)[]): boolean {
  const o = i * COLUMN_WIDTH;
  for (let k = 1; k < COLUMN_WIDTH; k++) {
    const v = f[o + k]!;
    const x = stored[k];
    if (x === null || x === undefined ? v === v : v !== x) return true;
  }
  return false;
}

/**
 * One series' rows (order[from..to), by ts). Rows outside the series' stored range are new;
 * those inside it are compared with the stored rows of that range, read in one scan.
 */
function writeSeries(w: BatchWrite, order: Uint32Array, from: number, to: number, range: { first_ts: number; last_ts: number } | null): void {
  const { c } = w;
  const f = c.f64;
  // A bar given twice: each delivery in turn, as an upsert, so the last one stays.
  for (let k = from + 1; k < to; k++)
    if (f[order[k]! * COLUMN_WIDTH]! === f[order[k - 1]! * COLUMN_WIDTH]!) {
      writeRowByRow(w, order, from, to);
      return;
    }
  if (!range || f[order[from]! * COLUMN_WIDTH]! > range.last_ts || f[order[to - 1]! * COLUMN_WIDTH]! < range.first_ts) {
    for (let k = from; k < to; k++) queueInsert(w, order[k]!);
    return;
  }
  let lo = from;
  while (lo < to && f[order[lo]! * COLUMN_WIDTH]! < range.first_ts) queueInsert(w, order[lo++]!);
  let hi = to;
  while (hi > lo && f[order[hi - 1]! * COLUMN_WIDTH]! > range.last_ts) hi--;
  if (hi > lo) {
    const se = c.series[c.row[order[lo]!]!]!;
    const stored = statementsOf(w.db).storedRange.values(se.symbol, se.interval, f[order[lo]! * COLUMN_WIDTH]!, f[order[hi - 1]! * COLUMN_WIDTH]!, se.source) as (number | null)[][];
    let j = 0;
    const changedRows: number[] = [];
    for (let k = lo; k < hi; k++) {
      const t = f[order[k]! * COLUMN_WIDTH]!;
      while (j < stored.length && (stored[j]![0] as number) < t) j++;
      if (j < stored.length && stored[j]![0] === t) {
        if (differs(f, order[k]!, stored[j]!)) changedRows.push(k);
      } else queueInsert(w, order[k]!);
    }
    // Changed rows are rare (a revision); each one is written by the row-by-row upsert.
    for (const k of changedRows) writeRowByRow(w, order, k, k + 1);
  }
  for (let k = hi; k < to; k++) queueInsert(w, order[k]!);
}

/** One batch, inside the transaction `commitBatch` opens; returns its events for the listeners. */
export function commitRows(cx: SqliteContext, b: CommitBatch, wantEvents = true): CommitResult & { events: BarEvent[] } {
  const s = writeStatements(cx);
  const now = Date.now();
  const c = columnsOf(b.bars);
  const ns = c.series.length;
  const w: BatchWrite = {
    c,
    s,
    db: cx.db,
    runId: b.runId,
    now,
    opAt: new Uint8Array(c.n),
    inserted: 0,
    updated: 0,
    added: new Float64Array(ns),
    first: new Float64Array(ns).fill(Infinity),
    last: new Float64Array(ns).fill(-Infinity),
    pending: new Uint32Array(INSERT_ROWS * 2),
    nPending: 0,
    params: [null, null, null, b.runId, now],
  };
  const { order, starts, bySeries } = keyOrder(c);
  for (let r = 0; r < ns; r++) {
    if (starts[r] === starts[r + 1]) continue;
    const se = c.series[bySeries[r]!]!;
    const range = statementsOf(cx.db).seriesRange.get(se.source, se.symbol, se.interval) as { first_ts: number; last_ts: number } | null;
    writeSeries(w, order, starts[r]!, starts[r + 1]!, range);
    flushInserts(w, true); // a statement holds one series' rows
  }
  let unchanged = c.n - w.inserted - w.updated;
  // Events in the batch's own order (it was written in key order), then bars remarked for their extras.
  const remarked = b.extras?.length ? writeExtras(cx, b, c, now) : [];
  const changed = new Uint32Array(w.inserted + w.updated + remarked.length);
  const ops = new Uint8Array(changed.length);
  let nChanged = 0;
  for (let i = 0; i < c.n; i++)
    if (w.opAt[i] !== 0) {
      changed[nChanged] = i;
      ops[nChanged++] = w.opAt[i]! - 1;
    }
  for (const i of remarked) {
    w.updated++;
    unchanged--;
    changed[nChanged] = i;
    ops[nChanged++] = OP_UPDATE;
  }
  for (let si = 0; si < ns; si++) {
    if (w.added[si] === 0) continue;
    const se = c.series[si]!;
    s.upsertSeries.run(se.source, se.symbol, se.interval, w.first[si]!, w.last[si]!, w.added[si]!);
  }
  let quarantined = 0;
  for (const q of b.quarantine) {
    const r = s.quarantine.run(b.runId, b.source, q.locator, q.rule, q.reason, q.symbol ?? null, q.ts ?? null, JSON.stringify(q.raw), now);
    quarantined += r.changes;
  }
  let minTs: number | null = null;
  let maxTs: number | null = null;
  for (let o = 0; o < c.n * COLUMN_WIDTH; o += COLUMN_WIDTH) {
    const t = c.f64[o]!;
    if (minTs === null || t < minTs) minTs = t;
    if (maxTs === null || t > maxTs) maxTs = t;
  }
  s.runProgress.run(b.runId, b.read, w.inserted, w.updated, unchanged, b.quarantine.length, minTs, maxTs);
  if (b.checkpoint) {
    const cp = b.checkpoint;
    s.checkpoint.run(cp.stream, JSON.stringify(cp.cursor), cp.lastTs, cp.lastKey, b.runId, now);
  }
  const events: BarEvent[] = [];
  if (nChanged) {
    const j = encodeColumnsKeys(c, changed, ops, nChanged);
    const { batch } = s.journal.get(b.runId, now, j.n, j.series, j.ops, j.data) as { batch: number };
    // Bar objects only for someone listening in this process.
    if (wantEvents) for (let k = 0; k < nChanged; k++) events.push({ id: eventId(batch, k), type: "bar", op: opOf(ops[k]), bar: barAt(c, changed[k]!) });
  }
  return { inserted: w.inserted, updated: w.updated, unchanged, quarantined, events };
}

/**
 * The batch's extras beside their bars. A bar whose extras changed while its prices did not is
 * given this run's id, so a sink's next sync re-sends it with the new values: those bars' rows
 * in the columns are returned (counted as updated, journaled).
 */
function writeExtras(cx: SqliteContext, b: CommitBatch, c: BarColumns, now: number): number[] {
  const put = cx.db.query(
    `INSERT INTO bar_extras (symbol, interval, ts, source, extras) VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT DO UPDATE SET extras = excluded.extras WHERE bar_extras.extras IS NOT excluded.extras`,
  );
  const touch = cx.db.query(`UPDATE bars SET run_id = ?5, updated_at = ?6 WHERE symbol = ?1 AND interval = ?2 AND ts = ?3 AND source = ?4 AND run_id <> ?5`);
  const remarked: number[] = [];
  let byKey: Map<string, number> | null = null;
  for (const e of b.extras!) {
    if (put.run(e.symbol, e.interval, e.ts, b.source, JSON.stringify(e.values)).changes !== 1) continue;
    if (touch.run(e.symbol, e.interval, e.ts, b.source, b.runId, now).changes !== 1) continue;
    if (!byKey) {
      const bars: readonly Bar[] = barsOf(c);
      byKey = new Map(bars.map((x, i) => [`${x.symbol}\u0000${x.interval}\u0000${x.ts}`, i]));
    }
    const i = byKey.get(`${e.symbol}\u0000${e.interval}\u0000${e.ts}`);
    if (i !== undefined) remarked.push(i);
  }
  return remarked;
}

/** `commitRows` as one immediate transaction, made once per store. */
export type CommitTransaction = (b: CommitBatch) => CommitResult & { events: BarEvent[] };

/**
 * Checkpoints by batch size. A bulk batch (a file, a backfill) checkpoints every 64 MiB of WAL:
 * each checkpoint fsyncs the WAL and the file, and at SQLite's 4 MiB a load of a million bars
 * paid 80 of them (tens of milliseconds each on a busy disk). Small batches (a live feed) keep
 * SQLite's 4 MiB, so no commit of theirs waits behind a 64 MiB checkpoint (a stall a stream's
 * p99 latency would show). Set before each commit, as the checkpoint runs at commit.
 */
const BULK_ROWS = 5_000;
const BULK_CHECKPOINT_PAGES = 16_384;
const CHECKPOINT_PAGES = 1_000;

export const commitTransaction = (cx: SqliteContext): CommitTransaction => {
  const tx = cx.db.transaction((b: CommitBatch) => commitRows(cx, b, cx.listeners.size > 0));
  return (b) => {
    const pages = countOf(b.bars) >= BULK_ROWS ? BULK_CHECKPOINT_PAGES : CHECKPOINT_PAGES;
    if (cx.checkpointPages !== pages) {
      cx.db.exec(`PRAGMA wal_autocheckpoint = ${pages}`);
      cx.checkpointPages = pages;
    }
    return tx.immediate(b);
  };
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
