// The config file's schema. Every section is a valibot schema; the JSON Schema that editors use
// (`ticksync config schema`) is derived from these, so the two never disagree.
import * as v from "valibot";
import { Cron } from "croner";
import { sourceConfigSchema } from "../sources/registry.ts";
import { sinkConfigSchema } from "../sinks/registry.ts";
import { streamConfigSchema } from "../stream/config.ts";
import { alertsConfigSchema } from "../monitor/alerts.ts";
import { indicatorsConfigSchema } from "../domain/indicators.ts";
import { resolveUniverse } from "../universes/universes.ts";
import { retentionConfigSchema } from "../pipeline/retention.ts";
import { minQualitySchema } from "../sources/common.ts";
import { storeUrlForms, storeUrlPattern } from "../stores/registry.ts";

const Name = v.pipe(v.string(), v.regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, "expected a name of letters, digits, _ and - starting with a letter"));

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

export const storeConfigSchema = v.strictObject({
  /** `sqlite:<path>` (default) or a bare path to a SQLite file; `postgres://user:pass@host:port/db[?schema=name]`. */
  url: v.optional(
    v.pipe(
      v.string(),
      v.nonEmpty(),
      v.regex(storeUrlPattern({ paths: true }), `expected ${storeUrlForms()}`),
    ),
    "sqlite:./.data/ticksync.db",
  ),
});

export const serverConfigSchema = v.strictObject({
  host: v.optional(v.pipe(v.string(), v.nonEmpty()), "127.0.0.1"),
  port: v.optional(v.pipe(v.number("expected a port number"), v.integer("expected a whole port number"), v.minValue(0), v.maxValue(65535)), 8080),
  /** Rows per page at most on /api endpoints. */
  maxPageSize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100_000)), 10_000),
  /**
   * Replicas on one Postgres store: the scheduler lease lasts this long and is renewed at a third
   * of it; when the leader dies another replica takes the jobs over within about this time.
   */
  leaseSeconds: v.optional(v.pipe(v.number(), v.minValue(1), v.maxValue(600)), 10),
  /**
   * API tokens (Authorization: Bearer <token>): needed for every mutating request (and for reads
   * with authReads). Without tokens only callers on this machine may mutate. Prefer setting them
   * with TICKSYNC_SERVER__TOKENS='["…"]'.
   */
  tokens: v.optional(v.array(v.pipe(v.string("expected a token string"), v.minLength(16, "a token must be at least 16 characters"))), []),
  /** Reads need a token too (the probes /healthz and /readyz never do). */
  authReads: v.optional(v.boolean(), false),
  /**
   * Host names that reach this server besides IP addresses, localhost and `host` (a reverse
   * proxy's or a DNS name); other Host headers get 403 (DNS rebinding). ".example.com" allows
   * the domain and its subdomains.
   */
  allowedHosts: v.optional(
    v.pipe(
      v.array(v.pipe(v.string(), v.regex(/^\.?[a-z0-9]([a-z0-9.-]*[a-z0-9])?\.?$/i, "expected a host name such as ticksync.example.com or .example.com"))),
      v.description("Host names that reach this server besides IP addresses, localhost and server.host (other Host headers get 403); .example.com allows the domain and its subdomains"),
    ),
    [],
  ),
  /** Origins allowed to call the API from a browser (CORS); none by default. */
  corsOrigins: v.optional(v.array(v.pipe(v.string(), v.url("expected an origin such as https://app.example.com"))), []),
  /** Largest request body accepted, bytes. */
  maxBodyBytes: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1024), v.maxValue(1 << 30)), 1 << 20),
});

/** Job kinds that need a sink. */
const SINK_JOBS = new Set(["sync", "verify"]);

export const jobConfigSchema = v.pipe(
  v.strictObject({
    name: Name,
    /**
     * ingest: source → store; sync: store → sink; verify: compare store and sink (repair: re-send what differs);
     * gapfill: ask a provider source for the sessions its series lack; retention: apply [retention] rules.
     */
    kind: v.optional(
      v.picklist(["ingest", "sync", "verify", "backup", "gapfill", "retention"], "expected ingest, sync, verify, backup, gapfill or retention"),
      "ingest",
    ),
    /** gapfill jobs: only sessions this many days back are looked at (default 365). */
    lookbackDays: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(36_600))),
    /** Name of a source in `sources` (ingest and gapfill jobs). */
    source: v.optional(Name),
    /** ingest and gapfill jobs: the quality gate, instead of the source's minQuality. */
    minQuality: v.optional(minQualitySchema),
    /** Name of a sink in `sinks` (sync and verify jobs). */
    sink: v.optional(Name),
    /** verify jobs: re-send what differs. */
    repair: v.optional(v.boolean()),
    /** sync jobs: also run as soon as bars are stored (events), a second after the last one. */
    onEvents: v.optional(v.boolean()),
    /** backup jobs: where backups go (relative to the config file) and how many are kept. */
    dir: v.optional(v.pipe(v.string(), v.nonEmpty())),
    keep: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
    /** Cron expression (croner syntax, seconds optional). Without it the job runs only on start or when triggered. */
    schedule: v.optional(CronExpression),
    timeZone: v.optional(TimeZone, "UTC"),
    runOnStart: v.optional(v.boolean(), false),
    /** Run cron ticks only while this exchange trades (manual and start-up runs are not gated). */
    market: v.optional(v.picklist(["WSE", "NYSE"], "expected WSE or NYSE")),
    /** With market: the phases a tick may run in (pre, open, post); the regular session ("open") by default. */
    phases: v.optional(
      v.pipe(
        v.array(v.picklist(["pre", "open", "post"], "expected pre, open or post")),
        v.nonEmpty("expected at least one of pre, open, post"),
      ),
    ),
  }),
  v.forward(
    v.partialCheck([["market"], ["phases"]], (j) => j.phases === undefined || j.market !== undefined, 'phases need a market: set market = "WSE" or "NYSE"'),
    ["phases"],
  ),
);

