#!/usr/bin/env bun
// CLI entry: parses the command line, loads config, and hands off. No business logic here.
import { parseArgs } from "node:util";
import { existsSync } from "node:fs";
import pkg from "../package.json" with { type: "json" };
import { ConfigError, configJsonSchema, loadConfig, type LoadedConfig } from "./config/load.ts";
import { EXIT, HELP } from "./config/help.ts";
import { openStore } from "./stores/open.ts";
import type { Store } from "./stores/types.ts";
import { ingestFromConfig } from "./pipeline/run.ts";
import type { IngestSummary } from "./pipeline/ingest.ts";
import { ticksyncMetrics } from "./lib/metrics.ts";
import { log, setLogLevel } from "./lib/log.ts";
import { createScheduler } from "./scheduler/scheduler.ts";
import { createApp } from "./http/app.ts";
import { createHub } from "./stream/hub.ts";
import { streamWebSocket } from "./stream/ws.ts";
import { createSource, type SourceConfig } from "./sources/registry.ts";
import { createProgressReporter } from "./pipeline/progress.ts";
import { formatUniverseList, listUniverses, resolveUniverse } from "./universes/universes.ts";
import { parseTimestamp } from "./domain/time.ts";
import { migrateStore, verifyStores } from "./pipeline/migrate.ts";
import { createSink, type Sink } from "./sinks/registry.ts";
import { syncSink, type SyncSummary } from "./pipeline/sync.ts";
import { verifySinkAll, type SinkVerifyResult } from "./pipeline/verify-sink.ts";
import type { TicksyncMetrics } from "./lib/metrics.ts";
import { BackupError, backupStore, restoreStore } from "./monitor/backup.ts";
import { runGapfill } from "./pipeline/gapfill.ts";
import { runRetention } from "./pipeline/retention.ts";
import { auditedStore, cliActor, withActor } from "./monitor/audit.ts";
import { dirname, join, resolve } from "node:path";
import { hostname } from "node:os";
import { createAlerts, emailNotifier, webhookNotifier } from "./monitor/alerts.ts";
import { isOpen } from "./domain/calendar.ts";
import { sinkStream } from "./pipeline/sync.ts";
import { sqlitePath } from "./stores/sqlite/index.ts";
import { importInstruments } from "./pipeline/instruments.ts";
import { INSTRUMENT_COLUMNS, isInstrumentColumn, type InstrumentColumn } from "./sources/instruments.ts";
import { isMarket } from "./domain/symbols.ts";
import { marketChoices, type Market } from "./domain/markets/index.ts";
import { redact, redactUrl } from "./lib/redact.ts";

class UsageError extends Error {}

/** Every store the CLI opens records, on each run it starts, who started it. */
const openAuditedStore = (url: string): Store => auditedStore(openStore(url));

// Everything the CLI prints is scrubbed of secrets (src/lib/redact.ts): URL passwords and every
// secret the config holds.
const out = (s: string) => process.stdout.write(redact(s.endsWith("\n") ? s : s + "\n"));
const err = (s: string) => process.stderr.write(redact(s.endsWith("\n") ? s : s + "\n"));
/** An error as one line: its message (a stack only with TICKSYNC_DEBUG=1). */
const oneLine = (e: unknown) => (process.env.TICKSYNC_DEBUG === "1" && e instanceof Error && e.stack ? e.stack : String((e as Error)?.message ?? e).replace(/\s*\n\s*/g, " "));

type Flags = Record<string, string | boolean | string[] | undefined>;

