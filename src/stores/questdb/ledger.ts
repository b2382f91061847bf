// The QuestDB store's run ledger: checkpoints and run counters (rows of the progress table,
// written over ILP with their batch; what this process wrote is read back from memory), runs
// and run streams (PG-wire tables), and the quarantine.
import { date, ms, rowToCheckpoint, rowToQuarantine, rowToRun, rowToRunStream } from "../rows.ts";
import type { Checkpoint, QuarantineRecord, RunLedger, RunRecord, RunStart, RunStream, RunSummary } from "../types.ts";
import { nextId, type Counters, type QdbContext } from "./context.ts";
import { checkpointLine, counterLine, drain, progressSettled, refusal, settled, writeProgress } from "./queue.ts";

function rowToCounters(r: any): Counters {
  return { read: Number(r.read), inserted: Number(r.inserted), updated: Number(r.updated), unchanged: Number(r.unchanged), quarantined: Number(r.quarantined), fromTs: ms(r.from_ts), toTs: ms(r.to_ts) };
}

const withCounters = (run: RunRecord, c: Counters | undefined): RunRecord => (c ? { ...run, ...c, stored: c.inserted + c.updated } : run);

/** The counters stored for these runs (those this process keeps are newer). */
async function storedCounters(cx: QdbContext, ids: number[]): Promise<Map<string, Counters>> {
  const { sql, T } = cx;
  const out = new Map<string, Counters>();
  const want = ids.filter((id) => !cx.counters.has(id)).map(String);
  if (want.length === 0) return out;
  await progressSettled(cx);
  for (let i = 0; i < want.length; i += 500)
    for (const r of await sql`SELECT key, read, inserted, updated, unchanged, quarantined, from_ts, to_ts FROM ${sql(T.progress)} WHERE kind = 'run' AND key IN ${sql(want.slice(i, i + 500))}`)
      out.set(r.key, rowToCounters(r));
  return out;
}
const countersOf = (cx: QdbContext, id: number, stored: Map<string, Counters>) => cx.counters.get(id) ?? stored.get(String(id));

export async function getCheckpoint(cx: QdbContext, stream: string): Promise<Checkpoint | null> {
  const { sql, T } = cx;
  await drain(cx);
  const mine = cx.checkpointsWritten.get(stream);
  if (mine) return mine;
  await progressSettled(cx);
  const [r] = await sql`SELECT key AS stream, cursor, last_ts, last_key FROM ${sql(T.progress)} WHERE kind = 'checkpoint' AND key = ${stream}`;
  return r ? rowToCheckpoint(r) : null;
}

export async function listCheckpoints(cx: QdbContext): Promise<Checkpoint[]> {
  const { sql, T } = cx;
  await progressSettled(cx);
  const rows = await sql`SELECT key AS stream, cursor, last_ts, last_key FROM ${sql(T.progress)} WHERE kind = 'checkpoint' ORDER BY key`;
  return rows.map((r) => rowToCheckpoint(r));
}

export const putCheckpoints = (cx: QdbContext, list: Checkpoint[], runId: number): Promise<void> =>
  cx.exclusive(async () => {
    await drain(cx);
    const now = Date.now();
    for (let i = 0; i < list.length; i += cx.linesPerRequest) {
      const part = list.slice(i, i + cx.linesPerRequest);
      await writeProgress(cx, part.map((c) => checkpointLine(cx, c, runId, now)).join(""));
      for (const c of part) cx.checkpointsWritten.set(c.stream, c);
    }
  });

export const startRun = (cx: QdbContext, run: RunStart): Promise<number> =>
  cx.exclusive(async () => {
    const { sql, T } = cx;
    const id = await nextId(cx, "runs");
    await sql`INSERT INTO ${sql(T.runs)} (id, kind, source, job, params, owner, started_at, outcome, read, inserted, updated, unchanged, quarantined)
              VALUES (${id}, ${run.kind}, ${run.source}, ${run.job ?? null}, ${run.params ? JSON.stringify(run.params) : null}, ${cx.owner}, ${new Date()}, 'running', 0, 0, 0, 0, 0)`;
    return id;
  });

export const finishRun = (cx: QdbContext, id: number, s: RunSummary): Promise<void> =>
  cx.exclusive(async () => {
    const { sql, T } = cx;
    await settled(cx); // a finished run's bars are written and readable
    const earlier = refusal(cx, id);
    if (earlier) {
      // Not all of its bars are stored: the run failed, whatever its streams saw.
      cx.refused.delete(id);
      s = { ...s, outcome: "failed", error: s.error ? `${earlier.message}; ${s.error}` : earlier.message };
    }
    // The counters as the summary has them, where commitBatch keeps them, then the run's row.
    const final: Counters = { read: s.read, inserted: s.inserted, updated: s.updated, unchanged: s.unchanged, quarantined: s.quarantined, fromTs: s.fromTs, toTs: s.toTs };
    const now = new Date();
    await writeProgress(cx, counterLine(cx, id, final, now.getTime()));
    cx.counters.set(id, final);
    const [r] = await sql`SELECT started_at FROM ${sql(T.runs)} WHERE id = ${id}`;
    await sql`UPDATE ${sql(T.runs)} SET finished_at = ${now}, duration_ms = ${r ? now.getTime() - ms(r.started_at)! : null}, outcome = ${s.outcome},
                read = ${s.read}, inserted = ${s.inserted}, updated = ${s.updated}, unchanged = ${s.unchanged}, quarantined = ${s.quarantined},
                from_ts = ${date(s.fromTs)}, to_ts = ${date(s.toTs)}, quality = ${s.quality ? JSON.stringify(s.quality) : null},
                error = ${s.error ?? null}, failures = ${s.failures ? JSON.stringify(s.failures) : null}
              WHERE id = ${id}`;
    if (earlier) throw earlier;
  });

