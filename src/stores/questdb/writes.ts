// The QuestDB store's write path. QuestDB has no transaction across tables, so a batch is
// checked whole before anything is written; its quarantine goes over PG wire; its bars, then its
// run's counters and checkpoint, join the gathered write (src/stores/questdb/queue.ts). What the
// table holds already is looked up only for bars at or before their series' newest stored ts.
import { barAt, COLUMN_WIDTH, columnsOf, type BarColumns } from "../../domain/columns.ts";
import type { Rejection } from "../../domain/quality.ts";
import { eventId } from "../events.ts";
import { date, ms } from "../rows.ts";
import type { BarExtras } from "../../domain/bar.ts";
import type { CommitBatch, CommitResult } from "../types.ts";
import { nextId, seriesKey, walApplied, widen, type Counters, type JournalCursor, type QdbContext, type SeriesState } from "./context.ts";
import { ilpBuffer, ilpLine, micros, room, tag, utf8 } from "./ilp.ts";
import { journalCursor, journalKeys, journalLines, journalMarkLine } from "./journal.ts";
import { holdWriter } from "./writer.ts";
import { hashSums, MAX_SUMMED, rowHashes } from "./rowhash.ts";
import { rowHashKey } from "./schema.ts";
import { getRun } from "./ledger.ts";
import { exec, lit, queryParts } from "./exec.ts";
import { barsSettled, checkpointLine, counterLine, flush, refusal, settled, streamFull, WRITE_DELAY_MS, writeLimit, writeLines } from "./queue.ts";

/** Equal numbers, or both null (NaN in columns). */
const same = (a: number, b: number) => a === b || (a !== a && b !== b);

/** A series' state with no bar stored yet (`last`: its newest stored ts). */
const seriesState = (cx: QdbContext, source: string, symbol: string, interval: string, last = -Infinity): SeriesState => ({
  last,
  head: utf8.encode(`${cx.T.bars},symbol=${tag(symbol)},interval=${tag(interval)},source=${tag(source)} `),
  key: seriesKey(source, interval, symbol),
});

async function newestBySeries(cx: QdbContext): Promise<Map<string, Map<string, SeriesState>>> {
  if (cx.newest) return cx.newest;
  const { sql, T } = cx;
  await settled(cx);
  const m = new Map<string, Map<string, SeriesState>>();
  for (const r of await sql`SELECT source, symbol, interval, max(ts) AS last_ts FROM ${sql(T.bars)} GROUP BY source, symbol, interval`)
    seriesGroup(m, r.source, r.interval).set(r.symbol, seriesState(cx, r.source, r.symbol, r.interval, ms(r.last_ts)!));
  return (cx.newest = m);
}

function seriesGroup(m: Map<string, Map<string, SeriesState>>, source: string, interval: string) {
  const k = `${source}\u0000${interval}`;
  let g = m.get(k);
  if (!g) m.set(k, (g = new Map()));
  return g;
}

/** No transaction to roll back: refuse a bad batch before anything is written. */
function refuseNonFinite(c: BarColumns) {
  const f = c.f64;
  for (let i = 0, k = 0; i < c.n; i++, k += COLUMN_WIDTH)
    if (!(Number.isFinite(f[k]!) && Number.isFinite(f[k + 1]!) && Number.isFinite(f[k + 2]!) && Number.isFinite(f[k + 3]!) && Number.isFinite(f[k + 4]!) && Number.isFinite(f[k + 5]!))) {
      const bar = barAt(c, i);
      for (const key of ["ts", "open", "high", "low", "close", "volume"] as const)
        if (!Number.isFinite(bar[key])) throw new Error(`bar ${bar.symbol} ${bar.ts}: ${key} is not a finite number`);
    }
}

/** QuestDB's limit, as a quarantine record gives it. */
export const BEFORE_1970 = "QuestDB cannot store a bar before 1970-01-01 (a designated timestamp cannot be negative)";

/**
 * Bars before 1970, which QuestDB refuses (its /write answers 400 for the whole request, which
 * would take the other batches of the write with it): quarantined here with QuestDB's limit as
 * the reason, and the rest of the batch kept. Null when there are none (the usual case: one
 * comparison per bar, nothing allocated).
 */
