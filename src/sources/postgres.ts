// A table in PostgreSQL or QuestDB (over its PG wire), such as the seeds' `wig80_historical`
// (symbol, ts, OHLCV and indicator columns). Columns are mapped in config; rows are read in
// (ts, symbol) order after a keyset cursor, so a run continues from the last row it stored and
// picks up rows added since.
import * as v from "valibot";
import postgres from "postgres";
import { minQualitySchema, sourceType, tableSourceEntries } from "./common.ts";
import { SourceError, type Cursor, type ReadRange, type Source, type SourceBatch, type SourceDescriptor } from "./types.ts";
import { storeFor, storeUrlPattern } from "../stores/registry.ts";
import { errorText } from "../lib/errors.ts";

const Column = v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected a column name of letters, digits and _"));

const POSTGRES_SUMMARY = "A table in PostgreSQL or QuestDB, columns mapped, read incrementally by (ts, symbol)";

export const postgresSourceSchema = v.strictObject({
  type: sourceType("postgres", POSTGRES_SUMMARY),
  minQuality: v.optional(minQualitySchema),
  url: v.pipe(
    v.string(),
    v.regex(storeUrlPattern({ pgWire: true }), "expected postgres://… or questdb://…"),
    v.description("postgres://user:pass@host:port/db, or questdb://user:pass@host:8812/qdb for QuestDB."),
  ),
  table: v.pipe(
    v.string(),
    v.regex(/^[A-Za-z_][A-Za-z0-9_.]*$/, "expected a table name (schema.table allowed)"),
    v.description("The table to read (schema.table allowed)."),
  ),
  ...tableSourceEntries(Column, { symbol: "symbol", ts: "ts" }),
  extraColumns: v.optional(
    v.pipe(
      v.array(Column),
      v.maxLength(64, "at most 64 extra columns"),
      v.description("Extra numeric columns (e.g. rsi, sma_20) kept beside each bar and deliverable to a Pocketbase sink's `fields`; a row whose extra is not a finite number is quarantined, a NULL one is left out."),
    ),
  ),
});
export type PostgresSourceConfig = v.InferOutput<typeof postgresSourceSchema>;

export function postgresSource(name: string, cfg: PostgresSourceConfig): Source {
  // The schema let only stores with a PostgreSQL wire through.
  const { url, catalog } = storeFor(cfg.url).pgWire!(cfg.url);

  async function* read(_stream: string, cursor: Cursor | null, batchSize: number, range?: ReadRange): AsyncIterable<SourceBatch> {
    const sql = postgres(url, {
      max: 1,
      // QuestDB answers only part of pg_catalog; its TIMESTAMP has no zone and means UTC.
      fetch_types: catalog,
      onnotice: () => {},
      types: { timestamp: { to: 1114, from: [1114], serialize: (d: Date) => d.toISOString(), parse: (s: string) => new Date(s.endsWith("Z") ? s : `${s}Z`) } },
    });
    try {
      const c = cfg.columns;
      const mapped = Object.entries(c).filter(([field]) => !(field === "symbol" && cfg.symbol)) as [string, string][];
      const extras = cfg.extraColumns ?? [];
      const select = sql.unsafe([...mapped.map(([field, col]) => `${col} AS "${field}"`), ...extras.map((col, i) => `${col} AS "x${i}"`)].join(", "));
      const table = sql.unsafe(cfg.table);
      const tsCol = sql.unsafe(c.ts);
      const symCol = cfg.symbol ? null : sql.unsafe(c.symbol);
      let lastTs = typeof cursor?.ts === "number" ? new Date(cursor.ts) : range?.from !== undefined ? new Date(range.from - 1) : null;
      let lastSym = typeof cursor?.symbol === "string" ? cursor.symbol : "";
      const to = range?.to !== undefined ? new Date(range.to) : null;
      let yielded = false;
      for (;;) {
        const after = lastTs === null ? sql`` : symCol ? sql`AND (${tsCol} > ${lastTs} OR (${tsCol} = ${lastTs} AND ${symCol} > ${lastSym}))` : sql`AND ${tsCol} > ${lastTs}`;
        let rows: Record<string, unknown>[];
        try {
          rows = await sql`SELECT ${select} FROM ${table} WHERE ${tsCol} IS NOT NULL ${after} ${to ? sql`AND ${tsCol} <= ${to}` : sql``}
                           ORDER BY ${tsCol}${symCol ? sql`, ${symCol}` : sql``} LIMIT ${batchSize}`;
        } catch (e) {
          throw new SourceError(`source ${name}: reading ${cfg.table}: ${errorText(e)}`);
        }
        if (rows.length === 0) break;
        const batch = rows.map((r) => {
          if (cfg.symbol) r.symbol = cfg.symbol;
          if (extras.length) {
            const x: Record<string, unknown> = {};
            for (let i = 0; i < extras.length; i++) (x[extras[i]!] = r[`x${i}`]), delete r[`x${i}`];
            r.extras = x;
          }
          const ts = r.ts instanceof Date ? r.ts.getTime() : r.ts;
          return { locator: `${cfg.table}:${typeof ts === "number" ? new Date(ts).toISOString() : String(ts)}:${String(r.symbol)}`, fields: { ...r, ts } };
        });
        const last = rows[rows.length - 1]!;
        lastTs = last.ts instanceof Date ? last.ts : new Date(String(last.ts));
        lastSym = String(last.symbol ?? "");
        yield { rows: batch, cursor: { ts: lastTs.getTime(), symbol: lastSym } };
        yielded = true;
        if (rows.length < batchSize) break;
      }
      if (!yielded && cursor === null) yield { rows: [], cursor: { ts: null, symbol: null } };
    } finally {
      await sql.end({ timeout: 5 });
    }
  }

  return {
    name,
    type: "postgres",
    interval: cfg.interval,
    market: cfg.market,
    tsFormat: cfg.tsFormat,
    timeZone: cfg.timeZone,
    streams: async () => [cfg.table],
    ...(cfg.extraColumns?.length ? { extras: cfg.extraColumns } : {}),
    read,
  };
}

export const postgresDescriptor: SourceDescriptor<typeof postgresSourceSchema> = {
  type: "postgres",
  summary: POSTGRES_SUMMARY,
  schema: postgresSourceSchema,
  create: (name, cfg) => postgresSource(name, cfg),
  provider: false,
  rebuildInWorker: false,
};
