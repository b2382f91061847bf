// Hostile requests against the HTTP API: every request's work, memory and response are bounded
// (src/http/limits.ts) and a refusal is a 400 that names the limit; one access rule for every
// read (HTTP routes, SSE, WebSocket upgrade); names of Object.prototype are not assets.
// The memory test runs a real `ticksync serve` and reads its VmRSS from /proc.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { networkInterfaces } from "node:os";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Bar } from "../src/domain/bar.ts";
import { createApp } from "../src/http/app.ts";
import { MAX_AUDIT_SCAN, MAX_INDICATOR_CELLS, MAX_INDICATORS, MAX_ISSUES, MAX_LIST_ITEMS, MAX_QUERY_BYTES, MAX_QUERY_PARAMS } from "../src/http/limits.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Store } from "../src/stores/types.ts";
import { startServe, tempDir, writeFile } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-hardening-");
const DAY = 86_400_000;
const BARS = 12_000;
const DB = join(dir, "store.db");

/** 12,000 consecutive daily bars of AAPL.US from 1985 on. */
const series: Bar[] = Array.from({ length: BARS }, (_, i) => {
  const c = 100 + 10 * Math.sin(i / 50) + i / 1000;
  return { source: "stooq", symbol: "AAPL.US", interval: "1d", ts: Date.parse("1985-01-01T00:00:00Z") + i * DAY, open: c, high: c + 1, low: c - 1, close: c, volume: 1000 + i };
});

/** The issue's `set=`: 1,900 distinct indicators, about 15 kB. */
const hugeSet = [...Array.from({ length: 1000 }, (_, i) => `sma:${i + 1}`), ...Array.from({ length: 900 }, (_, i) => `ema:${i + 1}`)].join(",");

let store: Store;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  store = sqliteStore(`sqlite:${DB}`);
  await store.migrate();
  const runId = await store.startRun({ kind: "ingest", source: "stooq" });
  await store.commitBatch({ runId, source: "stooq", bars: series, quarantine: [], read: series.length });
  await store.finishRun(runId, { outcome: "succeeded", read: BARS, inserted: BARS, updated: 0, unchanged: 0, quarantined: 0 } as never);
  app = createApp({ store, metrics: ticksyncMetrics() });
});
afterAll(async () => {
  await store.close();
});

const json = async (r: Response) => (await r.json()) as any;
const messages = (body: any): string => (body.issues ?? []).map((i: any) => `${i.field}: ${i.message}`).join("; ");

/** VmRSS of a process, in kB. */
const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);

function serveConfig(name: string, server = ""): string {
  return writeFile(join(dir, `${name}.toml`), `[store]\nurl = "sqlite:${DB}"\n[server]\n${server}\n[stream]\npollMs = 200\n`);
}

test("the issue's request (1,900 indicators on a 12,000-bar series) is a quick 400, and the server's RSS stays flat", async () => {
  expect(hugeSet.length).toBeGreaterThan(14_000);
  const srv = await startServe(["--config", serveConfig("rss")], { env: { TICKSYNC_LOG__LEVEL: "warn" } });
  try {
    // Warm the paths a normal request takes, then measure.
    const ok = await fetch(`${srv.url}/api/indicators?symbol=AAPL.US&set=sma:20,rsi:14&limit=1000`);
    expect(ok.status).toBe(200);
    expect(((await json(ok)).data as unknown[]).length).toBe(1000);
    const before = rssKb(srv.proc.pid);
    let worst = 0;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const r = await fetch(`${srv.url}/api/indicators?symbol=AAPL.US&limit=10000&set=${hugeSet}`, { signal: AbortSignal.timeout(30_000) });
      const text = await r.text();
      worst = Math.max(worst, performance.now() - t0);
      expect(r.status).toBe(400);
      expect(text.length).toBeLessThan(2000);
      expect(messages(JSON.parse(text))).toContain(`set: at most ${MAX_INDICATORS} indicators (got 1900)`);
    }
    const grownMb = (rssKb(srv.proc.pid) - before) / 1024;
    console.log(`1,900-indicator request: slowest ${worst.toFixed(0)} ms; RSS ${(before / 1024).toFixed(0)} MB, grew ${grownMb.toFixed(1)} MB over 5 requests`);
    expect(worst).toBeLessThan(2000);
    expect(grownMb).toBeLessThan(32);
  } finally {
    srv.proc.kill();
    await srv.proc.exited;
  }
}, 120_000);

