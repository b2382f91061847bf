// Does the sink hold what the store says it should? Per (symbol, day): the count and an
// order-independent checksum of the records as the sink stores them (the store's bars mapped
// exactly as the sink would write them), compared one symbol at a time so memory stays bounded
// by the largest symbol. Repair re-sends only the records that are missing or differ and deletes
// the ones the store does not account for. The outcome is kept in the store (a checkpoint named
// verify:<sink>:<collection>) so /metrics and /api report it from any process.
import type { Checkpoint, Store } from "../stores/types.ts";
import { barToRecord, rejectionOf, type BarRecord, type PbRecord, type PocketbaseSink, type SinkRejection } from "../sinks/pocketbase.ts";
import { seriesBars } from "./migrate.ts";
import { verifyTable } from "./sync-table.ts";

export type DayDigest = { count: number; sum: bigint };
export type SinkDayDiff = { key: string; store: DayDigest | null; sink: DayDigest | null };

export type SinkVerifyResult = {
  ok: boolean;
  sink: string;
  collection: string;
  checkedAt: number;
  storeRecords: number;
  sinkRecords: number;
  /** (symbol|day) keys compared. */
  days: number;
  differing: SinkDayDiff[];
  missing: number;
  extra: number;
  changed: number;
  repaired: { sent: number; deleted: number; rejected: number } | null;
  durationMs: number;
};

const MASK = (1n << 64n) - 1n;

export function recordHash(r: BarRecord): bigint {
  return BigInt(
    Bun.hash.wyhash(`${r.id}|${r.source}|${r.symbol}|${r.interval}|${r.ts}|${r.open}|${r.high}|${r.low}|${r.close}|${r.volume}|${r.adj_close}|${r.turnover}|${r.trades}`),
  );
}

const dayKey = (r: BarRecord) => `${r.symbol}|${r.ts.slice(0, 10)}`;

function addTo(m: Map<string, DayDigest>, key: string, h: bigint) {
  const d = m.get(key);
  if (d) {
    d.count++;
    d.sum = (d.sum + h) & MASK;
  } else m.set(key, { count: 1, sum: h });
}

export const verifyStream = (sink: { name: string; collection: string }) => `verify:${sink.name}:${sink.collection}`;

/**
 * Record by record: what the sink holds against what it should hold (by id and content hash).
 * Feed it each record the sink has, then `finish()`: what is missing, extra or changed, and what
 * a repair would re-send or delete.
 */
export function recordDiff<R extends PbRecord>(expected: Map<string, { rec: R; hash: bigint }>) {
  const seen = new Set<string>();
  const resend: R[] = [];
  const remove: string[] = [];
  let extra = 0;
  let changed = 0;
  return {
    sinkHas(id: string, hash: bigint) {
      seen.add(id);
      const e = expected.get(id);
      if (!e) {
        extra++;
        remove.push(id);
      } else if (e.hash !== hash) {
        changed++;
        resend.push(e.rec);
      }
    },
    finish() {
      let missing = 0;
      for (const [id, e] of expected)
        if (!seen.has(id)) {
          missing++;
          resend.push(e.rec);
        }
      return { missing, extra, changed, resend, remove };
    },
  };
}

/**
 * Keep what a verify found (the status /api/sinks and /metrics report; after a repair the caller
 * verifies again, which records the state it left) and close its run.
 */
export async function recordVerify(store: Store, runId: number, r: SinkVerifyResult, groups: string): Promise<void> {
  await store.putCheckpoints(
    [
      {
        stream: verifyStream({ name: r.sink, collection: r.collection }),
        cursor: {
          status: r.ok ? "consistent" : "inconsistent",
          checkedAt: r.checkedAt,
          storeRecords: r.storeRecords,
          sinkRecords: r.sinkRecords,
          differingDays: r.differing.length,
          missing: r.missing,
          extra: r.extra,
          changed: r.changed,
          repaired: r.repaired ? 1 : 0,
        },
        lastTs: null,
        lastKey: null,
      },
    ],
    runId,
  );
  await store.finishRun(runId, {
    outcome: "succeeded",
    read: r.storeRecords,
    inserted: r.repaired?.sent ?? 0,
    updated: 0,
    unchanged: 0,
    quarantined: r.repaired?.rejected ?? 0,
    fromTs: null,
    toTs: null,
    quality: null,
    error: r.ok ? null : `${r.differing.length} ${groups} differ: ${r.missing} missing, ${r.extra} extra, ${r.changed} changed`,
  });
}

/** Re-send what differs and delete what the store does not have; refused records are quarantined. */
export async function repairRecords(store: Store, sink: PocketbaseSink, runId: number, collection: string, resend: PbRecord[], remove: string[]): Promise<NonNullable<SinkVerifyResult["repaired"]>> {
  const size = sink.batchRecords();
  const rejected: SinkRejection[] = [];
  let sent = 0;
  for (let i = 0; i < resend.length; i += size) {
    const r = await sink.write(resend.slice(i, i + size), { collection });
    sent += r.sent;
    rejected.push(...r.rejected);
  }
  const deleted = await sink.remove(remove, collection);
  if (rejected.length) await store.commitBatch({ runId, source: `sink:${sink.name}`, bars: [], quarantine: rejected.map((r) => rejectionOf(sink.name, r)), read: 0 });
  return { sent, deleted, rejected: rejected.length };
}

