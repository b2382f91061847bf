// Request rate limits of the HTTP API: one bucket per token, or per address for requests without a
// valid token. GCRA (a token bucket kept as one number per key, its "theoretical arrival time"),
// in a Map capped at `maxKeys` that evicts the least recently used key, so a flood of addresses
// cannot grow it. Our own code rather than hono-rate-limiter: its memory store is a fixed window
// whose key map has no cap, and src/lib/ratelimit.ts makes callers wait instead of refusing them.

/** `perSecond` requests a second on average, `burst` at once. */
export type RateRule = { perSecond: number; burst: number };

export type Verdict = { ok: true } | { ok: false; /** ms until one request is allowed again */ retryAfterMs: number; /** ms until the bucket is full again */ resetMs: number };

export type KeyedLimiter = {
  take(key: string, rule: RateRule): Verdict;
  /** Keys held now (≤ maxKeys). */
  readonly size: number;
};

export function keyedLimiter(maxKeys: number, clock: () => number = () => performance.now()): KeyedLimiter {
  // Key → the time its bucket is full again (ms, `clock`'s); Map order is recency order.
  const full = new Map<string, number>();
  return {
    take(key, rule) {
      const now = clock();
      const interval = 1000 / rule.perSecond;
      const span = rule.burst * interval;
      const next = Math.max(full.get(key) ?? now, now) + interval;
      full.delete(key);
      if (next - now > span) {
        full.set(key, next - interval);
        return { ok: false, retryAfterMs: next - now - span, resetMs: next - interval - now };
      }
      full.set(key, next);
      // Over the cap, the least recently used key goes (most likely a full bucket: nothing lost).
      if (full.size > maxKeys) full.delete(full.keys().next().value!);
      return { ok: true };
    },
    get size() {
      return full.size;
    },
  };
}

/**
 * The bucket key of a peer address: IPv4 as is, IPv6 by its /64 (one host is given a whole /64,
 * so its addresses are one key), an IPv4-mapped IPv6 address as the IPv4 one.
 */
export function addressKey(address: string): string {
  const a = address.toLowerCase();
  if (a.startsWith("::ffff:") && a.includes(".")) return a.slice(7);
  if (!a.includes(":")) return a;
  const [head = "", tail = ""] = a.split("::", 2);
  const left = head ? head.split(":") : [];
  const right = a.includes("::") && tail ? tail.split(":") : [];
  const groups = a.includes("::") ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}
