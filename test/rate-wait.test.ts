// A rate-limit wait is never silent: any wait of SHOWN_WAIT_MS or more (the limiter's schedule,
// a 429's Retry-After, Alpha Vantage's "Note" throttle, a retry's backoff) is on the progress line
// and on the running job in /api/jobs. Waits here are kept to ~3 s by small limits, and every
// assertion waits for the event (the progress callback, the job's state), never a fixed sleep.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { parseConfig, type LoadedConfig } from "../src/config/load.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { ingestFromConfig } from "../src/pipeline/run.ts";
import type { Progress } from "../src/pipeline/ingest.ts";
import { createRateLimiter, SHOWN_WAIT_MS } from "../src/lib/ratelimit.ts";
import { progressLine } from "../src/pipeline/progress.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { resetSharedLimiters } from "../src/sources/provider.ts";
import { startFakeProviders, syntheticBars, type FakeProviders } from "./fakes/providers.ts";
import { cli, startServe, tempDir, waitFor, writeFile } from "./helpers.ts";
import { apiClient, ok } from "../src/http/client/index.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

setLogLevel("error");
const dir = tempDir("ticksync-wait-");
let fake: FakeProviders;
let n = 0;

beforeAll(async () => {
  fake = await startFakeProviders();
});
afterAll(async () => {
  await fake.stop();
});
beforeEach(() => {
  fake.reset();
  resetSharedLimiters();
});

// 20 calls a minute: one every ~3.06 s, just over the 2 s a wait needs to be shown.
const SLOW = { perMinute: 20 };
const av = (symbols: string[]) => ({ type: "alphavantage", baseUrl: `${fake.url}/alphavantage`, apiKey: "demo-key", rateLimit: SLOW, symbols, start: "2024-01-01" });
const yahoo = (symbols: string[]) => ({ type: "yahoo", baseUrl: `${fake.url}/yahoo`, rateLimit: { perSecond: 50 }, symbols, start: "2024-01-01" });
const bars = (symbol: string) => syntheticBars(symbol, "2024-01-02", "2024-01-12", { weekdaysOnly: true });

describe("in a run", () => {
  test("Alpha Vantage's Note throttle: the run reports the wait with its reason, then goes on", async () => {
    fake.setBars("alphavantage", "IBM", bars("IBM"));
    fake.fault("alphavantage", "IBM", { kind: "av-note", times: 1 });
    const loaded: LoadedConfig = { config: parseConfig({ sources: { av: av(["IBM.US"]) } }), file: null, baseDir: dir };
    const store = sqliteStore(join(dir, `s-${++n}.db`));
    await store.migrate();
    let seen!: (p: Progress & { at: number }) => void;
    const firstWait = new Promise<Progress & { at: number }>((resolve) => (seen = resolve));
    const updates: Progress[] = [];
    const run = ingestFromConfig({
      loaded,
      store,
      source: "av",
      onProgress: (p) => {
        updates.push(p);
        if (p.waiting) seen({ ...p, at: Date.now() });
      },
    });
    // Without a reported wait the run ends first: fail then, not at the test's timeout.
    const p = await Promise.race([firstWait, run.then(() => Promise.reject(new Error("the run ended without reporting a wait")))]);
    expect(p.waiting!.reason).toBe("alphavantage rate limit: the provider asked to slow down");
    const left = p.waiting!.until - p.at;
    expect(left).toBeGreaterThanOrEqual(SHOWN_WAIT_MS);
    expect(left).toBeLessThanOrEqual(3_200);
    expect(progressLine(p)).toMatch(/ · waiting [34] s: alphavantage rate limit: the provider asked to slow down$/);
    const s = await run;
    await store.close();
    expect(s).toMatchObject({ outcome: "succeeded", read: bars("IBM").length });
    // The wait's end was reported too: the last word is "not waiting".
    expect(updates.at(-1)!.waiting).toBeNull();
  });

  test("a retry's backoff of 2 s or more is shown; a short one is not", async () => {
    let release!: () => void;
    const limiter = createRateLimiter("stooq", { perSecond: 100 }, { sleep: (ms) => (ms < SHOWN_WAIT_MS ? Promise.resolve() : new Promise<void>((r) => (release = r))) });
    let changes = 0;
    limiter.waits.subscribe(() => changes++);
    await limiter.pause(1_500, "stooq retry after timeout (try 2 of 4)");
    expect(changes).toBe(0);
    const t0 = Date.now();
    const pausing = limiter.pause(5_000, "stooq retry after server_error (try 2 of 4)");
    expect(limiter.waits.current()).toMatchObject({ reason: "stooq retry after server_error (try 2 of 4)" });
    expect(limiter.waits.current()!.until - t0).toBeGreaterThanOrEqual(5_000);
    release();
    await pausing;
    expect(limiter.waits.current()).toBeNull();
    expect(changes).toBe(2);
  });
});

