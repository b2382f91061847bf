// Per-provider rate limiting, shared by every worker that calls the provider: a token bucket
// of capacity `burst` (default 1) at the configured rate, kept as a GCRA schedule and handed out
// one grant at a time, so with burst 1 calls are evenly spaced; and no window of the provider's
// length (a second or a minute, with some slack) sees more calls than its limit, bursts included.
// A 429 (or a provider's 200-with-a-note) pauses everyone until its Retry-After, and consecutive
// ones halve the rate; successes win it back step by step.
// Replicas on one PostgreSQL store share each provider's limit: with a SharedRates installed
// (serve does, for PostgreSQL), a grant also reserves its slot in the store's bucket for the
// provider and key, and a 429 pauses every replica. Alone (SQLite: one process) it is local.
export type RateLimit = { perSecond?: number; perMinute?: number; burst?: number };

/** A wait in progress that a person should see: why, and until when (epoch ms). */
export type Wait = { reason: string; until: number };

/** Waits at least this long are shown (progress line, /api/jobs): shorter ones are the normal pace. */
export const SHOWN_WAIT_MS = 2000;

/** The longest wait in progress, and word when that changes. */
export type Waits = { current(): Wait | null; subscribe(fn: () => void): () => void };

export type RateLimiterStats = {
  granted: number;
  throttled: number;
  factor: number;
  waitedMs: number;
};

export type RateLimiter = {
  readonly name: string;
  /** Calls per second the limiter allows when not slowed down. */
  readonly rate: number;
  /** Resolves when a call may go; throws QuotaExhausted while the provider's quota is used up. */
  acquire(signal?: AbortSignal): Promise<void>;
  /** The provider's quota (a daily cap) is used up: no calls at all until `untilMs` (epoch ms). */
  exhaust(untilMs: number, reason: string): void;
  /** The provider said "too many": pause all callers, and slow down if it keeps saying so. */
  throttled(retryAfterMs?: number, why?: string): void;
  succeeded(): void;
  stats(): RateLimiterStats;
  /** Waits of this provider's callers that last SHOWN_WAIT_MS or more. */
  readonly waits: Waits;
  /** Sleep ms (a retry's backoff), shown among the waits when long enough. */
  pause(ms: number, reason: string, signal?: AbortSignal): Promise<void>;
};

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });

/**
 * A limiter every replica shares (stores/postgres/limits.ts). `reserve` books the next slot of the
 * bucket `key` and resolves with how long to wait for it (ms); `pause` holds the bucket back.
 */
export type SharedRates = {
  reserve(key: string, o: { stepMs: number; windowCalls: number; windowMs: number; burst: number }): Promise<number>;
  pause(key: string, ms: number): Promise<void>;
};

let sharedRates: SharedRates | null = null;
/** Install (or with null remove) the shared limiter: limiters made with a `sharedKey` use it. */
export function useSharedRates(s: SharedRates | null): void {
  sharedRates = s;
}

/**
 * Slack added to the provider's window for grants shared between processes: a grant travels
 * back from the database and then to the provider, and that lateness varies more between
 * processes than within one (about 10% of a one-second window).
 */
export const SHARED_WINDOW_SLACK_MS = 100;
/**
 * The shared bucket keeps its last grants in its row, rewritten at each grant: a limit of more
 * calls a window is kept as this many in the matching part of the window (even spacing bounds
 * the rest).
 */
const SHARED_RING_MAX = 256;
/**
 * A shared grant that reaches its caller later than this after its slot, beyond the quickest
 * recent answer of the database (a slow answer, a late timer on a busy machine), is given up and
 * another booked: sent that late it could arrive within a window of the calls after it. The slot
 * given up still counts, so it errs on the safe side.
 */
export const SHARED_LATE_MS = 40;

export class QuotaExhausted extends Error {
  override name = "QuotaExhausted";
}

