// Materialised rollups in Postgres: for every stored series whose symbol has a known market, its
// bars rolled up into every coarser interval that canRollUp builds from them (1m → 5m … 1mo,
// 1d → 1w and 1mo), in the table `rollups`, keyed by (finer series id, interval, ts). The buckets
// are src/domain/rollup.ts's own, so /api/bars answers from this table exactly as it would roll up
// on read: intraday series are rolled up by createRoller itself; daily series (into ISO weeks and
// months, the bulk of a daily load) many at a time without an object per bar, by a fold that is
// createRoller's step for step on bucketOf's buckets (see recomputeDaily).
//
// Incremental: a run that stored bars is queued in `rollup_pending` when it finishes (or is found
// interrupted), and worked off later, in the background of the long-running service (or by
// `ticksync rollups`), one run per transaction; `run_series` says which series the run wrote and
// the ts range, and its bars are read through the (series_id, ts) key. When an intraday series'
// bars all lie after the newest finer bar its rollups hold (`rollup_series.upto`: bars arriving
// in order, the common case), its buckets are carried on from the stored rows: a rollup is a left
// fold in ts order, so continuing it from the row gives exactly what a fold from the start gives.
// Otherwise the ISO week and month around each day the run touched (every bucket of a bar there
// lies inside) are rolled up again from their finer bars. Either way only buckets that changed
// are written, and re-running it changes nothing.
// Finer bars outside every regular session are counted per stretch (`rollup_excluded`), so a
// page can say how many it left out, as on read.
//
// Retention (deleteBars) keeps rollups: buckets wholly before a series' cutoff stay as they were
// (a daily history outlives 1m retention); the deleted bars of the buckets the cutoff cuts through
// are kept aside in `rollup_carry` until the cutoff has passed them, so those buckets stay whole.
import type postgres from "postgres";
import { INTERVAL_MS, INTERVALS, type Bar, type Interval } from "../../../domain/bar.ts";
import type { Market } from "../../../domain/calendar.ts";
import {
  bucketOf,
  bucketSpan,
  canRollUp,
  coveringSpan,
  createRoller,
  isIntraday,
  outOfSessionSpan,
  rollupSources,
  sessionAt,
} from "../../../domain/rollup.ts";
import { marketOf } from "../../../domain/symbols.ts";
import { log } from "../../../lib/log.ts";
import type { BarQuery, RollupPage } from "../../types.ts";

type Sql = postgres.Sql<{}>;
type Tx = postgres.TransactionSql<{}>;

/** Finer bars read per query, and rolled-up rows written per statement. */
const READ_CHUNK = 20_000;
const WRITE_CHUNK = 5_000;

type Span = { start: number; end: number };

/** What one pass wrote, and the newest finer bar it read (null: none). */
type Pass = { written: number; deleted: number; newest: number | null };

/** An instant after every bar (9999-12-31). */
const FAR = 253_402_214_400_000;

type RollSeries = {
  id: number;
  source: string;
  symbol: string;
  interval: Interval;
  market: Market;
  targets: Interval[];
  /** Bars stored (the series row's count). */
  bars: number;
  /** Retention's latest cutoff: buckets ending before it are kept as they are. */
  cutoff: number | null;
  /** The newest finer bar the rollups hold (none newer is in them), or null before the first. */
  upto: number | null;
};

/**
 * Runs rolled up, and runs that failed (left queued); rows written and removed; series carried on
 * from their rows, or rolled up again over weeks and months.
 */
export type RollupCounts = { runs: number; failed: number; written: number; deleted: number; appended: number; recomputed: number };
type RunCounts = Omit<RollupCounts, "runs" | "failed">;

/** Thrown inside a catch-up's transaction when the store is closing: it rolls back, the run stays queued. */
export class RollupInterrupted extends Error {
  constructor() {
    super("rollup interrupted: the store is closing; the run stays queued");
  }
}

const iso = (t: number) => new Date(t).toISOString();
const epochMs = (col: string) => `(extract(epoch FROM ${col}) * 1000)::float8`;

/** The intervals a series' bars are materialised at. */
export const rollupTargets = (from: Interval) => INTERVALS.filter((t) => canRollUp(from, t));

/** Spans merged where they overlap or touch, in order. */
function merge(spans: Span[]): Span[] {
  const out: Span[] = [];
  for (const s of [...spans].sort((a, b) => a.start - b.start)) {
    const last = out[out.length - 1];
    if (last && s.start <= last.end) last.end = Math.max(last.end, s.end);
    else out.push({ ...s });
  }
  return out;
}

/** The series among `ids` that roll up into something (a known market, a coarser interval). */
async function seriesInfo(tx: Tx, ids: number[]): Promise<RollSeries[]> {
  if (ids.length === 0) return [];
  const rows = await tx.unsafe(
    `SELECT s.id, s.source, s.symbol, s.interval, s.bars, ${epochMs("c.before")} AS cutoff, ${epochMs("u.upto")} AS upto
     FROM series s LEFT JOIN rollup_cutoffs c ON c.series_id = s.id LEFT JOIN rollup_series u ON u.series_id = s.id
     WHERE s.id = ANY($1::int[]) ORDER BY s.id`,
    [ids],
  );
  const out: RollSeries[] = [];
  for (const r of rows) {
    // Canonical symbols carry their market (PKN.WA, AAPL.US); one without a known suffix has no
    // sessions to roll up along, and is served as stored (as on read).
    const market = marketOf(r.symbol);
    const targets = rollupTargets(r.interval);
    if (market === undefined || targets.length === 0) continue;
    out.push({ id: r.id, source: r.source, symbol: r.symbol, interval: r.interval, market, targets, bars: Number(r.bars), cutoff: r.cutoff === null ? null : Number(r.cutoff), upto: r.upto === null ? null : Number(r.upto) });
  }
  return out;
}

type Row = { t: number; open: number; high: number; low: number; close: number; volume: number; adj_close: number | null; turnover: number | null; trades: number | null };

const COLS = `${epochMs("ts")} AS t, open, high, low, close, volume, adj_close, turnover, trades::float8 AS trades`;

function toBar(s: RollSeries, r: Row): Bar {
  const bar: Bar = { source: s.source, symbol: s.symbol, interval: s.interval, ts: r.t, open: r.open, high: r.high, low: r.low, close: r.close, volume: r.volume };
  if (r.adj_close !== null) bar.adjClose = r.adj_close;
  if (r.turnover !== null) bar.turnover = r.turnover;
  if (r.trades !== null) bar.trades = r.trades;
  return bar;
}

/**
 * The finer bars of a series in [span.start, span.end) (`after`: after span.start), in ts order:
 * the stored ones, and the ones retention deleted but kept aside (a stored bar wins over a kept
 * one with its ts).
 */
