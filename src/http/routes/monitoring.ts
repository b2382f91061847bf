// The routes of the monitoring and backup service ticksync replaces, as thin aliases over the
// native ones (docs/coming-from.md, "The monitoring and backup service"): /api/status,
// /api/performance, /api/integrity, /api/backups, POST /api/trigger_backup and
// POST /api/acknowledge_alert. They pass the same security middleware as every route (mutations
// need a token, or with none configured a caller on this machine and of this origin).
import { Hono } from "hono";
import { listBackups } from "../../monitor/backup.ts";
import { rates } from "../../monitor/rates.ts";
import { withActor } from "../../monitor/audit.ts";
import { createProcessStats, type RequestStats } from "../../monitor/performance.ts";
import { verifyStream } from "../../pipeline/verify-sink.ts";
import { redactValue } from "../../lib/redact.ts";
import { apiActor } from "../actor.ts";
import type { AppDeps } from "../deps.ts";
import { requireScope } from "../security.ts";
import { healthBody } from "./health.ts";
import { acknowledge } from "./alerts.ts";
import { body, describe, error, json } from "../openapi.ts";
import { optionalJsonBody } from "../query.ts";
import type { Body } from "../schemas/common.ts";
import { AcknowledgeAlertBody, AlertBody, BackupChoiceBody, BackupStartedBody, BackupsBody, BusyBody, IntegrityBody, PerformanceBody, StatusBody, TriggerBackupBody } from "../schemas/ops.ts";

const TAGS = ["monitoring"];

type MonitoringDeps = Pick<AppDeps, "store" | "scheduler" | "alerts" | "sinks" | "backups" | "version"> & Required<Pick<AppDeps, "health">>;

/** Rows per second over this window (the native /api/rates, summed over its buckets). */
const ROWS_WINDOW_S = 300;
/** Runs read at most for the rows rate (the ledger may hold millions). */
const ROWS_MAX_RUNS = 5000;
/** Backups listed at most per backup job. */
const MAX_BACKUPS = 500;

/** Integrity of one verified collection, 0..1: the share of its checksummed (symbol, day) groups that match. */
function integrityOf(c: Record<string, unknown> | undefined) {
  const n = (k: string) => (typeof c?.[k] === "number" ? (c[k] as number) : null);
  const days = n("days");
  const differing = n("differingDays");
  const store = n("storeRecords");
  const sink = n("sinkRecords");
  const wrong = (n("missing") ?? 0) + (n("extra") ?? 0) + (n("changed") ?? 0);
  let score: number | null = null;
  if (c?.status === "consistent") score = 1;
  else if (days !== null && differing !== null) score = days === 0 ? 1 : (days - differing) / days;
  // A verify recorded before the group count was kept: by records.
  else if (store !== null && sink !== null) score = Math.max(0, 1 - wrong / Math.max(1, store + (n("extra") ?? 0)));
  return { days, differing, store, sink, score: score === null ? null : Math.round(score * 10_000) / 10_000 };
}

