// Progress of a long run on the terminal: a redrawn bar on a TTY, plain lines otherwise (logs,
// CI), never more than a few per second.
import type { Progress } from "./ingest.ts";
import type { Wait } from "../lib/ratelimit.ts";
import { redact } from "../lib/redact.ts";

/** `waiting 98 s: alphavantage rate limit`: a long wait in words, with the seconds left. */
export function waitText(w: Wait, now = Date.now()): string {
  // A reason may quote a provider's answer: scrubbed like every other output.
  return `waiting ${Math.max(0, Math.ceil((w.until - now) / 1000))} s: ${redact(w.reason)}`;
}

/** What each running job waits for, for /api/jobs (a job's run registers its source's waits). */
const jobWaits = new Map<string, () => Wait | null>();

export function trackJobWaits(job: string, current: () => Wait | null): () => void {
  jobWaits.set(job, current);
  return () => {
    if (jobWaits.get(job) === current) jobWaits.delete(job);
  };
}

/** The wait a running job is in, if any: why, until when, and the seconds left. */
export function jobWaiting(job: string, now = Date.now()): { reason: string; until: string; seconds: number } | null {
  const w = jobWaits.get(job)?.();
  return w ? { reason: redact(w.reason), until: new Date(w.until).toISOString(), seconds: Math.max(0, Math.ceil((w.until - now) / 1000)) } : null;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return "?";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export function progressLine(p: Progress, unit = "symbols"): string {
  const secs = p.elapsedMs / 1000;
  const rate = secs > 0 ? p.done / secs : 0;
  const eta = rate > 0 ? ((p.total - p.done) / rate) * 1000 : Infinity;
  return `${p.done}/${p.total} ${unit}${p.failed ? ` (${p.failed} failed)` : ""} · ${p.rows.toLocaleString("en-US")} rows · ${rate.toFixed(1)} ${unit}/s · ETA ${p.done === p.total ? "0s" : formatDuration(eta)}${p.waiting ? ` · ${waitText(p.waiting)}` : ""}`;
}

export function createProgressReporter(opts: { stream?: NodeJS.WriteStream; unit?: string; intervalMs?: number } = {}) {
  const out = opts.stream ?? process.stderr;
  const tty = Boolean(out.isTTY);
  const interval = opts.intervalMs ?? (tty ? 100 : 5000);
  let lastAt = 0;
  let last: Progress | null = null;
  let lastWait: Wait | null = null;
  // On a terminal the seconds left of a wait count down.
  let ticker: ReturnType<typeof setInterval> | null = null;
  const draw = (p: Progress) => {
    const line = progressLine(p, opts.unit);
    if (tty) {
      const width = 24;
      const filled = p.total ? Math.round((p.done / p.total) * width) : width;
      out.write(`\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${line}\x1b[K`);
    } else out.write(`progress: ${line}\n`);
  };
  return {
    update(p: Progress) {
      last = p;
      const now = performance.now();
      // A wait that starts or ends is drawn at once: it explains a silence, or ends one.
      const waitChanged = (p.waiting ?? null) !== lastWait;
      lastWait = p.waiting ?? null;
      if (tty && lastWait && !ticker) (ticker = setInterval(() => last && draw(last), 1000)).unref?.();
      if (!lastWait && ticker) clearInterval(ticker), (ticker = null);
      if (now - lastAt >= interval || p.done === p.total || waitChanged) {
        lastAt = now;
        draw(p);
      }
    },
    finish() {
      if (ticker) clearInterval(ticker), (ticker = null);
      if (tty && last) out.write("\n");
    },
  };
}
