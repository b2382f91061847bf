// The QuestDB store's writer lease: one process writes a QuestDB store at a time, because the
// journal's batch numbers come from the writing process' counter (src/stores/questdb/journal.ts).
// A process takes the lease at its first batch, renews it while it writes, and gives it up once
// idle, so a CLI ingest beside an idle `serve` can write; a second busy writer is refused.
import { hostname } from "node:os";
import type { QdbContext } from "./context.ts";
import { dropSpareBuffers } from "./ilp.ts";
import { releaseLease, tryLease } from "./leases.ts";

/** The lease a process holds while it writes batches: their numbers come from its counter alone. */
const WRITER_LEASE = "journal-writer";
export const WRITER_LEASE_MS = 15_000;
/**
 * How long a commit waits for another writing process to go idle before it is refused: longer
 * than the lease, so a writer on another host that ended without giving it up is waited out (one
 * of this host that ended frees it at once).
 */
export const WRITER_WAIT_MS = WRITER_LEASE_MS + 5000;
/** A writer gives its lease up once it has written nothing for this long. */
const WRITER_IDLE_MS = 1000;

/**
 * A holder (`host:pid:start`, src/stores/common.ts) that was a process of this host, not this one,
 * and is no longer running (kill -9, a crash): it writes no more, so its lease need not run out.
 */
function ended(holder: string): boolean {
  const [host, pid] = holder.split(":");
  if (host !== hostname() || !/^\d+$/.test(pid ?? "") || Number(pid) === process.pid) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (e) {
    return (e as { code?: string }).code === "ESRCH";
  }
}

/**
 * Before a batch is numbered: this process holds the writer's lease (renewed once a third of it
 * has passed). When it did not hold it, another process may have written since, so the numbering
 * is loaded again. Another writer that stays busy makes the commit fail, saying why.
 */
export async function holdWriter(cx: QdbContext) {
  if (cx.writerIdle) clearTimeout(cx.writerIdle);
  cx.writerIdle = null;
  if (cx.writerUntil - Date.now() > (WRITER_LEASE_MS * 2) / 3) return;
  const held = cx.writerUntil > Date.now();
  const deadline = Date.now() + WRITER_WAIT_MS;
  for (;;) {
    const asked = Date.now();
    if (await tryLease(cx, WRITER_LEASE, cx.owner, WRITER_LEASE_MS, ended)) {
      cx.writerUntil = asked + WRITER_LEASE_MS;
      break;
    }
    cx.writerUntil = 0;
    if (Date.now() > deadline)
      throw new Error(`another process has been writing to this QuestDB store for ${WRITER_WAIT_MS / 1000} s: QuestDB cannot order two writers' event journals, so one process writes at a time (docs/stores.md)`);
    await Bun.sleep(100);
  }
  if (!held) cx.journal = null;
}

/** After a write: once nothing more is written for a while, the writer's lease is given up (another process may write then). */
export function releaseWriterWhenIdle(cx: QdbContext) {
  if (cx.writerUntil === 0 || cx.writerIdle) return;
  cx.writerIdle = setTimeout(() => {
    cx.writerIdle = null;
    void cx
      .exclusive(async () => {
        const p = cx.pending;
        if (cx.writerIdle || cx.open || p.cur.lines > 0 || p.bodies.length > 0 || p.progress.size > 0) return;
        await cx.writing;
        dropSpareBuffers();
        cx.writerUntil = 0;
        await releaseLease(cx, WRITER_LEASE, cx.owner);
      })
      .catch(() => {}); // not released: it runs out by itself
  }, WRITER_IDLE_MS);
  cx.writerIdle.unref?.();
}

/** On close: the writer's lease given up now. */
export async function releaseWriter(cx: QdbContext) {
  if (cx.writerIdle) clearTimeout(cx.writerIdle);
  cx.writerIdle = null;
  if (cx.writerUntil === 0) return;
  cx.writerUntil = 0;
  await releaseLease(cx, WRITER_LEASE, cx.owner);
}

