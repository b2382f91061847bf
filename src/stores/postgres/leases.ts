// Leases: a named lease one holder has until it expires or is released (replicas elect a leader
// by it, and hold each backfill shard by it); and job claims, a lease per job that also
// remembers the newest cron tick it was claimed for, so one tick runs on one replica only.
import type { PgContext } from "./context.ts";

type Cx = Pick<PgContext, "sql">;

export async function tryLease({ sql }: Cx, name: string, holder: string, ttlMs: number): Promise<boolean> {
  const rows = await sql`
    INSERT INTO leases (name, holder, expires_at) VALUES (${name}, ${holder}, now() + ${ttlMs} * interval '1 millisecond')
    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
    WHERE leases.holder = excluded.holder OR leases.expires_at < now()
    RETURNING holder`;
  return rows[0]?.holder === holder;
}

export async function releaseLease({ sql }: Cx, name: string, holder: string): Promise<void> {
  await sql`DELETE FROM leases WHERE name = ${name} AND holder = ${holder}`;
}

/**
 * Claim `job` for the tick `tick` (ms): true when no live replica holds it and no replica has
 * claimed it for this tick or a later one. Held for `ttlMs`, renewed by renewJob.
 */
export async function claimJob({ sql }: Cx, job: string, holder: string, tick: number, ttlMs: number): Promise<boolean> {
  const rows = await sql`
    INSERT INTO job_claims (job, holder, expires_at, last_tick) VALUES (${job}, ${holder}, now() + ${ttlMs} * interval '1 millisecond', ${tick})
    ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, last_tick = excluded.last_tick
    WHERE job_claims.expires_at < now() AND job_claims.last_tick < excluded.last_tick
    RETURNING holder`;
  return rows[0]?.holder === holder;
}

/** Extend the claim; false when `holder` no longer has it (it expired and another took it). */
export async function renewJob({ sql }: Cx, job: string, holder: string, ttlMs: number): Promise<boolean> {
  const rows = await sql`UPDATE job_claims SET expires_at = now() + ${ttlMs} * interval '1 millisecond' WHERE job = ${job} AND holder = ${holder} RETURNING job`;
  return rows.length === 1;
}

/** The run ended: the job is free for the next tick (last_tick stays, so not for this one). */
export async function releaseJob({ sql }: Cx, job: string, holder: string): Promise<void> {
  await sql`UPDATE job_claims SET expires_at = now() - interval '1 millisecond' WHERE job = ${job} AND holder = ${holder}`;
}
