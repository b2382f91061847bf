// A private Pocketbase server for one test or one bench: its own data dir and port on 127.0.0.1,
// the superuser made by its own CLI, the binary that scripts/services/pocketbase.sh builds and
// caches. It can be killed (SIGKILL) and started again on the same data, which is how the tests
// take Pocketbase away in the middle of a sync. With `front`, clients reach it through a TCP
// relay whose port never changes (the server may come back on another port), and the relay can
// hold a client's batch request so a test knows the sync is mid-flight when it acts.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TCPSocketListener } from "bun";
import { flush, newSide, send, type Side } from "./tcp-side.ts";

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

function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

export type PocketbaseInstance = {
  /** What clients use: the front relay's address with `front`, else the server's own. */
  url: string;
  /** The server's own address now (with `front` it may change at each start). */
  serverUrl(): string;
  email: string;
  password: string;
  dataDir: string;
  /** SIGKILL: Pocketbase is gone mid-request, as in a crash. */
  kill(): Promise<void>;
  /** Start again on the same data dir (and, without `front`, the same port). */
  start(): Promise<void>;
  /** Stop and remove the data dir. */
  destroy(): Promise<void>;
  /**
   * With `front` only: from the `n`th `POST /api/batch` through the front on, hold every byte
   * clients send (nothing reaches the server). Resolves when that request is being held.
   */
  holdAtBatch(n: number): Promise<void>;
  /** Let held bytes go (to the server if it is up; otherwise their connections are closed). */
  release(): void;
};

/** Why `serve` exited before it listened, when it is a port someone else took. */
const portTaken = (log: string) => /address already in use/i.test(log);

export async function startPocketbase(opts: { bin?: string; front?: boolean } = {}): Promise<PocketbaseInstance> {
  const bin = opts.bin ?? pocketbaseBin();
  const home = mkdtempSync(join(tmpdir(), "ticksync-pb-"));
  const dataDir = join(home, "pb_data");
  // examples/base keeps migrations, hooks and static files beside the data dir by default and
  // writes a migration file for every collection change (automigrate): keep all of it in this
  // instance's own dir, and off.
  const flags = ["--dir", dataDir, "--migrationsDir", join(home, "pb_migrations"), "--hooksDir", join(home, "pb_hooks"), "--publicDir", join(home, "pb_public"), "--automigrate=false"];
  const up = Bun.spawnSync([bin, "superuser", "upsert", PB_EMAIL, PB_PASSWORD, ...flags], { stdout: "pipe", stderr: "pipe" });
  if (up.exitCode !== 0) throw new Error(`pocketbase superuser upsert failed: ${up.stderr.toString()}${up.stdout.toString()}`);
  let port = freePort();
  let proc: ReturnType<typeof Bun.spawn> | null = null;

  /** One `serve`; resolves once it printed its start banner (printed after it bound the port). */
  async function serveOnce(): Promise<{ ok: true } | { ok: false; log: string }> {
    // --dev=false: examples/base defaults to dev mode, which prints every SQL statement and request
    // to stdout (~300 bytes per record written), work that a bench would charge to whoever writes.
    const p = Bun.spawn([bin, "serve", ...flags, "--dev=false", "--http", `127.0.0.1:${port}`], { stdout: "pipe", stderr: "pipe" });
    proc = p;
    const reader = p.stdout.getReader();
    let out = "";
    const deadline = setTimeout(() => p.kill("SIGKILL"), 30_000);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
        if (out.includes("Server started at")) {
          // Keep draining its output so the server never blocks on a full pipe.
          void (async () => {
            while (!(await reader.read().catch(() => ({ done: true }))).done);
          })();
          void new Response(p.stderr).arrayBuffer().catch(() => {});
          return { ok: true };
        }
      }
    } finally {
      clearTimeout(deadline);
    }
    const code = await p.exited;
    proc = null;
    return { ok: false, log: `exit ${code}: ${await new Response(p.stderr).text()}${out}`.slice(-2000) };
  }

  async function start() {
    if (proc) throw new Error("pocketbase is already running");
    // Without a front the clients know this port: wait for it if another socket holds it a while.
    // With one, a taken port is replaced by another.
    const until = Date.now() + 15_000;
    for (let attempt = 1; ; attempt++) {
      const r = await serveOnce();
      if (r.ok) return;
      if (!portTaken(r.log) || Date.now() > until) throw new Error(`pocketbase serve on 127.0.0.1:${port} failed (attempt ${attempt}): ${r.log}`);
      if (front) port = freePort();
      else await Bun.sleep(200); // pacing a retry of bind(2), not synchronisation
    }
  }

  async function kill() {
    if (!proc) return;
    const p = proc;
    p.kill("SIGKILL");
    await p.exited;
    proc = null;
  }

  const front = opts.front ? relay(() => (proc ? port : null)) : null;
  try {
    await start();
  } catch (e) {
    front?.stop();
    rmSync(home, { recursive: true, force: true });
    throw e;
  }
  return {
    url: front ? `http://127.0.0.1:${front.port}` : `http://127.0.0.1:${port}`,
    serverUrl: () => `http://127.0.0.1:${port}`,
    email: PB_EMAIL,
    password: PB_PASSWORD,
    dataDir,
    kill,
    start,
    async destroy() {
      front?.stop();
      if (proc) {
        const p = proc;
        p.kill("SIGTERM");
        await Promise.race([p.exited, Bun.sleep(5000)]); // a bound on a graceful stop, then SIGKILL
        await kill();
      }
      rmSync(home, { recursive: true, force: true });
    },
    holdAtBatch(n) {
      if (!front) throw new Error("holdAtBatch needs startPocketbase({ front: true })");
      return front.holdAtBatch(n);
    },
    release() {
      front?.release();
    },
  };
}