function parse(argv: string[], options: NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>["options"]>): { values: Flags; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" }, config: { type: "string", short: "c" } }, allowPositionals: true, strict: true });
    return { values: r.values as Flags, positionals: r.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function configPath(flag: unknown): string | null {
  if (typeof flag === "string") return flag;
  if (process.env.TICKSYNC_CONFIG) return process.env.TICKSYNC_CONFIG;
  for (const f of ["ticksync.toml", "ticksync.json"]) if (existsSync(f)) return f;
  return null;
}

function intFlag(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !/^\d+$/.test(value)) throw new UsageError(`--${name} expects a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

async function withStore<T>(loaded: LoadedConfig, fn: (store: Store) => Promise<T>): Promise<T> {
  let store: Store;
  try {
    store = openAuditedStore(loaded.config.store.url);
    await store.migrate();
  } catch (e) {
    err(`ticksync: cannot open the store ${redactUrl(loaded.config.store.url)}: ${oneLine(e)}`);
    process.exit(EXIT.store);
  }
  try {
    return await fn(store);
  } finally {
    // The event journal keeps a copy of each stored bar for the stream's replay; a CLI-only
    // setup (no serve to prune it) trims it here to the same retention.
    await store.pruneEvents(Date.now() - loaded.config.stream.retentionDays * 86_400_000).catch(() => {});
    await store.close();
  }
}

function printSummary(s: IngestSummary) {
  // A run that read nothing has no quality to speak of (its score of 1 would claim a perfect run).
  const score = s.read === 0 ? "n/a (0 rows)" : s.quality ? s.quality.score.toFixed(3) : "-";
  out(
    `${s.source}: ${s.outcome} in ${(s.durationMs / 1000).toFixed(2)}s — read ${s.read}, inserted ${s.inserted}, updated ${s.updated}, ` +
      `unchanged ${s.unchanged}, quarantined ${s.quarantined}, quality ${score}` +
      (s.gapWarnings ? `, ${s.gapWarnings} gap warnings` : "") +
      ` (run ${s.runId})`,
  );
  const causes = Object.entries(s.failedStreams ?? {});
  if (causes.length) {
    out(`  failures by cause:`);
    for (const [cause, streams] of causes) out(`    ${cause}: ${s.failures?.[cause] ?? streams.length} (${streams.join(", ")}${(s.failures?.[cause] ?? 0) > streams.length ? ", …" : ""})`);
    if (s.belowMinQuality) out(`  quality gate: ${s.quality!.score.toFixed(3)} is below minQuality ${s.minQuality}`);
  } else if (s.error) out(`  error: ${s.error}`);
  if (s.quality && Object.keys(s.quality.rules).length) out(`  rules: ${Object.entries(s.quality.rules).map(([k, n]) => `${k}=${n}`).join(" ")}`);
}

function sourceFromFlags(v: Flags): { name: string; cfg: SourceConfig } | null {
  const common = {
    ...(typeof v.symbol === "string" ? { symbol: v.symbol } : {}),
    ...(typeof v.market === "string" ? { market: v.market } : {}),
    ...(typeof v.interval === "string" ? { interval: v.interval } : {}),
  };
  let columns: Record<string, string> | undefined;
  if (typeof v.columns === "string") {
    columns = {};
    for (const pair of v.columns.split(",")) {
      const [field, col] = pair.split("=");
      if (!field || !col) throw new UsageError(`--columns expects field=column pairs, got ${JSON.stringify(pair)}`);
      columns[field.trim()] = col.trim();
    }
  }
  if (typeof v.file === "string") {
    const layout = (v.layout as string | undefined) ?? (columns ? "generic" : "stooq");
    return {
      name: (v.name as string | undefined) ?? (layout === "generic" ? "csv" : "stooq"),
      cfg: {
        type: "csv",
        path: v.file,
        layout,
        ...common,
        ...(columns ? { columns } : {}),
        ...(typeof v.delimiter === "string" ? { delimiter: v.delimiter } : {}),
        ...(typeof v.decimal === "string" ? { decimal: v.decimal } : {}),
      } as SourceConfig,
    };
  }
  if (typeof v.sqlite === "string")
    return {
      name: (v.name as string | undefined) ?? "sqlite",
      cfg: { type: "sqlite", path: v.sqlite, ...(typeof v.table === "string" ? { table: v.table } : {}), ...common, ...(columns ? { columns } : {}) } as SourceConfig,
    };
  return null;
}

async function cmdIngest(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, {
    source: { type: "string", multiple: true },
    file: { type: "string" },
    layout: { type: "string" },
    sqlite: { type: "string" },
    table: { type: "string" },
    columns: { type: "string" },
    symbol: { type: "string" },
    market: { type: "string" },
    interval: { type: "string" },
    delimiter: { type: "string" },
    decimal: { type: "string" },
    name: { type: "string" },
    store: { type: "string" },
    "batch-size": { type: "string" },
    "fail-on-quarantine": { type: "boolean" },
    json: { type: "boolean" },
  });
  if (v.help) return out(HELP.ingest!), EXIT.ok;
  const fromFlags = sourceFromFlags(v);
  // A source given by flags becomes an ordinary config source, validated by the same schema.
  const loaded = loadConfig(configPath(v.config), process.env, {
    store: { url: v.store as string | undefined },
    ingest: { batchSize: intFlag("batch-size", v["batch-size"]) },
    sources: fromFlags ? { [fromFlags.name]: fromFlags.cfg } : undefined,
  });
  setLogLevel(loaded.config.log.level);
  const names = fromFlags ? [fromFlags.name] : ((v.source as string[] | undefined) ?? Object.keys(loaded.config.sources));
  for (const n of names)
    if (!loaded.config.sources[n]) throw new UsageError(`source ${n} is not defined in the config (defined: ${Object.keys(loaded.config.sources).join(", ") || "none"})`);
  if (names.length === 0) throw new UsageError("nothing to ingest: give --file, --sqlite or --source, or define sources in the config");

  const signal = interruptible();
  return withStore(loaded, async (store) => {
    const summaries: IngestSummary[] = [];
    for (const name of names) {
      const progress = createProgressReporter({ unit: loaded.config.sources[name]!.type === "csv" ? "files" : "streams" });
      // One stream shows no progress line, unless it has to wait (then from that wait on).
      let waited = false;
      const s = await ingestFromConfig({ loaded, store, source: name, signal, onProgress: (p) => (p.total > 1 || (waited ||= Boolean(p.waiting))) && progress.update(p) });
      progress.finish();
      summaries.push(s);
      if (!v.json) printSummary(s);
    }
    if (v.json) out(JSON.stringify(summaries, null, 2));
    if (summaries.some((s) => s.outcome !== "succeeded" && (s.readFailed || !s.belowMinQuality))) return EXIT.runFailed;
    if (summaries.some((s) => s.belowMinQuality)) return EXIT.quarantined;
    if (v["fail-on-quarantine"] && summaries.some((s) => s.quarantined > 0)) return EXIT.quarantined;
    return EXIT.ok;
  });
}

async function cmdServe(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, { host: { type: "string" }, port: { type: "string" }, store: { type: "string" } });
  if (v.help) return out(HELP.serve!), EXIT.ok;
  const loaded = loadConfig(configPath(v.config), process.env, {
    store: { url: v.store as string | undefined },
    server: { host: v.host as string | undefined, port: intFlag("port", v.port) },
  });
  const { config } = loaded;
  setLogLevel(config.log.level);
  let store: Store;
  try {
    store = openAuditedStore(config.store.url);
    const m = await store.migrate();
    log.info("store ready", { store: store.kind, location: store.location, schemaVersion: m.version, applied: m.applied });
    // Materialised rollups (Postgres) serve /api/bars: this process works off the runs queued for
    // them, now and after each run it finishes, in the background (answers roll up on read meanwhile).
    store.rollUpInBackground?.();
  } catch (e) {
    err(`ticksync: cannot open the store ${redactUrl(config.store.url)}: ${oneLine(e)}`);
    return EXIT.store;
  }
  const metrics = ticksyncMetrics();
  for (const [job, t] of await store.lastSuccessByJob()) metrics.lastSuccess.set({ job }, Math.floor(t / 1000));
  // Replicas: the holder of the "scheduler" lease in the store runs the scheduled jobs; the others
  // take over within leaseSeconds when it stops renewing. A single process simply holds it.
  const replica = `${hostname()}:${process.pid}:${Date.now().toString(36)}`;
  const leaseMs = config.server.leaseSeconds * 1000;
  let leader = false;
  const renewLease = async () => {
    try {
      const now = await store.tryLease("scheduler", replica, leaseMs);
      if (now !== leader) log.info(now ? "leading: this replica runs the scheduled jobs" : "following: another replica runs the scheduled jobs", { replica });
      leader = now;
    } catch (e) {
      // Unsure whether we still hold it: stop leading rather than run jobs twice.
      if (leader) log.warn("lease renewal failed; following until it succeeds", { error: (e as Error).message });
      leader = false;
    }
    metrics.leader.set({ replica }, leader ? 1 : 0);
  };
  await renewLease();
  const leaseTimer = setInterval(() => void renewLease(), Math.max(250, leaseMs / 3));
  const scheduler = createScheduler({ isLeader: () => leader });
  const shutdown = new AbortController();
  const sinks = new Map(Object.entries(config.sinks).map(([name, cfg]) => [name, createSink(name, cfg, { signal: shutdown.signal })]));
  for (const job of config.jobs)
    scheduler.add({
      name: job.name,
      schedule: job.schedule,
      timeZone: job.timeZone,
      runOnStart: job.runOnStart,
      gate: job.market ? { market: job.market, phases: job.phases ?? ["open"] } : undefined,
      run:
        job.kind === "sync"
          ? async () => {
              const all = await syncWithMetrics(store, sinks.get(job.sink!)!, metrics, { job: job.name, signal: shutdown.signal, baseDir: loaded.baseDir });
              return { outcome: all.find((s) => s.outcome !== "succeeded")?.outcome ?? "succeeded" };
            }
          : job.kind === "verify"
            ? async () => {
                const sink = sinks.get(job.sink!)!;
                let results = await verifySinkAll(store, sink, { repair: job.repair, baseDir: loaded.baseDir });
                if (job.repair && results.some((r) => r.repaired)) results = await verifySinkAll(store, sink, { baseDir: loaded.baseDir });
                for (const r of results)
                  log[r.ok ? "info" : "warn"]("sink verified", { sink: r.sink, collection: r.collection, ok: r.ok, differingDays: r.differing.length, missing: r.missing, extra: r.extra, changed: r.changed });
                return { outcome: "succeeded" };
              }
            : job.kind === "backup"
              ? async () => {
                  const r = await backupStore(config.store.url, resolve(loaded.baseDir, job.dir ?? "backups"), { keep: job.keep });
                  log.info("backup written", { file: r.manifest.file, bytes: r.manifest.bytes, sha256: r.manifest.sha256, removed: r.removed.length });
                  return { outcome: "succeeded" };
                }
              : job.kind === "gapfill"
                ? async () => {
                    const r = await runGapfill({ loaded, store, source: job.source!, job: job.name, lookbackDays: job.lookbackDays ?? 365, metrics, signal: shutdown.signal });
                    return { outcome: r.outcome };
                  }
                : job.kind === "retention"
                  ? async () => (await runRetention(store, config.retention.rules, { job: job.name, metrics })).outcome === "succeeded" ? { outcome: "succeeded" } : { outcome: "failed" }
                  : () => ingestFromConfig({ loaded, store, source: job.source!, job: job.name, metrics, signal: shutdown.signal }),
    });
  // The live feed: the hub tails the store's event journal and serves /api/ws and /api/stream.
  const hub = createHub({ store, metrics, config: config.stream });
  await hub.start();
  // Sinks follow the event bus: a sync job with onEvents runs a second after bars were stored
  // (on the leader; a run in progress is not doubled: the scheduler skips overlaps).
  for (const job of config.jobs.filter((j) => j.kind === "sync" && j.onEvents)) {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const arm = () => {
      if (timer || !leader) return;
      timer = setTimeout(async () => {
        timer = null;
        // Running already: bars stored meanwhile may be past its reading, so try again after it.
        const r = await withActor({ by: "system", what: `events → ${job.name}` }, () => scheduler.trigger(job.name));
        if (r === "busy") arm();
      }, 1000);
    };
    hub.bus.subscribe(arm);
  }
  // Another replica's (or process's) commits: Postgres says so at once; the hub also polls.
  const unwatch = await store.watchEvents(() => void hub.poke()).catch((e) => {
    log.warn("cannot listen for other processes' commits; polling only", { error: (e as Error).message });
    return null;
  });
  // Alerts: evaluated on their interval; notifications go to the webhook and e-mail configured.
  const alerts = config.alerts.rules.length
    ? createAlerts(
        store,
        config.alerts,
        {
          isOpen: (market, at) => isOpen(market, at.getTime(), ["open"]),
          consistency: async () => ((await (await app.request("/api/sinks")).json()) as any).data.flatMap((s: any) => s.collections.map((c: any) => ({ sink: s.name, collection: c.collection, status: c.consistency.status, differingDays: c.consistency.differingDays }))),
          sinkBacklog: async (name, atMost) => {
            const sink = sinks.get(name);
            if (!sink) return 0;
            const cp = await store.getCheckpoint(sinkStream(sink));
            const after = cp && typeof cp.cursor.runId === "number" ? (cp.cursor as any) : null;
            return (await store.changedBars({ after, uptoRun: Number.MAX_SAFE_INTEGER, limit: atMost + 1, sources: sink.config.sources })).length;
          },
          dataPath: store.kind === "sqlite" ? dirname(resolve(sqlitePath(config.store.url))) : loaded.baseDir,
        },
        [...(config.alerts.webhook ? [webhookNotifier(config.alerts.webhook)] : []), ...(config.alerts.email ? [emailNotifier(config.alerts.email)] : [])],
      )
    : undefined;
  let alertTimer: ReturnType<typeof setInterval> | null = null;
  if (alerts) {
    const evaluate = async () => {
      if (!leader) return; // one replica announces
      try {
        for (const a of await alerts.evaluate()) metrics.alertFiring.set({ alert: a.name, severity: a.severity }, a.status === "firing" ? 1 : 0);
      } catch (e) {
        log.error("alert evaluation failed", { error: (e as Error).message });
      }
    };
    alertTimer = setInterval(() => void evaluate(), config.alerts.intervalS * 1000);
    setTimeout(() => void evaluate(), 1000);
  }
  // Quarantine replay validates raw rows with the source's settings as the config has them now.
  const replayContext = (name: string) => {
    const cfg = config.sources[name];
    if (!cfg) return null;
    const src = createSource(name, cfg, loaded.baseDir, { universes: config.universes });
    return { source: name, interval: src.interval, market: src.market, tsFormat: src.tsFormat, timeZone: src.timeZone };
  };
  const app: ReturnType<typeof createApp> = createApp({ store, metrics, scheduler, maxPageSize: config.server.maxPageSize, version: pkg.version, sinks: [...sinks.values()], stream: { hub, config: config.stream }, alerts, security: config.server, replayContext, indicators: config.indicators, universes: config.universes });
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({ hostname: config.server.host, port: config.server.port, fetch: app.fetch, websocket: streamWebSocket(config.stream) });
  } catch (e) {
    err(`ticksync: cannot listen on ${config.server.host}:${config.server.port}: ${(e as Error).message}`);
    await hub.stop();
    await store.close();
    return EXIT.runFailed;
  }
  // One machine-readable line on stdout says where it listens (port 0 picks a free one).
  out(JSON.stringify({ listening: `http://${server.hostname}:${server.port}`, version: pkg.version }));
  log.info("listening", { url: `http://${server.hostname}:${server.port}`, jobs: config.jobs.map((j) => j.name) });
  scheduler.start();
  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) process.exit(130);
      stopping = true;
      log.info("shutting down", { signal });
      shutdown.abort();
      clearInterval(leaseTimer);
      if (alertTimer) clearInterval(alertTimer);
      await unwatch?.().catch(() => {});
      if (leader) await store.releaseLease("scheduler", replica).catch(() => {});
      await hub.stop();
      await server.stop();
      await scheduler.stop();
      await store.close();
      resolveExit(EXIT.ok);
    };
    process.on("SIGINT", () => void stop("SIGINT"));
    process.on("SIGTERM", () => void stop("SIGTERM"));
  });
}

