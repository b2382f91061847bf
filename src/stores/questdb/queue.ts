// The QuestDB store's write queue. A batch's bars become ILP lines in chunks of `chunkLines`
// lines (a batch is never split between two writes); full chunks are streamed into one open
// /write request, so QuestDB takes the batches up to the first that brings it to
// `linesPerRequest` lines as one transaction while the next are prepared (QuestDB merges each transaction into every partition its rows touch: a
// bulk file's symbols span all of them, so few large transactions cost it far less than many
// small ones: docs/benchmarks.md). At most one chunk waits behind the one being sent. A write
// ends when its request is full, when no batch came for WRITE_DELAY_MS, or when anything reads,
// finishes a run or marks a stream done; then — after QuestDB accepted the bars — one request
// with the journal rows and one with the checkpoints and run counters of the batches it held. So
// commitBatch returns before its batch is durable, but nothing claims it until it is: a crash
// loses at most the batches not yet committed, and their checkpoints with them.
import type { Checkpoint } from "../types.ts";
import { nothingPending, walApplied, widen, type BarsWrite, type Counters, type QdbContext } from "./context.ts";
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
 * POST ILP lines (a body, or a stream of chunks); resolves once QuestDB has committed them to the
 * table's WAL (204). Any other answer refuses the whole request (nothing of it is stored): an
 * error, which fails the runs whose batches it held (`refused`).
 */
async function ilp(cx: QdbContext, body: string | Uint8Array | ReadableStream<Uint8Array>) {
  const res = await fetch(cx.writeUrl, { method: "POST", body, ...(body instanceof ReadableStream ? { duplex: "half" } : {}) } as RequestInit);
  if (res.status !== 204 && res.status !== 200) throw new Error(`QuestDB /write answered ${res.status}: ${oneLine(await res.text())}`);
}

/** The error of the first of these runs an earlier write refused, if any. */
function refusedOf(cx: QdbContext, runs: Iterable<number>): Error | null {
  for (const r of runs) {
    const e = cx.refused.get(r);
    if (e) return e;
  }
  return null;
}

/**
 * A write's bars as one streamed request. It starts once the write before it is done (so two
 * writes never race: with dedup keys, the later commit must carry the newer values), and takes
 * its chunks as the socket drains; `waiting` is the producer held back while one chunk is queued.
 */
function openWrite(cx: QdbContext): BarsWrite {
  const w: BarsWrite = { chunks: [], lines: 0, ended: false, wake: null, waiting: null, held: null, answer: Promise.resolve() };
  const woken = () => {
    w.waiting?.();
    w.waiting = null;
  };
  // Chunks handed to the request. Bun has sent (or copied) a chunk by the time it asks for the
  // next one (test/questdb-writes.test.ts loads through a slow connection), so its buffer is
  // used again then; the last is given back once QuestDB answered.
  const handed: Uint8Array[] = [];
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(ctl) {
        if (handed.length > 0) recycle(handed.shift()!);
        while (w.chunks.length === 0 && !w.ended) await new Promise<void>((r) => (w.wake = r));
        const chunk = w.chunks.shift();
        woken();
        if (!chunk) return ctl.close();
        ctl.enqueue(chunk);
        handed.push(chunk);
      },
      cancel() {
        w.ended = true;
        w.chunks.length = 0;
        woken();
      },
    },
    { highWaterMark: 0 },
  );
  // A run refused by an earlier write gets no more bars written: this write then fails whole, and
  // every run it holds with it (none is left with bars but no checkpoint, unannounced).
  w.answer = cx.writing.then(() => {
    const earlier = refusedOf(cx, (w.held ?? cx.pending).runs);
    if (earlier) throw earlier;
    return ilp(cx, body);
  });
  // Whatever ends the request (an answer before the body's end, a refused connection): nothing
  // waits on it for room any more.
  w.answer.then(
    () => {
      for (const c of handed.splice(0)) recycle(c);
    },
    () => {
      w.ended = true;
      w.chunks.length = 0;
      woken();
    },
  );
  return w;
}

/**
 * Lines at which a write ends. While anyone listens (onEvents: a serving process), its events
 * wait for its end as objects, about 175 bytes a bar (measured: 2,500,000 would be 430 MB): then
 * a write ends at 100,000 lines.
 */
export const LINES_WHILE_LISTENED = 100_000;
export const writeLimit = (cx: QdbContext) => (cx.listeners.size > 0 ? Math.min(cx.linesPerRequest, LINES_WHILE_LISTENED) : cx.linesPerRequest);

/** Until the open write has taken all but one of its chunks (or ended): production stays one chunk ahead. */
const room = (w: BarsWrite) => (w.chunks.length <= 1 || w.ended ? Promise.resolve() : new Promise<void>((r) => (w.waiting = r)));