export const configSchema = v.pipe(
  v.strictObject({
    $schema: v.optional(v.string()),
    store: v.optional(storeConfigSchema, {}),
    server: v.optional(serverConfigSchema, {}),
    log: v.optional(v.strictObject({ level: v.optional(v.picklist(["debug", "info", "warn", "error"], "expected debug, info, warn or error"), "info") }), {}),
    ingest: v.optional(v.strictObject({ batchSize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_000_000)), 20_000) }), {}),
    sources: v.optional(v.record(Name, sourceConfigSchema), {}),
    /** Named symbol lists of your own; entries may be any provider spelling or "@<bundled universe>". */
    universes: v.optional(v.record(Name, v.array(v.pipe(v.string(), v.nonEmpty()))), {}),
    /** Where the store's bars are delivered (Pocketbase collections). */
    sinks: v.optional(v.record(Name, sinkConfigSchema), {}),
    jobs: v.optional(v.array(jobConfigSchema), []),
    /** The WebSocket and SSE feed: tokens, slow-client policy, heartbeats, journal retention. */
    stream: v.optional(streamConfigSchema, {}),
    /** Alert rules and where notifications go. */
    alerts: v.optional(alertsConfigSchema, {}),
    /** Indicator sets /api/indicators computes when a request names none: `default`, and per universe. */
    indicators: v.optional(indicatorsConfigSchema, {}),
    /** How long bars are kept, per interval (`rules = [{ interval = "1m", keepDays = 90 }]`); enforced by retention jobs. */
    retention: v.optional(retentionConfigSchema, {}),
  }),
  v.forward(
    v.partialCheck(
      [["jobs"], ["sources"]],
      (c) => c.jobs.every((j) => (j.kind !== "ingest" && j.kind !== "gapfill") || (j.source !== undefined && j.source in c.sources)),
      (issue) => {
        const c = issue.input as { jobs: { name: string; kind: string; source?: string }[]; sources: Record<string, unknown> };
        const bad = c.jobs.find((j) => (j.kind === "ingest" || j.kind === "gapfill") && !(j.source !== undefined && j.source in c.sources));
        if (bad?.source === undefined) return `${bad?.kind} job "${bad?.name}" needs source = <a name in sources>`;
        return `job source "${bad?.source}" is not defined in sources (defined: ${Object.keys(c.sources).join(", ") || "none"})`;
      },
    ),
    ["jobs"],
  ),
  v.forward(
    v.partialCheck(
      [["jobs"], ["sinks"]],
      (c) => c.jobs.every((j) => !SINK_JOBS.has(j.kind) || (j.sink !== undefined && j.sink in c.sinks)),
      (issue) => {
        const c = issue.input as { jobs: { name: string; kind: string; sink?: string }[]; sinks: Record<string, unknown> };
        const bad = c.jobs.find((j) => SINK_JOBS.has(j.kind) && !(j.sink !== undefined && j.sink in c.sinks));
        if (bad?.sink === undefined) return `${bad?.kind} job "${bad?.name}" needs sink = <a name in sinks>`;
        return `job sink "${bad?.sink}" is not defined in sinks (defined: ${Object.keys(c.sinks).join(", ") || "none"})`;
      },
    ),
    ["jobs"],
  ),
  v.forward(
    v.check((c) => new Set(c.jobs.map((j) => j.name)).size === c.jobs.length, "job names must be unique"),
    ["jobs"],
  ),
  v.forward(
    v.partialCheck(
      [["jobs"], ["retention"]],
      (c) => c.jobs.every((j) => j.kind !== "retention" || c.retention.rules.length > 0),
      'a retention job needs rules: [retention] rules = [{ interval = "1m", keepDays = 90 }]',
    ),
    ["jobs"],
  ),
  v.forward(
    v.partialCheck(
      [["indicators"], ["universes"]],
      (c) => Object.keys(c.indicators.universes).every((name) => resolveUniverse(name, c.universes).ok),
      (issue) => {
        const c = issue.input as { indicators: { universes: Record<string, unknown> }; universes: Record<string, string[]> };
        for (const name of Object.keys(c.indicators.universes)) {
          const r = resolveUniverse(name, c.universes);
          if (!r.ok) return `indicators.universes.${name}: ${r.reason}`;
        }
        return "unknown universe";
      },
    ),
    ["indicators"],
  ),
);

export type Config = v.InferOutput<typeof configSchema>;
export type JobConfig = v.InferOutput<typeof jobConfigSchema>;
