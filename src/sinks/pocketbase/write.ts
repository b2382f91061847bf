// Writing records: the batch API (turned on when the config allows it) and its limits, batches
// of upserts (or creates past a sync's cursor) in one transaction each, where a record Pocketbase
// refuses is taken out for quarantine and the rest go in, and deletes by id (verify's repair).
import { ClientResponseError } from "pocketbase";
import { log } from "../../lib/log.ts";
import { requestOptions, SinkError, TransactionFailed, withRetry, type BatchLimits, type PbConnection } from "./client.ts";
import type { PbRecord, SinkRejection } from "./records.ts";

export type SendResult = { sent: number; rejected: SinkRejection[]; retries: number };

/** The batch API on (or an error saying how), and its limits. */
export async function ensureBatchApi(conn: PbConnection): Promise<BatchLimits> {
  const { pb, cfg, name } = conn;
  const settings = await withRetry(conn, "reading settings", () => pb.settings.getAll(requestOptions(conn)));
  let batch = settings.batch as { enabled: boolean; maxRequests: number; timeout: number; maxBodySize: number };
  if (!batch?.enabled || !(batch.maxRequests > 0)) {
    if (!cfg.enableBatchApi)
      throw new SinkError(
        `${conn.where}: Pocketbase's batch API is disabled. Enable it in the Pocketbase dashboard (Settings → Application → Batch API), ` +
          `or set sinks.${name}.enableBatchApi = true to let ticksync enable it through the settings API.`,
        "config",
      );
    const wanted = { enabled: true, maxRequests: cfg.batchSize, timeout: Math.max(batch?.timeout ?? 0, 3), maxBodySize: batch?.maxBodySize ?? 0 };
    const updated = await withRetry(conn, "enabling the batch API", () => pb.settings.update({ batch: wanted }, requestOptions(conn)));
    batch = updated.batch;
    log.info("pocketbase: enabled the batch API", { sink: name, maxRequests: batch.maxRequests, timeout: batch.timeout });
  }
  return { maxRequests: batch.maxRequests, timeoutS: batch.timeout > 0 ? batch.timeout : 3, maxBodyBytes: batch.maxBodySize > 0 ? batch.maxBodySize : 128 << 20 };
}

/** Records per batch request: the server's maxRequests, the configured size and the body limit. */
export function batchRecords(conn: PbConnection): number {
  const limits = conn.limits;
  if (!limits) throw new Error("prepare() first");
  // A bar record is about 300 bytes of JSON with its request envelope; keep well under the limit.
  return Math.max(1, Math.min(limits.maxRequests, conn.cfg.batchSize, Math.floor(limits.maxBodyBytes / 1024)));
}

const fieldErrors = (data: unknown): Record<string, { code: string; message: string }> => {
  const out: Record<string, { code: string; message: string }> = {};
  if (data && typeof data === "object")
    for (const [k, e] of Object.entries(data as Record<string, any>)) if (e && typeof e === "object" && "message" in e) out[k] = { code: String(e.code ?? ""), message: String(e.message) };
  return out;
};

/** The request a failed batch names (the one Pocketbase refused), or null: the transaction failed. */
function failedRequest(e: ClientResponseError, size: number): number | null {
  const failed = e.response?.data?.requests as Record<string, any> | undefined;
  const idx = failed ? Number(Object.keys(failed)[0]) : NaN;
  return Number.isInteger(idx) && idx >= 0 && idx < size ? idx : null;
}

/** One batch transaction of `records` (creates or upserts), its transient failures waited out. */
function sendBatch(conn: PbConnection, col: string, mode: "create" | "upsert", records: PbRecord[]) {
  return withRetry(conn, "sending a batch", async () => {
    const batch = conn.pb.createBatch();
    const c = batch.collection(col);
    for (const r of records) c[mode](r);
    try {
      return await batch.send(requestOptions(conn));
    } catch (e) {
      if (records.length === 1 && e instanceof ClientResponseError && e.status === 400 && failedRequest(e, 1) === null)
        throw new TransactionFailed(`Pocketbase 400 ${e.message || "batch transaction failed"} (a batch of one record; the server's batch timeout is ${conn.limits?.timeoutS ?? "?"} s)`);
      throw e;
    }
  });
}

/**
 * Write records in one batch transaction. A record Pocketbase refuses is taken out and the rest
 * re-sent. `assumeNew` (sync past its cursor) sends creates, which skip the upsert's lookup by
 * id; when one of them already exists (a re-delivery after a crash) the batch is re-sent as
 * upserts.
 */
export async function writeBatch(conn: PbConnection, records: PbRecord[], opts: { assumeNew?: boolean; collection?: string } = {}): Promise<SendResult> {
  const col = opts.collection ?? conn.cfg.collection;
  const rejected: SinkRejection[] = [];
  const before = conn.retries;
  let pending = records;
  let mode: "create" | "upsert" = opts.assumeNew ? "create" : "upsert";
  while (pending.length) {
    try {
      await sendBatch(conn, col, mode, pending);
      break;
    } catch (e) {
      if (!(e instanceof ClientResponseError) || e.status !== 400) throw e;
      const idx = failedRequest(e, pending.length);
      if (idx !== null) {
        const resp = e.response?.data?.requests?.[String(idx)]?.response ?? {};
        // In create mode "not unique" (on the id, or on the key index when the id is the same
        // record's) means the record is there already: re-send the batch as upserts.
        if (mode === "create" && Object.values(resp.data ?? {}).some((f: any) => f?.code === "validation_not_unique")) {
          mode = "upsert";
          continue;
        }
        rejected.push({ record: pending[idx]!, collection: col, status: Number(resp.status ?? 400), message: String(resp.message ?? "rejected"), fields: fieldErrors(resp.data) });
        pending = pending.slice(0, idx).concat(pending.slice(idx + 1));
        continue;
      }
      // No request named: the transaction itself failed (its timeout, most likely): halve it.
      // (A single record never gets here: withRetry waits its failure out, see TransactionFailed.)
      const half = Math.ceil(pending.length / 2);
      const a = await writeBatch(conn, pending.slice(0, half), { assumeNew: mode === "create", collection: col });
      const b = await writeBatch(conn, pending.slice(half), { assumeNew: mode === "create", collection: col });
      rejected.push(...a.rejected, ...b.rejected);
      break;
    }
  }
  return { sent: records.length - rejected.length, rejected, retries: conn.retries - before };
}

/** Delete records by id (repair of extras); ids already gone count as deleted. */
export async function removeRecords(conn: PbConnection, ids: string[], col: string): Promise<number> {
  const size = batchRecords(conn);
  let n = 0;
  for (let i = 0; i < ids.length; i += size) {
    const chunk = ids.slice(i, i + size);
    for (const id of chunk) {
      try {
        await withRetry(conn, "deleting a record", () => conn.pb.collection(col).delete(id, requestOptions(conn)));
        n++;
      } catch (e) {
        if (e instanceof ClientResponseError && e.status === 404) continue;
        throw e;
      }
    }
  }
  return n;
}