describe("each limit answers 400 naming it", () => {
  test("set=: at most MAX_INDICATORS, counted before parsing", async () => {
    const set = Array.from({ length: MAX_INDICATORS + 1 }, (_, i) => `sma:${i + 1}`).join(",");
    const r = await app.request(`/api/indicators?symbol=AAPL.US&set=${set}`);
    expect(r.status).toBe(400);
    expect(messages(await json(r))).toBe(`set: at most ${MAX_INDICATORS} indicators (got ${MAX_INDICATORS + 1})`);
    const fine = await app.request(`/api/indicators?symbol=AAPL.US&limit=10&set=${set.slice(0, set.lastIndexOf(","))}`);
    expect(fine.status).toBe(200);
    expect(Object.keys((await json(fine)).data[0])).toHaveLength(MAX_INDICATORS + 2);
  });

  test("rows × indicators: an explicit limit over it is refused; the largest page allowed stays a few MB", async () => {
    const set = Array.from({ length: MAX_INDICATORS }, (_, i) => `ema:${i + 1}`).join(",");
    const r = await app.request(`/api/indicators?symbol=AAPL.US&limit=10000&set=${set}`);
    expect(r.status).toBe(400);
    expect(messages(await json(r))).toBe(`limit: limit × indicators: at most ${MAX_INDICATOR_CELLS} values per page (got 10000 × ${MAX_INDICATORS} = ${10000 * MAX_INDICATORS})`);
    const rows = Math.floor(MAX_INDICATOR_CELLS / MAX_INDICATORS);
    const big = await app.request(`/api/indicators?symbol=AAPL.US&limit=${rows}&set=${set}`);
    expect(big.status).toBe(200);
    const text = await big.text();
    expect(JSON.parse(text).data).toHaveLength(rows);
    console.log(`largest /api/indicators page: ${rows} rows × ${MAX_INDICATORS} = ${(text.length / 1e6).toFixed(1)} MB`);
    expect(text.length).toBeLessThan(12_000_000);
  });

  test("a configured set too large for the default page shrinks the page instead", async () => {
    const many = Array.from({ length: 300 }, (_, i) => `sma:${i + 1}`);
    const a = createApp({ store, metrics: ticksyncMetrics(), maxPageSize: 10_000, indicators: { default: many, universes: {} } });
    const r = await a.request("/api/indicators?symbol=AAPL.US");
    expect(r.status).toBe(200);
    const body = await json(r);
    expect(body.data).toHaveLength(Math.floor(MAX_INDICATOR_CELLS / 300));
    expect(body.next).not.toBeNull();
  });

  test("query string: bytes, parameters, repeats", async () => {
    const long = await app.request(`/api/bars?symbol=AAPL.US&source=${"x".repeat(MAX_QUERY_BYTES)}`);
    expect(long.status).toBe(400);
    expect(messages(await json(long))).toMatch(new RegExp(`^query: the query string is at most ${MAX_QUERY_BYTES} bytes \\(got \\d+\\)$`));
    const params = Array.from({ length: MAX_QUERY_PARAMS + 1 }, (_, i) => `p${i}=1`).join("&");
    const wide = await app.request(`/api/runs?${params}`);
    expect(wide.status).toBe(400);
    expect(messages(await json(wide))).toBe(`query: at most ${MAX_QUERY_PARAMS} query parameters (got ${MAX_QUERY_PARAMS + 1})`);
    const twice = await app.request("/api/bars?symbol=AAPL.US&limit=1&limit=100000");
    expect(twice.status).toBe(400);
    expect(messages(await json(twice))).toBe("limit: given 2 times: give it once");
  });

  test("a 400 lists at most MAX_ISSUES issues and never echoes a long input whole", async () => {
    const bad = Array.from({ length: 30 }, (_, i) => `bogus${i}`).join(",");
    const r = await app.request(`/api/indicators?symbol=AAPL.US&set=${bad}`);
    expect(r.status).toBe(400);
    const body = await json(r);
    expect(body.issues).toHaveLength(MAX_ISSUES);
    expect(body.moreIssues).toBe(30 - MAX_ISSUES);
    const echo = await app.request(`/api/indicators?symbol=AAPL.US&set=${"q".repeat(10_000)}`);
    expect(echo.status).toBe(400);
    expect((await echo.text()).length).toBeLessThan(1000);
  });

  test("page sizes: limit over a route's maximum", async () => {
    for (const [path, max] of [["/api/bars?symbol=AAPL.US&", 10_000], ["/api/runs?", 1000], ["/api/quarantine?", 1000], ["/api/audit?", 1000], ["/api/gaps?", 10_000]] as const) {
      const r = await app.request(`${path}limit=${max + 1}`);
      expect(r.status).toBe(400);
      expect(messages(await json(r))).toBe(`limit: limit must be at most ${max}`);
    }
  });

  test("/api/audit filtered by kind reads at most MAX_AUDIT_SCAN runs per page, then continues with next", async () => {
    const s = sqliteStore(`sqlite:${join(dir, "audit.db")}`);
    await s.migrate();
    const n = MAX_AUDIT_SCAN + 700;
    const backup = await s.startRun({ kind: "backup", source: "store" });
    for (let i = 0; i < n; i++) await s.startRun({ kind: "ingest", source: "stooq" });
    const a = createApp({ store: s, metrics: ticksyncMetrics() });
    const first = await json(await a.request("/api/audit?kind=backup"));
    expect(first.data).toEqual([]);
    expect(first.next).not.toBeNull();
    const second = await json(await a.request(`/api/audit?kind=backup&before=${first.next}`));
    expect(second.data.map((e: any) => e.id)).toEqual([backup]);
    expect(second.next).toBeNull();
    await s.close();
  }, 120_000);

  test("symbols= of the stream: at most MAX_LIST_ITEMS", async () => {
    const srv = await startServe(["--config", serveConfig("list")], { env: { TICKSYNC_LOG__LEVEL: "warn" } });
    try {
      const list = Array.from({ length: MAX_LIST_ITEMS + 1 }, (_, i) => `S${i}.US`).join(",");
      const r = await fetch(`${srv.url}/api/stream?symbols=${list}`);
      expect(r.status).toBe(400);
      expect(messages(await json(r))).toBe(`symbols: at most ${MAX_LIST_ITEMS} items (got ${MAX_LIST_ITEMS + 1})`);
    } finally {
      srv.proc.kill();
      await srv.proc.exited;
    }
  });
});

