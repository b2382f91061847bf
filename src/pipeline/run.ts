// Wiring: from a validated config to a source, a run, and the metrics the run reports.
import { createSource, type SourceConfig } from "../sources/registry.ts";
import type { ReadRange, Source } from "../sources/types.ts";
import type { Store } from "../stores/types.ts";
import type { TicksyncMetrics } from "../lib/metrics.ts";
import { log } from "../lib/log.ts";
import { trackJobWaits } from "./progress.ts";
import { runIngest, type BatchEvent, type IngestSummary, type Progress } from "./ingest.ts";

/**
 * What a run needs of the config: the caller (cli/, serve.ts) passes its loaded config, which has
 * this shape; the pipeline sits below config/ and does not import it.
 */
export type IngestSettings = {
  config: {
    sources: Readonly<Record<string, SourceConfig>>;
    universes: Readonly<Record<string, string[]>>;
    ingest: { batchSize: number };
    /** The jobs' own quality gates, by job name. */
    jobs: readonly { name: string; minQuality?: number }[];
  };
  /** Relative source paths resolve against it. */
  baseDir: string;
  /** The config file it came from (not read here; a LoadedConfig carries it). */
  file?: string | null;
};

export type IngestRequest = {
  loaded: IngestSettings;
  store: Store;
  source: string;
  job?: string;
  kind?: "ingest" | "backfill" | "gapfill";
  range?: ReadRange;
  /** Read every stream from its start, whatever its checkpoint (`ingest --full`). */
  full?: boolean;
  /** Wraps the source made from the config (gapfill: each symbol read over its own range). */
  adapt?: (source: Source) => Source;
  /** Record every stream's state (default: backfill runs only). */
  trackStreams?: boolean;
  streams?: string[];
  concurrency?: number;
  resumeRunId?: number;
  retryFailed?: boolean;
  params?: Record<string, unknown>;
  metrics?: TicksyncMetrics;
  signal?: AbortSignal;
  onBatch?: (e: BatchEvent) => void;
  onProgress?: (p: Progress) => void;
};

export async function ingestFromConfig(req: IngestRequest): Promise<IngestSummary> {
  const cfg = req.loaded.config.sources[req.source];
  if (!cfg) throw new Error(`source ${req.source} is not defined in the config`);
  const made = createSource(req.source, cfg, req.loaded.baseDir, { universes: req.loaded.config.universes, signal: req.signal });
  const source = req.adapt ? req.adapt(made) : made;
  const m = req.metrics;
  const job = req.job ?? `${req.kind ?? "ingest"}:${req.source}`;
  // The quality gate: the job's own, else the source's, else the default (see runIngest).
  const minQuality = req.loaded.config.jobs.find((j) => j.name === job)?.minQuality ?? cfg.minQuality;
  const untrack = source.waits ? trackJobWaits(job, () => source.waits!.current()) : null;
  const summary = await runIngest({
    store: req.store,
    source,
    job,
    kind: req.kind,
    trackStreams: req.trackStreams,
    range: req.range,
    full: req.full,
    streams: req.streams,
    concurrency: req.concurrency,
    resumeRunId: req.resumeRunId,
    retryFailed: req.retryFailed,
    params: req.params,
    batchSize: req.loaded.config.ingest.batchSize,
    minQuality,
    signal: req.signal,
    onProgress: req.onProgress,
    onBatch: (e) => {
      if (m) {
        const l = { source: e.source };
        m.rowsRead.inc(l, e.read);
        m.rowsStored.inc(l, e.inserted + e.updated);
        m.rowsUnchanged.inc(l, e.unchanged);
        m.rowsQuarantined.inc(l, e.quarantined);
        for (const [rule, n] of Object.entries(e.quality.rules)) m.ruleViolations.inc({ source: e.source, rule }, n);
        m.qualityScore.set(l, e.quality.score);
      }
      req.onBatch?.(e);
    },
    onStreamError: (stream, error) => log.warn("stream failed", { source: req.source, stream, error: error.message }),
  }).finally(() => untrack?.());
  if (m) {
    m.runs.inc({ source: req.source, outcome: summary.outcome });
    m.runDuration.observe({ job }, summary.durationMs / 1000);
    if (summary.outcome === "succeeded") m.lastSuccess.set({ job }, Math.floor(Date.now() / 1000));
  }
  log.info("run finished", {
    run: summary.runId,
    job,
    source: req.source,
    outcome: summary.outcome,
    read: summary.read,
    inserted: summary.inserted,
    updated: summary.updated,
    unchanged: summary.unchanged,
    quarantined: summary.quarantined,
    score: summary.read > 0 ? summary.quality?.score : null, // no rows: no score (not 1)
    ms: Math.round(summary.durationMs),
    ...(Object.keys(summary.failures ?? {}).length ? { failures: summary.failures } : {}),
  });
  return summary;
}
