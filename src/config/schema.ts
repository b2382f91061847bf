// The config file's schema. Every section is a valibot schema; the JSON Schema that editors use
// (`ticksync config schema`) is derived from these, so the two never disagree.
import * as v from "valibot";
import { PROVIDER_SOURCE_TYPES, sourceConfigSchema } from "../sources/registry.ts";
import { sinkConfigSchema } from "../sinks/registry.ts";
import { streamConfigSchema } from "../stream/config.ts";
import { replayConfigSchema } from "../stream/range-read.ts";
import { alertsConfigSchema, DependencySelector } from "../monitor/alerts.ts";
import { indicatorsConfigSchema } from "../domain/indicators.ts";
import { resolveUniverse } from "../universes/universes.ts";
import { retentionConfigSchema } from "../pipeline/retention.ts";
import { jobConfigSchema, SINK_JOB_KINDS, SOURCE_JOB_KINDS } from "../scheduler/jobs/registry.ts";
import { Name } from "../scheduler/jobs/kind.ts";
import { DEFAULT_BATCH_SIZE } from "../sources/types.ts";
import { parseByteSize, rotationIntervalError } from "../lib/log-file.ts";
import { STORES, storeFor, storeUrlForms, storeUrlPattern } from "../stores/registry.ts";
import { DEFAULT_RATE_LIMIT, ROLES } from "../http/security.ts";

export const storeConfigSchema = v.strictObject({
  url: v.optional(
    v.pipe(
      v.string(),
      v.nonEmpty(),
      v.regex(storeUrlPattern({ paths: true }), `expected ${storeUrlForms()}`),
      v.description("sqlite:<path> (the default, relative to the config file) or a bare path to a SQLite file; postgres://user:pass@host:port/db[?schema=name]; questdb://user:pass@host:port/qdb?http=http://host:9000."),
    ),
    "sqlite:./.data/ticksync.db",
  ),
});

const apiTokenSchema = v.strictObject({
  name: v.pipe(v.string(), v.regex(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/, "expected a name of letters, digits, _, . and - starting with a letter"), v.description("The token's name: in the audit trail and 403 messages (the secret never is).")),
  secret: v.pipe(v.string("expected a token string"), v.minLength(16, "a token must be at least 16 characters"), v.description("The token (Authorization: Bearer <secret>). Never logged.")),
  role: v.pipe(v.picklist(ROLES, `expected ${ROLES.join(", ")}`), v.description("read, operate or admin (docs/operations.md, Access: roles and rate limits).")),
});

const perSecond = (doc: string, fallback: number) => v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(1_000_000), v.description(doc)), fallback);
const burst = (doc: string, fallback: number) => v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_000_000), v.description(doc)), fallback);

const rateLimitSchema = v.strictObject({
  tokenPerSecond: perSecond("Requests per second one token may make on average (0: no limit).", DEFAULT_RATE_LIMIT.tokenPerSecond),
  tokenBurst: burst("Requests one token may make at once.", DEFAULT_RATE_LIMIT.tokenBurst),
  addressPerSecond: perSecond("Requests per second one address may make without a valid token (IPv6: per /64; 0: no limit).", DEFAULT_RATE_LIMIT.addressPerSecond),
  addressBurst: burst("Requests one address may make at once without a valid token.", DEFAULT_RATE_LIMIT.addressBurst),
  maxKeys: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(100), v.maxValue(10_000_000), v.description("Tokens and addresses whose rate is tracked at once; beyond, the least recently seen is forgotten (memory stays bounded).")),
    DEFAULT_RATE_LIMIT.maxKeys,
  ),
  loopback: v.optional(
    v.pipe(v.boolean(), v.description("Limit callers on this machine per address too (off: behind a reverse proxy on this machine every client would share one address).")),
    DEFAULT_RATE_LIMIT.loopback,
  ),
});

