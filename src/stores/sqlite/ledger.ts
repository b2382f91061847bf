// The SQLite store's run ledger: checkpoints, runs and their per-stream state, and the quarantine.
import { rowToCheckpoint, rowToQuarantine, rowToRun, rowToRunStream } from "../rows.ts";
import type { Checkpoint, QuarantineRecord, RunLedger, RunRecord, RunStart, RunStream, RunSummary } from "../types.ts";
import type { SqliteContext } from "./db.ts";

export async function getCheckpoint(cx: SqliteContext, stream: string): Promise<Checkpoint | null> {
  const r = cx.db.query("SELECT stream, cursor, last_ts, last_key FROM checkpoints WHERE stream = ?").get(stream);
  return r ? rowToCheckpoint(r) : null;
}

export async function listCheckpoints(cx: SqliteContext): Promise<Checkpoint[]> {
  return cx.db.query("SELECT stream, cursor, last_ts, last_key FROM checkpoints ORDER BY stream").all().map((r) => rowToCheckpoint(r));
}

export async function startRun(cx: SqliteContext, run: RunStart): Promise<number> {
  const r = cx.db
    .query("INSERT INTO runs (kind, source, job, params, owner, started_at, outcome) VALUES (?, ?, ?, ?, ?, ?, 'running') RETURNING id")
    .get(run.kind, run.source, run.job ?? null, run.params ? JSON.stringify(run.params) : null, cx.owner, Date.now()) as { id: number };
  return r.id;
}

export async function finishRun(cx: SqliteContext, id: number, s: RunSummary): Promise<void> {
  const now = Date.now();
  cx.db
    .query(
      `UPDATE runs SET finished_at = ?, duration_ms = ? - started_at, outcome = ?, read = ?, inserted = ?, updated = ?,
         unchanged = ?, quarantined = ?, from_ts = ?, to_ts = ?, quality = ?, error = ?, failures = ? WHERE id = ?`,
    )
    .run(now, now, s.outcome, s.read, s.inserted, s.updated, s.unchanged, s.quarantined, s.fromTs, s.toTs, s.quality ? JSON.stringify(s.quality) : null, s.error ?? null, s.failures ? JSON.stringify(s.failures) : null, id);
}

export async function getRun(cx: SqliteContext, id: number): Promise<RunRecord | null> {
  const r = cx.db.query("SELECT * FROM runs WHERE id = ?").get(id);
  return r ? rowToRun(r) : null;
}

export async function reopenRun(cx: SqliteContext, id: number): Promise<void> {
  cx.db.query("UPDATE runs SET outcome = 'running', owner = ?, finished_at = NULL, error = NULL WHERE id = ?").run(cx.owner, id);
}

export async function initRunStreams(cx: SqliteContext, runId: number, streams: string[]): Promise<void> {
  const ins = cx.db.prepare("INSERT INTO run_streams (run_id, stream, status, updated_at) VALUES (?, ?, 'pending', ?) ON CONFLICT DO NOTHING");
  const now = Date.now();
  cx.db.transaction(() => {
    for (const s of streams) ins.run(runId, s, now);
  }).immediate();
}

export async function setRunStream(cx: SqliteContext, runId: number, stream: string, st: Parameters<RunLedger["setRunStream"]>[2]): Promise<void> {
  cx.db
    .query(
      `INSERT INTO run_streams (run_id, stream, status, cause, error, rows, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
       ON CONFLICT (run_id, stream) DO UPDATE SET status = ?3, cause = ?4, error = ?5, rows = run_streams.rows + ?6, updated_at = ?7`,
    )
    .run(runId, stream, st.status, st.cause ?? null, st.error ?? null, st.rows, Date.now());
}

export async function listRunStreams(cx: SqliteContext, runId: number, status?: RunStream["status"]): Promise<RunStream[]> {
  return cx.db
    .query("SELECT stream, status, cause, error, rows FROM run_streams WHERE run_id = ?1 AND (?2 IS NULL OR status = ?2) ORDER BY stream")
    .all(runId, status ?? null)
    .map(rowToRunStream);
}

export async function listRuns(cx: SqliteContext, { limit, before, source }: Parameters<RunLedger["listRuns"]>[0]): Promise<RunRecord[]> {
  const rows = cx.db
    .query(`SELECT * FROM runs WHERE id < ?1 AND (?2 IS NULL OR source = ?2) ORDER BY id DESC LIMIT ?3`)
    .all(before ?? Number.MAX_SAFE_INTEGER, source ?? null, limit);
  return rows.map((r) => rowToRun(r));
}

export async function lastSuccessByJob(cx: SqliteContext): Promise<Map<string, number>> {
  const rows = cx.db
    .query(`SELECT coalesce(job, kind || ':' || source) AS job, max(finished_at) AS t FROM runs WHERE outcome = 'succeeded' GROUP BY 1`)
    .all() as { job: string; t: number }[];
  return new Map(rows.map((r) => [r.job, r.t]));
}

export async function listQuarantine(cx: SqliteContext, { limit, before, source, rule, runId }: Parameters<RunLedger["listQuarantine"]>[0]): Promise<QuarantineRecord[]> {
  const rows = cx.db
    .query(
      `SELECT * FROM quarantine WHERE id < ?1 AND (?2 IS NULL OR source = ?2) AND (?3 IS NULL OR rule = ?3) AND (?4 IS NULL OR run_id = ?4)
       ORDER BY id DESC LIMIT ?5`,
    )
    .all(before ?? Number.MAX_SAFE_INTEGER, source ?? null, rule ?? null, runId ?? null, limit);
  return rows.map((r) => rowToQuarantine(r));
}

export async function deleteQuarantine(cx: SqliteContext, ids: number[]): Promise<number> {
  let n = 0;
  const del = cx.db.prepare("DELETE FROM quarantine WHERE id = ?");
  cx.db.transaction(() => {
    for (const id of ids) n += del.run(id).changes;
  })();
  return n;
}
