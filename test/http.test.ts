// The HTTP endpoints over a real socket: `ticksync serve` as a child process on a free port,
// with a config whose job ingests a fixture on start. The JSON API is called through the typed
// client (src/http/client); raw fetch where the subject is raw HTTP (/metrics' text, refused queries).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { apiClient, ok, type ApiClient } from "../src/http/client/index.ts";
import { startServe, stooqCsv, tempDir, waitFor, writeFile } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";
import { SQLITE_SCHEMA_VERSION } from "../src/stores/sqlite/index.ts";

testTimeout();

const dir = tempDir("ticksync-http-");
let base = "";
let api: ApiClient;
let server: Awaited<ReturnType<typeof startServe>> | undefined;
afterAll(async () => {
  server?.proc.kill("SIGTERM");
  expect(await server?.proc.exited).toBe(0); // a clean shutdown on SIGTERM
});

function sessions(n: number): string[] {
  const out: string[] = [];
  const d = new Date(Date.UTC(2024, 0, 2));
  while (out.length < n) {
    const wd = d.getUTCDay();
    if (wd !== 0 && wd !== 6) out.push(d.toISOString().slice(0, 10));
    d.setUTCDate(d.getUTCDate() + 1);
  }
  return out;
}

beforeAll(async () => {
  const days = sessions(30);
  writeFile(join(dir, "data", "aapl_us_d.csv"), stooqCsv(days.map((d, i) => [d, 180 + i, 182 + i, 179 + i, 181 + i, 1e6 + i])));
  writeFile(
    join(dir, "data", "msft_us_d.csv"),
    stooqCsv([
      ["2024-01-02", 370, 375, 368, 372, 2e6],
      ["2024-01-03", 372, 371, 369, 370, 2e6], // high below open
    ]),
  );
  writeFile(
    join(dir, "ticksync.toml"),
    `[store]
url = "sqlite:store/ticksync.db"
[sources.us]
type = "csv"
path = "data"
[[jobs]]
name = "us-daily"
source = "us"
runOnStart = true
schedule = "0 30 22 * * 1-5"
timeZone = "America/New_York"
`,
  );
  server = await startServe(["--config", join(dir, "ticksync.toml")], { env: { TICKSYNC_LOG__LEVEL: "warn" } });
  base = server.url;
  api = apiClient({ baseUrl: base });
  await waitFor(async () => (await ok(api.GET("/api/runs"))).data[0]?.outcome === "succeeded", 20_000, "the start-up ingest");
});

describe("probes", () => {
  test("GET /healthz is alive", async () => {
    const { data, response } = await api.GET("/healthz");
    expect(response.status).toBe(200);
    expect(data).toMatchObject({ status: "ok" });
  });
  test("GET /readyz reports the store and its schema version", async () => {
    const { data, response } = await api.GET("/readyz");
    expect(response.status).toBe(200);
    expect(data).toEqual({ ready: true, store: { kind: "sqlite", schemaVersion: SQLITE_SCHEMA_VERSION, expectedVersion: SQLITE_SCHEMA_VERSION } });
  });
});

