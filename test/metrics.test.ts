// /metrics of a real `ticksync serve` (after an ingest, with an alert rule and the stream up; the
// process and HTTP metrics included) passes Prometheus's own linter: `promtool check metrics` (scripts/services/promtool.sh finds or
// fetches it). With CI=true a missing promtool fails; without CI the test skips, saying why.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { startServe, stooqCsv, tempDir, waitFor, writeFile } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

let promtool: string | null = null;
let why = "";
const found = Bun.spawnSync(["bash", join(import.meta.dir, "..", "scripts", "services", "promtool.sh")], { stdout: "pipe", stderr: "pipe" });
if (found.exitCode === 0) promtool = found.stdout.toString().trim();
else {
  why = found.stderr.toString().trim().split("\n").pop() ?? "promtool unavailable";
  if (process.env.CI === "true") throw new Error(`CI=true and no promtool: ${why}`);
}

const dir = tempDir("ticksync-metrics-");

test.skipIf(promtool === null)(`/metrics passes promtool check metrics${why ? ` (skipped: ${why})` : ""}`, async () => {
  writeFile(join(dir, "csv", "pkn_d.csv"), stooqCsv([["2024-01-02", 60, 61, 59, 60.5, 1000], ["2024-01-03", 61, 62, 60, 61.5, 1100], ["2024-01-04", 61, 60, 62, 61.5, 1100]]));
  const config = writeFile(
    join(dir, "ticksync.toml"),
    `[store]\nurl = "sqlite:m.db"\n[sources.files]\ntype = "csv"\npath = "csv"\nlayout = "stooq"\nmarket = "WSE"\n[[jobs]]\nname = "load"\nsource = "files"\nrunOnStart = true\n` +
      `[alerts]\nintervalS = 1\n[[alerts.rules]]\nkind = "quarantine"\nname = "q-rate"\nmaxRate = 0.01\n`,
  );
  const srv = await startServe(["--config", config]);
  try {
    const ws = new WebSocket(`${srv.url.replace("http", "ws")}/api/ws?symbols=*`);
    await new Promise((ok) => (ws.onopen = ok));
    await waitFor(async () => (await (await fetch(`${srv.url}/metrics`)).text()).includes("ticksync_alert_firing"), 15_000, "the run and an alert evaluation");
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    expect(text).toContain("ticksync_rows_quarantined_total");
    // The runtime metrics are part of what promtool checks: process, route histogram, outboxes, PG pool.
    for (const name of ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "nodejs_eventloop_lag_p99_seconds", "nodejs_heap_size_used_bytes", "ticksync_stream_outbox_bytes", "ticksync_pg_pool_wait_seconds_count"])
      expect(text).toMatch(new RegExp(`^${name} `, "m"));
    expect(text).toMatch(/^ticksync_http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/metrics",status="200"\} /m);
    const p = Bun.spawn([promtool!, "check", "metrics"], { stdin: new Blob([text]), stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    expect(`${out}${err}`.trim()).toBe("");
    expect(code).toBe(0);
    ws.close();
  } finally {
    srv.proc.kill();
    await srv.proc.exited;
  }
});
