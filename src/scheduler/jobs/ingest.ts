// The ingest job: a source of the config → the store.
import * as v from "valibot";
import { onMarkets } from "../../pipeline/market-scope.ts";
import { ingestFromConfig } from "../../pipeline/run.ts";
import { defineJobKind, minQualityField, sourceField } from "./kind.ts";

export const ingestJob = defineJobKind({
  type: "ingest",
  summary: "source → store",
  needs: "source",
  schema: v.object({ source: sourceField, minQuality: minQualityField }),
  // Gated per symbol: only the symbols whose market is in phase are read (and the run says which).
  create: (job, ctx) => (scope) =>
    ingestFromConfig({
      loaded: ctx.settings,
      store: ctx.store,
      source: job.source!,
      job: job.name,
      metrics: ctx.metrics,
      signal: ctx.signal,
      ...(scope ? { adapt: (s) => onMarkets(s, scope.markets), params: { markets: [...scope.markets] } } : {}),
    }),
});
