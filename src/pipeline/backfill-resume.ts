// Which backfill run `ticksync backfill --resume` continues, and with what: the run's state is in
// the store (its streams pending or failed), so the choice is made from the store alone.
import type { RunRecord, Store } from "../stores/types.ts";

/** The resume request cannot be met; the message says why (the CLI shows it as a usage error). */
export class ResumeError extends Error {
  override name = "ResumeError";
}

export type BackfillResume = {
  run: RunRecord;
  /** Streams not yet done. */
  pending: number;
};

/** The newest backfill that has symbols left: pending ones, or failed ones with retryFailed. */
async function newestUnfinished(store: Store, retryFailed: boolean): Promise<number> {
  const runs = (await store.listRuns({ limit: 200 })).filter((r) => r.kind === "backfill");
  for (const r of runs) {
    if (r.outcome === "running") throw new ResumeError(`backfill run ${r.id} is still running in another process`);
    const left = (await store.listRunStreams(r.id, "pending")).length + (retryFailed ? (await store.listRunStreams(r.id, "failed")).length : 0);
    if (left > 0) return r.id;
  }
  throw new ResumeError(`no unfinished backfill run to resume${retryFailed ? "" : " (--retry-failed also retries failed symbols)"}`);
}

/**
 * The backfill run to resume: `runId` when given, else the newest unfinished one. Refuses a run
 * that is not a backfill, still running, already finished, or whose source the config no longer has.
 */
export async function chooseBackfillResume(store: Store, o: { runId?: number; retryFailed: boolean; sources: Readonly<Record<string, unknown>> }): Promise<BackfillResume> {
  const runId = o.runId ?? (await newestUnfinished(store, o.retryFailed));
  const run = await store.getRun(runId);
  if (!run || run.kind !== "backfill") throw new ResumeError(`run ${runId} is not a backfill run`);
  if (run.outcome === "running") throw new ResumeError(`backfill run ${runId} is still running in another process`);
  if (run.outcome === "succeeded") throw new ResumeError(`backfill run ${runId} already finished`);
  if (!o.sources[run.source]) throw new ResumeError(`source ${run.source} of run ${runId} is no longer in the config`);
  const pending = (await store.listRunStreams(runId, "pending")).length;
  return { run, pending };
}
