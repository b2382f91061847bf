// Reconciliation of a table source with the store, for tables whose rows change or go without a
// change column to say so. Per (symbol, day) of the window, the count and checksum of the
// table's rows (read and validated as ingest reads them) are compared with the store's bars (the
// digest of migrate/verify: migrate.ts); only the days that differ are read again and stored, and
// bars of those days gone from the table are deleted when configured, through the store's delete
// path (journaled, so the stream and the sinks see them). Described in docs/sources.md.
import type { Bar } from "../domain/bar.ts";
import { newValidateCache, validateBatch, type Rejection, type ValidateContext } from "../domain/quality.ts";
import type { Source } from "../sources/types.ts";
import type { BarKey, Store } from "../stores/types.ts";
import { addToDigest, differingKeys, digestKey, seriesBars, type DayDigest } from "./migrate.ts";

const DAY = 86_400_000;

export type ReconcileResult = {
  /** First day compared (YYYY-MM-DD), or null: every day (a full run). */
  from: string | null;
  /** (symbol, day) groups compared, table and store together. */
  compared: number;
  /** Groups whose count or checksum differed. */
  differing: number;
  /** Days read again. */
  reread: number;
  inserted: number;
  updated: number;
  /** Rows of the re-read days the rules rejected: quarantined, and their stored bars kept. */
  quarantined: number;
  /** Bars of the store gone from the table: deleted (deleteMissing) or kept. */
  gone: number;
  deleted: number;
};

export type ReconcileOptions = {
  store: Store;
  source: Source;
  runId: number;
  batchSize: number;
  /** How rows are validated into bars (the ingest run's own settings). */
  settings: Omit<ValidateContext, "lastTs" | "cache">;
  days: number;
  deleteMissing: boolean;
  /** Compare every day, not only the last `days`. */
  full?: boolean;
  now?: number;
  signal?: AbortSignal;
};

/** Bars of the source's streams in [from, to], validated, and the rows the rules rejected. */
async function* sourceBars(o: ReconcileOptions, from: number | undefined, to?: number): AsyncIterable<{ bars: Bar[]; rejections: Rejection[] }> {
  const ctx: ValidateContext = { ...o.settings, lastTs: new Map(), cache: newValidateCache() };
  for (const stream of await o.source.streams())
    for await (const batch of o.source.read(stream, null, o.batchSize, { from, to })) {
      if (o.signal?.aborted) throw new Error("run aborted");
      const v = validateBatch(batch.rows, ctx);
      yield { bars: v.bars, rejections: v.rejections };
    }
}

/** Runs of consecutive days (YYYY-MM-DD, sorted) as [start, end) instants: one read per run. */
function dayRuns(days: string[]): [number, number][] {
  const out: [number, number][] = [];
  for (const d of days) {
    const t = Date.parse(`${d}T00:00:00Z`);
    const last = out[out.length - 1];
    if (last && last[1] === t) last[1] = t + DAY;
    else out.push([t, t + DAY]);
  }
  return out;
}

export async function reconcileSource(o: ReconcileOptions): Promise<ReconcileResult> {
  const { store, source } = o;
  if (o.deleteMissing && !store.deleteBarKeys) throw new Error(`source ${source.name}: reconcile.deleteMissing needs a store that deletes bars; the ${store.kind} store cannot`);
  const now = o.now ?? Date.now();
  const from = o.full ? undefined : Math.floor(now / DAY) * DAY - (o.days - 1) * DAY;
  // The two sides' digests: one pass over the window of each, nothing held but the digests.
  const table = new Map<string, DayDigest>();
  for await (const { bars } of sourceBars(o, from)) for (const b of bars) addToDigest(table, b);
  const stored = new Map<string, DayDigest>();
  for (const s of await store.listSeries())
    if (s.source === source.name && s.interval === source.interval && (from === undefined || s.lastTs >= from))
      for await (const page of seriesBars(store, s.symbol, s.interval, s.source, undefined, o.batchSize, { from })) for (const b of page) addToDigest(stored, b);
  const differing = new Set(differingKeys(table, stored));
  const result: ReconcileResult = { from: from === undefined ? null : new Date(from).toISOString().slice(0, 10), compared: new Set([...table.keys(), ...stored.keys()]).size, differing: differing.size, reread: 0, inserted: 0, updated: 0, quarantined: 0, gone: 0, deleted: 0 };
  if (differing.size === 0) return result;

  // Read the differing days again; store the bars of differing groups, and note every key the
  // table has. A row the rules reject is quarantined, and its stored bar is not "gone".
  const days = [...new Set([...differing].map((k) => k.slice(k.lastIndexOf("|") + 1)))].sort();
  result.reread = days.length;
  const present = new Set<string>();
  for (const [start, end] of dayRuns(days))
    // Up to the next midnight inclusive: a row at 23:59:59.9995 (microseconds) is not missed; bars
    // of days that do not differ are filtered out.
    for await (const { bars, rejections } of sourceBars(o, start, end)) {
      const mine = bars.filter((b) => differing.has(digestKey(b)));
      for (const b of mine) present.add(`${b.symbol}|${b.ts}`);
      for (const r of rejections) if (r.symbol !== undefined && r.ts !== undefined) present.add(`${r.symbol}|${r.ts}`);
      if (!mine.length && !rejections.length) continue;
      const r = await store.commitBatch({ runId: o.runId, source: source.name, bars: mine, quarantine: rejections, read: 0 });
      result.inserted += r.inserted;
      result.updated += r.updated;
      result.quarantined += rejections.length;
    }

  // Bars of the differing groups the table no longer has.
  const gone: BarKey[] = [];
  for (const key of differing) {
    const [symbol, interval, day] = key.split("|") as [string, Bar["interval"], string];
    const start = Date.parse(`${day}T00:00:00Z`);
    for await (const page of seriesBars(store, symbol, interval, source.name, undefined, o.batchSize, { from: start, to: start + DAY - 1 }))
      for (const b of page) if (!present.has(`${b.symbol}|${b.ts}`)) gone.push({ symbol, interval, ts: b.ts });
  }
  result.gone = gone.length;
  if (o.deleteMissing && gone.length)
    for (let i = 0; i < gone.length; i += o.batchSize) result.deleted += await store.deleteBarKeys!({ runId: o.runId, source: source.name, keys: gone.slice(i, i + o.batchSize) });
  return result;
}
