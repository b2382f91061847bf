// The sync job: the store → a sink; and the sync with its metrics and log lines, which
// `ticksync sync` runs too (without metrics).
import * as v from "valibot";
import { log } from "../../lib/log.ts";
import type { TicksyncMetrics } from "../../lib/metrics.ts";
import { syncSink, type SyncSummary } from "../../pipeline/sync.ts";
import type { Sink } from "../../sinks/registry.ts";
import type { Store } from "../../stores/types.ts";
import { defineJobKind, sinkField } from "./kind.ts";

function recordSummary(sink: Sink, s: SyncSummary, metrics: TicksyncMetrics | null, job: string | undefined) {
  const l = { sink: sink.name, collection: s.collection };
  if (metrics) {
    if (s.collection !== sink.collection) {
      metrics.sinkRecords.inc(l, s.sent);
      metrics.sinkRejected.inc(l, s.rejected);
    }
    metrics.sinkRetries.inc(l, s.retries);
    metrics.runs.inc({ source: `sink:${sink.name}`, outcome: s.outcome });
    metrics.runDuration.observe({ job: job ?? `sync:${sink.name}` }, s.durationMs / 1000);
  }
  log[s.outcome === "succeeded" ? "info" : "warn"]("sync finished", {
    run: s.runId,
    sink: s.sink,
    collection: s.collection,
    outcome: s.outcome,
    read: s.read,
    sent: s.sent,
    rejected: s.rejected,
    retries: s.retries,
    ms: Math.round(s.durationMs),
    ...(s.error ? { error: s.error } : {}),
  });
}

/** Syncs every collection of a sink, counting what was sent and refused in the metrics (when given). */
export async function syncWithMetrics(store: Store, sink: Sink, metrics: TicksyncMetrics | null, o: { job?: string; signal?: AbortSignal; baseDir?: string } = {}): Promise<SyncSummary[]> {
  const all = await syncSink({
    store,
    sink,
    job: o.job,
    signal: o.signal,
    baseDir: o.baseDir,
    onBatch: (e) => {
      metrics?.sinkRecords.inc({ sink: sink.name, collection: sink.collection }, e.sent);
      metrics?.sinkRejected.inc({ sink: sink.name, collection: sink.collection }, e.rejected);
    },
  });
  for (const s of all) recordSummary(sink, s, metrics, o.job);
  if (metrics && all.every((s) => s.outcome === "succeeded")) metrics.lastSuccess.set({ job: o.job ?? `sync:${sink.name}` }, Math.floor(Date.now() / 1000));
  return all;
}

export const syncJob = defineJobKind({
  type: "sync",
  summary: "store → sink",
  needs: "sink",
  schema: v.object({
    sink: sinkField,
    onEvents: v.pipe(v.optional(v.boolean()), v.description("sync jobs: also run as soon as bars are stored (events), a second after the last one.")),
  }),
  create: (job, ctx) => async () => {
    const all = await syncWithMetrics(ctx.store, ctx.sinks.get(job.sink!)!, ctx.metrics, { job: job.name, signal: ctx.signal, baseDir: ctx.settings.baseDir });
    return { outcome: all.find((s) => s.outcome !== "succeeded")?.outcome ?? "succeeded" };
  },
});
