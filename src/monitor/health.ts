// Every dependency's state in one answer (GET /api/health, /readyz, the `dependency` alert): the
// store (answers, migrated, latency), each sink (a real call: reachable and signed in), each
// source's last success and failure (from the run ledger), the scheduler and the replica lease,
// disk and memory. A probe round is shared: requests within `cacheMs` of the last round get its
// result, and concurrent ones wait for the same round, so a flood of requests makes one call per
// sink per `cacheMs` at most.
import { statfsSync } from "node:fs";
import { freemem, totalmem } from "node:os";
import type { Store } from "../stores/types.ts";
import { redact } from "../lib/redact.ts";
import { errorText } from "../lib/errors.ts";

export type DependencyStatus = "up" | "down" | "degraded";

/** One dependency: `name` is what readiness and alert rules select (store, sink:<name>, disk…). */
export type DependencyState = {
  name: string;
  kind: "store" | "sink" | "source" | "scheduler" | "leader" | "disk" | "memory";
  status: DependencyStatus;
  /** Why it is not up, in one line (null when up). */
  reason: string | null;
  latencyMs: number | null;
  details: Record<string, unknown>;
};

export type HealthReport = {
  status: "healthy" | "degraded" | "unhealthy";
  checkedAt: number;
  /** What gates readiness (server.readiness) and whether those are all up. */
  ready: boolean;
  readiness: string[];
  dependencies: DependencyState[];
};

/** A sink as the health checks see it: a real call, no retries. */
export type ProbedSink = {
  name: string;
  kind: string;
  location: string;
  probe(): Promise<{ reachable: boolean; authenticated: boolean; latencyMs: number; error: string | null }>;
};

/** What the scheduler tells of its jobs (the scheduler's JobStatus, the fields read here). */
type JobView = { name: string; running: boolean; lastOutcome: string | null; lastFinishedAt: string | null; lastError: string | null };

export type HealthInputs = {
  store: Store;
  sinks: ProbedSink[];
  /** Configured source names: each one's last success and failure come from the run ledger. */
  sources: string[];
  jobs?: () => JobView[];
  lease?: { replica: string; isLeader(): boolean };
  /** The directory of the store's volume (disk free bytes). */
  dataPath?: string;
  /** Which dependencies gate readiness: "store", "sinks", "sink:<name>", "disk". */
  readiness: string[];
  cacheMs: number;
  /** Disk is degraded below this share free. */
  minFreeRatio?: number;
  now?: () => number;
};

/** Runs looked at per source for its last success and failure. */
const RUNS_PER_SOURCE = 200;
const DISK_DEGRADED_RATIO = 0.05;
/** A sink's probe as a whole (its health call, sign-in and authenticated call) takes at most this long. */
const PROBE_TIMEOUT_MS = 10_000;

const dep = (name: string, kind: DependencyState["kind"], status: DependencyStatus, reason: string | null, latencyMs: number | null, details: Record<string, unknown>): DependencyState => ({
  name,
  kind,
  status,
  reason: reason === null ? null : redact(reason),
  latencyMs,
  details,
});

async function probeStore(store: Store): Promise<DependencyState> {
  const t0 = performance.now();
  try {
    const r = await store.ready();
    const latencyMs = Math.round((performance.now() - t0) * 10) / 10;
    const details = { kind: store.kind, location: store.location, schemaVersion: r.schemaVersion, expectedVersion: r.expectedVersion, migrated: r.schemaVersion === r.expectedVersion };
    if (r.ok) return dep("store", "store", "up", null, latencyMs, details);
    return dep("store", "store", "down", r.error ?? `schema version ${r.schemaVersion}, expected ${r.expectedVersion}`, latencyMs, details);
  } catch (e) {
    return dep("store", "store", "down", errorText(e), Math.round(performance.now() - t0), { kind: store.kind, location: store.location });
  }
}

