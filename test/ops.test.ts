// Operating `ticksync serve`: an alert rule fires to a local webhook and is acknowledged over the
// API; the audit trail says who started each run; a scheduled backup job writes its manifest.
// The API is called through the typed client (src/http/client).
import { afterAll, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { apiClient, ok } from "../src/http/client/index.ts";
import { startServe, stooqCsv, tempDir, waitFor, writeFile } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-ops-");
const posts: any[] = [];
const hook = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    posts.push(await req.json());
    return new Response("ok");
  },
});
afterAll(() => hook.stop(true));

test("alerts fire to the webhook and are acknowledged; runs are audited; the backup job writes a manifest", async () => {
  writeFile(join(dir, "csv", "pkn_d.csv"), stooqCsv([["2024-01-02", 60, 61, 59, 60.5, 1000]]));
  const config = writeFile(
    join(dir, "ticksync.toml"),
    [
      `[store]\nurl = "sqlite:store.db"`,
      `[sources.files]\ntype = "csv"\npath = "csv"\nlayout = "stooq"\nmarket = "WSE"`,
      `[sources.missing]\ntype = "csv"\npath = "nowhere/*.csv"\nlayout = "stooq"\nmarket = "WSE"`,
      `[[jobs]]\nname = "load"\nsource = "files"\nrunOnStart = true`,
      `[[jobs]]\nname = "broken"\nsource = "missing"`,
      `[[jobs]]\nname = "nightly-backup"\nkind = "backup"\ndir = "backups"\nkeep = 3`,
      `[alerts]\nintervalS = 1\nwebhook = { url = "http://127.0.0.1:${hook.port}/hook" }`,
      `[[alerts.rules]]\nkind = "errors"\nname = "failed-runs"\nwindowS = 600\nmaxFailed = 0\nseverity = "critical"`,
    ].join("\n\n") + "\n",
  );
  const srv = await startServe(["--config", config]);
  try {
    const api = apiClient({ baseUrl: srv.url });
    const alerts = async () => (await ok(api.GET("/api/alerts"))).data;
    const audit = async (query: { kind?: string; limit?: string }) => ok(api.GET("/api/audit", { params: { query } }));
    await waitFor(async () => (await ok(api.GET("/api/runs"))).data.some((r) => r.job === "load" && r.outcome === "succeeded"), 15_000, "the start-up run");
    // Nothing has failed: the alert is quiet.
    await waitFor(async () => (await alerts())[0]?.lastEvaluated, 10_000, "an evaluation");
    expect((await alerts())[0]).toMatchObject({ name: "failed-runs", status: "ok" });

    // A run that fails (its files are not there), started over the API with a token.
    const operator = apiClient({ baseUrl: srv.url, token: "op-token-0123456789abcdef" });
    const trig = await operator.POST("/api/jobs/{name}/run", { params: { path: { name: "broken" } } });
    expect(trig.response.status).toBe(202);
    await waitFor(() => posts.some((p) => p.text.includes("FIRING [ticksync] failed-runs")), 15_000, "the alert at the webhook");
    const firing = (await alerts())[0]!;
    expect(firing).toMatchObject({ status: "firing", acknowledged: false, severity: "critical" });
    const ack = await ok(api.POST("/api/alerts/{name}/ack", { params: { path: { name: "failed-runs" } }, body: { by: "alice" } }));
    expect(ack.data).toMatchObject({ acknowledged: true, acknowledgedBy: "alice" });
    expect((await api.POST("/api/alerts/{name}/ack", { params: { path: { name: "nope" } } })).response.status).toBe(404);
    // Announced once while it keeps firing: three more evaluations (each 1 s; the first two have
    // finished, notifications included, once the third has begun).
    const evaluated = new Set<number | null>([firing.lastEvaluated]);
    await waitFor(async () => evaluated.add((await alerts())[0]!.lastEvaluated).size > 3, 15_000, "three more evaluations");
    expect((await alerts())[0]).toMatchObject({ status: "firing" });
    expect(posts.filter((p) => p.text.includes("failed-runs")).length).toBe(1);

    // The audit trail: the start-up run by the schedule, the failed one by the API (the token as
    // a fingerprint, never itself).
    const trail = (await audit({ limit: "20" })).data;
    const broken = trail.find((e) => e.job === "broken");
    expect(broken).toMatchObject({ kind: "ingest", outcome: "failed", startedBy: { by: "api", route: "POST /api/jobs/broken/run", tokenId: expect.stringMatching(/^sha256:[0-9a-f]{12}$/) } });
    expect(JSON.stringify(trail)).not.toContain("op-token-0123456789abcdef");
    expect(trail.find((e) => e.job === "load")).toMatchObject({ startedBy: { by: "schedule", job: "load" } });
    expect((await audit({ kind: "ingest", limit: "1" })).next).not.toBeNull();

    // The backup job, triggered: a manifest and its file in the config's backups dir.
    expect((await api.POST("/api/jobs/{name}/run", { params: { path: { name: "nightly-backup" } } })).response.status).toBe(202);
    await waitFor(() => existsSync(join(dir, "backups")) && readdirSync(join(dir, "backups")).some((f) => f.endsWith(".json")), 15_000, "the backup");
    expect(readdirSync(join(dir, "backups")).some((f) => f.endsWith(".db.gz"))).toBe(true);
    await waitFor(async () => (await audit({ kind: "backup" })).data[0]?.outcome === "succeeded", 10_000, "the backup in the audit trail");
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    expect(metrics).toContain('ticksync_alert_firing{alert="failed-runs",severity="critical"} 1');
    expect(metrics).toMatch(/ticksync_scheduler_leader\{replica="[^"]+"\} 1/);
  } finally {
    srv.proc.kill();
    await srv.proc.exited;
  }
}, 60_000);
