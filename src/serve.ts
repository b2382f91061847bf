// The wiring of `ticksync serve`: the store, the scheduler with the config's jobs (the job-kind
// registry makes their runners), the scheduler lease across replicas, the live feed's hub, alerts,
// and the HTTP app, until SIGINT/SIGTERM. The command's flags are cli/serve.ts's.
import { dirname, resolve } from "node:path";
import pkg from "../package.json" with { type: "json" };
import type { LoadedConfig } from "./config/load.ts";
import { isOpen } from "./domain/calendar.ts";
import { createApp } from "./http/app.ts";
import { log } from "./lib/log.ts";
import { ticksyncMetrics, type TicksyncMetrics } from "./lib/metrics.ts";
import { redactUrl } from "./lib/redact.ts";
import { createAlerts, emailNotifier, webhookNotifier, type AlertInputs, type Alerts } from "./monitor/alerts.ts";
import { auditedStore } from "./monitor/audit.ts";
import { createHealth, type Health } from "./monitor/health.ts";
import { sinkStream } from "./pipeline/sync.ts";
import { consistencyOf, verifyStream } from "./pipeline/verify-sink.ts";
import { jobGate, jobRunner } from "./scheduler/jobs/registry.ts";
import { holdSchedulerLease, jobClaims, type SchedulerLease } from "./scheduler/lease.ts";
import { startShardWorker } from "./scheduler/shards.ts";
import { useSharedRates } from "./lib/ratelimit.ts";
import { pgCoordination, type PgCoordination } from "./stores/postgres/limits.ts";
import { triggerOnEvents } from "./scheduler/on-events.ts";
import { createScheduler, type Scheduler } from "./scheduler/scheduler.ts";
import { createSink, type Sink } from "./sinks/registry.ts";
import { createSource } from "./sources/registry.ts";
import { openStore } from "./stores/open.ts";
import { storeFor } from "./stores/registry.ts";
import type { ChangePosition, Store } from "./stores/types.ts";
import { createHub, type Hub } from "./stream/hub.ts";
import { streamWebSocket } from "./stream/ws.ts";
import { compatApp } from "./stream/compat-ws.ts";
import { jobScope, readGuard, securityMiddleware } from "./http/security.ts";
import { errorText } from "./lib/errors.ts";

/** serve could not start: the store would not open, or the address would not bind. */
export class ServeError extends Error {
  override name = "ServeError";
  constructor(
    readonly reason: "store" | "listen",
    message: string,
    override readonly cause: unknown,
  ) {
    super(message);
  }
}

type Opened = {
  loaded: LoadedConfig;
  store: Store;
  metrics: TicksyncMetrics;
  lease: SchedulerLease;
  sinks: Map<string, Sink>;
  shutdown: AbortController;
  /** PostgreSQL: replicas share the jobs (claims, shard leases) and the providers' rate limits. */
  coordination: PgCoordination | null;
};

async function openServeStore(url: string): Promise<Store> {
  try {
    const store = auditedStore(openStore(url));
    const m = await store.migrate();
    log.info("store ready", { store: store.kind, location: store.location, schemaVersion: m.version, applied: m.applied });
    // Materialised rollups (Postgres) serve /api/bars: this process works off the runs queued for
    // them, now and after each run it finishes, in the background (answers roll up on read meanwhile).
    store.rollUpInBackground?.();
    return store;
  } catch (e) {
    throw new ServeError("store", `cannot open the store ${redactUrl(url)}`, e);
  }
}

/** The scheduler with every job of the config, run on the replica that holds the lease. */
function scheduleJobs(o: Opened): Scheduler {
  const { config } = o.loaded;
  const leaseMs = config.server.leaseSeconds * 1000;
  const claims = o.coordination ? jobClaims(o.coordination, { replica: o.lease.replica, leaseMs }) : undefined;
  const scheduler = createScheduler({ isLeader: o.lease.isLeader, claims });
  const ctx = { store: o.store, sinks: o.sinks, metrics: o.metrics, signal: o.shutdown.signal, settings: o.loaded, storeUrl: config.store.url, retentionRules: config.retention.rules };
  for (const job of config.jobs)
    scheduler.add({
      name: job.name,
      schedule: job.schedule,
      timeZone: job.timeZone,
      runOnStart: job.runOnStart,
      gate: jobGate(job, o.loaded),
      run: jobRunner(job, ctx),
    });
  return scheduler;
}

/** Replicas on PostgreSQL coordinate through a small pool of their own; other stores are one process. */
function openCoordination(store: Store, url: string): PgCoordination | null {
  if (store.kind !== "postgres") return null;
  const c = pgCoordination(url);
  useSharedRates(c);
  return c;
}

