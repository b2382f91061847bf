// Request rate limits of the HTTP API: per token and per address (429 with Retry-After and
// RateLimit headers) on a real `ticksync serve`, the limiter's memory bounded under a flood of
// addresses and of invalid tokens on a real Bun.serve, and the GCRA arithmetic on a stepped clock.
// Distinct peer addresses are real: loopback is all of 127.0.0.0/8, so a socket bound to
// 127.0.x.y reaches the server from that address.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { join } from "node:path";
import { startServe, tempDir, writeFile } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";
import { createApp } from "../src/http/app.ts";
import { addressKey, keyedLimiter } from "../src/http/rate-limit.ts";
import { DEFAULT_RATE_LIMIT } from "../src/http/security.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";

testTimeout();

const dir = tempDir("ticksync-ratelimit-");
const A = "token-a-0123456789abcdef";
const B = "token-b-0123456789abcdef";

type Answer = { status: number; headers: Record<string, string> };

/** GET `path` over a socket bound to `from` (a 127.x.y.z address), read the status line and headers. */
function rawGet(port: number, from: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const lines = [`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, "Connection: close", ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), "", ""];
    const sock = connect({ host: "127.0.0.1", port, localAddress: from }, () => sock.write(lines.join("\r\n")));
    let buf = "";
    sock.setTimeout(15_000, () => reject(new Error("no answer")));
    sock.on("data", (d) => {
      buf += d.toString("latin1");
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      sock.destroy();
      const [status, ...rest] = buf.slice(0, end).split("\r\n");
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(status!)?.[1]), headers: Object.fromEntries(rest.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()])) });
    });
    sock.on("error", reject);
  });
}

describe("ticksync serve with rate limits", () => {
  let srv: Awaited<ReturnType<typeof startServe>>;
  let port: number;
  beforeAll(async () => {
    const cfg = writeFile(
      join(dir, "limited.toml"),
      [
        `[store]\nurl = "sqlite:limited.db"`,
        `[server]\n[[server.token]]\nname = "a"\nsecret = "${A}"\nrole = "read"\n[[server.token]]\nname = "b"\nsecret = "${B}"\nrole = "read"`,
        `[server.rateLimit]\ntokenPerSecond = 0.5\ntokenBurst = 3\naddressPerSecond = 0.5\naddressBurst = 5\nloopback = true`,
      ].join("\n\n") + "\n",
    );
    srv = await startServe(["--config", cfg], { env: { TICKSYNC_LOG__LEVEL: "warn" } });
    port = Number(new URL(srv.url).port);
  });
  afterAll(async () => {
    srv?.proc.kill();
    await srv?.proc.exited;
  });

  test("per token: a burst, then 429 with Retry-After and RateLimit headers; another token is not affected", async () => {
    const get = (token: string) => rawGet(port, "127.0.1.1", "/api/runs", { Authorization: `Bearer ${token}` });
    for (let i = 0; i < 3; i++) expect((await get(A)).status, `request ${i + 1}`).toBe(200);
    const refused = await get(A);
    expect(refused.status).toBe(429);
    expect(refused.headers["retry-after"]).toBe("2");
    expect(refused.headers["ratelimit-limit"]).toBe("3");
    expect(refused.headers["ratelimit-remaining"]).toBe("0");
    expect(Number(refused.headers["ratelimit-reset"])).toBeGreaterThanOrEqual(5);
    // The same address with another token, and without one: their own buckets.
    expect((await get(B)).status).toBe(200);
    expect((await rawGet(port, "127.0.1.1", "/api/runs")).status).toBe(200);
    // After Retry-After, one more.
    await Bun.sleep(1000 * Number(refused.headers["retry-after"]) + 50);
    expect((await get(A)).status).toBe(200);
    expect((await get(A)).status).toBe(429);
  });

  test("per address: a burst, then 429; another address is not affected; invalid tokens count against the address; probes never", async () => {
    for (let i = 0; i < 5; i++) expect((await rawGet(port, "127.0.2.1", "/api/runs")).status, `request ${i + 1}`).toBe(200);
    const refused = await rawGet(port, "127.0.2.1", "/api/symbols");
    expect(refused.status).toBe(429);
    expect(Number(refused.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(refused.headers["ratelimit-limit"]).toBe("5");
    expect((await rawGet(port, "127.0.2.2", "/api/runs")).status).toBe(200);
    // A valid token from the limited address has its own bucket.
    expect((await rawGet(port, "127.0.2.1", "/api/runs", { Authorization: `Bearer ${B}` })).status).toBe(200);
    // Guessing tokens: each guess is a request of the address.
    const guesses: number[] = [];
    for (let i = 0; i < 8; i++) guesses.push((await rawGet(port, "127.0.2.3", "/api/runs", { Authorization: `Bearer guess-${i}-0123456789abcdef` })).status);
    expect(guesses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]); // no authReads: a read ignores a bad token
    for (let i = 0; i < 20; i++) expect((await rawGet(port, "127.0.2.1", "/healthz")).status).toBe(200);
  });
});

describe("the limiter's memory is bounded", () => {
  const store = sqliteStore(`sqlite:${join(dir, "bound.db")}`);
  const limiter = keyedLimiter(100);
  let server: ReturnType<typeof Bun.serve>;
  beforeAll(async () => {
    await store.migrate();
    const app = createApp({
      store,
      metrics: ticksyncMetrics(),
      limiter,
      security: { tokens: [A], authReads: true, corsOrigins: [], maxBodyBytes: 1 << 20, rateLimit: { ...DEFAULT_RATE_LIMIT, addressPerSecond: 0.1, addressBurst: 5, maxKeys: 100, loopback: true } },
    });
    server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
  });
  afterAll(async () => {
    server?.stop(true);
    await store.close();
  });

  test("a flood of addresses keeps at most maxKeys; the most recent abuser is still limited", async () => {
    const abuser = "127.0.9.9";
    for (let i = 0; i < 5; i++) expect((await rawGet(server.port!, abuser, "/api/runs")).status).toBe(401);
    expect((await rawGet(server.port!, abuser, "/api/runs")).status).toBe(429);
    for (let i = 0; i < 99; i++) await rawGet(server.port!, `127.0.10.${i + 1}`, "/api/runs");
    expect(limiter.size).toBe(100);
    expect((await rawGet(server.port!, abuser, "/api/runs")).status).toBe(429);
    for (let i = 0; i < 300; i++) await rawGet(server.port!, `127.0.${11 + Math.floor(i / 250)}.${(i % 250) + 1}`, "/api/runs");
    expect(limiter.size).toBe(100);
  });

  test("a flood of invalid tokens is one key (the address); a valid token is one more", async () => {
    const before = limiter.size;
    const from = "127.0.20.1";
    const statuses = new Set<number>();
    for (let i = 0; i < 200; i++) statuses.add((await rawGet(server.port!, from, "/api/runs", { Authorization: `Bearer flood-${i}-0123456789abcdef` })).status);
    expect([...statuses].sort()).toEqual([401, 429]);
    expect(limiter.size).toBeLessThanOrEqual(Math.min(100, before + 1));
    expect((await rawGet(server.port!, from, "/api/runs", { Authorization: `Bearer ${A}` })).status).toBe(200);
  });
});

test("by default callers on this machine are limited per token only (a local proxy would be every client)", async () => {
  const store = sqliteStore(`sqlite:${join(dir, "local.db")}`);
  await store.migrate();
  const limiter = keyedLimiter(100);
  const app = createApp({ store, metrics: ticksyncMetrics(), limiter, security: { tokens: [A], authReads: false, corsOrigins: [], maxBodyBytes: 1 << 20, rateLimit: { ...DEFAULT_RATE_LIMIT, addressPerSecond: 0.1, addressBurst: 2, tokenPerSecond: 0.1, tokenBurst: 2 } } });
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
  try {
    const statuses = new Set<number>();
    for (let i = 0; i < 30; i++) statuses.add((await rawGet(server.port!, "127.0.40.1", "/api/runs")).status);
    expect([...statuses]).toEqual([200]);
    expect(limiter.size).toBe(0);
    const withToken: number[] = [];
    for (let i = 0; i < 3; i++) withToken.push((await rawGet(server.port!, "127.0.40.1", "/api/runs", { Authorization: `Bearer ${A}` })).status);
    expect(withToken).toEqual([200, 200, 429]);
  } finally {
    server.stop(true);
    await store.close();
  }
});

describe("GCRA on a stepped clock", () => {
  test("burst, exact retry time, steady rate", () => {
    let now = 0;
    const l = keyedLimiter(10, () => now);
    const rule = { perSecond: 2, burst: 3 };
    expect([1, 2, 3].map(() => l.take("k", rule).ok)).toEqual([true, true, true]);
    expect(l.take("k", rule)).toEqual({ ok: false, retryAfterMs: 500, resetMs: 1500 });
    now = 499;
    expect(l.take("k", rule).ok).toBe(false);
    now = 500;
    expect(l.take("k", rule).ok).toBe(true);
    expect(l.take("k", rule).ok).toBe(false);
    // Refilled after burst / rate seconds.
    now = 500 + 1500;
    expect([1, 2, 3, 4].map(() => l.take("k", rule).ok)).toEqual([true, true, true, false]);
  });

  test("the least recently used key goes first", () => {
    let now = 0;
    const l = keyedLimiter(3, () => now);
    const rule = { perSecond: 1, burst: 1 };
    for (const k of ["a", "b", "c"]) l.take(k, rule);
    expect(l.take("a", rule).ok).toBe(false); // a is now the most recent
    l.take("d", rule); // b goes
    expect(l.size).toBe(3);
    expect(l.take("a", rule).ok).toBe(false);
    expect(l.take("b", rule).ok).toBe(true); // forgotten: a fresh bucket
  });

  test("addresses: IPv6 by /64, IPv4-mapped as IPv4", () => {
    expect(addressKey("192.0.2.9")).toBe("192.0.2.9");
    expect(addressKey("::ffff:192.0.2.9")).toBe("192.0.2.9");
    expect(addressKey("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:0DB8:0001:0002:ffff:1:2:3")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(addressKey("::1")).toBe("0:0:0:0::/64");
  });
});
