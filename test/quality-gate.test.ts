// The quality gate (minQuality, per source and per job): a run that read rows and scored below it
// is failed in the run ledger, `ingest` exits 4 with one clear reason, scheduled jobs in `serve`
// are held to it and the failed-runs alert fires through the real notifier. A run that read no
// rows is not scored and never claims "quality 1.000".
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cli, startServe, stooqCsv, tempDir, waitFor, writeFile } from "./helpers.ts";
import { apiClient, ok } from "../src/http/client/index.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { loadConfig } from "../src/config/load.ts";
import { ingestFromConfig } from "../src/pipeline/run.ts";
import { DEFAULT_MIN_QUALITY } from "../src/sources/common.ts";
import { startFakeProviders, syntheticBars } from "./fakes/providers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-gate-");

/** `n` consecutive weekday sessions from 2023-01-02; the first `bad` of them break rule `high` (high below low). */
function sessions(n: number, bad: number): Parameters<typeof stooqCsv>[0] {
  const out: Parameters<typeof stooqCsv>[0] = [];
  for (let t = Date.UTC(2023, 0, 2); out.length < n; t += 86_400_000) {
    const wd = new Date(t).getUTCDay();
    if (wd === 0 || wd === 6) continue;
    const date = new Date(t).toISOString().slice(0, 10);
    out.push(out.length < bad ? [date, 10, 9, 11, 10, 1000] : [date, 10, 11, 9, 10, 1000]);
  }
  return out;
}

const allBad = writeFile(join(dir, "pkn_d.csv"), stooqCsv(sessions(302, 302)));
const mostlyGood = writeFile(join(dir, "cdr_d.csv"), stooqCsv(sessions(100, 20)));

async function runOf(dbPath: string, id: number) {
  const store = sqliteStore(`sqlite:${dbPath}`);
  try {
    return await store.getRun(id);
  } finally {
    await store.close();
  }
}

