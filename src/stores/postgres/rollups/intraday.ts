// Rollups of intraday series, bar by bar through createRoller: recompute rolls whole weeks and
// months up again from their finer bars; append carries the newest rows on with bars after them.
import { INTERVAL_MS, type Bar, type Interval } from "../../../domain/bar.ts";
import { bucketOf, bucketSpan, createRoller, isIntraday, outOfSessionSpan, sessionAt } from "../../../domain/rollup.ts";
import { epochMs, FAR, iso, READ_CHUNK, WRITE_CHUNK, type Built, type Pass, type RollSeries, type Span, type Tx } from "./common.ts";

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
export async function recompute(tx: Tx, s: RollSeries, window: Span, runId: number | null, check: () => void = () => {}): Promise<Pass> {
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
export async function append(tx: Tx, s: RollSeries, runId: number, check: () => void = () => {}): Promise<Pass> {
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