/** Chunks to the write's request (none to one that failed: its runs learn why when it ends). */
function give(cx: QdbContext, w: BarsWrite, chunks: Uint8Array[]) {
  if (w.ended || chunks.length === 0) return;
  cx.barsDirty = true;
  w.chunks.push(...chunks);
  w.wake?.();
  w.wake = null;
}

/**
 * The gathered batches into the write: full chunks streamed into the open request (opened if
 * none). With `end`, once the request is full, or when its request failed, the write ends with
 * every gathered line: its bars' answer, then its journal rows, then its progress rows, then its
 * events. Returns the writes' chain.
 */
export function flush(cx: QdbContext, end = true): Promise<void> {
  if (cx.timer) clearTimeout(cx.timer);
  cx.timer = null;
  const p = cx.pending;
  if (p.cur.lines === 0 && p.bodies.length === 0 && p.progress.size === 0 && !cx.open) return cx.writing;
  const full = p.bodies.length * cx.chunkLines;
  if (!end && !cx.open?.ended && writeLines(cx) < writeLimit(cx)) {
    // The write stays open: its full chunks go, the chunk being filled and what the batches
    // hold wait for the flush that ends it (a batch's checkpoint never leaves before its bars).
    if (p.bodies.length === 0) return cx.writing;
    const w = (cx.open ??= openWrite(cx));
    w.lines += full;
    give(cx, w, p.bodies.splice(0));
    return cx.writing;
  }
  cx.pending = nothingPending(cx.chunkLines);
  const lines = p.bodies.length * cx.chunkLines + p.cur.lines;
  if (p.cur.lines > 0) p.bodies.push(p.cur.buf.subarray(0, p.cur.len));
  else recycle(p.cur.buf);
  let w = cx.open;
  if (!w && p.bodies.length > 0) w = cx.open = openWrite(cx);
  if (w) {
    w.held = p;
    w.lines += lines;
    give(cx, w, p.bodies);
    cx.open = null;
    w.ended = true;
    w.wake?.();
    w.wake = null;
  }
  const answer = w?.answer;
  // What this process remembers of a write that did not happen is forgotten: reads go to the table.
  const forget = () => {
    for (const st of p.streams) cx.checkpointsWritten.delete(st);
    for (const r of p.runs) cx.counters.delete(r);
  };
  cx.writing = cx.writing.then(async () => {
    try {
      if (answer) await answer;
      const earlier = refusedOf(cx, p.runs);
      if (earlier) throw earlier;
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

/** Lines of the write being made: streamed, and gathered since. */
export const writeLines = (cx: QdbContext) => (cx.open?.lines ?? 0) + cx.pending.bodies.length * cx.chunkLines + cx.pending.cur.lines;

/**
 * A batch filled a chunk, or brought the write to its lines: full chunks go to the open write
 * (which ends if full), and the batch after it waits only while another chunk is still queued
 * there. When that write just ended, the batch after it waits for the write before it to be
 * done: one write finishing and one being made, at most.
 */
export async function streamFull(cx: QdbContext) {
  const before = cx.writing;
  flush(cx, false);
  await (cx.open ? room(cx.open) : before);
}

/** Every gathered batch written (or refused: see `refused`). */
export const drain = (cx: QdbContext) => flush(cx);

export const refusal = (cx: QdbContext, runId: number) => {
  const e = cx.refused.get(runId);
  return e ? new Error(`QuestDB refused an earlier write of run ${runId}: ${e.message}`) : null;
};

/** The bars written and readable. */
export const settled = (cx: QdbContext) => barsApplied(cx, () => drain(cx));

/**
 * Every bar written so far readable: `sent` (the writes sent), then QuestDB's WAL applied. The
 * unsettled ranges it covers are forgotten once it succeeds (kept when it fails); bars written
 * meanwhile stay unsettled.
 */
async function barsApplied(cx: QdbContext, sent: () => Promise<void>) {
  const covered = cx.unsettled;
  cx.unsettled = new Map();
  try {
    await sent();
    if (!cx.barsDirty) return;
    await walApplied(cx, cx.T.bars);
    cx.barsDirty = false;
  } catch (e) {
    for (const [k, r] of covered) widen(cx.unsettled, k, r.lo, r.hi);
    throw e;
  }
}

/**
 * The bars written and readable, without sending the progress rows gathered since (a batch's
 * lookup of stored bars needs only the bars; an unchanged re-load would otherwise make one
 * request per batch for its checkpoint alone).
 */
export function barsSettled(cx: QdbContext) {
  const p = cx.pending;
  return barsApplied(cx, () => (p.cur.lines > 0 || p.bodies.length > 0 || cx.open ? drain(cx) : cx.writing));
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