/** Every replica takes shards of the backfill jobs (on a single-process store, under its own leases; on QuestDB, the leader). */
function startShards(o: Opened) {
  const jobs = new Map(o.loaded.config.jobs.flatMap((j) => (j.kind === "backfill" ? [[j.name, { slots: j.shardsPerReplica ?? 2 }] as const] : [])));
  if (jobs.size === 0) return { stop: async () => {} };
  const leaseMs = o.loaded.config.server.leaseSeconds * 1000;
  // QuestDB: one process writes at a time (its journal's numbering), so only the leader takes shards.
  const leaderOnly = o.store.kind === "questdb" ? o.lease.isLeader : undefined;
  return startShardWorker({ store: o.store, leases: o.coordination ?? o.store, settings: o.loaded, metrics: o.metrics, replica: o.lease.replica, leaseMs, jobs, signal: o.shutdown.signal, leaderOnly });
}

/** What the alert rules read: market hours, sink backlogs, the sinks' last verify, the data's disk. */
function alertInputs(o: Opened, health: Health): AlertInputs {
  const { store, sinks, loaded } = o;
  return {
    isOpen: (market, at) => isOpen(market, at.getTime(), ["open"]),
    // Each sink collection's last verify, as kept in the store (the same status /api/sinks shows).
    consistency: async () =>
      Promise.all(
        [...sinks.values()].flatMap((s) =>
          s.collections.map(async (collection) => {
            const k = consistencyOf({ name: s.name, collection }, await store.getCheckpoint(verifyStream({ name: s.name, collection })));
            return { sink: k.sink, collection: k.collection, status: k.status, differingDays: k.differingDays };
          }),
        ),
      ),
    sinkBacklog: async (name, atMost) => {
      const sink = sinks.get(name);
      if (!sink) return 0;
      const cp = await store.getCheckpoint(sinkStream(sink));
      const after = cp && typeof cp.cursor.runId === "number" ? (cp.cursor as ChangePosition) : null;
      return (await store.changedBars({ after, uptoRun: Number.MAX_SAFE_INTEGER, limit: atMost + 1, sources: sink.config.sources })).length;
    },
    dataPath: dataPath(loaded),
    // The same probe round /api/health shows (cached for server.healthCacheSeconds).
    dependencies: async () => (await health.check()).dependencies,
  };
}

/** Every dependency's probe: the store, each sink (a real call), the sources' runs, scheduler, lease, disk. */
function healthChecks(o: Opened, scheduler: Scheduler): Health {
  const { config } = o.loaded;
  return createHealth({
    store: o.store,
    sinks: [...o.sinks.values()].map((s) => ({ name: s.name, kind: s.kind, location: s.location, probe: () => s.probe() })),
    sources: Object.keys(config.sources),
    jobs: () => scheduler.list(),
    lease: o.lease,
    dataPath: dataPath(o.loaded),
    readiness: config.server.readiness,
    cacheMs: config.server.healthCacheSeconds * 1000,
  });
}

/** Where the disk alert looks: a local file store's folder, else the config file's. */
function dataPath(loaded: LoadedConfig): string {
  const url = loaded.config.store.url;
  const localFile = storeFor(url).localFile;
  return localFile ? dirname(resolve(localFile(url))) : loaded.baseDir;
}

/** Alerts evaluated on their interval by the leader; notifications go to the webhook and e-mail. */
function startAlerts(o: Opened, health: Health): { alerts: Alerts | undefined; stop: () => void } {
  const cfg = o.loaded.config.alerts;
  if (!cfg.rules.length) return { alerts: undefined, stop: () => {} };
  // Pocketbase sinks with mirrors.alerts keep the app's alerts collection in step.
  const pbAlerts = [...o.sinks.values()].flatMap((s) => s.alertsNotifier() ?? []);
  const notifiers = [...(cfg.webhook ? [webhookNotifier(cfg.webhook)] : []), ...(cfg.email ? [emailNotifier(cfg.email)] : []), ...pbAlerts];
  const alerts = createAlerts(o.store, cfg, alertInputs(o, health), notifiers);
  const evaluate = async () => {
    if (!o.lease.isLeader()) return; // one replica announces
    try {
      for (const a of await alerts.evaluate()) o.metrics.alertFiring.set({ alert: a.name, severity: a.severity }, a.status === "firing" ? 1 : 0);
    } catch (e) {
      log.error("alert evaluation failed", { error: errorText(e) });
    }
  };
  const timer = setInterval(() => void evaluate(), cfg.intervalS * 1000);
  setTimeout(() => void evaluate(), 1000);
  return { alerts, stop: () => clearInterval(timer) };
}

/** The live feed: the hub tails the store's event journal; sync jobs with onEvents follow it. */
async function startFeed(o: Opened, scheduler: Scheduler): Promise<{ hub: Hub; unwatch: (() => Promise<void>) | null }> {
  const { config } = o.loaded;
  const hub = createHub({ store: o.store, metrics: o.metrics, config: config.stream, replay: config.replay });
  await hub.start();
  for (const job of config.jobs.filter((j) => j.kind === "sync" && j.onEvents))
    triggerOnEvents({ scheduler, job: job.name, subscribe: (onEvent) => hub.bus.subscribe(onEvent), isLeader: o.lease.isLeader });
  // Another replica's (or process's) commits: Postgres says so at once; the hub also polls.
  const unwatch = await o.store.watchEvents(() => void hub.poke()).catch((e) => {
    log.warn("cannot listen for other processes' commits; polling only", { error: errorText(e) });
    return null;
  });
  return { hub, unwatch };
}

