// The QuestDB store's write path. QuestDB has no transaction across tables, so a batch is
// checked whole before anything is written; its quarantine goes over PG wire; its bars, then its
// run's counters and checkpoint, join the gathered write (src/stores/questdb/queue.ts). What the
// table holds already is looked up only for bars at or before their series' newest stored ts.
import { barAt, COLUMN_WIDTH, columnsOf, type BarColumns } from "../../domain/columns.ts";
import type { Bar } from "../../domain/bar.ts";
import { eventId } from "../events.ts";
import { date, ms, rowToBar } from "../rows.ts";
import type { CommitBatch, CommitResult } from "../types.ts";
import { nextId, walApplied, type Counters, type QdbContext, type SeriesState } from "./context.ts";
import { ilpBuffer, ilpLine, micros, room, tag, utf8 } from "./ilp.ts";
import { getRun } from "./ledger.ts";
import { barsSettled, checkpointLine, counterLine, flush, refusal, settled, WRITE_DELAY_MS } from "./queue.ts";

const same = (a: number | null | undefined, b: number | null | undefined) => (a ?? null) === (b ?? null);

const head = (cx: QdbContext, source: string, symbol: string, interval: string) => utf8.encode(`${cx.T.bars},symbol=${tag(symbol)},interval=${tag(interval)},source=${tag(source)} `);

