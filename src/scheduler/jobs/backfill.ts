// The backfill job: a provider source's history over a date range, shared by the replicas. Its
// run plans shards of the source's symbols; every replica's shard worker (scheduler/shards.ts)
// takes them under a lease each, and a shard left by a replica that died is resumed elsewhere.
import * as v from "valibot";
import { parseTimestamp } from "../../domain/time.ts";
import { planBackfill } from "../shards.ts";
import { defineJobKind, sourceField } from "./kind.ts";

const Day = v.pipe(v.string(), v.regex(/^\d{4}-\d{2}-\d{2}$/, "expected a date YYYY-MM-DD"), v.check((s) => parseTimestamp(s) !== null, "expected a real date YYYY-MM-DD"));

/** A day's start (UTC ms), as `ticksync backfill --from` reads it. */
export const dayMs = (s: string): number => parseTimestamp(s)!;

export const backfillJob = defineJobKind({
  type: "backfill",
  summary: "a source's history, in shards the replicas share",
  needs: "source",
  schema: v.object({
    source: sourceField,
    from: v.pipe(v.optional(Day), v.description("backfill jobs: the first day to load (YYYY-MM-DD; required).")),
    to: v.pipe(v.optional(Day), v.description("backfill jobs: the last day to load (default: today).")),
    shardSize: v.pipe(v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(10_000))), v.description("backfill jobs: symbols per shard, the unit a replica takes under its lease (default 25).")),
    shardsPerReplica: v.pipe(v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(64))), v.description("backfill jobs: shards one replica runs at once (default 2).")),
  }),
  create: (job, ctx) => {
    if (job.from === undefined) throw new Error(`job ${job.name}: a backfill job needs from = "YYYY-MM-DD"`);
    const plan = { name: job.name, source: job.source!, from: dayMs(job.from), to: job.to === undefined ? null : dayMs(job.to), shardSize: job.shardSize ?? 25 };
    return () => planBackfill(ctx.store, ctx.settings, plan, ctx.signal);
  },
});
