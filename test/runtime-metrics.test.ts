// The runtime metrics: prom-client's process metrics (CPU since start, memory, event loop, fds;
// the ones dead under Bun removed), the HTTP histogram labelled by route pattern (never the raw
// path), the stream outbox totals, the PostgreSQL pool waits against the real server, and
// GET /api/resources for the dashboard.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import postgres from "postgres";
import { createApp } from "../src/http/app.ts";
import { apiClient, ok } from "../src/http/client/index.ts";
import { metricValue, processMetrics, ticksyncMetrics } from "../src/lib/metrics.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { postgresStore } from "../src/stores/postgres/index.ts";
import { timePoolWaits } from "../src/stores/postgres/context.ts";
import { Outbox, outboxTotals } from "../src/stream/outbox.ts";
import type { Store } from "../src/stores/types.ts";
import { tempDir } from "./helpers.ts";
import { PG_URL, STORES } from "./stores.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-runtime-metrics-");
const stores: Store[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
});

/** The value of an unlabelled sample in Prometheus text. */
const sample = (text: string, name: string) => {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : null;
};

test("process metrics: CPU since the process started, memory, event loop, fds; none of the dead ones", async () => {
  const metrics = ticksyncMetrics();
  // Burn some CPU so the total is clearly above what a fresh counter would show.
  const until = performance.now() + 150;
  while (performance.now() < until);
  const text = await metrics.registry.render();
  const cpu = process.cpuUsage();
  const total = sample(text, "process_cpu_seconds_total")!;
  expect(total).toBeGreaterThan(0.1);
  expect(total).toBeLessThanOrEqual((cpu.user + cpu.system) / 1e6);
  expect(total).toBeGreaterThan((cpu.user + cpu.system) / 1e6 - 0.5);
  expect(sample(text, "process_resident_memory_bytes")).toBeGreaterThan(1 << 20);
  expect(sample(text, "nodejs_heap_size_used_bytes")).toBeGreaterThan(0);
  expect(sample(text, "process_open_fds")).toBeGreaterThan(2);
  expect(sample(text, "process_max_fds")).toBeGreaterThan(0);
  expect(sample(text, "nodejs_eventloop_lag_p99_seconds")).toBeGreaterThanOrEqual(0);
  expect(sample(text, "ticksync_pg_pool_waiting")).not.toBeNull();
  for (const dead of ["nodejs_heap_space_size_used_bytes", "nodejs_active_handles_total", "nodejs_active_requests", "nodejs_gc_duration_seconds"]) expect(text).not.toContain(dead);
  // Two registries render the process's metrics once each, and both parse as one exposition.
  expect(text.match(/^# TYPE process_cpu_seconds_total /gm)).toHaveLength(1);
});

test("HTTP durations are labelled by the route pattern and status, never by the raw path", async () => {
  const store = sqliteStore(`sqlite:${join(dir, "http.db")}`);
  await store.migrate();
  stores.push(store);
  const metrics = ticksyncMetrics();
  const app = createApp({ store, metrics });
  expect((await app.request("/api/symbols")).status).toBe(200);
  expect((await app.request("/assets/dashboard.js")).status).toBe(200);
  expect((await app.request("/assets/secret-name-1.js")).status).toBe(404);
  expect((await app.request("/no/such/path-xyz")).status).toBe(404);
  expect((await app.request("/api/symbols", { method: "HEAD" })).status).toBe(200);
  const text = await metrics.registry.render();
  const count = (labels: string) => sample(text, `ticksync_http_request_duration_seconds_count\\{${labels.replace(/[{}]/g, "\\$&")}\\}`);
  expect(count('method="GET",route="/api/symbols",status="200"')).toBe(1);
  expect(count('method="GET",route="/assets/:name",status="200"')).toBe(1);
  expect(count('method="GET",route="/assets/:name",status="404"')).toBe(1);
  expect(count('method="GET",route="unmatched",status="404"')).toBe(1);
  expect(count('method="HEAD",route="/api/symbols",status="200"')).toBe(1);
  expect(text).not.toContain("secret-name-1");
  expect(text).not.toContain("path-xyz");
});

test("GET /api/resources: CPU, memory, event-loop lag and open file descriptors", async () => {
  const store = sqliteStore(`sqlite:${join(dir, "res.db")}`);
  await store.migrate();
  stores.push(store);
  const r = await ok(apiClient({ app: createApp({ store, metrics: ticksyncMetrics() }) }).GET("/api/resources"));
  expect(r.cpu.userSeconds + r.cpu.systemSeconds).toBeGreaterThan(0);
  expect(r.cpu.percent).toBeGreaterThanOrEqual(0);
  expect(r.memory.rssBytes).toBeGreaterThan(1 << 20);
  expect(r.memory.heapUsedBytes).toBeGreaterThan(0);
  expect(typeof r.eventLoopLagMs.p99).toBe("number");
  expect(r.fds.open!).toBeGreaterThan(2);
  expect(r.fds.max!).toBeGreaterThanOrEqual(r.fds.open!);
});

test("outbox totals: clients with messages waiting, their messages and bytes, the fullest one", () => {
  const base = outboxTotals();
  const counters = { conflated: 0 };
  const a = new Outbox(counters);
  const b = new Outbox(counters);
  const msg = (json: string, series?: string) => ({ type: "bar" as const, json, series });
  a.put(a.seq++, msg("x".repeat(100)));
  a.put(a.seq++, msg("y".repeat(50)));
  b.put(b.seq++, msg("z".repeat(30)));
  expect(outboxTotals()).toEqual({ clients: base.clients + 2, messages: base.messages + 3, bytes: base.bytes + 180, maxBytes: Math.max(base.maxBytes, 150) });
  // A session drains its outbox by taking items out itself (src/stream/session.ts): an emptied outbox stops counting.
  for (const [k, m] of b.items) {
    b.items.delete(k);
    b.bytes -= m.json.length;
  }
  expect(outboxTotals()).toMatchObject({ clients: base.clients + 1, messages: base.messages + 2, bytes: base.bytes + 150 });
  a.clear();
  expect(outboxTotals()).toEqual(base);
  // Refilled after being emptied: counted again.
  b.put(b.seq++, msg("w".repeat(10)));
  expect(outboxTotals()).toMatchObject({ clients: base.clients + 1, bytes: base.bytes + 10 });
  b.clear();
});

const pg = STORES.find((s) => s.kind === "postgres")!;

test.skipIf(pg.unavailable !== null)("PostgreSQL pool waits: a transaction queued behind a busy connection is timed and counted", async () => {
  const { pgPoolWait, pgPoolWaiting } = processMetrics();
  const waitsBefore = (await pgPoolWait.get()).values.find((v) => v.metricName === "ticksync_pg_pool_wait_seconds_count")?.value ?? 0;
  const sumOf = async () => (await pgPoolWait.get()).values.find((v) => v.metricName === "ticksync_pg_pool_wait_seconds_sum")?.value ?? 0;
  const sumBefore = await sumOf();
  const sql = timePoolWaits(postgres(PG_URL!, { max: 1, onnotice: () => {} }));
  try {
    let started!: () => void;
    const holding = new Promise<void>((r) => (started = r));
    const first = sql.begin(async (tx) => {
      started();
      await tx`select pg_sleep(0.3)`;
    });
    await holding;
    const second = sql.begin((tx) => tx`select 1`);
    await new Promise((r) => setTimeout(r, 50));
    // The second waits for the one connection the first holds.
    expect(await metricValue(pgPoolWaiting)).toBe(1);
    await Promise.all([first, second]);
    expect(await metricValue(pgPoolWaiting)).toBe(0);
    const waits = (await pgPoolWait.get()).values.find((v) => v.metricName === "ticksync_pg_pool_wait_seconds_count")!.value;
    expect(waits - waitsBefore).toBe(2);
    // The second waited for most of the first's 0.3 s sleep.
    expect((await sumOf()) - sumBefore).toBeGreaterThan(0.15);
    // A transaction that fails to start (its connection refused) leaves no one counted as waiting.
    const dead = timePoolWaits(postgres("postgres://nobody@127.0.0.1:9/none", { max: 1, connect_timeout: 2, onnotice: () => {} }));
    await expect(dead.begin((tx) => tx`select 1`)).rejects.toThrow();
    expect(await metricValue(pgPoolWaiting)).toBe(0);
    await dead.end();
  } finally {
    await sql.end();
  }
  // The store's own pool is timed: migrating runs its transactions through it.
  const store = postgresStore(pg.freshUrl(dir));
  stores.push(store);
  const beforeMigrate = (await pgPoolWait.get()).values.find((v) => v.metricName === "ticksync_pg_pool_wait_seconds_count")!.value;
  await store.migrate();
  expect((await pgPoolWait.get()).values.find((v) => v.metricName === "ticksync_pg_pool_wait_seconds_count")!.value).toBeGreaterThan(beforeMigrate);
});
