// The Prometheus metrics, on prom-client (it works inside the compiled executable: checked with
// `bun scripts/build.ts`, collectDefaultMetrics and registry.metrics() in dist/ticksync). Each
// ticksyncMetrics() has its own registry; what belongs to the process (CPU, memory, event loop,
// file descriptors, the PostgreSQL pool) is in one registry per process, rendered after it.
// Under Bun some default metrics are dead and are removed (see DEAD_UNDER_BUN); GC is one of them:
// Bun's PerformanceObserver has no "gc" entries, so there is no GC metric.
import client from "prom-client";
import { PerformanceObserver } from "node:perf_hooks";
import { setPoolWaitRecorder } from "./pool-waits.ts";

export type Labels = Record<string, string>;
export type Counter<L extends string = string> = client.Counter<L>;
export type Gauge<L extends string = string> = client.Gauge<L>;
export type Histogram<L extends string = string> = client.Histogram<L>;

export const METRICS_CONTENT_TYPE = client.Registry.PROMETHEUS_CONTENT_TYPE;

/**
 * Default metrics that say nothing under Bun 1.4: the GC histogram stays empty (no "gc"
 * performance entries), the active handles/requests/resources are always 0 (Bun returns empty
 * lists), and the V8 heap spaces are a shim (all of JSC's heap shown as "old", every other space 0).
 */
const DEAD_UNDER_BUN = [
  "nodejs_active_handles",
  "nodejs_active_handles_total",
  "nodejs_active_requests",
  "nodejs_active_requests_total",
  "nodejs_active_resources",
  "nodejs_active_resources_total",
  "nodejs_heap_space_size_total_bytes",
  "nodejs_heap_space_size_used_bytes",
  "nodejs_heap_space_size_available_bytes",
];
const gcObserved = () => (PerformanceObserver.supportedEntryTypes as readonly string[]).includes("gc");

