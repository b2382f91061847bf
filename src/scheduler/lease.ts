// Replicas on one store. The holder of the "scheduler" lease leads: it evaluates alerts and
// starts on-events syncs (and, on a store without job claims, runs every scheduled job); the
// others take over within the lease's time when it stops renewing. A single process simply
// holds it. On PostgreSQL the jobs themselves are shared: each run is claimed (jobClaims), held
// by a heartbeat, and free again when it ends or its replica stops renewing.
import { hostname } from "node:os";
import { log } from "../lib/log.ts";
import type { TicksyncMetrics } from "../lib/metrics.ts";
import type { Store } from "../stores/types.ts";
import { errorText } from "../lib/errors.ts";
import type { JobClaims, JobHold } from "./scheduler.ts";

const LEASE = "scheduler";

export type SchedulerLease = {
  readonly replica: string;
  isLeader(): boolean;
  /** Stops renewing (the lease then runs out unless released). */
  stopRenewing(): void;
  /** Gives the lease up at once, when this replica holds it. */
  release(): Promise<void>;
};

/** What replicas coordinate through (stores/postgres/limits.ts): leases and job claims. */
export type Coordinator = Pick<Store, "tryLease" | "releaseLease"> & {
  claimJob(job: string, holder: string, tick: number, ttlMs: number): Promise<boolean>;
  renewJob(job: string, holder: string, ttlMs: number): Promise<boolean>;
  releaseJob(job: string, holder: string): Promise<void>;
};

/**
 * Calls `renew` every third of `ttlMs` until stopped; `lost` is called once when it says the
 * lease is no longer ours (or it keeps failing past the lease's time: we cannot know we hold it).
 */
export function heartbeat(ttlMs: number, renew: () => Promise<boolean>, lost: (why: string) => void): () => void {
  let ok = Date.now();
  let done = false;
  const timer = setInterval(async () => {
    try {
      if (await renew()) ok = Date.now();
      else if (!done) {
        done = true;
        lost("another replica holds it");
      }
    } catch (e) {
      if (!done && Date.now() - ok > ttlMs) {
        done = true;
        lost(`renewal failing: ${errorText(e)}`);
      }
    }
  }, Math.max(100, ttlMs / 3));
  return () => clearInterval(timer);
}

/** Job claims of this replica: a claimed job is renewed while it runs and released when it ends. */
export function jobClaims(c: Coordinator, o: { replica: string; leaseMs: number }): JobClaims {
  return {
    async claim(job: string, tick: number): Promise<JobHold | null> {
      if (!(await c.claimJob(job, o.replica, tick, o.leaseMs))) return null;
      const stop = heartbeat(o.leaseMs, () => c.renewJob(job, o.replica, o.leaseMs), (why) => log.warn("lost the job's claim while it runs", { job, why }));
      return {
        release: async () => {
          stop();
          await c.releaseJob(job, o.replica);
        },
      };
    },
  };
}

/** Takes (or follows) the scheduler lease now and renews it at a third of its length. */
export async function holdSchedulerLease(store: Pick<Store, "tryLease" | "releaseLease">, o: { leaseMs: number; metrics: TicksyncMetrics }): Promise<SchedulerLease> {
  const replica = `${hostname()}:${process.pid}:${Date.now().toString(36)}`;
  let leader = false;
  const renew = async () => {
    try {
      const now = await store.tryLease(LEASE, replica, o.leaseMs);
      if (now !== leader) log.info(now ? "leading: this replica runs the scheduled jobs" : "following: another replica runs the scheduled jobs", { replica });
      leader = now;
    } catch (e) {
      // Unsure whether we still hold it: stop leading rather than run jobs twice.
      if (leader) log.warn("lease renewal failed; following until it succeeds", { error: errorText(e) });
      leader = false;
    }
    o.metrics.leader.set({ replica }, leader ? 1 : 0);
  };
  await renew();
  const timer = setInterval(() => void renew(), Math.max(250, o.leaseMs / 3));
  return {
    replica,
    isLeader: () => leader,
    stopRenewing: () => clearInterval(timer),
    release: async () => {
      if (leader) await store.releaseLease(LEASE, replica).catch(() => {});
    },
  };
}