function refuseBefore1970(c: BarColumns): { kept: BarColumns; refused: Rejection[] } | null {
  const f = c.f64;
  let n = 0;
  for (let i = 0, k = 0; i < c.n; i++, k += COLUMN_WIDTH) if (f[k]! < 0) n++;
  if (n === 0) return null;
  const kept: BarColumns = { n: c.n - n, series: c.series, row: new Uint32Array(c.n - n), f64: new Float64Array((c.n - n) * COLUMN_WIDTH) };
  const refused: Rejection[] = [];
  for (let i = 0, k = 0, j = 0; i < c.n; i++, k += COLUMN_WIDTH) {
    if (f[k]! >= 0) {
      kept.row[j] = c.row[i]!;
      kept.f64.set(f.subarray(k, k + COLUMN_WIDTH), j++ * COLUMN_WIDTH);
      continue;
    }
    const bar = barAt(c, i);
    const when = new Date(bar.ts).toISOString();
    const raw: Record<string, unknown> = { ...bar, ts: when };
    delete raw.source;
    refused.push({ locator: `${bar.symbol} ${bar.interval} ${when}`, rule: "timestamp", reason: `${BEFORE_1970}: ${bar.symbol} ${bar.interval} ${when}`, raw, symbol: bar.symbol, ts: bar.ts });
  }
  return { kept, refused };
}

/** The run's counters so far: loaded once per run, then kept in the context. */
async function runCounters(cx: QdbContext, runId: number): Promise<Counters | undefined> {
  let run = cx.counters.get(runId);
  if (!run) {
    const r = await getRun(cx, runId);
    if (r) cx.counters.set(runId, (run = { read: r.read, inserted: r.inserted, updated: r.updated, unchanged: r.unchanged, quarantined: r.quarantined, fromTs: r.fromTs, toTs: r.toTs }));
  }
  return run;
}

/**
 * The stored rows a batch may overwrite: per batch series, stored ts → row of `values` (the eight
 * compared columns open … trades per row, null as NaN). Numbers only: no object or string per row.
 */
type Stored = { rows: (Map<number, number> | undefined)[]; values: Float64Array; meta: Float64Array };
const VALUES = 8;
/** Per stored row in `meta`: its run_id, updated_at (µs) and row_hash (NaN for null). */
const META = 3;

/** Symbols per lookup query: its text travels in the URL of a GET. */
const SYMBOLS_PER_QUERY = 100;
/**
 * The rows stored for these series of the batch within [lo, hi], read over HTTP `/exec` as JSON:
 * for series whose hash totals differ from the batch's (`hashTotals`), about 1.5 µs of QuestDB
 * per bar. Measured on 1,250,000 bars read back in batches: `/exec` + JSON.parse took a third
 * of the client CPU and less of QuestDB's than the same query over PG wire with postgres.js
 * (both give doubles back exactly).
 */
