// The benches' wait for QuestDB to apply a WAL table's transactions (a load is done when its
// rows are readable, not when the last request was answered).
import type postgres from "postgres";

export async function walApplied(sql: postgres.Sql, table: string, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [r] = await sql`SELECT writerTxn, sequencerTxn, suspended FROM wal_tables() WHERE name = ${table}`;
    if (!r) throw new Error(`QuestDB has no WAL table ${table}`);
    if (r.suspended) throw new Error(`QuestDB suspended the WAL of ${table} (see its log)`);
    if (Number(r.writerTxn) >= Number(r.sequencerTxn)) return;
    if (Date.now() > deadline) throw new Error(`QuestDB did not apply the WAL of ${table} in time`);
    await Bun.sleep(10);
  }
}