async function* finerBars(tx: Tx, s: RollSeries, span: Span, after = false): AsyncGenerator<Bar[]> {
  let op = after ? ">" : ">=";
  const carry: Row[] =
    s.cutoff === null
      ? []
      : ((await tx.unsafe(`SELECT ${COLS} FROM rollup_carry WHERE series_id = $1 AND ts ${op} $2 AND ts < $3 ORDER BY ts`, [s.id, iso(span.start), iso(span.end)])) as unknown as Row[]);
  let c = 0;
  let from = iso(span.start);
  for (;;) {
    const rows = (await tx.unsafe(`SELECT ${COLS} FROM bars WHERE series_id = $1 AND ts ${op} $2 AND ts < $3 ORDER BY ts LIMIT ${READ_CHUNK}`, [s.id, from, iso(span.end)])) as unknown as Row[];
    const out: Bar[] = [];
    for (const r of rows) {
      while (c < carry.length && carry[c]!.t <= r.t) {
        if (carry[c]!.t < r.t) out.push(toBar(s, carry[c]!));
        c++;
      }
      out.push(toBar(s, r));
    }
    const done = rows.length < READ_CHUNK;
    if (done) while (c < carry.length) out.push(toBar(s, carry[c++]!));
    if (out.length) yield out;
    if (done) return;
    from = iso(rows[rows.length - 1]!.t);
    op = ">";
  }
}

type Built = { bar: Bar; bars: number; last: number };

/** Write rolled-up bars of one series and interval; only rows that differ are rewritten. */
async function writeRollups(tx: Tx, seriesId: number, interval: Interval, rows: Built[], runId: number | null, keepExisting: boolean): Promise<number> {
  let n = 0;
  for (let i = 0; i < rows.length; i += WRITE_CHUNK) {
    const part = rows.slice(i, i + WRITE_CHUNK);
    const col = <T>(f: (b: Built) => T) => part.map(f);
    const values = [
      col((b) => iso(b.bar.ts)),
      col((b) => b.bar.open),
      col((b) => b.bar.high),
      col((b) => b.bar.low),
      col((b) => b.bar.close),
      col((b) => b.bar.volume),
      col((b) => b.bar.adjClose ?? null),
      col((b) => b.bar.turnover ?? null),
      col((b) => (b.bar.trades == null ? null : String(Math.round(b.bar.trades)))),
      col((b) => b.bars),
      col((b) => iso(b.last)),
    ];
    // Buckets wholly before a retention cutoff keep what they were built from, when they have a row.
    const onConflict = keepExisting
      ? `DO NOTHING`
      : `DO UPDATE SET open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close, volume = excluded.volume,
           adj_close = excluded.adj_close, turnover = excluded.turnover, trades = excluded.trades, bars = excluded.bars, last_ts = excluded.last_ts,
           run_id = excluded.run_id, updated_at = now()
         WHERE (rollups.open, rollups.high, rollups.low, rollups.close, rollups.volume, rollups.adj_close, rollups.turnover, rollups.trades, rollups.bars, rollups.last_ts)
           IS DISTINCT FROM (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume, excluded.adj_close, excluded.turnover, excluded.trades, excluded.bars, excluded.last_ts)`;
    const r = await tx.unsafe(
      `INSERT INTO rollups (series_id, interval, ts, open, high, low, close, volume, adj_close, turnover, trades, bars, last_ts, run_id)
       SELECT $1::int, $2::text, u.*, $14::bigint
       FROM unnest($3::timestamptz[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::bigint[], $12::int[], $13::timestamptz[])
         AS u(ts, open, high, low, close, volume, adj_close, turnover, trades, bars, last_ts)
       ON CONFLICT (series_id, interval, ts) ${onConflict}`,
      [seriesId, interval, ...values, runId] as never[],
    );
    n += r.count;
  }
  return n;
}

/**
 * Roll a series' finer bars in `window` (whole weeks and months) up again: every bucket lying
 * wholly inside is written when it changed, removed when it has no finer bar any more; the same
 * for its stretches of bars outside the sessions. Buckets and stretches wholly before the series'
 * retention cutoff are only added, never changed.
 */
async function recompute(tx: Tx, s: RollSeries, window: Span, runId: number | null, check: () => void = () => {}): Promise<Pass> {
  const rollers = s.targets.map((t) => ({ t, roller: createRoller(s.interval, t, s.market), built: [] as Built[], frozen: [] as Built[], seen: new Set<number>() }));
  const stretches = new Map<number, { end: number; n: number }>();
  const intraday = isIntraday(s.interval);
  const frozen = (end: number) => s.cutoff !== null && end <= s.cutoff;
  let written = 0;
  let deleted = 0;
  let newest: number | null = null;
  const take = async (watermark: number) => {
    for (const r of rollers) {
      for (const d of r.roller.drainCounted(watermark)) {
        const span = bucketSpan(d.bar.ts, s.interval, r.t, s.market);
        // Partial buckets at the window's edges are not this pass's to write.
        if (span.start < window.start || span.end > window.end) continue;
        r.seen.add(d.bar.ts);
        (frozen(span.end) ? r.frozen : r.built).push(d);
      }
      if (r.built.length >= WRITE_CHUNK) written += await writeRollups(tx, s.id, r.t, r.built.splice(0), runId, false);
      if (r.frozen.length >= WRITE_CHUNK) written += await writeRollups(tx, s.id, r.t, r.frozen.splice(0), runId, true);
    }
  };
  for await (const chunk of finerBars(tx, s, window)) {
    check();
    for (const b of chunk) if (!leftOut(s, b, stretches)) for (const r of rollers) r.roller.push(b);
    newest = chunk[chunk.length - 1]!.ts;
    await take(newest);
  }
  await take(Infinity);
  for (const r of rollers) {
    written += await writeRollups(tx, s.id, r.t, r.built, runId, false);
    written += await writeRollups(tx, s.id, r.t, r.frozen, runId, true);
    // Rows of buckets that have no finer bar any more (in this window, after the cutoff).
    const stale: string[] = [];
    for (const row of await tx.unsafe(`SELECT ${epochMs("ts")} AS t FROM rollups WHERE series_id = $1 AND interval = $2 AND ts >= $3 AND ts < $4`, [s.id, r.t, iso(window.start), iso(window.end)])) {
      const t = Number(row.t);
      if (r.seen.has(t)) continue;
      let span: Span | null = null;
      try {
        span = bucketSpan(t, s.interval, r.t, s.market);
      } catch {
        // a ts no session holds any more: not a bucket at all
      }
      if (span && (span.start < window.start || span.end > window.end || frozen(span.end))) continue;
      stale.push(iso(t));
    }
    if (stale.length) deleted += (await tx.unsafe(`DELETE FROM rollups WHERE series_id = $1 AND interval = $2 AND ts = ANY($3::timestamptz[])`, [s.id, r.t, stale])).count;
  }
  if (intraday) {
    const list = [...stretches].filter(([, v]) => !frozen(v.end));
    const kept = [...stretches].filter(([, v]) => frozen(v.end));
    for (const [rows, conflict] of [
      [list, `DO UPDATE SET end_ts = excluded.end_ts, bars = excluded.bars, run_id = excluded.run_id WHERE (rollup_excluded.end_ts, rollup_excluded.bars) IS DISTINCT FROM (excluded.end_ts, excluded.bars)`],
      [kept, `DO NOTHING`],
    ] as const) {
      if (rows.length === 0) continue;
      const r = await tx.unsafe(
        `INSERT INTO rollup_excluded (series_id, start_ts, end_ts, bars, run_id)
         SELECT $1::int, u.*, $5::bigint FROM unnest($2::timestamptz[], $3::timestamptz[], $4::int[]) AS u(start_ts, end_ts, bars)
         ON CONFLICT (series_id, start_ts) ${conflict}`,
        [s.id, rows.map(([k]) => iso(k)), rows.map(([, v]) => iso(v.end)), rows.map(([, v]) => v.n), runId] as never[],
      );
      written += r.count;
    }
    const gone = await tx.unsafe(
      `DELETE FROM rollup_excluded WHERE series_id = $1 AND start_ts >= $2 AND end_ts <= $3 AND NOT (start_ts = ANY($4::timestamptz[]))
         AND ($5::timestamptz IS NULL OR end_ts > $5::timestamptz)`,
      [s.id, iso(window.start), iso(window.end), [...stretches.keys()].map(iso), s.cutoff === null ? null : iso(s.cutoff)] as never[],
    );
    deleted += gone.count;
  }
  return { written, deleted, newest };
}

