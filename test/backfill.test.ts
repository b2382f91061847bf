// `ticksync backfill` as a user runs it: a universe of symbols against local provider servers,
// killed with -9 midway, then `--resume`: every symbol done once, failures listed by cause,
// the rows exactly right, and no symbol fetched again after it was done.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { MAIN, cli, tempDir, waitFor, writeFile } from "./helpers.ts";
import { startFakeProviders, syntheticBars, type FakeProviders } from "./fakes/providers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-backfill-");
let fake: FakeProviders;
const SYMBOLS = Array.from({ length: 60 }, (_, i) => `T${String(i).padStart(2, "0")}`);
const FROM = "2024-01-01";
const TO = "2024-03-29";

beforeAll(async () => {
  fake = await startFakeProviders();
  for (const s of SYMBOLS) fake.setBars("yahoo", s, syntheticBars(s, "2023-06-01", "2024-06-28"));
});
afterAll(() => fake.stop());

function config(name: string) {
  return writeFile(
    join(dir, `${name}.toml`),
    `[store]
url = "sqlite:${name}.db"
[universes]
bench = [${SYMBOLS.map((s) => `"${s}.US"`).join(", ")}, "GONE.US"]
[sources.yahoo]
type = "yahoo"
baseUrl = "${fake.url}/yahoo"
apiKey = "sekr3t-key"
universe = "bench"
concurrency = 4
rateLimit = { perSecond = 15 }
retry = { attempts = 2, baseDelayMs = 10, maxDelayMs = 50 }
`,
  );
}

function db(name: string) {
  return new Database(join(dir, `${name}.db`), { readonly: true });
}

function doneCount(name: string): number {
  try {
    const d = db(name);
    try {
      return (d.query("SELECT count(*) AS n FROM run_streams WHERE status != 'pending'").get() as { n: number }).n;
    } finally {
      d.close();
    }
  } catch {
    return 0;
  }
}

test("backfill, kill -9 midway, --resume finishes only what was left; the summary lists failures by cause", async () => {
  const cfg = config("a");
  const proc = Bun.spawn([process.execPath, MAIN, "backfill", "--config", cfg, "--source", "yahoo", "--from", FROM, "--to", TO], {
    stdout: "ignore",
    stderr: "ignore",
    env: { ...process.env, TICKSYNC_LOG__LEVEL: "error" },
  });
  await waitFor(() => doneCount("a") >= 20, 30_000, "20 symbols done");
  proc.kill("SIGKILL");
  await proc.exited;
  const doneBefore = db("a").query("SELECT stream FROM run_streams WHERE status != 'pending'").values().map((r) => String(r[0]));
  expect(doneBefore.length).toBeLessThan(SYMBOLS.length + 1);
  const requestsBefore = fake.requests.length;

  const r = await cli(["backfill", "--config", cfg, "--resume", "--json"], { env: { TICKSYNC_LOG__LEVEL: "error" } });
  expect(r.stderr).toContain("resuming backfill run 1 of yahoo");
  expect(r.code).toBe(1); // GONE.US does not exist: the run finishes, but not cleanly
  const summary = JSON.parse(r.stdout);
  expect(r.stdout + r.stderr).not.toContain("sekr3t-key");
  expect(summary.runId).toBe(1);
  expect(summary.failures).toEqual({ not_found: 1 });
  expect(summary.failedStreams).toEqual({ not_found: ["GONE.US"] });

  // Nothing done before the kill was fetched again.
  const after = fake.requests.slice(requestsBefore).map((q) => q.path.split("/").pop()!.split("?")[0]);
  for (const s of doneBefore) expect(after).not.toContain(s.replace(".US", ""));
  expect(new Set(after).size).toBe(after.length);

  // Exactly the bars of the range, every symbol, once.
  const d = db("a");
  const perSymbol = d.query("SELECT symbol, count(*) AS n, min(ts) AS a, max(ts) AS b FROM bars GROUP BY symbol ORDER BY symbol").all() as { symbol: string; n: number; a: number; b: number }[];
  const bars = syntheticBars("T00", FROM, TO);
  const expected = bars.length;
  expect(perSymbol.length).toBe(SYMBOLS.length);
  for (const row of perSymbol) expect(row).toMatchObject({ n: expected, a: Date.parse(`${bars[0]!.date}T00:00:00Z`), b: Date.parse(`${TO}T00:00:00Z`) });
  const states = d.query("SELECT status, count(*) AS n FROM run_streams GROUP BY status ORDER BY status").all();
  expect(states).toEqual([
    { status: "done", n: SYMBOLS.length },
    { status: "failed", n: 1 },
  ]);
  const run = d.query("SELECT outcome, read, inserted FROM runs WHERE id = 1").get() as { outcome: string; read: number; inserted: number };
  expect(run.outcome).toBe("failed");
  expect(run.inserted).toBe(SYMBOLS.length * expected);
  d.close();

  // Resuming a finished run is refused, with a clear message.
  const again = await cli(["backfill", "--config", cfg, "--resume"]);
  expect(again.code).toBe(2);
  expect(again.stderr).toContain("no unfinished backfill run to resume");

  // Once the provider has the symbol, --retry-failed fetches just that one and the run succeeds.
  fake.setBars("yahoo", "GONE", syntheticBars("GONE", "2023-06-01", "2024-06-28"));
  const before = fake.requests.length;
  const retried = await cli(["backfill", "--config", cfg, "--resume", "--retry-failed", "--json"], { env: { TICKSYNC_LOG__LEVEL: "error" } });
  expect(retried.code).toBe(0);
  expect(JSON.parse(retried.stdout)).toMatchObject({ runId: 1, outcome: "succeeded", failures: {} });
  expect(fake.requests.slice(before).map((q) => q.path)).toEqual([expect.stringContaining("/GONE")]);
}, 120_000);

test("universe list shows the bundled lists with their dates, and the config's own", async () => {
  const cfg = config("u");
  const r = await cli(["universe", "list", "--config", cfg]);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/wig80\s+WSE\s+80\s/);
  expect(r.stdout).toMatch(/sp500\s+NYSE\s+50\d\s/);
  expect(r.stdout).toMatch(/etf-us\s+NYSE\s+40\s/);
  expect(r.stdout).toMatch(/bench\s+NYSE\s+61\s/);
  const show = await cli(["universe", "show", "wig80", "--config", cfg]);
  expect(show.code).toBe(0);
  expect(show.stdout).toContain("11B.WA");
  const bad = await cli(["universe", "show", "nasdaq100", "--config", cfg]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain("wig80");
});

test("progress is printed as plain lines when stderr is not a terminal", async () => {
  const cfg = config("b");
  const r = await cli(["backfill", "--config", cfg, "--source", "yahoo", "--from", FROM, "--to", "2024-01-31", "--symbols", "T01.US,t02.us,T03:NYSE"], { env: { TICKSYNC_LOG__LEVEL: "error" } });
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/progress: 3\/3 symbols · [\d,]+ rows · [\d.]+ symbols\/s · ETA 0s/);
  expect(r.stdout).toContain("yahoo: succeeded");
}, 60_000);
