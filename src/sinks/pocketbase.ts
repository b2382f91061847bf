// The Pocketbase sink: bars become records of one collection (`stock_data` by default), written
// through Pocketbase's batch API as upserts by a record id derived from the bar's natural key, so
// a retry, a resumed run or a repair never makes a second record for the same bar.
//
// It talks to the server with the pocketbase JS SDK as a superuser. What it may change on the
// server is limited to what it owns: it creates or extends its collection, and it enables the
// batch API only when the config allows it (`enableBatchApi`).
import PocketBase, { ClientResponseError, getTokenPayload } from "pocketbase";
import * as v from "valibot";
import type { Bar } from "../domain/bar.ts";
import type { Rejection } from "../domain/quality.ts";
import { sleep } from "../lib/ratelimit.ts";
import { log } from "../lib/log.ts";
import { retryAfterMs } from "../lib/http.ts";
import { redactUrl } from "../lib/redact.ts";
import { storeUrlPattern } from "../stores/registry.ts";

const CollectionName = v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_]{0,99}$/, "expected a collection name of letters, digits and _"));
const Column = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, "expected a column name of letters, digits and _"),
  v.check((c) => !["id", "created", "updated", "collectionId", "collectionName", "expand"].includes(c), "id, created, updated, collectionId, collectionName and expand are Pocketbase's own names"),
);

export const FIELD_TYPES = ["text", "number", "bool", "date", "json"] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

/**
 * A table of another database (the seeds' ai_insights, market_correlations, valuation_analysis)
 * delivered to a collection: columns become fields of the given types, the key columns make the
 * record id and a unique index, and `cursor` (a column that grows as rows are added or changed,
 * such as updated_at) makes the sync incremental. Without a cursor every sync re-sends the table.
 */
export const tableSpecSchema = v.strictObject({
  /** postgres://…, questdb://…?http=… (read over the PG wire) or sqlite:<path>. */
  from: v.pipe(v.string(), v.regex(storeUrlPattern(), "expected postgres://…, questdb://… or sqlite:<path>")),
  /** The table to read (default: the collection's name). */
  table: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_.]*$/, "expected a table name (schema.table allowed)"))),
  /** Column → Pocketbase field type; every column named here is delivered. */
  fields: v.pipe(
    v.record(Column, v.picklist(FIELD_TYPES, `expected one of ${FIELD_TYPES.join(", ")}`)),
    v.check((f) => Object.keys(f).length > 0, "map at least one column"),
  ),
  /** The natural key: columns (among fields) that identify a row. */
  key: v.pipe(v.array(Column), v.minLength(1, "name at least one key column")),
  /** A column among fields whose value only grows for new or changed rows. */
  cursor: v.optional(Column),
});
export type TableSpec = v.InferOutput<typeof tableSpecSchema>;

export const pocketbaseSinkConfigSchema = v.strictObject({
  type: v.literal("pocketbase"),
  /** Base URL of the Pocketbase server, e.g. http://127.0.0.1:8090. */
  url: v.pipe(v.string(), v.url("expected the server's URL, e.g. http://127.0.0.1:8090")),
  /** Superuser e-mail. Prefer the environment: TICKSYNC_SINKS__<NAME>__EMAIL. */
  email: v.pipe(v.string("expected the superuser's e-mail (or TICKSYNC_SINKS__<NAME>__EMAIL)"), v.nonEmpty()),
  /** Superuser password. Prefer the environment: TICKSYNC_SINKS__<NAME>__PASSWORD. Never logged. */
  password: v.pipe(v.string("expected the superuser's password (or TICKSYNC_SINKS__<NAME>__PASSWORD)"), v.nonEmpty()),
  /** Collection for bars; created (or given its missing fields and key index) on first run. */
  collection: v.optional(CollectionName, "stock_data"),
  /** Only bars of these store sources (default: all). */
  sources: v.optional(v.array(v.pipe(v.string(), v.nonEmpty()))),
  /**
   * May the sink turn on Pocketbase's batch API (off in a new Pocketbase) through the settings
   * API? Without it a server whose batch API is off is an error that says where to enable it.
   */
  enableBatchApi: v.optional(v.boolean(), false),
  /**
   * Records per batch transaction, at most. The server's own limit (Settings → Batch →
   * maxRequests, 50 by default) always wins; when the sink enables the batch API itself it sets
   * maxRequests to this.
   */
  batchSize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(10_000)), 500),
  /** Batch requests in flight at once. */
  concurrency: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(32)), 4),
  /** Timeout of one request, ms. */
  timeoutMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(100)), 30_000),
  /**
   * How long an unreachable or failing server (connection refused, 5xx, 429) is waited out, in
   * seconds, before the run fails. The cursor stays where Pocketbase last acknowledged.
   */
  retryForS: v.optional(v.pipe(v.number(), v.minValue(0)), 600),
  /** API rule for list and view on a collection the sink creates (default: superusers only). */
  readRule: v.optional(v.nullable(v.string()), null),
  /** Deliver the store's bars to `collection` (false: only the mapped tables). */
  bars: v.optional(v.boolean(), true),
  /** Other tables, each mapped to a collection of its own name: see tableSpecSchema. */
  tables: v.optional(v.record(CollectionName, tableSpecSchema), {}),
});
export type PocketbaseSinkConfig = v.InferOutput<typeof pocketbaseSinkConfigSchema>;