async function newestBySeries(cx: QdbContext): Promise<Map<string, Map<string, SeriesState>>> {
  if (cx.newest) return cx.newest;
  const { sql, T } = cx;
  await settled(cx);
  const m = new Map<string, Map<string, SeriesState>>();
  for (const r of await sql`SELECT source, symbol, interval, max(ts) AS last_ts FROM ${sql(T.bars)} GROUP BY source, symbol, interval`)
    seriesGroup(m, r.source, r.interval).set(r.symbol, { last: ms(r.last_ts)!, head: head(cx, r.source, r.symbol, r.interval) });
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
 * What the table holds for the batch's keys, each series' state, and the run's ts range with the
 * batch's. Bars after their series' newest stored bar are new by construction; the rest are
 * looked up in one query by time range and symbols.
 */
async function existingBars(cx: QdbContext, c: BarColumns, lo: number | null, hi: number | null) {
  const { sql, T } = cx;
  const f = c.f64;
  const existing = new Map<string, Bar>();
  const all = await newestBySeries(cx);
  const states = c.series.map((x) => {
    const group = seriesGroup(all, x.source, x.interval);
    let st = group.get(x.symbol);
    if (!st) group.set(x.symbol, (st = { last: -Infinity, head: head(cx, x.source, x.symbol, x.interval) }));
    return st;
  });
  let mlo = Infinity;
  let mhi = -Infinity;
  const maybe = new Set<string>();
  for (let i = 0, k = 0; i < c.n; i++, k += COLUMN_WIDTH) {
    const ts = f[k]!;
    if (ts <= states[c.row[i]!]!.last) (mlo = Math.min(mlo, ts)), (mhi = Math.max(mhi, ts)), maybe.add(c.series[c.row[i]!]!.symbol);
    if (lo === null || ts < lo) lo = ts;
    if (hi === null || ts > hi) hi = ts;
  }
  if (maybe.size > 0) {
    await barsSettled(cx);
    const list = [...maybe];
    // The compared columns only, ts as epoch micros (a number, not a Date parsed from text): on
    // a re-load every bar of the batch comes back this way, so its cost is the re-load's.
    for (let i = 0; i < list.length; i += 500)
      for (const r of await sql`
        SELECT symbol, interval, source, cast(ts AS long) AS ts, open, high, low, close, volume, adj_close, turnover, trades
        FROM ${sql(T.bars)} WHERE ts >= ${new Date(mlo)} AND ts <= ${new Date(mhi)} AND symbol IN ${sql(list.slice(i, i + 500))}`) {
        r.ts = Number(r.ts) / 1000;
        const old = rowToBar(r);
        existing.set(`${old.symbol}\u0000${old.interval}\u0000${old.source}\u0000${old.ts}`, old);
      }
  }
  return { existing, states, lo, hi };
}

/** The batch's quarantine, over PG wire: new records inserted, changed ones updated; returns how many. */
async function writeQuarantine(cx: QdbContext, b: CommitBatch): Promise<number> {
  const { sql, T } = cx;
  let quarantined = 0;
  const old = new Map<string, { rule: string; raw: string }>();
  const locators = b.quarantine.map((q) => q.locator);
  for (let i = 0; i < locators.length; i += 500)
    for (const r of await sql`SELECT locator, rule, raw FROM ${sql(T.quarantine)} WHERE source = ${b.source} AND locator IN ${sql(locators.slice(i, i + 500))}`)
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
                WHERE source = ${b.source} AND locator = ${q.locator}`;
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
 * The batch's bars as ILP lines into the gathered write, skipping those stored unchanged; with
 * their events when anyone listens. Synchronous: the batch joins one write whole, and its lines
 * may span two requests of the write, never two writes.
 */
function appendLines(cx: QdbContext, b: CommitBatch, c: BarColumns, states: SeriesState[], existing: Map<string, Bar>, now: number) {
  const f = c.f64;
  const linesPerRequest = cx.linesPerRequest;
  const pending = cx.pending;
  let inserted = 0;
  let updated = 0;
  let unchanged = 0;
  // The same tail for every line of the batch.
  const tail = utf8.encode(`,run_id=${b.runId}i,updated_at=${micros(now)} `);
  let w = pending.cur;
  const batch = cx.listeners.size ? cx.nextBatch++ : 0;
  let nEvents = 0;
  const value = (x: number) => (Number.isNaN(x) ? null : x);
  for (let i = 0, k = 0; i < c.n; i++, k += COLUMN_WIDTH) {
    const st = states[c.row[i]!]!;
    const ts = f[k]!;
    if (ts > st.last) st.last = ts;
    let old: Bar | undefined;
    if (existing.size > 0) {
      const x = c.series[c.row[i]!]!;
      old = existing.get(`${x.symbol}\u0000${x.interval}\u0000${x.source}\u0000${ts}`);
    }
    if (old) {
      if (same(old.open, f[k + 1]) && same(old.high, f[k + 2]) && same(old.low, f[k + 3]) && same(old.close, f[k + 4]) && same(old.volume, f[k + 5]) && same(old.adjClose, value(f[k + 6]!)) && same(old.turnover, value(f[k + 7]!)) && same(old.trades, value(f[k + 8]!))) {
        unchanged++;
        continue;
      }
      updated++;
    } else inserted++;
    if (batch) pending.events.push({ id: eventId(batch, nEvents++), type: "bar", op: old ? "update" : "insert", bar: barAt(c, i) });
    // Head, tail, 8 numbers of at most 25 characters and the field names.
    room(w, st.head.length + tail.length + 320);
    ilpLine(w, st.head, f, k, tail);
    if (++w.lines === linesPerRequest) {
      pending.bodies.push(w.buf.subarray(0, w.len));
      w = pending.cur = ilpBuffer(linesPerRequest);
    }
  }
  return { inserted, updated, unchanged };
}

/**
 * The batch's extras that differ from those stored, over PG wire before its bars join the
 * gathered write (no transaction across tables here: an extra may land before its bar, never
 * without a retry writing both). Returns the bar keys (as `existing` has them) whose extras changed.
 */
async function writeExtras(cx: QdbContext, b: CommitBatch): Promise<string[]> {
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
  const changed: string[] = [];
  const rows: Record<string, unknown>[] = [];
  for (const e of list) {
    const key = keyOf(e.symbol, e.interval, e.ts);
    const text = JSON.stringify(e.values);
    if (stored.get(key) === text) continue;
    changed.push(key);
    rows.push({ symbol: e.symbol, interval: e.interval, source: b.source, ts: new Date(e.ts), extras: text });
  }
  for (let i = 0; i < rows.length; i += 1000) await sql`INSERT INTO ${sql(T.bar_extras)} ${sql(rows.slice(i, i + 1000), "symbol", "interval", "source", "ts", "extras")}`;
  if (rows.length) cx.extrasDirty = true;
  return changed;
}

export const commitBatch = (cx: QdbContext, b: CommitBatch): Promise<CommitResult> =>
  cx.exclusive(async (): Promise<CommitResult> => {
    const earlier = refusal(cx, b.runId);
    if (earlier) throw earlier;
    const c = columnsOf(b.bars);
    refuseNonFinite(c);
    const run = await runCounters(cx, b.runId);
    let lo = run?.fromTs ?? null;
    let hi = run?.toTs ?? null;
    const now = Date.now();
    let existing = new Map<string, Bar>();
    let states: SeriesState[] = [];
    if (c.n > 0) ({ existing, states, lo, hi } = await existingBars(cx, c, lo, hi));
    const quarantined = b.quarantine.length > 0 ? await writeQuarantine(cx, b) : 0;
    if (b.extras?.length) {
      // A stored bar whose extras changed is written again (with this run's id), so a sink's
      // next sync re-sends it: its stored copy is made to differ (NaN equals nothing).
      for (const key of await writeExtras(cx, b)) {
        const old = existing.get(key);
        if (old) existing.set(key, { ...old, open: NaN });
      }
    }
    // From here on no await: the batch joins the gathered write whole, its bars and then its
    // run's counters and its checkpoint (one request to one table: one transaction, after the bars).
    const { inserted, updated, unchanged } = appendLines(cx, b, c, states, existing, now);
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
    if (pending.bodies.length > 0) {
      // Queue this write behind the one in flight, and wait for that one: QuestDB always has
      // the next write while this process prepares the one after it.
      const inFlight = cx.writing;
      void flush(cx);
      await inFlight;
    } else cx.timer ??= setTimeout(() => void flush(cx), WRITE_DELAY_MS);
    return { inserted, updated, unchanged, quarantined };
  });