export type ConsistencyStatus = {
  sink: string;
  collection: string;
  status: "consistent" | "inconsistent" | "unknown";
  checkedAt: number | null;
  storeRecords: number | null;
  sinkRecords: number | null;
  differingDays: number | null;
  missing: number | null;
  extra: number | null;
  changed: number | null;
  repaired: boolean;
};

export function consistencyOf(sink: { name: string; collection: string }, cp: Checkpoint | null): ConsistencyStatus {
  const c = cp?.cursor ?? {};
  const n = (k: string) => (typeof c[k] === "number" ? (c[k] as number) : null);
  return {
    sink: sink.name,
    collection: sink.collection,
    status: c.status === "consistent" || c.status === "inconsistent" ? c.status : "unknown",
    checkedAt: n("checkedAt"),
    storeRecords: n("storeRecords"),
    sinkRecords: n("sinkRecords"),
    differingDays: n("differingDays"),
    missing: n("missing"),
    extra: n("extra"),
    changed: n("changed"),
    repaired: c.repaired === 1,
  };
}

/** Every collection of a sink: the bars' (unless bars = false) and each mapped table's. */
export async function verifySinkAll(store: Store, sink: PocketbaseSink, opts: { repair?: boolean; baseDir?: string } = {}): Promise<SinkVerifyResult[]> {
  const out: SinkVerifyResult[] = [];
  if (sink.config.bars) out.push(await verifySink(store, sink, opts));
  for (const [collection, spec] of Object.entries(sink.config.tables)) out.push(await verifyTable({ store, sink, collection, spec, repair: opts.repair, baseDir: opts.baseDir }));
  return out;
}

export async function verifySink(
  store: Store,
  sink: PocketbaseSink,
  opts: { repair?: boolean; onProgress?: (done: number, total: number) => void } = {},
): Promise<SinkVerifyResult> {
  const started = performance.now();
  const runId = await store.startRun({ kind: "verify", source: `sink:${sink.name}`, job: `verify:${sink.name}`, params: { sink: sink.name, collection: sink.collection, repair: !!opts.repair } });
  try {
    await sink.prepare();
    const sources = sink.config.sources ? new Set(sink.config.sources) : null;
    const series = (await store.listSeries()).filter((s) => !sources || sources.has(s.source));
    const symbols = [...new Set(series.map((s) => s.symbol))].sort();
    const storeDays = new Map<string, DayDigest>();
    const sinkDays = new Map<string, DayDigest>();
    let storeRecords = 0;
    let sinkRecords = 0;
    let missing = 0;
    let extra = 0;
    let changed = 0;
    const resend: BarRecord[] = [];
    const remove: string[] = [];
    let done = 0;
    for (const symbol of symbols) {
      const expected = new Map<string, { rec: BarRecord; hash: bigint }>();
      for (const s of series) {
        if (s.symbol !== symbol) continue;
        for await (const page of seriesBars(store, s.symbol, s.interval, s.source, undefined, 10_000))
          for (const b of page) {
            const rec = barToRecord(b);
            const hash = recordHash(rec);
            expected.set(rec.id, { rec, hash });
            addTo(storeDays, dayKey(rec), hash);
          }
      }
      storeRecords += expected.size;
      const diff = recordDiff(expected);
      sinkRecords += await sink.recordsOf(symbol, (r) => {
        const hash = recordHash(r);
        addTo(sinkDays, dayKey(r), hash);
        diff.sinkHas(r.id, hash);
      });
      const d = diff.finish();
      missing += d.missing;
      extra += d.extra;
      changed += d.changed;
      resend.push(...d.resend);
      remove.push(...d.remove);
      opts.onProgress?.(++done, symbols.length);
    }
    // Records of symbols the store has no bars for: only looked for when the totals say so.
    const total = await sink.count();
    if (total > sinkRecords) {
      const known = new Set(symbols);
      await sink.strays(known, (r) => {
        addTo(sinkDays, dayKey(r), recordHash(r));
        sinkRecords++;
        extra++;
        remove.push(r.id);
      });
    }
    const differing: SinkDayDiff[] = [];
    for (const [key, d] of storeDays) {
      const e = sinkDays.get(key);
      if (!e || e.count !== d.count || e.sum !== d.sum) differing.push({ key, store: d, sink: e ?? null });
    }
    for (const [key, e] of sinkDays) if (!storeDays.has(key)) differing.push({ key, store: null, sink: e });
    differing.sort((a, b) => a.key.localeCompare(b.key));

    const repaired = opts.repair && (resend.length || remove.length) ? await repairRecords(store, sink, runId, sink.collection, resend, remove) : null;
    const ok = differing.length === 0;
    const checkedAt = Date.now();
    const result: SinkVerifyResult = {
      ok,
      sink: sink.name,
      collection: sink.collection,
      checkedAt,
      storeRecords,
      sinkRecords,
      days: new Set([...storeDays.keys(), ...sinkDays.keys()]).size,
      differing,
      missing,
      extra,
      changed,
      repaired,
      durationMs: performance.now() - started,
    };
    await recordVerify(store, runId, result, "(symbol, day) keys");
    return result;
  } catch (e) {
    await store.finishRun(runId, { outcome: "failed", read: 0, inserted: 0, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null, error: (e as Error).message });
    throw e;
  }
}
