// The QuestDB store's event journal (src/stores/events.ts). QuestDB has no sequence and no
// transaction, so the writing process numbers batches itself: from the highest number the tables
// hold (the journal, and a high-water mark in the progress table that pruning leaves), then one
// up per journaled batch, in the order of its single write queue. A batch's journal rows hold
// keys only (series and ts per event, like Postgres); a replay reads the bars back by key. They
// are written after the batch's bars and before its checkpoint (src/stores/questdb/queue.ts), so
// a journal row never names a bar QuestDB has not accepted, and WAL order makes every reader see
// a prefix of the batches in number order. What this cannot give: two processes writing at once
// would number batches apart (the writer lease refuses the second: src/stores/questdb/writer.ts),
// and a crash between a write's bars and its journal rows loses those events (docs/stores.md).
import { COLUMN_WIDTH, type BarColumns } from "../../domain/columns.ts";
import type { Bar, Interval } from "../../domain/bar.ts";
import { eventBatch, eventId, eventIndex, type BarEvent } from "../events.ts";
import { ms } from "../rows.ts";
import type { QdbContext, JournalCursor } from "./context.ts";
import { exec, lit, queryParts } from "./exec.ts";
import { str } from "./ilp.ts";
import { drain, writeProgress } from "./queue.ts";

/** Events per journal row: a big batch is split so no row's text grows without bound. */
export const JOURNAL_ROW_EVENTS = 10_000;

/** The bars of a batch being journaled: their rows in the batch's columns and op bytes, in event order. */
export type JournalKeys = { at: Uint32Array; ops: Uint8Array; n: number; updates: number };

export const journalKeys = (rows: number): JournalKeys => ({ at: new Uint32Array(rows), ops: new Uint8Array(rows), n: 0, updates: 0 });

/** The progress rows that keep the journal's numbering when its rows are gone: the last batch, and the pruned floor. */
export const journalMarkLine = (cx: QdbContext, key: "last" | "pruned", batch: number, now: number) =>
  `${cx.T.progress},kind=journal key="${key}",value=${batch}i,updated_at=${Math.round(now * 1000)}t 0\n`;

/**
 * The batch's journal rows as ILP lines (base64 of float64 pairs: the row's series index, ts; op
 * bytes only when some bar was updated). Rows of one batch share its designated timestamp, which
 * grows strictly from batch to batch (pruning goes by it).
 */
export function journalLines(cx: QdbContext, cursor: JournalCursor, batch: number, runId: number, c: BarColumns, k: JournalKeys): string {
  cursor.lastTs = Math.max(Date.now(), cursor.lastTs + 1);
  const local = new Int32Array(c.series.length).fill(-1);
  let out = "";
  for (let start = 0; start < k.n; start += JOURNAL_ROW_EVENTS) {
    const m = Math.min(JOURNAL_ROW_EVENTS, k.n - start);
    const series: [string, string, string][] = [];
    const used: number[] = [];
    const data = new Float64Array(m * 2);
    for (let j = 0; j < m; j++) {
      const i = k.at[start + j]!;
      const si = c.row[i]!;
      if (local[si] === -1) {
        const s = c.series[si]!;
        local[si] = series.length;
        used.push(si);
        series.push([s.source, s.symbol, s.interval]);
      }
      data[2 * j] = local[si]!;
      data[2 * j + 1] = c.f64[i * COLUMN_WIDTH]!;
    }
    for (const si of used) local[si] = -1;
    const ops = k.updates ? Buffer.from(k.ops.buffer, k.ops.byteOffset + start, m).toString("base64") : "";
    out +=
      `${cx.T.journal} batch_id=${batch}i,at_index=${start}i,events=${m}i,run_id=${runId}i,series=${str(JSON.stringify(series))},` +
      `ops="${ops}",data="${Buffer.from(data.buffer).toString("base64")}" ${cursor.lastTs}\n`;
  }
  return out;
}

/**
 * Wait until what `table`'s WAL held when asked is applied (unlike walApplied, it does not chase
 * writes that come after: a reader of a table written all the time still gets an answer).
 */
