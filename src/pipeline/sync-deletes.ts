// Deletes, store → sink. A store that deletes single bars (a table source's reconciliation)
// journals each as a "delete" event; the sync reads the delete events after its own position (a
// checkpoint beside the bars' one; inserts and updates are not decoded) and removes those records
// from the sink, unless the store has the bar again (re-inserted since: the bars' sync sends it).
// Stores without deletes skip this.
import type { Store } from "../stores/types.ts";
import { recordId, type PocketbaseSink } from "../sinks/pocketbase/index.ts";

export const deleteStream = (sink: { name: string; collection: string }) => `sink:${sink.name}:${sink.collection}:deletes`;

/** Journal events read per page. */
const PAGE = 10_000;

/**
 * Where this sync reads deletes from: the kept position, or, for a sink that has never been
 * synced (no bars sent yet, so none to delete), the journal's end now.
 */
export async function deletesFrom(store: Store, sink: PocketbaseSink, neverSynced: boolean): Promise<number | null> {
  if (!store.deletesSince || !store.journal) return null;
  const cp = await store.getCheckpoint(deleteStream(sink));
  if (cp && typeof cp.cursor.eventId === "number") return cp.cursor.eventId;
  return neverSynced ? (await store.eventBounds()).last : 0;
}

/** Remove from the sink the bars deleted from the store after `from`; the position moves with each page. Returns records removed. */
export async function syncDeletes(store: Store, sink: PocketbaseSink, runId: number, from: number | null, signal?: AbortSignal): Promise<number> {
  if (from === null || !store.deletesSince) return 0;
  const sources = sink.config.sources;
  // Deletes journaled after this are the next sync's: the position may move up to here.
  const upto = (await store.eventBounds()).last;
  let after = from;
  let removed = 0;
  while (after < upto && !signal?.aborted) {
    const page = (await store.deletesSince(after, PAGE)).filter((e) => e.id <= upto);
    const ids: string[] = [];
    for (const e of page) {
      if (sources && !sources.includes(e.bar.source)) continue;
      const b = e.bar;
      const again = await store.queryBars({ symbol: b.symbol, interval: b.interval, source: b.source, from: b.ts, to: b.ts, limit: 1 });
      if (again.length === 0) ids.push(recordId(b.source, b.symbol, b.interval, b.ts));
    }
    if (ids.length) removed += await sink.remove(ids);
    after = page.length >= PAGE ? page[page.length - 1]!.id : upto;
    await store.commitBatch({ runId, source: `sink:${sink.name}`, bars: [], quarantine: [], read: 0, checkpoint: { stream: deleteStream(sink), cursor: { eventId: after }, lastTs: null, lastKey: null } });
  }
  return removed;
}
