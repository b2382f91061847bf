// What syncing a sink's bars (sync.ts) and a mapped table (sync-table.ts) share: the summary a
// sync returns and the run record it leaves in the store's ledger.
import type { Store } from "../stores/types.ts";

export type SyncSummary = {
  runId: number;
  sink: string;
  collection: string;
  outcome: "succeeded" | "failed" | "interrupted";
  read: number;
  sent: number;
  rejected: number;
  retries: number;
  batches: number;
  /** Records removed because their bars were deleted from the store (sync-deletes.ts). */
  deleted?: number;
  /** The run ids synced through (inclusive) at the end. */
  uptoRun: number;
  durationMs: number;
  error: string | null;
};

export type SyncProgress = { read: number; sent: number; rejected: number; elapsedMs: number };

/** A sync run's record: rows read from the store, records the sink took (inserted), refused (quarantined). */
export async function finishSyncRun(store: Store, runId: number, outcome: SyncSummary["outcome"], t: { read: number; sent: number; rejected: number }, error: string | null) {
  await store.finishRun(runId, {
    outcome,
    read: t.read,
    inserted: t.sent,
    updated: 0,
    unchanged: 0,
    quarantined: t.rejected,
    fromTs: null,
    toTs: null,
    quality: null,
    error,
    failures: outcome === "failed" && error ? { sink: 1 } : {},
  });
}