async function syncWithMetrics(store: Store, sink: Sink, metrics: TicksyncMetrics | null, o: { job?: string; signal?: AbortSignal; baseDir?: string } = {}): Promise<SyncSummary[]> {
  const all = await syncSink({
    store,
    sink,
    job: o.job,
    signal: o.signal,
    baseDir: o.baseDir,
    onBatch: (e) => {
      metrics?.sinkRecords.inc({ sink: sink.name, collection: sink.collection }, e.sent);
      metrics?.sinkRejected.inc({ sink: sink.name, collection: sink.collection }, e.rejected);
    },
  });
  for (const s of all) {
    const l = { sink: sink.name, collection: s.collection };
    if (metrics) {
      if (s.collection !== sink.collection) {
        metrics.sinkRecords.inc(l, s.sent);
        metrics.sinkRejected.inc(l, s.rejected);
      }
      metrics.sinkRetries.inc(l, s.retries);
      metrics.runs.inc({ source: `sink:${sink.name}`, outcome: s.outcome });
      metrics.runDuration.observe({ job: o.job ?? `sync:${sink.name}` }, s.durationMs / 1000);
    }
    log[s.outcome === "succeeded" ? "info" : "warn"]("sync finished", {
      run: s.runId,
      sink: s.sink,
      collection: s.collection,
      outcome: s.outcome,
      read: s.read,
      sent: s.sent,
      rejected: s.rejected,
      retries: s.retries,
      ms: Math.round(s.durationMs),
      ...(s.error ? { error: s.error } : {}),
    });
  }
  if (metrics && all.every((s) => s.outcome === "succeeded")) metrics.lastSuccess.set({ job: o.job ?? `sync:${sink.name}` }, Math.floor(Date.now() / 1000));
  return all;
}

