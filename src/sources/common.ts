// Config pieces shared by every source's schema.
import * as v from "valibot";

export { MarketSchema } from "../domain/markets/index.ts";
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
