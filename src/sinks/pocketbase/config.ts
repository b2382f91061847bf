// The Pocketbase sink's config: the server and its superuser, the bars' collection, the batch
// limits and retry budget, and the tables of other databases mapped to collections of their own.
// Every field says what it is (`v.description`): help, the JSON Schema and docs/config.md read it.
import * as v from "valibot";
import { storeUrlPattern } from "../../stores/registry.ts";

const CollectionName = v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_]{0,99}$/, "expected a collection name of letters, digits and _"));
const Column = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, "expected a column name of letters, digits and _"),
  v.check((c) => !["id", "created", "updated", "collectionId", "collectionName", "expand"].includes(c), "id, created, updated, collectionId, collectionName and expand are Pocketbase's own names"),
);

/** The fields every bar record has: extras cannot take their names. */
export const BAR_RECORD_FIELDS = ["source", "symbol", "interval", "ts", "open", "high", "low", "close", "volume", "adj_close", "turnover", "trades"];

export const FIELD_TYPES = ["text", "number", "bool", "date", "json"] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

/**
 * A table of another database (the seeds' ai_insights, market_correlations, valuation_analysis)
 * delivered to a collection: columns become fields of the given types, the key columns make the
 * record id and a unique index, and `cursor` (a column that grows as rows are added or changed,
 * such as updated_at) makes the sync incremental. Without a cursor every sync re-sends the table.
 */
export const tableSpecSchema = v.strictObject({
  from: v.pipe(
    v.string(),
    v.regex(storeUrlPattern(), "expected postgres://…, questdb://… or sqlite:<path>"),
    v.description("The database the table is read from: postgres://…, questdb://…?http=… (read over the PG wire) or sqlite:<path>."),
  ),
  table: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^[A-Za-z_][A-Za-z0-9_.]*$/, "expected a table name (schema.table allowed)"),
      v.description("The table to read (schema.table allowed); default: the collection's name."),
    ),
  ),
  fields: v.pipe(
    v.record(Column, v.picklist(FIELD_TYPES, `expected one of ${FIELD_TYPES.join(", ")}`)),
    v.check((f) => Object.keys(f).length > 0, "map at least one column"),
    v.description(`Column → Pocketbase field type (${FIELD_TYPES.join(", ")}); every column named here is delivered.`),
  ),
  key: v.pipe(
    v.array(Column),
    v.minLength(1, "name at least one key column"),
    v.description("The natural key: columns (among fields) that identify a row; they make the record id and a unique index."),
  ),
  cursor: v.optional(
    v.pipe(
      Column,
      v.description("A column among fields whose value only grows for new or changed rows (e.g. updated_at): syncs send only those. Without it every sync re-sends the table."),
    ),
  ),
});
export type TableSpec = v.InferOutput<typeof tableSpecSchema>;

export const pocketbaseSinkConfigSchema = v.strictObject({
  type: v.pipe(v.literal("pocketbase"), v.description('The sink\'s kind: "pocketbase".')),
  url: v.pipe(v.string(), v.url("expected the server's URL, e.g. http://127.0.0.1:8090"), v.description("Base URL of the Pocketbase server, e.g. http://127.0.0.1:8090."), v.examples(["http://127.0.0.1:8090"])),
  email: v.pipe(
    v.string("expected the superuser's e-mail (or TICKSYNC_SINKS__<NAME>__EMAIL)"),
    v.nonEmpty(),
    v.description("Superuser e-mail. Prefer the environment: TICKSYNC_SINKS__<NAME>__EMAIL."),
  ),
  password: v.pipe(
    v.string("expected the superuser's password (or TICKSYNC_SINKS__<NAME>__PASSWORD)"),
    v.nonEmpty(),
    v.description("Superuser password. Prefer the environment: TICKSYNC_SINKS__<NAME>__PASSWORD. Never logged."),
  ),
  collection: v.optional(v.pipe(CollectionName, v.description("Collection for bars; created (or given its missing fields and key index) on first run.")), "stock_data"),
  sources: v.optional(v.pipe(v.array(v.pipe(v.string(), v.nonEmpty())), v.description("Only bars of these store sources (default: all)."))),
  enableBatchApi: v.optional(
    v.pipe(
      v.boolean(),
      v.description(
        "May the sink turn on Pocketbase's batch API (off in a new Pocketbase) through the settings API? Without it a server whose batch API is off is an error that says where to enable it.",
      ),
    ),
    false,
  ),
  batchSize: v.optional(
    v.pipe(
      v.number(),
      v.integer(),
      v.minValue(1),
      v.maxValue(10_000),
      v.description(
        "Records per batch transaction, at most. The server's own limit (Settings → Batch → maxRequests, 50 by default) always wins; when the sink enables the batch API itself it sets maxRequests to this.",
      ),
    ),
    500,
  ),
  concurrency: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(32), v.description("Batch requests in flight at once.")), 4),
  timeoutMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(100), v.description("Timeout of one request, in ms.")), 30_000),
  retryForS: v.optional(
    v.pipe(
      v.number(),
      v.minValue(0),
      v.description(
        "How long an unreachable or failing server (connection refused, 5xx, 429) is waited out, in seconds, before the run fails. The cursor stays where Pocketbase last acknowledged.",
      ),
    ),
    600,
  ),
  readRule: v.optional(v.pipe(v.nullable(v.string()), v.description("API rule for list and view on a collection the sink creates (default: superusers only).")), null),
  bars: v.optional(v.pipe(v.boolean(), v.description("Deliver the store's bars to `collection` (false: only the mapped tables).")), true),
  fields: v.optional(
    v.pipe(
      v.record(Column, v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected an extra column's name"))),
      v.check((f) => Object.keys(f).every((k) => !BAR_RECORD_FIELDS.includes(k)), `a bar record's own fields (${BAR_RECORD_FIELDS.join(", ")}) cannot take an extra`),
      v.description(
        "Extra columns of a table source (its `extraColumns`) as number fields of the bars' records: record field → extra column, e.g. { rsi = \"rsi\", sma20 = \"sma_20\" }. A bar without that extra gets 0 (Pocketbase's empty number). Verify compares them.",
      ),
    ),
  ),
  symbolField: v.optional(
    v.pipe(
      v.picklist(["full", "bare"], "expected full or bare"),
      v.description(
        "How records name their symbol: full (PKN.WA, the store's symbol) or bare (PKN, the ticker without its market suffix) for apps keyed that way. With bare, two synced symbols sharing a ticker (PKN.WA and PKN.US) fail the sync with both named: use `sources` or a second sink to keep them apart. Default full.",
      ),
    ),
  ),
  mirrors: v.optional(
    v.pipe(
      v.strictObject({
        market_updates: v.optional(
          v.pipe(
            CollectionName,
            v.description("Collection of one record per symbol, upserted after each sync: latest price, change against the previous close, volume, time and market status."),
          ),
        ),
        alerts: v.optional(v.pipe(CollectionName, v.description("Collection of one record per alert rule, upserted when it fires, resolves or reminds (serve)."))),
      }),
      v.description("Collections the replaced WIG80 app read, kept up to date beside the bars."),
    ),
  ),
  tables: v.optional(
    v.pipe(
      v.record(CollectionName, tableSpecSchema),
      v.description("Other tables, each mapped to a collection of its own name: where from, its fields and their types, its key and cursor."),
    ),
    {},
  ),
});
export type PocketbaseSinkConfig = v.InferOutput<typeof pocketbaseSinkConfigSchema>;