/** Sinks named by --sink (a name, or a type when exactly one sink has it), or all of them. */
function pickSinks(loaded: LoadedConfig, names: string[], signal?: AbortSignal): Sink[] {
  const all = loaded.config.sinks;
  if (Object.keys(all).length === 0) throw new UsageError("no sinks in the config: add a [sinks.<name>] section (see README, Pocketbase)");
  const chosen = names.length ? names : Object.keys(all);
  return chosen.map((n) => {
    if (all[n]) return createSink(n, all[n], { signal });
    const ofType = Object.entries(all).filter(([, c]) => c.type === n);
    if (ofType.length === 1) return createSink(ofType[0]![0], ofType[0]![1], { signal });
    if (ofType.length > 1) throw new UsageError(`--sink ${n}: ${ofType.length} sinks have type ${n} (${ofType.map(([k]) => k).join(", ")}); name one`);
    throw new UsageError(`--sink ${n}: no such sink (defined: ${Object.keys(all).join(", ")})`);
  });
}

async function cmdSync(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, { sink: { type: "string", multiple: true }, json: { type: "boolean" } });
  if (v.help) return out(HELP.sync!), EXIT.ok;
  const loaded = loadConfig(configPath(v.config), process.env);
  setLogLevel(loaded.config.log.level);
  const signal = interruptible();
  const sinks = pickSinks(loaded, (v.sink as string[] | undefined) ?? [], signal);
  return withStore(loaded, async (store) => {
    const summaries: SyncSummary[] = [];
    let complete = true;
    for (const sink of sinks) {
      if (signal.aborted) {
        complete = false;
        break;
      }
      const all = await syncWithMetrics(store, sink, null, { signal, baseDir: loaded.baseDir });
      if (all.length < sink.collections.length) complete = false;
      summaries.push(...all);
      if (!v.json)
        for (const s of all)
          out(
            `sync ${s.sink} → ${s.collection}: ${s.outcome}, ${s.read} read, ${s.sent} sent, ${s.rejected} refused by Pocketbase (quarantined), ` +
              `${s.batches} batches, ${s.retries} retries, ${(s.durationMs / 1000).toFixed(2)} s (run ${s.runId})${s.error ? `\n  error: ${s.error}` : ""}`,
          );
    }
    if (v.json) out(JSON.stringify(summaries, null, 2));
    return complete && summaries.every((s) => s.outcome === "succeeded") ? EXIT.ok : EXIT.runFailed;
  });
}

