// Leases on QuestDB, which has no compare-and-set and no transaction. The one atomic step it has is
// CREATE TABLE: of several processes creating one table name, exactly one succeeds (tested in
// test/questdb-leases.test.ts). So a lease is a line of epochs, one small table each
// (`<prefix>lease_<name>_<epoch>`), written only by the process that created it: rows of
// (holder, expires_at), the last one in force. A holder renews by adding a row while its last one
// is in force; anyone else takes over by creating the next epoch once the newest epoch's last row
// has run out. Every step that grants ends by reading the epochs again: a holder whose renewal
// crossed a takeover sees the newer epoch and stops; a taker waits until the epoch before its own
// has run out (its holder's last renewal included, which that read sees: non-WAL tables are read
// as soon as written). Expiry is by QuestDB's clock, so replicas' clocks do not matter.
import type { QdbContext } from "./context.ts";

/** A lease name as table-name text: its letters and digits, and a hash that keeps names apart. */
const slug = (name: string) => `${name.toLowerCase().replace(/[^a-z0-9]/g, "").slice(0, 24)}_${Bun.hash(name).toString(36)}`;
const stem = (cx: QdbContext, name: string) => `${cx.T.lease}_${slug(name)}_`;
const table = (cx: QdbContext, name: string, epoch: number) => `${stem(cx, name)}${epoch}`;

/** The lease's epochs that exist, newest first. */
async function epochs(cx: QdbContext, name: string): Promise<number[]> {
  const s = stem(cx, name);
  const out: number[] = [];
  for (const r of await cx.sql`SELECT table_name FROM tables() WHERE table_name LIKE ${`${s}%`}`) {
    const rest = String(r.table_name).slice(s.length);
    if (String(r.table_name).startsWith(s) && /^\d+$/.test(rest)) out.push(Number(rest));
  }
  return out.sort((a, b) => b - a);
}

const missing = (e: unknown) => /does not exist|table not found/i.test(String((e as Error)?.message ?? e));

/** An epoch's row in force: its holder and whether it has not run out; null when it has none (or is gone). */
async function lastRow(cx: QdbContext, t: string): Promise<{ holder: string; live: boolean } | null> {
  try {
    const [r] = await cx.sql.unsafe(`SELECT holder, expires_at > now() AS live FROM "${t}" LIMIT -1`);
    return r ? { holder: String(r.holder), live: r.live === true } : null;
  } catch (e) {
    // Dropped by a later holder: it ran out long ago.
    if (missing(e)) return null;
    throw e;
  }
}

const claim = (cx: QdbContext, t: string, holder: string, ttlMs: number) =>
  cx.sql.unsafe(`INSERT INTO "${t}" (holder, expires_at) VALUES ($1, dateadd('T', ${Math.round(ttlMs)}, now()))`, [holder]);

/**
 * After a claim in epoch `e`: granted when no later epoch exists and the epoch before has run
 * out; epochs older than that one are nobody's any more and are dropped.
 */
async function granted(cx: QdbContext, name: string, e: number, holder: string, gone?: Gone): Promise<boolean> {
  const list = await epochs(cx, name);
  if (list[0] !== e) return false;
  const prev = list.find((x) => x < e);
  if (prev === undefined) return true;
  const row = await lastRow(cx, table(cx, name, prev));
  if (row?.live && row.holder !== holder && !gone?.(row.holder)) return false;
  for (const old of list) if (old < prev) await cx.sql.unsafe(`DROP TABLE IF EXISTS "${table(cx, name, old)}"`).catch(() => {});
  return true;
}

/** Whether a holder is known to have ended (a process of this host that is gone): its lease is free at once. */
export type Gone = (holder: string) => boolean;

export async function tryLease(cx: QdbContext, name: string, holder: string, ttlMs: number, gone?: Gone): Promise<boolean> {
  const [h] = await epochs(cx, name);
  if (h !== undefined) {
    const row = await lastRow(cx, table(cx, name, h));
    if (row?.live && (row.holder === holder || !gone?.(row.holder))) {
      if (row.holder !== holder) return false;
      await claim(cx, table(cx, name, h), holder, ttlMs);
      return granted(cx, name, h, holder, gone);
    }
  }
  // Free (never held, released, run out, or its taker ended before its first row): the next epoch.
  const next = (h ?? 0) + 1;
  try {
    await cx.sql.unsafe(`CREATE TABLE "${table(cx, name, next)}" (holder VARCHAR, expires_at TIMESTAMP)`);
  } catch (e) {
    // Another process created it first (or is creating it: QuestDB then says the name is busy).
    if (/already exists|table busy/i.test(String((e as Error)?.message ?? e))) return false;
    throw e;
  }
  await claim(cx, table(cx, name, next), holder, ttlMs);
  return granted(cx, name, next, holder, gone);
}

export async function releaseLease(cx: QdbContext, name: string, holder: string): Promise<void> {
  const [h] = await epochs(cx, name);
  if (h === undefined) return;
  const row = await lastRow(cx, table(cx, name, h));
  if (row?.live && row.holder === holder) await claim(cx, table(cx, name, h), holder, -1).then(() => {});
}