/** Count a finer bar outside every regular session in its stretch; true when it is one. */
function leftOut(s: RollSeries, b: Bar, stretches: Map<number, { end: number; n: number }>): boolean {
  if (!isIntraday(s.interval) || sessionAt(s.market, b.ts, INTERVAL_MS[s.interval]) !== null) return false;
  const st = outOfSessionSpan(s.market, b.ts);
  const cur = stretches.get(st.start);
  if (cur) cur.n++;
  else stretches.set(st.start, { end: st.end, n: 1 });
  return true;
}

/**
 * Carry a series' rollups on with its finer bars after `upto`, which are newer than any bar they
 * hold: each interval's newest row starts its roller (as a bar standing for the bars it holds,
 * at the ts of its last one), and the new bars fold onto it exactly as they would onto those bars.
 */
async function append(tx: Tx, s: RollSeries, runId: number, check: () => void = () => {}): Promise<Pass> {
  const latest = await tx.unsafe(
    `SELECT r.interval, ${epochMs("r.last_ts")} AS last, r.bars, r.open, r.high, r.low, r.close, r.volume, r.adj_close, r.turnover, r.trades::float8 AS trades
     FROM unnest($2::text[]) AS t(interval) CROSS JOIN LATERAL (SELECT * FROM rollups r WHERE r.series_id = $1 AND r.interval = t.interval ORDER BY r.ts DESC LIMIT 1) r`,
    [s.id, s.targets] as never[],
  );
  const rollers = s.targets.map((t) => {
    const roller = createRoller(s.interval, t, s.market);
    const row = latest.find((r) => r.interval === t);
    if (row)
      roller.push({
        source: s.source, symbol: s.symbol, interval: s.interval, ts: Number(row.last), open: row.open, high: row.high, low: row.low, close: row.close,
        volume: row.volume, adjClose: row.adj_close, turnover: row.turnover, trades: row.trades,
      });
    return { t, roller, seed: row ? { last: Number(row.last), bars: Number(row.bars) } : null, built: [] as Built[] };
  });
  const stretches = new Map<number, { end: number; n: number }>();
  let written = 0;
  let newest: number | null = null;
  const take = async (watermark: number) => {
    for (const r of rollers) {
      for (const d of r.roller.drainCounted(watermark)) {
        // The seed counted once; it stands for the row's bars.
        if (r.seed && bucketOfLast(s, r.t, r.seed.last) === d.bar.ts) r.built.push({ ...d, bars: d.bars - 1 + r.seed.bars });
        else r.built.push(d);
      }
      if (r.built.length >= WRITE_CHUNK || watermark === Infinity) written += await writeRollups(tx, s.id, r.t, r.built.splice(0), runId, false);
    }
  };
  for await (const chunk of finerBars(tx, s, { start: s.upto!, end: FAR }, true)) {
    check();
    for (const b of chunk) if (!leftOut(s, b, stretches)) for (const r of rollers) r.roller.push(b);
    newest = chunk[chunk.length - 1]!.ts;
    await take(newest);
  }
  await take(Infinity);
  if (stretches.size > 0) {
    const rows = [...stretches];
    const r = await tx.unsafe(
      `INSERT INTO rollup_excluded (series_id, start_ts, end_ts, bars, run_id)
       SELECT $1::int, u.*, $5::bigint FROM unnest($2::timestamptz[], $3::timestamptz[], $4::int[]) AS u(start_ts, end_ts, bars)
       ON CONFLICT (series_id, start_ts) DO UPDATE SET bars = rollup_excluded.bars + excluded.bars, run_id = excluded.run_id`,
      [s.id, rows.map(([k]) => iso(k)), rows.map(([, v]) => iso(v.end)), rows.map(([, v]) => v.n), runId] as never[],
    );
    written += r.count;
  }
  return { written, deleted: 0, newest };
}

const bucketOfLast = (s: RollSeries, to: Interval, last: number) => bucketOf(last, s.interval, to, s.market)?.ts;

/** Daily bars (of whole series, as the series rows count them) read and rolled up per step, about. */
const DAILY_BARS = 250_000;
const DAY_MS = 86_400_000;
/** Postgres counts timestamps in microseconds from 2000-01-01 UTC. */
const PG_EPOCH_MS = 946_684_800_000;
const TWO_32 = 4_294_967_296;

/** What a daily series is rolled up into (rollupTargets("1d")), by recomputeDaily. */
const DAILY_TARGETS = ["1w", "1mo"] as const;
const isDaily = (s: RollSeries) => s.interval === "1d" && s.targets.length === DAILY_TARGETS.length && s.targets.every((t, i) => t === DAILY_TARGETS[i]);

/** A daily bar's bucket at one interval: bucketOf's ts, and bucketSpan's span of that bucket. */
type DayBucket = { ts: number; start: number; end: number };

/** Per market, the week and month buckets of each UTC day (epoch day number), worked out once per day. */
function dayBuckets(market: Market) {
  const days = new Map<number, [DayBucket, DayBucket]>();
  return (day: number): [DayBucket, DayBucket] => {
    let d = days.get(day);
    if (d === undefined) {
      const ts = day * DAY_MS;
      d = DAILY_TARGETS.map((t) => {
        const k = bucketOf(ts, "1d", t, market)!;
        const span = bucketSpan(k.ts, "1d", t, market);
        return { ts: k.ts, start: span.start, end: span.end };
      }) as [DayBucket, DayBucket];
      days.set(day, d);
    }
    return d;
  };
}