function createProcessMetrics() {
  const registry = new client.Registry();
  const registers = [registry];
  return {
    registry,
    /** Transactions that waited for a pooled connection (src/stores/postgres/context.ts). */
    pgPoolWait: new client.Histogram({
      name: "ticksync_pg_pool_wait_seconds",
      help: "Time a PostgreSQL transaction waited for a pooled connection (with its BEGIN round trip).",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    pgPoolWaiting: new client.Gauge({ name: "ticksync_pg_pool_waiting", help: "PostgreSQL transactions waiting for a pooled connection now.", registers }),
    defaultsOn: false,
  };
}
let processMetricsOnce: ReturnType<typeof createProcessMetrics> | null = null;

/** The process-wide metrics (made on first use). */
export function processMetrics() {
  if (!processMetricsOnce) {
    const p = (processMetricsOnce = createProcessMetrics());
    setPoolWaitRecorder({
      waiting: () => p.pgPoolWaiting.inc(),
      done: (seconds) => {
        p.pgPoolWaiting.dec();
        if (seconds !== null) p.pgPoolWait.observe(seconds);
      },
    });
  }
  return processMetricsOnce;
}

function processRegistry(): client.Registry {
  const p = processMetrics();
  if (!p.defaultsOn) {
    p.defaultsOn = true;
    const before = process.cpuUsage();
    client.collectDefaultMetrics({ register: p.registry });
    // prom-client counts CPU from here on; Prometheus's process_cpu_* are since the process started.
    const seed = { process_cpu_user_seconds_total: before.user, process_cpu_system_seconds_total: before.system, process_cpu_seconds_total: before.user + before.system };
    for (const [name, us] of Object.entries(seed)) (p.registry.getSingleMetric(name) as Counter | undefined)?.inc(us / 1e6);
    for (const name of DEAD_UNDER_BUN) p.registry.removeSingleMetric(name);
    if (!gcObserved()) p.registry.removeSingleMetric("nodejs_gc_duration_seconds");
  }
  return p.registry;
}

/** The value of one series of a counter or gauge (0 when it has none yet). */
export async function metricValue(metric: Counter | Gauge, labels: Labels = {}): Promise<number> {
  const want = Object.entries(labels);
  const { values } = await metric.get();
  const found = values.find((v) => want.every(([k, x]) => v.labels[k] === x) && Object.keys(v.labels).length === want.length);
  return found?.value ?? 0;
}

const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const RUN_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** The metrics ticksync itself exposes, in one place so their names, labels and help stay consistent. */
export function ticksyncMetrics() {
  processRegistry(); // once per process: the default metrics' event-loop and CPU figures start now
  const prom = new client.Registry();
  const registers = [prom];
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) => new client.Counter<L>({ name, help, labelNames, registers });
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) => new client.Gauge<L>({ name, help, labelNames, registers });
  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]) =>
    new client.Histogram<L>({ name, help, labelNames, buckets, registers });
  const sinkL = ["sink", "collection"] as const;
  return {
    registry: {
      prom,
      /** This registry, then the process's: Prometheus text (version 0.0.4). */
      async render(): Promise<string> {
        const [own, proc] = await Promise.all([prom.metrics(), processRegistry().metrics()]);
        return `${own.trimEnd()}\n\n${proc.trimEnd()}\n`;
      },
    },
    rowsRead: counter("ticksync_rows_read_total", "Rows read from sources.", ["source"]),
    rowsStored: counter("ticksync_rows_stored_total", "Rows inserted or updated in the store.", ["source"]),
    rowsUnchanged: counter("ticksync_rows_unchanged_total", "Rows re-delivered unchanged (nothing written).", ["source"]),
    rowsQuarantined: counter("ticksync_rows_quarantined_total", "Rows rejected by quality rules and quarantined.", ["source"]),
    ruleViolations: counter("ticksync_quality_rule_violations_total", "Quality rule violations by rule (gap counts missing sessions).", ["source", "rule"]),
    qualityScore: gauge("ticksync_batch_quality_score", "Quality score 0..1 of the last batch per source.", ["source"]),
    runs: counter("ticksync_runs_total", "Finished runs by outcome.", ["source", "outcome"]),
    runDuration: histogram("ticksync_run_duration_seconds", "Run durations.", ["job"], RUN_BUCKETS),
    lastSuccess: gauge("ticksync_job_last_success_timestamp_seconds", "Unix time of the last successful run per job.", ["job"]),
    storeUp: gauge("ticksync_store_up", "1 when the store answers and its schema is current.", ["store"]),
    leader: gauge("ticksync_scheduler_leader", "1 when this replica holds the scheduler lease and runs the scheduled jobs.", ["replica"]),
    alertFiring: gauge("ticksync_alert_firing", "1 while an alert rule fires.", ["alert", "severity"]),
    sinkRecords: counter("ticksync_sink_records_total", "Records a sink acknowledged (upserted).", sinkL),
    sinkRejected: counter("ticksync_sink_rejected_total", "Records a sink refused (quarantined with the sink's error).", sinkL),
    sinkRetries: counter("ticksync_sink_retries_total", "Sink requests retried (server down, 5xx, 429).", sinkL),
    sinkConsistent: gauge("ticksync_sink_consistent", "1 when the last verify found the sink equal to the store, 0 when it differed, -1 never verified.", sinkL),
    sinkDifferingDays: gauge("ticksync_sink_differing_days", "(symbol, day) keys that differed at the last verify.", sinkL),
    sinkVerifyRecords: gauge("ticksync_sink_verify_records", "Records counted at the last verify, by side (store: expected, sink: found).", [...sinkL, "side"]),
    sinkLastVerify: gauge("ticksync_sink_last_verify_timestamp_seconds", "Unix time of the last verify of a sink.", sinkL),
    streamClients: gauge("ticksync_stream_clients", "Connected stream clients by transport (ws, sse).", ["transport"]),
    streamMessages: counter("ticksync_stream_messages_sent_total", "Messages sent to stream clients by transport.", ["transport"]),
    streamConflated: counter("ticksync_stream_conflated_total", "Bars not sent to a slow client because a newer bar of the series replaced them.", []),
    streamDropped: counter("ticksync_stream_dropped_clients_total", "Stream clients closed by the server, by reason (slow, heartbeat).", ["reason"]),
    streamReplayed: counter("ticksync_stream_replayed_events_total", "Events replayed from the journal to reconnecting clients.", []),
    streamLastEventId: gauge("ticksync_stream_last_event_id", "Id of the last event the stream published.", []),
    outboxClients: gauge("ticksync_stream_outbox_clients", "Stream clients with messages waiting in their outbox (the socket had no room); updated at scrape time.", []),
    outboxMessages: gauge("ticksync_stream_outbox_messages", "Messages waiting in stream clients' outboxes, all clients together; updated at scrape time.", []),
    outboxBytes: gauge("ticksync_stream_outbox_bytes", "Bytes (UTF-16 units of the JSON) waiting in stream clients' outboxes, all clients together; updated at scrape time.", []),
    outboxMaxBytes: gauge("ticksync_stream_outbox_max_bytes", "Bytes waiting in the fullest single client outbox; updated at scrape time.", []),
    gapfillSessions: counter("ticksync_gapfill_sessions_total", "Missing sessions a gapfill asked its provider for, by outcome (filled, no_data: recorded and not asked again, failed, pending: still missing after a fetch but newer than the newest bar).", ["source", "outcome"]),
    retentionDeleted: counter("ticksync_retention_deleted_total", "Bars deleted by retention, by interval.", ["interval"]),
    rollupPages: counter("ticksync_rollup_pages_total", "Rolled-up /api/bars pages by path (materialised: from the store's rollups; on_read: rolled up from finer bars).", ["path"]),
    rollupPendingRuns: gauge("ticksync_rollup_pending_runs", "Runs whose stored bars are not in the store's materialised rollups yet (Postgres); updated at scrape time.", ["store"]),
    gapBars: gauge("ticksync_gap_bars", "Bars missing by the exchange calendar (between each series' first bar and the latest completed session), by market and interval; updated at scrape time.", ["market", "interval"]),
    httpDuration: histogram("ticksync_http_request_duration_seconds", "HTTP request durations until the response (for streams: until it starts), by method, route pattern and status.", ["method", "route", "status"], HTTP_BUCKETS),
  };
}
export type TicksyncMetrics = ReturnType<typeof ticksyncMetrics>;
