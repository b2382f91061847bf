// The ingest job: a source of the config → the store.
import * as v from "valibot";
import { ingestFromConfig } from "../../pipeline/run.ts";
import { defineJobKind, minQualityField, sourceField } from "./kind.ts";

export const ingestJob = defineJobKind({
  type: "ingest",
  summary: "source → store",
  needs: "source",
  schema: v.object({ source: sourceField, minQuality: minQualityField }),
  create: (job, ctx) => () => ingestFromConfig({ loaded: ctx.settings, store: ctx.store, source: job.source!, job: job.name, metrics: ctx.metrics, signal: ctx.signal }),
});
