// Config pieces shared by every source's schema.
import * as v from "valibot";

export const MarketSchema = v.picklist(["WSE", "NYSE"], "expected WSE or NYSE");
export const TsFormatSchema = v.picklist(["auto", "iso", "yyyymmdd", "epoch_s", "epoch_ms"], "expected auto, iso, yyyymmdd, epoch_s or epoch_ms");

/** Column mapping of a table source: field → column, with the table's usual names as defaults. */
export function tableColumnsSchema(column: v.GenericSchema<string, string>, defaults: { symbol: string; ts: string }) {
  return v.optional(
    v.strictObject({
      symbol: v.optional(column, defaults.symbol),
      ts: v.optional(column, defaults.ts),
      open: v.optional(column, "open"),
      high: v.optional(column, "high"),
      low: v.optional(column, "low"),
      close: v.optional(column, "close"),
      volume: v.optional(column, "volume"),
      adjClose: v.optional(column),
      turnover: v.optional(column),
      trades: v.optional(column),
    }),
    {},
  );
}