function printSinkVerify(r: SinkVerifyResult) {
  out(
    `verify ${r.sink} → ${r.collection}: ${r.ok ? "consistent" : "DIFFERENT"} — ${r.storeRecords} records expected, ${r.sinkRecords} in Pocketbase, ` +
      `${r.days} (symbol, day) keys; ${r.missing} missing, ${r.extra} extra, ${r.changed} changed (${(r.durationMs / 1000).toFixed(2)} s)`,
  );
  for (const d of r.differing.slice(0, 50))
    out(`  differs ${d.key}: store ${d.store ? `${d.store.count} #${d.store.sum.toString(16)}` : "none"}, pocketbase ${d.sink ? `${d.sink.count} #${d.sink.sum.toString(16)}` : "none"}`);
  if (r.differing.length > 50) out(`  … and ${r.differing.length - 50} more keys`);
  if (r.repaired) out(`  repaired: ${r.repaired.sent} records re-sent, ${r.repaired.deleted} deleted, ${r.repaired.rejected} refused (quarantined)`);
}

const sinkVerifyJson = (r: SinkVerifyResult) => ({
  ...r,
  differing: r.differing.map((d) => ({ key: d.key, store: d.store && { count: d.store.count, checksum: d.store.sum.toString(16) }, sink: d.sink && { count: d.sink.count, checksum: d.sink.sum.toString(16) } })),
});

async function cmdVerify(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, { sink: { type: "string", multiple: true }, repair: { type: "boolean" }, json: { type: "boolean" } });
  if (v.help) return out(HELP.verify!), EXIT.ok;
  const names = (v.sink as string[] | undefined) ?? [];
  if (!names.length) throw new UsageError("verify needs --sink NAME (to compare two stores use: ticksync migrate --verify-only)");
  const loaded = loadConfig(configPath(v.config), process.env);
  setLogLevel(loaded.config.log.level);
  const sinks = pickSinks(loaded, names);
  return withStore(loaded, async (store) => {
    let ok = true;
    const results: unknown[] = [];
    for (const sink of sinks) {
      const firsts = await verifySinkAll(store, sink, { repair: !!v.repair, baseDir: loaded.baseDir });
      const afters = v.repair && firsts.some((r) => r.repaired) ? await verifySinkAll(store, sink, { baseDir: loaded.baseDir }) : null;
      firsts.forEach((first, i) => {
        const after = afters?.[i] ?? null;
        ok &&= (after ?? first).ok;
        if (v.json) results.push({ verify: sinkVerifyJson(first), ...(after ? { afterRepair: sinkVerifyJson(after) } : {}) });
        else {
          printSinkVerify(first);
          if (after) printSinkVerify(after);
        }
      });
    }
    if (v.json) out(JSON.stringify(results, null, 2));
    return ok ? EXIT.ok : EXIT.mismatch;
  });
}

async function cmdBackup(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, { out: { type: "string" }, keep: { type: "string" }, store: { type: "string" }, json: { type: "boolean" } });
  if (v.help) return out(HELP.backup!), EXIT.ok;
  const loaded = loadConfig(configPath(v.config), process.env, { store: { url: v.store as string | undefined } });
  setLogLevel(loaded.config.log.level);
  const dir = typeof v.out === "string" ? v.out : "backups";
  try {
    const r = await backupStore(loaded.config.store.url, dir, { keep: intFlag("keep", v.keep) });
    if (v.json) out(JSON.stringify({ ...r.manifest, manifest: r.manifestPath, removed: r.removed }, null, 2));
    else {
      out(`backup ${r.manifest.kind}: ${join(dir, r.manifest.file)} (${r.manifest.bytes} bytes, sha256 ${r.manifest.sha256})`);
      out(`  manifest ${r.manifestPath}: ${r.manifest.counts.bars} bars, ${r.manifest.counts.series} series, ${r.manifest.counts.quarantine} quarantined, ${r.manifest.counts.runs} runs`);
      if (r.removed.length) out(`  removed ${r.removed.length} older backups: ${r.removed.join(", ")}`);
    }
    return EXIT.ok;
  } catch (e) {
    if (e instanceof BackupError) {
      err(`ticksync: backup: ${oneLine(e)}`);
      return e.code === "unsupported" ? EXIT.usage : e.code === "store" ? EXIT.store : EXIT.runFailed;
    }
    throw e;
  }
}

async function cmdRollups(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, { store: { type: "string" }, json: { type: "boolean" } });
  if (v.help) return out(HELP.rollups!), EXIT.ok;
  const loaded = loadConfig(configPath(v.config), process.env, { store: { url: v.store as string | undefined } });
  setLogLevel(loaded.config.log.level);
  return withStore(loaded, async (store) => {
    if (!store.rollUp) {
      if (v.json) out(JSON.stringify({ store: store.kind, materialised: false }, null, 2));
      else out(`the ${store.kind} store keeps no materialised rollups: /api/bars rolls up on read`);
      return EXIT.ok;
    }
    const started = performance.now();
    const r = await store.rollUp();
    const pending = (await store.rollupPending?.()) ?? 0;
    const seconds = (performance.now() - started) / 1000;
    if (v.json) out(JSON.stringify({ store: store.kind, materialised: true, ...r, pending, seconds: Number(seconds.toFixed(3)) }, null, 2));
    else out(`rolled up ${r.runs} runs in ${seconds.toFixed(2)}s: ${r.written} rows written, ${r.deleted} removed; ${r.failed} failed, ${pending} still queued`);
    return r.failed > 0 ? EXIT.runFailed : EXIT.ok;
  });
}

