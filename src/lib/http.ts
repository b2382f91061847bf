// Calling a provider's HTTP API: every call waits for the provider's shared rate limiter, has a
// timeout, and is retried only when trying again can help (timeouts, connection resets, 5xx,
// rate limits) — never for a 4xx that will answer the same next time.
import type { RateLimiter } from "./ratelimit.ts";
import { QuotaExhausted } from "./ratelimit.ts";
import { redactUrl } from "./redact.ts";
import { errorText } from "./errors.ts";

/** Why a symbol could not be loaded; runs summarise failures by these. */
export type FailureCause =
  | "not_found"
  | "no_data"
  | "rate_limited"
  | "timeout"
  | "server_error"
  | "network"
  | "bad_response"
  | "client_error"
  | "auth"
  | "source_error"
  | "aborted";

export class ProviderError extends Error {
  override name = "ProviderError";
  constructor(
    message: string,
    readonly failure: FailureCause,
    readonly opts: { status?: number; retryable?: boolean; retryAfterMs?: number; quotaExhaustedForMs?: number } = {},
  ) {
    super(message);
  }
  get retryable(): boolean {
    return this.opts.retryable ?? false;
  }
}

export type RetryPolicy = {
  /** Tries for transient errors (timeouts, 5xx, resets, bad bodies), the first included. */
  attempts: number;
  /** Tries while the provider keeps rate-limiting. */
  rateLimitAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
};

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, rateLimitAttempts: 6, baseDelayMs: 500, maxDelayMs: 30_000 };

/** Parse Retry-After: delta seconds or an HTTP date. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const s = header.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** Mask credentials in a URL before it reaches an error message or a log (the one redaction: src/lib/redact.ts). */
export { redactUrl };

/** Exponential backoff with full jitter: a random wait in [0, min(max, base·2^n)). */
export function backoffMs(attempt: number, p: RetryPolicy, random = Math.random): number {
  return Math.floor(random() * Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** attempt));
}

export type RequestOptions<T> = {
  limiter: RateLimiter;
  retry?: RetryPolicy;
  timeoutMs: number;
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /** Read a response into a value, or throw a ProviderError (retryable or not). */
  parse: (res: Response, body: string) => T;
  random?: () => number;
  onAttempt?: (info: { url: string; status: number | null; attempt: number; error?: string }) => void;
};

export async function providerRequest<T>(url: string, o: RequestOptions<T>): Promise<T> {
  const policy = o.retry ?? DEFAULT_RETRY;
  let transient = 0;
  let limited = 0;
  for (;;) {
    if (o.signal?.aborted) throw new ProviderError("aborted", "aborted");
    try {
      await o.limiter.acquire(o.signal);
    } catch (e) {
      if (e instanceof QuotaExhausted) throw new ProviderError(e.message, "rate_limited");
      throw new ProviderError("aborted", "aborted");
    }
    let err: ProviderError;
    let status: number | null = null;
    try {
      const timeout = AbortSignal.timeout(o.timeoutMs);
      const res = await fetch(url, { signal: o.signal ? AbortSignal.any([o.signal, timeout]) : timeout, headers: o.headers });
      status = res.status;
      // Read the whole body under the same timeout: a provider may hang mid-body too.
      const body = await res.text();
      if (res.status === 429) throw new ProviderError(`HTTP 429 from ${redactUrl(url)}`, "rate_limited", { status: 429, retryable: true, retryAfterMs: retryAfterMs(res.headers.get("retry-after")) });
      if (res.status >= 500)
        throw new ProviderError(`HTTP ${res.status} from ${redactUrl(url)}`, "server_error", { status: res.status, retryable: true, retryAfterMs: retryAfterMs(res.headers.get("retry-after")) });
      const value = o.parse(res, body);
      o.limiter.succeeded();
      o.onAttempt?.({ url: redactUrl(url), status, attempt: transient + limited + 1 });
      return value;
    } catch (e) {
      if (e instanceof ProviderError) err = e;
      else if (o.signal?.aborted) throw new ProviderError("aborted", "aborted");
      else if ((e as Error)?.name === "TimeoutError") err = new ProviderError(`timed out after ${o.timeoutMs} ms: ${redactUrl(url)}`, "timeout", { retryable: true });
      else err = new ProviderError(`${errorText(e)}: ${redactUrl(url)}`, "network", { retryable: true });
    }
    o.onAttempt?.({ url: redactUrl(url), status, attempt: transient + limited + 1, error: err.message });
    if (err.opts.quotaExhaustedForMs !== undefined) {
      // A used-up daily quota does not clear in seconds: stop calling, for every symbol.
      o.limiter.exhaust(Date.now() + err.opts.quotaExhaustedForMs, err.message);
      throw new ProviderError(err.message, "rate_limited", { status: err.opts.status });
    }
    if (!err.retryable) throw err;
    if (err.failure === "rate_limited") {
      o.limiter.throttled(err.opts.retryAfterMs, err.opts.status === 429 ? `HTTP 429${err.opts.retryAfterMs !== undefined ? `, Retry-After ${Math.round(err.opts.retryAfterMs / 1000)} s` : ""}` : "the provider asked to slow down");
      if (++limited >= policy.rateLimitAttempts) throw new ProviderError(`still rate-limited after ${limited} tries: ${err.message}`, "rate_limited", { status: err.opts.status });
      continue; // the limiter's pause is the wait
    }
    if (++transient >= policy.attempts) throw new ProviderError(`gave up after ${transient} tries: ${err.message}`, err.failure, { status: err.opts.status });
    const backoff = Math.max(err.opts.retryAfterMs ?? 0, backoffMs(transient - 1, policy, o.random));
    await o.limiter.pause(backoff, `${o.limiter.name} retry after ${err.failure} (try ${transient + 1} of ${policy.attempts})`, o.signal).catch(() => {
      throw new ProviderError("aborted", "aborted");
    });
  }
}

/** JSON.parse that turns a cut or garbled body into a retryable bad_response. */
export function parseJsonBody(body: string, what: string): any {
  try {
    return JSON.parse(body);
  } catch {
    throw new ProviderError(`${what}: the response is not valid JSON (${body.length} bytes${body.length ? `, starts ${JSON.stringify(body.slice(0, 40))}` : ""})`, "bad_response", { retryable: true });
  }
}
