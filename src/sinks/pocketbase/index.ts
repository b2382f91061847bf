// The Pocketbase sink: bars become records of one collection (`stock_data` by default), written
// through Pocketbase's batch API as upserts by a record id derived from the bar's natural key, so
// a retry, a resumed run or a repair never makes a second record for the same bar. Mapped tables
// of other databases go to collections of their own (table-rows.ts).
//
// It talks to the server with the pocketbase JS SDK as a superuser (client.ts). What it may change
// on the server is limited to what it owns: it creates or extends its collections
// (collections.ts), and it enables the batch API only when the config allows it (write.ts).
import type { Descriptor } from "../../lib/descriptor.ts";
import { redactUrl } from "../../lib/redact.ts";
import { connect, probeConnection, type PbConnection, type SinkProbe } from "./client.ts";
import { barsCollection, ensureCollection, tableCollection, type CollectionCheck } from "./collections.ts";
import { pocketbaseSinkConfigSchema, type PocketbaseSinkConfig } from "./config.ts";
import { countRecords, recordsOf, scanRecords, strayRecords } from "./read.ts";
import type { BarRecord, PbRecord } from "./records.ts";
import { batchRecords, ensureBatchApi, removeRecords, writeBatch, type SendResult } from "./write.ts";
import { alertRecord, alertsCollection, changedOnly, marketUpdateRecord, marketUpdatesCollection, type AlertSnapshot, type MarketUpdate } from "./mirrors.ts";
import { shapeOf } from "./shape.ts";
import { log } from "../../lib/log.ts";
import { errorText } from "../../lib/errors.ts";

export { FIELD_TYPES, pocketbaseSinkConfigSchema, tableSpecSchema, type FieldType, type PocketbaseSinkConfig, type TableSpec } from "./config.ts";
export { SinkError, type BatchLimits, type SinkProbe } from "./client.ts";
export { BAR_FIELDS, barsCollection, tableCollection, type CollectionSpec, type FieldSpec } from "./collections.ts";
export { barToRecord, describeRejection, keyId, pbDate, recordFromServer, recordId, rejectionOf, type BarRecord, type PbRecord, type SinkRejection } from "./records.ts";
export type { SendResult } from "./write.ts";
export { bareClashes, bareSymbol, clashError, extrasText, plainShape, recordSymbol, shapeOf, shapeRecord, type RecordShape } from "./shape.ts";
export { alertRecord, marketUpdateRecord, type AlertSnapshot, type MarketUpdate } from "./mirrors.ts";

/** Sign in, check the batch API and the collections (bars, and each mapped table's). */
async function prepare(conn: PbConnection) {
  const { cfg } = conn;
  const limits = (conn.limits = await ensureBatchApi(conn));
  const collections: Record<string, CollectionCheck> = {};
  if (cfg.bars) collections[cfg.collection] = await ensureCollection(conn, barsCollection(cfg.collection, Object.keys(cfg.fields ?? {})));
  for (const [col, spec] of Object.entries(cfg.tables)) collections[col] = await ensureCollection(conn, tableCollection(col, spec));
  const m = cfg.mirrors ?? {};
  if (m.market_updates) collections[m.market_updates] = await ensureCollection(conn, marketUpdatesCollection(m.market_updates));
  if (m.alerts) collections[m.alerts] = await ensureCollection(conn, alertsCollection(m.alerts));
  return { limits, collections };
}

