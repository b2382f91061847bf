// Ingest and sync rates over time, from the runs kept in the store (so they survive restarts and
// cover every replica): each run's rows are spread evenly over the buckets its run time covers.
// Ingest counts rows read and stored by ingest/backfill runs; sync counts records delivered
// (inserted + updated) by sync runs.
import type { RunLedger, RunRecord } from "../stores/types.ts";

export type RatePoint = { t: number; ingestRead: number; ingestStored: number; quarantined: number; synced: number };
export type Rates = { bucketSeconds: number; from: string; to: string; points: RatePoint[] };

/** Walks runs newest first until they all started before `from` (at most `maxRuns`). */
async function runsSince(store: RunLedger, from: number, maxRuns: number): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  let before: number | undefined;
  for (;;) {
    const page = await store.listRuns({ limit: 500, before });
    for (const r of page) if ((r.finishedAt ?? Date.now()) >= from) out.push(r);
    if (page.length < 500 || out.length >= maxRuns) break;
    // Runs are listed by id, which follows start time; a long run may have started earlier, so
    // keep going one page past the window.
    if (page[page.length - 1]!.startedAt < from - 86_400_000) break;
    before = page[page.length - 1]!.id;
  }
  return out;
}

export async function rates(store: RunLedger, opts: { windowSeconds: number; bucketSeconds: number; now?: number; maxRuns?: number }): Promise<Rates> {
  const now = opts.now ?? Date.now();
  const bucket = opts.bucketSeconds * 1000;
  const to = Math.ceil(now / bucket) * bucket;
  const from = to - Math.ceil((opts.windowSeconds * 1000) / bucket) * bucket;
  const n = Math.round((to - from) / bucket);
  const points: RatePoint[] = Array.from({ length: n }, (_, i) => ({ t: Math.floor((from + i * bucket) / 1000), ingestRead: 0, ingestStored: 0, quarantined: 0, synced: 0 }));
  for (const r of await runsSince(store, from, opts.maxRuns ?? 20_000)) {
    const ingest = r.kind === "ingest" || r.kind === "backfill" || r.kind === "replay";
    const sync = r.kind === "sync";
    if (!ingest && !sync) continue;
    const start = r.startedAt;
    const end = Math.max(r.finishedAt ?? now, start + 1);
    const first = Math.max(0, Math.floor((start - from) / bucket));
    const last = Math.min(n - 1, Math.floor((end - 1 - from) / bucket));
    for (let i = first; i <= last; i++) {
      const lo = Math.max(start, from + i * bucket);
      const hi = Math.min(end, from + (i + 1) * bucket);
      if (hi <= lo) continue;
      const share = (hi - lo) / (end - start);
      const p = points[i]!;
      if (ingest) {
        p.ingestRead += r.read * share;
        p.ingestStored += r.stored * share;
        p.quarantined += r.quarantined * share;
      } else p.synced += (r.inserted + r.updated) * share;
    }
  }
  // Rows per second in each bucket.
  for (const p of points) {
    p.ingestRead = round(p.ingestRead / opts.bucketSeconds);
    p.ingestStored = round(p.ingestStored / opts.bucketSeconds);
    p.quarantined = round(p.quarantined / opts.bucketSeconds);
    p.synced = round(p.synced / opts.bucketSeconds);
  }
  return { bucketSeconds: opts.bucketSeconds, from: new Date(from).toISOString(), to: new Date(to).toISOString(), points };
}

const round = (x: number) => Math.round(x * 1000) / 1000;
