// The building blocks of `ticksync doctor` (src/cli/doctor.ts) that know nothing of the config:
// checks run concurrently, each bounded by a timeout; one plain HTTP request to see a server
// answer (and read its clock from the Date header); the clock's offset from those answers; the
// free space of a directory's file system; whether a TCP port is free or held by a ticksync.
import { existsSync, statfsSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, resolve } from "node:path";
import { errorText, oneLineError } from "../lib/errors.ts";
import { retryAfterMs } from "../lib/http.ts";
import { redact, redactUrl } from "../lib/redact.ts";

export type CheckStatus = "ok" | "warn" | "fail";

/** One line of the report: what was checked, what was found, and what to do when it is not ok. */
export type CheckResult = { name: string; status: CheckStatus; what: string; remedy: string | null };

/** A check: a name for its line, and what it does (it may report several lines, e.g. one per directory). */
export type Check = { name: string; run: (signal: AbortSignal) => Promise<CheckResult | CheckResult[]> };

export const result = (name: string, status: CheckStatus, what: string, remedy: string | null = null): CheckResult => ({ name, status, what: redact(what), remedy: remedy === null ? null : redact(remedy) });

/**
 * Runs every check at once; one that throws is a failing line, one that takes longer than
 * `timeoutMs` is a failing line too (its signal is aborted), so a dead host cannot hang the report.
 */