async function storedRows(cx: QdbContext, c: BarColumns, wanted: Set<number>, lo: number, hi: number): Promise<Stored> {
  const groups = new Map<string, { source: string; interval: string; bySymbol: Map<string, number> }>();
  for (const s of wanted) {
    const x = c.series[s]!;
    const k = `${x.source}\u0000${x.interval}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { source: x.source, interval: x.interval, bySymbol: new Map() }));
    g.bySymbol.set(x.symbol, s);
  }
  const range = `ts BETWEEN ${lit(new Date(lo).toISOString())} AND ${lit(new Date(hi).toISOString())}`;
  const parts: { bySymbol: Map<string, number>; rows: unknown[][] }[] = [];
  let total = 0;
  for (const g of groups.values()) {
    for (const symbols of queryParts([...g.bySymbol.keys()], (x) => x, SYMBOLS_PER_QUERY)) {
      const query =
        `SELECT symbol, cast(ts AS long) AS ts, open, high, low, close, volume, adj_close, turnover, trades, run_id, cast(updated_at AS long), row_hash FROM "${cx.T.bars}" ` +
        `WHERE ${range} AND source = ${lit(g.source)} AND interval = ${lit(g.interval)} AND symbol IN (${symbols.map(lit).join(",")})`;
      const rows = await exec(cx, query);
      parts.push({ bySymbol: g.bySymbol, rows });
      total += rows.length;
    }
  }
  const stored: Stored = { rows: new Array(c.series.length), values: new Float64Array(total * VALUES), meta: new Float64Array(total * META) };
  let at = 0;
  for (const { bySymbol, rows } of parts)
    for (const r of rows) {
      const s = bySymbol.get(r[0] as string)!;
      (stored.rows[s] ??= new Map()).set((r[1] as number) / 1000, at);
      for (let j = 0, o = at * VALUES; j < VALUES; j++, o++) stored.values[o] = (r[2 + j] as number | null) ?? NaN;
      for (let j = 0, o = at * META; j < META; j++, o++) stored.meta[o] = (r[2 + VALUES + j] as number | null) ?? NaN;
      at++;
    }
  return stored;
}

/**
 * What the table holds of a batch's bars. Bars after their series' newest stored ts (`before`)
 * are new by construction. For the rest, QuestDB first counts and sums the row hashes stored in
 * each series' range (`hashTotals`): a series whose count and sum are the batch's own is stored
 * unchanged (`unchanged`), one with nothing stored there is all new; only the others are read
 * back bar by bar (`stored`). `forced`: bars of unchanged series written again all the same
 * (their extras changed), as `${series}\0${ts}`.
 */
type Lookup = { stored: Stored | null; unchanged: Uint8Array; before: Float64Array; forced?: Set<string> };

/**
 * Each series' state, the run's ts range with the batch's, and what the table holds for the
 * batch's bars (`Lookup`).
 */
async function existingBars(cx: QdbContext, c: BarColumns, hashes: Float64Array, lo: number | null, hi: number | null) {
  const f = c.f64;
  const all = await newestBySeries(cx);
  const states = c.series.map((x) => {
    const group = seriesGroup(all, x.source, x.interval);
    let st = group.get(x.symbol);
    if (!st) group.set(x.symbol, (st = seriesState(cx, x.source, x.symbol, x.interval)));
    return st;
  });
  const S = c.series.length;
  const before = Float64Array.from(states, (st) => st.last);
  // Per series, of its bars at or before `before`: how many, their ts range, their hashes' sum.
  const count = new Float64Array(S);
  const from = new Float64Array(S).fill(Infinity);
  const to = new Float64Array(S).fill(-Infinity);
  const sums = hashSums(S);
  for (let i = 0, k = 0; i < c.n; i++, k += COLUMN_WIDTH) {
    const ts = f[k]!;
    const s = c.row[i]!;
    if (ts <= before[s]!) {
      count[s] = count[s]! + 1;
      if (ts < from[s]!) from[s] = ts;
      if (ts > to[s]!) to[s] = ts;
      sums.add(s, hashes[i]!);
    }
    if (lo === null || ts < lo) lo = ts;
    if (hi === null || ts > hi) hi = ts;
  }
  const lookup: Lookup = { stored: null, unchanged: new Uint8Array(S), before };
  const maybe: number[] = [];
  for (let s = 0; s < S; s++) if (count[s]! > 0) maybe.push(s);
  if (maybe.length > 0) {
    // Bars this process wrote are readable only once applied: waited for when they may be among
    // those looked up (a write ends there, so a batch that overlaps the one before costs a
    // transaction of its own; one that does not, as in a re-load, keeps the write going).
    if (maybe.some((s) => {
      const r = cx.unsettled.get(states[s]!.key);
      return r !== undefined && r.lo <= to[s]! && r.hi >= from[s]!;
    }))
      await barsSettled(cx);
    const totals = await hashTotals(cx, c, maybe, from, to);
    const rest = new Set<number>();
    let rlo = Infinity;
    let rhi = -Infinity;
    for (const s of maybe) {
      const t = totals.get(s);
      if (!t) continue; // nothing stored in its range: all new
      if (t.n === count[s] && t.hashed === t.n && count[s]! <= MAX_SUMMED && t.sum === sums.total(s)) lookup.unchanged[s] = 1;
      else rest.add(s), (rlo = Math.min(rlo, from[s]!)), (rhi = Math.max(rhi, to[s]!));
    }
    if (rest.size > 0) lookup.stored = await storedRows(cx, c, rest, rlo, rhi);
  }
  return { lookup, states, lo, hi };
}

/**
 * Series per hash-totals query (its text travels in the URL of a GET): all of a batch's series
 * that share a range go in one (a file by day: each query costs QuestDB a few ms whatever it
 * holds), those given their own ranges 50 at a time.
 */
const SERIES_PER_TOTALS = { shared: 1000, own: 50 };
/**
 * Hash-totals queries per (source, interval) of a batch that filter by one ts range; series with
 * other ranges share queries that give each its own (an OR of ranges, which QuestDB evaluates
 * about three times slower per bar than one range: 32 against 10 ms for a batch of 8 series at
 * 5,000,000 bars). A file by symbol makes a batch's middle series share one range and the two at
 * its ends each have their own; a file by day gives them all one.
 */
const RANGE_QUERIES = 4;

/**
 * Per series: its stored bars in [from, to] counted, those with a row hash counted, and their
 * hashes' sum mod 2^64 (QuestDB's LONG sum wraps; read as text, as JSON would round it).
 */
async function hashTotals(cx: QdbContext, c: BarColumns, wanted: number[], from: Float64Array, to: Float64Array) {
  const out = new Map<number, { n: number; hashed: number; sum: bigint | null }>();
  // Per (source, interval), then per ts range.
  const groups = new Map<string, Map<string, number[]>>();
  for (const s of wanted) {
    const x = c.series[s]!;
    const k = `${x.source}\u0000${x.interval}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = new Map()));
    const r = `${from[s]} ${to[s]}`;
    const same = g.get(r);
    if (same) same.push(s);
    else g.set(r, [s]);
  }
  const iso = (t: number) => lit(new Date(t).toISOString());
  const ask = async (part: number[], own: boolean) => {
    const { source, interval } = c.series[part[0]!]!;
    const bySymbol = new Map(part.map((s) => [c.series[s]!.symbol, s]));
    let glo = Infinity;
    let ghi = -Infinity;
    for (const s of part) (glo = Math.min(glo, from[s]!)), (ghi = Math.max(ghi, to[s]!));
    const ranges = own ? ` AND (${part.map((s) => `(symbol = ${lit(c.series[s]!.symbol)} AND ts BETWEEN ${iso(from[s]!)} AND ${iso(to[s]!)})`).join(" OR ")})` : "";
    const query =
      `SELECT symbol, count() AS n, count(row_hash) AS hashed, cast(sum(row_hash) AS string) AS total FROM "${cx.T.bars}" ` +
      `WHERE ts BETWEEN ${iso(glo)} AND ${iso(ghi)} AND source = ${lit(source)} AND interval = ${lit(interval)} ` +
      `AND symbol IN (${[...bySymbol.keys()].map(lit).join(",")})${ranges} GROUP BY symbol`;
    for (const r of await exec(cx, query)) {
      const s = bySymbol.get(r[0] as string);
      if (s !== undefined) out.set(s, { n: Number(r[1]), hashed: Number(r[2]), sum: typeof r[3] === "string" ? BigInt.asUintN(64, BigInt(r[3])) : null });
    }
  };
  for (const g of groups.values()) {
    const byRange = [...g.values()].sort((a, b) => b.length - a.length);
    const mixed = byRange.slice(RANGE_QUERIES).flat();
    const symbol = (s: number) => c.series[s]!.symbol;
    for (const same of byRange.slice(0, RANGE_QUERIES)) for (const part of queryParts(same, symbol, SERIES_PER_TOTALS.shared)) await ask(part, false);
    // Each series named twice (IN and its range).
    for (const part of queryParts(mixed, (s) => symbol(s).repeat(2), SERIES_PER_TOTALS.own)) await ask(part, true);
  }
  return out;
}

