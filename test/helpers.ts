// Shared test helpers: temp dirs, fixture files, and running the real CLI as a child process.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll } from "bun:test";
import { pocketbaseBin } from "../scripts/services/pocketbase-instance.ts";

export const ROOT = join(import.meta.dir, "..");
export const MAIN = join(ROOT, "src", "main.ts");

/** A temp dir removed after the test file's tests. */
export function tempDir(prefix = "ticksync-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function writeFile(path: string, text: string): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  return path;
}

export type CliResult = { code: number; stdout: string; stderr: string };

/** Run `ticksync <args>` (from source, or a given executable) and collect its output. */
export async function cli(args: string[], opts: { cwd?: string; env?: Record<string, string>; exe?: string[] } = {}): Promise<CliResult> {
  const cmd = [...(opts.exe ?? [process.execPath, MAIN]), ...args];
  const proc = Bun.spawn(cmd, { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** Stooq daily CSV text for consecutive WSE-like sessions (weekdays only, no holiday logic). */
export function stooqCsv(rows: [date: string, o: number, h: number, l: number, c: number, v: number][]): string {
  return ["Date,Open,High,Low,Close,Volume", ...rows.map((r) => r.join(","))].join("\n") + "\n";
}

/** Poll until `fn` returns a truthy value or the deadline passes. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 15_000, what = "condition"): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    await Bun.sleep(50);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
}

/** Start `ticksync serve` on a free port; resolves with its base URL once it listens. The caller stops it. */
export async function startServe(args: string[], opts: { cwd?: string; env?: Record<string, string>; exe?: string[] } = {}) {
  const cmd = [...(opts.exe ?? [process.execPath, MAIN]), "serve", "--port", "0", ...args];
  const proc = Bun.spawn(cmd, { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdout: "pipe", stderr: "pipe" });
  const reader = proc.stdout.getReader();
  let buf = "";
  const deadline = Date.now() + 20_000;
  while (!buf.includes("\n")) {
    if (Date.now() > deadline) throw new Error("serve did not print its address");
    const { value, done } = await reader.read();
    if (done) throw new Error(`serve exited early: ${await new Response(proc.stderr).text()}`);
    buf += new TextDecoder().decode(value);
  }
  const { listening } = JSON.parse(buf.slice(0, buf.indexOf("\n")));
  // Keep draining stdout so the child never blocks on a full pipe.
  void (async () => {
    while (!(await reader.read().catch(() => ({ done: true }))).done);
  })();
  return { url: listening as string, proc };
}

/** A small seeded random number generator (mulberry32), so a failing random case can be replayed. */
export function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The Pocketbase server binary the tests start, or why there is none: with CI=true a missing one
 * fails the file; without CI its cases skip, and `what` (the cases) is named in a warning.
 */
export function pocketbaseForTests(what?: string): { bin: string | null; why: string | null } {
  try {
    return { bin: pocketbaseBin(), why: null };
  } catch (e) {
    if (process.env.CI === "true") throw new Error(`CI=true and no Pocketbase server binary: ${(e as Error).message}`);
    const why = (e as Error).message.split("\n")[0]!;
    if (what) console.warn(`${what}: Pocketbase cases skipped: ${why}`);
    return { bin: null, why };
  }
}

/** The most of `at` (times, any order) that any window of `ms` holds: a rate limit's check. */
export function busiestWindow(at: number[], ms: number): number {
  const s = [...at].sort((x, y) => x - y);
  let most = 0;
  for (let i = 0, j = 0; i < s.length; i++) {
    while (s[i]! - s[j]! >= ms) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

/** A stream message as a test reads it. */
export type WsMsg = { type: string; id?: number; status?: string; message?: string; bar?: { symbol: string; close: number; ts: string }; [k: string]: unknown };

/** A WebSocket client of the stream that keeps every message it gets (parsed). */
export function wsClient(url: string) {
  const ws = new WebSocket(url);
  const msgs: WsMsg[] = [];
  const opened = new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (ws.onclose = (e) => resolve({ code: e.code, reason: e.reason })));
  ws.onmessage = (e) => msgs.push(JSON.parse(String(e.data)));
  return {
    ws,
    msgs,
    opened,
    closed,
    send: (m: unknown) => ws.send(typeof m === "string" ? m : JSON.stringify(m)),
    /** At least `n` messages of this type arrived. */
    has: (type: string, n = 1) => msgs.filter((m) => m.type === type).length >= n,
    bars: () => msgs.filter((m) => m.type === "bar"),
    ids: () => msgs.filter((m) => m.type === "bar").map((m) => m.id!),
    until: (pred: (msgs: WsMsg[]) => unknown, what: string, ms = 15_000) => waitFor(() => pred(msgs), ms, what),
    /**
     * Ping until a pong carries an id ≥ `id`: the hub had published every event up to it, and what
     * it sent this client came before the pong. The positive marker for "nothing more arrives".
     */
    async settle(id: number) {
      const pongs = () => msgs.filter((m) => m.type === "pong");
      for (;;) {
        const n = pongs().length;
        ws.send('{"op":"ping"}');
        await waitFor(() => pongs().length > n, 15_000, "a pong");
        if (pongs().at(-1)!.id! >= id) return;
      }
    },
  };
}