export function ratePerSecond(limit: RateLimit): number {
  if (limit.perSecond !== undefined) return limit.perSecond;
  if (limit.perMinute !== undefined) return limit.perMinute / 60;
  throw new Error("a rate limit needs perSecond or perMinute");
}

/**
 * Headroom kept below the configured rate. Calls leave on timers and cross a network: a call
 * sent late and the next one on time arrive closer together than planned. Two percent of slack
 * keeps every window the provider counts within its limit.
 */
export const RATE_HEADROOM = 0.98;
/** Lateness of a timer that still counts as on schedule (see grant). */
const LATE_CREDIT_MS = 4;
/**
 * Slack added to the provider's window: a call granted on time may still leave late (a busy
 * event loop between grant and send), so the calls it counts in any window of its length are
 * at most its limit as long as that lateness varies by less than this.
 */
export const WINDOW_SLACK_MS = 40;

/**
 * The provider's own window and the calls it allows in it (20 per second, 5 per minute), which
 * even spacing alone does not bound: a burst, or calls sent late after on-time ones, would put
 * more in one window. A limit below one call per window is one call per 1/rate.
 */
export function windowOf(limit: RateLimit): { calls: number; ms: number } {
  const ms = limit.perSecond !== undefined ? 1000 : 60_000;
  const calls = Math.floor((ratePerSecond(limit) * ms) / 1000 + 1e-9);
  return calls >= 1 ? { calls, ms } : { calls: 1, ms: 1000 / ratePerSecond(limit) };
}