/** The batch's quarantine, over PG wire: new records inserted, changed ones updated; returns how many. */
async function writeQuarantine(cx: QdbContext, b: CommitBatch): Promise<number> {
  const { sql, T } = cx;
  let quarantined = 0;
  const old = new Map<string, { rule: string; raw: string }>();
  const locators = b.quarantine.map((q) => q.locator);
  for (let i = 0; i < locators.length; i += 500)
    for (const r of await sql`SELECT locator, rule, raw FROM ${sql(T.quarantine)} WHERE source = ${b.source} AND released_at IS NULL AND locator IN ${sql(locators.slice(i, i + 500))}`)
      old.set(r.locator, { rule: r.rule, raw: r.raw });
  let id = await nextId(cx, "quarantine");
  const fresh: Record<string, unknown>[] = [];
  for (const q of b.quarantine) {
    const raw = JSON.stringify(q.raw ?? {});
    const o = old.get(q.locator);
    if (o && o.rule === q.rule && o.raw === raw) continue;
    quarantined++;
    if (o)
      await sql`UPDATE ${sql(T.quarantine)} SET run_id = ${b.runId}, rule = ${q.rule}, reason = ${q.reason}, symbol = ${q.symbol ?? null}, ts = ${date(q.ts)}, raw = ${raw}
                WHERE source = ${b.source} AND locator = ${q.locator} AND released_at IS NULL`;
    else {
      fresh.push({ id: id++, run_id: b.runId, source: b.source, locator: q.locator, rule: q.rule, reason: q.reason, symbol: q.symbol ?? null, ts: date(q.ts), raw, created_at: new Date() });
      old.set(q.locator, { rule: q.rule, raw });
    }
  }
  for (let i = 0; i < fresh.length; i += 500)
    await sql`INSERT INTO ${sql(T.quarantine)} ${sql(fresh.slice(i, i + 500), "id", "run_id", "source", "locator", "rule", "reason", "symbol", "ts", "raw", "created_at")}`;
  return quarantined;
}

