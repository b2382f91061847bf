// The bodies of the operational routes: the run ledger (/api/runs, /api/audit), quarantine,
// jobs, alerts, health and the probes, and the monitoring service's aliases (/api/status…).
import * as v from "valibot";
import { Count, IsoTime, Market, MarketPhase, NullableIso, NullableNumber, Open, idPage, listOf } from "./common.ts";
import { ProcessStatsEntries } from "./data.ts";

const Outcome = v.picklist(["running", "succeeded", "failed", "interrupted"]);
const Role = v.picklist(["read", "operate", "admin", "stream"]);

/** A run's quality report (src/domain/quality.ts QualityReport); runs from before the gap rule have no gapSessions. */
const QualitySchema = v.object({
  read: Count,
  accepted: Count,
  rejected: Count,
  gapSessions: v.optional(v.pipe(Count, v.description("missing trading sessions the gap rule found (warnings)"))),
  score: v.pipe(v.number(), v.minValue(0), v.maxValue(1), v.description("0..1: the share of rows accepted, less half the share of expected sessions missing")),
  rules: v.pipe(v.record(v.string(), Count), v.description("rows each rule rejected or flagged")),
});

export const RunSchema = v.object({
  id: Count,
  kind: v.string(),
  source: v.string(),
  job: v.optional(v.nullable(v.string())),
  params: v.optional(v.nullable(Open)),
  read: Count,
  inserted: Count,
  updated: Count,
  unchanged: Count,
  quarantined: Count,
  stored: Count,
  fromTs: NullableNumber,
  toTs: NullableNumber,
  from: v.pipe(NullableIso, v.description("the earliest bar written")),
  to: v.pipe(NullableIso, v.description("the latest bar written")),
  startedAt: IsoTime,
  finishedAt: NullableIso,
  durationMs: NullableNumber,
  outcome: Outcome,
  quality: v.nullable(QualitySchema),
  error: v.nullable(v.string()),
  failures: v.pipe(v.record(v.string(), Count), v.description("failed streams by cause (not_found, rate_limited, timeout…)")),
});
export const RunsBody = idPage(RunSchema);

export const ActorSchema = v.variant("by", [
  v.object({ by: v.literal("cli"), user: v.string(), command: v.string() }),
  v.object({ by: v.literal("schedule"), job: v.string(), process: v.optional(v.string()) }),
  v.object({
    by: v.literal("api"),
    route: v.string(),
    tokenId: v.pipe(v.nullable(v.string()), v.description("sha256 fingerprint of the bearer token, never the token")),
    remote: v.nullable(v.string()),
    role: v.nullable(Role),
    caller: v.pipe(v.nullable(v.string()), v.description("the token's name, never the token")),
  }),
  v.object({ by: v.literal("system"), what: v.string() }),
]);

export const AuditBody = v.object({
  data: v.array(
    v.object({
      id: Count,
      kind: v.string(),
      source: v.string(),
      job: v.nullable(v.string()),
      startedBy: v.nullable(ActorSchema),
      params: v.unknown(),
      startedAt: IsoTime,
      finishedAt: NullableIso,
      outcome: v.string(),
      counts: v.object({ read: Count, inserted: Count, updated: Count, unchanged: Count, quarantined: Count }),
      error: v.nullable(v.string()),
    }),
  ),
  next: v.nullable(v.pipe(v.string(), v.description("pass as `before` for the next page; null on the last page"))),
});

export const QuarantineBody = idPage(
  v.object({
    id: Count,
    runId: Count,
    source: v.string(),
    locator: v.pipe(v.string(), v.description("where the row was: file and line, URL, message")),
    rule: v.string(),
    reason: v.string(),
    symbol: v.nullable(v.string()),
    ts: NullableIso,
    raw: Open,
    createdAt: IsoTime,
  }),
);

const ReplayedSource = v.object({
  source: v.string(),
  runId: v.nullable(Count),
  examined: Count,
  released: Count,
  inserted: Count,
  updated: Count,
  unchanged: Count,
  stillFailing: Count,
  skipped: Count,
});
export const QuarantineReplayBody = v.object({
  data: v.object({
    examined: Count,
    released: Count,
    stillFailing: Count,
    skipped: Count,
    sources: v.array(ReplayedSource),
    kept: v.pipe(v.array(v.object({ id: Count, source: v.string(), rule: v.string(), reason: v.string() })), v.description("per record that stayed: why (the first 200)")),
  }),
});

export const JobsBody = listOf(
  v.object({
    name: v.string(),
    schedule: v.nullable(v.string()),
    timeZone: v.nullable(v.string()),
    running: v.boolean(),
    nextRun: NullableIso,
    market: v.nullable(Market),
    phases: v.nullable(v.array(v.picklist(["pre", "open", "post"]))),
    marketPhase: v.nullable(MarketPhase),
    markets: v.nullable(v.array(v.object({ market: Market, phase: MarketPhase }))),
    lastStartedAt: NullableIso,
    lastFinishedAt: NullableIso,
    lastOutcome: v.nullable(v.string()),
    lastError: v.nullable(v.string()),
    skippedOverlaps: Count,
    skippedClosed: Count,
    skippedFollower: Count,
    waiting: v.pipe(v.nullable(v.object({ reason: v.string(), until: IsoTime, seconds: v.number() })), v.description("a running job in a long wait (rate limit, Retry-After)")),
  }),
);