describe("/metrics", () => {
  test("Prometheus text with rows per source, run durations and last success per job", async () => {
    const r = await fetch(`${base}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    const text = await r.text();
    const sample = (name: string) => {
      const m = new RegExp(`^${name.replace(/[{}"=]/g, (c) => "\\" + c)} (\\S+)$`, "m").exec(text);
      return m ? Number(m[1]) : undefined;
    };
    expect(sample('ticksync_rows_read_total{source="us"}')).toBe(32);
    expect(sample('ticksync_rows_stored_total{source="us"}')).toBe(31);
    expect(sample('ticksync_rows_quarantined_total{source="us"}')).toBe(1);
    expect(sample('ticksync_quality_rule_violations_total{source="us",rule="high"}')).toBe(1);
    expect(sample('ticksync_run_duration_seconds_count{job="us-daily"}')).toBe(1);
    expect(sample('ticksync_runs_total{source="us",outcome="succeeded"}')).toBe(1);
    const last = sample('ticksync_job_last_success_timestamp_seconds{job="us-daily"}')!;
    expect(Math.abs(last - Date.now() / 1000)).toBeLessThan(120);
    expect(sample('ticksync_store_up{store="sqlite"}')).toBe(1);
    // Every sample line belongs to a declared metric family.
    const declared = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    for (const line of text.split("\n").filter((l) => l && !l.startsWith("#"))) {
      const name = line.split(/[{ ]/)[0]!.replace(/_(bucket|sum|count)$/, "");
      expect(declared.has(name) || declared.has(line.split(/[{ ]/)[0])).toBe(true);
    }
  });
});

describe("/api", () => {
  test("symbols with their series", async () => {
    const r = await ok(api.GET("/api/symbols"));
    expect(r.count).toBe(2);
    const aapl = r.data.find((s) => s.symbol === "AAPL.US");
    expect(aapl).toEqual({ symbol: "AAPL.US", market: "NYSE", series: [{ source: "us", interval: "1d", bars: 30, first: "2024-01-02T00:00:00.000Z", last: "2024-02-12T00:00:00.000Z" }],
      // No provider described it: the instrument fields are there, empty.
      name: null, exchange: null, currency: null, type: null, sector: null, industry: null, isin: null, instruments: [],
    });
    expect((await ok(api.GET("/api/symbols", { params: { query: { market: "WSE" } } }))).count).toBe(0);
  });

  test("bars: range, paging with a cursor, and symbol spellings", async () => {
    const range = { symbol: "AAPL.US", from: "2024-01-03", to: "2024-01-31", limit: "10" };
    const first = await ok(api.GET("/api/bars", { params: { query: range } }));
    expect(first.data.length).toBe(10);
    expect(first.data[0]).toEqual({ source: "us", symbol: "AAPL.US", interval: "1d", ts: "2024-01-03T00:00:00.000Z", open: 181, high: 183, low: 180, close: 182, volume: 1000001 });
    const all = [...first.data];
    let next = first.next;
    while (next) {
      const page = await ok(api.GET("/api/bars", { params: { query: { ...range, cursor: next } } }));
      all.push(...page.data);
      next = page.next;
    }
    expect(all.length).toBe(21);
    expect(new Set(all.map((b) => b.ts)).size).toBe(21);
    expect(all[20]!.ts).toBe("2024-01-31T00:00:00.000Z");
    // Bare ticker and Stooq spelling find the same symbol.
    for (const s of ["aapl", "aapl.us", "AAPL"]) {
      const r = await ok(api.GET("/api/bars", { params: { query: { symbol: s, limit: "1" } } }));
      expect(r.symbol).toBe("AAPL.US");
      expect(r.data.length).toBe(1);
    }
  });

  // Raw HTTP: these queries are what the typed client cannot send.
  test("bars: invalid queries are 400 with the field named", async () => {
    const cases: [string, string][] = [
      ["interval=1d", "symbol"],
      ["symbol=AAPL.US&interval=2d", "interval"],
      ["symbol=AAPL.US&from=yesterday", "from"],
      ["symbol=AAPL.US&limit=0", "limit"],
      ["symbol=AAPL.US&limit=100001", "limit"],
      ["symbol=AAPL.US&cursor=nonsense", "cursor"],
      ["symbol=AAPL.US&from=2024-02-01&to=2024-01-01", "from"],
      ["symbol=AAPL.US&colour=red", "colour"],
      ["symbol=ZZZZ", "symbol"],
    ];
    for (const [query, field] of cases) {
      const r = await fetch(`${base}/api/bars?${query}`);
      expect(r.status).toBe(400);
      const body = (await r.json()) as any;
      expect(body.issues.map((i: any) => i.field)).toContain(field);
    }
  });

  test("runs and quarantine", async () => {
    const runs = await ok(api.GET("/api/runs"));
    const run = runs.data[0]!;
    expect(run).toMatchObject({ kind: "ingest", source: "us", job: "us-daily", outcome: "succeeded", read: 32, quarantined: 1, from: "2024-01-02T00:00:00.000Z" });
    expect(run.stored).toBe(31);
    const q = await ok(api.GET("/api/quarantine"));
    expect(q.data.length).toBe(1);
    expect(q.data[0]).toMatchObject({ source: "us", rule: "high", symbol: "MSFT.US", ts: "2024-01-03T00:00:00.000Z", runId: run.id });
    expect(q.data[0]!.locator).toEndWith("msft_us_d.csv:3");
    expect((await ok(api.GET("/api/quarantine", { params: { query: { rule: "volume" } } }))).data.length).toBe(0);
    expect((await fetch(`${base}/api/quarantine?limit=x`)).status).toBe(400);
  });

  test("jobs: next run in its time zone, trigger by POST, no overlap", async () => {
    const jobs = await ok(api.GET("/api/jobs"));
    expect(jobs.data[0]).toMatchObject({ name: "us-daily", schedule: "0 30 22 * * 1-5", timeZone: "America/New_York", lastOutcome: "succeeded" });
    const next = new Date(jobs.data[0]!.nextRun!);
    const ny = new Intl.DateTimeFormat("en-US", { timeZone: "America/New_York", hour: "2-digit", minute: "2-digit", hourCycle: "h23", weekday: "short" }).format(next);
    expect(ny).toMatch(/^(Mon|Tue|Wed|Thu|Fri) 22:30$/);
    const r = await api.POST("/api/jobs/{name}/run", { params: { path: { name: "us-daily" } } });
    expect(r.response.status).toBe(202);
    expect(r.data?.status).toBe("started");
    expect((await api.POST("/api/jobs/{name}/run", { params: { path: { name: "nope" } } })).response.status).toBe(404);
    await waitFor(async () => {
      const runs = (await ok(api.GET("/api/runs"))).data;
      return runs.length === 2 && runs[0]!.outcome !== "running";
    }, 10_000, "the triggered run");
    const runs = await ok(api.GET("/api/runs"));
    expect(runs.data[0]).toMatchObject({ outcome: "succeeded", read: 0, stored: 0 });
  });

  test("unknown paths are JSON 404s", async () => {
    const r = await fetch(`${base}/api/nothing`);
    expect(r.status).toBe(404);
    expect((await r.json()) as any).toMatchObject({ error: "not found" });
  });
});
