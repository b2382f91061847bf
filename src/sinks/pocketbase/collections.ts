// The collections the sink writes: their fields (the bars' fixed ones, a mapped table's from its
// config) and their key index, created on the server or completed when an existing collection
// lacks some. What it cannot fix (a field of another type) is said, never changed.
import { ClientResponseError } from "pocketbase";
import { log } from "../../lib/log.ts";
import { requestOptions, withRetry, type PbConnection } from "./client.ts";
import type { FieldType, TableSpec } from "./config.ts";

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

/** The bars collection, with a number field per mapped extra (`fields`). */
export const barsCollection = (name: string, extraFields: string[] = []): CollectionSpec => ({
  name,
  fields: extraFields.length ? [...BAR_FIELDS, ...extraFields.map((f): FieldSpec => ({ name: f, type: "number" }))] : BAR_FIELDS,
  key: KEY_FIELDS,
});

export const tableCollection = (name: string, spec: TableSpec): CollectionSpec => ({
  name,
  fields: Object.entries(spec.fields).map(([f, type]) => ({ name: f, type, ...(spec.key.includes(f) ? { required: type !== "bool" && type !== "number" } : {}) })),
  key: spec.key,
});

export type CollectionCheck = { created: boolean; added: string[]; mismatched: string[] };

/** Create the collection, or add what an existing one lacks; say what cannot be fixed. */
export async function ensureCollection(conn: PbConnection, spec: CollectionSpec): Promise<CollectionCheck> {
  const { pb, cfg, name } = conn;
  const col = spec.name;
  let existing: any = null;
  try {
    existing = await withRetry(conn, "reading the collection", () => pb.collections.getOne(col, requestOptions(conn)));
  } catch (e) {
    if (!(e instanceof ClientResponseError && e.status === 404)) throw e;
  }
  const index = `CREATE UNIQUE INDEX idx_${col}_key ON ${col} (${spec.key.join(", ")})`;
  if (!existing) {
    await withRetry(conn, "creating the collection", () =>
      pb.collections.create(
        { name: col, type: "base", fields: spec.fields, indexes: [index], listRule: cfg.readRule, viewRule: cfg.readRule, createRule: null, updateRule: null, deleteRule: null },
        requestOptions(conn),
      ),
    );
    log.info("pocketbase: created collection", { sink: name, collection: col });
    return { created: true, added: [], mismatched: [] };
  }
  const fields = existing.fields as { name: string; type: string }[];
  const have = new Map(fields.map((f) => [f.name, f]));
  const missing = spec.fields.filter((f) => !have.has(f.name));
  const mismatched = spec.fields.filter((f) => have.has(f.name) && have.get(f.name)!.type !== f.type).map((f) => `${f.name} is ${have.get(f.name)!.type}, expected ${f.type}`);
  const hasKeyIndex = (existing.indexes as string[]).some((ix) => isKeyIndex(ix, spec.key));
  if (missing.length || !hasKeyIndex) {
    await withRetry(conn, "updating the collection", () =>
      pb.collections.update(col, { fields: [...fields, ...missing], indexes: hasKeyIndex ? existing.indexes : [...existing.indexes, index] }, requestOptions(conn)),
    );
    log.info("pocketbase: updated collection", { sink: name, collection: col, addedFields: missing.map((f) => f.name), addedKeyIndex: !hasKeyIndex });
  }
  // Pocketbase cannot change a field's type in place (it would drop the column's data); records
  // whose values the existing field refuses are quarantined with Pocketbase's message.
  if (mismatched.length) log.warn("pocketbase: collection fields differ from what ticksync writes", { sink: name, collection: col, fields: mismatched });
  return { created: false, added: missing.map((f) => f.name), mismatched };
}

/** A unique index over exactly the key's columns (in any order). */
function isKeyIndex(ix: string, key: string[]): boolean {
  const cols = /\(([^)]*)\)\s*$/.exec(ix)?.[1]?.split(",").map((c) => c.trim().replace(/[`"\[\]]/g, "")) ?? [];
  return /UNIQUE/i.test(ix) && cols.length === key.length && key.every((k) => cols.includes(k));
}