export async function runChecks(checks: readonly Check[], timeoutMs: number): Promise<CheckResult[]> {
  const lines = await Promise.all(
    checks.map(async (c) => {
      const controller = new AbortController();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<CheckResult>((done) => {
        timer = setTimeout(() => {
          controller.abort();
          done(result(c.name, "fail", `no answer within ${timeoutMs} ms`, "check that it is running and reachable from here (or give more --timeout)"));
        }, timeoutMs);
      });
      try {
        return await Promise.race([c.run(controller.signal), late]);
      } catch (e) {
        return result(c.name, "fail", oneLineError(e), null);
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return lines.flat();
}

/** A server's answer to one request: its status, Retry-After, and its clock (Date) with when we asked and heard. */
export type HttpAnswer = { status: number; retryAfterMs: number | undefined; date: number | null; sentAt: number; receivedAt: number };

/**
 * One GET of `url` (no redirects followed, no retries, the body not read): any HTTP status means the
 * server answers. A failure to connect or to answer in time throws one line naming the host.
 */
export async function httpAnswer(url: string, signal: AbortSignal, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const sentAt = Date.now();
  let res: Response;
  try {
    res = await fetch(url, { method: "GET", redirect: "manual", signal, headers });
  } catch (e) {
    throw new Error(`no answer from ${hostOf(url)}: ${unreachable(e)}`);
  }
  const receivedAt = Date.now();
  // Nothing of the body is wanted: cancelling it keeps a large or endless answer from being read.
  await res.body?.cancel().catch(() => {});
  const date = res.headers.get("date");
  const parsed = date === null ? NaN : Date.parse(date);
  return { status: res.status, retryAfterMs: retryAfterMs(res.headers.get("retry-after")), date: Number.isFinite(parsed) ? parsed : null, sentAt, receivedAt };
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return redactUrl(url);
  }
}

function unreachable(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  if (code === "ConnectionRefused" || code === "ECONNREFUSED") return "connection refused";
  if ((e as { name?: unknown })?.name === "AbortError" || (e as { name?: unknown })?.name === "TimeoutError") return "no answer in time";
  return `${typeof code === "string" ? `${code}: ` : ""}${oneLineError(e)}`;
}

/** A server clock as seen by one answer, and where it came from. */
export type ClockSample = { from: string; answer: HttpAnswer };

/** Our clock may differ from a server's by this much before the doctor warns (NTP keeps it well under). */
export const CLOCK_TOLERANCE_MS = 5_000;

/**
 * Our clock against the servers' Date headers: the answer heard quickest (least round-trip
 * uncertainty) decides. A Date header has whole seconds, so the server's time was in
 * [date, date + 1 s) while ours was in [sentAt, receivedAt]; the offset is the least one those allow.
 */
export function clockCheck(samples: readonly ClockSample[]): CheckResult {
  const dated = samples.filter((s) => s.answer.date !== null).sort((a, b) => a.answer.receivedAt - a.answer.sentAt - (b.answer.receivedAt - b.answer.sentAt));
  const best = dated[0];
  if (!best) return result("clock", "warn", "not compared: no configured server answered with a Date header", "keep the clock synchronised (NTP: timedatectl set-ntp true); replicas and cron ticks depend on it");
  const a = best.answer;
  const low = a.sentAt - (a.date! + 1000);
  const high = a.receivedAt - a.date!;
  const offset = low > 0 ? low : high < 0 ? high : 0;
  const where = `${best.from}'s Date header`;
  if (Math.abs(offset) <= CLOCK_TOLERANCE_MS) return result("clock", "ok", `within ${CLOCK_TOLERANCE_MS / 1000} s of ${where}`);
  const by = `${(Math.abs(offset) / 1000).toFixed(1)} s ${offset > 0 ? "ahead of" : "behind"}`;
  return result("clock", "warn", `this machine's clock is at least ${by} ${where}`, "synchronise the clock (NTP: timedatectl set-ntp true); cron ticks, replicas' claims and freshness use it");
}

/** Below either, the disk check warns. */
export const DISK_MIN_FREE_BYTES = 1024 ** 3;
export const DISK_MIN_FREE_RATIO = 0.05;

const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;

/** The nearest directory of `path` that exists (a store or log file not made yet lives there). */
function existingDir(path: string): string {
  let dir = resolve(path);
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** Free space where `what` lives (`dir`, made or not): warns below 1 GiB or 5 % free. */
export function diskCheck(name: string, what: string, dir: string): CheckResult {
  const at = existingDir(dir);
  try {
    const st = statfsSync(at);
    const free = Number(st.bavail) * Number(st.bsize);
    const total = Number(st.blocks) * Number(st.bsize);
    const ratio = total > 0 ? free / total : 0;
    const text = `${what} ${dir}: ${gib(free)} free of ${gib(total)} (${(ratio * 100).toFixed(1)} %)`;
    if (free < DISK_MIN_FREE_BYTES || ratio < DISK_MIN_FREE_RATIO)
      return result(name, "warn", text, `free space there (below ${gib(DISK_MIN_FREE_BYTES)} or ${DISK_MIN_FREE_RATIO * 100} % free), or move it to a larger volume`);
    return result(name, "ok", text);
  } catch (e) {
    return result(name, "fail", `cannot look at ${at} (for ${what} ${dir}): ${errorText(e)}`, "check that the path exists and this user may read it");
  }
}

/** Can this process listen on host:port? The error code when not (EADDRINUSE, EACCES…). */
function tryListen(host: string, port: number): Promise<string | null> {
  return new Promise((done) => {
    const server = createServer();
    server.once("error", (e: NodeJS.ErrnoException) => done(e.code ?? errorText(e)));
    server.listen({ host, port, exclusive: true }, () => server.close(() => done(null)));
  });
}

/** A program holding a port has this long to answer /healthz before it counts as not a ticksync. */
const HEALTHZ_TIMEOUT_MS = 2_000;

/** A ticksync answers /healthz with {"status":"ok","uptimeSeconds":n}. */
async function isTicksync(host: string, port: number, given: AbortSignal): Promise<boolean> {
  const signal = AbortSignal.any([given, AbortSignal.timeout(HEALTHZ_TIMEOUT_MS)]);
  const at = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "[::1]" : host.includes(":") ? `[${host}]` : host;
  try {
    const res = await fetch(`http://${at}:${port}/healthz`, { signal, redirect: "manual" });
    if (res.status !== 200) return (await res.body?.cancel().catch(() => {}), false);
    const body = (await res.json().catch(() => null)) as { status?: unknown; uptimeSeconds?: unknown } | null;
    return body?.status === "ok" && typeof body.uptimeSeconds === "number";
  } catch {
    return false;
  }
}

/** The server's port: free, or taken by a running ticksync (ok: it is this config's serve, or a replica), or by something else. */
export async function portCheck(host: string, port: number, signal: AbortSignal): Promise<CheckResult> {
  if (port === 0) return result("port", "ok", `server.port = 0: serve picks a free port on ${host}`);
  const code = await tryListen(host, port);
  if (code === null) return result("port", "ok", `${host}:${port} is free`);
  if (code === "EADDRINUSE") {
    if (await isTicksync(host, port, signal)) return result("port", "ok", `${host}:${port} is taken by a running ticksync (its /healthz answers)`);
    return result("port", "fail", `${host}:${port} is taken by another program (not a ticksync: its /healthz does not answer as one)`, "stop it, or set server.port (TICKSYNC_SERVER__PORT) to a free port");
  }
  if (code === "EACCES") return result("port", "fail", `${host}:${port}: not allowed to listen there (EACCES)`, "use a port above 1023, or give the service CAP_NET_BIND_SERVICE");
  if (code === "EADDRNOTAVAIL") return result("port", "fail", `${host}:${port}: no such address on this machine`, "set server.host to an address of this machine (127.0.0.1, 0.0.0.0)");
  return result("port", "fail", `cannot listen on ${host}:${port}: ${code}`, "check server.host and server.port");
}
