// A table in PostgreSQL or QuestDB (over its PG wire), such as the seeds' `wig80_historical`
// (symbol, ts, OHLCV and indicator columns). Columns are mapped in config. Rows are read after a
// keyset cursor: by (ts, symbol), or with `changeColumn` by (change value, ts, symbol), so an
// UPDATE or a late INSERT of an older ts that moves the change column is read on the next run.
// `reconcile` makes each run also compare recent days with the store (src/pipeline/reconcile.ts).
// Change capture is described in docs/sources.md.
import * as v from "valibot";
import type postgres from "postgres";
import { minQualitySchema, sourceType, tableSourceEntries } from "./common.ts";
import { SourceError, type Cursor, type ReadRange, type Source, type SourceBatch, type SourceDescriptor } from "./types.ts";
import { storeFor, storeUrlPattern } from "../stores/registry.ts";
import { errorText } from "../lib/errors.ts";
import { exactCells, exactValue, NUMERIC_FIELDS, whereSchema, whereSuffix, type Where } from "./table-read.ts";

const Column = v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected a column name of letters, digits and _"));

const POSTGRES_SUMMARY = "A table in PostgreSQL or QuestDB, columns mapped, read incrementally by (ts, symbol) or a change column";

export const reconcileSchema = v.pipe(
  v.strictObject({
    days: v.optional(
      v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(36_600), v.description("Days back from today (UTC) compared with the store on each run; `ingest --full` compares every day.")),
      30,
    ),
    deleteMissing: v.optional(
      v.pipe(v.boolean(), v.description("Delete from the store the bars of a compared day that are gone from the table (the deletes reach the stream and the Pocketbase sync). Off: they are counted and kept.")),
      false,
    ),
  }),
  v.description(
    "After each run, compare per (symbol, day) counts and checksums of the table and the store over the last `days` days, re-read only the days that differ, and delete bars gone from the table when deleteMissing is set.",
  ),
);

export const postgresSourceSchema = v.strictObject({
  type: sourceType("postgres", POSTGRES_SUMMARY),
  minQuality: v.optional(minQualitySchema),
  url: v.pipe(
    v.string(),
    v.regex(storeUrlPattern({ pgWire: true }), "expected postgres://… or questdb://…"),
    v.description("postgres://user:pass@host:port/db, or questdb://user:pass@host:8812/qdb for QuestDB."),
    v.examples(["postgres://ticksync@127.0.0.1:5432/market"]),
  ),
  table: v.pipe(
    v.string(),
    v.regex(/^[A-Za-z_][A-Za-z0-9_.]*$/, "expected a table name (schema.table allowed)"),
    v.description("The table to read (schema.table allowed)."),
    v.examples(["bars"]),
  ),
  ...tableSourceEntries(Column, { symbol: "symbol", ts: "ts" }),
  changeColumn: v.optional(
    v.pipe(
      Column,
      v.description(
        "A column the table's writer sets on every INSERT and UPDATE (an updated-at timestamp or a growing version number): runs read rows whose value is past the last one read (ties by ts, symbol), so changed and late rows are read. Without it, runs read rows past the last (ts, symbol).",
      ),
    ),
  ),
  reconcile: v.optional(reconcileSchema),
  where: whereSchema(Column),
  extraColumns: v.optional(
    v.pipe(
      v.array(Column),
      v.maxLength(64, "at most 64 extra columns"),
      v.description("Extra numeric columns (e.g. rsi, sma_20) kept beside each bar and deliverable to a Pocketbase sink's `fields`; a row whose extra is not a finite number is quarantined, a NULL one is left out."),
    ),
  ),
});
export type PostgresSourceConfig = v.InferOutput<typeof postgresSourceSchema>;

/** The cursor of a change-column read: the last change value as the database wrote it (text, full precision), then the row's key. */
type ChangeCursor = { change: string; ts: number; symbol: string };

function changeCursorOf(cursor: Cursor | null): ChangeCursor | null {
  if (!cursor || typeof cursor.change !== "string" || typeof cursor.ts !== "number") return null;
  return { change: cursor.change, ts: cursor.ts, symbol: typeof cursor.symbol === "string" ? cursor.symbol : "" };
}

/** `AND col = $n AND col IN ($n, …)` of a `where` (columns checked by the schema, values bound); empty without one. */
function whereFilter(sql: postgres.Sql, where: Where | undefined) {
  let out = sql``;
  for (const [col, value] of Object.entries(where ?? {})) {
    const c = sql.unsafe(col);
    out = Array.isArray(value) ? sql`${out} AND ${c} IN ${sql(value)}` : sql`${out} AND ${c} = ${value}`;
  }
  return out;
}

