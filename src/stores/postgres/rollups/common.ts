// What the materialised rollups' parts share: the series a pass rolls up (RollSeries, seriesInfo),
// spans and passes, the counts a catch-up reports, and the statement that records how far a
// series' rollups reach (advance).
import { INTERVALS, type Bar, type Interval } from "../../../domain/bar.ts";
import type { Market } from "../../../domain/calendar.ts";
import { canRollUp, coveringSpan } from "../../../domain/rollup.ts";
import { marketOf } from "../../../domain/symbols.ts";
import type { Sql, Tx } from "../sql.ts";

export type { Sql, Tx };

/** Finer bars read per query, and rolled-up rows written per statement. */
export const READ_CHUNK = 20_000;
export const WRITE_CHUNK = 5_000;

export type Span = { start: number; end: number };

/** What one pass wrote, and the newest finer bar it read (null: none). */
export type Pass = { written: number; deleted: number; newest: number | null };

/** An instant after every bar (9999-12-31). */
export const FAR = 253_402_214_400_000;

export type RollSeries = {
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
export type RunCounts = Omit<RollupCounts, "runs" | "failed">;

/** Thrown inside a catch-up's transaction when the store is closing: it rolls back, the run stays queued. */
export class RollupInterrupted extends Error {
  constructor() {
    super("rollup interrupted: the store is closing; the run stays queued");
  }
}

export const iso = (t: number) => new Date(t).toISOString();
export const epochMs = (col: string) => `(extract(epoch FROM ${col}) * 1000)::float8`;

/** The intervals a series' bars are materialised at. */
export const rollupTargets = (from: Interval) => INTERVALS.filter((t) => canRollUp(from, t));

/** Spans merged where they overlap or touch, in order. */
export function merge(spans: Span[]): Span[] {
  const out: Span[] = [];
  for (const s of [...spans].sort((a, b) => a.start - b.start)) {
    const last = out[out.length - 1];
    if (last && s.start <= last.end) last.end = Math.max(last.end, s.end);
    else out.push({ ...s });
  }
  return out;
}

/** The series among `ids` that roll up into something (a known market, a coarser interval). */
export async function seriesInfo(tx: Tx, ids: number[]): Promise<RollSeries[]> {
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

export type Built = { bar: Bar; bars: number; last: number };

/** What a daily series is rolled up into (rollupTargets("1d")), by recomputeDaily. */
export const DAILY_TARGETS = ["1w", "1mo"] as const;
export const isDaily = (s: RollSeries) => s.interval === "1d" && s.targets.length === DAILY_TARGETS.length && s.targets.every((t, i) => t === DAILY_TARGETS[i]);

/** One window per daily series: from the week and month around its first bar to those around its last. */
export const dailyWindow = (s: RollSeries, lo: number, hi: number): Span => ({ start: coveringSpan(lo, s.interval, s.market).start, end: coveringSpan(hi, s.interval, s.market).end });

/** Record the newest finer bar a series' rollups now hold. */
export async function advance(tx: Tx, seriesId: number, newest: number | null): Promise<void> {
  if (newest === null) return;
  await tx`
    INSERT INTO rollup_series (series_id, upto) VALUES (${seriesId}, ${iso(newest)}::timestamptz)
    ON CONFLICT (series_id) DO UPDATE SET upto = greatest(rollup_series.upto, excluded.upto)`;
}
