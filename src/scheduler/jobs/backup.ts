// The backup job: a snapshot of the store with its manifest, the oldest beyond `keep` removed.
import { resolve } from "node:path";
import * as v from "valibot";
import { log } from "../../lib/log.ts";
import { backupStore } from "../../monitor/backup.ts";
import { defineJobKind } from "./kind.ts";

export const backupJob = defineJobKind({
  type: "backup",
  summary: "snapshot the store with a manifest",
  schema: v.object({
    dir: v.pipe(v.optional(v.pipe(v.string(), v.nonEmpty())), v.description("backup jobs: where backups go (relative to the config file; default backups).")),
    keep: v.pipe(v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))), v.description("backup jobs: how many backups are kept (the newest).")),
  }),
  create: (job, ctx) => async () => {
    const r = await backupStore(ctx.storeUrl, resolve(ctx.settings.baseDir, job.dir ?? "backups"), { keep: job.keep });
    log.info("backup written", { file: r.manifest.file, bytes: r.manifest.bytes, sha256: r.manifest.sha256, removed: r.removed.length });
    return { outcome: "succeeded" };
  },
});
