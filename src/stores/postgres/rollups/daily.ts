// Rollups of daily series into ISO weeks and months, many series at a time and without an object
// per bar: one binary COPY reads their bars in key order, a fold equal to createRoller's step for
// step rolls them up, and one binary COPY writes the rows (see recomputeDaily).
import type { Interval } from "../../../domain/bar.ts";
import type { Market } from "../../../domain/calendar.ts";
import { bucketOf, bucketSpan } from "../../../domain/rollup.ts";
import { COPY_SIGNATURE, PG_EPOCH_MS, putInt8, TWO_32 } from "../copy.ts";
import { DAILY_TARGETS, epochMs, iso, type RollSeries, type Span, type Tx } from "./common.ts";

/** Daily bars (of whole series, as the series rows count them) read and rolled up per step, about. */
const DAILY_BARS = 250_000;
const DAY_MS = 86_400_000;

/** A daily series and the window (whole weeks and months) rolled up again. */
type Job = { s: RollSeries; window: Span };
/** Rows of rollups in a job's window, per series id: each one's interval and ts. */
type Existing = Map<number, { interval: string; t: number }[]>;

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
  out.set(COPY_SIGNATURE);
  let o = 19;
  const int4 = (x: number) => (dv.setInt32(o, 4), dv.setInt32(o + 4, x), (o += 8));
  const float8 = (x: number | null) => (x === null ? (dv.setInt32(o, -1), (o += 4)) : (dv.setInt32(o, 8), dv.setFloat64(o + 4, x), (o += 12)));
  const ts = (t: number) => (o = putInt8(dv, o, (t - PG_EPOCH_MS) * 1000));
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
    else o = putInt8(dv, o, Math.round(trades));
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
export async function recomputeDaily(tx: Tx, jobs: Job[], runId: number | null, check: () => void): Promise<{ written: number; deleted: number }> {
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
    const existing = await existingRows(tx, part);
    const staged: Staged = { sid: [], interval: [], ts: [], open: [], high: [], low: [], close: [], volume: [], adjClose: [], turnover: [], trades: [], bars: [], last: [], mode: [] };
    const newest = new Map<number, number>();
    const seen = new Map<number, Set<string>>(); // of series with rows: interval|ts of each bucket rolled up in the window
    let k = -1; // the job whose bars are being read
    let job: Job | null = null;
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
    deleted += await deleteStale(tx, part, existing, seen);
    if (staged.sid.length) written += await writeStaged(tx, staged, runId);
    if (newest.size) {
      await tx`
        INSERT INTO rollup_series (series_id, upto) SELECT * FROM unnest(${[...newest.keys()]}::int[], ${[...newest.values()].map(iso)}::timestamptz[])
        ON CONFLICT (series_id) DO UPDATE SET upto = greatest(rollup_series.upto, excluded.upto)`;
    }
  }
  return { written, deleted };
}

/** The rows there already in each job's window: none in a series' window makes it a first load there. */
async function existingRows(tx: Tx, part: Job[]): Promise<Existing> {
  const existing: Existing = new Map();
  for (const r of await tx.unsafe(
    `SELECT x.series_id, x.interval, ${epochMs("x.ts")} AS t
     FROM unnest($1::int[], $2::timestamptz[], $3::timestamptz[]) AS w(sid, ws, we)
     JOIN rollups x ON x.series_id = w.sid AND x.interval IN ('1w', '1mo') AND x.ts >= w.ws AND x.ts < w.we`,
    [part.map((p) => p.s.id), part.map((p) => iso(p.window.start)), part.map((p) => iso(p.window.end))] as never[],
  )) {
    const list = existing.get(r.series_id) ?? [];
    list.push({ interval: r.interval, t: Number(r.t) });
    existing.set(r.series_id, list);
  }
  return existing;
}

/** Remove rows of buckets that have no bar any more (in the window, after the cutoff), as recompute() finds them. */
async function deleteStale(tx: Tx, part: Job[], existing: Existing, seen: Map<number, Set<string>>): Promise<number> {
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
  if (stale.sid.length === 0) return 0;
  return (await tx.unsafe(`DELETE FROM rollups WHERE (series_id, interval, ts) IN (SELECT * FROM unnest($1::int[], $2::text[], $3::timestamptz[]))`, [stale.sid, stale.interval, stale.ts] as never[])).count;
}

/** Write the staged rows (one binary COPY, then one statement); returns the rows written. */
async function writeStaged(tx: Tx, staged: Staged, runId: number | null): Promise<number> {
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
  return Number(r!.n);
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
  jobs: Job[],
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