async function caughtUp(cx: QdbContext, table: string, timeoutMs = 60_000) {
  const { sql } = cx;
  const [first] = await sql`SELECT writerTxn, sequencerTxn, suspended FROM wal_tables() WHERE name = ${table}`;
  if (!first) return;
  const target = Number(first.sequencerTxn);
  const deadline = Date.now() + timeoutMs;
  for (let r = first; ; ) {
    if (r.suspended) throw new Error(`QuestDB suspended the WAL of ${table} (see its log)`);
    if (Number(r.writerTxn) >= target) return;
    if (Date.now() > deadline) throw new Error(`QuestDB did not apply the WAL of ${table} in time`);
    await Bun.sleep(10);
    [r] = await sql`SELECT writerTxn, sequencerTxn, suspended FROM wal_tables() WHERE name = ${table}`;
    if (!r) return;
  }
}

/** The journal's marks as stored: the last batch numbered, and the floor pruning left (0: none). */
async function marks(cx: QdbContext): Promise<{ last: number; pruned: number }> {
  const { sql, T } = cx;
  await caughtUp(cx, T.progress);
  const out = { last: 0, pruned: 0 };
  for (const r of await sql`SELECT key, value FROM ${sql(T.progress)} WHERE kind = 'journal'`) if (r.key === "last" || r.key === "pruned") out[r.key as "last" | "pruned"] = Number(r.value ?? 0);
  return out;
}

/** The writing process' numbering, loaded once from the tables (their WAL applied first). */
export async function journalCursor(cx: QdbContext): Promise<JournalCursor> {
  if (cx.journal) return cx.journal;
  const { sql, T } = cx;
  await drain(cx);
  await caughtUp(cx, T.journal);
  const m = await marks(cx);
  const [r] = await sql`SELECT max(batch_id) AS b, max(ts) AS t FROM ${sql(T.journal)}`;
  return (cx.journal = { nextBatch: Math.max(Number(r?.b ?? 0), m.last, m.pruned) + 1, lastTs: ms(r?.t) ?? 0 });
}


/** Symbols and timestamps per lookup query (its text travels in a GET's URL). */
const SYMBOLS_PER_QUERY = 100;
const TS_PER_QUERY = 500;

/** Stored bars by `symbol \0 ts` per (source, interval): what the journal's keys name, as stored now. */
async function barsByKey(cx: QdbContext, wanted: Map<string, { source: string; interval: string; symbols: Set<string>; ts: Set<number> }>) {
  const found = new Map<string, Bar>();
  for (const g of wanted.values()) {
    const times = [...g.ts].sort((a, b) => a - b);
    for (const symbols of queryParts([...g.symbols], (x) => x, SYMBOLS_PER_QUERY))
      for (let j = 0; j < times.length; j += TS_PER_QUERY) {
        const rows = await exec(
          cx,
          `SELECT symbol, cast(ts AS long), open, high, low, close, volume, adj_close, turnover, trades FROM "${cx.T.bars}" ` +
            `WHERE ts IN (${times.slice(j, j + TS_PER_QUERY).map((t) => Math.round(t * 1000)).join(",")}) AND source = ${lit(g.source)} AND interval = ${lit(g.interval)} ` +
            `AND symbol IN (${symbols.map(lit).join(",")})`,
        );
        for (const r of rows) {
          const bar: Bar = { source: g.source, symbol: r[0] as string, interval: g.interval as Interval, ts: (r[1] as number) / 1000, open: r[2] as number, high: r[3] as number, low: r[4] as number, close: r[5] as number, volume: r[6] as number };
          if (r[7] != null) bar.adjClose = r[7] as number;
          if (r[8] != null) bar.turnover = r[8] as number;
          if (r[9] != null) bar.trades = Number(r[9]);
          found.set(`${g.source}\u0000${g.interval}\u0000${bar.symbol}\u0000${bar.ts}`, bar);
        }
      }
  }
  return found;
}

/** Everything written so far (this process' gathered writes, and what other processes committed) readable. */
async function readable(cx: QdbContext) {
  await drain(cx);
  await caughtUp(cx, cx.T.journal);
}