export const JobStartedBody = v.object({
  status: v.literal("started"),
  marketPhase: v.optional(v.nullable(MarketPhase)),
  markets: v.optional(v.array(v.object({ market: Market, phase: MarketPhase }))),
  note: v.optional(v.string()),
});
export const BusyBody = v.object({ status: v.literal("busy"), job: v.optional(v.string()), message: v.string() });

export const AlertSchema = v.object({
  name: v.string(),
  kind: v.string(),
  severity: v.string(),
  status: v.picklist(["ok", "firing"]),
  message: v.string(),
  value: NullableNumber,
  since: v.pipe(NullableNumber, v.description("epoch ms")),
  lastEvaluated: NullableNumber,
  lastNotified: NullableNumber,
  acknowledged: v.boolean(),
  acknowledgedBy: v.nullable(v.string()),
});
export const AlertsBody = listOf(AlertSchema);
export const AlertBody = v.object({ data: AlertSchema });
/** POST /api/alerts/{name}/ack and /api/acknowledge_alert: who acknowledges (default: the token's fingerprint). */
export const AckBody = v.object({ by: v.optional(v.pipe(v.string(), v.maxLength(100))) });
/** POST /api/acknowledge_alert: the alert, by any of the names the replaced service took. */
export const AcknowledgeAlertBody = v.object({
  alert: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(64))),
  name: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(64))),
  alert_id: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(64))),
  id: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(64))),
  by: v.optional(v.string()),
});
/** POST /api/trigger_backup: which backup job (needed when there is more than one). */
export const TriggerBackupBody = v.object({ job: v.optional(v.string()) });
export const BackupStartedBody = v.object({ status: v.literal("started"), job: v.string() });
export const BackupChoiceBody = v.object({ error: v.string(), message: v.optional(v.string()), job: v.optional(v.string()), jobs: v.optional(v.array(v.string())) });

const DependencyStatus = v.picklist(["up", "down", "degraded"]);
export const HealthBody = v.object({
  status: v.picklist(["healthy", "degraded", "unhealthy"]),
  ready: v.boolean(),
  checkedAt: IsoTime,
  readiness: v.pipe(v.array(v.string()), v.description("what gates readiness (server.readiness)")),
  checks: v.pipe(v.record(v.string(), DependencyStatus), v.description("name → status")),
  dependencies: v.array(
    v.object({
      name: v.string(),
      kind: v.picklist(["store", "sink", "source", "scheduler", "leader", "disk", "memory"]),
      status: DependencyStatus,
      reason: v.nullable(v.string()),
      latencyMs: NullableNumber,
      details: Open,
    }),
  ),
});

export const LiveBody = v.object({ status: v.literal("ok"), uptimeSeconds: Count });
export const ReadyBody = v.object({
  ready: v.boolean(),
  store: v.object({ kind: v.string(), schemaVersion: v.nullable(v.number()), expectedVersion: v.number(), error: v.optional(v.string()) }),
  dependencies: v.optional(v.array(v.object({ name: v.string(), status: DependencyStatus }))),
});

export const StatusBody = v.object({
  status: v.picklist(["healthy", "degraded", "unhealthy"]),
  ready: v.boolean(),
  service: v.literal("ticksync"),
  version: v.string(),
  uptimeSeconds: Count,
  timestamp: IsoTime,
  checks: v.record(v.string(), DependencyStatus),
  jobs: v.object({ total: Count, running: v.array(v.string()), failing: v.array(v.string()) }),
  alerts: v.object({ total: Count, firing: v.array(v.string()), acknowledged: v.array(v.string()) }),
  sinks: v.array(v.string()),
});

const Latency = v.object({ mean: NullableNumber, p50: NullableNumber, p95: NullableNumber, p99: NullableNumber, max: NullableNumber });
export const PerformanceBody = v.object({
  timestamp: IsoTime,
  uptimeSeconds: Count,
  ...ProcessStatsEntries,
  requests: v.object({ total: Count, sampled: Count, latencyMs: Latency }),
  rowsPerSecond: v.object({ windowSeconds: Count, read: v.number(), stored: v.number(), quarantined: v.number(), synced: v.number() }),
});

export const IntegrityBody = v.object({
  timestamp: IsoTime,
  integrityScore: v.pipe(NullableNumber, v.description("the lowest of the verified collections' scores, 0..1")),
  verified: Count,
  unverified: Count,
  data: v.array(
    v.object({
      sink: v.string(),
      collection: v.string(),
      status: v.picklist(["consistent", "inconsistent", "unverified"]),
      verifiedAt: NullableIso,
      ageSeconds: NullableNumber,
      storeRecords: NullableNumber,
      sinkRecords: NullableNumber,
      missing: NullableNumber,
      extra: NullableNumber,
      changed: NullableNumber,
      checksummedDays: NullableNumber,
      differingDays: NullableNumber,
      integrityScore: NullableNumber,
    }),
  ),
});

export const BackupsBody = v.object({
  data: v.array(
    v.object({
      job: v.string(),
      name: v.string(),
      file: v.nullable(v.string()),
      createdAt: v.nullable(v.string()),
      kind: v.nullable(v.string()),
      bytes: NullableNumber,
      sha256: v.nullable(v.string()),
      counts: v.nullable(v.object({ bars: Count, series: Count, quarantine: Count, checkpoints: Count, runs: Count })),
      error: v.pipe(v.nullable(v.string()), v.description("why the manifest could not be read")),
    }),
  ),
  jobs: v.array(v.string()),
});