async function cmdRestore(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, { from: { type: "string" }, to: { type: "string" }, force: { type: "boolean" }, json: { type: "boolean" } });
  if (v.help) return out(HELP.restore!), EXIT.ok;
  if (typeof v.from !== "string") throw new UsageError("restore needs --from <manifest.json>");
  const loaded = loadConfig(configPath(v.config), process.env, { store: { url: v.to as string | undefined } });
  setLogLevel(loaded.config.log.level);
  try {
    const r = await restoreStore(v.from, loaded.config.store.url, { force: !!v.force });
    if (v.json) out(JSON.stringify(r, null, 2));
    else out(`restored ${r.manifest.kind} backup of ${r.manifest.createdAt} into ${r.target}: ${r.counts.bars} bars, ${r.counts.series} series, checksum ${r.barsChecksum} as in the manifest`);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof BackupError) {
      err(`ticksync: restore: ${oneLine(e)}`);
      return e.code === "checksum" || e.code === "mismatch" ? EXIT.mismatch : e.code === "exists" || e.code === "unsupported" ? EXIT.usage : e.code === "store" ? EXIT.store : EXIT.runFailed;
    }
    throw e;
  }
}

function interruptible() {
  const controller = new AbortController();
  const stop = () => {
    err("ticksync: stopping after the current batches (press again to force)");
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  return controller.signal;
}

function dateFlag(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const t = typeof value === "string" && /^\d{4}-\d{2}-\d{2}$/.test(value) ? parseTimestamp(value) : null;
  if (t === null) throw new UsageError(`--${name} expects a date YYYY-MM-DD, got ${JSON.stringify(value)}`);
  return t;
}

async function cmdBackfill(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, {
    source: { type: "string" },
    from: { type: "string" },
    to: { type: "string" },
    symbols: { type: "string" },
    concurrency: { type: "string" },
    resume: { type: "boolean" },
    run: { type: "string" },
    "retry-failed": { type: "boolean" },
    store: { type: "string" },
    json: { type: "boolean" },
  });
  if (v.help) return out(HELP.backfill!), EXIT.ok;
  const loaded = loadConfig(configPath(v.config), process.env, { store: { url: v.store as string | undefined } });
  setLogLevel(loaded.config.log.level);
  const concurrency = intFlag("concurrency", v.concurrency);
  const signal = interruptible();
  return withStore(loaded, async (store) => {
    let req: Parameters<typeof ingestFromConfig>[0];
    if (v.resume) {
      let runId = intFlag("run", v.run);
      if (runId === undefined) {
        // The newest backfill that has symbols left: pending ones, or failed ones with --retry-failed.
        const runs = (await store.listRuns({ limit: 200 })).filter((r) => r.kind === "backfill");
        for (const r of runs) {
          if (r.outcome === "running") throw new UsageError(`backfill run ${r.id} is still running in another process`);
          const left = (await store.listRunStreams(r.id, "pending")).length + (v["retry-failed"] ? (await store.listRunStreams(r.id, "failed")).length : 0);
          if (left > 0) {
            runId = r.id;
            break;
          }
        }
        if (runId === undefined) throw new UsageError(`no unfinished backfill run to resume${v["retry-failed"] ? "" : " (--retry-failed also retries failed symbols)"}`);
      }
      const run = await store.getRun(runId);
      if (!run || run.kind !== "backfill") throw new UsageError(`run ${runId} is not a backfill run`);
      if (run.outcome === "running") throw new UsageError(`backfill run ${runId} is still running in another process`);
      if (run.outcome === "succeeded") throw new UsageError(`backfill run ${runId} already finished`);
      const p = run.params ?? {};
      if (!loaded.config.sources[run.source]) throw new UsageError(`source ${run.source} of run ${runId} is no longer in the config`);
      const pending = (await store.listRunStreams(runId, "pending")).length;
      err(`resuming backfill run ${runId} of ${run.source}: ${pending} streams not yet done`);
      req = {
        loaded,
        store,
        source: run.source,
        kind: "backfill",
        resumeRunId: runId,
        retryFailed: Boolean(v["retry-failed"]),
        range: { from: (p.from as number | undefined) ?? undefined, to: (p.to as number | undefined) ?? undefined },
        concurrency: concurrency ?? (p.concurrency as number | undefined),
      };
    } else {
      if (typeof v.source !== "string") throw new UsageError("backfill needs --source NAME (or --resume)");
      if (!loaded.config.sources[v.source]) throw new UsageError(`source ${v.source} is not defined in the config (defined: ${Object.keys(loaded.config.sources).join(", ") || "none"})`);
      const from = dateFlag("from", v.from);
      if (from === undefined) throw new UsageError("backfill needs --from YYYY-MM-DD");
      const to = dateFlag("to", v.to);
      if (to !== undefined && to < from) throw new UsageError("--to is before --from");
      let streams: string[] | undefined;
      if (typeof v.symbols === "string") {
        const market = (loaded.config.sources[v.source] as { market?: Market }).market;
        const list = resolveUniverse("cli", { cli: v.symbols.split(",").map((s) => s.trim()).filter(Boolean) }, { market });
        if (!list.ok) throw new UsageError(`--symbols: ${list.reason}`);
        streams = list.universe.symbols;
      }
      req = {
        loaded,
        store,
        source: v.source,
        kind: "backfill",
        range: { from, to },
        streams,
        concurrency,
        params: { from, to: to ?? null, concurrency: concurrency ?? null },
      };
    }
    const progress = createProgressReporter({ unit: "symbols" });
    const s = await ingestFromConfig({ ...req, signal, onProgress: (p) => progress.update(p) });
    progress.finish();
    if (v.json) out(JSON.stringify(s, null, 2));
    else printSummary(s);
    if (s.outcome === "interrupted") err(`interrupted: continue with 'ticksync backfill --resume --run ${s.runId}'`);
    return s.outcome === "succeeded" ? EXIT.ok : s.belowMinQuality && !s.readFailed ? EXIT.quarantined : EXIT.runFailed;
  });
}