/**
 * The tail of a stored bar written again only to give it its row hash (stored before row hashes,
 * or under a lost key): its own run_id and updated_at, so no sink, stream or journal sees a change
 * (sinks sync by run_id). It is not journaled and counts as unchanged. A store from before row
 * hashes so gets them on its first re-load, which costs about a load more once.
 */
function keptTail(meta: Float64Array, m: number): Uint8Array {
  const run = meta[m]!;
  const at = meta[m + 1]!;
  return utf8.encode(`${Number.isNaN(run) ? "" : `,run_id=${run}i`}${Number.isNaN(at) ? "" : `,updated_at=${at}t`} `);
}

/**
 * The batch's bars as ILP lines into the gathered write, skipping those stored unchanged; with
 * their events when anyone listens. Synchronous: the batch joins one write whole, and its lines
 * may span two chunks of the write, never two writes.
 */
function appendLines(cx: QdbContext, b: CommitBatch, c: BarColumns, hashes: Float64Array, states: SeriesState[], lookup: Lookup | null, now: number, cursor: JournalCursor | null) {
  const f = c.f64;
  const chunkLines = cx.chunkLines;
  const pending = cx.pending;
  let inserted = 0;
  let updated = 0;
  let unchanged = 0;
  // The same tail for every line of the batch.
  const tail = utf8.encode(`,run_id=${b.runId}i,updated_at=${micros(now)} `);
  let w = pending.cur;
  // The batch's number if it changes any bar (taken below), and its journal's keys.
  const batch = cursor?.nextBatch ?? 0;
  const listening = cx.listeners.size > 0;
  const keys = journalKeys(c.n);
  const stored = lookup?.stored;
  const values = stored?.values;
  // Per series, the ts range of the lines written (unsettled until applied).
  const wlo = new Float64Array(c.series.length).fill(Infinity);
  const whi = new Float64Array(c.series.length).fill(-Infinity);
  for (let i = 0, k = 0; i < c.n; i++, k += COLUMN_WIDTH) {
    const s = c.row[i]!;
    const st = states[s]!;
    const ts = f[k]!;
    if (ts > st.last) st.last = ts;
    let exists: boolean;
    // An unchanged bar stored without this hash is written again as it is: `kept` is its tail.
    let kept: Uint8Array | null = null;
    if (lookup?.unchanged[s] && ts <= lookup.before[s]!) {
      // Stored unchanged (its series' hash totals matched), unless its extras changed.
      if (!lookup.forced?.has(`${s}\u0000${ts}`)) {
        unchanged++;
        continue;
      }
      exists = true;
    } else {
      const at = stored?.rows[s]?.get(ts);
      exists = at !== undefined;
      if (exists) {
        const o = at! * VALUES;
        if (same(values![o]!, f[k + 1]!) && same(values![o + 1]!, f[k + 2]!) && same(values![o + 2]!, f[k + 3]!) && same(values![o + 3]!, f[k + 4]!) &&
            same(values![o + 4]!, f[k + 5]!) && same(values![o + 5]!, f[k + 6]!) && same(values![o + 6]!, f[k + 7]!) && same(values![o + 7]!, f[k + 8]!)) {
          unchanged++;
          if (stored!.meta[at! * META + 2] === hashes[i]) continue;
          kept = keptTail(stored!.meta, at! * META);
        }
      }
    }
    if (kept === null) {
      if (exists) updated++;
      else inserted++;
      keys.at[keys.n] = i;
      if (exists) (keys.ops[keys.n] = 1), keys.updates++;
      if (listening) pending.events.push({ id: eventId(batch, keys.n), type: "bar", op: exists ? "update" : "insert", bar: barAt(c, i) });
      keys.n++;
    }
    // Head, tail, 8 numbers of at most 25 characters and the field names.
    const t = kept ?? tail;
    room(w, st.head.length + t.length + 320);
    ilpLine(w, st.head, f, k, hashes[i]!, t);
    if (ts < wlo[s]!) wlo[s] = ts;
    if (ts > whi[s]!) whi[s] = ts;
    if (++w.lines === chunkLines) {
      pending.bodies.push(w.buf.subarray(0, w.len));
      w = pending.cur = ilpBuffer(chunkLines);
    }
  }
  for (let s = 0; s < c.series.length; s++) if (whi[s]! >= wlo[s]!) widen(cx.unsettled, states[s]!.key, wlo[s]!, whi[s]!);
  if (keys.n > 0 && cursor) {
    // Journaled after the bars, before the progress rows, in the same write (src/stores/questdb/queue.ts).
    cursor.nextBatch++;
    pending.journal.push(journalLines(cx, cursor, batch, b.runId, c, keys));
    pending.progress.set("journal:last", journalMarkLine(cx, "last", batch, now));
  }
  return { inserted, updated, unchanged };
}