/** One bucket being folded: createRoller's Open, in numbers. */
type Fold = {
  ts: number; start: number; end: number;
  open: number; high: number; low: number; close: number; volume: number;
  adjClose: number | null; turnover: number | null; trades: number | null; turnoverAll: boolean; tradesAll: boolean;
  n: number; last: number;
};

/** Rolled-up rows for rollups_stage, by column. */
type Staged = {
  sid: number[]; interval: string[]; ts: number[]; open: number[]; high: number[]; low: number[]; close: number[]; volume: number[];
  adjClose: (number | null)[]; turnover: (number | null)[]; trades: (number | null)[]; bars: number[]; last: number[]; mode: number[];
};
/** How a staged row is written: into a window that has no row yet; upserted where it changed; kept when one is there (wholly before the retention cutoff). */
const ADD = 0;
const UPSERT = 1;
const KEEP = 2;

/** Binary COPY of staged rows (rollups_stage's columns, in order). */
function encodeStaged(r: Staged): Uint8Array {
  const n = r.sid.length;
  const out = new Uint8Array(19 + n * (2 + 14 * 4 + 4 + 4 + 11 * 8 + 4) + 2);
  const dv = new DataView(out.buffer);
  out.set([0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00]);
  let o = 19;
  const int4 = (x: number) => (dv.setInt32(o, 4), dv.setInt32(o + 4, x), (o += 8));
  const int8 = (x: number) => {
    const hi = Math.floor(x / TWO_32);
    dv.setInt32(o, 8);
    dv.setInt32(o + 4, hi);
    dv.setUint32(o + 8, x - hi * TWO_32);
    o += 12;
  };
  const float8 = (x: number | null) => (x === null ? (dv.setInt32(o, -1), (o += 4)) : (dv.setInt32(o, 8), dv.setFloat64(o + 4, x), (o += 12)));
  const ts = (t: number) => int8((t - PG_EPOCH_MS) * 1000);
  for (let i = 0; i < n; i++) {
    dv.setInt16(o, 14);
    o += 2;
    int4(r.sid[i]!);
    const iv = r.interval[i]!; // ASCII
    dv.setInt32(o, iv.length);
    for (let c = 0; c < iv.length; c++) out[o + 4 + c] = iv.charCodeAt(c);
    o += 4 + iv.length;
    ts(r.ts[i]!);
    float8(r.open[i]!);
    float8(r.high[i]!);
    float8(r.low[i]!);
    float8(r.close[i]!);
    float8(r.volume[i]!);
    float8(r.adjClose[i]!);
    float8(r.turnover[i]!);
    const trades = r.trades[i]!;
    if (trades === null) dv.setInt32(o, -1), (o += 4);
    else int8(Math.round(trades));
    int4(r.bars[i]!);
    ts(r.last[i]!);
    int4(r.mode[i]!);
  }
  dv.setInt16(o, -1);
  return out.subarray(0, o + 2);
}

/**
 * recompute() for daily series (into ISO weeks and months), for many series at once and without
 * an object per bar: their bars are read in key order by one binary COPY per step and folded as
 * they arrive, and the rolled-up rows written through one binary COPY into a staging table. The
 * same rows as recompute() with createRoller: the bucket of each UTC date is bucketOf's own (and
 * its span bucketSpan's), and the fold below is createRoller's push, statement for statement, on
 * the bars in the same order (a bar out of key order fails the pass rather than fold wrongly).
 * Which rows are written, kept and removed follows recompute() too; a window that has no row yet
 * (a first load) gets plain inserts without conflict checks: every writer of rollups holds the
 * rollups' lock, so none can appear meanwhile.
 */