/** A Pocketbase collection field, as the collections API takes it. */
export type FieldSpec = { name: string; type: FieldType; required?: boolean; onlyInt?: boolean; max?: number };

/** What the sink needs to know of a collection it writes. */
export type CollectionSpec = { name: string; fields: FieldSpec[]; key: string[] };

/** The bars collection: the store's bar columns, snake_case, ts as a date. */
export const BAR_FIELDS: FieldSpec[] = [
  { name: "source", type: "text", required: true, max: 100 },
  { name: "symbol", type: "text", required: true, max: 64 },
  { name: "interval", type: "text", required: true, max: 8 },
  { name: "ts", type: "date", required: true },
  { name: "open", type: "number" },
  { name: "high", type: "number" },
  { name: "low", type: "number" },
  { name: "close", type: "number" },
  { name: "volume", type: "number" },
  { name: "adj_close", type: "number" },
  { name: "turnover", type: "number" },
  { name: "trades", type: "number", onlyInt: true },
];
const KEY_FIELDS = ["source", "symbol", "interval", "ts"];

/** Any record: its id and its fields. */
export type PbRecord = { id: string } & Record<string, unknown>;

/** A record as sent: Pocketbase stores an empty number as 0, so nulls are sent as 0. */
export type BarRecord = {
  id: string;
  source: string;
  symbol: string;
  interval: string;
  ts: string;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  adj_close: number;
  turnover: number;
  trades: number;
};

const ID_LEN = 15;
const ID_SPACE = 36n ** BigInt(ID_LEN);

/**
 * Pocketbase record ids are 15 characters of [a-z0-9]. This one is the first 80 bits of the
 * SHA-256 of the natural key, in base 36: the same bar always gets the same id, and two bars
 * collide with odds of about n²/2^78 (10⁻¹¹ for ten million bars).
 */
export function recordId(source: string, symbol: string, interval: string, ts: number): string {
  return keyId([source, symbol, interval, String(ts)]);
}

/** The record id of any natural key: its parts joined by NUL, hashed as for bars. */
export function keyId(parts: string[]): string {
  const h = new Bun.CryptoHasher("sha256").update(parts.join("\u0000")).digest();
  let n = 0n;
  for (let i = 0; i < 10; i++) n = (n << 8n) | BigInt(h[i]!);
  return (n % ID_SPACE).toString(36).padStart(ID_LEN, "0");
}

/** Pocketbase's own date format (what it returns), so sent and read-back values compare equal. */
export function pbDate(ts: number): string {
  return new Date(ts).toISOString().replace("T", " ");
}

export function barToRecord(b: Bar): BarRecord {
  return {
    id: recordId(b.source, b.symbol, b.interval, b.ts),
    source: b.source,
    symbol: b.symbol,
    interval: b.interval,
    ts: pbDate(b.ts),
    open: b.open,
    high: b.high,
    low: b.low,
    close: b.close,
    volume: b.volume,
    adj_close: b.adjClose ?? 0,
    turnover: b.turnover ?? 0,
    trades: b.trades ?? 0,
  };
}

/** The fields compared by verify, from a record read back from Pocketbase. */
export function recordFromServer(r: Record<string, unknown>): BarRecord {
  const num = (k: string) => (typeof r[k] === "number" ? (r[k] as number) : Number(r[k] ?? 0));
  return {
    id: String(r.id),
    source: String(r.source ?? ""),
    symbol: String(r.symbol ?? ""),
    interval: String(r.interval ?? ""),
    ts: String(r.ts ?? ""),
    open: num("open"),
    high: num("high"),
    low: num("low"),
    close: num("close"),
    volume: num("volume"),
    adj_close: num("adj_close"),
    turnover: num("turnover"),
    trades: num("trades"),
  };
}

