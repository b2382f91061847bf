// The run ledger: runs and their per-stream state, checkpoints and quarantine records; with the
// statements a batch's transaction makes on them (its run's counters, checkpoint, quarantine).
// Rows map to records as in every store (../rows.ts); jsonb columns arrive parsed (jsonValue).
import type postgres from "postgres";
import { tsRange, type BarColumns } from "../../domain/columns.ts";
import { ownerGone } from "../common.ts";
import { jsonValue, rowToCheckpoint, rowToQuarantine, rowToRun, rowToRunStream } from "../rows.ts";
import type { Checkpoint, CommitBatch, QuarantineRecord, RunRecord, RunStart, RunStream, RunSummary, Store } from "../types.ts";
import type { PgContext } from "./context.ts";
import { queueRun, queueRuns } from "./rollups/index.ts";
import { rollUpQueued } from "./rollups/worker.ts";
import { ms, type Tx } from "./sql.ts";

// --- checkpoints ---

export async function getCheckpoint({ sql }: PgContext, stream: string): Promise<Checkpoint | null> {
  const [r] = await sql`SELECT stream, cursor, last_ts, last_key FROM checkpoints WHERE stream = ${stream}`;
  return r ? ({ stream: r.stream, cursor: r.cursor, lastTs: ms(r.last_ts), lastKey: r.last_key } as Checkpoint) : null;
}

export async function listCheckpoints({ sql }: PgContext): Promise<Checkpoint[]> {
  const rows = await sql`SELECT stream, cursor, last_ts, last_key FROM checkpoints ORDER BY stream`;
  return rows.map((r) => rowToCheckpoint(r, jsonValue));
}

export async function putCheckpoints({ sql }: PgContext, list: Checkpoint[], runId: number): Promise<void> {
  if (list.length === 0) return;
  await sql.begin(async (tx) => {
    for (const c of list) await checkpointBatch(tx, c, runId);
  });
}

// --- runs ---

export async function startRun({ sql, owner }: PgContext, run: RunStart): Promise<number> {
  const [r] = await sql`
    INSERT INTO runs (kind, source, job, params, owner, outcome)
    VALUES (${run.kind}, ${run.source}, ${run.job ?? null}, ${run.params ? sql.json(run.params as postgres.JSONValue) : null}, ${owner}, 'running') RETURNING id`;
  return Number(r!.id);
}

export async function finishRun({ sql, worker }: PgContext, id: number, s: RunSummary): Promise<void> {
  // Queued for the rollups in the transaction that marks it finished; rolled up later, in the
  // background of a process that keeps them (serve), never here: the load is done.
  await sql.begin(async (tx) => {
    await queueRun(tx, id, s);
    await tx`
    UPDATE runs SET finished_at = now(), duration_ms = (extract(epoch FROM now() - started_at) * 1000)::bigint, outcome = ${s.outcome},
      read = ${s.read}, inserted = ${s.inserted}, updated = ${s.updated}, unchanged = ${s.unchanged}, quarantined = ${s.quarantined},
      from_ts = ${s.fromTs === null ? null : new Date(s.fromTs)}, to_ts = ${s.toTs === null ? null : new Date(s.toTs)},
      quality = ${s.quality ? tx.json(s.quality as unknown as postgres.JSONValue) : null}, error = ${s.error ?? null},
      failures = ${s.failures ? tx.json(s.failures) : null}
    WHERE id = ${id}`;
  });
  if (worker.background) void rollUpQueued(worker);
}

export async function getRun({ sql }: PgContext, id: number): Promise<RunRecord | null> {
  const [r] = await sql`SELECT * FROM runs WHERE id = ${id}`;
  return r ? rowToRun(r, jsonValue) : null;
}

export async function reopenRun({ sql, owner }: PgContext, id: number): Promise<void> {
  await sql`UPDATE runs SET outcome = 'running', owner = ${owner}, finished_at = NULL, error = NULL WHERE id = ${id}`;
}

export async function initRunStreams({ sql }: PgContext, runId: number, streams: string[]): Promise<void> {
  if (streams.length === 0) return;
  await sql`INSERT INTO run_streams (run_id, stream, status) SELECT ${runId}, unnest(${sql.array(streams)}::text[]), 'pending' ON CONFLICT DO NOTHING`;
}

export async function setRunStream({ sql }: PgContext, runId: number, stream: string, st: Parameters<Store["setRunStream"]>[2]): Promise<void> {
  await sql`
    INSERT INTO run_streams (run_id, stream, status, cause, error, rows) VALUES (${runId}, ${stream}, ${st.status}, ${st.cause ?? null}, ${st.error ?? null}, ${st.rows})
    ON CONFLICT (run_id, stream) DO UPDATE SET status = excluded.status, cause = excluded.cause, error = excluded.error,
      rows = run_streams.rows + excluded.rows, updated_at = now()`;
}

export async function listRunStreams({ sql }: PgContext, runId: number, status?: Parameters<Store["listRunStreams"]>[1]): Promise<RunStream[]> {
  const rows = await sql`SELECT stream, status, cause, error, rows FROM run_streams WHERE run_id = ${runId} AND (${status ?? null}::text IS NULL OR status = ${status ?? null}) ORDER BY stream`;
  return rows.map(rowToRunStream);
}

