// Store → sink, incrementally. Bars are read in the store's change order (run_id, symbol,
// interval, ts, source) after the sink's cursor, sent in batches with bounded concurrency, and
// the cursor moves only over batches the sink acknowledged, in order: a batch still in flight or
// failed holds back every batch after it. The cursor, the quarantine of records the sink refused
// and the run's counters are committed together (one store transaction).
import type { ChangePosition, Checkpoint, RunRecord, Store } from "../stores/types.ts";
import { barToRecord, describeRejection, plainShape, rejectionOf, shapeRecord, SinkError, type PocketbaseSink, type SinkRejection } from "../sinks/pocketbase/index.ts";
import { deliveredSymbols, mirrorMarketUpdates, refuseBareClashes, sinkSeries } from "./sync-mirrors.ts";
import { log } from "../lib/log.ts";
import { runTableSync } from "./sync-table.ts";
import { finishSyncRun, type SyncProgress, type SyncSummary } from "./sync-run.ts";
import { deletesFrom, syncDeletes } from "./sync-deletes.ts";
import { errorText } from "../lib/errors.ts";

// Callers (main, http) take the sync types from here, where the engine is.
export type { SyncProgress, SyncSummary } from "./sync-run.ts";

export const sinkStream = (sink: { name: string; collection: string }) => `sink:${sink.name}:${sink.collection}`;

/**
 * The highest run id whose bars are all written: below the oldest ingest (or migrate) run still
 * running. Sync runs do not write bars and never hold it back.
 */
export async function settledRun(store: Store): Promise<number> {
  const runs: RunRecord[] = [];
  for (let before: number | undefined; ; ) {
    const page = await store.listRuns({ limit: 500, before });
    runs.push(...page);
    // Runs are listed newest first; a run older than the newest 2000 still 'running' is a
    // leftover of a dead process on another host, not a writer to wait for.
    if (page.length < 500 || runs.length >= 2000) break;
    before = page[page.length - 1]!.id;
  }
  if (runs.length === 0) return 0;
  const writing = runs.filter((r) => r.outcome === "running" && r.kind !== "sync" && r.kind !== "verify").map((r) => r.id);
  return writing.length ? Math.min(...writing) - 1 : Math.max(...runs.map((r) => r.id));
}

/** The sink's cursor: the store's change position, kept as the store gave it. */
function cursorOf(cp: Checkpoint | null): ChangePosition | null {
  if (!cp || typeof cp.cursor.runId !== "number") return null;
  return Object.fromEntries(Object.entries(cp.cursor).filter(([, v]) => v !== null)) as ChangePosition;
}

/** Everything a sink delivers: the store's bars (unless bars = false), then each mapped table. */
export async function syncSink(opts: { store: Store; sink: PocketbaseSink; job?: string; signal?: AbortSignal; baseDir?: string; onBatch?: (e: { sent: number; rejected: number }) => void }): Promise<SyncSummary[]> {
  const out: SyncSummary[] = [];
  if (opts.sink.config.bars) out.push(await runSync(opts));
  for (const [collection, spec] of Object.entries(opts.sink.config.tables)) {
    if (opts.signal?.aborted || out.some((s) => s.outcome !== "succeeded")) break;
    out.push(await runTableSync({ ...opts, collection, spec }));
  }
  return out;
}