/** The HTTP app over everything serve opened. */
function buildApp(o: Opened, scheduler: Scheduler, hub: Hub, alerts: Alerts | undefined, health: Health) {
  const { config, baseDir } = o.loaded;
  // Quarantine replay validates raw rows with the source's settings as the config has them now.
  const replayContext = (name: string) => {
    const cfg = config.sources[name];
    if (!cfg) return null;
    const src = createSource(name, cfg, baseDir, { universes: config.universes });
    return { source: name, interval: src.interval, market: src.market, tsFormat: src.tsFormat, timeZone: src.timeZone };
  };
  return createApp({
    store: o.store,
    metrics: o.metrics,
    scheduler,
    maxPageSize: config.server.maxPageSize,
    version: pkg.version,
    sinks: [...o.sinks.values()],
    stream: { hub, config: config.stream },
    replay: config.replay,
    alerts,
    security: config.server,
    replayContext,
    indicators: config.indicators,
    universes: config.universes,
    health,
    jobScopes: new Map(config.jobs.map((j) => [j.name, jobScope(j, config.sources)])),
    backups: config.jobs.flatMap((j) => (j.kind === "backup" ? [{ job: j.name, dir: resolve(baseDir, j.dir ?? "backups") }] : [])),
  });
}

/** The replaced streaming service's protocol on its own port (`stream.compat.port`), when configured; same guards as /api/ws. */
function startCompatListener(o: Opened, hub: Hub): ReturnType<typeof Bun.serve> | null {
  const { stream, server } = o.loaded.config;
  const cfg = stream.compat;
  if (cfg.port === undefined) return null;
  const guards = [...securityMiddleware(server, { skip: () => true, streamTokens: stream.tokens }), readGuard(server, stream.tokens)];
  try {
    const listener = Bun.serve({ hostname: cfg.host, port: cfg.port, fetch: compatApp(hub, hub.compat(), guards).fetch, websocket: streamWebSocket(stream) });
    log.info("compatibility stream listening", { url: `ws://${listener.hostname}:${listener.port}` });
    return listener;
  } catch (e) {
    throw new ServeError("listen", `cannot listen on ${cfg.host}:${cfg.port} (stream.compat)`, e);
  }
}

/**
 * Runs the service until SIGINT/SIGTERM (a second signal ends the process at once, 130).
 * `onListening` gets the URL it listens on (port 0 picks a free one). Throws ServeError when it
 * cannot start.
 */
export async function serve(loaded: LoadedConfig, onListening: (url: string) => void): Promise<void> {
  const { config } = loaded;
  const store = await openServeStore(config.store.url);
  const metrics = ticksyncMetrics();
  for (const [job, t] of await store.lastSuccessByJob()) metrics.lastSuccess.set({ job }, Math.floor(t / 1000));
  const lease = await holdSchedulerLease(store, { leaseMs: config.server.leaseSeconds * 1000, metrics });
  const shutdown = new AbortController();
  const coordination = openCoordination(store, config.store.url);
  const sinks = new Map(Object.entries(config.sinks).map(([name, cfg]) => [name, createSink(name, cfg, { signal: shutdown.signal })]));
  const opened: Opened = { loaded, store, metrics, lease, sinks, shutdown, coordination };
  const scheduler = scheduleJobs(opened);
  const { hub, unwatch } = await startFeed(opened, scheduler);
  const health = healthChecks(opened, scheduler);
  const alerting = startAlerts(opened, health);
  const app = buildApp(opened, scheduler, hub, alerting.alerts, health);
  let server: ReturnType<typeof Bun.serve>;
  let compatServer: ReturnType<typeof Bun.serve> | null = null;
  try {
    server = Bun.serve({ hostname: config.server.host, port: config.server.port, fetch: app.fetch, websocket: streamWebSocket(config.stream) });
    try {
      compatServer = startCompatListener(opened, hub);
    } catch (e) {
      await server.stop();
      throw e;
    }
  } catch (e) {
    await hub.stop();
    await store.close();
    throw e instanceof ServeError ? e : new ServeError("listen", `cannot listen on ${config.server.host}:${config.server.port}`, e);
  }
  onListening(`http://${server.hostname}:${server.port}`);
  log.info("listening", { url: `http://${server.hostname}:${server.port}`, jobs: config.jobs.map((j) => j.name) });
  scheduler.start();
  const shards = startShards(opened);
  return new Promise<void>((stopped) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) process.exit(130);
      stopping = true;
      log.info("shutting down", { signal });
      shutdown.abort();
      lease.stopRenewing();
      alerting.stop();
      await unwatch?.().catch(() => {});
      await lease.release();
      await hub.stop();
      await server.stop();
      await compatServer?.stop();
      await scheduler.stop();
      await shards.stop();
      useSharedRates(null);
      await coordination?.close().catch(() => {});
      await store.close();
      stopped();
    };
    process.on("SIGINT", () => void stop("SIGINT"));
    process.on("SIGTERM", () => void stop("SIGTERM"));
  });
}