/** Why a sink operation failed for good (after its retries): the run fails, the cursor stays. */
export class SinkError extends Error {
  override name = "SinkError";
  constructor(
    message: string,
    readonly cause_: "unreachable" | "server_error" | "rate_limited" | "auth" | "config" | "rejected" | "aborted" = "server_error",
  ) {
    super(message);
  }
}

/** A record Pocketbase refused (validation): it goes to quarantine; the batch's others go in. */
export type SinkRejection = { record: PbRecord; collection: string; status: number; message: string; fields: Record<string, { code: string; message: string }> };

export type BatchLimits = { maxRequests: number; timeoutS: number; maxBodyBytes: number };

export type SendResult = { sent: number; rejected: SinkRejection[]; retries: number };

const fieldErrors = (data: unknown): Record<string, { code: string; message: string }> => {
  const out: Record<string, { code: string; message: string }> = {};
  if (data && typeof data === "object")
    for (const [k, e] of Object.entries(data as Record<string, any>)) if (e && typeof e === "object" && "message" in e) out[k] = { code: String(e.code ?? ""), message: String(e.message) };
  return out;
};

/** A refused record as a quarantine entry: rule "sink", Pocketbase's error as the reason. */
export function rejectionOf(sinkName: string, r: SinkRejection): Rejection {
  const rec = r.record;
  const ts = typeof rec.ts === "string" ? Date.parse(rec.ts.replace(" ", "T")) : NaN;
  return {
    locator: `${sinkName}/${r.collection}/${rec.id}`,
    rule: "sink",
    reason: describeRejection(r),
    raw: { ...rec, pocketbase: { collection: r.collection, status: r.status, message: r.message, fields: r.fields } },
    ...(typeof rec.symbol === "string" ? { symbol: rec.symbol } : {}),
    ...(Number.isFinite(ts) ? { ts } : {}),
  };
}

/** One line a person can read: "volume: Decimal numbers are not allowed." */
export function describeRejection(r: SinkRejection): string {
  const f = Object.entries(r.fields).map(([k, e]) => `${k}: ${e.message}`);
  return `Pocketbase ${r.status}: ${r.message}${f.length ? ` (${f.join("; ")})` : ""}`;
}

type Transient = { kind: "unreachable" | "server_error" | "rate_limited"; message: string };

/** The request a failed batch names (the one Pocketbase refused), or null: the transaction failed. */
function failedRequest(e: ClientResponseError, size: number): number | null {
  const failed = e.response?.data?.requests as Record<string, any> | undefined;
  const idx = failed ? Number(Object.keys(failed)[0]) : NaN;
  return Number.isInteger(idx) && idx >= 0 && idx < size ? idx : null;
}

/**
 * A batch of one record whose transaction failed without naming it (Pocketbase's batch timeout,
 * on a loaded server): nothing in the record was refused, so it is waited out like a 5xx.
 */
class TransactionFailed extends Error {}

function transientOf(e: unknown): Transient | null {
  if (e instanceof TransactionFailed) return { kind: "server_error", message: e.message };
  if (e instanceof ClientResponseError) {
    if (e.isAbort || e.status === 0) return { kind: "unreachable", message: e.message || "no response" };
    if (e.status === 429) return { kind: "rate_limited", message: "429 Too Many Requests" };
    if (e.status >= 500) return { kind: "server_error", message: `${e.status} ${e.message}` };
    return null;
  }
  if (e instanceof Error && /ECONNREFUSED|ECONNRESET|socket|network|timed? ?out|fetch failed|Unable to connect/i.test(e.message)) return { kind: "unreachable", message: e.message };
  return null;
}

export type PocketbaseSink = ReturnType<typeof pocketbaseSink>;

export const barsCollection = (name: string): CollectionSpec => ({ name, fields: BAR_FIELDS, key: KEY_FIELDS });

export const tableCollection = (name: string, spec: TableSpec): CollectionSpec => ({
  name,
  fields: Object.entries(spec.fields).map(([f, type]) => ({ name: f, type, ...(spec.key.includes(f) ? { required: type !== "bool" && type !== "number" } : {}) })),
  key: spec.key,
});

