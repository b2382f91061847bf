// The QuestDB store's bar reads: series (derived from the bars), pages of one series, the count,
// and the change order sinks read. Every read waits until the writes are applied (settled).
import { barKey, type Bar } from "../../domain/bar.ts";
import { ms, rowToBar, rowToSeries } from "../rows.ts";
import type { BarQuery, ChangedBar, ChangeQuery, SeriesInfo } from "../types.ts";
import { walApplied, type QdbContext } from "./context.ts";
import { settled } from "./queue.ts";

export async function listSeries(cx: QdbContext, opts?: { symbol?: string }): Promise<SeriesInfo[]> {
  const { sql, T } = cx;
  await settled(cx);
  // Derived from the bars themselves: a columnar scan QuestDB does quickly, and nothing to keep in step.
  const rows = opts?.symbol
    ? await sql`SELECT source, symbol, interval, min(ts) AS first_ts, max(ts) AS last_ts, count() AS bars FROM ${sql(T.bars)} WHERE symbol = ${opts.symbol} GROUP BY source, symbol, interval ORDER BY symbol, interval, source`
    : await sql`SELECT source, symbol, interval, min(ts) AS first_ts, max(ts) AS last_ts, count() AS bars FROM ${sql(T.bars)} GROUP BY source, symbol, interval ORDER BY symbol, interval, source`;
  return rows.map(rowToSeries);
}

export async function queryBars(cx: QdbContext, q: BarQuery): Promise<Bar[]> {
  const { sql, T } = cx;
  await settled(cx);
  const from = new Date(Math.max(q.from ?? 0, 0));
  const to = new Date(Math.min(q.to ?? 4102444800000, 4102444800000));
  const a = q.after;
  const rows = await sql`
    SELECT * FROM ${sql(T.bars)} WHERE symbol = ${q.symbol} AND interval = ${q.interval} AND ts >= ${from} AND ts <= ${to}
      ${q.source ? sql`AND source = ${q.source}` : sql``}
      ${a ? sql`AND (ts > ${new Date(a.ts)} OR (ts = ${new Date(a.ts)} AND source > ${a.source}))` : sql``}
    ORDER BY ts, source LIMIT ${q.limit}`;
  return rows.map(rowToBar);
}

export async function countBars(cx: QdbContext): Promise<number> {
  const { sql, T } = cx;
  await settled(cx);
  const [r] = await sql`SELECT count() AS n FROM ${sql(T.bars)}`;
  return Number(r!.n);
}

// Change order here: run, then the designated timestamp and the rest of the dedup key, so a
// page scans only the partitions from its position on. The runs with bars come from the
// run_id column itself (a columnar scan).
export async function changedBars(cx: QdbContext, q: ChangeQuery): Promise<ChangedBar[]> {
  const { sql, T } = cx;
  await settled(cx);
  const a = q.after;
  const startRun = a?.runId ?? 0;
  const hasKey = typeof a?.ts === "number" && typeof a?.symbol === "string" && typeof a?.interval === "string" && typeof a?.source === "string";
  const runs = await sql`SELECT DISTINCT run_id FROM ${sql(T.bars)} WHERE run_id >= ${startRun} AND run_id <= ${q.uptoRun} ORDER BY run_id`;
  const sources = q.sources?.length ? sql`AND source IN ${sql(q.sources)}` : sql``;
  const out: ChangedBar[] = [];
  for (const r of runs) {
    const run = Number(r.run_id);
    if (run === startRun && a && !hasKey) continue;
    let after = sql``;
    if (run === startRun && hasKey) {
      const t = new Date(a!.ts as number);
      const [sym, int, src] = [a!.symbol as string, a!.interval as string, a!.source as string];
      after = sql`AND ts >= ${t} AND (ts > ${t} OR symbol > ${sym} OR (symbol = ${sym} AND (interval > ${int} OR (interval = ${int} AND source > ${src}))))`;
    }
    const rows = await sql`
      SELECT * FROM ${sql(T.bars)} WHERE run_id = ${run} ${after} ${sources}
      ORDER BY ts, symbol, interval, source LIMIT ${q.limit - out.length}`;
    for (const row of rows) {
      const bar = rowToBar(row);
      out.push({ bar, position: { runId: run, ts: bar.ts, symbol: bar.symbol, interval: bar.interval, source: bar.source } });
    }
    if (out.length >= q.limit) break;
  }
  return out;
}

/** The extras kept for these bars, by barKey: one query per page, by time range and symbols. */
export async function barExtras(cx: QdbContext, bars: readonly Bar[]): Promise<Map<string, Record<string, number>>> {
  const out = new Map<string, Record<string, number>>();
  if (!bars.length) return out;
  const { sql, T } = cx;
  if (cx.extrasDirty) {
    await walApplied(cx, T.bar_extras);
    cx.extrasDirty = false;
  }
  let lo = Infinity;
  let hi = -Infinity;
  const wanted = new Set<string>();
  for (const b of bars) {
    if (b.ts < lo) lo = b.ts;
    if (b.ts > hi) hi = b.ts;
    wanted.add(barKey(b.source, b.symbol, b.interval, b.ts));
  }
  const symbols = [...new Set(bars.map((b) => b.symbol))];
  const rows = await sql`SELECT symbol, interval, source, ts, extras FROM ${sql(T.bar_extras)} WHERE ts >= ${new Date(lo)} AND ts <= ${new Date(hi)} AND symbol IN ${sql(symbols)}`;
  for (const r of rows) {
    const k = barKey(String(r.source), String(r.symbol), String(r.interval), ms(r.ts)!);
    if (wanted.has(k)) out.set(k, JSON.parse(String(r.extras)));
  }
  return out;
}

export async function hasExtras(cx: QdbContext): Promise<boolean> {
  const { sql, T } = cx;
  if (cx.extrasDirty) {
    await walApplied(cx, T.bar_extras);
    cx.extrasDirty = false;
  }
  return (await sql`SELECT 1 FROM ${sql(T.bar_extras)} LIMIT 1`).length > 0;
}
