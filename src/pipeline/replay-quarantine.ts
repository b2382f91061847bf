// Replay of quarantined rows after a fix (a corrected source setting such as its market, tsFormat
// or time zone, or a rule that changed): each selected record's raw row is validated again with
// the source's current settings. Rows that pass are stored by a `replay` run (idempotent upserts,
// journaled and streamed like any other batch) and then leave the quarantine; rows that still
// fail stay, with the reason they fail now.
//
// Not replayed: `duplicate` rows (their key is stored from another row, and replaying would
// overwrite it), `sink` rows (a sink refused a stored bar; the next sync or repair re-sends it),
// and rows whose key has a bar stored since (a corrected row arrived in the meantime). Those stay
// in quarantine and are reported as skipped.
//
// The bars commit before the records are deleted: a crash in between leaves records whose bars
// are stored, and replaying them again finds the same bars stored (unchanged) and removes them.
import type { Bar } from "../domain/bar.ts";
import { newValidateCache, scoreBatch, validateRow, type Rejection, type Rule, type ValidateContext } from "../domain/quality.ts";
import type { QuarantineRecord, Store } from "../stores/types.ts";
import { errorText } from "../lib/errors.ts";

export type ReplaySelection = {
  /** Quarantine ids; with the filters below, only ids that also match them. */
  ids?: number[];
  source?: string;
  rule?: string;
  run?: number;
  /** At most this many records per call. */
  limit: number;
};

export type ReplayedSource = {
  source: string;
  runId: number | null;
  examined: number;
  /** Stored (inserted, updated or already equal) and removed from quarantine. */
  released: number;
  inserted: number;
  updated: number;
  unchanged: number;
  stillFailing: number;
  skipped: number;
};

export type ReplayResult = {
  examined: number;
  released: number;
  stillFailing: number;
  skipped: number;
  sources: ReplayedSource[];
  /** Per record that stayed: why (first 200). */
  kept: { id: number; source: string; rule: string; reason: string }[];
};

/** How rows of a source are validated now; null when the source is no longer configured. */
export type ContextOf = (source: string) => Omit<ValidateContext, "lastTs" | "cache"> | null;

const NOT_REPLAYED: Record<string, string> = {
  duplicate: "a duplicate of a stored row: replaying it would overwrite that row",
  sink: "refused by a sink: the stored bar is re-sent by the next sync or repair",
};

async function select(store: Store, sel: ReplaySelection): Promise<QuarantineRecord[]> {
  const ids = sel.ids ? new Set(sel.ids) : null;
  const out: QuarantineRecord[] = [];
  let before = ids ? Math.max(...ids) + 1 : undefined;
  const floor = ids ? Math.min(...ids) : -Infinity;
  for (;;) {
    const page = await store.listQuarantine({ limit: 1000, before, source: sel.source, rule: sel.rule, runId: sel.run });
    for (const r of page) if (!ids || ids.has(r.id)) out.push(r);
    if (page.length < 1000 || out.length >= sel.limit || page[page.length - 1]!.id <= floor) break;
    before = page[page.length - 1]!.id;
  }
  // Oldest first, so a replayed series is written in the order it was read.
  return out.slice(0, sel.limit).reverse();
}

export async function replayQuarantine(store: Store, sel: ReplaySelection, contextOf: ContextOf): Promise<ReplayResult> {
  if (!store.deleteQuarantine) throw new Error(`the ${store.kind} store cannot remove quarantine records, so it cannot replay them`);
  const records = await select(store, sel);
  const result: ReplayResult = { examined: records.length, released: 0, stillFailing: 0, skipped: 0, sources: [], kept: [] };
  const keep = (r: QuarantineRecord, rule: string, reason: string) => {
    if (result.kept.length < 200) result.kept.push({ id: r.id, source: r.source, rule, reason });
  };
  const bySource = new Map<string, QuarantineRecord[]>();
  for (const r of records) bySource.set(r.source, [...(bySource.get(r.source) ?? []), r]);

  for (const [source, recs] of bySource) {
    const s: ReplayedSource = { source, runId: null, examined: recs.length, released: 0, inserted: 0, updated: 0, unchanged: 0, stillFailing: 0, skipped: 0 };
    result.sources.push(s);
    const ctx = contextOf(source);
    const candidates: QuarantineRecord[] = [];
    for (const r of recs) {
      const why = !ctx ? `source ${source} is not in the config any more` : NOT_REPLAYED[r.rule];
      if (why) {
        s.skipped++;
        keep(r, r.rule, why);
      } else candidates.push(r);
    }
    if (!ctx || candidates.length === 0) continue;

    const bars: Bar[] = [];
    const passed: number[] = [];
    const failing: Rejection[] = [];
    const seen = new Set<string>();
    const cache = newValidateCache();
    for (const r of candidates) {
      const out = validateRow({ locator: r.locator, fields: r.raw }, ctx, cache);
      if ("rule" in out) {
        failing.push(out);
        keep(r, out.rule, out.reason);
        continue;
      }
      const key = `${out.symbol}\u0000${out.ts}`;
      if (seen.has(key)) {
        const reason = `duplicate of another replayed row for ${out.symbol} at ${new Date(out.ts).toISOString()}`;
        failing.push({ locator: r.locator, rule: "duplicate", reason, raw: r.raw, symbol: out.symbol, ts: out.ts });
        keep(r, "duplicate", reason);
        continue;
      }
      seen.add(key);
      // A different bar stored at this key since the row was quarantined is newer than the row: keep it.
      const existing = await store.queryBars({ symbol: out.symbol, interval: out.interval, source: out.source, from: out.ts, to: out.ts, limit: 1 });
      if (existing.length > 0 && !sameValues(existing[0]!, out)) {
        s.skipped++;
        keep(r, r.rule, `passes now, but a different bar for ${out.symbol} at ${new Date(out.ts).toISOString()} is stored since; not replaced`);
        continue;
      }
      bars.push(out);
      passed.push(r.id);
    }
    const rules: Partial<Record<Rule, number>> = {};
    for (const f of failing) rules[f.rule] = (rules[f.rule] ?? 0) + 1;
    s.stillFailing = failing.length;

    const runId = await store.startRun({ kind: "replay", source, job: `replay:${source}`, params: { quarantine: { ids: candidates.length, rule: sel.rule ?? null, run: sel.run ?? null } } });
    s.runId = runId;
    try {
      const c = await store.commitBatch({ runId, source, bars, quarantine: failing, read: candidates.length });
      s.inserted = c.inserted;
      s.updated = c.updated;
      s.unchanged = c.unchanged;
      s.released = await store.deleteQuarantine(passed);
      const ts = bars.map((b) => b.ts);
      await store.finishRun(runId, {
        outcome: "succeeded",
        read: candidates.length,
        inserted: c.inserted,
        updated: c.updated,
        unchanged: c.unchanged,
        quarantined: failing.length,
        fromTs: ts.length ? Math.min(...ts) : null,
        toTs: ts.length ? Math.max(...ts) : null,
        quality: scoreBatch(candidates.length, bars.length, 0, rules),
      });
    } catch (e) {
      await store.finishRun(runId, { outcome: "failed", read: candidates.length, inserted: 0, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null, error: errorText(e) });
      throw e;
    }
    result.released += s.released;
    result.stillFailing += s.stillFailing;
  }
  result.skipped = result.sources.reduce((n, s) => n + s.skipped, 0);
  return result;
}

function sameValues(a: { open: number; high: number; low: number; close: number; volume: number }, b: typeof a): boolean {
  return a.open === b.open && a.high === b.high && a.low === b.low && a.close === b.close && a.volume === b.volume;
}
