// The compiled executable: built with `bun build --compile`, copied alone into an empty temp
// dir (no node_modules anywhere above it), and run there as a user would.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFileSync, existsSync } from "node:fs";
import { dirname, join, parse } from "node:path";
import { ROOT, cli, startServe, stooqCsv, tempDir, waitFor, writeFile } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-bin-");
const exe = join(dir, "ticksync");
let server: Awaited<ReturnType<typeof startServe>> | undefined;

beforeAll(async () => {
  const build = Bun.spawnSync([process.execPath, join(ROOT, "scripts", "build.ts"), "--outfile", join(dir, "build", "ticksync")], { stdout: "pipe", stderr: "pipe" });
  expect(build.exitCode).toBe(0);
  copyFileSync(join(dir, "build", "ticksync"), exe);
  Bun.spawnSync(["chmod", "+x", exe]);
  // Nothing to resolve packages from: no node_modules in the dir or any parent.
  for (let d = dir; d !== parse(d).root; d = dirname(d)) expect(existsSync(join(d, "node_modules"))).toBe(false);
}, 120_000);

afterAll(async () => {
  server?.proc.kill("SIGTERM");
  await server?.proc.exited;
});

const env = { PATH: "/usr/bin:/bin", HOME: dir, TICKSYNC_LOG__LEVEL: "warn" };

test("--help and version run from the lone executable", async () => {
  const r = await cli(["--help"], { exe: [exe], cwd: dir, env });
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("Usage: ticksync <command>");
  const v = await cli(["version"], { exe: [exe], cwd: dir, env });
  // The stamp scripts/build.ts defines in: version, commit, build date, target (test/release.test.ts checks it closely).
  expect(v.stdout).toMatch(/^ticksync \d+\.\d+\.\d+ \(commit ([0-9a-f]{12}(-dirty)?|unknown), built \S+Z, [a-z]+-[a-z0-9]+, bun /);
});

test("ingest a CSV into a new SQLite store, then serve it", async () => {
  writeFile(join(dir, "in", "cdr_d.csv"), stooqCsv([["2024-05-06", 120, 125, 119, 124, 5000], ["2024-05-07", 124, 126, 121, 122, 6000]]));
  const r = await cli(["ingest", "--file", "in", "--market", "WSE", "--store", "sqlite:store.db"], { exe: [exe], cwd: dir, env });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("inserted 2");
  expect(existsSync(join(dir, "store.db"))).toBe(true);

  server = await startServe(["--store", "sqlite:store.db"], { exe: [exe], cwd: dir, env });
  const bars = await waitFor(() => fetch(`${server!.url}/api/bars?symbol=CDR.WA`).then((r) => r.json() as Promise<any>), 10_000, "the API");
  expect(bars.data.map((b: any) => b.close)).toEqual([124, 122]);
  expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  // The dashboard and its assets come from inside the executable (nothing else is in this dir).
  const page = await fetch(`${server.url}/`);
  expect(page.headers.get("content-type")).toContain("text/html");
  expect(await page.text()).toContain('id="candles"');
  for (const asset of ["dashboard.js", "dashboard.css", "lightweight-charts.js"]) {
    const res = await fetch(`${server.url}/assets/${asset}`);
    expect(res.status).toBe(200);
    expect((await res.text()).length).toBeGreaterThan(1000);
  }
  expect(await (await fetch(`${server.url}/assets/lightweight-charts.js`)).text()).toContain("Lightweight Charts");
  // The API reference's page and Scalar's bundle (src/http/api-docs.ts), embedded too.
  const src = /<script[^>]*\bsrc="(\/docs\/scalar\.js[^"]+)"/.exec(await (await fetch(`${server.url}/docs`)).text())?.[1];
  expect(src).toBeDefined();
  expect((await (await fetch(`${server.url}${src}`)).text()).length).toBeGreaterThan(1_000_000);
  expect(((await (await fetch(`${server.url}/asyncapi.json`)).json()) as any).asyncapi).toBe("3.0.0");
}, 30_000);

test("/metrics from the executable: prom-client's process metrics and the HTTP route histogram", async () => {
  expect(server).toBeDefined();
  await fetch(`${server!.url}/api/bars?symbol=CDR.WA`);
  const text = await (await fetch(`${server!.url}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
  for (const name of ["process_cpu_seconds_total", "process_resident_memory_bytes", "nodejs_heap_size_used_bytes", "process_open_fds"]) expect(value(name)).toBeGreaterThan(0);
  expect(value("nodejs_eventloop_lag_p99_seconds")).toBeGreaterThanOrEqual(0);
  expect(text).toMatch(/^ticksync_http_request_duration_seconds_count\{method="GET",route="\/api\/bars",status="200"\} [1-9]/m);
  const r = (await (await fetch(`${server!.url}/api/resources`)).json()) as any;
  expect(r.fds.open).toBeGreaterThan(0);
  expect(r.memory.rssBytes).toBeGreaterThan(0);
});

test("config check with a bad config exits 3 naming the field", async () => {
  writeFile(join(dir, "bad.toml"), `[ingest]\nbatchSize = -5\n`);
  const r = await cli(["config", "check", "--config", "bad.toml"], { exe: [exe], cwd: dir, env });
  expect(r.code).toBe(3);
  expect(r.stderr).toContain("ingest.batchSize");
});