export function pocketbaseSink(name: string, cfg: PocketbaseSinkConfig, opts: { signal?: AbortSignal } = {}) {
  const pb = new PocketBase(cfg.url);
  pb.autoCancellation(false);
  // A 429 (from Pocketbase's limiter or a proxy in front of it) may say when to come back; the
  // SDK's error keeps the body only, so the header is carried into it here.
  pb.afterSend = (response, data) => {
    if (response.status === 429) {
      const wait = retryAfterMs(response.headers.get("retry-after"));
      if (wait !== undefined) return { ...(data && typeof data === "object" ? data : {}), retryAfterMs: wait };
    }
    return data;
  };
  const collection = cfg.collection;
  // How the sink names itself in errors, runs and /api/sinks: its URL without credentials.
  const where = `Pocketbase sink ${name} (${redactUrl(cfg.url)})`;
  let limits: BatchLimits | null = null;
  let authing: Promise<void> | null = null;
  let retries = 0;

  const aborted = () => opts.signal?.aborted === true;

  /** Waits out transient failures (down, 5xx, 429) with full-jitter backoff until retryForS. */
  async function withRetry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + cfg.retryForS * 1000;
    let attempt = 0;
    let reauthed = false;
    for (;;) {
      if (aborted()) throw new SinkError(`${where}: ${what} aborted`, "aborted");
      try {
        await ensureAuth();
        return await fn();
      } catch (e) {
        if (e instanceof SinkError) throw e;
        if (e instanceof ClientResponseError && e.status === 401 && !reauthed) {
          // The token expired or was revoked under us: sign in again once, then retry.
          reauthed = true;
          pb.authStore.clear();
          continue;
        }
        const t = transientOf(e);
        if (!t) throw e;
        if (Date.now() >= deadline) throw new SinkError(`${where}: ${what} still failing after ${cfg.retryForS} s: ${t.message}`, t.kind);
        const hinted = t.kind === "rate_limited" && e instanceof ClientResponseError ? Number(e.response?.retryAfterMs) : NaN;
        const backoff = Number.isFinite(hinted) ? hinted : Math.random() * Math.min(10_000, 250 * 2 ** attempt);
        const wait = Math.min(backoff, Math.max(0, deadline - Date.now()));
        attempt++;
        retries++;
        if (attempt === 1 || attempt % 10 === 0) log.warn("pocketbase: waiting", { sink: name, what, reason: t.message, attempt });
        await sleep(Math.max(50, wait));
      }
    }
  }

  /** Signs in when there is no token or it expires within a minute (or a quarter of its life). */
  async function ensureAuth(): Promise<void> {
    const token = pb.authStore.token;
    if (token) {
      const p = getTokenPayload(token) as { exp?: number; iat?: number };
      const now = Date.now() / 1000;
      const life = p.exp && p.iat ? p.exp - p.iat : 3600;
      if (p.exp && p.exp - now > Math.min(60, life / 4)) return;
    }
    if (!authing)
      authing = (async () => {
        try {
          await pb.collection("_superusers").authWithPassword(cfg.email, cfg.password, { requestKey: null, signal: AbortSignal.timeout(cfg.timeoutMs) });
        } catch (e) {
          if (e instanceof ClientResponseError && (e.status === 400 || e.status === 401 || e.status === 403 || e.status === 404))
            throw new SinkError(`${where}: superuser sign-in failed (${e.status}): check the sink's email and password`, "auth");
          throw e;
        } finally {
          authing = null;
        }
      })();
    await authing;
  }

  const req = () => ({ requestKey: null, signal: AbortSignal.timeout(cfg.timeoutMs) });

  /** The batch API on (or an error saying how), and its limits. */
  async function ensureBatchApi(): Promise<BatchLimits> {
    const settings = await withRetry("reading settings", () => pb.settings.getAll(req()));
    let batch = settings.batch as { enabled: boolean; maxRequests: number; timeout: number; maxBodySize: number };
    if (!batch?.enabled || !(batch.maxRequests > 0)) {
      if (!cfg.enableBatchApi)
        throw new SinkError(
          `${where}: Pocketbase's batch API is disabled. Enable it in the Pocketbase dashboard (Settings → Application → Batch API), ` +
            `or set sinks.${name}.enableBatchApi = true to let ticksync enable it through the settings API.`,
          "config",
        );
      const wanted = { enabled: true, maxRequests: cfg.batchSize, timeout: Math.max(batch?.timeout ?? 0, 3), maxBodySize: batch?.maxBodySize ?? 0 };
      const updated = await withRetry("enabling the batch API", () => pb.settings.update({ batch: wanted }, req()));
      batch = updated.batch;
      log.info("pocketbase: enabled the batch API", { sink: name, maxRequests: batch.maxRequests, timeout: batch.timeout });
    }
    return { maxRequests: batch.maxRequests, timeoutS: batch.timeout > 0 ? batch.timeout : 3, maxBodyBytes: batch.maxBodySize > 0 ? batch.maxBodySize : 128 << 20 };
  }

  /** Create the collection, or add what an existing one lacks; say what cannot be fixed. */
  async function ensureCollection(spec: CollectionSpec): Promise<{ created: boolean; added: string[]; mismatched: string[] }> {
    const col = spec.name;
    let existing: any = null;
    try {
      existing = await withRetry("reading the collection", () => pb.collections.getOne(col, req()));
    } catch (e) {
      if (!(e instanceof ClientResponseError && e.status === 404)) throw e;
    }
    const index = `CREATE UNIQUE INDEX idx_${col}_key ON ${col} (${spec.key.join(", ")})`;
    if (!existing) {
      await withRetry("creating the collection", () =>
        pb.collections.create(
          { name: col, type: "base", fields: spec.fields, indexes: [index], listRule: cfg.readRule, viewRule: cfg.readRule, createRule: null, updateRule: null, deleteRule: null },
          req(),
        ),
      );
      log.info("pocketbase: created collection", { sink: name, collection: col });
      return { created: true, added: [], mismatched: [] };
    }
    const fields = existing.fields as { name: string; type: string }[];
    const have = new Map(fields.map((f) => [f.name, f]));
    const missing = spec.fields.filter((f) => !have.has(f.name));
    const mismatched = spec.fields.filter((f) => have.has(f.name) && have.get(f.name)!.type !== f.type).map((f) => `${f.name} is ${have.get(f.name)!.type}, expected ${f.type}`);
    const hasKeyIndex = (existing.indexes as string[]).some((ix) => {
      const cols = /\(([^)]*)\)\s*$/.exec(ix)?.[1]?.split(",").map((c) => c.trim().replace(/[`"\[\]]/g, "")) ?? [];
      return /UNIQUE/i.test(ix) && cols.length === spec.key.length && spec.key.every((k) => cols.includes(k));
    });
    if (missing.length || !hasKeyIndex) {
      await withRetry("updating the collection", () =>
        pb.collections.update(col, { fields: [...fields, ...missing], indexes: hasKeyIndex ? existing.indexes : [...existing.indexes, index] }, req()),
      );
      log.info("pocketbase: updated collection", { sink: name, collection: col, addedFields: missing.map((f) => f.name), addedKeyIndex: !hasKeyIndex });
    }
    // Pocketbase cannot change a field's type in place (it would drop the column's data); records
    // whose values the existing field refuses are quarantined with Pocketbase's message.
    if (mismatched.length) log.warn("pocketbase: collection fields differ from what ticksync writes", { sink: name, collection: col, fields: mismatched });
    return { created: false, added: missing.map((f) => f.name), mismatched };
  }

  /**
   * Write records in one batch transaction. A record Pocketbase refuses is taken out and the rest
   * re-sent. `assumeNew` (sync past its cursor) sends creates, which skip the upsert's lookup by
   * id; when one of them already exists (a re-delivery after a crash) the batch is re-sent as
   * upserts.
   */
  async function writeBatch(records: PbRecord[], opts: { assumeNew?: boolean; collection?: string } = {}): Promise<SendResult> {
    const col = opts.collection ?? collection;
    const rejected: SinkRejection[] = [];
    const before = retries;
    let pending = records;
    let mode: "create" | "upsert" = opts.assumeNew ? "create" : "upsert";
    while (pending.length) {
      try {
        await withRetry("sending a batch", async () => {
          const batch = pb.createBatch();
          const c = batch.collection(col);
          for (const r of pending) c[mode](r);
          try {
            return await batch.send(req());
          } catch (e) {
            if (pending.length === 1 && e instanceof ClientResponseError && e.status === 400 && failedRequest(e, 1) === null)
              throw new TransactionFailed(`Pocketbase 400 ${e.message || "batch transaction failed"} (a batch of one record; the server's batch timeout is ${limits?.timeoutS ?? "?"} s)`);
            throw e;
          }
        });
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
        const a = await writeBatch(pending.slice(0, half), { assumeNew: mode === "create", collection: col });
        const b = await writeBatch(pending.slice(half), { assumeNew: mode === "create", collection: col });
        rejected.push(...a.rejected, ...b.rejected);
        break;
      }
    }
    return { sent: records.length - rejected.length, rejected, retries: retries - before };
  }

  return {
    name,
    kind: "pocketbase" as const,
    collection,
    config: cfg,
    location: redactUrl(cfg.url),
    /** The collections it writes: the bars' (unless bars = false) and the mapped tables'. */
    collections: [...(cfg.bars ? [collection] : []), ...Object.keys(cfg.tables)],
    /** Sign in, check the batch API and the collections (bars, and each mapped table's). */
    async prepare() {
      limits = await ensureBatchApi();
      const collections: Record<string, Awaited<ReturnType<typeof ensureCollection>>> = {};
      if (cfg.bars) collections[collection] = await ensureCollection(barsCollection(collection));
      for (const [col, spec] of Object.entries(cfg.tables)) collections[col] = await ensureCollection(tableCollection(col, spec));
      return { limits, collections };
    },
    /** Records per batch request: the server's maxRequests, the configured size and the body limit. */
    batchRecords(): number {
      if (!limits) throw new Error("prepare() first");
      // A bar record is about 300 bytes of JSON with its request envelope; keep well under the limit.
      return Math.max(1, Math.min(limits.maxRequests, cfg.batchSize, Math.floor(limits.maxBodyBytes / 1024)));
    },
    write: writeBatch,
    /** Delete records by id (repair of extras); ids already gone count as deleted. */
    async remove(ids: string[], col: string = collection): Promise<number> {
      const size = this.batchRecords();
      let n = 0;
      for (let i = 0; i < ids.length; i += size) {
        const chunk = ids.slice(i, i + size);
        for (const id of chunk) {
          try {
            await withRetry("deleting a record", () => pb.collection(col).delete(id, req()));
            n++;
          } catch (e) {
            if (e instanceof ClientResponseError && e.status === 404) continue;
            throw e;
          }
        }
      }
      return n;
    },
    /** Every record of one symbol (all sources and intervals), in pages. */
    async recordsOf(symbol: string, each: (r: BarRecord) => void): Promise<number> {
      let page = 1;
      let n = 0;
      for (;;) {
        const res = await withRetry("reading records", () =>
          pb.collection(collection).getList(page, 1000, { filter: pb.filter("symbol = {:s}", { s: symbol }), sort: "ts,id", skipTotal: true, ...req() }),
        );
        for (const r of res.items) each(recordFromServer(r));
        n += res.items.length;
        if (res.items.length < 1000) return n;
        page++;
      }
    },
    /** Total records in a collection. */
    async count(col: string = collection): Promise<number> {
      const res = await withRetry("counting records", () => pb.collection(col).getList(1, 1, { fields: "id", ...req() }));
      return res.totalItems;
    },
    /** Every record of a collection, in id order, a page at a time (keyset: no deep offsets). */
    async scan(col: string, each: (r: Record<string, unknown>) => void): Promise<number> {
      let after = "";
      let n = 0;
      for (;;) {
        const res = await withRetry("reading records", () =>
          pb.collection(col).getList(1, 1000, { filter: after ? pb.filter("id > {:a}", { a: after }) : "", sort: "id", skipTotal: true, ...req() }),
        );
        for (const r of res.items) each(r);
        n += res.items.length;
        if (res.items.length < 1000) return n;
        after = res.items[res.items.length - 1]!.id;
      }
    },
    /** Every record whose symbol is not in `known` (records no store bar accounts for). */
    async strays(known: Set<string>, each: (r: BarRecord) => void): Promise<void> {
      let page = 1;
      for (;;) {
        const res = await withRetry("reading records", () => pb.collection(collection).getList(page, 1000, { sort: "id", skipTotal: true, ...req() }));
        for (const r of res.items) if (!known.has(String(r.symbol))) each(recordFromServer(r));
        if (res.items.length < 1000) return;
        page++;
      }
    },
    retries: () => retries,
    /** The SDK client (tests and the bench use it for direct checks). */
    client: pb,
  };
}
