// The sink's connection to one Pocketbase server through the pocketbase JS SDK, as a superuser:
// sign-in (again when the token nears its end or is refused), and the waiting out of transient
// failures (down, 5xx, 429) with full-jitter backoff up to the config's retryForS.
import PocketBase, { ClientResponseError, getTokenPayload } from "pocketbase";
import { sleep } from "../../lib/ratelimit.ts";
import { log } from "../../lib/log.ts";
import { retryAfterMs } from "../../lib/http.ts";
import { redactUrl } from "../../lib/redact.ts";
import { errorText } from "../../lib/errors.ts";
import type { PocketbaseSinkConfig } from "./config.ts";

/** Why a sink operation failed for good (after its retries): the run fails, the cursor stays. */
export class SinkError extends Error {
  override name = "SinkError";
  constructor(
    message: string,
    readonly cause_: "unreachable" | "server_error" | "rate_limited" | "auth" | "config" | "rejected" | "aborted" = "server_error",
  ) {
    super(message);
  }
}

/**
 * A batch of one record whose transaction failed without naming it (Pocketbase's batch timeout,
 * on a loaded server): nothing in the record was refused, so it is waited out like a 5xx.
 */
export class TransactionFailed extends Error {}

/** The server's batch API limits, as prepare() found (or set) them. */
export type BatchLimits = { maxRequests: number; timeoutS: number; maxBodyBytes: number };

/** One sink's client and what it keeps between calls. */
export type PbConnection = {
  readonly name: string;
  readonly cfg: PocketbaseSinkConfig;
  readonly pb: PocketBase;
  /** How the sink names itself in errors, runs and /api/sinks: its URL without credentials. */
  readonly where: string;
  readonly signal?: AbortSignal;
  limits: BatchLimits | null;
  authing: Promise<void> | null;
  /** Transient failures waited out so far. */
  retries: number;
};

export function connect(name: string, cfg: PocketbaseSinkConfig, signal?: AbortSignal): PbConnection {
  const pb = new PocketBase(cfg.url);
  pb.autoCancellation(false);
  // A 429 (from Pocketbase's limiter or a proxy in front of it) may say when to come back; the
  // SDK's error keeps the body only, so the header is carried into it here.
  pb.afterSend = (response, data) => {
    if (response.status === 429) {
      const wait = retryAfterMs(response.headers.get("retry-after"));
      if (wait !== undefined) return { ...(data && typeof data === "object" ? data : {}), retryAfterMs: wait };
    }
    return data;
  };
  return { name, cfg, pb, where: `Pocketbase sink ${name} (${redactUrl(cfg.url)})`, signal, limits: null, authing: null, retries: 0 };
}

/** The SDK options of one request: no auto-cancellation, the config's timeout. */
export const requestOptions = (conn: PbConnection) => ({ requestKey: null, signal: AbortSignal.timeout(conn.cfg.timeoutMs) });

type Transient = { kind: "unreachable" | "server_error" | "rate_limited"; message: string };