/**
 * The batch's extras that differ from those stored, over PG wire before its bars join the
 * gathered write (no transaction across tables here: an extra may land before its bar, never
 * without a retry writing both). Returns the extras that changed.
 */
async function writeExtras(cx: QdbContext, b: CommitBatch): Promise<BarExtras[]> {
  const { sql, T } = cx;
  const list = b.extras!;
  const keyOf = (symbol: string, interval: string, ts: number) => `${symbol}\u0000${interval}\u0000${b.source}\u0000${ts}`;
  if (cx.extrasDirty) {
    await walApplied(cx, T.bar_extras);
    cx.extrasDirty = false;
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const e of list) (lo = Math.min(lo, e.ts)), (hi = Math.max(hi, e.ts));
  const symbols = [...new Set(list.map((e) => e.symbol))];
  const stored = new Map<string, string>();
  for (let i = 0; i < symbols.length; i += 500)
    for (const r of await sql`SELECT symbol, interval, ts, extras FROM ${sql(T.bar_extras)} WHERE source = ${b.source} AND ts >= ${new Date(lo)} AND ts <= ${new Date(hi)} AND symbol IN ${sql(symbols.slice(i, i + 500))}`)
      stored.set(keyOf(String(r.symbol), String(r.interval), ms(r.ts)!), String(r.extras));
  const changed: BarExtras[] = [];
  const rows: Record<string, unknown>[] = [];
  for (const e of list) {
    const text = JSON.stringify(e.values);
    if (stored.get(keyOf(e.symbol, e.interval, e.ts)) === text) continue;
    changed.push(e);
    rows.push({ symbol: e.symbol, interval: e.interval, source: b.source, ts: new Date(e.ts), extras: text });
  }
  for (let i = 0; i < rows.length; i += 1000) await sql`INSERT INTO ${sql(T.bar_extras)} ${sql(rows.slice(i, i + 1000), "symbol", "interval", "source", "ts", "extras")}`;
  if (rows.length) cx.extrasDirty = true;
  return changed;
}