test("ingest on the command line, one symbol: the Note throttle's wait is on a progress line", async () => {
  fake.setBars("alphavantage", "IBM", bars("IBM"));
  fake.fault("alphavantage", "IBM", { kind: "av-note", times: 1 });
  const cfg = writeFile(join(dir, "cli1.json"), JSON.stringify({ store: { url: `sqlite:${join(dir, "cli1.db")}` }, sources: { av: av(["IBM.US"]) } }));
  const r = await cli(["ingest", "--config", cfg]);
  expect(r.code).toBe(0);
  expect(r.stderr.split("\n").filter((l) => l.includes("waiting"))).toEqual([expect.stringMatching(/^progress: 0\/1 streams · .* · waiting [34] s: alphavantage rate limit: the provider asked to slow down$/)]);
}, 30_000);

test("ingest on the command line, two symbols: the limiter's own schedule wait is on the progress line", async () => {
  fake.setBars("alphavantage", "IBM", bars("IBM"));
  fake.setBars("alphavantage", "MSFT", bars("MSFT"));
  const cfg = writeFile(join(dir, "cli.json"), JSON.stringify({ store: { url: `sqlite:${join(dir, "cli.db")}` }, sources: { av: av(["IBM.US", "MSFT.US"]) } }));
  const r = await cli(["ingest", "--config", cfg]);
  expect(r.code).toBe(0);
  const lines = r.stderr.split("\n").filter((l) => l.includes("waiting"));
  expect(lines.length).toBeGreaterThanOrEqual(1);
  expect(lines[0]).toMatch(/^progress: 1\/2 streams · .* · waiting [34] s: alphavantage rate limit$/);
}, 30_000);

test("serve: a running job in a 429's Retry-After shows waiting {reason, until, seconds} in /api/jobs", async () => {
  fake.setBars("yahoo", "AAPL", bars("AAPL"));
  fake.fault("yahoo", "AAPL", { kind: "429", retryAfterSeconds: 3, times: 1 });
  const cfg = writeFile(
    join(dir, "serve.json"),
    JSON.stringify({ store: { url: `sqlite:${join(dir, "serve.db")}` }, sources: { y: yahoo(["AAPL.US"]) }, jobs: [{ name: "daily", kind: "ingest", source: "y", runOnStart: true }] }),
  );
  const { url, proc } = await startServe(["--config", cfg]);
  const job = async () => (await ok(apiClient({ baseUrl: url }).GET("/api/jobs"))).data.find((j) => j.name === "daily")!;
  try {
    const during = await waitFor(async () => {
      const j = await job();
      return j.waiting ? j : null;
    }, 20_000, "the job to report its wait");
    expect(during.running).toBe(true);
    expect(during.waiting!.reason).toBe("yahoo rate limit: HTTP 429, Retry-After 3 s");
    expect(during.waiting!.seconds).toBeGreaterThan(0);
    expect(during.waiting!.seconds).toBeLessThanOrEqual(3);
    expect(Date.parse(during.waiting!.until)).toBeGreaterThan(Date.now());
    const after = await waitFor(async () => {
      const j = await job();
      return j.lastOutcome ? j : null;
    }, 20_000, "the job to finish");
    expect(after).toMatchObject({ running: false, lastOutcome: "succeeded", waiting: null });
  } finally {
    proc.kill();
    await proc.exited;
  }
}, 60_000);
