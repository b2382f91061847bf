// Moving a store's content to another store, with proof. Bars stream series by series through
// the store contract (so any two stores pair up), each series resumable from a checkpoint kept
// in the target; checkpoints and the quarantine follow. Then both sides are verified: counts
// and an order-independent checksum per (symbol, interval, day).
import { barKey, type Bar, type BarExtras } from "../domain/bar.ts";
import type { Rejection } from "../domain/quality.ts";
import type { BarReader, Store } from "../stores/types.ts";
import { errorText } from "../lib/errors.ts";

export type MigrateSummary = { runId: number; bars: number; series: number; checkpoints: number; quarantine: number; resumedSeries: number };

/** A page of bars after a keyset position (within `range`, inclusive); every series is read in (ts, source) order. */
export async function* seriesBars(store: BarReader, symbol: string, interval: Bar["interval"], source: string, after: { ts: number; source: string } | undefined, page: number, range: { from?: number; to?: number } = {}) {
  let cursor = after;
  for (;;) {
    const bars = await store.queryBars({ symbol, interval, source, limit: page, after: cursor, ...range });
    if (bars.length > 0) yield bars;
    if (bars.length < page) return;
    const last = bars[bars.length - 1]!;
    cursor = { ts: last.ts, source: last.source };
  }
}

const MIGRATE_PREFIX = "migrate:";
/**
 * Checkpoints that describe this store and no other: earlier migrations' own, and sinks' change
 * positions (run ids and keys of this store) and verify results against it. They do not travel:
 * a sink reading from the target starts over there, which its upserts by record id make safe.
 */
const storeOwn = (stream: string) => stream.startsWith(MIGRATE_PREFIX) || stream.startsWith("sink:") || stream.startsWith("verify:") || stream.startsWith("alert:");

/** A page's extras as a commit takes them. */
function extrasOf(bars: readonly Bar[], found: Map<string, Record<string, number>>): BarExtras[] {
  const out: BarExtras[] = [];
  if (found.size) for (const b of bars) {
    const values = found.get(barKey(b.source, b.symbol, b.interval, b.ts));
    if (values) out.push({ symbol: b.symbol, interval: b.interval, ts: b.ts, values });
  }
  return out;
}

export async function migrateStore(from: Store, to: Store, opts: { batchSize?: number; onProgress?: (done: number, total: number, bars: number) => void } = {}): Promise<MigrateSummary> {
  const page = opts.batchSize ?? 10_000;
  const tag = `${MIGRATE_PREFIX}${Bun.hash(from.location).toString(16)}:`;
  const runId = await to.startRun({ kind: "migrate", source: from.kind, params: { from: from.location, to: to.location } });
  const series = await from.listSeries();
  // Extras (a table source's extra columns) travel too; a store without any is not asked per batch.
  const withExtras = await from.hasExtras();
  let bars = 0;
  let resumedSeries = 0;
  let done = 0;
  try {
    for (const s of series) {
      const stream = `${tag}${s.source}|${s.symbol}|${s.interval}`;
      const cp = await to.getCheckpoint(stream);
      const after = cp ? { ts: Number(cp.cursor.ts), source: String(cp.cursor.source) } : undefined;
      if (cp) resumedSeries++;
      for await (const batch of seriesBars(from, s.symbol, s.interval, s.source, after, page)) {
        const last = batch[batch.length - 1]!;
        const extras = withExtras ? extrasOf(batch, await from.barExtras(batch)) : [];
        // The target's checkpoint moves with each batch: a killed migration resumes where it was.
        await to.commitBatch({
          runId,
          source: s.source,
          bars: batch,
          quarantine: [],
          read: batch.length,
          ...(extras.length ? { extras } : {}),
          checkpoint: { stream, cursor: { ts: last.ts, source: last.source }, lastTs: last.ts, lastKey: `${last.symbol}|${last.interval}|${last.ts}` },
        });
        bars += batch.length;
      }
      opts.onProgress?.(++done, series.length, bars);
    }
    // Checkpoints: the sources' read positions (not what describes the source store itself).
    const checkpoints = (await from.listCheckpoints()).filter((c) => !storeOwn(c.stream));
    await to.putCheckpoints(checkpoints, runId);
    let quarantine = 0;
    for (let before: number | undefined; ; ) {
      const rows = await from.listQuarantine({ limit: 1000, before });
      const bySource = new Map<string, Rejection[]>();
      for (const q of rows) {
        let list = bySource.get(q.source);
        if (!list) bySource.set(q.source, (list = []));
        list.push({ locator: q.locator, rule: q.rule as Rejection["rule"], reason: q.reason, raw: q.raw, ...(q.symbol ? { symbol: q.symbol } : {}), ...(q.ts !== null ? { ts: q.ts } : {}) });
      }
      for (const [source, list] of bySource) await to.commitBatch({ runId, source, bars: [], quarantine: list, read: 0 });
      quarantine += rows.length;
      if (rows.length < 1000) break;
      before = rows[rows.length - 1]!.id;
    }
    const summary = { runId, bars, series: series.length, checkpoints: checkpoints.length, quarantine, resumedSeries };
    await to.finishRun(runId, { outcome: "succeeded", read: bars, inserted: 0, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null, ...(await runCounts(to, runId)) });
    return summary;
  } catch (e) {
    await to.finishRun(runId, { outcome: "failed", read: bars, inserted: 0, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null, error: errorText(e), ...(await runCounts(to, runId)) });
    throw e;
  }
}