test("/assets/<a name of Object.prototype> is a 404, also with authReads", async () => {
  const guarded = createApp({ store, metrics: ticksyncMetrics(), security: { tokens: ["a-token-of-16-chars-or-more"], authReads: true, corsOrigins: [], maxBodyBytes: 1 << 20 } });
  for (const a of [app, guarded])
    for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf", "__defineGetter__", "nope.js"]) {
      const r = await a.request(`/assets/${name}`);
      expect(r.status, name).toBe(404);
      expect(await json(r)).toMatchObject({ error: "not found" });
    }
  expect((await guarded.request("/assets/dashboard.js")).status).toBe(200);
});

/** The status line of a raw HTTP/1.1 request (a WebSocket upgrade needs a socket, not fetch). */
function rawStatus(host: string, port: number, lines: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port }, () => sock.write([...lines, "", ""].join("\r\n")));
    let buf = "";
    sock.setTimeout(15_000, () => reject(new Error("no answer")));
    sock.on("data", (d) => {
      buf += d.toString("latin1");
      const m = /^HTTP\/1\.1 (\d{3})/.exec(buf);
      if (m) {
        sock.destroy();
        resolve(Number(m[1]));
      }
    });
    sock.on("error", reject);
  });
}

/** A non-loopback IPv4 address of this machine, if it has one. */
const lanIp = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === "IPv4" && !a.internal)?.address;
if (!lanIp) console.warn("WARNING: this machine has no non-loopback IPv4 address: the read-rule test from another address is skipped");

test.skipIf(!lanIp)("authReads without tokens: every read, SSE and the WebSocket upgrade alike, from this machine only (X-Forwarded-For not trusted)", async () => {
  const srv = await startServe(["--config", serveConfig("reads", `host = "0.0.0.0"\nauthReads = true`)], { env: { TICKSYNC_LOG__LEVEL: "warn" } });
  try {
    const port = Number(new URL(srv.url).port);
    const status = async (host: string, path: string, headers: Record<string, string> = {}) => {
      const r = await fetch(`http://${host}:${port}${path}`, { headers, signal: AbortSignal.timeout(15_000) });
      await r.body?.cancel();
      return r.status;
    };
    const upgrade = (host: string, extra: string[] = []) =>
      rawStatus(host, port, [`GET /api/ws?symbols=AAPL.US HTTP/1.1`, `Host: ${host}:${port}`, "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13", ...extra]);
    for (const path of ["/api/runs", "/api/bars?symbol=AAPL.US&limit=1", "/metrics", "/api/stream?symbols=AAPL.US"]) {
      expect(await status("127.0.0.1", path), `${path} from loopback`).toBe(200);
      expect(await status(lanIp!, path), `${path} from ${lanIp}`).toBe(403);
      expect(await status(lanIp!, path, { "X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1" }), `${path} from ${lanIp} claiming loopback`).toBe(403);
    }
    expect(await upgrade("127.0.0.1")).toBe(101);
    expect(await upgrade(lanIp!)).toBe(403);
    expect(await upgrade(lanIp!, ["X-Forwarded-For: 127.0.0.1"])).toBe(403);
    // The probes stay open to everyone.
    expect(await status(lanIp!, "/healthz")).toBe(200);
  } finally {
    srv.proc.kill();
    await srv.proc.exited;
  }
}, 120_000);
