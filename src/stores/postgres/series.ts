// Before a batch's transaction: the year partitions its bars need, its series' rows and ids, and
// whether the batch can go straight into bars (the direct COPY) or through the staging table.
import { COLUMN_WIDTH, tsRange, type BarColumns } from "../../domain/columns.ts";
import type { PgContext } from "./context.ts";

export const seriesKey = (source: string, symbol: string, interval: string) => `${source}\u0000${symbol}\u0000${interval}`;

/** A batch's bars of one series: where its bars' ts lie, and whether they rise strictly (no key twice). */
export type BatchSeries = { key: string; source: string; symbol: string; interval: string; id: number; min: number; max: number; n: number; last: number; rising: boolean };

/** A batch's series as prepared: their ids (by the columns' series index), and whether it can go direct. */
export type PreparedSeries = { list: BatchSeries[]; ids: Int32Array; direct: boolean };

/**
 * The year partitions of the batch's bars, made when missing: one maker at a time across
 * processes (an advisory lock: two CREATE TABLE IF NOT EXISTS at once may both try), and once
 * per year in this process.
 */
export async function ensurePartitions(ctx: PgContext, c: BarColumns) {
  const { sql, schema, partitions, making } = ctx;
  const range = tsRange(c);
  if (ctx.timescale || !range) return;
  const waits: Promise<void>[] = [];
  for (let y = new Date(range.min).getUTCFullYear(); y <= new Date(range.max).getUTCFullYear(); y++) {
    if (partitions.has(y)) continue;
    let m = making.get(y);
    if (!m) {
      const name = `bars_y${y}`;
      m = sql
        .begin(async (tx) => {
          await tx`SELECT pg_advisory_xact_lock(hashtext(${`${schema}.ticksync.partition`}))`;
          await tx.unsafe(`CREATE TABLE IF NOT EXISTS "${schema}".${name} PARTITION OF "${schema}".bars FOR VALUES FROM ('${y}-01-01 00:00:00+00') TO ('${y + 1}-01-01 00:00:00+00')`);
        })
        .then(() => void partitions.add(y))
        .finally(() => making.delete(y));
      making.set(y, m);
    }
    waits.push(m);
  }
  await Promise.all(waits);
}

/** The batch's series: where their bars' ts lie, whether they rise; `direct` false when a bar misses a value. */
export function seriesStats(c: BarColumns): { list: BatchSeries[]; direct: boolean } {
  const list: BatchSeries[] = c.series.map((x) => ({ key: seriesKey(x.source, x.symbol, x.interval), ...x, id: 0, min: Infinity, max: -Infinity, n: 0, last: -Infinity, rising: true }));
  const f = c.f64;
  let direct = true;
  for (let i = 0, k = 0; i < c.n; i++, k += COLUMN_WIDTH) {
    const s = list[c.row[i]!]!;
    const ts = f[k]!;
    if (ts <= s.last) s.rising = false;
    s.last = ts;
    if (ts < s.min) s.min = ts;
    if (ts > s.max) s.max = ts;
    s.n++;
    if (direct && !(Number.isFinite(f[k + 1]!) && Number.isFinite(f[k + 2]!) && Number.isFinite(f[k + 3]!) && Number.isFinite(f[k + 4]!) && Number.isFinite(f[k + 5]!))) direct = false;
  }
  return { list, direct };
}

/**
 * Before a batch's transaction: its year partitions and series rows exist (made and committed
 * here when new: a series row with no bars counts as no series), and what the table already
 * holds of each series. `direct`: the whole batch can go straight into bars — each series'
 * bars rise, start after its newest stored bar and after the batches still in flight, and have
 * no missing value that the staging path would report. Another process writing the same keys
 * at the same time makes the direct COPY fail on the primary key, and the batch is then
 * written again through the staging path.
 */
export async function prepareSeries(ctx: PgContext, c: BarColumns, stats: { list: BatchSeries[]; direct: boolean }, overlaps: boolean): Promise<PreparedSeries> {
  const { sql, seriesIds } = ctx;
  const { list } = stats;
  let direct = stats.direct && !overlaps;
  await ensurePartitions(ctx, c);
  const byKey = new Map(list.map((x) => [x.key, x]));
  const cols = (l: BatchSeries[]) => [l.map((x) => x.source), l.map((x) => x.symbol), l.map((x) => x.interval)] as const;
  // The batch's series as stored, new rows made first (committed on their own, in the same
  // statement: one round trip and one commit). The rows it makes come back from the insert, the
  // others from the table; a row another writer made meanwhile is in neither (the statement's
  // snapshot predates it) and is read once more below.
  const fresh = list.filter((x) => !seriesIds.has(x.key));
  const [src, sym, int] = cols(list);
  const select = () => sql`
    SELECT id, source, symbol, interval, last_ts, bars FROM series
    WHERE (source, symbol, interval) IN (SELECT * FROM unnest(${src}::text[], ${sym}::text[], ${int}::text[]))`;
  let stored;
  if (fresh.length > 0) {
    const [fsrc, fsym, fint] = cols(fresh);
    stored = await sql`
      WITH made AS (
        INSERT INTO series (source, symbol, interval, first_ts, last_ts, bars)
        SELECT source, symbol, interval, f, l, 0
        FROM unnest(${fsrc}::text[], ${fsym}::text[], ${fint}::text[], ${fresh.map((x) => new Date(x.min).toISOString())}::timestamptz[], ${fresh.map((x) => new Date(x.max).toISOString())}::timestamptz[]) AS u(source, symbol, interval, f, l)
        ORDER BY source, symbol, interval
        ON CONFLICT (source, symbol, interval) DO NOTHING
        RETURNING id, source, symbol, interval, last_ts, bars)
      SELECT * FROM made
      UNION ALL
      SELECT id, source, symbol, interval, last_ts, bars FROM series
      WHERE (source, symbol, interval) IN (SELECT * FROM unnest(${src}::text[], ${sym}::text[], ${int}::text[]))`;
    if (stored.length < list.length) stored = await select();
  } else stored = await select();
  for (const r of stored) {
    const x = byKey.get(seriesKey(r.source, r.symbol, r.interval));
    if (!x) continue;
    x.id = r.id;
    seriesIds.set(x.key, r.id);
    if (Number(r.bars) > 0 && x.min <= new Date(r.last_ts).getTime()) direct = false;
  }
  for (const x of list) {
    if (x.id === 0) throw new Error(`series ${x.source}/${x.symbol}/${x.interval} has no row after it was made`);
    if (!x.rising) direct = false;
  }
  return { list, ids: Int32Array.from(list, (x) => x.id), direct };
}
