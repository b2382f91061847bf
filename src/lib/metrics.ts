// A small Prometheus registry: counters, gauges and histograms with labels, rendered in the
// text exposition format (version 0.0.4). Written here rather than imported because the common
// clients are tied to Node's process model; this is the part we need and nothing more.
export type Labels = Record<string, string>;

type Kind = "counter" | "gauge" | "histogram";
type Series = { labels: Labels; value: number; buckets?: number[]; sum?: number; count?: number };

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const escapeHelp = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
const labelKey = (l: Labels) => JSON.stringify(Object.entries(l).sort(([a], [b]) => a.localeCompare(b)));
const fmtLabels = (l: Labels, extra?: [string, string]) => {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
};
const fmtNum = (n: number) => (Number.isFinite(n) ? String(n) : n > 0 ? "+Inf" : n < 0 ? "-Inf" : "NaN");

export type Metric = {
  name: string;
  help: string;
  kind: Kind;
  series: Map<string, Series>;
  bucketBounds?: number[];
};

export type Counter = { inc(labels?: Labels, by?: number): void; get(labels?: Labels): number };
export type Gauge = { set(labels: Labels, value: number): void; get(labels?: Labels): number };
export type Histogram = { observe(labels: Labels, value: number): void };

export function createRegistry() {
  const metrics = new Map<string, Metric>();

  function define(name: string, help: string, kind: Kind, bucketBounds?: number[]): Metric {
    const existing = metrics.get(name);
    if (existing) return existing;
    const m: Metric = { name, help, kind, series: new Map(), bucketBounds };
    metrics.set(name, m);
    return m;
  }

  function seriesOf(m: Metric, labels: Labels): Series {
    const key = labelKey(labels);
    let s = m.series.get(key);
    if (!s) {
      s = { labels, value: 0 };
      if (m.kind === "histogram") Object.assign(s, { buckets: m.bucketBounds!.map(() => 0), sum: 0, count: 0 });
      m.series.set(key, s);
    }
    return s;
  }

  return {
    counter(name: string, help: string): Counter {
      const m = define(name, help, "counter");
      return {
        inc: (labels = {}, by = 1) => {
          if (by < 0) throw new Error(`counter ${name} cannot decrease`);
          seriesOf(m, labels).value += by;
        },
        get: (labels = {}) => m.series.get(labelKey(labels))?.value ?? 0,
      };
    },
    gauge(name: string, help: string): Gauge {
      const m = define(name, help, "gauge");
      return {
        set: (labels, value) => void (seriesOf(m, labels).value = value),
        get: (labels = {}) => m.series.get(labelKey(labels))?.value ?? 0,
      };
    },
    histogram(name: string, help: string, buckets: number[]): Histogram {
      const m = define(name, help, "histogram", [...buckets].sort((a, b) => a - b));
      return {
        observe: (labels, value) => {
          const s = seriesOf(m, labels);
          m.bucketBounds!.forEach((b, i) => {
            if (value <= b) s.buckets![i]!++;
          });
          s.sum! += value;
          s.count!++;
        },
      };
    },
    render(): string {
      const out: string[] = [];
      for (const m of metrics.values()) {
        out.push(`# HELP ${m.name} ${escapeHelp(m.help)}`, `# TYPE ${m.name} ${m.kind}`);
        for (const s of m.series.values()) {
          if (m.kind !== "histogram") {
            out.push(`${m.name}${fmtLabels(s.labels)} ${fmtNum(s.value)}`);
            continue;
          }
          m.bucketBounds!.forEach((b, i) => out.push(`${m.name}_bucket${fmtLabels(s.labels, ["le", fmtNum(b)])} ${s.buckets![i]}`));
          out.push(`${m.name}_bucket${fmtLabels(s.labels, ["le", "+Inf"])} ${s.count}`);
          out.push(`${m.name}_sum${fmtLabels(s.labels)} ${fmtNum(s.sum!)}`, `${m.name}_count${fmtLabels(s.labels)} ${s.count}`);
        }
      }
      return out.join("\n") + "\n";
    },
  };
}

export type Registry = ReturnType<typeof createRegistry>;