/**
 * This process holds the writer's lease, and the journal's numbering as the tables have it. When
 * another process wrote bars since this one last did (the numbering moved on), the newest stored
 * ts per series it keeps is read again: bars after it are taken as new without a lookup.
 */
async function writerCursor(cx: QdbContext): Promise<JournalCursor> {
  const before = cx.journal?.nextBatch;
  await holdWriter(cx);
  const cursor = await journalCursor(cx);
  if (before !== undefined && cursor.nextBatch !== before) cx.newest = null;
  return cursor;
}

export const commitBatch = (cx: QdbContext, b: CommitBatch): Promise<CommitResult> =>
  cx.exclusive(async (): Promise<CommitResult> => {
    const earlier = refusal(cx, b.runId);
    if (earlier) throw earlier;
    let c = columnsOf(b.bars);
    refuseNonFinite(c);
    const before1970 = refuseBefore1970(c);
    if (before1970) ({ c, b } = { c: before1970.kept, b: { ...b, quarantine: [...b.quarantine, ...before1970.refused], extras: b.extras?.filter((e) => e.ts >= 0) } });
    const run = await runCounters(cx, b.runId);
    let lo = run?.fromTs ?? null;
    let hi = run?.toTs ?? null;
    const now = Date.now();
    let lookup: Lookup | null = null;
    let states: SeriesState[] = [];
    const hashes = c.n > 0 ? rowHashes(await rowHashKey(cx), c) : new Float64Array(0);
    const cursor = c.n > 0 ? await writerCursor(cx) : null;
    if (c.n > 0) ({ lookup, states, lo, hi } = await existingBars(cx, c, hashes, lo, hi));
    const quarantined = b.quarantine.length > 0 ? await writeQuarantine(cx, b) : 0;
    if (b.extras?.length) {
      // A stored bar whose extras changed is written again (with this run's id), so a sink's
      // next sync re-sends it: its stored copy read back is made to differ (a null open, which
      // no bar of a batch has), or, in a series found unchanged by its hash totals, it is forced.
      const changed = await writeExtras(cx, b);
      if (lookup && changed.length) {
        const index = new Map(c.series.map((x, i) => [`${x.symbol}\u0000${x.interval}\u0000${x.source}`, i]));
        for (const e of changed) {
          const s = index.get(`${e.symbol}\u0000${e.interval}\u0000${b.source}`) ?? -1;
          if (lookup.unchanged[s] && e.ts <= lookup.before[s]!) (lookup.forced ??= new Set()).add(`${s}\u0000${e.ts}`);
          const at = lookup.stored?.rows[s]?.get(e.ts);
          if (at !== undefined) lookup.stored!.values[at * VALUES] = NaN;
        }
      }
    }
    // From here on no await: the batch joins the gathered write whole, its bars and then its
    // run's counters and its checkpoint (one request to one table: one transaction, after the bars).
    const { inserted, updated, unchanged } = appendLines(cx, b, c, hashes, states, lookup, now, cursor);
    const next: Counters | null = run
      ? { read: run.read + b.read, inserted: run.inserted + inserted, updated: run.updated + updated, unchanged: run.unchanged + unchanged, quarantined: run.quarantined + b.quarantine.length, fromTs: lo, toTs: hi }
      : null;
    const pending = cx.pending;
    pending.runs.add(b.runId);
    if (next) {
      pending.progress.set(`run:${b.runId}`, counterLine(cx, b.runId, next, now));
      cx.counters.set(b.runId, next);
    }
    if (b.checkpoint) {
      pending.progress.set(`checkpoint:${b.checkpoint.stream}`, checkpointLine(cx, b.checkpoint, b.runId, now));
      pending.streams.add(b.checkpoint.stream);
      cx.checkpointsWritten.set(b.checkpoint.stream, b.checkpoint);
    }
    // A full chunk streams into the open write while the next is made, and the write ends at the
    // batch that brings it to its lines; otherwise it ends unless another batch comes soon.
    if (pending.bodies.length > 0 || writeLines(cx) >= writeLimit(cx)) await streamFull(cx);
    else cx.timer ??= setTimeout(() => void flush(cx), WRITE_DELAY_MS);
    return { inserted, updated, unchanged, quarantined, ...(before1970 ? { refused: before1970.refused.length } : {}) };
  });
