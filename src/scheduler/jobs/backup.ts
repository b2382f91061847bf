// The backup job: a snapshot of the store with its manifest, the oldest beyond `keep` removed.
// With `sink`, the Pocketbase server of that sink is backed up instead (its backup API); a QuestDB
// store is backed up as a checksummed export of its tables.
import { resolve } from "node:path";
import * as v from "valibot";
import { log } from "../../lib/log.ts";
import { backupStore } from "../../monitor/backup.ts";
import { backupPocketbase } from "../../monitor/backup-pocketbase.ts";
import { backupQuestdb } from "../../monitor/backup-questdb.ts";
import { storeFor } from "../../stores/registry.ts";
import { defineJobKind, sinkField } from "./kind.ts";

export const backupJob = defineJobKind({
  type: "backup",
  summary: "snapshot the store (or, with sink, a Pocketbase sink's server) with a manifest",
  schema: v.object({
    sink: sinkField,
    dir: v.pipe(v.optional(v.pipe(v.string(), v.nonEmpty())), v.description("backup jobs: where backups go (relative to the config file; default backups).")),
    keep: v.pipe(v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))), v.description("backup jobs: how many backups are kept (the newest).")),
  }),
  create: (job, ctx) => async () => {
    const dir = resolve(ctx.settings.baseDir, job.dir ?? "backups");
    const sink = job.sink === undefined ? undefined : ctx.sinks.get(job.sink);
    if (job.sink !== undefined && !sink) throw new Error(`job ${job.name}: sink ${job.sink} is not open`);
    const r = sink
      ? await backupPocketbase(sink.name, sink.config, dir, { keep: job.keep, auditStore: ctx.storeUrl })
      : storeFor(ctx.storeUrl).type === "questdb"
        ? await backupQuestdb(ctx.storeUrl, dir, { keep: job.keep, signal: ctx.signal })
        : await backupStore(ctx.storeUrl, dir, { keep: job.keep });
    log.info("backup written", { kind: r.manifest.kind, file: r.manifest.file, bytes: r.manifest.bytes, sha256: r.manifest.sha256, removed: r.removed.length });
    return { outcome: "succeeded" };
  },
});
