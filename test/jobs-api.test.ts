// /api/jobs and POST /api/jobs/:name/run for jobs gated by market hours: in process with a pinned
// clock (exact next runs), and through `ticksync serve` from a config file (the wiring); both
// through the typed API client (src/http/client).
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { createApp } from "../src/http/app.ts";
import { apiClient, ok } from "../src/http/client/index.ts";
import { ticksyncMetrics } from "../src/lib/metrics.ts";
import { createScheduler, type Scheduler } from "../src/scheduler/scheduler.ts";
import { isTradingDay, zonedTimeToUtc } from "../src/domain/calendar.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { startServe, stooqCsv, tempDir, writeFile } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

setLogLevel("error");
const dir = tempDir("ticksync-jobs-api-");
const cleanup: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
});

describe("in process, clock pinned to Saturday 2025-03-29 12:00 UTC", () => {
  async function app() {
    const store = sqliteStore(`sqlite:${join(dir, "inproc.db")}`);
    await store.migrate();
    const scheduler: Scheduler = createScheduler({ now: () => Date.parse("2025-03-29T12:00:00Z") });
    let runs = 0;
    const run = async () => (runs++, { outcome: "succeeded" });
    scheduler.add({ name: "wse-live", schedule: "*/30 * * * * *", gate: { market: "WSE", phases: ["open"] }, run });
    scheduler.add({ name: "nyse-extended", schedule: "0 */5 * * * *", timeZone: "America/New_York", gate: { market: "NYSE", phases: ["pre", "open", "post"] }, run });
    scheduler.add({ name: "nightly", schedule: "0 0 2 * * *", timeZone: "UTC", run });
    cleanup.push(() => store.close(), () => scheduler.stop());
    return { api: apiClient({ app: createApp({ store, metrics: ticksyncMetrics(), scheduler }) }), scheduler, runs: () => runs };
  }
  // One scheduler for the block: croner job names are process-wide.
  const shared = app();

  test("gated jobs show the first run at which their market is in phase, the market and the phases", async () => {
    const { api } = await shared;
    const body = await ok(api.GET("/api/jobs"));
    const byName = Object.fromEntries(body.data.map((j) => [j.name, j]));
    expect(byName["wse-live"]).toMatchObject({
      schedule: "*/30 * * * * *",
      timeZone: null,
      // Monday 09:00 in Warsaw, already summer time (UTC+2) after Sunday's change.
      nextRun: "2025-03-31T07:00:00.000Z",
      market: "WSE",
      phases: ["open"],
      marketPhase: "closed",
      skippedClosed: 0,
      running: false,
    });
    expect(byName["nyse-extended"]).toMatchObject({
      // Monday 04:00 in New York (EDT since March 9).
      nextRun: "2025-03-31T08:00:00.000Z",
      market: "NYSE",
      phases: ["pre", "open", "post"],
      marketPhase: "closed",
    });
    expect(byName["nightly"]).toMatchObject({ nextRun: "2025-03-30T02:00:00.000Z", market: null, phases: null, marketPhase: null, skippedClosed: 0 });
  });

  test("a manual run starts while the market is closed, and the response says hours were ignored", async () => {
    const { api, scheduler, runs } = await shared;
    const r = await api.POST("/api/jobs/{name}/run", { params: { path: { name: "wse-live" } } });
    expect(r.response.status).toBe(202);
    expect(r.data).toEqual({ status: "started", marketPhase: "closed", note: "manual runs ignore market hours (WSE is closed)" });
    await scheduler.idle("wse-live");
    expect(runs()).toBe(1);
    // An ungated job's response is unchanged.
    const plain = await ok(api.POST("/api/jobs/{name}/run", { params: { path: { name: "nightly" } } }));
    expect(plain).toEqual({ status: "started" });
  });
});

describe("ticksync serve with market and phases in the config file", () => {
  test("/api/jobs shows the gate and the next trading-day tick", async () => {
    writeFile(join(dir, "data", "pkn_d.csv"), stooqCsv([["2024-01-02", 1, 2, 1, 2, 10]]));
    writeFile(
      join(dir, "serve.toml"),
      `[store]
url = "sqlite:serve.db"
[sources.pl]
type = "csv"
path = "data"
[[jobs]]
name = "wse-noon"
source = "pl"
schedule = "0 0 12 * * *"
timeZone = "Europe/Warsaw"
market = "WSE"
[[jobs]]
name = "wse-auctions"
source = "pl"
schedule = "0 0 12 * * *"
timeZone = "Europe/Warsaw"
market = "WSE"
phases = ["pre", "post"]
`,
    );
    const server = await startServe(["--config", join(dir, "serve.toml")], { env: { TICKSYNC_LOG__LEVEL: "error" } });
    cleanup.push(async () => {
      server.proc.kill("SIGTERM");
      await server.proc.exited;
    });
    const jobs = (await ok(apiClient({ baseUrl: server.url }).GET("/api/jobs"))).data;
    // Expected independently of the scheduler: the first trading day whose 12:00 in Warsaw is ahead.
    let expected = "";
    for (let d = new Date(Date.now() - 86_400_000); !expected; d = new Date(d.getTime() + 86_400_000)) {
      const date = new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/Warsaw" }).format(d);
      const noon = zonedTimeToUtc(date, "12:00", "Europe/Warsaw");
      if (noon > Date.now() && isTradingDay("WSE", date)) expected = new Date(noon).toISOString();
    }
    expect(jobs[0]).toMatchObject({ name: "wse-noon", market: "WSE", phases: ["open"], nextRun: expected, skippedClosed: 0 });
    expect(["closed", "pre", "open", "post"]).toContain(jobs[0]!.marketPhase!);
    // Noon is never in the pre-opening or trading at last: no next run at all.
    expect(jobs[1]).toMatchObject({ name: "wse-auctions", market: "WSE", phases: ["pre", "post"], nextRun: null });
  }, 30_000);
});