/** The metrics ticksync itself exposes, in one place so their names and help stay consistent. */
export function ticksyncMetrics(registry: Registry = createRegistry()) {
  return {
    registry,
    rowsRead: registry.counter("ticksync_rows_read_total", "Rows read from sources."),
    rowsStored: registry.counter("ticksync_rows_stored_total", "Rows inserted or updated in the store."),
    rowsUnchanged: registry.counter("ticksync_rows_unchanged_total", "Rows re-delivered unchanged (nothing written)."),
    rowsQuarantined: registry.counter("ticksync_rows_quarantined_total", "Rows rejected by quality rules and quarantined."),
    ruleViolations: registry.counter("ticksync_quality_rule_violations_total", "Quality rule violations by rule (gap counts missing sessions)."),
    qualityScore: registry.gauge("ticksync_batch_quality_score", "Quality score 0..1 of the last batch per source."),
    runs: registry.counter("ticksync_runs_total", "Finished runs by outcome."),
    runDuration: registry.histogram("ticksync_run_duration_seconds", "Run durations.", [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600]),
    lastSuccess: registry.gauge("ticksync_job_last_success_timestamp_seconds", "Unix time of the last successful run per job."),
    storeUp: registry.gauge("ticksync_store_up", "1 when the store answers and its schema is current."),
    leader: registry.gauge("ticksync_scheduler_leader", "1 when this replica holds the scheduler lease and runs the scheduled jobs."),
    alertFiring: registry.gauge("ticksync_alert_firing", "1 while an alert rule fires."),
    sinkRecords: registry.counter("ticksync_sink_records_total", "Records a sink acknowledged (upserted)."),
    sinkRejected: registry.counter("ticksync_sink_rejected_total", "Records a sink refused (quarantined with the sink's error)."),
    sinkRetries: registry.counter("ticksync_sink_retries_total", "Sink requests retried (server down, 5xx, 429)."),
    sinkConsistent: registry.gauge("ticksync_sink_consistent", "1 when the last verify found the sink equal to the store, 0 when it differed, -1 never verified."),
    sinkDifferingDays: registry.gauge("ticksync_sink_differing_days", "(symbol, day) keys that differed at the last verify."),
    sinkVerifyRecords: registry.gauge("ticksync_sink_verify_records", "Records counted at the last verify, by side (store: expected, sink: found)."),
    sinkLastVerify: registry.gauge("ticksync_sink_last_verify_timestamp_seconds", "Unix time of the last verify of a sink."),
    streamClients: registry.gauge("ticksync_stream_clients", "Connected stream clients by transport (ws, sse)."),
    streamMessages: registry.counter("ticksync_stream_messages_sent_total", "Messages sent to stream clients by transport."),
    streamConflated: registry.counter("ticksync_stream_conflated_total", "Bars not sent to a slow client because a newer bar of the series replaced them."),
    streamDropped: registry.counter("ticksync_stream_dropped_clients_total", "Stream clients closed by the server, by reason (slow, heartbeat)."),
    streamReplayed: registry.counter("ticksync_stream_replayed_events_total", "Events replayed from the journal to reconnecting clients."),
    streamLastEventId: registry.gauge("ticksync_stream_last_event_id", "Id of the last event the stream published."),
    gapfillSessions: registry.counter("ticksync_gapfill_sessions_total", "Missing sessions a gapfill asked its provider for, by outcome (filled, no_data: recorded and not asked again, failed, pending: still missing after a fetch but newer than the newest bar)."),
    retentionDeleted: registry.counter("ticksync_retention_deleted_total", "Bars deleted by retention, by interval."),
    rollupPages: registry.counter("ticksync_rollup_pages_total", "Rolled-up /api/bars pages by path (materialised: from the store's rollups; on_read: rolled up from finer bars)."),
    rollupPendingRuns: registry.gauge("ticksync_rollup_pending_runs", "Runs whose stored bars are not in the store's materialised rollups yet (Postgres); updated at scrape time."),
    gapBars: registry.gauge("ticksync_gap_bars", "Bars missing by the exchange calendar (between each series' first bar and the latest completed session), by market and interval; updated at scrape time."),
  };
}
export type TicksyncMetrics = ReturnType<typeof ticksyncMetrics>;
