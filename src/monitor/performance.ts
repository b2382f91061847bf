// The process's own performance for GET /api/performance: CPU share since the previous look,
// memory, event-loop lag (node:perf_hooks' histogram), and HTTP request latency over the last
// requests (a fixed ring: bounded memory whatever the traffic).
import { monitorEventLoopDelay } from "node:perf_hooks";
import { availableParallelism, freemem, totalmem } from "node:os";

/** Latencies of the last `size` requests, in ms (a ring of numbers, no allocation per request). */
export function createRequestStats(size = 2048) {
  const ring = new Float64Array(size);
  let n = 0;
  let total = 0;
  return {
    record(ms: number): void {
      ring[n % size] = ms;
      n++;
      total++;
    },
    summary() {
      const have = Math.min(n, size);
      const sorted = Array.from(ring.subarray(0, have)).sort((a, b) => a - b);
      const q = (p: number) => (have ? Math.round(sorted[Math.min(have - 1, Math.floor(p * have))]! * 100) / 100 : null);
      const mean = have ? Math.round((sorted.reduce((s, x) => s + x, 0) / have) * 100) / 100 : null;
      return { total, sampled: have, latencyMs: { mean, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: have ? Math.round(sorted[have - 1]! * 100) / 100 : null } };
    },
  };
}
export type RequestStats = ReturnType<typeof createRequestStats>;

let loop: ReturnType<typeof monitorEventLoopDelay> | null = null;

/** CPU, memory and event-loop lag, each over the time since the previous call (at least 1 s; the first call: since start). */
export function createProcessStats(now: () => number = Date.now) {
  loop ??= monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  let prev = { at: now(), cpu: process.cpuUsage() };
  let first = true;
  let cpuPercent = 0;
  const ms = (ns: number) => Math.round((ns / 1e6) * 100) / 100;
  return {
    sample() {
      const t = now();
      if (first || t - prev.at >= 1000) {
        const cpu = process.cpuUsage();
        const since = first ? { at: t - process.uptime() * 1000, cpu: { user: 0, system: 0 } } : prev;
        const wallUs = Math.max(1, (t - since.at) * 1000);
        cpuPercent = Math.round(((cpu.user - since.cpu.user + cpu.system - since.cpu.system) / wallUs) * 10_000) / 100;
        prev = { at: t, cpu };
        first = false;
      }
      const h = loop!;
      const lag = { mean: Number.isFinite(h.mean) ? ms(h.mean) : null, p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) };
      h.reset();
      const m = process.memoryUsage();
      const cpuTotal = process.cpuUsage();
      return {
        cpu: { percent: cpuPercent, cores: availableParallelism(), userSeconds: cpuTotal.user / 1e6, systemSeconds: cpuTotal.system / 1e6 },
        memory: { rssBytes: m.rss, heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, systemTotalBytes: totalmem(), systemFreeBytes: freemem(), rssPercent: Math.round((m.rss / totalmem()) * 10_000) / 100 },
        eventLoopLagMs: lag,
      };
    },
  };
}
export type ProcessStats = ReturnType<typeof createProcessStats>;