export async function runSync(opts: {
  store: Store;
  sink: PocketbaseSink;
  job?: string;
  signal?: AbortSignal;
  /** Bars read from the store per page (each page is split into the sink's batches). */
  pageSize?: number;
  onProgress?: (p: SyncProgress) => void;
  onBatch?: (e: { sent: number; rejected: number }) => void;
}): Promise<SyncSummary> {
  const { store, sink } = opts;
  const started = performance.now();
  const stream = sinkStream(sink);
  const runId = await store.startRun({ kind: "sync", source: `sink:${sink.name}`, job: opts.job ?? `sync:${sink.name}`, params: { sink: sink.name, collection: sink.collection, location: sink.location } });
  const t = { read: 0, sent: 0, rejected: 0, batches: 0, deleted: 0 };
  const retriesBefore = sink.retries();
  let uptoRun = 0;
  let error: string | null = null;
  let outcome: SyncSummary["outcome"] = "succeeded";
  try {
    await sink.prepare();
    const shape = sink.shape;
    const plain = plainShape(shape);
    if (shape.bare) refuseBareClashes(sink, (await sinkSeries(store, sink)).keys());
    const size = sink.batchRecords();
    // Symbols whose bars this cycle delivers, for the market_updates mirror (only when it is on).
    const touched = sink.config.mirrors?.market_updates ? deliveredSymbols(sink) : null;
    const concurrency = sink.config.concurrency;
    uptoRun = await settledRun(store);
    let after = cursorOf(await store.getCheckpoint(stream));
    // Taken before the bars are read: a bar sent now and deleted meanwhile is removed below.
    const deletesAfter = await deletesFrom(store, sink, after === null);
    // The cursor may be ahead of uptoRun only if runs were deleted; nothing to do then.
    const pageSize = Math.max(opts.pageSize ?? 10_000, size * concurrency);

    // Batches in read order. `done` ones at the head are committed together with their rejections.
    type Slot = { last: ChangePosition; count: number; result: Promise<{ sent: number; rejected: SinkRejection[] }>; settled: boolean; value?: { sent: number; rejected: SinkRejection[] }; error?: unknown };
    const window: Slot[] = [];
    let failure: unknown = null;

    const commitHead = async () => {
      const done: Slot[] = [];
      while (window.length && window[0]!.settled && !window[0]!.error) done.push(window.shift()!);
      if (!done.length) return;
      const rejected = done.flatMap((s) => s.value!.rejected);
      const last = done[done.length - 1]!.last;
      const read = done.reduce((n, s) => n + s.count, 0);
      await store.commitBatch({
        runId,
        source: `sink:${sink.name}`,
        bars: [],
        quarantine: rejected.map((r) => rejectionOf(sink.name, r)),
        read,
        checkpoint: { stream, cursor: { ...last }, lastTs: typeof last.ts === "number" ? last.ts : null, lastKey: `run ${last.runId}` },
      });
      for (const s of done) {
        t.sent += s.value!.sent;
        t.rejected += s.value!.rejected.length;
        opts.onBatch?.({ sent: s.value!.sent, rejected: s.value!.rejected.length });
      }
      for (const r of rejected) log.warn("pocketbase rejected a record", { sink: sink.name, id: r.record.id, symbol: r.record.symbol, ts: r.record.ts, reason: describeRejection(r) });
      opts.onProgress?.({ read: t.read, sent: t.sent, rejected: t.rejected, elapsedMs: performance.now() - started });
    };

    const inFlight = () => window.filter((s) => !s.settled).length;
    let wake: (() => void) | null = null;
    const settledOne = () => new Promise<void>((r) => (wake = r));

    outer: for (;;) {
      if (opts.signal?.aborted) {
        outcome = "interrupted";
        break;
      }
      const page = await store.changedBars({ after, uptoRun, limit: pageSize, sources: sink.config.sources });
      if (!page.length) break;
      t.read += page.length;
      // Extras mapped to fields: read for the page in one go (a plain sink reads none).
      const extras = shape.extras.length ? await store.barExtras(page.map((c) => c.bar)) : null;
      if (touched) for (const c of page) touched.add(c.bar.symbol);
      for (let i = 0; i < page.length; i += size) {
        const chunk = page.slice(i, i + size);
        const last = chunk[chunk.length - 1]!.position;
        const records = plain ? chunk.map((c) => barToRecord(c.bar)) : chunk.map((c) => shapeRecord(barToRecord(c.bar), c.bar, shape, extras));
        const slot: Slot = { last, count: chunk.length, settled: false, result: null as any };
        slot.result = sink.write(records, { assumeNew: true }).then(
          (value) => {
            slot.value = value;
            slot.settled = true;
            wake?.();
            return value;
          },
          (e) => {
            slot.error = e;
            slot.settled = true;
            failure ??= e;
            wake?.();
            throw e;
          },
        );
        slot.result.catch(() => {});
        window.push(slot);
        t.batches++;
        while (inFlight() >= concurrency && !failure) await settledOne();
        await commitHead();
        if (failure) break outer;
        if (opts.signal?.aborted) {
          outcome = "interrupted";
          break outer;
        }
      }
      after = page[page.length - 1]!.position;
      if (page.length < pageSize) break;
    }
    // Let what is in flight finish; commit what was acknowledged in order.
    while (inFlight() > 0) await settledOne();
    await commitHead();
    if (failure) throw failure;
    if (outcome === "succeeded") t.deleted = await syncDeletes(store, sink, runId, deletesAfter, opts.signal);
    // The app's market_updates: after the bars, one snapshot per cycle.
    if (outcome === "succeeded" && touched) {
      const m = await mirrorMarketUpdates(store, sink, runId);
      t.rejected += m.rejected;
    }
  } catch (e) {
    outcome = opts.signal?.aborted && e instanceof SinkError && e.cause_ === "aborted" ? "interrupted" : "failed";
    error = errorText(e);
  }
  const durationMs = performance.now() - started;
  await finishSyncRun(store, runId, outcome, t, error);
  return { runId, sink: sink.name, collection: sink.collection, outcome, ...t, retries: sink.retries() - retriesBefore, uptoRun, durationMs, error };
}
