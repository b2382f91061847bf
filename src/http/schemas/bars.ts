// The bodies of the bar routes: /api/bars (a page of bars), /api/indicators (a page of indicator
// values) and /api/replay (NDJSON lines). Pages of bars are written as JSON text straight from
// the store's rows (src/domain/bar.ts barValuesJson): the page head is typed by these schemas, and
// BarJson, the type those writers write, is BarJsonSchema's output.
import * as v from "valibot";
import { BarJsonSchema } from "../../domain/bar.ts";
import { Count, Interval, IsoDay, IsoTime } from "./common.ts";

/** A bar of a page or a replay line: the JSON its writers (barJson, barValuesJson) write. */
export const BarSchema = BarJsonSchema;

export const AppliedActionSchema = v.object({
  series: v.pipe(v.string(), v.description("the source whose bars it was applied to")),
  type: v.picklist(["split", "dividend"]),
  exDate: IsoDay,
  source: v.string(),
  factor: v.nullable(v.number()),
  prevClose: v.optional(v.number()),
  skipped: v.optional(v.pipe(v.string(), v.description("why it could not be applied"))),
});

const next = v.nullable(v.pipe(v.string(), v.description("pass as `cursor` for the next page; null on the last page")));

/** The fields of a bar page before `data` and `next`. */
export const BarPageHead = v.object({
  symbol: v.string(),
  interval: Interval,
  rolledUpFrom: v.optional(v.pipe(Interval, v.description("the stored interval these bars were rolled up from (header X-Ticksync-Rollup says how)"))),
  excluded: v.optional(v.pipe(Count, v.description("finer bars outside every regular session, left out of the roll-up"))),
  adjusted: v.optional(v.literal(true)),
  actions: v.optional(v.array(AppliedActionSchema)),
});
export const BarPage = v.object({ ...BarPageHead.entries, data: v.array(BarSchema), next });

/** The fields of an indicator page before `data` and `next`. */
export const IndicatorPageHead = v.object({
  symbol: v.string(),
  interval: Interval,
  source: v.nullable(v.string()),
  set: v.pipe(v.array(v.string()), v.description("the indicators' keys, as the rows name them (sma:20, rsi:14…)")),
  rolledUpFrom: v.optional(Interval),
});
export const IndicatorRow = v.pipe(
  v.objectWithRest({ ts: IsoTime, close: v.number() }, v.nullable(v.number())),
  v.description("one bar: ts, close, and a value per indicator of `set` (null during warm-up)"),
);
export const IndicatorPage = v.object({ ...IndicatorPageHead.entries, data: v.array(IndicatorRow), next });

/** One line of /api/replay's NDJSON body: a bar, or the last line when the row bound was reached. */
export const ReplayLine = v.variant("type", [
  v.object({ type: v.literal("bar"), ...BarSchema.entries }),
  v.object({ type: v.literal("truncated"), rows: Count, next: v.pipe(v.string(), v.description("pass as `cursor` to continue")) }),
]);
