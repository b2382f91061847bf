// A mapped table → its Pocketbase collection. Rows are read in keyset order after the
// collection's cursor (kept in the store beside the bars' sink cursors), written as upserts by
// the id of their natural key, and the cursor moves once Pocketbase acknowledged the page. With a
// cursor column only rows added or changed since travel; without one each sync re-sends the
// table (the cursor then marks progress within the pass, so a killed pass resumes).
import type { Store } from "../stores/types.ts";
import { rejectionOf, SinkError, type PbRecord, type PocketbaseSink, type SinkRejection, type TableSpec } from "../sinks/pocketbase/index.ts";
import { openTableReader, recordFields, rowToRecord, type RowKey } from "../sinks/pocketbase/table-rows.ts";
import { canonicalJson } from "./migrate.ts";
import { finishSyncRun, type SyncSummary } from "./sync-run.ts";
import { log } from "../lib/log.ts";
import { MASK, recordDiff, recordVerify, repairRecords, type SinkDayDiff, type SinkVerifyResult } from "./verify-records.ts";
import { errorText } from "../lib/errors.ts";

export const tableStream = (sink: { name: string }, collection: string) => `sink:${sink.name}:${collection}`;

export async function runTableSync(opts: { store: Store; sink: PocketbaseSink; collection: string; spec: TableSpec; job?: string; signal?: AbortSignal; baseDir?: string }): Promise<SyncSummary> {
  const { store, sink, collection, spec } = opts;
  const started = performance.now();
  const stream = tableStream(sink, collection);
  const runId = await store.startRun({ kind: "sync", source: `sink:${sink.name}`, job: opts.job ?? `sync:${sink.name}`, params: { sink: sink.name, collection, table: spec.table ?? collection } });
  const t = { read: 0, sent: 0, rejected: 0, batches: 0 };
  const retriesBefore = sink.retries();
  let outcome: SyncSummary["outcome"] = "succeeded";
  let error: string | null = null;
  const reader = openTableReader(collection, spec, opts.baseDir);
  try {
    await sink.prepare();
    const size = sink.batchRecords();
    const cp = await store.getCheckpoint(stream);
    let after: RowKey | null = typeof cp?.cursor.after === "string" && cp.cursor.after ? JSON.parse(cp.cursor.after) : null;
    for (;;) {
      if (opts.signal?.aborted) {
        outcome = "interrupted";
        break;
      }
      const rows = await reader.page(after, size * sink.config.concurrency);
      if (!rows.length) break;
      t.read += rows.length;
      const records = rows.map((r) => rowToRecord(spec, r));
      const chunks: PbRecord[][] = [];
      for (let i = 0; i < records.length; i += size) chunks.push(records.slice(i, i + size));
      const results = await Promise.all(chunks.map((c) => sink.write(c, { collection })));
      t.batches += chunks.length;
      const rejected: SinkRejection[] = results.flatMap((r) => r.rejected);
      after = reader.keyOf(rows[rows.length - 1]!);
      const done = rows.length < size * sink.config.concurrency;
      // Without a cursor column a finished pass starts the next sync from the top.
      const next = done && !spec.cursor ? "" : JSON.stringify(after);
      await store.commitBatch({
        runId,
        source: `sink:${sink.name}`,
        bars: [],
        quarantine: rejected.map((r) => rejectionOf(sink.name, r)),
        read: rows.length,
        checkpoint: { stream, cursor: { after: next }, lastTs: null, lastKey: next || null },
      });
      for (const r of results) t.sent += r.sent;
      t.rejected += rejected.length;
      for (const r of rejected) log.warn("pocketbase rejected a record", { sink: sink.name, collection, id: r.record.id, reason: r.message });
      if (done) break;
    }
  } catch (e) {
    outcome = opts.signal?.aborted && e instanceof SinkError && e.cause_ === "aborted" ? "interrupted" : "failed";
    error = errorText(e);
  } finally {
    await reader.close();
  }
  const durationMs = performance.now() - started;
  await finishSyncRun(store, runId, outcome, t, error);
  return { runId, sink: sink.name, collection, outcome, ...t, retries: sink.retries() - retriesBefore, uptoRun: 0, durationMs, error };
}

