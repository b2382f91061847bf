// An existing SQLite file, such as the `stock_data` / `price_history` tables of the scripts
// ticksync replaces. Columns are mapped in config; rows are read in rowid order with a keyset
// cursor (the last rowid), or, where there is no rowid (a view, a WITHOUT ROWID table) or `key`
// says so, in the order of key columns after the last key read; so reading is resumable and never
// loads the table at once. `where` reads only rows with given column values (Stockula's
// price_history: one interval of several). Numbers are taken only when exact (see table-read.ts).
import * as v from "valibot";
import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { minQualitySchema, sourceType, tableSourceEntries } from "./common.ts";
import { SourceError, type Source, type SourceBatch, type Cursor, type SourceDescriptor } from "./types.ts";
import { exactCells, keySchema, NUMERIC_FIELDS, MAX_EXACT_INTEGER, whereSchema, whereSql, whereSuffix, type WhereValue } from "./table-read.ts";

const Column = v.pipe(v.string(), v.nonEmpty());

const SQLITE_SUMMARY = "A table or view in an existing SQLite file, columns mapped, read in rowid or key order";

export const sqliteSourceSchema = v.strictObject({
  type: sourceType("sqlite", SQLITE_SUMMARY),
  minQuality: v.optional(minQualitySchema),
  path: v.pipe(v.string(), v.nonEmpty("path is required"), v.description("The SQLite file, opened read-only; relative to the config file."), v.examples(["bars.db"])),
  table: v.optional(v.pipe(v.string(), v.nonEmpty(), v.description("The table or view to read.")), "stock_data"),
  where: whereSchema(Column),
  key: keySchema(Column),
  ...tableSourceEntries(Column, { symbol: "symbol", ts: "date" }),
});
export type SqliteSourceConfig = v.InferOutput<typeof sqliteSourceSchema>;

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * A numeric column's select. SQLite integers past 2^53 (bun:sqlite would round them) come as text
 * the row rules reject with the reason in it; the check runs in SQLite, and only for columns whose
 * declared type lets them hold integers (a REAL column turns every integer into a float, and a
 * TEXT column keeps numbers as text, which exactCells checks).
 */
function numericSelect(col: string, declared: string): string {
  const c = ident(col);
  const t = declared.toUpperCase();
  const realOrText = !t.includes("INT") && (t.includes("REAL") || t.includes("FLOA") || t.includes("DOUB") || t.includes("CHAR") || t.includes("CLOB") || t.includes("TEXT"));
  if (realOrText) return c;
  return `CASE WHEN typeof(${c}) = 'integer' AND ${c} NOT BETWEEN -${MAX_EXACT_INTEGER} AND ${MAX_EXACT_INTEGER} THEN ${c} || ' (an integer beyond 2^53: not exact as a number)' ELSE ${c} END`;
}

type Plan = {
  /** The SELECT list: mapped fields, then the paging columns (__rowid, or __k0…). */
  select: string;
  from: string;
  where: { sql: string; params: WhereValue[] };
  /** Key columns to page by; null: rowid. */
  key: string[] | null;
  /** Mapped fields whose values are text-checked for exactness. */
  numeric: string[];
};