async function recomputeDaily(tx: Tx, jobs: { s: RollSeries; window: Span }[], runId: number | null, check: () => void): Promise<{ written: number; deleted: number }> {
  let written = 0;
  let deleted = 0;
  if (jobs.length === 0) return { written, deleted };
  await tx`CREATE TEMP TABLE IF NOT EXISTS rollups_stage (
      series_id int, interval text, ts timestamptz, open float8, high float8, low float8, close float8, volume float8,
      adj_close float8, turnover float8, trades bigint, bars int, last_ts timestamptz, mode int) ON COMMIT DELETE ROWS`;
  const buckets = new Map<Market, ReturnType<typeof dayBuckets>>();
  for (let i = 0; i < jobs.length; ) {
    check();
    // Series in id order, up to DAILY_BARS bars per step.
    let j = i;
    for (let bars = 0; j < jobs.length && (j === i || bars + jobs[j]!.s.bars <= DAILY_BARS); j++) bars += jobs[j]!.s.bars;
    const part = jobs.slice(i, j);
    i = j;
    const ids = part.map((p) => p.s.id);
    // The rows there already: none in a series' window makes it a first load there.
    const existing = new Map<number, { interval: string; t: number }[]>();
    for (const r of await tx.unsafe(
      `SELECT x.series_id, x.interval, ${epochMs("x.ts")} AS t
       FROM unnest($1::int[], $2::timestamptz[], $3::timestamptz[]) AS w(sid, ws, we)
       JOIN rollups x ON x.series_id = w.sid AND x.interval IN ('1w', '1mo') AND x.ts >= w.ws AND x.ts < w.we`,
      [ids, part.map((p) => iso(p.window.start)), part.map((p) => iso(p.window.end))] as never[],
    )) {
      const list = existing.get(r.series_id) ?? [];
      list.push({ interval: r.interval, t: Number(r.t) });
      existing.set(r.series_id, list);
    }
    const staged: Staged = { sid: [], interval: [], ts: [], open: [], high: [], low: [], close: [], volume: [], adjClose: [], turnover: [], trades: [], bars: [], last: [], mode: [] };
    const newest = new Map<number, number>();
    const seen = new Map<number, Set<string>>(); // of series with rows: interval|ts of each bucket rolled up in the window
    let k = -1; // the job whose bars are being read
    let job: { s: RollSeries; window: Span } | null = null;
    let days: ReturnType<typeof dayBuckets> | null = null;
    const open: (Fold | null)[] = [null, null];
    const emit = (x: number) => {
      const f = open[x]!;
      open[x] = null;
      const { s, window } = job!;
      // Partial buckets at the window's edges are not this pass's to write.
      if (f.start < window.start || f.end > window.end) return;
      const interval = DAILY_TARGETS[x]!;
      const had = existing.has(s.id);
      if (had) {
        let set = seen.get(s.id);
        if (!set) seen.set(s.id, (set = new Set()));
        set.add(`${interval}|${f.ts}`);
      }
      staged.sid.push(s.id);
      staged.interval.push(interval);
      staged.ts.push(f.ts);
      staged.open.push(f.open);
      staged.high.push(f.high);
      staged.low.push(f.low);
      staged.close.push(f.close);
      staged.volume.push(f.volume);
      staged.adjClose.push(f.adjClose);
      staged.turnover.push(f.turnoverAll ? f.turnover : null);
      staged.trades.push(f.tradesAll ? f.trades : null);
      staged.bars.push(f.n);
      staged.last.push(f.last);
      staged.mode.push(!had ? ADD : s.cutoff !== null && f.end <= s.cutoff ? KEEP : UPSERT);
    };
    const endSeries = () => {
      for (let x = 0; x < open.length; x++) if (open[x]) emit(x);
    };
    let lastTs = -Infinity;
    const push = (sid: number, ts: number, o: number, h: number, l: number, c: number, v: number, adj: number | null, turnover: number | null, trades: number | null) => {
      if (job === null || sid !== job.s.id) {
        if (job !== null) endSeries(), newest.set(job.s.id, lastTs);
        // Series come in the order asked (ids ascending), each one's bars in ts order.
        while (++k < part.length && part[k]!.s.id !== sid);
        if (k >= part.length) throw new Error(`daily rollup: bars of series ${sid} out of key order`);
        job = part[k]!;
        lastTs = -Infinity;
        const m = job.s.market;
        days = buckets.get(m) ?? (buckets.set(m, dayBuckets(m)), buckets.get(m)!);
      }
      if (ts <= lastTs) throw new Error(`daily rollup: bars of series ${sid} out of ts order`);
      lastTs = ts;
      const day = days!(Math.floor(ts / DAY_MS));
      for (let x = 0; x < 2; x++) {
        const b = day[x]!;
        const cur = open[x] ?? null;
        // createRoller.push, for one source.
        if (cur !== null && cur.ts === b.ts) {
          cur.high = Math.max(cur.high, h);
          cur.low = Math.min(cur.low, l);
          cur.close = c;
          cur.volume += v;
          cur.adjClose = adj ?? null;
          if (turnover == null) cur.turnoverAll = false;
          else cur.turnover = (cur.turnover ?? 0) + turnover;
          if (trades == null) cur.tradesAll = false;
          else cur.trades = (cur.trades ?? 0) + trades;
          cur.n++;
          cur.last = ts;
          continue;
        }
        if (cur !== null) emit(x);
        open[x] = {
          ts: b.ts, start: b.start, end: b.end, open: o, high: h, low: l, close: c, volume: v, adjClose: adj ?? null,
          turnover: turnover ?? null, trades: trades ?? null, turnoverAll: turnover != null, tradesAll: trades != null, n: 1, last: ts,
        };
      }
    };
    await readDaily(tx, part, push);
    const final = job as { s: RollSeries } | null; // set by push
    if (final !== null) endSeries(), newest.set(final.s.id, lastTs);
    // Rows of buckets that have no bar any more (in the window, after the cutoff), as recompute() finds them.
    const stale: { sid: number[]; interval: string[]; ts: string[] } = { sid: [], interval: [], ts: [] };
    for (const p of part) {
      const rows = existing.get(p.s.id);
      if (!rows) continue;
      const set = seen.get(p.s.id);
      for (const r of rows) {
        if (set?.has(`${r.interval}|${r.t}`)) continue;
        let span: Span | null = null;
        try {
          span = bucketSpan(r.t, "1d", r.interval as Interval, p.s.market);
        } catch {
          // not a bucket at all
        }
        if (span && (span.start < p.window.start || span.end > p.window.end || (p.s.cutoff !== null && span.end <= p.s.cutoff))) continue;
        stale.sid.push(p.s.id);
        stale.interval.push(r.interval);
        stale.ts.push(iso(r.t));
      }
    }
    if (stale.sid.length)
      deleted += (await tx.unsafe(`DELETE FROM rollups WHERE (series_id, interval, ts) IN (SELECT * FROM unnest($1::int[], $2::text[], $3::timestamptz[]))`, [stale.sid, stale.interval, stale.ts] as never[])).count;
    if (staged.sid.length) {
      await tx`TRUNCATE rollups_stage`;
      const stream = await tx.unsafe(`COPY rollups_stage FROM STDIN (FORMAT binary)`).writable();
      await new Promise<void>((resolve, reject) => {
        stream.on("error", reject);
        stream.write(encodeStaged(staged));
        stream.end(() => resolve());
      });
      const cols = `series_id, interval, ts, open, high, low, close, volume, adj_close, turnover, trades, bars, last_ts, run_id`;
      const from = `SELECT series_id, interval, ts, open, high, low, close, volume, adj_close, turnover, trades, bars, last_ts, $1::bigint FROM rollups_stage`;
      const [r] = await tx.unsafe(
        `WITH added AS (INSERT INTO rollups (${cols}) ${from} WHERE mode = ${ADD} RETURNING 1),
         upserted AS (
           INSERT INTO rollups (${cols}) ${from} WHERE mode = ${UPSERT}
           ON CONFLICT (series_id, interval, ts) DO UPDATE SET open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
             volume = excluded.volume, adj_close = excluded.adj_close, turnover = excluded.turnover, trades = excluded.trades, bars = excluded.bars,
             last_ts = excluded.last_ts, run_id = excluded.run_id, updated_at = now()
           WHERE (rollups.open, rollups.high, rollups.low, rollups.close, rollups.volume, rollups.adj_close, rollups.turnover, rollups.trades, rollups.bars, rollups.last_ts)
             IS DISTINCT FROM (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume, excluded.adj_close, excluded.turnover, excluded.trades, excluded.bars, excluded.last_ts)
           RETURNING 1),
         kept AS (INSERT INTO rollups (${cols}) ${from} WHERE mode = ${KEEP} ON CONFLICT (series_id, interval, ts) DO NOTHING RETURNING 1)
         SELECT (SELECT count(*) FROM added)::int + (SELECT count(*) FROM upserted)::int + (SELECT count(*) FROM kept)::int AS n`,
        [runId] as never[],
      );
      written += Number(r!.n);
    }
    if (newest.size) {
      await tx`
        INSERT INTO rollup_series (series_id, upto) SELECT * FROM unnest(${[...newest.keys()]}::int[], ${[...newest.values()].map(iso)}::timestamptz[])
        ON CONFLICT (series_id) DO UPDATE SET upto = greatest(rollup_series.upto, excluded.upto)`;
    }
  }
  return { written, deleted };
}

/** A binary COPY field holding an int8 (after its length), as a number (exact below 2^53). */
const int8At = (dv: DataView, at: number) => dv.getInt32(at + 4) * TWO_32 + dv.getUint32(at + 8);

