// Replicas on one store: the holder of the "scheduler" lease runs the scheduled jobs; the others
// take over within the lease's time when it stops renewing. A single process simply holds it.
import { hostname } from "node:os";
import { log } from "../lib/log.ts";
import type { TicksyncMetrics } from "../lib/metrics.ts";
import type { Store } from "../stores/types.ts";
import { errorText } from "../lib/errors.ts";

const LEASE = "scheduler";

export type SchedulerLease = {
  readonly replica: string;
  isLeader(): boolean;
  /** Stops renewing (the lease then runs out unless released). */
  stopRenewing(): void;
  /** Gives the lease up at once, when this replica holds it. */
  release(): Promise<void>;
};

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