/** The same secret twice (with two roles), or one name twice, as the message. */
function tokenClash(server: { tokens: string[]; token: { name: string; secret: string }[] }): string | undefined {
  const names = server.token.map((t) => t.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) return `two tokens are named ${dup}: names must be unique`;
  const secrets = [...server.tokens, ...server.token.map((t) => t.secret)];
  const i = secrets.findIndex((x, j) => secrets.indexOf(x) !== j);
  if (i < 0) return undefined;
  const at = (k: number) => (k < server.tokens.length ? `server.tokens[${k}]` : `server.token ${server.token[k - server.tokens.length]!.name}`);
  return `${at(secrets.indexOf(secrets[i]!))} and ${at(i)} have the same secret: give each token its own`;
}

export const serverConfigSchema = v.strictObject({
  host: v.optional(v.pipe(v.string(), v.nonEmpty(), v.description("Address the HTTP server listens on; 127.0.0.1 keeps it to this machine.")), "127.0.0.1"),
  port: v.optional(
    v.pipe(
      v.number("expected a port number"),
      v.integer("expected a whole port number"),
      v.minValue(0),
      v.maxValue(65535),
      v.description("TCP port of the HTTP server."),
    ),
    8080,
  ),
  maxPageSize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100_000), v.description("Rows per page at most on /api endpoints.")), 10_000),
  leaseSeconds: v.optional(
    v.pipe(
      v.number(),
      v.minValue(1),
      v.maxValue(600),
      v.description(
        "Replicas on one Postgres store: the scheduler lease lasts this long and is renewed at a third of it; when the leader dies another replica takes the jobs over within about this time.",
      ),
    ),
    10,
  ),
  tokens: v.optional(
    v.pipe(
      v.array(v.pipe(v.string("expected a token string"), v.minLength(16, "a token must be at least 16 characters"))),
      v.description(
        "API tokens (Authorization: Bearer <token>), each with the admin role: needed for every mutating request (and for reads with authReads). Without server tokens (here or in server.token) only callers on this machine may mutate. Prefer setting them with TICKSYNC_SERVER__TOKENS='[\"…\"]'. Named tokens with a narrower role: server.token.",
      ),
    ),
    [],
  ),
  token: v.optional(
    v.pipe(
      v.array(apiTokenSchema),
      v.description(
        'Named API tokens with a role ([[server.token]] name = "ci", secret = "…", role = "operate"): read (every read), operate (also run jobs, replay quarantine, trigger backups, acknowledge alerts), admin (everything, the jobs that delete data included). Set a secret with TICKSYNC_SERVER__TOKEN__<index>__SECRET.',
      ),
    ),
    [],
  ),
  rateLimit: v.optional(v.pipe(rateLimitSchema, v.description("Request rate limits of the HTTP API (429 with Retry-After beyond them); the probes are not limited.")), {}),
  authReads: v.optional(v.pipe(v.boolean(), v.description("Reads need a token too (the probes /healthz and /readyz never do).")), false),
  allowedHosts: v.optional(
    v.pipe(
      v.array(v.pipe(v.string(), v.regex(/^\.?[a-z0-9]([a-z0-9.-]*[a-z0-9])?\.?$/i, "expected a host name such as ticksync.example.com or .example.com"))),
      v.description("Host names that reach this server besides IP addresses, localhost and server.host (other Host headers get 403); .example.com allows the domain and its subdomains"),
    ),
    [],
  ),
  corsOrigins: v.optional(
    v.pipe(v.array(v.pipe(v.string(), v.url("expected an origin such as https://app.example.com"))), v.description("Origins allowed to call the API from a browser (CORS); none by default.")),
    [],
  ),
  maxBodyBytes: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1024), v.maxValue(1 << 30), v.description("Largest request body accepted, bytes.")), 1 << 20),
  readiness: v.optional(
    v.pipe(
      v.array(DependencySelector),
      v.description(
        'Which dependencies gate /readyz (503 while one is down): "store", "sinks" (every sink), "sink:<name>", "disk". The default, the store only, keeps a replica serving reads from its store while a sink is away; add "sinks" where a load balancer should take a replica whose sink is down out of rotation.',
      ),
    ),
    ["store"],
  ),
  healthCacheSeconds: v.optional(
    v.pipe(
      v.number(),
      v.minValue(0),
      v.maxValue(300),
      v.description("GET /api/health and /readyz reuse the last probe of every dependency for this long, so a flood of requests makes one call per sink per period at most."),
    ),
    5,
  ),
});