async function openMigrated(url: string, label: string): Promise<Store> {
  let store: Store;
  try {
    store = openAuditedStore(url);
    await store.migrate();
    return store;
  } catch (e) {
    err(`ticksync: cannot open the ${label} store ${redactUrl(url)}: ${oneLine(e)}`);
    process.exit(EXIT.store);
  }
}

async function cmdMigrate(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, { from: { type: "string" }, to: { type: "string" }, "verify-only": { type: "boolean" }, "batch-size": { type: "string" }, json: { type: "boolean" } });
  if (v.help) return out(HELP.migrate!), EXIT.ok;
  if (typeof v.to !== "string") throw new UsageError("migrate needs --to URL");
  const loaded = loadConfig(configPath(v.config), process.env, { store: { url: v.from as string | undefined } });
  setLogLevel(loaded.config.log.level);
  const fromUrl = loaded.config.store.url;
  const toUrl = loadConfig(null, {}, { store: { url: v.to } }).config.store.url;
  if (fromUrl === toUrl) throw new UsageError("--from and --to are the same store");
  const batchSize = intFlag("batch-size", v["batch-size"]);
  const from = await openMigrated(fromUrl, "source");
  const to = await openMigrated(toUrl, "target");
  try {
    let copied: Awaited<ReturnType<typeof migrateStore>> | null = null;
    if (!v["verify-only"]) {
      const progress = createProgressReporter({ unit: "series" });
      const started = performance.now();
      copied = await migrateStore(from, to, { batchSize, onProgress: (done, total, bars) => progress.update({ runId: 0, done, total, failed: 0, rows: bars, elapsedMs: performance.now() - started }) });
      progress.finish();
      if (!v.json)
        out(`copied ${copied.bars} bars in ${copied.series} series${copied.resumedSeries ? ` (${copied.resumedSeries} resumed)` : ""}, ${copied.checkpoints} checkpoints, ${copied.quarantine} quarantined rows (run ${copied.runId} on the target)`);
    }
    const result = await verifyStores(from, to);
    if (v.json) out(JSON.stringify({ copied, verify: { ...result, differing: result.differing.map((d) => ({ key: d.key, from: d.from && { count: d.from.count, checksum: d.from.sum.toString(16) }, to: d.to && { count: d.to.count, checksum: d.to.sum.toString(16) } })) } }, null, 2));
    else {
      out(`verify: ${result.ok ? "equal" : "DIFFERENT"} — bars ${result.bars.from} vs ${result.bars.to} in ${result.keys} (symbol, interval, day) keys; quarantine ${result.quarantine.from} vs ${result.quarantine.to}; checkpoints ${result.checkpoints.from} vs ${result.checkpoints.to}`);
      for (const d of result.differing.slice(0, 50))
        out(`  differs ${d.key}: from ${d.from ? `${d.from.count} bars #${d.from.sum.toString(16)}` : "none"}, to ${d.to ? `${d.to.count} bars #${d.to.sum.toString(16)}` : "none"}`);
      if (result.differing.length > 50) out(`  … and ${result.differing.length - 50} more keys`);
      if (result.quarantine.missing) out(`  ${result.quarantine.missing} quarantined rows missing on the target`);
      for (const c of result.checkpoints.differing.slice(0, 20)) out(`  checkpoint differs: ${c}`);
    }
    return result.ok ? EXIT.ok : EXIT.mismatch;
  } finally {
    await from.close();
    await to.close();
  }
}

function cmdUniverse(argv: string[]): number {
  const sub = argv[0];
  const { values: v, positionals } = parse(argv.slice(1), { symbols: { type: "boolean" } });
  if (v.help || sub === undefined) return out(HELP.universe!), sub === undefined && !v.help ? EXIT.usage : EXIT.ok;
  if (sub !== "list" && sub !== "show") throw new UsageError(`unknown universe command: ${sub} (expected list or show)`);
  const loaded = loadConfig(configPath(v.config));
  if (sub === "list") {
    const user = Object.keys(loaded.config.universes).map((name) => {
      const r = resolveUniverse(name, loaded.config.universes);
      if (!r.ok) throw new ConfigError(loaded.file, [{ path: `universes.${name}`, message: r.reason }]);
      return r.universe;
    });
    out(formatUniverseList([...listUniverses(), ...user]));
    return EXIT.ok;
  }
  const name = positionals[0];
  if (!name) throw new UsageError("universe show needs a NAME");
  const r = resolveUniverse(name, loaded.config.universes);
  if (!r.ok) throw new UsageError(r.reason);
  out(formatUniverseList([r.universe], { symbols: true }));
  return EXIT.ok;
}

