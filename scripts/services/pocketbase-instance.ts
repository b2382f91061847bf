// A private Pocketbase server for one test file or one bench: its own data dir and port on
// 127.0.0.1, the superuser made by its own CLI, the binary that scripts/services/pocketbase.sh
// builds and caches. It can be killed (SIGKILL) and started again on the same port and data, which
// is how the tests take Pocketbase away in the middle of a sync.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SCRIPT = join(import.meta.dir, "pocketbase.sh");

export const PB_EMAIL = "admin@ticksync.test";
export const PB_PASSWORD = "ticksync-test-password";

/** The server binary: $TICKSYNC_TEST_PB_BIN, else built (or found in the cache) by pocketbase.sh. */
export function pocketbaseBin(): string {
  const fromEnv = process.env.TICKSYNC_TEST_PB_BIN;
  if (fromEnv) return fromEnv;
  const r = Bun.spawnSync(["bash", SCRIPT, "bin"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`scripts/services/pocketbase.sh bin failed: ${r.stderr.toString().slice(-1500)}`);
  return r.stdout.toString().trim();
}

async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

export type PocketbaseInstance = {
  url: string;
  email: string;
  password: string;
  dataDir: string;
  /** SIGKILL: Pocketbase is gone mid-request, as in a crash. */
  kill(): Promise<void>;
  /** Start again on the same port and data dir. */
  start(): Promise<void>;
  /** Stop and remove the data dir. */
  destroy(): Promise<void>;
};

export async function startPocketbase(opts: { bin?: string } = {}): Promise<PocketbaseInstance> {
  const bin = opts.bin ?? pocketbaseBin();
  const home = mkdtempSync(join(tmpdir(), "ticksync-pb-"));
  const dataDir = join(home, "pb_data");
  // examples/base keeps migrations, hooks and static files beside the data dir by default and
  // writes a migration file for every collection change (automigrate): keep all of it in this
  // instance's own dir, and off.
  const flags = ["--dir", dataDir, "--migrationsDir", join(home, "pb_migrations"), "--hooksDir", join(home, "pb_hooks"), "--publicDir", join(home, "pb_public"), "--automigrate=false"];
  const up = Bun.spawnSync([bin, "superuser", "upsert", PB_EMAIL, PB_PASSWORD, ...flags], { stdout: "pipe", stderr: "pipe" });
  if (up.exitCode !== 0) throw new Error(`pocketbase superuser upsert failed: ${up.stderr.toString()}${up.stdout.toString()}`);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let proc: ReturnType<typeof Bun.spawn> | null = null;

  async function start() {
    proc = Bun.spawn([bin, "serve", ...flags, "--http", `127.0.0.1:${port}`], { stdout: "ignore", stderr: "pipe" });
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const r = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(1000) });
        if (r.ok) return;
      } catch {}
      if (proc.exitCode !== null) throw new Error(`pocketbase exited with ${proc.exitCode}: ${await new Response(proc.stderr as ReadableStream).text()}`);
      if (Date.now() > deadline) throw new Error(`pocketbase did not answer on ${url} within 30 s`);
      await Bun.sleep(50);
    }
  }

  async function kill() {
    if (!proc) return;
    proc.kill("SIGKILL");
    await proc.exited;
    proc = null;
  }

  await start();
  return {
    url,
    email: PB_EMAIL,
    password: PB_PASSWORD,
    dataDir,
    kill,
    start,
    async destroy() {
      if (proc) {
        proc.kill("SIGTERM");
        await Promise.race([proc.exited, Bun.sleep(5000)]);
        await kill();
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}
