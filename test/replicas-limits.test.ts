// What replicas coordinate through, against a real PostgreSQL schema of the test's own: the
// shared token bucket (limiters of three "replicas" together stay under the provider's limit in
// every window, and one's 429 pauses all), what a grant costs, and job claims (one tick runs
// once, a dead holder's claim expires, a lost claim cannot be renewed).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createRateLimiter, SHARED_LATE_MS, useSharedRates, type SharedRates } from "../src/lib/ratelimit.ts";
import { pgCoordination, type PgCoordination } from "../src/stores/postgres/limits.ts";
import { postgresStore } from "../src/stores/postgres/index.ts";
import type { Store } from "../src/stores/types.ts";
import { busiestWindow } from "./helpers.ts";
import { PG_URL } from "./stores.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();
if (!PG_URL && process.env.CI === "true") throw new Error("CI=true and PostgreSQL is not running");

describe.skipIf(!PG_URL)("replica coordination on Postgres", () => {
  let store: Store;
  let coord: PgCoordination;
  let other: PgCoordination;
  beforeAll(async () => {
    const u = new URL(PG_URL!);
    u.searchParams.set("schema", `replicas_limits_${process.pid}_${Date.now().toString(36)}`);
    store = postgresStore(u.toString());
    await store.migrate();
    coord = pgCoordination(u.toString());
    other = pgCoordination(u.toString());
  });
  afterAll(async () => {
    useSharedRates(null);
    await coord?.close();
    await other?.close();
    await store?.close();
  });

  test("three limiters on one bucket never pass its limit in any window; a 429 pauses them all", async () => {
    useSharedRates(coord);
    const limit = { perSecond: 10 };
    const replicas = [0, 1, 2].map(() => createRateLimiter("yahoo", limit, { sharedKey: "yahoo|http://x|k1|limit" }));
    const granted: number[] = [];
    const t0 = performance.now();
    await Promise.all(
      replicas.map(async (l) => {
        for (let i = 0; i < 12; i++) {
          await l.acquire();
          granted.push(performance.now());
        }
      }),
    );
    const took = performance.now() - t0;
    expect(granted.length).toBe(36);
    // Alone each would go at 10/s: 36 grants in about 1.2 s. Shared: about 3.6 s.
    expect(took).toBeGreaterThan(3000);
    expect(busiestWindow(granted, 1000)).toBeLessThanOrEqual(10);

    // One replica is told "too many, retry after 800 ms": the others wait it out too.
    replicas[0]!.throttled(800, "429");
    await Bun.sleep(50); // the pause is written in the background
    const before = performance.now();
    await replicas[1]!.acquire();
    expect(performance.now() - before).toBeGreaterThan(650);
    useSharedRates(null);
  }, 30_000);

  test("a bucket per key: another API key is not slowed by this one", async () => {
    useSharedRates(coord);
    const a = createRateLimiter("yahoo", { perSecond: 5 }, { sharedKey: "key-a" });
    const b = createRateLimiter("yahoo", { perSecond: 5 }, { sharedKey: "key-b" });
    const t0 = performance.now();
    await Promise.all([a.acquire(), a.acquire(), b.acquire(), b.acquire()]);
    // Two of each at 5/s: about 200 ms, not the 600 ms one bucket of four would take.
    expect(performance.now() - t0).toBeLessThan(500);
    useSharedRates(null);
  });

  test("a grant is one round trip", async () => {
    // The ring the row keeps: a 20-a-second limit, and the largest kept (256).
    for (const windowCalls of [20, 256]) {
      const ms: number[] = [];
      for (let i = 0; i < 100; i++) {
        const t = performance.now();
        const wait = await coord.reserve(`cost-${windowCalls}`, { stepMs: 0.01, windowCalls, windowMs: 1, burst: 1 });
        ms.push(performance.now() - t);
        expect(wait).toBeLessThan(5);
      }
      ms.sort((x, y) => x - y);
      const mean = ms.reduce((x, y) => x + y, 0) / ms.length;
      console.log(`rate_reserve (ring ${windowCalls}): mean ${mean.toFixed(2)} ms, median ${ms[50]!.toFixed(2)} ms, p95 ${ms[95]!.toFixed(2)} ms, max ${ms[99]!.toFixed(2)} ms (100 grants)`);
      expect(ms[50]!).toBeLessThan(50);
    }
  });

  test("job claims: one replica per tick, none twice, a dead holder's claim expires", async () => {
    const tick = 1_700_000_000_000;
    expect(await coord.claimJob("load", "a", tick, 60_000)).toBe(true);
    expect(await other.claimJob("load", "b", tick, 60_000)).toBe(false); // same tick
    expect(await other.claimJob("load", "b", tick + 1000, 60_000)).toBe(false); // a still runs it
    await coord.releaseJob("load", "a");
    expect(await other.claimJob("load", "b", tick, 60_000)).toBe(false); // that tick ran
    expect(await other.claimJob("load", "b", tick + 1000, 200)).toBe(true);
    expect(await other.renewJob("load", "b", 200)).toBe(true);
    // b dies without releasing: after its time a takes the next tick, and b cannot renew.
    await Bun.sleep(300);
    expect(await coord.claimJob("load", "a", tick + 1000, 60_000)).toBe(false);
    expect(await coord.claimJob("load", "a", tick + 2000, 60_000)).toBe(true);
    expect(await other.renewJob("load", "b", 200)).toBe(false);
    // Other jobs are claimed on their own.
    expect(await other.claimJob("sync", "b", tick + 2000, 60_000)).toBe(true);
  });
});

// No database needed: a grant that comes back late (a slow answer, a late timer) is not used.
test("a shared grant that arrives late is given up and another booked", async () => {
  const asked: number[] = [];
  const slow: SharedRates = {
    async reserve() {
      asked.push(performance.now());
      // The first answers are quick; then one is slow, as on a busy machine.
      if (asked.length === 3) await Bun.sleep(SHARED_LATE_MS + 80);
      return 0;
    },
    pause: async () => {},
  };
  useSharedRates(slow);
  try {
    const l = createRateLimiter("yahoo", { perSecond: 1000 }, { sharedKey: "late" });
    await l.acquire();
    await l.acquire();
    expect(asked.length).toBe(2);
    await l.acquire(); // its slot came back too late: a second booking
    expect(asked.length).toBe(4);
  } finally {
    useSharedRates(null);
  }
});