/**
 * The daily bars of each job's window (and those retention kept aside, where a stored bar has not
 * the same ts), in (series id, ts) order, through one binary COPY, handed to `push` as they are
 * read: series id, ts (epoch ms), open, high, low, close, volume, adj_close, turnover, trades.
 */
async function readDaily(
  tx: Tx,
  jobs: { s: RollSeries; window: Span }[],
  push: (sid: number, ts: number, o: number, h: number, l: number, c: number, v: number, adj: number | null, turnover: number | null, trades: number | null) => void,
): Promise<void> {
  // Literals: ids are integers and bounds ISO instants, made here (COPY takes no parameters).
  const values = (list: typeof jobs) => list.map((j) => `(${j.s.id | 0}, '${iso(j.window.start)}'::timestamptz, '${iso(j.window.end)}'::timestamptz)`).join(", ");
  const cols = `ts, open, high, low, close, volume, adj_close, turnover, trades`;
  const carried = jobs.filter((j) => j.s.cutoff !== null);
  // Each series' bars through the key in ts order, series in the order given (the fold checks it);
  // with retention's kept bars merged in, sorted.
  const query = carried.length === 0
    ? `SELECT w.sid, b.* FROM (VALUES ${values(jobs)}) AS w(sid, ws, we) CROSS JOIN LATERAL (SELECT ${cols} FROM bars WHERE series_id = w.sid AND ts >= w.ws AND ts < w.we ORDER BY ts) b`
    : `SELECT * FROM (
         SELECT w.sid, b.* FROM (VALUES ${values(jobs)}) AS w(sid, ws, we) CROSS JOIN LATERAL (SELECT ${cols} FROM bars WHERE series_id = w.sid AND ts >= w.ws AND ts < w.we) b
         UNION ALL
         SELECT c.series_id, c.${cols.split(", ").join(", c.")} FROM (VALUES ${values(carried)}) AS w(sid, ws, we) JOIN rollup_carry c ON c.series_id = w.sid AND c.ts >= w.ws AND c.ts < w.we
         WHERE NOT EXISTS (SELECT 1 FROM bars b WHERE b.series_id = c.series_id AND b.ts = c.ts)
       ) f ORDER BY 1, 2`;
  const stream = await tx.unsafe(`COPY (${query}) TO STDOUT (FORMAT binary)`).readable();
  let rest: Uint8Array | null = null;
  let header = true;
  let done = false;
  let failed: Error | null = null;
  const at = new Int32Array(10); // where each field of a row starts
  const take = (chunk: Uint8Array) => {
    let buf = chunk;
    if (rest) {
      const both = new Uint8Array(rest.length + chunk.length);
      both.set(rest);
      both.set(chunk, rest.length);
      buf = both;
      rest = null;
    }
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let o = 0;
    if (header) {
      if (buf.length < 19) {
        rest = buf;
        return;
      }
      o = 19 + dv.getInt32(15); // signature, flags, extension length and extension
      header = false;
    }
    // A row: field count, then per field its length (-1: null) and bytes.
    while (o + 2 <= buf.length) {
      const fields = dv.getInt16(o);
      if (fields === -1) {
        done = true;
        return;
      }
      if (fields !== 10) throw new Error(`daily rollup: a row of ${fields} fields`);
      // The whole row first (a chunk may end inside it).
      let p = o + 2;
      let f = 0;
      for (; f < 10 && p + 4 <= buf.length; f++) {
        at[f] = p;
        const len = dv.getInt32(p);
        p += 4 + (len > 0 ? len : 0);
      }
      if (f < 10 || p > buf.length) break;
      push(
        dv.getInt32(at[0]! + 4),
        int8At(dv, at[1]!) / 1000 + PG_EPOCH_MS,
        dv.getFloat64(at[2]! + 4),
        dv.getFloat64(at[3]! + 4),
        dv.getFloat64(at[4]! + 4),
        dv.getFloat64(at[5]! + 4),
        dv.getFloat64(at[6]! + 4),
        dv.getInt32(at[7]!) === -1 ? null : dv.getFloat64(at[7]! + 4),
        dv.getInt32(at[8]!) === -1 ? null : dv.getFloat64(at[8]! + 4),
        dv.getInt32(at[9]!) === -1 ? null : int8At(dv, at[9]!),
      );
      o = p;
    }
    if (o < buf.length) rest = buf.slice(o);
  };
  // Read as it arrives ('data' events), not left to buffer. postgres.js pauses its socket when a
  // COPY's stream is full and resumes it only when that stream asks for more, so a stream that
  // ends full (the end arriving with the data that filled it, before anything was read) leaves the
  // connection deaf to the next statement (porsager/postgres#499, fix proposed in #1016). Its
  // read() is that resume: asked once more after the end, it makes sure the socket flows.
  await new Promise<void>((resolve, reject) => {
    stream.on("data", (chunk: Uint8Array) => {
      if (failed || done) return;
      try {
        take(chunk);
      } catch (e) {
        failed = e as Error; // thrown after the COPY ends, so the connection stays in step
      }
    });
    stream.on("end", () => resolve());
    stream.on("error", reject);
  });
  (stream as unknown as { _read(size: number): void })._read(0);
  if (failed) throw failed;
  if (!done) throw new Error("daily rollup: the COPY of bars ended early");
}

/** One window per daily series: from the week and month around its first bar to those around its last. */
const dailyWindow = (s: RollSeries, lo: number, hi: number): Span => ({ start: coveringSpan(lo, s.interval, s.market).start, end: coveringSpan(hi, s.interval, s.market).end });

/** Record the newest finer bar a series' rollups now hold. */
async function advance(tx: Tx, seriesId: number, newest: number | null): Promise<void> {
  if (newest === null) return;
  await tx`
    INSERT INTO rollup_series (series_id, upto) VALUES (${seriesId}, ${iso(newest)}::timestamptz)
    ON CONFLICT (series_id) DO UPDATE SET upto = greatest(rollup_series.upto, excluded.upto)`;
}

/** Every rolled-up interval of every series, built from scratch (migration 8, and tests). */
export async function rebuildRollups(tx: Tx): Promise<{ written: number; deleted: number }> {
  const ids = (await tx`SELECT id FROM series WHERE bars > 0 ORDER BY id`).map((r) => r.id as number);
  let written = 0;
  let deleted = 0;
  const daily: { s: RollSeries; window: Span }[] = [];
  for (const s of await seriesInfo(tx, ids)) {
    const [r] = await tx.unsafe(`SELECT ${epochMs("min(ts)")} AS lo, ${epochMs("max(ts)")} AS hi FROM bars WHERE series_id = $1`, [s.id]);
    if (r?.lo == null) continue;
    if (isDaily(s)) {
      daily.push({ s, window: dailyWindow(s, Number(r.lo), Number(r.hi)) });
      continue;
    }
    const window = merge([coveringSpan(Number(r.lo), s.interval, s.market), coveringSpan(Number(r.hi), s.interval, s.market)]);
    const c = await recompute(tx, s, { start: window[0]!.start, end: window[window.length - 1]!.end }, null);
    await advance(tx, s.id, c.newest);
    written += c.written;
    deleted += c.deleted;
  }
  const d = await recomputeDaily(tx, daily, null, () => {});
  return { written: written + d.written, deleted: deleted + d.deleted };
}

