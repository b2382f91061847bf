// Journal retention: `serve` drops journaled batches older than `stream.retentionDays`, at start
// and then every hour (or more often for a short retention). A client away longer than that is
// told its replay starts later than it asked (see session.ts).
import type { EventJournal } from "../stores/types.ts";
import { log } from "../lib/log.ts";
import { errorText } from "../lib/errors.ts";

export function startRetention(store: EventJournal, keepMs: number): () => void {
  if (!store.journal) return () => {};
  const prune = async () => {
    try {
      const n = await store.pruneEvents(Date.now() - keepMs);
      if (n) log.info("event journal pruned", { batches: n, olderThanHours: Math.round(keepMs / 3_600_000) });
    } catch (e) {
      log.warn("pruning the event journal failed", { error: errorText(e) });
    }
  };
  void prune();
  const timer = setInterval(prune, Math.max(1000, Math.min(3_600_000, keepMs / 4)));
  timer.unref?.();
  return () => clearInterval(timer);
}
