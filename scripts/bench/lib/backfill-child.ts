// `ticksync backfill --json` of one source as a child process (the way a user runs it), for the
// benches that measure a whole backfill against a local provider server: its summary and wall time.
import { join } from "node:path";

const MAIN = join(import.meta.dir, "..", "..", "..", "src", "main.ts");

export type BackfillResult = { ok: true; summary: { read: number; inserted: number; [k: string]: unknown }; wallMs: number } | { ok: false };

/** Runs `backfill --source <source> --from <from> --to <to>` with the ticksync.toml in `dir`; prints one FAIL line when it exits non-zero. */
export async function backfillChild(dir: string, source: string, from: string, to: string): Promise<BackfillResult> {
  const started = performance.now();
  const proc = Bun.spawn([process.execPath, MAIN, "backfill", "--config", join(dir, "ticksync.toml"), "--source", source, "--from", from, "--to", to, "--json"], {
    cwd: dir,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, TICKSYNC_LOG__LEVEL: "error" },
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const wallMs = performance.now() - started;
  if (code !== 0) {
    console.error(`FAIL backfill exited ${code}: ${stderr.slice(-2000)}`);
    return { ok: false };
  }
  return { ok: true, summary: JSON.parse(stdout), wallMs };
}
