// The store's own catch-ups of the rollups, one at a time in a process: asked for by rollUp, and
// in the background of a process that keeps them (serve) at start and after each run it finishes.
import { log } from "../../../lib/log.ts";
import type { RollupCounts } from "./common.ts";
import type { PgRollups } from "./index.ts";
import { errorText } from "../../../lib/errors.ts";

export type RollupWorker = {
  rollups: PgRollups;
  /**
   * The catch-up in progress in this process (one at a time), and whether another was asked for
   * meanwhile: runs queued after it last looked are then worked off by it too.
   */
  catching: Promise<RollupCounts> | null;
  again: boolean;
  /** The store is closing: a catch-up stops at its next step and rolls back (its run stays queued). */
  closing: boolean;
  /** Whether this process keeps the rollups in the background (serve): after its runs, and at start. */
  background: boolean;
};

export const rollupWorker = (rollups: PgRollups): RollupWorker => ({ rollups, catching: null, again: false, closing: false, background: false });

/** Roll up every queued run: the one in progress, then again for runs queued since it looked. */
export function catchUp(w: RollupWorker): Promise<RollupCounts> {
  w.again = true;
  if (w.catching) return w.catching;
  const run = (async () => {
    const total: RollupCounts = { runs: 0, failed: 0, written: 0, deleted: 0, appended: 0, recomputed: 0 };
    try {
      while (w.again && !w.closing) {
        w.again = false;
        const c = await w.rollups.catchUp(() => w.closing);
        for (const k of Object.keys(total) as (keyof RollupCounts)[]) total[k] += c[k];
      }
    } finally {
      w.catching = null;
    }
    return total;
  })();
  w.catching = run;
  return run;
}

/**
 * Roll up the runs queued for the materialised rollups, never failing: a failure is logged and
 * the run stays queued for the next catch-up (after the next run this process finishes, or the
 * next start).
 */
export async function rollUpQueued(w: RollupWorker): Promise<void> {
  try {
    const c = await catchUp(w);
    if (c.runs > 0 || c.failed > 0) log.info("rollups caught up", { runs: c.runs, failed: c.failed, written: c.written, deleted: c.deleted });
  } catch (e) {
    if (!w.closing) log.warn("rollups not refreshed; their runs stay queued", { error: errorText(e) });
  }
}

/** From now on roll up queued runs in the background: at once, and after each run this process finishes. */
export function rollUpInBackground(w: RollupWorker): void {
  if (w.background) return;
  w.background = true;
  void rollUpQueued(w);
}

/** Stop: a catch-up in progress stops at its next step and rolls back (its run stays queued). */
export async function stopWorker(w: RollupWorker): Promise<void> {
  w.closing = true;
  await w.catching?.catch(() => {});
}