/**
 * Queue a finishing run's bars for the rollups (before the run is marked finished, so a crash in
 * between leaves it queued), with the ts range its batches recorded and the summary's.
 */
export async function queueRun(sql: Sql | Tx, runId: number, summary: { fromTs: number | null; toTs: number | null }): Promise<void> {
  const f = summary.fromTs === null ? null : iso(summary.fromTs);
  const t = summary.toTs === null ? null : iso(summary.toTs);
  await sql`
    INSERT INTO rollup_pending (run_id, from_ts, to_ts)
    SELECT id, least(from_ts, ${f}::timestamptz), greatest(to_ts, ${t}::timestamptz) FROM runs
    WHERE id = ${runId} AND coalesce(from_ts, ${f}::timestamptz) IS NOT NULL
    ON CONFLICT (run_id) DO UPDATE SET from_ts = least(rollup_pending.from_ts, excluded.from_ts), to_ts = greatest(rollup_pending.to_ts, excluded.to_ts)`;
}

/** Queue runs found interrupted (their committed bars stay). */
export async function queueRuns(sql: Sql, runIds: number[]): Promise<void> {
  if (runIds.length === 0) return;
  await sql`
    INSERT INTO rollup_pending (run_id, from_ts, to_ts)
    SELECT id, from_ts, to_ts FROM runs WHERE id = ANY(${runIds}::bigint[]) AND from_ts IS NOT NULL
    ON CONFLICT (run_id) DO UPDATE SET from_ts = least(rollup_pending.from_ts, excluded.from_ts), to_ts = greatest(rollup_pending.to_ts, excluded.to_ts)`;
}

/** How long a catch-up waits before it looks again while another process holds the rollups' lock. */
const BUSY_WAIT_MS = 250;

