// Config pieces shared by every source's schema.
import * as v from "valibot";
import { IntervalSchema } from "../domain/bar.ts";
import { MarketSchema as MarketPicklist, marketChoices } from "../domain/markets/index.ts";

export const MarketSchema = v.pipe(
  MarketPicklist,
  v.description(`Market of bare tickers (symbols without a market suffix): ${marketChoices()}.`),
);
export const TsFormatSchema = v.pipe(
  v.picklist(["auto", "iso", "yyyymmdd", "epoch_s", "epoch_ms"], "expected auto, iso, yyyymmdd, epoch_s or epoch_ms"),
  v.description("How timestamps are written: auto (detected per value), iso, yyyymmdd, epoch_s or epoch_ms."),
);

/** A source's `type` field: the literal, described by the type's one-line summary. */
export const sourceType = <T extends string>(type: T, summary: string) => v.pipe(v.literal(type), v.description(summary));

/** Fields several sources share, described once. */
export const describe = {
  interval: "The bar interval of the rows read.",
  timeZone: "IANA time zone in which timestamps written without an offset are read (default UTC).",
  symbol: "The symbol of every row, for a source holding one symbol without a symbol column.",
  symbols: "Symbols to read, in any provider spelling.",
};

/** Column mapping of a table source: field → column, with the table's usual names as defaults. */
function tableColumnsSchema(column: v.GenericSchema<string, string>, defaults: { symbol: string; ts: string }) {
  return v.optional(
    v.pipe(
      v.strictObject({
        symbol: v.optional(v.pipe(column, v.description("Column of the symbol.")), defaults.symbol),
        ts: v.optional(v.pipe(column, v.description("Column of the bar's timestamp (see tsFormat).")), defaults.ts),
        open: v.optional(v.pipe(column, v.description("Column of the opening price.")), "open"),
        high: v.optional(v.pipe(column, v.description("Column of the highest price.")), "high"),
        low: v.optional(v.pipe(column, v.description("Column of the lowest price.")), "low"),
        close: v.optional(v.pipe(column, v.description("Column of the closing price.")), "close"),
        volume: v.optional(v.pipe(column, v.description("Column of the volume.")), "volume"),
        adjClose: v.optional(v.pipe(column, v.description("Column of the adjusted close, if the table has one."))),
        turnover: v.optional(v.pipe(column, v.description("Column of the turnover (traded value), if the table has one."))),
        trades: v.optional(v.pipe(column, v.description("Column of the number of trades, if the table has one."))),
      }),
      v.description("Which column holds each bar field; the table's usual names by default."),
    ),
    {},
  );
}

/** Config fields every table source (SQLite, PostgreSQL) has after its own: the column mapping and how rows read into bars. */
export function tableSourceEntries(column: v.GenericSchema<string, string>, defaults: { symbol: string; ts: string }) {
  return {
    columns: tableColumnsSchema(column, defaults),
    symbol: v.optional(v.pipe(v.string(), v.nonEmpty(), v.description(describe.symbol))),
    market: v.optional(MarketSchema),
    interval: v.optional(v.pipe(IntervalSchema, v.description(describe.interval)), "1d"),
    tsFormat: v.optional(TsFormatSchema, "auto"),
    timeZone: v.optional(v.pipe(v.string(), v.description(describe.timeZone))),
  };
}

/**
 * The quality gate's default: a run that read rows and scored below this is failed. 0.01 means
 * "nothing usable" (fewer than 1 row in 100 passed the rules), so a wrong file, layout or
 * provider answer fails instead of reporting success; a source or job may ask for more.
 */
export const DEFAULT_MIN_QUALITY = 0.01;

/** `minQuality` of a source or job: the lowest quality score (0..1) a run may end with and succeed. */
export const minQualitySchema = v.pipe(
  v.number("expected a quality score between 0 and 1"),
  v.minValue(0, "expected a quality score between 0 and 1"),
  v.maxValue(1, "expected a quality score between 0 and 1"),
  v.description(
    `The lowest quality score (0..1: the share of rows read that passed the rules, less a gap penalty) a run may end with and succeed; below it the run is failed (exit 4, the failed-runs alert fires). Runs that read no rows are not scored. Default ${DEFAULT_MIN_QUALITY}: fail when nothing usable came; 0 turns the gate off.`,
  ),
);
