// GET /metrics: the Prometheus registry, with the gauges that are read from the store on each
// scrape brought up to date first (store up, sink consistency, gaps, pending rollups, stream
// outboxes); and GET /api/resources, the process's resources as JSON for the dashboard.
import { readdirSync, readFileSync } from "node:fs";
import { Hono } from "hono";
import type { Store } from "../../stores/types.ts";
import { METRICS_CONTENT_TYPE, type TicksyncMetrics } from "../../lib/metrics.ts";
import { createProcessStats } from "../../monitor/performance.ts";
import { outboxTotals } from "../../stream/outbox.ts";
import type { GapScanner, SeriesGaps } from "../../pipeline/gaps.ts";
import { log } from "../../lib/log.ts";
import type { AppDeps, SinkInfo } from "../deps.ts";
import { sinkConsistency } from "./sinks.ts";
import { errorText } from "../../lib/errors.ts";
import { describe, json, textBody } from "../openapi.ts";
import { ResourcesBody } from "../schemas/data.ts";
import type { Body } from "../schemas/common.ts";

/**
 * The ticksync_gap_bars{market,interval} gauge, set on a scrape. Every (market, interval) it has
 * shown keeps a value: 0 once its gaps are gone.
 */
export function gapGauge(gaps: GapScanner, metrics: TicksyncMetrics): () => Promise<void> {
  const shown = new Set<string>();
  return async () => {
    let all: SeriesGaps[];
    try {
      all = await gaps.scanAll();
    } catch (e) {
      log.warn("gap scan failed", { error: errorText(e) });
      return;
    }
    const sums = new Map<string, number>([...shown].map((k) => [k, 0]));
    for (const g of all) {
      const k = `${g.market}\u0000${g.interval}`;
      sums.set(k, (sums.get(k) ?? 0) + g.missingBars);
    }
    for (const [k, n] of sums) {
      const [market, interval] = k.split("\u0000") as [string, string];
      metrics.gapBars.set({ market, interval }, n);
      shown.add(k);
    }
  };
}

async function updateSinkGauges(store: Store, metrics: TicksyncMetrics, sinks: SinkInfo[]): Promise<void> {
  for (const s of await sinkConsistency(store, sinks)) {
    const l = { sink: s.sink, collection: s.collection };
    metrics.sinkConsistent.set(l, s.status === "consistent" ? 1 : s.status === "inconsistent" ? 0 : -1);
    if (s.checkedAt !== null) {
      metrics.sinkDifferingDays.set(l, s.differingDays ?? 0);
      metrics.sinkVerifyRecords.set({ ...l, side: "store" }, s.storeRecords ?? 0);
      metrics.sinkVerifyRecords.set({ ...l, side: "sink" }, s.sinkRecords ?? 0);
      metrics.sinkLastVerify.set(l, Math.floor(s.checkedAt / 1000));
    }
  }
}

export function metricsRoutes(deps: Pick<AppDeps, "store" | "metrics" | "sinks">, updateGapMetric: () => Promise<void>): Hono {
  const { store, metrics } = deps;
  const app = new Hono();
  const doc = describe({
    summary: "Prometheus metrics",
    description: "The registry in the Prometheus text format, with the gauges read from the store brought up to date first.",
    tags: ["operations"],
    responses: { 200: { description: "the metrics", content: { "text/plain": textBody("Prometheus text exposition format 0.0.4") } } },
  });
  app.get("/", doc, async (c) => {
    const r = await store.ready();
    metrics.storeUp.set({ store: store.kind }, r.ok ? 1 : 0);
    if (r.ok) await updateSinkGauges(store, metrics, deps.sinks ?? []);
    if (r.ok) await updateGapMetric();
    if (r.ok && store.rollupPending) metrics.rollupPendingRuns.set({ store: store.kind }, await store.rollupPending());
    const out = outboxTotals();
    metrics.outboxClients.set(out.clients);
    metrics.outboxMessages.set(out.messages);
    metrics.outboxBytes.set(out.bytes);
    metrics.outboxMaxBytes.set(out.maxBytes);
    return c.body(await metrics.registry.render(), 200, { "Content-Type": METRICS_CONTENT_TYPE });
  });
  return app;
}

/** Open file descriptors and their soft limit, from /proc (null where there is no /proc). */
export function fileDescriptors(): { open: number | null; max: number | null } {
  let open: number | null = null;
  let max: number | null = null;
  try {
    open = readdirSync("/proc/self/fd").length - 1; // less the one readdirSync had open
  } catch {
    /* not Linux */
  }
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    if (m) max = Number(m[1]);
  } catch {
    /* not Linux */
  }
  return { open, max };
}

/** GET /api/resources: CPU, memory, event-loop lag (since the previous look) and file descriptors. */
export function resourceRoutes(now: () => number = Date.now): Hono {
  const stats = createProcessStats(now);
  const app = new Hono();
  const doc = describe({ summary: "CPU, memory, event-loop lag and file descriptors of the process", tags: ["operations"], responses: { 200: json(ResourcesBody, "the process's resources") } });
  app.get("/", doc, (c) => {
    const s = stats.sample();
    return c.json({ timestamp: new Date(now()).toISOString(), uptimeSeconds: Math.round(process.uptime()), ...s, fds: fileDescriptors() } satisfies Body<typeof ResourcesBody>, 200, { "Cache-Control": "no-store" });
  });
  return app;
}