async function cmdInstruments(argv: string[]): Promise<number> {
  const sub = argv[0]?.startsWith("-") ? undefined : argv[0];
  const { values: v } = parse(sub === undefined ? argv : argv.slice(1), {
    file: { type: "string" },
    source: { type: "string" },
    market: { type: "string" },
    delimiter: { type: "string" },
    columns: { type: "string" },
    store: { type: "string" },
    json: { type: "boolean" },
  });
  if (v.help || sub === undefined) return out(HELP.instruments!), v.help ? EXIT.ok : EXIT.usage;
  if (sub !== "import") throw new UsageError(`unknown instruments command: ${sub} (expected import)`);
  if (typeof v.file !== "string") throw new UsageError("instruments import needs --file <csv>");
  const source = typeof v.source === "string" ? v.source.trim() : "csv";
  if (source === "") throw new UsageError("--source expects a name");
  let market: Market | undefined;
  if (typeof v.market === "string") {
    const m = v.market.toUpperCase();
    if (!isMarket(m)) throw new UsageError(`--market expects ${marketChoices()}, got ${JSON.stringify(v.market)}`);
    market = m;
  }
  let columns: Partial<Record<InstrumentColumn, string>> | undefined;
  if (typeof v.columns === "string") {
    columns = {};
    for (const pair of v.columns.split(",")) {
      const [field, col] = pair.split("=").map((x) => x.trim());
      if (!field || !col) throw new UsageError(`--columns expects field=column pairs, got ${JSON.stringify(pair)}`);
      if (!isInstrumentColumn(field)) throw new UsageError(`--columns: unknown field ${JSON.stringify(field)} (fields: ${INSTRUMENT_COLUMNS.join(", ")})`);
      columns[field] = col;
    }
  }
  const delimiter = typeof v.delimiter === "string" ? (v.delimiter === "\\t" || v.delimiter === "tab" ? "\t" : v.delimiter) : undefined;
  if (delimiter !== undefined && delimiter.length !== 1) throw new UsageError(`--delimiter expects one character (or tab), got ${JSON.stringify(v.delimiter)}`);
  const loaded = loadConfig(configPath(v.config), process.env, { store: { url: v.store as string | undefined } });
  setLogLevel(loaded.config.log.level);
  const file = resolve(v.file);
  return withStore(loaded, async (store) => {
    const r = await importInstruments(store, file, { source, market, delimiter, columns });
    if (v.json) out(JSON.stringify(r, null, 2));
    else {
      for (const x of r.rejected) err(`${v.file}:${x.line}: rejected: ${x.reason}`);
      if (!r.error)
        out(
          `instruments ${v.file} → ${source}: ${r.rows} rows, inserted ${r.inserted}, updated ${r.updated}, unchanged ${r.unchanged}, rejected ${r.rejected.length}` +
            `${r.ignored.length ? ` (columns not read: ${r.ignored.join(", ")})` : ""} (run ${r.runId})`,
        );
      if (r.error) err(`ticksync: instruments import: ${r.error}`);
    }
    return r.error ? EXIT.runFailed : r.rejected.length ? EXIT.quarantined : EXIT.ok;
  });
}

function cmdConfig(argv: string[]): number {
  const sub = argv[0];
  const { values: v } = parse(argv.slice(1), {});
  if (sub === "schema") {
    if (v.help) return out(HELP["config schema"]!), EXIT.ok;
    out(JSON.stringify(configJsonSchema(), null, 2));
    return EXIT.ok;
  }
  if (sub === "check") {
    if (v.help) return out(HELP["config check"]!), EXIT.ok;
    const loaded = loadConfig(configPath(v.config));
    const c = loaded.config;
    out(`config ok${loaded.file ? `: ${loaded.file}` : " (defaults and environment)"}`);
    out(`  store   ${redactUrl(c.store.url)}`);
    out(`  server  ${c.server.host}:${c.server.port}`);
    out(`  sources ${Object.entries(c.sources).map(([n, s]) => `${n} (${s.type})`).join(", ") || "none"}`);
    out(`  jobs    ${c.jobs.map((j) => `${j.name}${j.schedule ? ` [${j.schedule} ${j.timeZone}]` : ""}`).join(", ") || "none"}`);
    return EXIT.ok;
  }
  if (v.help || sub === undefined) return out(HELP["config check"]! + "\n" + HELP["config schema"]!), sub === undefined && !v.help ? EXIT.usage : EXIT.ok;
  throw new UsageError(`unknown config command: ${sub} (expected check or schema)`);
}

export async function main(argv: string[]): Promise<number> {
  // Runs started from here on record who started them (src/monitor/audit.ts); serve's jobs and
  // API calls name themselves.
  return withActor(cliActor(argv.slice(0, 2).join(" ")), () => dispatch(argv));
}

async function dispatch(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case undefined:
      case "help":
      case "--help":
      case "-h":
        out(HELP.main!);
        return cmd === undefined ? EXIT.usage : EXIT.ok;
      case "version":
      case "--version":
        if (rest.includes("--help") || rest.includes("-h")) return out(HELP.version!), EXIT.ok;
        out(`ticksync ${pkg.version} (bun ${Bun.version})`);
        return EXIT.ok;
      case "ingest":
        return await cmdIngest(rest);
      case "serve":
        return await cmdServe(rest);
      case "config":
        return cmdConfig(rest);
      case "backfill":
        return await cmdBackfill(rest);
      case "universe":
        return cmdUniverse(rest);
      case "instruments":
        return await cmdInstruments(rest);
      case "migrate":
        return await cmdMigrate(rest);
      case "sync":
        return await cmdSync(rest);
      case "verify":
        return await cmdVerify(rest);
      case "backup":
        return await cmdBackup(rest);
      case "restore":
        return await cmdRestore(rest);
      case "rollups":
        return await cmdRollups(rest);
      default:
        throw new UsageError(`unknown command: ${cmd}`);
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      err(`ticksync: ${e.message}`);
      return EXIT.config;
    }
    if (e instanceof UsageError) {
      err(`ticksync: ${e.message}\nRun 'ticksync ${cmd && HELP[cmd] ? cmd + " " : ""}--help' for usage.`);
      return EXIT.usage;
    }
    // One line, never a stack (TICKSYNC_DEBUG=1 shows it), scrubbed like every output.
    err(`ticksync: ${oneLine(e)}`);
    return EXIT.runFailed;
  }
}

if (import.meta.main) {
  // A failure nobody awaited (a background task) ends the process as before (exit 1), but as one
  // scrubbed line like every other failure, not Bun's source excerpt and stack.
  const crash = (e: unknown) => {
    err(`ticksync: ${oneLine(e)}`);
    process.exit(EXIT.runFailed);
  };
  process.on("unhandledRejection", crash);
  process.on("uncaughtException", crash);
  process.exit(await main(process.argv.slice(2)));
}
