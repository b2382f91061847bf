// The run engine for ingestion: source → validate → store, one transaction per batch with the
// stream's checkpoint inside it. Killed at any moment, a run resumes from the last committed
// batch and ends with exactly the rows of an uninterrupted run.
import type { Source } from "../sources/types.ts";
import type { Store, RunSummary } from "../stores/types.ts";
import { scoreBatch, validateBatch, type QualityReport, type Rule, type GapWarning } from "../domain/quality.ts";

export type BatchEvent = {
  runId: number;
  source: string;
  stream: string;
  read: number;
  inserted: number;
  updated: number;
  unchanged: number;
  quarantined: number;
  warnings: GapWarning[];
  quality: QualityReport;
};

export type StreamResult = { stream: string; read: number; error?: string };

export type IngestSummary = RunSummary & {
  runId: number;
  source: string;
  job?: string;
  durationMs: number;
  streams: StreamResult[];
  gapWarnings: number;
};

export type IngestOptions = {
  store: Store;
  source: Source;
  job?: string;
  kind?: string;
  batchSize?: number;
  /** Restrict to these streams (files, tables); default: all of the source's. */
  streams?: string[];
  now?: () => number;
  signal?: AbortSignal;
  onBatch?: (e: BatchEvent) => void;
  onStreamError?: (stream: string, error: Error) => void;
};

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

export async function runIngest(opts: IngestOptions): Promise<IngestSummary> {
  const { store, source } = opts;
  const batchSize = opts.batchSize ?? 5000;
  const started = performance.now();
  const runId = await store.startRun({ kind: opts.kind ?? "ingest", source: source.name, job: opts.job, params: { batchSize, type: source.type } });
  const totals = { read: 0, inserted: 0, updated: 0, unchanged: 0, quarantined: 0 };
  const rules: Partial<Record<Rule, number>> = {};
  let accepted = 0;
  let gapSessions = 0;
  let gapWarnings = 0;
  let fromTs: number | null = null;
  let toTs: number | null = null;
  const results: StreamResult[] = [];
  // Newest bar per symbol, seeded from the store, so gaps are found across batches and runs.
  const lastTs = new Map<string, number>();
  let fatal: unknown = null;
  try {
    for (const s of await store.listSeries()) if (s.source === source.name && s.interval === source.interval) lastTs.set(s.symbol, s.lastTs);
    const streams = opts.streams ?? (await source.streams());
    for (const stream of streams) {
      if (opts.signal?.aborted) throw new Error("run aborted");
      const key = `${source.name}:${stream}`;
      const result: StreamResult = { stream, read: 0 };
      results.push(result);
      try {
        const cp = await store.getCheckpoint(key);
        for await (const batch of source.read(stream, cp?.cursor ?? null, batchSize)) {
          if (opts.signal?.aborted) throw new Error("run aborted");
          const v = validateBatch(batch.rows, {
            source: source.name,
            interval: source.interval,
            market: source.market,
            tsFormat: source.tsFormat,
            timeZone: source.timeZone,
            now: opts.now?.(),
            lastTs,
          });
          let last = v.bars[v.bars.length - 1];
          for (const b of v.bars) {
            if (fromTs === null || b.ts < fromTs) fromTs = b.ts;
            if (toTs === null || b.ts > toTs) toTs = b.ts;
            if (last && b.ts > last.ts) last = b;
          }
          const res = await store.commitBatch({
            runId,
            source: source.name,
            bars: v.bars,
            quarantine: v.rejections,
            checkpoint: { stream: key, cursor: batch.cursor, lastTs: last?.ts ?? cp?.lastTs ?? null, lastKey: last ? `${last.symbol}|${last.interval}|${last.ts}` : (cp?.lastKey ?? null) },
          });
          result.read += batch.rows.length;
          totals.read += batch.rows.length;
          totals.inserted += res.inserted;
          totals.updated += res.updated;
          totals.unchanged += res.unchanged;
          totals.quarantined += v.rejections.length;
          accepted += v.report.accepted;
          gapSessions += v.report.gapSessions;
          gapWarnings += v.warnings.length;
          for (const [rule, n] of Object.entries(v.report.rules) as [Rule, number][]) rules[rule] = (rules[rule] ?? 0) + n;
          opts.onBatch?.({ runId, source: source.name, stream, read: batch.rows.length, ...res, quarantined: v.rejections.length, warnings: v.warnings, quality: v.report });
        }
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        // One stream's failure is recorded and the others still run.
        result.error = errorText(e);
        opts.onStreamError?.(stream, e as Error);
      }
    }
  } catch (e) {
    fatal = e;
  }
  const failed = results.filter((r) => r.error);
  const quality = scoreBatch(totals.read, accepted, gapSessions, rules);
  const error = fatal
    ? errorText(fatal)
    : failed.length > 0
      ? `${failed.length} of ${results.length} streams failed: ${failed.map((f) => f.error).join("; ")}`
      : null;
  const summary: RunSummary = {
    outcome: error ? "failed" : "succeeded",
    ...totals,
    fromTs,
    toTs,
    quality,
    error,
  };
  await store.finishRun(runId, summary);
  return { ...summary, runId, source: source.name, job: opts.job, durationMs: performance.now() - started, streams: results, gapWarnings };
}