export function pocketbaseSink(name: string, cfg: PocketbaseSinkConfig, opts: { signal?: AbortSignal } = {}) {
  const conn = connect(name, cfg, opts.signal);
  const collection = cfg.collection;
  const shape = shapeOf(cfg);
  // Mirror records as last written by this process (id → JSON), so an unchanged one is not re-sent.
  const mirrored = new Map<string, string>();
  let mirrorsReady: Promise<unknown> | null = null;

  /** Upsert mirror records in batches, only those that changed since this process last wrote them. */
  async function mirror(col: string, records: PbRecord[]): Promise<SendResult> {
    const fresh = changedOnly(mirrored, records);
    const out: SendResult = { sent: 0, rejected: [], retries: 0 };
    if (!fresh.length) return out;
    if (!conn.limits) await (mirrorsReady ??= prepare(conn));
    const size = batchRecords(conn);
    for (let i = 0; i < fresh.length; i += size) {
      const chunk = fresh.slice(i, i + size);
      const r = await writeBatch(conn, chunk, { collection: col });
      const refused = new Set(r.rejected.map((x) => x.record.id));
      for (const rec of chunk) if (!refused.has(rec.id)) mirrored.set(rec.id, JSON.stringify(rec));
      out.sent += r.sent;
      out.rejected.push(...r.rejected);
      out.retries += r.retries;
    }
    return out;
  }

  return {
    name,
    kind: "pocketbase" as const,
    collection,
    config: cfg,
    location: redactUrl(cfg.url),
    /** The collections it writes: the bars' (unless bars = false) and the mapped tables'. */
    collections: [...(cfg.bars ? [collection] : []), ...Object.keys(cfg.tables)],
    prepare: () => prepare(conn),
    /** Records per batch request: the server's maxRequests, the configured size and the body limit. */
    batchRecords: (): number => batchRecords(conn),
    write: (records: PbRecord[], o: { assumeNew?: boolean; collection?: string } = {}): Promise<SendResult> => writeBatch(conn, records, o),
    /** Delete records by id (repair of extras); ids already gone count as deleted. */
    remove: (ids: string[], col: string = collection): Promise<number> => removeRecords(conn, ids, col),
    /** Every record of one symbol (all sources and intervals), in pages. */
    recordsOf: (symbol: string, each: (r: BarRecord) => void): Promise<number> => recordsOf(conn, symbol, shape, each),
    /** How the config shapes bar records (extras, bare symbols). */
    shape,
    /** Upsert the market_updates snapshot (no-op without mirrors.market_updates). */
    mirrorMarketUpdates: (updates: MarketUpdate[]): Promise<SendResult> =>
      cfg.mirrors?.market_updates ? mirror(cfg.mirrors.market_updates, updates.map((u) => marketUpdateRecord(u, shape.bare))) : Promise.resolve({ sent: 0, rejected: [], retries: 0 }),
    /** Upsert an alert's state (no-op without mirrors.alerts). */
    mirrorAlert: (a: AlertSnapshot, event: "firing" | "resolved" | "reminder", now = Date.now()): Promise<SendResult> =>
      cfg.mirrors?.alerts ? mirror(cfg.mirrors.alerts, [alertRecord(a, event, now)]) : Promise.resolve({ sent: 0, rejected: [], retries: 0 }),
    /**
     * A notifier (the monitor's Notifier shape) mirroring alert state changes to `mirrors.alerts`;
     * null when the sink mirrors no alerts. A failure is logged, the alert itself goes on.
     */
    alertsNotifier: () =>
      cfg.mirrors?.alerts
        ? {
            name: `pocketbase:${name}`,
            async send(n: { alert: AlertSnapshot; event: "firing" | "resolved" | "reminder" }) {
              try {
                const r = await mirror(cfg.mirrors!.alerts!, [alertRecord(n.alert, n.event, Date.now())]);
                if (r.rejected.length) log.warn("pocketbase refused an alert record", { sink: name, alert: n.alert.name, reason: r.rejected[0]!.message });
              } catch (e) {
                log.error("pocketbase: mirroring an alert failed", { sink: name, alert: n.alert.name, error: errorText(e) });
              }
            },
          }
        : null,
    /** Total records in a collection. */
    count: (col: string = collection): Promise<number> => countRecords(conn, col),
    /** Every record of a collection, in id order, a page at a time (keyset: no deep offsets). */
    scan: (col: string, each: (r: Record<string, unknown>) => void): Promise<number> => scanRecords(conn, col, each),
    /** Every record whose symbol is not in `known` (records no store bar accounts for). */
    strays: (known: Set<string>, each: (r: BarRecord) => void): Promise<void> => strayRecords(conn, known, shape, each),
    retries: () => conn.retries,
    /** One look, no retries: reachable, signed in, an authenticated call answered (health checks). */
    probe: (): Promise<SinkProbe> => probeConnection(conn),
    /** The SDK client (tests and the bench use it for direct checks). */
    client: conn.pb,
  };
}
export type PocketbaseSink = ReturnType<typeof pocketbaseSink>;

export const pocketbaseSinkDescriptor = {
  type: "pocketbase",
  summary: "Pocketbase: bars (and mapped tables) upserted as records through its batch API, verified and repaired by checksum",
  schema: pocketbaseSinkConfigSchema,
  create: pocketbaseSink,
} as const satisfies Descriptor<typeof pocketbaseSinkConfigSchema, typeof pocketbaseSink>;
