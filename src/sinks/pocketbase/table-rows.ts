// Rows of a mapped table (see tableSpecSchema) from PostgreSQL, QuestDB (its PG wire) or a SQLite
// file, in keyset order: (cursor, key…) when the table has a cursor column, (key…) otherwise.
// A page starts strictly after the last row of the previous one, so no offset ever grows.
import { Database } from "bun:sqlite";
import type postgres from "postgres";
import { storeFor } from "../../stores/registry.ts";
import type { FieldType, TableSpec } from "./config.ts";
import { keyId, pbDate, type PbRecord } from "./records.ts";

export type Row = Record<string, unknown>;

/** A keyset position: the order columns' values of the last row, JSON-safe (dates as {$d: ms}). */
export type RowKey = unknown[];

export type TableReader = {
  /** Up to `limit` rows after `after` (null: from the first), in keyset order. */
  page(after: RowKey | null, limit: number): Promise<Row[]>;
  /** The keyset position of a row. */
  keyOf(row: Row): RowKey;
  close(): Promise<void>;
};

const quoteIdent = (name: string) =>
  name
    .split(".")
    .map((p) => `"${p.replace(/"/g, '""')}"`)
    .join(".");

export const orderColumns = (spec: TableSpec) => (spec.cursor ? [spec.cursor, ...spec.key.filter((k) => k !== spec.cursor)] : spec.key);

const encode = (v: unknown): unknown => (v instanceof Date ? { $d: v.getTime() } : typeof v === "bigint" ? Number(v) : v);
const decode = (v: unknown): unknown => (v && typeof v === "object" && "$d" in (v as object) ? new Date((v as { $d: number }).$d) : v);

/** `(c1, c2, …) > (v1, v2, …)` spelled out, for databases without row-value comparison. */
function keysetCondition(cols: string[], placeholder: (i: number) => string): string {
  const ors: string[] = [];
  for (let i = 0; i < cols.length; i++) {
    const ands = cols.slice(0, i).map((c, j) => `${quoteIdent(c)} = ${placeholder(j)}`);
    ands.push(`${quoteIdent(cols[i]!)} > ${placeholder(i)}`);
    ors.push(`(${ands.join(" AND ")})`);
  }
  return `(${ors.join(" OR ")})`;
}

export function openTableReader(collection: string, spec: TableSpec, baseDir = process.cwd()): TableReader {
  const table = spec.table ?? collection;
  const order = orderColumns(spec);
  const columns = [...new Set([...Object.keys(spec.fields), ...order])];
  const select = columns.map(quoteIdent).join(", ");
  const notNull = order.map((c) => `${quoteIdent(c)} IS NOT NULL`).join(" AND ");
  const orderBy = order.map(quoteIdent).join(", ");
  const keyOf = (row: Row) => order.map((c) => encode(row[c]));

  const store = storeFor(spec.from);
  if (!store.pgWire) {
    // A file store (SQLite): read it in place.
    const path = store.parseUrl(spec.from) as string;
    const db = new Database(path.startsWith("/") ? path : `${baseDir}/${path}`, { readonly: true });
    return {
      keyOf,
      async page(after, limit) {
        const cond = after ? ` AND ${keysetCondition(order, (i) => `?${i + 1}`)}` : "";
        const sql = `SELECT ${select} FROM ${quoteIdent(table)} WHERE ${notNull}${cond} ORDER BY ${orderBy} LIMIT ${Math.floor(limit)}`;
        return db.query(sql).all(...((after ?? []).map(decode).map((v) => (v instanceof Date ? v.getTime() : v)) as any[])) as Row[];
      },
      async close() {
        db.close();
      },
    };
  }
  const wire = store.pgWire(spec.from);
  // postgres.js is loaded when a table is read (the config schema, read by every command, imports this).
  const sql = (require("postgres") as { default: typeof postgres }).default(wire.url, {
    max: 1,
    fetch_types: wire.catalog,
    onnotice: () => {},
    // Without the catalog (QuestDB) TIMESTAMP comes untyped; it has no zone and means UTC.
    ...(!wire.catalog ? { types: { timestamp: { to: 1114, from: [1114], serialize: (d: Date) => d.toISOString(), parse: (s: string) => new Date(s.endsWith("Z") ? s : `${s}Z`) } } } : {}),
  });
  return {
    keyOf,
    async page(after, limit) {
      const cond = after ? ` AND ${keysetCondition(order, (i) => `$${i + 1}`)}` : "";
      const text = `SELECT ${select} FROM ${quoteIdent(table)} WHERE ${notNull}${cond} ORDER BY ${orderBy} LIMIT ${Math.floor(limit)}`;
      return (await sql.unsafe(text, (after ?? []).map(decode) as any[])) as unknown as Row[];
    },
    async close() {
      await sql.end({ timeout: 5 });
    },
  };
}

/** Epoch ms of a date-like value: Date, epoch s or ms, or a date(-time) string (UTC unless zoned). */
function toMs(v: unknown): number | null {
  if (v instanceof Date) return v.getTime();
  if (typeof v === "number" || typeof v === "bigint") {
    const n = Number(v);
    return Math.abs(n) < 1e11 ? n * 1000 : n;
  }
  if (typeof v === "string") {
    const s = v.trim();
    const iso = /^\d{4}-\d{2}-\d{2}$/.test(s) ? `${s}T00:00:00Z` : /[zZ]|[+-]\d{2}:?\d{2}$/.test(s) ? s.replace(" ", "T") : `${s.replace(" ", "T")}Z`;
    const t = Date.parse(iso);
    return Number.isNaN(t) ? null : t;
  }
  return null;
}

/** A column value as Pocketbase stores it in a field of that type (what it will read back). */
export function fieldValue(type: FieldType, v: unknown): unknown {
  switch (type) {
    case "text":
      return v == null ? "" : v instanceof Date ? v.toISOString() : typeof v === "object" ? JSON.stringify(v) : String(v);
    case "number":
      return v == null || v === "" ? 0 : Number(v);
    case "bool":
      return typeof v === "string" ? ["true", "t", "1", "yes"].includes(v.toLowerCase()) : !!v;
    case "date": {
      if (v == null || v === "") return "";
      const ms = toMs(v);
      // Left as it is: Pocketbase refuses it and the row is quarantined with its message.
      return ms === null ? String(v) : pbDate(ms);
    }
    case "json":
      if (typeof v === "string") {
        try {
          return JSON.parse(v);
        } catch {
          return v;
        }
      }
      return typeof v === "bigint" ? Number(v) : (v ?? null);
  }
}

/** A row as the record Pocketbase should hold: mapped fields and the id of its key. */
export function rowToRecord(spec: TableSpec, row: Row): PbRecord {
  const rec: PbRecord = { id: "" };
  for (const [col, type] of Object.entries(spec.fields)) rec[col] = fieldValue(type, row[col]);
  rec.id = keyId(spec.key.map((k) => (typeof rec[k] === "string" ? (rec[k] as string) : JSON.stringify(rec[k]))));
  return rec;
}

/** The mapped fields of a record read back from Pocketbase, normalised as rowToRecord makes them. */
export function recordFields(spec: TableSpec, r: Record<string, unknown>): PbRecord {
  const rec: PbRecord = { id: String(r.id) };
  for (const [col, type] of Object.entries(spec.fields)) rec[col] = type === "json" ? (r[col] ?? null) : fieldValue(type, r[col]);
  return rec;
}