export function createRateLimiter(
  name: string,
  limit: RateLimit,
  opts: { now?: () => number; sleep?: (ms: number, signal?: AbortSignal) => Promise<void>; minFactor?: number; sharedKey?: string } = {},
): RateLimiter {
  // Read once: a limiter made before serve installs the shared one stays local.
  const shared = opts.sharedKey !== undefined ? sharedRates : null;
  const sharedKey = opts.sharedKey ?? "";
  const now = opts.now ?? (() => performance.now());
  const wait = opts.sleep ?? sleep;
  const rate = ratePerSecond(limit);
  if (!(rate > 0)) throw new Error(`rate limit of ${name} must be positive`);
  const burst = Math.max(1, limit.burst ?? 1);
  const minFactor = opts.minFactor ?? 1 / 16;
  let factor = 1;
  // GCRA: `tat` is when the next call is due on an even schedule; a bucket of `burst` calls may
  // go early by up to (burst - 1) intervals.
  let tat = -Infinity;
  let pausedUntil = 0;
  let consecutive = 0;
  let exhaustedUntil = 0; // wall clock: quotas reset on calendar time
  let exhaustedReason = "";
  // Grants are handed out one at a time, in call order: each waits for the one before it.
  let queue: Promise<void> = Promise.resolve();
  const stats: RateLimiterStats = { granted: 0, throttled: 0, factor: 1, waitedMs: 0 };
  const step = () => 1000 / (rate * factor * RATE_HEADROOM);
  // The last `window.calls` grants, a ring: a new one waits until the oldest is a window (and the
  // slack) old, so no window of the provider's length holds more than its limit.
  const window = windowOf(limit);
  const granted = new Array<number>(window.calls).fill(-Infinity);
  let oldest = 0;
  let pauseWhy = "";

  // Long waits in progress (the grant's, and retries' backoffs), so a run can say why it is quiet.
  const active = new Set<Wait>();
  const listeners = new Set<() => void>();
  const changed = () => {
    for (const fn of listeners) fn();
  };
  const waits: Waits = {
    current() {
      let longest: Wait | null = null;
      for (const w of active) if (longest === null || w.until > longest.until) longest = w;
      return longest;
    },
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
  async function shown(ms: number, reason: string, sleepFor: () => Promise<void>) {
    if (ms < SHOWN_WAIT_MS) return sleepFor();
    const w: Wait = { reason, until: Date.now() + ms };
    active.add(w);
    changed();
    try {
      await sleepFor();
    } finally {
      active.delete(w);
      changed();
    }
  }

  // The last round trips to the shared bucket: the quickest is the database's usual latency.
  const roundTrips = new Array<number>(16).fill(Infinity);
  let rtPos = 0;
  /** The other replicas' calls count too: wait for the slot the shared bucket gives this one. */
  async function sharedSlot(signal?: AbortSignal) {
    const calls = Math.min(window.calls, SHARED_RING_MAX);
    const windowMs = (window.ms * calls) / window.calls + SHARED_WINDOW_SLACK_MS;
    for (;;) {
      const asked = now();
      const ms = Math.max(0, await shared!.reserve(sharedKey, { stepMs: step(), windowCalls: calls, windowMs, burst }));
      roundTrips[rtPos] = now() - asked;
      rtPos = (rtPos + 1) % roundTrips.length;
      if (ms > 0) {
        stats.waitedMs += ms;
        await shown(ms, `${name} rate limit (shared by the replicas)`, () => wait(ms, signal));
      }
      // The slot is on the database's clock, `ms` after it was asked: at most this late now.
      if (now() - asked - ms <= Math.min(...roundTrips) + SHARED_LATE_MS) return;
      signal?.throwIfAborted();
    }
  }

  async function grant(signal?: AbortSignal) {
    let t: number;
    for (;;) {
      if (Date.now() < exhaustedUntil) throw new QuotaExhausted(`${name}: ${exhaustedReason} (no calls until ${new Date(exhaustedUntil).toISOString()})`);
      t = now();
      const delay = Math.max(pausedUntil, tat - (burst - 1) * step(), granted[oldest]! + window.ms + WINDOW_SLACK_MS) - t;
      if (delay <= 0) break;
      stats.waitedMs += delay;
      const paused = pausedUntil - t >= delay;
      await shown(delay, `${name} rate limit${paused && pauseWhy ? `: ${pauseWhy}` : ""}`, () => wait(delay, signal));
    }
    if (shared) {
      await sharedSlot(signal);
      if (Date.now() < exhaustedUntil) throw new QuotaExhausted(`${name}: ${exhaustedReason} (no calls until ${new Date(exhaustedUntil).toISOString()})`);
      t = now();
    }
    // Timers fire a little late. A little lateness (timer jitter: at most half an interval and
    // at most LATE_CREDIT_MS) is credited to the next call, so the rate holds instead of losing a
    // millisecond a call. Anything later (an idle limiter, a stalled process) starts over from
    // now: never a burst to catch up.
    tat = t - tat <= Math.min(step() / 2, LATE_CREDIT_MS) ? tat + step() : t + step();
    granted[oldest] = t;
    oldest = (oldest + 1) % window.calls;
    stats.granted++;
  }

  return {
    name,
    rate,
    acquire(signal) {
      const mine = queue.then(() => grant(signal));
      queue = mine.catch(() => {});
      return mine;
    },
    exhaust(untilMs, reason) {
      exhaustedUntil = Math.max(exhaustedUntil, untilMs);
      exhaustedReason = reason;
    },
    throttled(retryAfterMs, why) {
      stats.throttled++;
      pauseWhy = why ?? "";
      consecutive++;
      // The first 429 may be bad luck (another client on the same key); from the second in a
      // row on, the limit we were given is higher than what the provider enforces.
      if (consecutive >= 2) factor = Math.max(minFactor, factor / 2);
      stats.factor = factor;
      const t = now();
      pausedUntil = Math.max(pausedUntil, t + (retryAfterMs ?? step()));
      tat = Math.max(tat, pausedUntil);
      // Every replica waits out the provider's pause (a failed write leaves the local one).
      shared?.pause(sharedKey, pausedUntil - t).catch(() => {});
    },
    succeeded() {
      consecutive = 0;
      if (factor < 1) factor = Math.min(1, factor + 1 / 32);
      stats.factor = factor;
    },
    stats: () => ({ ...stats }),
    waits,
    pause: (ms, reason, signal) => shown(ms, reason, () => wait(ms, signal)),
  };
}

export { sleep };
