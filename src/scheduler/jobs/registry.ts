// The job kinds, and what is derived from them: the config's job schema (`[[jobs]]`), which kinds
// need a source or a sink, and the runner of a configured job. A new kind is one file and one
// line in JOB_KINDS.
import { Cron } from "croner";
import * as v from "valibot";
import { findDescriptor, typesOf } from "../../lib/descriptor.ts";
import { backupJob } from "./backup.ts";
import { gapfillJob } from "./gapfill.ts";
import { ingestJob } from "./ingest.ts";
import { Name, type AnyJobKind, type JobContext, type JobRunner } from "./kind.ts";
import { retentionJob } from "./retention.ts";
import { syncJob } from "./sync.ts";
import { verifyJob } from "./verify.ts";
import { MarketSchema, marketChoices } from "../../domain/markets/index.ts";

export const JOB_KINDS = [ingestJob, syncJob, verifyJob, backupJob, gapfillJob, retentionJob] as const;

const KINDS: readonly AnyJobKind[] = JOB_KINDS;
type KindType = (typeof JOB_KINDS)[number]["type"];
const KIND_TYPES = typesOf(KINDS) as [KindType, ...KindType[]];
/** Kinds whose job names a source in `sources`; kinds whose job names a sink in `sinks`. */
export const SOURCE_JOB_KINDS: ReadonlySet<string> = new Set(KINDS.filter((k) => k.needs === "source").map((k) => k.type));
export const SINK_JOB_KINDS: ReadonlySet<string> = new Set(KINDS.filter((k) => k.needs === "sink").map((k) => k.type));

const CronExpression = v.pipe(
  v.string(),
  v.check((s) => {
    try {
      new Cron(s, { paused: true });
      return true;
    } catch {
      return false;
    }
  }, "expected a cron expression such as \"*/30 * 9-17 * * 1-5\" (seconds optional)"),
);

const TimeZone = v.pipe(
  v.string(),
  v.check((tz) => {
    try {
      new Intl.DateTimeFormat("en", { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  }, "expected an IANA time zone such as Europe/Warsaw"),
);

type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
type KindEntries = UnionToIntersection<(typeof JOB_KINDS)[number]["schema"]["entries"]>;
// The fields older than the registry keep the order the config has always had them in (the order
// of error messages and of the JSON Schema); a new kind's fields follow, in registry order.
const FIELD_ORDER = ["lookbackDays", "source", "minQuality", "sink", "repair", "onEvents", "dir", "keep"];
const rank = (field: string) => (FIELD_ORDER.includes(field) ? FIELD_ORDER.indexOf(field) : FIELD_ORDER.length);

/** Every kind's own fields, once each (a field two kinds share is the same schema). */
const kindEntries = Object.fromEntries(
  Object.entries(Object.assign({}, ...JOB_KINDS.map((k) => k.schema.entries)) as Record<string, unknown>).sort(([a], [b]) => rank(a) - rank(b)),
) as KindEntries;

const oneOf = (words: readonly string[]) => `${words.slice(0, -1).join(", ")} or ${words.at(-1)}`;

export const jobConfigSchema = v.pipe(
  v.strictObject({
    name: v.pipe(Name, v.description("The job's name (unique): in /api/jobs, the logs and the run records.")),
    kind: v.pipe(
      v.optional(v.picklist(KIND_TYPES, `expected ${oneOf(KIND_TYPES)}`), "ingest"),
      v.description(KINDS.map((k) => `${k.type}: ${k.summary}`).join("; ") + "."),
    ),
    ...kindEntries,
    schedule: v.pipe(v.optional(CronExpression), v.description("Cron expression (croner syntax, seconds optional). Without it the job runs only on start or when triggered.")),
    timeZone: v.pipe(v.optional(TimeZone, "UTC"), v.description("The time zone of the schedule (IANA).")),
    runOnStart: v.pipe(v.optional(v.boolean(), false), v.description("Run once when serve starts (on the replica that leads).")),
    market: v.pipe(v.optional(MarketSchema), v.description("Run cron ticks only while this exchange trades (manual and start-up runs are not gated).")),
    phases: v.pipe(
      v.optional(
        v.pipe(
          v.array(v.picklist(["pre", "open", "post"], "expected pre, open or post")),
          v.nonEmpty("expected at least one of pre, open, post"),
        ),
      ),
      v.description('With market: the phases a tick may run in (pre, open, post; a break in the session, such as the Tokyo lunch, is in none of them); the regular session ("open") by default.'),
    ),
  }),
  v.forward(
    v.partialCheck([["market"], ["phases"]], (j) => j.phases === undefined || j.market !== undefined, `phases need a market: set market = ${marketChoices(true)}`),
    ["phases"],
  ),
);

export type JobConfig = v.InferOutput<typeof jobConfigSchema>;

/** The runner of a configured job. */
export function jobRunner(job: JobConfig, ctx: JobContext): JobRunner {
  const kind = findDescriptor(KINDS, job.kind);
  if (!kind) throw new Error(`unknown job kind ${job.kind}`);
  return kind.create(job as never, ctx);
}