export function monitoringRoutes(deps: MonitoringDeps, requests: RequestStats, started: number): Hono {
  const app = new Hono();
  const proc = createProcessStats();

  const status = describe({ summary: "The service at a glance: health, jobs, alerts, sinks", tags: TAGS, responses: { 200: json(StatusBody, "the status") } });
  app.get("/status", status, async (c) => {
    const h = await deps.health.check();
    const jobs = deps.scheduler?.list() ?? [];
    const alerts = deps.alerts?.list() ?? [];
    const firing = alerts.filter((a) => a.status === "firing");
    return c.json(
      redactValue({
        status: h.status,
        ready: h.ready,
        service: "ticksync",
        version: deps.version ?? "dev",
        uptimeSeconds: Math.round((Date.now() - started) / 1000),
        timestamp: new Date().toISOString(),
        checks: healthBody(h).checks,
        jobs: { total: jobs.length, running: jobs.filter((j) => j.running).map((j) => j.name), failing: jobs.filter((j) => j.lastOutcome === "failed").map((j) => j.name) },
        alerts: { total: alerts.length, firing: firing.map((a) => a.name), acknowledged: firing.filter((a) => a.acknowledged).map((a) => a.name) },
        sinks: (deps.sinks ?? []).map((s) => s.name),
      } satisfies Body<typeof StatusBody>),
    );
  });

  const performance = describe({ summary: "CPU, memory, event-loop lag, request latency and rows per second", tags: TAGS, responses: { 200: json(PerformanceBody, "the process's performance") } });
  app.get("/performance", performance, async (c) => {
    const r = await rates(deps.store, { windowSeconds: ROWS_WINDOW_S, bucketSeconds: 60, maxRuns: ROWS_MAX_RUNS });
    const mean = (k: "ingestRead" | "ingestStored" | "quarantined" | "synced") => Math.round((r.points.reduce((s, p) => s + p[k], 0) / Math.max(1, r.points.length)) * 1000) / 1000;
    return c.json({
      timestamp: new Date().toISOString(),
      uptimeSeconds: Math.round((Date.now() - started) / 1000),
      ...proc.sample(),
      requests: requests.summary(),
      rowsPerSecond: { windowSeconds: ROWS_WINDOW_S, read: mean("ingestRead"), stored: mean("ingestStored"), quarantined: mean("quarantined"), synced: mean("synced") },
    } satisfies Body<typeof PerformanceBody>);
  });

  const integrity = describe({ summary: "Each sink collection's last verify, as an integrity score", tags: TAGS, responses: { 200: json(IntegrityBody, "per collection, and the lowest score") } });
  app.get("/integrity", integrity, async (c) => {
    const now = Date.now();
    const data = await Promise.all(
      (deps.sinks ?? []).flatMap((s) =>
        s.collections.map(async (collection) => {
          const cp = await deps.store.getCheckpoint(verifyStream({ name: s.name, collection }));
          const k = cp?.cursor as Record<string, unknown> | undefined;
          const i = integrityOf(k);
          const checkedAt = typeof k?.checkedAt === "number" ? k.checkedAt : null;
          return {
            sink: s.name,
            collection,
            status: k?.status === "consistent" ? ("consistent" as const) : k?.status === "inconsistent" ? ("inconsistent" as const) : ("unverified" as const),
            verifiedAt: checkedAt === null ? null : new Date(checkedAt).toISOString(),
            ageSeconds: checkedAt === null ? null : Math.round((now - checkedAt) / 1000),
            storeRecords: i.store,
            sinkRecords: i.sink,
            missing: typeof k?.missing === "number" ? k.missing : null,
            extra: typeof k?.extra === "number" ? k.extra : null,
            changed: typeof k?.changed === "number" ? k.changed : null,
            checksummedDays: i.days,
            differingDays: i.differing,
            integrityScore: i.score,
          };
        }),
      ),
    );
    const scored = data.filter((d) => d.integrityScore !== null).map((d) => d.integrityScore!);
    return c.json({ timestamp: new Date(now).toISOString(), integrityScore: scored.length ? Math.min(...scored) : null, verified: scored.length, unverified: data.length - scored.length, data } satisfies Body<typeof IntegrityBody>);
  });

  const backups = describe({ summary: "The backups of every backup job, newest first", tags: TAGS, responses: { 200: json(BackupsBody, "the backups") } });
  app.get("/backups", backups, (c) => {
    const data = (deps.backups ?? []).flatMap((b) =>
      listBackups(b.dir, MAX_BACKUPS).map((x) =>
        x.manifest
          ? { job: b.job, name: x.name, file: x.manifest.file, createdAt: x.manifest.createdAt, kind: x.manifest.kind, bytes: x.manifest.bytes, sha256: x.manifest.sha256, counts: x.manifest.counts, error: null }
          : { job: b.job, name: x.name, file: null, createdAt: null, kind: null, bytes: null, sha256: null, counts: null, error: x.error },
      ),
    );
    data.sort((a, b) => (b.createdAt ?? "").localeCompare(a.createdAt ?? ""));
    return c.json({ data: redactValue(data), jobs: (deps.backups ?? []).map((b) => b.job) } satisfies Body<typeof BackupsBody>);
  });

  // POST /api/jobs/<backup job>/run, naming the job when there is more than one.
  const trigger = describe({
    summary: "Start a backup now (POST /api/jobs/<backup job>/run)",
    tags: TAGS,
    requestBody: body(TriggerBackupBody, "the backup job, needed when there is more than one"),
    responses: {
      202: json(BackupStartedBody, "started"),
      400: json(BackupChoiceBody, "Bad Request: several backup jobs and none named (or the query is invalid)"),
      404: json(BackupChoiceBody, "Not Found: no backup job is configured, or no such job"),
      409: json(BusyBody, "Conflict: the backup is running"),
    },
  });
  app.post("/trigger_backup", trigger, requireScope("operate"), async (c) => {
    const parsed = await optionalJsonBody(c, TriggerBackupBody);
    if ("response" in parsed) return parsed.response;
    const body = parsed.output;
    const jobs = (deps.backups ?? []).map((b) => b.job);
    if (!deps.scheduler || jobs.length === 0) return c.json({ error: "no backup job is configured", message: 'add [[jobs]] kind = "backup" (docs/operations.md#backups)' }, 404);
    const job = typeof body.job === "string" ? body.job : jobs.length === 1 ? jobs[0]! : null;
    if (job === null) return c.json({ error: "which backup job?", message: `name one: {"job": "…"} (${jobs.join(", ")})`, jobs }, 400);
    if (!jobs.includes(job)) return c.json({ error: "unknown backup job", job: job.slice(0, 100), jobs }, 404);
    const r = await withActor(apiActor(c), () => deps.scheduler!.trigger(job));
    if (r === "busy") return c.json({ status: "busy", job, message: "the backup is running; it does not overlap itself" } satisfies Body<typeof BusyBody>, 409);
    if (r === "unknown") return c.json({ error: "unknown backup job", job, jobs }, 404);
    return c.json({ status: "started", job } satisfies Body<typeof BackupStartedBody>, 202);
  });

  // POST /api/alerts/<name>/ack, with the alert named in the body.
  const ack = describe({
    summary: "Acknowledge a firing alert (POST /api/alerts/<name>/ack)",
    tags: TAGS,
    requestBody: body(AcknowledgeAlertBody, "the alert (alert, name, alert_id or id) and who acknowledges"),
    responses: { 200: json(AlertBody, "the alert's state"), 400: error("Bad Request: no alert named (or the query is invalid)"), 404: error("Not Found: no alerts are configured, or no such alert") },
  });
  app.post("/acknowledge_alert", ack, requireScope("operate"), async (c) => {
    const parsed = await optionalJsonBody(c, AcknowledgeAlertBody);
    if ("response" in parsed) return parsed.response;
    const body = parsed.output;
    const name = body.alert ?? body.name ?? body.alert_id ?? body.id;
    if (!name) return c.json({ error: "which alert?", message: 'name it: {"alert": "<name>", "by": "…"}' }, 400);
    return acknowledge(c, deps, name, body.by);
  });
  return app;
}