export function postgresSource(name: string, cfg: PostgresSourceConfig): Source {
  // The schema let only stores with a PostgreSQL wire through.
  const { url, catalog } = storeFor(cfg.url).pgWire!(cfg.url);
  // The change value travels as text, so a timestamp keeps its microseconds: PostgreSQL casts to
  // text, QuestDB (no `text` type over its wire) to string; both compare text back to the column's type.
  const textType = catalog ? "text" : "string";

  function connect() {
    // postgres.js is loaded when a table is read: every ingest imports the source registry.
    const pg = (require("postgres") as { default: typeof postgres }).default;
    return pg(url, {
      max: 1,
      // QuestDB answers only part of pg_catalog; its TIMESTAMP has no zone and means UTC. A change
      // cursor compared with a TIMESTAMP column is bound as one, from its text.
      fetch_types: catalog,
      onnotice: () => {},
      types: { timestamp: { to: 1114, from: [1114], serialize: (d: Date | string) => (d instanceof Date ? d.toISOString() : d), parse: (s: string) => new Date(s.endsWith("Z") ? s : `${s}Z`) } },
    });
  }

  const stream = `${cfg.table}${whereSuffix(cfg.where)}`;

  async function* read(_stream: string, cursor: Cursor | null, batchSize: number, range?: ReadRange): AsyncIterable<SourceBatch> {
    const sql = connect();
    try {
      const c = cfg.columns;
      const mapped = Object.entries(c).filter(([field]) => !(field === "symbol" && cfg.symbol)) as [string, string][];
      const byChange = cfg.changeColumn !== undefined && range === undefined;
      const extras = cfg.extraColumns ?? [];
      const extraAliases = extras.map((_, i) => `x${i}`);
      // Numeric fields come as text where the type is numeric or int8 (postgres.js parses only int2/int4/float): checked for exactness.
      const numeric = mapped.map(([field]) => field).filter((f) => NUMERIC_FIELDS.has(f));
      const selectList = [...mapped.map(([field, col]) => `${col} AS "${field}"`), ...extras.map((col, i) => `${col} AS "${extraAliases[i]}"`)];
      if (byChange) selectList.push(`CAST(${cfg.changeColumn} AS ${textType}) AS "__change"`);
      const select = sql.unsafe(selectList.join(", "));
      const table = sql.unsafe(cfg.table);
      const tsCol = sql.unsafe(c.ts);
      const symCol = cfg.symbol ? null : sql.unsafe(c.symbol);
      const chgCol = cfg.changeColumn ? sql.unsafe(cfg.changeColumn) : null;
      const filter = whereFilter(sql, cfg.where);
      // A range (backfill, reconciliation) reads by ts from its start; a change-column source keeps its change cursor meanwhile.
      const keepCursor = cfg.changeColumn !== undefined && range !== undefined;
      let lastTs = keepCursor ? null : typeof cursor?.ts === "number" ? new Date(cursor.ts) : null;
      if (range?.from !== undefined && (lastTs === null || lastTs.getTime() < range.from - 1)) lastTs = new Date(range.from - 1);
      let lastSym = !keepCursor && typeof cursor?.symbol === "string" ? cursor.symbol : "";
      let change = byChange ? changeCursorOf(cursor) : null;
      if (byChange && change) {
        lastTs = new Date(change.ts);
        lastSym = change.symbol;
      } else if (byChange) lastTs = null;
      const to = range?.to !== undefined ? new Date(range.to) : null;
      const keyAfter = () => (symCol ? sql`(${tsCol} > ${lastTs} OR (${tsCol} = ${lastTs} AND ${symCol} > ${lastSym}))` : sql`${tsCol} > ${lastTs}`);
      let yielded = false;
      for (;;) {
        let after = sql``;
        if (byChange && change) after = sql`AND (${chgCol} > ${change.change} OR (${chgCol} = ${change.change} AND ${keyAfter()}))`;
        else if (!byChange && lastTs !== null) after = sql`AND ${keyAfter()}`;
        const order = byChange ? sql`${chgCol}, ${tsCol}` : tsCol;
        let rows: Record<string, unknown>[];
        try {
          rows = await sql`SELECT ${select} FROM ${table} WHERE ${tsCol} IS NOT NULL ${byChange ? sql`AND ${chgCol} IS NOT NULL` : sql``} ${after} ${to ? sql`AND ${tsCol} <= ${to}` : sql``} ${filter}
                           ORDER BY ${order}${symCol ? sql`, ${symCol}` : sql``} LIMIT ${batchSize}`;
        } catch (e) {
          throw new SourceError(`source ${name}: reading ${cfg.table}: ${errorText(e)}`);
        }
        if (rows.length === 0) break;
        const lastChange = byChange ? String(rows[rows.length - 1]!.__change) : "";
        const batch: SourceBatch["rows"] = new Array(rows.length);
        for (let j = 0; j < rows.length; j++) {
          const r = rows[j]!;
          if (byChange) delete r.__change;
          if (cfg.symbol) r.symbol = cfg.symbol;
          exactCells(r, numeric);
          if (extras.length) {
            const x: Record<string, unknown> = {};
            for (let i = 0; i < extras.length; i++) (x[extras[i]!] = exactValue(r[extraAliases[i]!])), delete r[extraAliases[i]!];
            r.extras = x;
          }
          const ts = r.ts instanceof Date ? r.ts.getTime() : r.ts;
          batch[j] = { locator: `${stream}:${typeof ts === "number" ? new Date(ts).toISOString() : String(ts)}:${String(r.symbol)}`, fields: { ...r, ts } };
        }
        const last = rows[rows.length - 1]!;
        lastTs = last.ts instanceof Date ? last.ts : new Date(String(last.ts));
        lastSym = String(last.symbol ?? "");
        let next: Cursor;
        if (byChange) {
          change = { change: lastChange, ts: lastTs.getTime(), symbol: lastSym };
          next = change;
        } else next = keepCursor ? (cursor ?? { change: null, ts: null, symbol: null }) : { ts: lastTs.getTime(), symbol: lastSym };
        yield { rows: batch, cursor: next };
        yielded = true;
        if (rows.length < batchSize) break;
      }
      if (!yielded && cursor === null) yield { rows: [], cursor: byChange || keepCursor ? { change: null, ts: null, symbol: null } : { ts: null, symbol: null } };
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
    ...(cfg.reconcile ? { reconcile: cfg.reconcile } : {}),
    streams: async () => [stream],
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
