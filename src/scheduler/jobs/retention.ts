// The retention job: apply the config's [retention] rules.
import * as v from "valibot";
import { runRetention } from "../../pipeline/retention.ts";
import { defineJobKind } from "./kind.ts";

export const retentionJob = defineJobKind({
  type: "retention",
  summary: "apply [retention] rules",
  schema: v.object({}),
  create: (job, ctx) => async () => ((await runRetention(ctx.store, ctx.retentionRules, { job: job.name, metrics: ctx.metrics })).outcome === "succeeded" ? { outcome: "succeeded" } : { outcome: "failed" }),
});
