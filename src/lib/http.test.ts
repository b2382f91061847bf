// The pieces of the provider call policy that are pure functions, and the limiter's schedule.
import { describe, expect, test } from "bun:test";
import { backoffMs, DEFAULT_RETRY, redactUrl, retryAfterMs } from "./http.ts";
import { createRateLimiter, ratePerSecond, RATE_HEADROOM, WINDOW_SLACK_MS, windowOf } from "./ratelimit.ts";
import { testTimeout } from "../../test/timeout.ts";

testTimeout();

describe("Retry-After", () => {
  test("seconds and HTTP dates", () => {
    expect(retryAfterMs("3")).toBe(3000);
    expect(retryAfterMs("0.5")).toBe(500);
    const now = Date.parse("2024-01-01T00:00:00Z");
    expect(retryAfterMs("Mon, 01 Jan 2024 00:00:07 GMT", now)).toBe(7000);
    expect(retryAfterMs("Sun, 31 Dec 2023 23:59:00 GMT", now)).toBe(0);
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs("soon")).toBeUndefined();
  });
});

describe("backoff with full jitter", () => {
  test("grows exponentially, capped, never negative", () => {
    const p = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffMs(0, p, () => 0.999)).toBe(99);
    expect(backoffMs(2, p, () => 0.999)).toBe(399);
    expect(backoffMs(10, p, () => 0.999)).toBe(999);
    expect(backoffMs(3, p, () => 0)).toBe(0);
  });
});

describe("redaction", () => {
  test("keys and tokens in URLs are masked", () => {
    expect(redactUrl("https://x/v2/aggs?adjusted=true&apiKey=SECRET&limit=5")).toBe("https://x/v2/aggs?adjusted=true&apiKey=***&limit=5");
    expect(redactUrl("https://x/query?function=TIME_SERIES_DAILY&apikey=SECRET")).toBe("https://x/query?function=TIME_SERIES_DAILY&apikey=***");
    expect(redactUrl("https://x/q?s=pkn&token=abc")).toBe("https://x/q?s=pkn&token=***");
  });
});

describe("rate limiter", () => {
  test("per minute and per second", () => {
    expect(ratePerSecond({ perMinute: 5 })).toBeCloseTo(5 / 60, 10);
    expect(ratePerSecond({ perSecond: 2 })).toBe(2);
  });

  test("calls are spaced at the rate (less the headroom), in call order; a throttle pauses, then halves the rate", async () => {
    let clock = 0;
    const sent: number[] = [];
    const limiter = createRateLimiter("t", { perSecond: 10 }, { now: () => clock, sleep: async (ms) => void (clock += ms) });
    const step = 100 / RATE_HEADROOM;
    await Promise.all([0, 1, 2, 3].map(async (i) => {
      await limiter.acquire();
      sent.push(clock);
    }));
    // The bucket starts full (one token): the first call goes at once, the rest one step apart.
    expect(sent.map((t) => Math.round(t * 1000) / 1000)).toEqual([0, step, 2 * step, 3 * step].map((t) => Math.round(t * 1000) / 1000));
    limiter.throttled(5000);
    expect(limiter.stats().factor).toBe(1); // one 429 may be bad luck
    const before = clock;
    await limiter.acquire();
    expect(clock - before).toBeCloseTo(5000, 6); // Retry-After is honoured by the next caller
    limiter.throttled(0);
    expect(limiter.stats().factor).toBe(0.5);
    limiter.throttled(0);
    expect(limiter.stats().factor).toBe(0.25);
    await limiter.acquire();
    const t0 = clock;
    await limiter.acquire();
    expect(clock - t0).toBeCloseTo(step * 4, 6); // a quarter of the rate
    limiter.succeeded();
    expect(limiter.stats().factor).toBeCloseTo(0.25 + 1 / 32, 10);
    for (let i = 0; i < 100; i++) limiter.succeeded();
    expect(limiter.stats().factor).toBe(1);
    expect(limiter.stats().throttled).toBe(3);
  });

  test("the provider's window holds at most its limit, a burst included, and the pace stays above 95% of it", async () => {
    expect(windowOf({ perSecond: 20 })).toEqual({ calls: 20, ms: 1000 });
    expect(windowOf({ perMinute: 5 })).toEqual({ calls: 5, ms: 60_000 });
    expect(windowOf({ perSecond: 0.5 })).toEqual({ calls: 1, ms: 2000 });
    for (const limit of [{ perSecond: 20 }, { perSecond: 20, burst: 8 }, { perMinute: 5, burst: 5 }]) {
      let clock = 0;
      const sent: number[] = [];
      const limiter = createRateLimiter("t", limit, { now: () => clock, sleep: async (ms) => void (clock += ms) });
      for (let i = 0; i < 200; i++) {
        await limiter.acquire();
        sent.push(clock);
      }
      const { calls, ms } = windowOf(limit);
      // Any calls + 1 consecutive grants span more than the window and its slack.
      for (let i = calls; i < sent.length; i++) expect(sent[i]! - sent[i - calls]!).toBeGreaterThanOrEqual(ms + WINDOW_SLACK_MS);
      const perWindow = ((sent.length - 1) / (sent.at(-1)! - sent[0]!)) * ms;
      expect(perWindow).toBeGreaterThan(0.95 * calls);
    }
  });

  test("a used-up quota fails every caller at once", async () => {
    const limiter = createRateLimiter("q", { perSecond: 1000 });
    limiter.exhaust(Date.now() + 60_000, "25 requests per day");
    await expect(limiter.acquire()).rejects.toThrow("25 requests per day");
  });
});