type Conn = { client: Side; upstream: Side; held: Uint8Array[] };

const BATCH = Buffer.from("POST /api/batch");

/**
 * A TCP relay on a port of its own to whatever port `target()` names (null: the server is down,
 * and a new connection is closed at once, as a refused one would fail). Written here because it
 * must hold a request and follow a moving target; a general proxy library does neither.
 */
function relay(target: () => number | null) {
  const conns = new Set<Conn>();
  let hold: { at: number; seen: number; on: boolean; reached: () => void } | null = null;

  const closeBoth = (c: Conn) => {
    c.client.closed = c.upstream.closed = true;
    c.client.socket?.end();
    c.upstream.socket?.end();
    conns.delete(c);
  };

  const server: TCPSocketListener<Conn> = Bun.listen<Conn>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        const c: Conn = { client: newSide(socket), upstream: newSide(), held: [] };
        socket.data = c;
        conns.add(c);
        const port = target();
        if (port === null) return closeBoth(c);
        Bun.connect<Conn>({
          hostname: "127.0.0.1",
          port,
          data: c,
          socket: {
            open(up) {
              c.upstream.socket = up;
              if (c.client.closed) return closeBoth(c);
              flush(c.upstream);
            },
            data: (_up, chunk) => send(c.client, new Uint8Array(chunk)),
            drain: () => flush(c.upstream),
            close: () => closeBoth(c),
            error: () => closeBoth(c),
            connectError: () => closeBoth(c),
          },
        }).catch(() => closeBoth(c));
      },
      data(socket, chunk) {
        const c = socket.data;
        const bytes = new Uint8Array(chunk);
        if (hold && !hold.on && Buffer.from(bytes.subarray(0, BATCH.length)).equals(BATCH) && ++hold.seen >= hold.at) {
          hold.on = true;
          hold.reached();
        }
        if (hold?.on) c.held.push(bytes);
        else send(c.upstream, bytes);
      },
      drain: (socket) => flush(socket.data.client),
      close: (socket) => closeBoth(socket.data),
      error: (socket) => closeBoth(socket.data),
    },
  });

  return {
    port: server.port,
    holdAtBatch(n: number): Promise<void> {
      return new Promise<void>((reached) => (hold = { at: n, seen: 0, on: false, reached }));
    },
    release() {
      hold = null;
      for (const c of [...conns]) {
        const held = c.held.splice(0);
        // The server these bytes were meant for is gone: their connection fails as it would have.
        if (held.length && (target() === null || c.upstream.closed)) closeBoth(c);
        else for (const b of held) send(c.upstream, b);
      }
    },
    stop() {
      for (const c of [...conns]) closeBoth(c);
      server.stop(true);
    },
  };
}
