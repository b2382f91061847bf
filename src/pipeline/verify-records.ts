// What verifying a sink's bars (verify-sink.ts) and a mapped table (sync-table.ts) share: the
// result, the record-by-record diff of what the sink holds against what it should, keeping the
// outcome in the store (a checkpoint named verify:<sink>:<collection>), and the repair.
import type { Store } from "../stores/types.ts";
import { rejectionOf, type PbRecord, type PocketbaseSink, type SinkRejection } from "../sinks/pocketbase/index.ts";

/** A count and an order-independent checksum of the records of one group (a day, a key). */
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

/** Checksums are sums of 64-bit hashes, modulo 2^64 (order-independent). */
export const MASK = (1n << 64n) - 1n;

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
          days: r.days,
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