async function probeSink(s: ProbedSink): Promise<DependencyState> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  // A server that takes the connection and never answers must not hold every caller of the round.
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS / 1000} s`)), PROBE_TIMEOUT_MS);
  });
  try {
    const p = await Promise.race([s.probe(), late]);
    const details = { kind: s.kind, location: s.location, reachable: p.reachable, authenticated: p.authenticated };
    return dep(`sink:${s.name}`, "sink", p.reachable && p.authenticated ? "up" : "down", p.error, p.latencyMs, details);
  } catch (e) {
    return dep(`sink:${s.name}`, "sink", "down", errorText(e), null, { kind: s.kind, location: s.location, reachable: false, authenticated: false });
  } finally {
    clearTimeout(timer);
  }
}

const iso = (t: number | null | undefined) => (t === null || t === undefined ? null : new Date(t).toISOString());

/** A source's last success and last failure among its newest runs. Failing now: its newest finished run failed. */
async function sourceState(store: Store, source: string): Promise<DependencyState> {
  const runs = await store.listRuns({ limit: RUNS_PER_SOURCE, source });
  const finished = runs.filter((r) => r.outcome !== "running");
  const ok = finished.find((r) => r.outcome === "succeeded");
  const bad = finished.find((r) => r.outcome === "failed" || r.outcome === "interrupted");
  const failing = finished[0] !== undefined && finished[0] === bad;
  const details = {
    lastSuccess: ok ? { run: ok.id, at: iso(ok.finishedAt ?? ok.startedAt) } : null,
    lastFailure: bad ? { run: bad.id, at: iso(bad.finishedAt ?? bad.startedAt), error: bad.error === null ? null : redact(bad.error) } : null,
    running: runs.some((r) => r.outcome === "running"),
  };
  return dep(`source:${source}`, "source", failing ? "degraded" : "up", failing ? `last run ${bad!.id} ${bad!.outcome}: ${bad!.error ?? "no error recorded"}` : null, null, details);
}

function diskState(path: string, minFreeRatio: number): DependencyState {
  try {
    const st = statfsSync(path);
    const free = Number(st.bavail) * Number(st.bsize);
    const total = Number(st.blocks) * Number(st.bsize);
    const ratio = total ? free / total : 0;
    const low = ratio < minFreeRatio;
    return dep("disk", "disk", low ? "degraded" : "up", low ? `${(ratio * 100).toFixed(1)}% free at ${path} (below ${(minFreeRatio * 100).toFixed(1)}%)` : null, null, { path, freeBytes: free, totalBytes: total, freeRatio: Math.round(ratio * 10_000) / 10_000 });
  } catch (e) {
    return dep("disk", "disk", "down", `cannot stat ${path}: ${errorText(e)}`, null, { path });
  }
}

function memoryState(): DependencyState {
  const m = process.memoryUsage();
  return dep("memory", "memory", "up", null, null, { rssBytes: m.rss, heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, systemFreeBytes: freemem(), systemTotalBytes: totalmem() });
}

function schedulerStates(inputs: HealthInputs): DependencyState[] {
  const out: DependencyState[] = [];
  if (inputs.jobs) {
    const jobs = inputs.jobs();
    const failing = jobs.filter((j) => j.lastOutcome === "failed");
    out.push(
      dep("scheduler", "scheduler", failing.length ? "degraded" : "up", failing.length ? `last run failed: ${failing.map((j) => `${j.name} (${j.lastError ?? "no error recorded"})`).join("; ")}` : null, null, {
        jobs: jobs.length,
        running: jobs.filter((j) => j.running).map((j) => j.name),
        failing: failing.map((j) => j.name),
      }),
    );
  }
  if (inputs.lease) out.push(dep("leader", "leader", "up", null, null, { replica: inputs.lease.replica, leader: inputs.lease.isLeader() }));
  return out;
}

/** Does `name` (a dependency) fall under the selector `sel` (a readiness entry or an alert's)? */
export function selects(sel: string, name: string): boolean {
  if (sel === name) return true;
  if (sel === "sinks") return name.startsWith("sink:");
  if (sel === "sources") return name.startsWith("source:");
  return false;
}

/** Does this dependency gate readiness? The store always does; the others when `readiness` names them. */
export const gates = (readiness: string[], name: string): boolean => name === "store" || readiness.some((sel) => selects(sel, name));

/** The gating dependencies are all up (a degraded disk still serves; down does not). */
export function readyOf(deps: DependencyState[], readiness: string[]): boolean {
  return deps.every((d) => d.status !== "down" || !gates(readiness, d.name));
}

export function createHealth(inputs: HealthInputs) {
  const now = inputs.now ?? Date.now;
  let last: HealthReport | null = null;
  let round: Promise<HealthReport> | null = null;

  async function probeAll(): Promise<HealthReport> {
    const [store, sinks, sources] = await Promise.all([
      probeStore(inputs.store),
      Promise.all(inputs.sinks.map(probeSink)),
      // The run ledger is in the store: when it is down the sources are not looked at.
      Promise.all(inputs.sources.map((s) => sourceState(inputs.store, s).catch((e) => dep(`source:${s}`, "source", "degraded", `cannot read its runs: ${errorText(e)}`, null, {})))),
    ]);
    const deps = [store, ...sinks, ...sources, ...schedulerStates(inputs), ...(inputs.dataPath ? [diskState(inputs.dataPath, inputs.minFreeRatio ?? DISK_DEGRADED_RATIO)] : []), memoryState()];
    const ready = readyOf(deps, inputs.readiness);
    const anyDown = deps.some((d) => d.status !== "up");
    return { status: !ready ? "unhealthy" : anyDown ? "degraded" : "healthy", checkedAt: now(), ready, readiness: inputs.readiness, dependencies: deps };
  }

  return {
    /** The latest probe round: cached for cacheMs; callers during a round share it. */
    async check(): Promise<HealthReport> {
      if (last && now() - last.checkedAt < inputs.cacheMs) return last;
      round ??= probeAll().finally(() => {
        round = null;
      });
      last = await round;
      return last;
    },
    readiness: inputs.readiness,
  };
}
export type Health = ReturnType<typeof createHealth>;
