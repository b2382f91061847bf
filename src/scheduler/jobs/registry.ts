// The job kinds, and what is derived from them: the config's job schema (`[[jobs]]`), which kinds
// need a source or a sink, and the runner of a configured job. A new kind is one file and one
// line in JOB_KINDS.
import { Cron } from "croner";
import * as v from "valibot";
import { findDescriptor, typesOf } from "../../lib/descriptor.ts";
import { backfillJob } from "./backfill.ts";
import { backupJob } from "./backup.ts";
import { gapfillJob } from "./gapfill.ts";
import { ingestJob } from "./ingest.ts";
import { Name, type AnyJobKind, type JobContext, type JobRunner } from "./kind.ts";
import { retentionJob } from "./retention.ts";
import { syncJob } from "./sync.ts";
import { verifyJob } from "./verify.ts";
import { MarketSchema, marketChoices, type Market } from "../../domain/markets/index.ts";
import { marketOf } from "../../domain/symbols.ts";
import type { IngestSettings } from "../../pipeline/run.ts";
import { providerSymbols, type ProviderConfig } from "../../sources/provider.ts";
import { PROVIDER_SOURCE_TYPES } from "../../sources/registry.ts";
import type { JobGate } from "../scheduler.ts";

export const JOB_KINDS = [ingestJob, syncJob, verifyJob, backupJob, gapfillJob, retentionJob, backfillJob] as const;

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
    runOnStart: v.pipe(v.optional(v.boolean(), false), v.description("Run once when serve starts: on PostgreSQL, on each replica that starts while no other runs the job; on other stores, on the replica that leads.")),
    market: v.pipe(
      v.optional(MarketSchema),
      v.description("Run cron ticks only while this exchange trades (manual and start-up runs are not gated). Without it, phases gate each symbol by its own market."),
    ),
    phases: v.pipe(
      v.optional(
        v.pipe(
          v.array(v.picklist(["pre", "open", "post"], "expected pre, open or post")),
          v.nonEmpty("expected at least one of pre, open, post"),
        ),
      ),
      v.description(
        'With market: the phases a tick may run in (pre, open, post; a break in the session, such as the Tokyo lunch, is in none of them); the regular session ("open") by default. Without market (ingest and gapfill jobs): each symbol follows its own market, and a tick reads the symbols whose market is in one of the phases (none: the tick is skipped).',
      ),
    ),
  }),
  v.forward(
    v.partialCheck(
      [["market"], ["phases"], ["kind"]],
      (j) => j.phases === undefined || j.market !== undefined || SOURCE_JOB_KINDS.has(j.kind),
      `phases need a market: set market = ${marketChoices(true)} (only ingest and gapfill jobs gate each symbol by its own market)`,
    ),
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

/**
 * The market-hours gate of a configured job: `market` gates the whole job by that market;
 * `phases` alone gates each symbol of its source by the symbol's own market (a provider's symbols
 * and universe, else the source's configured market). A source whose markets cannot be known
 * stops start-up here rather than running ungated.
 */
export function jobGate(job: JobConfig, settings: IngestSettings): JobGate | undefined {
  if (job.market) return { market: job.market, phases: job.phases ?? ["open"] };
  if (!job.phases) return undefined;
  const name = job.source!;
  const cfg = settings.config.sources[name];
  if (!cfg) throw new Error(`job ${job.name}: source ${name} is not defined in the config`);
  let markets: Market[];
  if ((PROVIDER_SOURCE_TYPES as readonly string[]).includes(cfg.type)) {
    const symbols = providerSymbols(name, cfg as ProviderConfig, { universes: settings.config.universes });
    markets = [...new Set(symbols.map((s) => marketOf(s)!))];
  } else {
    const market = (cfg as { market?: Market }).market;
    if (market === undefined) throw new Error(`job ${job.name}: phases without market gate each symbol by its market, but source ${name} (${cfg.type}) names none: set market on the job or the source`);
    markets = [market];
  }
  return { markets, phases: job.phases };
}