const hashOf = (rec: PbRecord, fields: string[]) => BigInt(Bun.hash.wyhash(canonicalJson([rec.id, ...fields.map((f) => rec[f] ?? null)])));

/**
 * Compare a mapped table with its collection: count and checksum per group (the first key
 * column's value, and the day of the first date key when there is one), record by record inside.
 * Both sides are held in memory by id: meant for the tables such apps keep beside their bars.
 */
export async function verifyTable(opts: { store: Store; sink: PocketbaseSink; collection: string; spec: TableSpec; repair?: boolean; baseDir?: string }): Promise<SinkVerifyResult> {
  const { store, sink, collection, spec } = opts;
  const started = performance.now();
  const runId = await store.startRun({ kind: "verify", source: `sink:${sink.name}`, job: `verify:${sink.name}`, params: { sink: sink.name, collection, repair: !!opts.repair } });
  const fields = Object.keys(spec.fields);
  const dateKey = spec.key.find((k) => spec.fields[k] === "date");
  const groupOf = (r: PbRecord) => `${String(r[spec.key[0]!])}${dateKey ? `|${String(r[dateKey]).slice(0, 10)}` : ""}`;
  const reader = openTableReader(collection, spec, opts.baseDir);
  try {
    await sink.prepare();
    const expected = new Map<string, { rec: PbRecord; hash: bigint }>();
    for (let after: RowKey | null = null; ; ) {
      const rows = await reader.page(after, 5000);
      for (const row of rows) {
        const rec = rowToRecord(spec, row);
        expected.set(rec.id, { rec, hash: hashOf(rec, fields) });
      }
      if (rows.length < 5000) break;
      after = reader.keyOf(rows[rows.length - 1]!);
    }
    const groups = new Map<string, { store: { count: number; sum: bigint } | null; sink: { count: number; sum: bigint } | null }>();
    const add = (side: "store" | "sink", key: string, h: bigint) => {
      const g = groups.get(key) ?? { store: null, sink: null };
      const d = g[side] ?? { count: 0, sum: 0n };
      d.count++;
      d.sum = (d.sum + h) & MASK;
      g[side] = d;
      groups.set(key, g);
    };
    for (const { rec, hash } of expected.values()) add("store", groupOf(rec), hash);
    const diff = recordDiff(expected);
    const sinkRecords = await sink.scan(collection, (raw) => {
      const rec = recordFields(spec, raw);
      const h = hashOf(rec, fields);
      add("sink", groupOf(rec), h);
      diff.sinkHas(rec.id, h);
    });
    const { missing, extra, changed, resend, remove } = diff.finish();
    const differing: SinkDayDiff[] = [];
    for (const [key, g] of groups) if (!g.store || !g.sink || g.store.count !== g.sink.count || g.store.sum !== g.sink.sum) differing.push({ key, store: g.store, sink: g.sink });
    differing.sort((a, b) => a.key.localeCompare(b.key));
    const repaired = opts.repair && (resend.length || remove.length) ? await repairRecords(store, sink, runId, collection, resend, remove) : null;
    const ok = differing.length === 0;
    const checkedAt = Date.now();
    const result: SinkVerifyResult = { ok, sink: sink.name, collection, checkedAt, storeRecords: expected.size, sinkRecords, days: groups.size, differing, missing, extra, changed, repaired, durationMs: performance.now() - started };
    await recordVerify(store, runId, result, "groups");
    return result;
  } catch (e) {
    await store.finishRun(runId, { outcome: "failed", read: 0, inserted: 0, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null, error: errorText(e) });
    throw e;
  } finally {
    await reader.close();
  }
}
