// The gapfill job: ask a provider source for the sessions its series lack.
import * as v from "valibot";
import { runGapfill } from "../../pipeline/gapfill.ts";
import { defineJobKind, minQualityField, sourceField } from "./kind.ts";

export const gapfillJob = defineJobKind({
  type: "gapfill",
  summary: "ask a provider source for the sessions its series lack",
  needs: "source",
  schema: v.object({
    source: sourceField,
    minQuality: minQualityField,
    lookbackDays: v.pipe(v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(36_600))), v.description("gapfill jobs: only sessions this many days back are looked at (default 365).")),
  }),
  create: (job, ctx) => async (scope) => {
    const r = await runGapfill({ loaded: ctx.settings, store: ctx.store, source: job.source!, job: job.name, lookbackDays: job.lookbackDays ?? 365, markets: scope?.markets, metrics: ctx.metrics, signal: ctx.signal });
    return { outcome: r.outcome };
  },
});