export const logConfigSchema = v.strictObject({
  level: v.optional(
    v.pipe(v.picklist(["debug", "info", "warn", "error"], "expected debug, info, warn or error"), v.description("The least severe log level written (to stderr, or to file).")),
    "info",
  ),
  file: v.optional(
    v.pipe(
      v.string(),
      v.nonEmpty("expected a file path"),
      v.check((f) => !/[/\\]$/.test(f), "expected a file path, not a directory"),
      v.description(
        "`ticksync serve` writes its JSON log lines to this file (relative to the config file) instead of stderr, rotated by maxSize and interval, keeping `keep` old files (<file>.1 the newest). Unset: stderr. Other commands always log to stderr. If the file cannot be written (disk full, permissions, a write stalled) the service goes on logging to stderr after one warning there.",
      ),
    ),
  ),
  maxSize: v.optional(
    v.pipe(
      v.string(),
      v.check((s) => parseByteSize(s) !== null, `expected a size such as "100MB": a whole number and B, KB, MB or GB (1KB = 1024 bytes), from 1KB to 64GB`),
      v.description('With file: it is rotated once it reaches this size ("100MB"; B, KB, MB, GB; 1KB = 1024 bytes).'),
    ),
    "100MB",
  ),
  interval: v.optional(
    v.pipe(
      v.string(),
      v.check((s) => rotationIntervalError(s) === null, (issue) => rotationIntervalError(issue.input as string) ?? "invalid interval"),
      v.description(
        'With file: it is also rotated at every boundary of this interval, in local time ("1d" at midnight, "6h", "30m", "10s"; hours divide 24, minutes and seconds divide 60). Unset: by size only.',
      ),
    ),
  ),
  keep: v.optional(
    v.pipe(v.number("expected a number of files"), v.integer("expected a whole number of files"), v.minValue(1, "expected 1 to 1000 files"), v.maxValue(1000, "expected 1 to 1000 files"), v.description("With file: rotated files kept; older ones are deleted.")),
    10,
  ),
  compress: v.optional(v.pipe(v.boolean(), v.description("With file: rotated files are gzipped (<file>.1.gz …).")), false),
  stderr: v.optional(v.pipe(v.boolean(), v.description("With file: every line goes to stderr too (under systemd: to the journal as well).")), false),
});

export const ingestConfigSchema = v.strictObject({
  batchSize: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_000_000), v.description("Rows per store transaction (and per checkpoint).")),
    DEFAULT_BATCH_SIZE,
  ),
});

// The job part of the config is derived from the job kinds (src/scheduler/jobs/registry.ts).
export { jobConfigSchema };

/** The config's sections; configSchema adds the checks across them. */
const configSections = v.strictObject({
  // Not a setting: the editor's pointer to the JSON Schema, kept a bare string in that schema.
  $schema: v.optional(v.pipe(v.string(), v.description('A JSON config\'s pointer to this schema for editors ("./ticksync.schema.json", written by `ticksync config schema --out`); a TOML config uses a first line `#:schema ./ticksync.schema.json` instead. Not a setting.'))),
  store: v.optional(v.pipe(storeConfigSchema, v.description("Where bars, runs, checkpoints and the event journal are kept.")), {}),
  server: v.optional(v.pipe(serverConfigSchema, v.description("The HTTP server of `ticksync serve`: address, API tokens, limits.")), {}),
  log: v.optional(v.pipe(logConfigSchema, v.description("Logging.")), {}),
  ingest: v.optional(v.pipe(ingestConfigSchema, v.description("How ingest runs write to the store.")), {}),
  sources: v.optional(v.pipe(v.record(Name, sourceConfigSchema), v.description("Where bars come from, by name; each has a type (csv, sqlite, postgres, providers, replay).")), {}),
  universes: v.optional(
    v.pipe(
      v.record(Name, v.pipe(v.array(v.pipe(v.string(), v.nonEmpty())), v.description("Symbols of this universe."))),
      v.description('Named symbol lists of your own; entries may be any provider spelling or "@<bundled universe>".'),
    ),
    {},
  ),
  sinks: v.optional(v.pipe(v.record(Name, sinkConfigSchema), v.description("Where the store's bars are delivered (Pocketbase collections), by name.")), {}),
  jobs: v.optional(v.pipe(v.array(jobConfigSchema), v.description("Work `ticksync serve` runs on a schedule, on start or when triggered; each has a kind.")), []),
  stream: v.optional(v.pipe(streamConfigSchema, v.description("The WebSocket and SSE feed: tokens, slow-client policy, heartbeats, journal retention.")), {}),
  replay: v.optional(v.pipe(replayConfigSchema, v.description("Bounds of a replay of stored bars (GET /api/replay, the WebSocket's `replay`): symbols, rows, rows per store read.")), {}),
  alerts: v.optional(v.pipe(alertsConfigSchema, v.description("Alert rules and where notifications go.")), {}),
  indicators: v.optional(
    v.pipe(indicatorsConfigSchema, v.description("Indicator sets /api/indicators computes when a request names none: `default`, and per universe.")),
    {},
  ),
  retention: v.optional(
    v.pipe(retentionConfigSchema, v.description('How long bars are kept, per interval (rules = [{ interval = "1m", keepDays = 90 }]); enforced by retention jobs.')),
    {},
  ),
});

