// What a job kind is: a descriptor whose schema holds the job fields of that kind (each with a
// v.description) and whose factory makes the job's runner from its config and what serve opened.
import * as v from "valibot";
import type { Descriptor } from "../../lib/descriptor.ts";
import type { TicksyncMetrics } from "../../lib/metrics.ts";
import type { RetentionRule } from "../../pipeline/retention.ts";
import type { IngestSettings } from "../../pipeline/run.ts";
import type { Sink } from "../../sinks/registry.ts";
import { minQualitySchema } from "../../sources/common.ts";
import type { Store } from "../../stores/types.ts";
import type { JobScope } from "../scheduler.ts";

/** A name of a config entry (source, sink, job, universe): letters, digits, _ and -. */
export const Name = v.pipe(v.string(), v.regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, "expected a name of letters, digits, _ and - starting with a letter"));

// Fields more than one kind has: each kind lists them, the job schema holds them once.
export const sourceField = v.pipe(v.optional(Name), v.description("Name of a source in `sources` (ingest and gapfill jobs)."));
export const sinkField = v.pipe(v.optional(Name), v.description("Name of a sink in `sinks` (sync and verify jobs; backup jobs: back up that Pocketbase sink's server instead of the store)."));
export const minQualityField = v.pipe(v.optional(minQualitySchema), v.description("ingest and gapfill jobs: the quality gate, instead of the source's minQuality."));

/** What serve opened that a job runs with. */
export type JobContext = {
  store: Store;
  sinks: ReadonlyMap<string, Sink>;
  metrics: TicksyncMetrics;
  /** Raised when serve shuts down. */
  signal: AbortSignal;
  /** The loaded config (sources, universes, batch size, jobs) and the directory it is relative to. */
  settings: IngestSettings;
  storeUrl: string;
  retentionRules: readonly RetentionRule[];
};

/** `scope`: on a tick gated per symbol, the markets in phase (read only their symbols). */
export type JobRunner = (scope?: JobScope) => Promise<{ outcome: string }>;

type KindSchema = v.ObjectSchema<v.ObjectEntries, undefined>;

export interface JobKind<S extends KindSchema = KindSchema> extends Descriptor<S, (job: { name: string } & v.InferOutput<S>, ctx: JobContext) => JobRunner> {
  /** The config entry the job names and must exist: its source, its sink, or none. */
  readonly needs?: "source" | "sink";
}

/** A job kind; its `type` stays a literal, so the kinds' union types the config's `kind`. */
export const defineJobKind = <const T extends string, S extends KindSchema>(kind: JobKind<S> & { readonly type: T }): JobKind<S> & { readonly type: T } => kind;

/** Any job kind, as the registry calls it (its job already validated by the job schema). */
export type AnyJobKind = { readonly type: string; readonly summary: string; readonly needs?: "source" | "sink"; readonly create: (job: never, ctx: JobContext) => JobRunner };