/** What to read and how to page, checked against the table's columns. */
function planRead(db: Database, name: string, cfg: SqliteSourceConfig): Plan {
  const info = db.query(`PRAGMA table_info(${ident(cfg.table)})`).all() as { name: string; type: string; pk: number }[];
  if (info.length === 0) throw new SourceError(`source ${name}: table or view ${cfg.table} not found in ${cfg.path}`);
  const byLower = new Map(info.map((c) => [c.name.toLowerCase(), c.name]));
  const declared = new Map(info.map((c) => [c.name.toLowerCase(), c.type ?? ""]));
  const known = (col: string, what: string) => {
    const real = byLower.get(col.toLowerCase());
    if (real === undefined) throw new SourceError(`source ${name}: column ${col} (${what}) not found in ${cfg.table}; it has ${info.map((c) => c.name).join(", ")}`);
    return real;
  };
  const mapped = Object.entries(cfg.columns).filter(([field]) => !(field === "symbol" && cfg.symbol)) as [string, string][];
  // volume may be absent (index tables); everything else that is mapped must exist.
  for (const [field, col] of mapped) if (!byLower.has(col.toLowerCase()) && !(field === "volume" && cfg.columns.volume === "volume")) known(col, `for ${field}`);
  const present = mapped.filter(([, col]) => byLower.has(col.toLowerCase()));
  for (const col of Object.keys(cfg.where ?? {})) known(col, "in where");
  const select = present.map(([field, col]) => `${NUMERIC_FIELDS.has(field) ? numericSelect(col, declared.get(col.toLowerCase()) ?? "") : ident(col)} AS ${ident(field)}`);
  const kind = (db.query("SELECT type, sql FROM sqlite_master WHERE name = ? COLLATE NOCASE").get(cfg.table) as { type: string; sql: string | null } | null) ?? { type: "table", sql: null };
  const noRowid = kind.type === "view" || /\bWITHOUT\s+ROWID\b/i.test(kind.sql ?? "");
  let key: string[] | null = null;
  if (cfg.key) key = cfg.key.map((c) => known(c, "in key"));
  else if (noRowid) {
    const pk = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
    key = pk.length ? pk : [...(cfg.symbol ? [] : [known(cfg.columns.symbol, "for symbol")]), known(cfg.columns.ts, "for ts")];
  }
  if (key) select.push(...key.map((c, i) => `${ident(c)} AS __k${i}`));
  else select.unshift("rowid AS __rowid");
  return { select: select.join(", "), from: ident(cfg.table), where: whereSql(cfg.where, ident), key, numeric: present.map(([f]) => f).filter((f) => NUMERIC_FIELDS.has(f)) };
}

/** The key of a cursor written by a key-paged read (JSON of the last row's key values), or null. */
function cursorKey(cursor: Cursor | null, width: number): WhereValue[] | null {
  if (typeof cursor?.key !== "string") return null;
  try {
    const k = JSON.parse(cursor.key) as unknown;
    return Array.isArray(k) && k.length === width ? (k as WhereValue[]) : null;
  } catch {
    return null;
  }
}

