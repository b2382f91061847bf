// The verify job: compare the store and a sink (repair: re-send what differs, then verify again).
import * as v from "valibot";
import { log } from "../../lib/log.ts";
import { verifySinkAll } from "../../pipeline/verify-sink.ts";
import { defineJobKind, sinkField } from "./kind.ts";

export const verifyJob = defineJobKind({
  type: "verify",
  summary: "compare store and sink (repair: re-send what differs)",
  needs: "sink",
  schema: v.object({
    sink: sinkField,
    repair: v.pipe(v.optional(v.boolean()), v.description("verify jobs: re-send what differs.")),
  }),
  create: (job, ctx) => async () => {
    const sink = ctx.sinks.get(job.sink!)!;
    const baseDir = ctx.settings.baseDir;
    let results = await verifySinkAll(ctx.store, sink, { repair: job.repair, baseDir });
    if (job.repair && results.some((r) => r.repaired)) results = await verifySinkAll(ctx.store, sink, { baseDir });
    for (const r of results)
      log[r.ok ? "info" : "warn"]("sink verified", { sink: r.sink, collection: r.collection, ok: r.ok, differingDays: r.differing.length, missing: r.missing, extra: r.extra, changed: r.changed });
    return { outcome: "succeeded" };
  },
});