export async function getRun(cx: QdbContext, id: number): Promise<RunRecord | null> {
  const { sql, T } = cx;
  await drain(cx);
  const [r] = await sql`SELECT * FROM ${sql(T.runs)} WHERE id = ${id}`;
  return r ? withCounters(rowToRun(r), countersOf(cx, id, await storedCounters(cx, [id]))) : null;
}

export const reopenRun = (cx: QdbContext, id: number): Promise<void> =>
  cx.exclusive(async () => {
    const { sql, T } = cx;
    await sql`UPDATE ${sql(T.runs)} SET outcome = 'running', owner = ${cx.owner}, finished_at = ${null}, error = ${null} WHERE id = ${id}`;
  });

export const initRunStreams = (cx: QdbContext, runId: number, streams: string[]): Promise<void> =>
  cx.exclusive(async () => {
    const { sql, T } = cx;
    const have = new Set((await sql`SELECT stream FROM ${sql(T.run_streams)} WHERE run_id = ${runId}`).map((r) => r.stream as string));
    for (const s of streams) if (!have.has(s)) await sql`INSERT INTO ${sql(T.run_streams)} VALUES (${runId}, ${s}, 'pending', ${null}, ${null}, 0, ${new Date()})`;
  });

export const setRunStream = (cx: QdbContext, runId: number, stream: string, st: Parameters<RunLedger["setRunStream"]>[2]): Promise<void> =>
  cx.exclusive(async () => {
    const { sql, T } = cx;
    if (st.status === "done") {
      // A stream is done once all its bars are written, not when they are gathered.
      await drain(cx);
      const earlier = refusal(cx, runId);
      if (earlier) throw earlier;
    }
    const [r] = await sql`SELECT rows FROM ${sql(T.run_streams)} WHERE run_id = ${runId} AND stream = ${stream}`;
    if (r)
      await sql`UPDATE ${sql(T.run_streams)} SET status = ${st.status}, cause = ${st.cause ?? null}, error = ${st.error ?? null}, rows = ${Number(r.rows) + st.rows}, updated_at = ${new Date()}
                WHERE run_id = ${runId} AND stream = ${stream}`;
    else await sql`INSERT INTO ${sql(T.run_streams)} VALUES (${runId}, ${stream}, ${st.status}, ${st.cause ?? null}, ${st.error ?? null}, ${st.rows}, ${new Date()})`;
  });

export async function listRunStreams(cx: QdbContext, runId: number, status?: RunStream["status"]): Promise<RunStream[]> {
  const { sql, T } = cx;
  const rows = status
    ? await sql`SELECT stream, status, cause, error, rows FROM ${sql(T.run_streams)} WHERE run_id = ${runId} AND status = ${status} ORDER BY stream`
    : await sql`SELECT stream, status, cause, error, rows FROM ${sql(T.run_streams)} WHERE run_id = ${runId} ORDER BY stream`;
  return rows.map(rowToRunStream);
}

export async function listRuns(cx: QdbContext, { limit, before, source }: Parameters<RunLedger["listRuns"]>[0]): Promise<RunRecord[]> {
  const { sql, T } = cx;
  await drain(cx);
  const rows = source
    ? await sql`SELECT * FROM ${sql(T.runs)} WHERE id < ${before ?? Number.MAX_SAFE_INTEGER} AND source = ${source} ORDER BY id DESC LIMIT ${limit}`
    : await sql`SELECT * FROM ${sql(T.runs)} WHERE id < ${before ?? Number.MAX_SAFE_INTEGER} ORDER BY id DESC LIMIT ${limit}`;
  const stored = await storedCounters(cx, rows.map((r) => Number(r.id)));
  return rows.map((r) => withCounters(rowToRun(r), countersOf(cx, Number(r.id), stored)));
}

export async function lastSuccessByJob(cx: QdbContext): Promise<Map<string, number>> {
  const { sql, T } = cx;
  const out = new Map<string, number>();
  for (const r of await sql`SELECT job, kind, source, finished_at FROM ${sql(T.runs)} WHERE outcome = 'succeeded'`) {
    const job = r.job ?? `${r.kind}:${r.source}`;
    const t = ms(r.finished_at)!;
    if (!out.has(job) || out.get(job)! < t) out.set(job, t);
  }
  return out;
}

export async function listQuarantine(cx: QdbContext, { limit, before, source, rule, runId }: Parameters<RunLedger["listQuarantine"]>[0]): Promise<QuarantineRecord[]> {
  const { sql, T } = cx;
  const rows = await sql`
    SELECT * FROM ${sql(T.quarantine)} WHERE id < ${before ?? Number.MAX_SAFE_INTEGER} AND released_at IS NULL
      ${source ? sql`AND source = ${source}` : sql``} ${rule ? sql`AND rule = ${rule}` : sql``} ${runId ? sql`AND run_id = ${runId}` : sql``}
    ORDER BY id DESC LIMIT ${limit}`;
  return rows.map((r) => rowToQuarantine(r));
}

/**
 * Quarantine records a replay stored leave the quarantine: marked released (QuestDB deletes no
 * rows from a table), so no read or later write sees them; returns how many were still there.
 */
export const deleteQuarantine = (cx: QdbContext, ids: number[]): Promise<number> =>
  cx.exclusive(async () => {
    const { sql, T } = cx;
    let n = 0;
    const now = new Date();
    for (let i = 0; i < ids.length; i += 500) {
      const part = ids.slice(i, i + 500).filter((id) => Number.isSafeInteger(id));
      if (part.length) n += (await sql`UPDATE ${sql(T.quarantine)} SET released_at = ${now} WHERE released_at IS NULL AND id IN ${sql(part)}`).count;
    }
    return n;
  });