export async function listRuns({ sql }: PgContext, { limit, before, source }: Parameters<Store["listRuns"]>[0]): Promise<RunRecord[]> {
  const rows = await sql`
    SELECT * FROM runs WHERE id < ${before ?? Number.MAX_SAFE_INTEGER} AND (${source ?? null}::text IS NULL OR source = ${source ?? null})
    ORDER BY id DESC LIMIT ${limit}`;
  return rows.map((r) => rowToRun(r, jsonValue));
}

export async function lastSuccessByJob({ sql }: PgContext): Promise<Map<string, number>> {
  const rows = await sql`SELECT coalesce(job, kind || ':' || source) AS job, max(finished_at) AS t FROM runs WHERE outcome = 'succeeded' GROUP BY 1`;
  return new Map(rows.map((r) => [r.job as string, ms(r.t)!]));
}

// --- quarantine ---

export async function listQuarantine({ sql }: PgContext, { limit, before, source, rule, runId }: Parameters<Store["listQuarantine"]>[0]): Promise<QuarantineRecord[]> {
  const rows = await sql`
    SELECT * FROM quarantine WHERE id < ${before ?? Number.MAX_SAFE_INTEGER} AND (${source ?? null}::text IS NULL OR source = ${source ?? null})
      AND (${rule ?? null}::text IS NULL OR rule = ${rule ?? null}) AND (${runId ?? null}::bigint IS NULL OR run_id = ${runId ?? null})
    ORDER BY id DESC LIMIT ${limit}`;
  return rows.map((r) => rowToQuarantine(r, jsonValue));
}

export async function deleteQuarantine({ sql }: PgContext, ids: number[]): Promise<number> {
  if (ids.length === 0) return 0;
  const r = await sql`DELETE FROM quarantine WHERE id = ANY(${sql.array(ids)}::bigint[])`;
  return r.count;
}

/** Runs left 'running' by a process of this host that has ended are marked interrupted; their committed bars are queued for the rollups. */
export async function recoverInterruptedRuns({ sql, owner }: PgContext): Promise<void> {
  const interrupted: number[] = [];
  for (const r of await sql`SELECT id, owner FROM runs WHERE outcome = 'running'`) {
    if (ownerGone(String(r.owner), owner)) {
      await sql`UPDATE runs SET outcome = 'interrupted', finished_at = now(), error = 'process ended before the run finished' WHERE id = ${r.id}`;
      interrupted.push(Number(r.id));
    }
  }
  // Their committed bars stay: queued for the rollups like a finished run's.
  await queueRuns(sql, interrupted);
}

// --- a batch's statements, sent together in its transaction (not awaited here) ---

/** The batch's quarantine records: new ones inserted, changed ones replaced. */
export function quarantineBatch(tx: Tx, b: CommitBatch) {
  const rows = b.quarantine.map((q) => ({
    run_id: b.runId,
    source: b.source,
    locator: q.locator,
    rule: q.rule,
    reason: q.reason,
    symbol: q.symbol ?? null,
    ts: q.ts == null ? null : new Date(q.ts),
    raw: JSON.parse(JSON.stringify(q.raw ?? {})),
  }));
  return tx`
    INSERT INTO quarantine ${tx(rows, "run_id", "source", "locator", "rule", "reason", "symbol", "ts", "raw")}
    ON CONFLICT (source, locator) DO UPDATE SET run_id = excluded.run_id, rule = excluded.rule, reason = excluded.reason,
      symbol = excluded.symbol, ts = excluded.ts, raw = excluded.raw
    WHERE quarantine.rule IS DISTINCT FROM excluded.rule OR quarantine.raw IS DISTINCT FROM excluded.raw`;
}

/** The batch added to its run's counters and ts range. */
export function countBatch(tx: Tx, b: CommitBatch, c: BarColumns, counts: { inserted: number; updated: number; unchanged: number }) {
  const { inserted, updated, unchanged } = counts;
  const range = tsRange(c);
  const minTs = range ? new Date(range.min) : null;
  const maxTs = range ? new Date(range.max) : null;
  return tx`
    UPDATE runs SET read = read + ${b.read}, inserted = inserted + ${inserted}, updated = updated + ${updated},
      unchanged = unchanged + ${unchanged}, quarantined = quarantined + ${b.quarantine.length},
      from_ts = CASE WHEN ${minTs}::timestamptz IS NULL THEN from_ts ELSE least(from_ts, ${minTs}::timestamptz) END,
      to_ts = CASE WHEN ${maxTs}::timestamptz IS NULL THEN to_ts ELSE greatest(to_ts, ${maxTs}::timestamptz) END
    WHERE id = ${b.runId}`;
}

/** A checkpoint (a batch's, or one put as it is), replacing its stream's. */
export function checkpointBatch(tx: Tx, cp: Checkpoint, runId: number) {
  return tx`
    INSERT INTO checkpoints (stream, cursor, last_ts, last_key, run_id, updated_at)
    VALUES (${cp.stream}, ${tx.json(cp.cursor)}, ${cp.lastTs === null ? null : new Date(cp.lastTs)}, ${cp.lastKey}, ${runId}, now())
    ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor, last_ts = excluded.last_ts, last_key = excluded.last_key,
      run_id = excluded.run_id, updated_at = excluded.updated_at`;
}