export async function eventsSince(cx: QdbContext, after: number, limit: number): Promise<BarEvent[]> {
  const { sql, T } = cx;
  // What was sent, not what is still gathered: the stream's tailer polls this, and sending a
  // load's gathered writes early at each poll would cut them into many small ones.
  await caughtUp(cx, T.journal);
  const { pruned } = await marks(cx);
  const first = Math.max(eventBatch(after), pruned + 1);
  const skipTo = first === eventBatch(after) ? eventIndex(after) + 1 : 0;
  const rows = await sql`
    SELECT batch_id, at_index, events, series, ops, data FROM ${sql(T.journal)}
    WHERE batch_id >= ${first} AND (batch_id > ${first} OR at_index + events > ${skipTo})
    ORDER BY batch_id, at_index LIMIT ${Math.max(2, Math.ceil(limit / 100) + 2)}`;
  // The keys of the events to give, in id order, then their bars read back in a few queries.
  type Key = { id: number; op: "insert" | "update"; k: string };
  const keys: Key[] = [];
  const wanted = new Map<string, { source: string; interval: string; symbols: Set<string>; ts: Set<number> }>();
  let lastBatch = -1;
  for (const r of rows) {
    const batch = Number(r.batch_id);
    // Whole batches, as the other stores give them: stop at a new batch once there are enough.
    if (batch !== lastBatch && keys.length >= limit) break;
    lastBatch = batch;
    const at = Number(r.at_index);
    const series = JSON.parse(r.series) as [string, string, string][];
    const raw = Buffer.from(String(r.data), "base64");
    const f = new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const ops = r.ops ? Buffer.from(String(r.ops), "base64") : null;
    for (let j = batch === first ? Math.max(0, skipTo - at) : 0; j < Number(r.events); j++) {
      const [source, symbol, interval] = series[f[2 * j]!]!;
      const ts = f[2 * j + 1]!;
      const gk = `${source}\u0000${interval}`;
      let g = wanted.get(gk);
      if (!g) wanted.set(gk, (g = { source, interval, symbols: new Set(), ts: new Set() }));
      g.symbols.add(symbol);
      g.ts.add(ts);
      keys.push({ id: eventId(batch, at + j), op: ops?.[j] === 1 ? "update" : "insert", k: `${gk}\u0000${symbol}\u0000${ts}` });
    }
  }
  if (keys.length === 0) return [];
  // A journal row is committed after its bars: their WAL, as it is now, holds them.
  await caughtUp(cx, T.bars);
  const found = await barsByKey(cx, wanted);
  const out: BarEvent[] = [];
  for (const key of keys) {
    const bar = found.get(key.k);
    if (bar) out.push({ id: key.id, type: "bar", op: key.op, bar });
  }
  return out;
}

export async function eventBounds(cx: QdbContext): Promise<{ last: number; first: number | null }> {
  const { sql, T } = cx;
  await readable(cx);
  const { pruned } = await marks(cx);
  const [r] = await sql`SELECT min(batch_id) AS first, max(batch_id) AS last FROM ${sql(T.journal)} WHERE batch_id > ${pruned}`;
  if (r?.last == null) return { last: 0, first: null };
  const [l] = await sql`SELECT max(at_index + events) AS n FROM ${sql(T.journal)} WHERE batch_id = ${Number(r.last)}`;
  return { last: eventId(Number(r.last), Number(l!.n) - 1), first: eventId(Number(r.first), 0) };
}

/**
 * Batches journaled before `before` leave the journal: the pruned floor moves up to the last of
 * them (exact), then the day partitions wholly before it are dropped (QuestDB deletes no rows).
 */
export async function pruneEvents(cx: QdbContext, before: number): Promise<number> {
  const { sql, T } = cx;
  await readable(cx);
  const { pruned } = await marks(cx);
  const [r] = await sql`SELECT count_distinct(batch_id) AS n, max(batch_id) AS floor FROM ${sql(T.journal)} WHERE ts < ${new Date(before)} AND batch_id > ${pruned}`;
  const n = Number(r?.n ?? 0);
  if (n === 0) return 0;
  await writeProgress(cx, journalMarkLine(cx, "pruned", Number(r!.floor), Date.now()));
  await caughtUp(cx, T.progress);
  const day = Math.floor(before / 86_400_000) * 86_400_000;
  const [old] = await sql`SELECT count() AS n FROM ${sql(T.journal)} WHERE ts < ${new Date(day)}`;
  if (Number(old?.n ?? 0) > 0) await sql.unsafe(`ALTER TABLE "${T.journal}" DROP PARTITION WHERE ts < '${new Date(day).toISOString()}'`);
  return n;
}

export function onEvents(cx: QdbContext, fn: (events: BarEvent[]) => void): () => void {
  cx.listeners.add(fn);
  return () => cx.listeners.delete(fn);
}