type ReferringJob = { name: string; kind: string; source?: string; sink?: string };

/**
 * A job of `kinds` must name one of the configured sources (or sinks) in its `source` (`sink`):
 * refused with the first job that names none or one that is not defined.
 */
function jobReference(ref: "source" | "sink", kinds: ReadonlySet<string>): v.GenericPipeItem<v.InferOutput<typeof configSections>> {
  const table = ref === "source" ? "sources" : "sinks";
  const unresolved = (jobs: ReferringJob[], defined: Record<string, unknown>) =>
    jobs.find((j) => kinds.has(j.kind) && !(j[ref] !== undefined && j[ref] in defined));
  return v.forward(
    v.partialCheck(
      [["jobs"], [table]],
      (c) => unresolved(c.jobs, c[table]) === undefined,
      (issue) => {
        const c = issue.input as { jobs: ReferringJob[]; sources: Record<string, unknown>; sinks: Record<string, unknown> };
        const bad = unresolved(c.jobs, c[table]);
        if (bad?.[ref] === undefined) return `${bad?.kind} job "${bad?.name}" needs ${ref} = <a name in ${table}>`;
        return `job ${ref} "${bad?.[ref]}" is not defined in ${table} (defined: ${Object.keys(c[table]).join(", ") || "none"})`;
      },
    ),
    ["jobs"],
  );
}

type BackupJob = { name: string; kind: string; sink?: string; dir?: string };

/**
 * A backup job's sink (a Pocketbase server backed up instead of the store) must be defined, and
 * backup jobs write to directories of their own: each keeps the newest N of its own there, and
 * /api/backups lists a directory by its job.
 */
function backupJobProblem(c: { jobs: BackupJob[]; sinks: Record<string, unknown> }): string | undefined {
  const backups = c.jobs.filter((j) => j.kind === "backup");
  const unknown = backups.find((j) => j.sink !== undefined && !(j.sink in c.sinks));
  if (unknown) return `backup job "${unknown.name}": sink "${unknown.sink}" is not defined in sinks (defined: ${Object.keys(c.sinks).join(", ") || "none"})`;
  const seen = new Map<string, string>();
  for (const j of backups) {
    const dir = j.dir ?? "backups";
    if (seen.has(dir)) return `backup jobs "${seen.get(dir)}" and "${j.name}" both write to ${dir}: give each its own dir`;
    seen.set(dir, j.name);
  }
  return undefined;
}

type GatedJob = { name: string; source?: string; market?: string; phases?: readonly string[] };

/**
 * A job gated by `phases` without `market` follows each symbol's market, which a file or table
 * source can only give by its own `market`: one naming none is refused here (`config check`), not
 * at the first tick.
 */