/** The counters commitBatch kept on the run, so finishing it does not overwrite them. */
async function runCounts(store: Store, runId: number) {
  const r = await store.getRun(runId);
  return r ? { read: r.read, inserted: r.inserted, updated: r.updated, unchanged: r.unchanged, quarantined: r.quarantined, fromTs: r.fromTs, toTs: r.toTs } : {};
}

export type DayDigest = { count: number; sum: bigint };
export type StoreDigest = { bars: Map<string, DayDigest>; quarantine: Set<string>; checkpoints: Map<string, string> };

const MASK = (1n << 64n) - 1n;

/** JSON with object keys sorted: stores may reorder keys (Postgres jsonb does), values must match. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object")
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(value) ?? "null";
}

/** The checksum of one bar: every field that makes it, as text, hashed to 64 bits. */
export function barHash(b: Bar): bigint {
  return BigInt(
    Bun.hash.wyhash(`${b.source}|${b.symbol}|${b.interval}|${b.ts}|${b.open}|${b.high}|${b.low}|${b.close}|${b.volume}|${b.adjClose ?? ""}|${b.turnover ?? ""}|${b.trades ?? ""}`),
  );
}

/** The digest key of a bar: `symbol|interval|YYYY-MM-DD` (its UTC day). */
export const digestKey = (b: Bar) => `${b.symbol}|${b.interval}|${new Date(b.ts).toISOString().slice(0, 10)}`;

/** Count a bar into its (symbol, interval, day) digest. */
export function addToDigest(digests: Map<string, DayDigest>, b: Bar): void {
  const key = digestKey(b);
  const d = digests.get(key);
  if (d) {
    d.count++;
    d.sum = (d.sum + barHash(b)) & MASK;
  } else digests.set(key, { count: 1, sum: barHash(b) });
}

/** The keys whose count or checksum differ between two digests (either side may lack a key). */
export function differingKeys(a: Map<string, DayDigest>, b: Map<string, DayDigest>): string[] {
  const out: string[] = [];
  for (const [key, d] of a) {
    const e = b.get(key);
    if (!e || e.count !== d.count || e.sum !== d.sum) out.push(key);
  }
  for (const key of b.keys()) if (!a.has(key)) out.push(key);
  return out.sort();
}

/** Per (symbol, interval, day): count and the sum of bar hashes mod 2^64 (order does not matter). */
export async function digestStore(store: Store, page = 10_000): Promise<StoreDigest> {
  const bars = new Map<string, DayDigest>();
  for (const s of await store.listSeries()) {
    for await (const batch of seriesBars(store, s.symbol, s.interval, s.source, undefined, page)) {
      for (const b of batch) addToDigest(bars, b);
    }
  }
  const quarantine = new Set<string>();
  for (let before: number | undefined; ; ) {
    const rows = await store.listQuarantine({ limit: 1000, before });
    for (const q of rows) quarantine.add(`${q.source}|${q.locator}|${q.rule}|${canonicalJson(q.raw)}`);
    if (rows.length < 1000) break;
    before = rows[rows.length - 1]!.id;
  }
  const checkpoints = new Map<string, string>();
  for (const c of await store.listCheckpoints()) if (!storeOwn(c.stream)) checkpoints.set(c.stream, canonicalJson([c.cursor, c.lastTs, c.lastKey]));
  return { bars, quarantine, checkpoints };
}

export type VerifyResult = {
  ok: boolean;
  keys: number;
  bars: { from: number; to: number };
  /** (symbol|interval|day) keys whose count or checksum differ, with both sides. */
  differing: { key: string; from: DayDigest | null; to: DayDigest | null }[];
  quarantine: { from: number; to: number; missing: number };
  checkpoints: { from: number; to: number; differing: string[] };
};

export async function verifyStores(from: Store, to: Store): Promise<VerifyResult> {
  const [a, b] = await Promise.all([digestStore(from), digestStore(to)]);
  const differing: VerifyResult["differing"] = [];
  for (const [key, d] of a.bars) {
    const e = b.bars.get(key);
    if (!e || e.count !== d.count || e.sum !== d.sum) differing.push({ key, from: d, to: e ?? null });
  }
  for (const [key, e] of b.bars) if (!a.bars.has(key)) differing.push({ key, from: null, to: e });
  differing.sort((x, y) => x.key.localeCompare(y.key));
  let missing = 0;
  for (const q of a.quarantine) if (!b.quarantine.has(q)) missing++;
  const cpDiff: string[] = [];
  for (const [stream, v] of a.checkpoints) if (b.checkpoints.get(stream) !== v) cpDiff.push(stream);
  const count = (m: Map<string, DayDigest>) => [...m.values()].reduce((n, d) => n + d.count, 0);
  return {
    ok: differing.length === 0 && missing === 0 && cpDiff.length === 0,
    keys: a.bars.size,
    bars: { from: count(a.bars), to: count(b.bars) },
    differing,
    quarantine: { from: a.quarantine.size, to: b.quarantine.size, missing },
    checkpoints: { from: a.checkpoints.size, to: b.checkpoints.size, differing: cpDiff },
  };
}
