// Backfills shared by the replicas. A backfill job's run only plans: it splits the source's
// symbols into shards of `shardSize`, each shard one backfill run whose run_streams (pending,
// done, failed per symbol) are its checkpoint. Every replica's shard worker takes free shards
// under a lease per shard ("backfill-shard:<run id>", renewed by a heartbeat) and runs them as a
// resumed backfill: when a replica dies its leases expire and another one continues the shard
// with the symbols it had not done. Shards, not one lease per symbol: a lease and a run per
// few dozen symbols keep the store's runs list and the lease traffic small, and a takeover
// repeats at most the symbols in flight. On a store that one process writes at a time (QuestDB:
// its journal's batch numbers come from the writing process) only the scheduler lease's holder
// takes shards, and a replica that stops leading stops its shards (`leaderOnly`).
import { log } from "../lib/log.ts";
import { errorText } from "../lib/errors.ts";
import type { TicksyncMetrics } from "../lib/metrics.ts";
import { ingestFromConfig, type IngestSettings } from "../pipeline/run.ts";
import { createSource } from "../sources/registry.ts";
import type { RunRecord, Store } from "../stores/types.ts";
import { heartbeat } from "./lease.ts";

/** Runs of a backfill job looked at (newest first) for shards left to do. */
const RUNS_LOOKED_AT = 500;

export type BackfillPlan = { name: string; source: string; from: number; to: number | null; shardSize: number };

/** The job's shards not yet finished: queued, running, or left by a replica that ended. */
async function openShards(store: Store, jobs: ReadonlySet<string>): Promise<RunRecord[]> {
  const runs = await store.listRuns({ limit: RUNS_LOOKED_AT });
  return runs.filter((r) => r.kind === "backfill" && r.job !== undefined && jobs.has(r.job) && (r.outcome === "running" || r.outcome === "interrupted"));
}

/**
 * The backfill job's run: a new set of shards, unless the last one is not finished yet (then it
 * says how many are left: the workers are on them).
 */
export async function planBackfill(store: Store, settings: IngestSettings, job: BackfillPlan, signal?: AbortSignal): Promise<{ outcome: string }> {
  const open = await openShards(store, new Set([job.name]));
  if (open.length > 0) {
    log.info("backfill still has shards to do; no new ones planned", { job: job.name, shards: open.length });
    return { outcome: "succeeded" };
  }
  const cfg = settings.config.sources[job.source];
  if (!cfg) throw new Error(`source ${job.source} is not defined in the config`);
  const symbols = await createSource(job.source, cfg, settings.baseDir, { universes: settings.config.universes, signal }).streams();
  const shards = Math.ceil(symbols.length / job.shardSize);
  for (let i = 0; i < shards; i++) {
    const id = await store.startRun({ kind: "backfill", source: job.source, job: job.name, params: { from: job.from, to: job.to, shard: i + 1, shards } });
    await store.initRunStreams(id, symbols.slice(i * job.shardSize, (i + 1) * job.shardSize));
  }
  log.info("backfill planned", { job: job.name, source: job.source, symbols: symbols.length, shards });
  return { outcome: "succeeded" };
}

export type ShardWorkerOptions = {
  store: Store;
  /** Where shard leases are held: the replicas' coordination, or the store itself (one process). */
  leases: Pick<Store, "tryLease" | "releaseLease">;
  settings: IngestSettings;
  metrics?: TicksyncMetrics;
  replica: string;
  leaseMs: number;
  /** The backfill jobs whose shards this worker takes, and how many at once (per job name). */
  jobs: ReadonlyMap<string, { slots: number }>;
  pollMs?: number;
  /** Raised on shutdown: running shards stop (interrupted) and their leases are released. */
  signal: AbortSignal;
  /**
   * A store one process writes at a time (QuestDB): shards are taken only while this says this
   * replica leads, and stopped (interrupted, for the next leader to go on) when it stops leading.
   */
  leaderOnly?: () => boolean;
};

/** Takes free shards of the backfill jobs, one per poll, up to each job's slots. */
export function startShardWorker(o: ShardWorkerOptions): { stop(): Promise<void> } {
  const names = new Set(o.jobs.keys());
  const active = new Map<number, { job: string; done: Promise<void>; stop: AbortController }>();
  /** Shards seen finished by this process, so they are not looked at again. */
  const finished = new Set<number>();
  let polling = false;

  async function runShard(run: RunRecord, lease: string, lost: AbortController): Promise<void> {
    const stopBeat = heartbeat(o.leaseMs, () => o.leases.tryLease(lease, o.replica, o.leaseMs), (why) => {
      log.warn("lost a backfill shard's lease; stopping it", { run: run.id, why });
      lost.abort(new Error(`lease lost: ${why}`));
    });
    const p = run.params ?? {};
    try {
      log.info("backfill shard taken", { run: run.id, job: run.job, shard: p.shard, shards: p.shards, replica: o.replica });
      const s = await ingestFromConfig({
        loaded: o.settings,
        store: o.store,
        source: run.source,
        job: run.job,
        kind: "backfill",
        resumeRunId: run.id,
        range: { from: (p.from as number | undefined) ?? undefined, to: (p.to as number | null | undefined) ?? undefined },
        metrics: o.metrics,
        signal: AbortSignal.any([o.signal, lost.signal]),
      });
      if (s.outcome !== "interrupted") finished.add(run.id);
    } catch (e) {
      log.error("backfill shard failed", { run: run.id, error: errorText(e) });
    } finally {
      stopBeat();
      await o.leases.releaseLease(lease, o.replica).catch(() => {});
    }
  }

  async function poll(): Promise<void> {
    if (polling || o.signal.aborted) return;
    polling = true;
    try {
      if (o.leaderOnly && !o.leaderOnly()) {
        for (const [id, a] of active)
          if (!a.stop.signal.aborted) {
            log.warn("no longer the leader; stopping a backfill shard (one process writes this store at a time)", { run: id });
            a.stop.abort(new Error("no longer the leader"));
          }
        return;
      }
      const open = (await openShards(o.store, names)).filter((r) => !finished.has(r.id) && !active.has(r.id));
      // A random order: replicas polling together try different shards first.
      for (const r of open.sort(() => Math.random() - 0.5)) {
        const job = r.job!;
        const busy = [...active.values()].filter((a) => a.job === job).length;
        if (busy >= (o.jobs.get(job)?.slots ?? 0)) continue;
        const lease = `backfill-shard:${r.id}`;
        if (!(await o.leases.tryLease(lease, o.replica, o.leaseMs))) continue;
        // Taken: read it again, another replica may have finished it since the list was read.
        const now = await o.store.getRun(r.id);
        if (!now || (now.outcome !== "running" && now.outcome !== "interrupted")) {
          finished.add(r.id);
          await o.leases.releaseLease(lease, o.replica);
          continue;
        }
        const stop = new AbortController();
        const done = runShard(now, lease, stop).finally(() => active.delete(r.id));
        active.set(r.id, { job, done, stop });
        break; // one a poll: the other replicas get their turn
      }
    } catch (e) {
      log.warn("backfill shards: cannot look for work", { error: errorText(e) });
    } finally {
      polling = false;
    }
  }

  const timer = setInterval(() => void poll(), o.pollMs ?? 1000);
  void poll();
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all([...active.values()].map((a) => a.done));
    },
  };
}