export function pgRollups(sql: Sql, schema: string) {
  const lockKey = `${schema}.ticksync.rollups`;
  const lock = (tx: Tx) => tx`SELECT pg_advisory_xact_lock(hashtext(${lockKey}))`;

  /**
   * One queued run: its touched buckets recomputed and its queue entry removed, in one
   * transaction under the rollups' lock (so two processes never roll up at once; "busy" when
   * another holds it). `check` throws to abandon it (the transaction rolls back).
   */
  async function rollUpRun(runId: number, check: () => void = () => {}): Promise<RunCounts | null | "busy"> {
    return (await sql.begin(async (tx) => {
      const [l] = await tx`SELECT pg_try_advisory_xact_lock(hashtext(${lockKey})) AS ok`;
      if (!l!.ok) return "busy";
      const [p] = await tx`SELECT 1 AS queued FROM rollup_pending WHERE run_id = ${runId}`;
      if (!p) return null; // another process did it
      // The series the run wrote, and the ts range it wrote in each.
      const ranges = new Map<number, { lo: number; hi: number }>();
      for (const r of await tx.unsafe(`SELECT series_id, ${epochMs("min_ts")} AS lo, ${epochMs("max_ts")} AS hi FROM run_series WHERE run_id = $1`, [runId]))
        ranges.set(r.series_id, { lo: Number(r.lo), hi: Number(r.hi) });
      const n: RunCounts = { written: 0, deleted: 0, appended: 0, recomputed: 0 };
      const list = await seriesInfo(tx, [...ranges.keys()]);
      // Daily series: their weeks and months from the first bar's to the last's, in SQL.
      const daily = list.filter(isDaily);
      const d = await recomputeDaily(tx, daily.map((s) => ({ s, window: dailyWindow(s, ranges.get(s.id)!.lo, ranges.get(s.id)!.hi) })), runId, check);
      n.recomputed += daily.length;
      n.written += d.written;
      n.deleted += d.deleted;
      // Intraday series: carried on when every bar is after everything rolled up (and after any
      // retention cutoff); else the weeks and months around each UTC day the run wrote, from its
      // first and last ts that day (a day is at most two local dates), read through the key.
      const intraday = list.filter((s) => !isDaily(s));
      const carryOn = (s: RollSeries) => s.upto !== null && ranges.get(s.id)!.lo > s.upto && (s.cutoff === null || s.upto >= s.cutoff);
      const others = intraday.filter((s) => !carryOn(s)).map((s) => s.id);
      const days = new Map<number, number[]>();
      if (others.length > 0)
        for (const g of await tx.unsafe(
          `SELECT rs.series_id, ${epochMs("min(b.ts)")} AS lo, ${epochMs("max(b.ts)")} AS hi
           FROM run_series rs JOIN bars b ON b.series_id = rs.series_id AND b.ts >= rs.min_ts AND b.ts <= rs.max_ts AND b.run_id = rs.run_id
           WHERE rs.run_id = $1 AND rs.series_id = ANY($2::int[]) GROUP BY rs.series_id, date_trunc('day', b.ts AT TIME ZONE 'UTC')`,
          [runId, others] as never[],
        )) {
          const list = days.get(g.series_id) ?? [];
          list.push(Number(g.lo), Number(g.hi));
          days.set(g.series_id, list);
        }
      for (const s of intraday) {
        check();
        const passes: Pass[] = [];
        if (carryOn(s)) {
          n.appended++;
          passes.push(await append(tx, s, runId, check));
        } else {
          const touched = days.get(s.id);
          if (!touched) continue; // every bar it wrote there was written again since, by a run queued after it
          n.recomputed++;
          for (const w of merge(touched.map((t) => coveringSpan(t, s.interval, s.market)))) passes.push(await recompute(tx, s, w, runId, check));
        }
        for (const c of passes) {
          await advance(tx, s.id, c.newest);
          n.written += c.written;
          n.deleted += c.deleted;
        }
      }
      check();
      await tx`DELETE FROM rollup_pending WHERE run_id = ${runId}`;
      return n;
    })) as RunCounts | null | "busy";
  }

  return {
    rollUpRun,

    /**
     * Work off every queued run, oldest first, including runs queued meanwhile, until none is
     * left or `stop` says so (the run being rolled up then rolls back and stays queued). A failed
     * run is logged and left queued for the next catch-up. While another process holds the lock,
     * this one waits and looks again: when it looks, that one may have done the work.
     */
    async catchUp(stop: () => boolean = () => false): Promise<RollupCounts> {
      const total: RollupCounts = { runs: 0, failed: 0, written: 0, deleted: 0, appended: 0, recomputed: 0 };
      const failed: string[] = [];
      const check = () => {
        if (stop()) throw new RollupInterrupted();
      };
      while (!stop()) {
        const [r] = await sql`SELECT run_id FROM rollup_pending WHERE NOT (run_id = ANY(${failed}::bigint[])) ORDER BY run_id LIMIT 1`;
        if (!r) break;
        const run = Number(r.run_id);
        try {
          const c = await rollUpRun(run, check);
          if (c === "busy") await Bun.sleep(BUSY_WAIT_MS);
          if (c === null || c === "busy") continue;
          total.runs++;
          for (const k of ["written", "deleted", "appended", "recomputed"] as const) total[k] += c[k];
        } catch (e) {
          if (e instanceof RollupInterrupted) break;
          log.warn("rollup of a run failed; it stays queued", { run, error: (e as Error).message });
          failed.push(String(run));
          total.failed++;
        }
      }
      return total;
    },

    async pending(): Promise<number> {
      const [r] = await sql`SELECT count(*)::int AS n FROM rollup_pending`;
      return r!.n as number;
    },

    /**
     * Before retention deletes `interval` bars older than `before` from these (locked) series:
     * record the cutoff, and keep aside the deleted bars of buckets the cutoff cuts through
     * (from the week and month around it); what was kept aside before them is dropped, their
     * buckets now lying wholly before the cutoff.
     */
    async carry(tx: Tx, seriesIds: number[], before: number): Promise<void> {
      await lock(tx);
      const list = await seriesInfo(tx, seriesIds);
      if (list.length === 0) return;
      const ids = list.map((s) => s.id);
      const cut = list.map((s) => Math.max(s.cutoff ?? -Infinity, before));
      const from = list.map((s, i) => iso(coveringSpan(cut[i]!, s.interval, s.market).start));
      await tx`
        INSERT INTO rollup_carry (series_id, ts, open, high, low, close, volume, adj_close, turnover, trades)
        SELECT b.series_id, b.ts, b.open, b.high, b.low, b.close, b.volume, b.adj_close, b.turnover, b.trades
        FROM unnest(${ids}::int[], ${from}::timestamptz[]) AS u(id, lo) JOIN bars b ON b.series_id = u.id AND b.ts >= u.lo AND b.ts < ${iso(before)}::timestamptz
        ON CONFLICT (series_id, ts) DO UPDATE SET open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
          volume = excluded.volume, adj_close = excluded.adj_close, turnover = excluded.turnover, trades = excluded.trades`;
      await tx`DELETE FROM rollup_carry c USING unnest(${ids}::int[], ${from}::timestamptz[]) AS u(id, lo) WHERE c.series_id = u.id AND c.ts < u.lo`;
      await tx`
        INSERT INTO rollup_cutoffs (series_id, before) SELECT * FROM unnest(${ids}::int[], ${cut.map(iso)}::timestamptz[])
        ON CONFLICT (series_id) DO UPDATE SET before = greatest(rollup_cutoffs.before, excluded.before)`;
    },

    /**
     * A page of `q.interval` bars from the rollups, or null when they are not what /api/bars
     * would roll up (bars stored at the interval, nothing finer, no known market) or not up to
     * date (a finer bar of a run still running or queued): the caller then rolls up on read.
     * The base is the coarsest finer interval with bars, as on read; when retention has emptied
     * every finer series, the coarsest one it left rollups of.
     */
    async page(q: BarQuery): Promise<RollupPage | null> {
      const market = marketOf(q.symbol);
      if (market === undefined) return null;
      const source = q.source ?? null;
      const series = await sql`
        SELECT s.id, s.interval, s.bars, c.series_id IS NOT NULL AS cut FROM series s LEFT JOIN rollup_cutoffs c ON c.series_id = s.id
        WHERE s.symbol = ${q.symbol} AND (${source}::text IS NULL OR s.source = ${source})`;
      if (series.some((s) => s.interval === q.interval && Number(s.bars) > 0)) return null;
      const finer = rollupSources(q.interval);
      const base = finer.find((i) => series.some((s) => s.interval === i && Number(s.bars) > 0)) ?? finer.find((i) => series.some((s) => s.interval === i && s.cut));
      if (base === undefined) return null;
      const ids = series.filter((s) => s.interval === base).map((s) => s.id as number);
      const [busy] = await sql`
        SELECT 1 AS busy FROM (
          SELECT run_id AS id FROM rollup_pending UNION ALL SELECT id FROM runs WHERE outcome = 'running' AND from_ts IS NOT NULL
        ) r
        WHERE EXISTS (SELECT 1 FROM run_series rs WHERE rs.run_id = r.id AND rs.series_id = ANY(${ids}::int[]))
        LIMIT 1`;
      if (busy) return null;
      const after = q.after ? sql`AND r.ts >= ${iso(q.after.ts)}::timestamptz AND (r.ts > ${iso(q.after.ts)}::timestamptz OR s.source > ${q.after.source})` : sql``;
      const rows = await sql`
        SELECT s.source, s.symbol, r.interval, (extract(epoch FROM r.ts) * 1000)::float8 AS t, r.open, r.high, r.low, r.close, r.volume, r.adj_close, r.turnover, r.trades::float8 AS trades
        FROM series s CROSS JOIN LATERAL (
          SELECT * FROM rollups r WHERE r.series_id = s.id AND r.interval = ${q.interval}
            AND r.ts >= ${iso(q.from ?? -8.64e12)}::timestamptz AND r.ts <= ${iso(q.to ?? 8.64e12)}::timestamptz ${after}
          ORDER BY r.ts LIMIT ${q.limit + 1}
        ) r
        WHERE s.id = ANY(${ids}::int[])
        ORDER BY r.ts, s.source LIMIT ${q.limit + 1}`;
      // Shaped as createRoller's bars are (missing values null), so the two paths' pages are equal.
      const bars = rows.slice(0, q.limit).map(
        (r): Bar => ({
          source: r.source, symbol: r.symbol, interval: r.interval, ts: Number(r.t), open: r.open, high: r.high, low: r.low, close: r.close, volume: r.volume,
          adjClose: r.adj_close, turnover: r.turnover, trades: r.trades === null ? null : Number(r.trades),
        }),
      );
      let excluded = 0;
      if (bars.length > 0 && isIntraday(base)) {
        const lo = bucketSpan(bars[0]!.ts, base, q.interval, market).start;
        const hi = bucketSpan(bars[bars.length - 1]!.ts, base, q.interval, market).end;
        const [e] = await sql`
          SELECT coalesce(sum(bars), 0)::int AS n FROM rollup_excluded
          WHERE series_id = ANY(${ids}::int[]) AND start_ts >= ${iso(lo)}::timestamptz AND end_ts <= ${iso(hi)}::timestamptz`;
        excluded = e!.n as number;
      }
      return { from: base, bars, more: rows.length > q.limit, excluded };
    },
  };
}
