// An existing SQLite file, such as the `stock_data` / `price_history` tables of the scripts
// ticksync replaces. Columns are mapped in config; rows are read in rowid order with a keyset
// cursor (the last rowid), so reading is resumable and never loads the table at once.
import * as v from "valibot";
import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { minQualitySchema, sourceType, tableSourceEntries } from "./common.ts";
import { SourceError, type Source, type SourceBatch, type Cursor, type SourceDescriptor } from "./types.ts";

const Column = v.pipe(v.string(), v.nonEmpty());

const SQLITE_SUMMARY = "A table in an existing SQLite file, columns mapped, read in rowid order";

export const sqliteSourceSchema = v.strictObject({
  type: sourceType("sqlite", SQLITE_SUMMARY),
  minQuality: v.optional(minQualitySchema),
  path: v.pipe(v.string(), v.nonEmpty("path is required"), v.description("The SQLite file, opened read-only; relative to the config file.")),
  table: v.optional(v.pipe(v.string(), v.nonEmpty(), v.description("The table to read.")), "stock_data"),
  ...tableSourceEntries(Column, { symbol: "symbol", ts: "date" }),
});
export type SqliteSourceConfig = v.InferOutput<typeof sqliteSourceSchema>;

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

export function sqliteSource(name: string, cfg: SqliteSourceConfig, baseDir = process.cwd()): Source {
  const path = isAbsolute(cfg.path) ? cfg.path : join(baseDir, cfg.path);

  async function streams() {
    return [`${path}#${cfg.table}`];
  }

  async function* read(_stream: string, cursor: Cursor | null, batchSize: number): AsyncIterable<SourceBatch> {
    if (!existsSync(path)) throw new SourceError(`source ${name}: SQLite file not found: ${cfg.path}`);
    const db = new Database(path, { readonly: true });
    try {
      const info = db.query(`PRAGMA table_info(${ident(cfg.table)})`).all() as { name: string }[];
      if (info.length === 0) throw new SourceError(`source ${name}: table ${cfg.table} not found in ${cfg.path}`);
      const have = new Set(info.map((c) => c.name.toLowerCase()));
      const mapped = Object.entries(cfg.columns).filter(([field]) => !(field === "symbol" && cfg.symbol)) as [string, string][];
      for (const [field, col] of mapped) {
        // volume may be absent (index tables); everything else that is mapped must exist.
        if (!have.has(col.toLowerCase()) && !(field === "volume" && cfg.columns.volume === "volume"))
          throw new SourceError(`source ${name}: column ${col} (for ${field}) not found in ${cfg.table}; it has ${info.map((c) => c.name).join(", ")}`);
      }
      const present = mapped.filter(([, col]) => have.has(col.toLowerCase()));
      const select = present.map(([field, col]) => `${ident(col)} AS ${ident(field)}`).join(", ");
      const stmt = db.query(`SELECT rowid AS __rowid, ${select} FROM ${ident(cfg.table)} WHERE rowid > ? ORDER BY rowid LIMIT ?`);
      let last = typeof cursor?.rowid === "number" ? cursor.rowid : 0;
      let yielded = false;
      for (;;) {
        const rows = stmt.all(last, batchSize) as Record<string, unknown>[];
        if (rows.length === 0) break;
        const batch = rows.map((r) => {
          last = r.__rowid as number;
          delete r.__rowid;
          if (cfg.symbol) r.symbol = cfg.symbol;
          return { locator: `${path}#${cfg.table}:rowid=${last}`, fields: r };
        });
        yield { rows: batch, cursor: { rowid: last } };
        yielded = true;
        if (rows.length < batchSize) break;
      }
      if (!yielded && !cursor) yield { rows: [], cursor: { rowid: last } };
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