function ungateableJob(jobs: readonly GatedJob[], sources: Record<string, { type: string; market?: string }>): string | undefined {
  const providers: readonly string[] = PROVIDER_SOURCE_TYPES;
  const bad = jobs.find((j) => j.phases && !j.market && j.source !== undefined && sources[j.source] && !providers.includes(sources[j.source]!.type) && !sources[j.source]!.market);
  if (bad === undefined) return undefined;
  return `job ${bad.name}: phases without market gate each symbol by its market, but source ${bad.source} (${sources[bad.source!]!.type}) names none: set market on the job or the source`;
}

type NamedSinks = { server: { readiness: string[] }; alerts: { rules: { kind: string; dependencies?: string[] }[] }; sinks: Record<string, unknown> };

/** A `sink:<name>` in server.readiness or a dependency alert that names no configured sink. */
function unknownSinkDependency(c: NamedSinks): string | undefined {
  const named = [...c.server.readiness.map((d) => ["server.readiness", d] as const), ...c.alerts.rules.flatMap((r) => (r.dependencies ?? []).map((d) => ["alerts.rules", d] as const))];
  const bad = named.find(([, d]) => d.startsWith("sink:") && !(d.slice(5) in c.sinks));
  return bad ? `${bad[0]}: ${bad[1]} names no sink (defined: ${Object.keys(c.sinks).join(", ") || "none"})` : undefined;
}

/** A source whose reconcile.deleteMissing the store cannot honour (it deletes no bars), as the message. */
function undeletable(storeUrl: string, sources: Record<string, object>): string | undefined {
  const name = Object.keys(sources).find((n) => (sources[n] as { reconcile?: { deleteMissing?: boolean } }).reconcile?.deleteMissing);
  const store = storeFor(storeUrl);
  if (name === undefined || store.deletesBars) return undefined;
  return `source ${name}: reconcile.deleteMissing needs a store that deletes bars (${STORES.filter((d) => d.deletesBars).map((d) => d.type).join(", ")}); the ${store.type} store cannot`;
}

export const configSchema = v.pipe(
  configSections,
  v.forward(
    v.partialCheck(
      [["server", "readiness"], ["alerts", "rules"], ["sinks"]],
      (c) => unknownSinkDependency(c as NamedSinks) === undefined,
      (issue) => unknownSinkDependency(issue.input as NamedSinks) ?? "unknown sink",
    ),
    ["server", "readiness"],
  ),
  v.forward(
    v.partialCheck(
      [["server", "tokens"], ["server", "token"]],
      (c) => tokenClash(c.server) === undefined,
      (issue) => tokenClash((issue.input as { server: { tokens: string[]; token: { name: string; secret: string }[] } }).server) ?? "tokens clash",
    ),
    ["server", "token"],
  ),
  jobReference("source", SOURCE_JOB_KINDS),
  jobReference("sink", SINK_JOB_KINDS),
  v.forward(
    v.partialCheck(
      [["jobs"], ["sinks"]],
      (c) => backupJobProblem(c as { jobs: BackupJob[]; sinks: Record<string, unknown> }) === undefined,
      (issue) => backupJobProblem(issue.input as { jobs: BackupJob[]; sinks: Record<string, unknown> }) ?? "a backup job is misconfigured",
    ),
    ["jobs"],
  ),
  v.forward(
    v.partialCheck(
      [["jobs"], ["sources"]],
      (c) => ungateableJob(c.jobs, c.sources) === undefined,
      (issue) => {
        const c = issue.input as { jobs: GatedJob[]; sources: Record<string, { type: string; market?: string }> };
        return ungateableJob(c.jobs, c.sources) ?? "a job cannot be gated by its symbols' markets";
      },
    ),
    ["jobs"],
  ),
  v.forward(
    v.check((c) => new Set(c.jobs.map((j) => j.name)).size === c.jobs.length, "job names must be unique"),
    ["jobs"],
  ),
  // A table source's reconcile.deleteMissing deletes bars: refused here for a store that cannot.
  v.forward(
    v.partialCheck(
      [["store", "url"], ["sources"]],
      (c) => undeletable(c.store.url, c.sources) === undefined,
      (issue) => {
        const c = issue.input as { store: { url: string }; sources: Record<string, object> };
        return undeletable(c.store.url, c.sources) ?? "this store cannot delete bars";
      },
    ),
    ["sources"],
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