describe("ingest --file", () => {
  test("302 rows that all break a rule: the run is failed, exit 4, one clear reason, no stack", async () => {
    const db = join(dir, "all-bad.db");
    const r = await cli(["ingest", "--file", allBad, "--market", "WSE", "--store", `sqlite:${db}`]);
    expect(r.code).toBe(4);
    expect(r.stdout).toContain("stooq: failed in");
    expect(r.stdout).toContain("read 302, inserted 0");
    expect(r.stdout).toContain("quarantined 302, quality 0.000");
    const reason = r.stdout.split("\n").filter((l) => l.includes("minQuality"));
    expect(reason).toEqual([`  error: quality 0.000 is below minQuality ${DEFAULT_MIN_QUALITY}: 302 of 302 rows quarantined (high: 302)`]);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const runId = Number(/\(run (\d+)\)/.exec(r.stdout)![1]);
    const run = await runOf(db, runId);
    expect(run).toMatchObject({ outcome: "failed", read: 302, quarantined: 302 });
    expect(run!.error).toContain("below minQuality");
  });

  test("--json carries the gate: minQuality, belowMinQuality, and the ledger's outcome", async () => {
    const r = await cli(["ingest", "--file", allBad, "--market", "WSE", "--store", `sqlite:${join(dir, "json.db")}`, "--json"]);
    expect(r.code).toBe(4);
    const [s] = JSON.parse(r.stdout);
    expect(s).toMatchObject({ outcome: "failed", minQuality: DEFAULT_MIN_QUALITY, belowMinQuality: true, readFailed: false });
  });

  test("a run with most rows usable passes the default gate (exit 0)", async () => {
    const r = await cli(["ingest", "--file", mostlyGood, "--market", "WSE", "--store", `sqlite:${join(dir, "good.db")}`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("succeeded");
    expect(r.stdout).toContain("quality 0.800");
  });

  test("a failed run that read 0 rows prints quality n/a, not 1.000 (exit 1: it could not read)", async () => {
    const db = join(dir, "missing.db");
    const r = await cli(["ingest", "--file", join(dir, "missing.csv"), "--market", "WSE", "--store", `sqlite:${db}`]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("read 0");
    expect(r.stdout).toContain("quality n/a (0 rows)");
    expect(r.stdout).not.toContain("quality 1.000");
    // The ledger (and so /api/runs and the dashboard) holds no score either, not a perfect one.
    const run = await runOf(db, Number(/\(run (\d+)\)/.exec(r.stdout)![1]));
    expect(run).toMatchObject({ outcome: "failed", read: 0, quality: null });
  });
});

describe("minQuality in the config", () => {
  const configFile = (name: string, sourceMin: number | null, jobMin: number | null) =>
    writeFile(
      join(dir, `${name}.json`),
      JSON.stringify({
        store: { url: `sqlite:${join(dir, `${name}.db`)}` },
        sources: { wse: { type: "csv", path: mostlyGood, market: "WSE", ...(sourceMin !== null ? { minQuality: sourceMin } : {}) } },
        jobs: [{ name: "daily", kind: "ingest", source: "wse", ...(jobMin !== null ? { minQuality: jobMin } : {}) }],
      }),
    );

  test("a source's minQuality fails a run with 20% of rows broken (exit 4)", async () => {
    const r = await cli(["ingest", "--config", configFile("src-strict", 0.9, null)]);
    expect(r.code).toBe(4);
    expect(r.stdout).toContain("quality 0.800 is below minQuality 0.9: 20 of 100 rows quarantined (high: 20)");
  });

  test("a job's minQuality wins over its source's", async () => {
    const loaded = loadConfig(configFile("job-lenient", 0.9, 0.5), {});
    // Each run on a store of its own: a second run on one store would read nothing new.
    const [a, b] = [sqliteStore(`sqlite:${join(dir, "job-a.db")}`), sqliteStore(`sqlite:${join(dir, "job-b.db")}`)];
    await a.migrate();
    await b.migrate();
    try {
      const viaJob = await ingestFromConfig({ loaded, store: a, source: "wse", job: "daily" });
      expect(viaJob).toMatchObject({ outcome: "succeeded", read: 100, minQuality: 0.5, belowMinQuality: false });
      const viaSource = await ingestFromConfig({ loaded, store: b, source: "wse" });
      expect(viaSource).toMatchObject({ outcome: "failed", read: 100, minQuality: 0.9, belowMinQuality: true });
      expect((await b.getRun(viaSource.runId))!.outcome).toBe("failed");
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("minQuality outside 0..1 is a config error naming the field (exit 3)", async () => {
    const r = await cli(["ingest", "--config", configFile("bad-min", 1.5, null)]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("sources.wse.minQuality");
  });
});

describe("serve: a scheduled job below the gate", () => {
  const posts: { text: string }[] = [];
  let posted: () => void;
  const firstPost = new Promise<void>((resolve) => (posted = resolve));
  const hook = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      posts.push((await req.json()) as { text: string });
      posted();
      return new Response("ok");
    },
  });
  afterAll(() => hook.stop(true));

  test("the job's run is failed, /api/jobs says so, and the failed-runs alert is sent", async () => {
    const cfg = writeFile(
      join(dir, "serve.json"),
      JSON.stringify({
        store: { url: `sqlite:${join(dir, "serve.db")}` },
        sources: { wse: { type: "csv", path: allBad, market: "WSE" } },
        jobs: [{ name: "nightly", kind: "ingest", source: "wse", runOnStart: true }],
        alerts: { intervalS: 1, rules: [{ kind: "errors", name: "failed-runs", windowS: 3600, maxFailed: 0 }], webhook: { url: `http://127.0.0.1:${hook.port}/hook` } },
      }),
    );
    const { url, proc } = await startServe(["--config", cfg]);
    try {
      const job = await waitFor(async () => {
        const body = await ok(apiClient({ baseUrl: url }).GET("/api/jobs"));
        return body.data.find((j) => j.name === "nightly" && j.lastOutcome !== null);
      }, 30_000, "the job to finish");
      expect(job.lastOutcome).toBe("failed");
      const runs = await ok(apiClient({ baseUrl: url }).GET("/api/runs"));
      expect(runs.data[0]).toMatchObject({ job: "nightly", outcome: "failed" });
      expect(runs.data[0]!.error).toContain("below minQuality");
      await firstPost;
      expect(posts[0]!.text).toContain("FIRING");
      expect(posts[0]!.text).toContain("failed-runs");
      expect(posts[0]!.text).toContain("below minQuality");
    } finally {
      proc.kill();
      await proc.exited;
    }
  }, 60_000);
});

test("backfill from a provider whose every bar is broken: failed, exit 4", async () => {
  const fake = await startFakeProviders();
  try {
    // Yahoo answering bars whose high is below their low: every one is quarantined.
    const broken = syntheticBars("AAPL", "2024-01-02", "2024-02-29", { weekdaysOnly: true }).map((b) => ({ ...b, high: b.low / 2 }));
    fake.setBars("yahoo", "AAPL", broken);
    const cfg = writeFile(
      join(dir, "backfill.json"),
      JSON.stringify({ store: { url: `sqlite:${join(dir, "backfill.db")}` }, sources: { y: { type: "yahoo", baseUrl: `${fake.url}/yahoo`, rateLimit: { perSecond: 50 }, symbols: ["AAPL.US"] } } }),
    );
    const r = await cli(["backfill", "--config", cfg, "--source", "y", "--from", "2024-01-01", "--to", "2024-03-01"]);
    expect(r.code).toBe(4);
    expect(r.stdout).toContain(`y: failed in`);
    expect(r.stdout).toContain(`quality 0.000 is below minQuality ${DEFAULT_MIN_QUALITY}: ${broken.length} of ${broken.length} rows quarantined`);
  } finally {
    await fake.stop();
  }
}, 60_000);
