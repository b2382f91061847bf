// Does the sink hold what the store says it should? Per (symbol, day): the count and an
// order-independent checksum of the records as the sink stores them (the store's bars mapped
// exactly as the sink would write them), compared one symbol at a time so memory stays bounded
// by the largest symbol. Repair re-sends only the records that are missing or differ and deletes
// the ones the store does not account for. The outcome is kept in the store (a checkpoint named
// verify:<sink>:<collection>) so /metrics and /api report it from any process.
import type { Checkpoint, Store } from "../stores/types.ts";
import { barToRecord, extrasText, plainShape, recordSymbol, shapeRecord, type BarRecord, type PocketbaseSink, type RecordShape } from "../sinks/pocketbase/index.ts";
import { refuseBareClashes } from "./sync-mirrors.ts";
import { seriesBars } from "./migrate.ts";
import { verifyTable } from "./sync-table.ts";
import { MASK, recordDiff, recordVerify, repairRecords, type DayDigest, type SinkDayDiff, type SinkVerifyResult } from "./verify-records.ts";
import { errorText } from "../lib/errors.ts";

// Callers (main, http) take these from here, where the engine is.
export { verifyStream, type SinkVerifyResult } from "./verify-records.ts";

export function recordHash(r: BarRecord, shape?: RecordShape): bigint {
  const extras = shape?.extras.length ? extrasText(r, shape) : "";
  return BigInt(
    Bun.hash.wyhash(`${r.id}|${r.source}|${r.symbol}|${r.interval}|${r.ts}|${r.open}|${r.high}|${r.low}|${r.close}|${r.volume}|${r.adj_close}|${r.turnover}|${r.trades}${extras}`),
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
    const shape = sink.shape;
    const plain = plainShape(shape);
    refuseBareClashes(sink, symbols);
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
        for await (const page of seriesBars(store, s.symbol, s.interval, s.source, undefined, 10_000)) {
          const extras = shape.extras.length ? await store.barExtras(page) : null;
          for (const b of page) {
            const rec = plain ? barToRecord(b) : shapeRecord(barToRecord(b), b, shape, extras);
            const hash = recordHash(rec, shape);
            expected.set(rec.id, { rec, hash });
            addTo(storeDays, dayKey(rec), hash);
          }
        }
      }
      storeRecords += expected.size;
      const diff = recordDiff(expected);
      sinkRecords += await sink.recordsOf(recordSymbol(symbol, shape), (r) => {
        const hash = recordHash(r, shape);
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
      const known = new Set(symbols.map((x) => recordSymbol(x, shape)));
      await sink.strays(known, (r) => {
        addTo(sinkDays, dayKey(r), recordHash(r, shape));
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
    await store.finishRun(runId, { outcome: "failed", read: 0, inserted: 0, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null, error: errorText(e) });
    throw e;
  }
}
