// The backup job: a snapshot of the store with its manifest, the oldest beyond `keep` removed;
// with `incremental`, increments chained to it, a full backup every `fullEvery` / `fullEveryHours`.
// With `sink`, the Pocketbase server of that sink is backed up instead (its backup API); a QuestDB
// store is backed up as a checksummed export of its tables.
import { resolve } from "node:path";
import * as v from "valibot";
import { log } from "../../lib/log.ts";
import { backupStore } from "../../monitor/backup.ts";
import { storeFor } from "../../stores/registry.ts";
import { defineJobKind, sinkField } from "./kind.ts";

export const backupJob = defineJobKind({
  type: "backup",
  summary: "snapshot the store (or, with sink, a Pocketbase sink's server) with a manifest",
  schema: v.object({
    sink: sinkField,
    dir: v.pipe(v.optional(v.pipe(v.string(), v.nonEmpty())), v.description("backup jobs: where backups go (relative to the config file; default backups).")),
    keep: v.pipe(v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))), v.description("backup jobs: how many backups are kept (the newest, and every backup a kept increment needs).")),
    incremental: v.pipe(
      v.optional(v.boolean()),
      v.description("backup jobs: write increments (what changed since the newest backup in dir, chained to it) rather than full backups; a full one when there is none to follow (SQLite, PostgreSQL)."),
    ),
    fullEvery: v.pipe(v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))), v.description("backup jobs with incremental: a full backup after this many increments (default: no limit).")),
    fullEveryHours: v.pipe(v.optional(v.pipe(v.number(), v.minValue(0))), v.description("backup jobs with incremental: a full backup once the chain's full one is this many hours old (default: no limit).")),
  }),
  create: (job, ctx) => async () => {
    const dir = resolve(ctx.settings.baseDir, job.dir ?? "backups");
    const sink = job.sink === undefined ? undefined : ctx.sinks.get(job.sink);
    if (job.sink !== undefined && !sink) throw new Error(`job ${job.name}: sink ${job.sink} is not open`);
    if (sink || storeFor(ctx.storeUrl).type === "questdb") {
      // Loaded when such a backup runs: the config schema (every command) imports the job kinds.
      const r = sink
        ? await (await import("../../monitor/backup-pocketbase.ts")).backupPocketbase(sink.name, sink.config, dir, { keep: job.keep, auditStore: ctx.storeUrl })
        : await (await import("../../monitor/backup-questdb.ts")).backupQuestdb(ctx.storeUrl, dir, { keep: job.keep, signal: ctx.signal });
      log.info("backup written", { kind: r.manifest.kind, file: r.manifest.file, bytes: r.manifest.bytes, sha256: r.manifest.sha256, removed: r.removed.length });
      return { outcome: "succeeded" };
    }
    const incremental = job.incremental ? { fallback: true, fullEvery: job.fullEvery, fullAfterMs: job.fullEveryHours === undefined ? undefined : job.fullEveryHours * 3_600_000 } : false;
    const r = await backupStore(ctx.storeUrl, dir, { keep: job.keep, incremental });
    log.info("backup written", { kind: r.manifest.kind, file: r.manifest.file, mode: r.manifest.mode, bytes: r.manifest.bytes, sha256: r.manifest.sha256, removed: r.removed.length, ...(r.fullBecause ? { fullBecause: r.fullBecause } : {}) });
    return { outcome: "succeeded" };
  },
});
