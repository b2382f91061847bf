// The QuestDB store's write queue. Writes are gathered across batches into requests of `lines`
// lines (a batch is never split between two writes), and sent while the next batches are
// prepared: one write in flight, one queued behind it, at most. A write is the bars' requests,
// then — after QuestDB accepted them — one request with the checkpoints and run counters of the
// batches they hold. So commitBatch returns before its batch is durable, but nothing claims it
// until it is: a crash loses at most the batches not yet written, and their checkpoints with
// them. Anything that reads, finishes a run or marks a stream done waits for the writes first.
import type { Checkpoint } from "../types.ts";
import { nothingPending, walApplied, type Counters, type QdbContext } from "./context.ts";
import { micros, recycle, str } from "./ilp.ts";
import { releaseWriterWhenIdle } from "./writer.ts";

/** A batch waits at most this long for more to join its write. */
export const WRITE_DELAY_MS = 500;

/** QuestDB's error text (its JSON's `message` when it sent one) on one line, at most 300 characters. */
export function oneLine(text: string): string {
  let msg = text;
  try {
    const j = JSON.parse(text) as { message?: unknown };
    if (typeof j?.message === "string") msg = j.message;
  } catch {
    // not JSON: the text as it came
  }
  return msg.replace(/\s+/g, " ").trim().slice(0, 300);
}

/**
 * POST ILP lines; resolves once QuestDB has committed them to the table's WAL (204). Any other
 * answer refuses the whole request (nothing of it is stored): an error, which fails the runs
 * whose batches it held (`refused`).
 */
async function ilp(cx: QdbContext, body: string | Uint8Array) {
  const res = await fetch(cx.writeUrl, { method: "POST", body });
  if (res.status !== 204 && res.status !== 200) throw new Error(`QuestDB /write answered ${res.status}: ${oneLine(await res.text())}`);
}

export function flush(cx: QdbContext): Promise<void> {
  if (cx.timer) clearTimeout(cx.timer);
  cx.timer = null;
  const p = cx.pending;
  if (p.cur.lines === 0 && p.bodies.length === 0 && p.progress.size === 0) return cx.writing;
  cx.pending = nothingPending(cx.linesPerRequest);
  if (p.cur.lines > 0) p.bodies.push(p.cur.buf.subarray(0, p.cur.len));
  else recycle(p.cur.buf);
  // What this process remembers of a write that did not happen is forgotten: reads go to the table.
  const forget = () => {
    for (const st of p.streams) cx.checkpointsWritten.delete(st);
    for (const r of p.runs) cx.counters.delete(r);
  };
  cx.writing = cx.writing.then(async () => {
    if ([...p.runs].some((r) => cx.refused.has(r))) return forget();
    try {
      for (const body of p.bodies) {
        cx.barsDirty = true;
        await ilp(cx, body);
        recycle(body); // sent and answered: QuestDB has it
      }
      // The journal rows after the bars they name, before the checkpoints that claim them.
      if (p.journal.length > 0) await ilp(cx, p.journal.join(""));
      if (p.progress.size > 0) {
        cx.progressDirty = true;
        await ilp(cx, [...p.progress.values()].join(""));
      }
      if (p.events.length) for (const fn of cx.listeners) fn(p.events);
      releaseWriterWhenIdle(cx);
    } catch (e) {
      for (const r of p.runs) cx.refused.set(r, e instanceof Error ? e : new Error(String(e)));
      forget();
    }
  });
  return cx.writing;
}

/** Every gathered batch written (or refused: see `refused`). */
export const drain = (cx: QdbContext) => flush(cx);

export const refusal = (cx: QdbContext, runId: number) => {
  const e = cx.refused.get(runId);
  return e ? new Error(`QuestDB refused an earlier write of run ${runId}: ${e.message}`) : null;
};

/** The bars written and readable. */
export async function settled(cx: QdbContext) {
  await drain(cx);
  if (!cx.barsDirty) return;
  await walApplied(cx, cx.T.bars);
  cx.barsDirty = false;
}

/**
 * The bars written and readable, without sending the progress rows gathered since (a batch's
 * lookup of stored bars needs only the bars; an unchanged re-load would otherwise make one
 * request per batch for its checkpoint alone).
 */
export async function barsSettled(cx: QdbContext) {
  const p = cx.pending;
  if (p.cur.lines > 0 || p.bodies.length > 0) return settled(cx);
  await cx.writing;
  if (!cx.barsDirty) return;
  await walApplied(cx, cx.T.bars);
  cx.barsDirty = false;
}

/** The progress rows (checkpoints, run counters) written and readable. */
export async function progressSettled(cx: QdbContext) {
  await drain(cx);
  if (!cx.progressDirty) return;
  await walApplied(cx, cx.T.progress);
  cx.progressDirty = false;
}

export const counterLine = (cx: QdbContext, runId: number, c: Counters, now: number) =>
  `${cx.T.progress},kind=run key="${runId}",run_id=${runId}i,read=${c.read}i,inserted=${c.inserted}i,updated=${c.updated}i,unchanged=${c.unchanged}i,quarantined=${c.quarantined}i` +
  `${c.fromTs === null ? "" : `,from_ts=${micros(c.fromTs)}`}${c.toTs === null ? "" : `,to_ts=${micros(c.toTs)}`},updated_at=${micros(now)} 0\n`;

export const checkpointLine = (cx: QdbContext, c: Checkpoint, runId: number, now: number) =>
  `${cx.T.progress},kind=checkpoint key=${str(c.stream)},cursor=${str(JSON.stringify(c.cursor))}${c.lastTs === null ? "" : `,last_ts=${micros(c.lastTs)}`}` +
  `${c.lastKey === null ? "" : `,last_key=${str(c.lastKey)}`},run_id=${runId}i,updated_at=${micros(now)} 0\n`;

/** Write progress rows (one request: one transaction); remembered once QuestDB has them. */
export async function writeProgress(cx: QdbContext, body: string) {
  if (body === "") return;
  cx.progressDirty = true;
  await ilp(cx, body);
}