/** host:port of the sink's URL (no credentials, no path). */
function hostPort(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || (u.protocol === "https:" ? "443" : "80")}`;
  } catch {
    return redactUrl(url);
  }
}

/**
 * What a request that got no answer met, in words. The SDK wraps the fetch error in a
 * ClientResponseError whose message is "Something went wrong."; the cause is in originalError.
 */
export function unreachableReason(e: ClientResponseError, url: string, timeoutMs: number): string {
  const at = hostPort(url);
  const o = e.originalError as { code?: unknown; name?: unknown; message?: unknown } | null;
  const code = typeof o?.code === "string" ? o.code : "";
  if (code === "ECONNREFUSED" || code === "ConnectionRefused") return `connection refused at ${at}`;
  if (code === "ECONNRESET" || code === "ConnectionClosed") return `connection reset by ${at}`;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "FailedToOpenSocket") return `cannot resolve or reach ${at} (${code})`;
  if (e.isAbort || o?.name === "TimeoutError" || o?.name === "AbortError") return `no answer from ${at} within ${timeoutMs} ms`;
  const why = typeof o?.message === "string" && o.message ? o.message : e.message;
  return `no response from ${at}${code ? ` (${code})` : ""}: ${why}`;
}

function transientOf(e: unknown, conn: PbConnection): Transient | null {
  if (e instanceof TransactionFailed) return { kind: "server_error", message: e.message };
  if (e instanceof ClientResponseError) {
    if (e.isAbort || e.status === 0) return { kind: "unreachable", message: unreachableReason(e, conn.cfg.url, conn.cfg.timeoutMs) };
    if (e.status === 429) return { kind: "rate_limited", message: "429 Too Many Requests" };
    if (e.status >= 500) return { kind: "server_error", message: `${e.status} ${e.message}` };
    return null;
  }
  if (e instanceof Error && /ECONNREFUSED|ECONNRESET|socket|network|timed? ?out|fetch failed|Unable to connect/i.test(e.message)) return { kind: "unreachable", message: e.message };
  return null;
}

/** Waits out transient failures (down, 5xx, 429) with full-jitter backoff until retryForS. */
export async function withRetry<T>(conn: PbConnection, what: string, fn: () => Promise<T>): Promise<T> {
  const { cfg, where } = conn;
  const deadline = Date.now() + cfg.retryForS * 1000;
  let attempt = 0;
  let reauthed = false;
  for (;;) {
    if (conn.signal?.aborted === true) throw new SinkError(`${where}: ${what} aborted`, "aborted");
    try {
      await ensureAuth(conn);
      return await fn();
    } catch (e) {
      if (e instanceof SinkError) throw e;
      if (e instanceof ClientResponseError && e.status === 401 && !reauthed) {
        // The token expired or was revoked under us: sign in again once, then retry.
        reauthed = true;
        conn.pb.authStore.clear();
        continue;
      }
      const t = transientOf(e, conn);
      if (!t) throw e;
      if (Date.now() >= deadline) throw new SinkError(`${where}: ${what} still failing after ${cfg.retryForS} s: ${t.message}`, t.kind);
      const hinted = t.kind === "rate_limited" && e instanceof ClientResponseError ? Number(e.response?.retryAfterMs) : NaN;
      const backoff = Number.isFinite(hinted) ? hinted : Math.random() * Math.min(10_000, 250 * 2 ** attempt);
      const wait = Math.min(backoff, Math.max(0, deadline - Date.now()));
      attempt++;
      conn.retries++;
      if (attempt === 1 || attempt % 10 === 0) log.warn("pocketbase: waiting", { sink: conn.name, what, reason: t.message, attempt });
      await sleep(Math.max(50, wait));
    }
  }
}

/** Signs in when there is no token or it expires within a minute (or a quarter of its life). */
async function ensureAuth(conn: PbConnection): Promise<void> {
  const token = conn.pb.authStore.token;
  if (token) {
    const p = getTokenPayload(token) as { exp?: number; iat?: number };
    const now = Date.now() / 1000;
    const life = p.exp && p.iat ? p.exp - p.iat : 3600;
    if (p.exp && p.exp - now > Math.min(60, life / 4)) return;
  }
  conn.authing ??= signIn(conn);
  await conn.authing;
}

async function signIn(conn: PbConnection): Promise<void> {
  const { cfg } = conn;
  try {
    await conn.pb.collection("_superusers").authWithPassword(cfg.email, cfg.password, { requestKey: null, signal: AbortSignal.timeout(cfg.timeoutMs) });
  } catch (e) {
    if (e instanceof ClientResponseError && (e.status === 400 || e.status === 401 || e.status === 403 || e.status === 404))
      throw new SinkError(`${conn.where}: superuser sign-in failed (${e.status}): check the sink's email and password`, "auth");
    throw e;
  } finally {
    conn.authing = null;
  }
}

export type SinkProbe = { reachable: boolean; authenticated: boolean; latencyMs: number; error: string | null };

/**
 * One look at the server, no retries (the health checks): its /api/health answers, the superuser
 * signs in (or its token is still good) and an authenticated call succeeds.
 */
export async function probeConnection(conn: PbConnection): Promise<SinkProbe> {
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  const opts = () => ({ requestKey: null, signal: AbortSignal.timeout(Math.min(conn.cfg.timeoutMs, 5_000)) });
  try {
    await conn.pb.health.check(opts());
  } catch (e) {
    const why = e instanceof ClientResponseError && (e.isAbort || e.status === 0) ? unreachableReason(e, conn.cfg.url, Math.min(conn.cfg.timeoutMs, 5_000)) : `health check failed: ${errorText(e)}`;
    return { reachable: false, authenticated: false, latencyMs: ms(), error: why };
  }
  try {
    await ensureAuth(conn);
    // An endpoint only a superuser may read: proves the token is accepted now.
    await conn.pb.collections.getList(1, 1, { ...opts(), skipTotal: true, fields: "id" });
    return { reachable: true, authenticated: true, latencyMs: ms(), error: null };
  } catch (e) {
    if (e instanceof ClientResponseError && e.status === 401) conn.pb.authStore.clear();
    const why = e instanceof ClientResponseError && (e.isAbort || e.status === 0) ? unreachableReason(e, conn.cfg.url, conn.cfg.timeoutMs) : errorText(e);
    return { reachable: true, authenticated: false, latencyMs: ms(), error: why };
  }
}