export function sqliteSource(name: string, cfg: SqliteSourceConfig, baseDir = process.cwd()): Source {
  const path = isAbsolute(cfg.path) ? cfg.path : join(baseDir, cfg.path);
  const stream = `${path}#${cfg.table}${whereSuffix(cfg.where)}`;

  async function streams() {
    return [stream];
  }

  /** Rows in rowid order after the cursor's rowid. */
  async function* byRowid(db: Database, plan: Plan, cursor: Cursor | null, batchSize: number): AsyncIterable<SourceBatch> {
    const filter = plan.where.sql ? ` AND ${plan.where.sql}` : "";
    const stmt = db.query(`SELECT ${plan.select} FROM ${plan.from} WHERE rowid > ?${filter} ORDER BY rowid LIMIT ?`);
    let last = typeof cursor?.rowid === "number" ? cursor.rowid : 0;
    let yielded = false;
    for (;;) {
      const rows = stmt.all(last, ...plan.where.params, batchSize) as Record<string, unknown>[];
      if (rows.length === 0) break;
      const batch = rows.map((r) => {
        last = r.__rowid as number;
        delete r.__rowid;
        exactCells(r, plan.numeric);
        if (cfg.symbol) r.symbol = cfg.symbol;
        return { locator: `${stream}:rowid=${last}`, fields: r };
      });
      yield { rows: batch, cursor: { rowid: last } };
      yielded = true;
      if (rows.length < batchSize) break;
    }
    if (!yielded && !cursor) yield { rows: [], cursor: { rowid: last } };
  }

  /**
   * Rows in key order after the cursor's key. Each page asks one row more than it takes: equal
   * keys sit side by side in key order, so comparing neighbours (that one included) finds every
   * key that is not unique, which keyset paging would otherwise skip rows of without a word.
   */
  async function* byKey(db: Database, plan: Plan, key: string[], cursor: Cursor | null, batchSize: number): AsyncIterable<SourceBatch> {
    const cols = key.map(ident);
    const tuple = (xs: string[]) => (xs.length === 1 ? xs[0]! : `(${xs.join(", ")})`);
    const filter = plan.where.sql ? ` AND ${plan.where.sql}` : "";
    const empty = db.query(`SELECT count(*) AS n FROM ${plan.from} WHERE (${cols.map((c) => `${c} IS NULL`).join(" OR ")})${filter}`).get(...plan.where.params) as { n: number };
    if (empty.n > 0) throw new SourceError(`source ${name}: ${empty.n} rows of ${cfg.table} have no value in key column(s) ${key.join(", ")}: a key must identify every row`);
    const order = `ORDER BY ${cols.join(", ")} LIMIT ?`;
    const first = db.query(`SELECT ${plan.select} FROM ${plan.from} WHERE 1${filter} ${order}`);
    const after = db.query(`SELECT ${plan.select} FROM ${plan.from} WHERE ${tuple(cols)} > ${tuple(cols.map(() => "?"))}${filter} ${order}`);
    const width = key.length;
    const names = key.map((_, i) => `__k${i}`);
    const same = (a: Record<string, unknown>, b: Record<string, unknown>) => {
      for (const k of names) if (a[k] !== b[k]) return false;
      return true;
    };
    let last = cursorKey(cursor, width);
    let yielded = false;
    for (;;) {
      const rows = (last ? after.all(...last, ...plan.where.params, batchSize + 1) : first.all(...plan.where.params, batchSize + 1)) as Record<string, unknown>[];
      if (rows.length === 0) break;
      for (let i = 1; i < rows.length; i++)
        if (same(rows[i - 1]!, rows[i]!)) throw new SourceError(`source ${name}: key (${key.join(", ")}) is not unique in ${cfg.table}: ${JSON.stringify(names.map((k) => rows[i]![k]))} is on more than one row; set key to columns that identify a row`);
      const take = rows.length > batchSize ? rows.slice(0, batchSize) : rows;
      const end = take[take.length - 1]!;
      last = names.map((n) => end[n] as WhereValue);
      const batch = take.map((r) => {
        let locator = `${stream}:key=`;
        for (let i = 0; i < width; i++) {
          locator += i === 0 ? String(r[names[i]!]) : `|${String(r[names[i]!])}`;
          delete r[names[i]!];
        }
        exactCells(r, plan.numeric);
        if (cfg.symbol) r.symbol = cfg.symbol;
        return { locator, fields: r };
      });
      yield { rows: batch, cursor: { key: JSON.stringify(last) } };
      yielded = true;
      if (rows.length <= batchSize) break;
    }
    if (!yielded && !cursor) yield { rows: [], cursor: { key: null } };
  }

  async function* read(_stream: string, cursor: Cursor | null, batchSize: number): AsyncIterable<SourceBatch> {
    if (!existsSync(path)) throw new SourceError(`source ${name}: SQLite file not found: ${cfg.path}`);
    const db = new Database(path, { readonly: true });
    try {
      const plan = planRead(db, name, cfg);
      yield* plan.key ? byKey(db, plan, plan.key, cursor, batchSize) : byRowid(db, plan, cursor, batchSize);
    } finally {
      db.close();
    }
  }

  return { name, type: "sqlite", interval: cfg.interval, market: cfg.market, tsFormat: cfg.tsFormat, timeZone: cfg.timeZone, streams, read };
}

export const sqliteDescriptor: SourceDescriptor<typeof sqliteSourceSchema> = {
  type: "sqlite",
  summary: SQLITE_SUMMARY,
  schema: sqliteSourceSchema,
  create: (name, cfg, baseDir) => sqliteSource(name, cfg, baseDir),
  provider: false,
  rebuildInWorker: true,
};
