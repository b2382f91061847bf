// What replicas on one PostgreSQL database coordinate through, on a small pool of its own (a
// heartbeat or a rate grant must not queue behind the store's bulk writes): leases, job claims,
// and each provider's rate limit as one token bucket row (rate_buckets, migration 14). A grant is
// one round trip (SELECT rate_reserve(...): lock the row, book the next slot, return the wait),
// so the replicas together make at most one per provider call they are allowed.
import { createHash } from "node:crypto";
import postgres from "postgres";
import type { Sql } from "./sql.ts";
import { claimJob, releaseJob, releaseLease, renewJob, tryLease } from "./leases.ts";
import { parsePgUrl } from "./url.ts";

/** A bucket's row key: a digest of the limiter's key (it names the provider's endpoint and API key). */
const bucketKey = (key: string) => createHash("sha256").update(key).digest("hex").slice(0, 40);

export type PgCoordination = ReturnType<typeof pgCoordination>;

/** The coordination of replicas on the store at `url` (its migrations applied). */
export function pgCoordination(url: string, o: { max?: number } = {}) {
  const { url: connUrl, schema } = parsePgUrl(url);
  const sql: Sql = postgres(connUrl, { max: o.max ?? 2, onnotice: () => {}, connection: { search_path: schema, application_name: "ticksync-coordination" } });
  const cx = { sql };
  return {
    tryLease: (name: string, holder: string, ttlMs: number) => tryLease(cx, name, holder, ttlMs),
    releaseLease: (name: string, holder: string) => releaseLease(cx, name, holder),
    claimJob: (job: string, holder: string, tick: number, ttlMs: number) => claimJob(cx, job, holder, tick, ttlMs),
    renewJob: (job: string, holder: string, ttlMs: number) => renewJob(cx, job, holder, ttlMs),
    releaseJob: (job: string, holder: string) => releaseJob(cx, job, holder),
    async reserve(key: string, r: { stepMs: number; windowCalls: number; windowMs: number; burst: number }): Promise<number> {
      const [row] = await sql`SELECT rate_reserve(${bucketKey(key)}, ${r.stepMs}::float8, ${r.windowCalls}::int, ${r.windowMs}::float8, ${r.burst}::int) AS wait`;
      return Number(row!.wait);
    },
    async pause(key: string, ms: number): Promise<void> {
      await sql`
        UPDATE rate_buckets SET paused_until = greatest(paused_until, extract(epoch FROM clock_timestamp()) * 1000 + ${ms}::float8)
        WHERE key = ${bucketKey(key)}`;
    },
    close: () => sql.end({ timeout: 5 }),
  };
}
