// Leases: a named lease one holder has until it expires or is released (replicas elect a leader by it).
import type { PgContext } from "./context.ts";

export async function tryLease({ sql }: PgContext, name: string, holder: string, ttlMs: number): Promise<boolean> {
  const rows = await sql`
    INSERT INTO leases (name, holder, expires_at) VALUES (${name}, ${holder}, now() + ${ttlMs} * interval '1 millisecond')
    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
    WHERE leases.holder = excluded.holder OR leases.expires_at < now()
    RETURNING holder`;
  return rows[0]?.holder === holder;
}

export async function releaseLease({ sql }: PgContext, name: string, holder: string): Promise<void> {
  await sql`DELETE FROM leases WHERE name = ${name} AND holder = ${holder}`;
}
