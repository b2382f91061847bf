// `ticksync migrate` between real stores: a round trip that ends equal by checksum, a migration
// killed midway that resumes, and a corrupted row that verify finds and names.
import { beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { MAIN, cli, tempDir, waitFor, writeFile } from "./helpers.ts";
import { STORES } from "./stores.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-migrate-");
const SYMBOLS = 40;
const DAYS = 500;
const env = { TICKSYNC_LOG__LEVEL: "warn" };
const BAD = Math.floor((SYMBOLS * DAYS - 1) / 1999) + 1; // rows 0, 1999, 3998, … have volume -1
const GOOD = SYMBOLS * DAYS - BAD;
let origin = "";

beforeAll(async () => {
  // A source store with bars of several symbols, a few quarantined rows and checkpoints.
  const lines = ["ticker,date,o,h,l,c,v"];
  for (let s = 0; s < SYMBOLS; s++)
    for (let d = 0; d < DAYS; d++) {
      const day = new Date(Date.UTC(2020, 0, 1) + d * 86_400_000).toISOString().slice(0, 10);
      const p = 10 + ((s * 31 + d * 17) % 900) / 10;
      const bad = (s * DAYS + d) % 1999 === 0;
      lines.push(`M${s}.US,${day},${p},${(p * 1.01).toFixed(3)},${(p * 0.99).toFixed(3)},${(p * 1.005).toFixed(3)},${bad ? -1 : 100 + d}`);
    }
  writeFile(join(dir, "src.csv"), lines.join("\n") + "\n");
  origin = `sqlite:${join(dir, "origin.db")}`;
  const r = await cli(["ingest", "--file", join(dir, "src.csv"), "--columns", "symbol=ticker,ts=date,open=o,high=h,low=l,close=c,volume=v", "--store", origin], { env });
  expect(r.code).toBe(0);
});

const pg = STORES.find((s) => s.kind === "postgres")!;
const qdb = STORES.find((s) => s.kind === "questdb")!;

describe("migrate", () => {
  test("sqlite → sqlite copies bars, checkpoints and quarantine, and verify says equal", async () => {
    const target = `sqlite:${join(dir, "copy.db")}`;
    const r = await cli(["migrate", "--from", origin, "--to", target, "--json"], { env });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.copied).toMatchObject({ bars: GOOD, series: SYMBOLS, checkpoints: 1, quarantine: BAD });
    expect(out.verify).toMatchObject({ ok: true, bars: { from: GOOD, to: GOOD }, differing: [], quarantine: { from: BAD, to: BAD, missing: 0 } });
  });

  test.skipIf(pg.unavailable !== null || qdb.unavailable !== null)("sqlite → postgres → questdb → sqlite round trip is equal by checksum", async () => {
    const hops = [origin, pg.freshUrl(dir), qdb.freshUrl(dir), `sqlite:${join(dir, "back.db")}`];
    for (let i = 1; i < hops.length; i++) {
      const r = await cli(["migrate", "--from", hops[i - 1]!, "--to", hops[i]!], { env });
      expect(r.stdout).toContain("verify: equal");
      expect(r.code).toBe(0);
    }
    const v = await cli(["migrate", "--verify-only", "--from", origin, "--to", hops[3]!, "--json"], { env });
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout).verify).toMatchObject({ ok: true, keys: GOOD, quarantine: { from: BAD, to: BAD, missing: 0 }, checkpoints: { from: 1, to: 1, differing: [] } });
  }, 180_000);

  test.skipIf(pg.unavailable !== null)("a migration killed midway resumes where it stopped", async () => {
    const target = pg.freshUrl(dir);
    const watcher = pg.open(target);
    const proc = Bun.spawn([process.execPath, MAIN, "migrate", "--from", origin, "--to", target, "--batch-size", "100"], { stdout: "ignore", stderr: "ignore", env: { ...process.env, ...env } });
    await waitFor(async () => (await watcher.countBars().catch(() => 0)) > 5000, 60_000, "the migration to get going");
    proc.kill("SIGKILL");
    await proc.exited;
    const partial = await watcher.countBars();
    expect(partial).toBeLessThan(GOOD);
    const r = await cli(["migrate", "--from", origin, "--to", target, "--json"], { env });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.copied.resumedSeries).toBeGreaterThan(0);
    expect(out.copied.bars).toBeLessThanOrEqual(GOOD - partial + 100);
    expect(out.verify.ok).toBe(true);
    await watcher.close();
  }, 120_000);

  test("verify finds a corrupted row and a missing one, names their keys, exits 6", async () => {
    const copy = join(dir, "corrupt.db");
    expect((await cli(["migrate", "--from", origin, "--to", `sqlite:${copy}`], { env })).code).toBe(0);
    const db = new Database(copy);
    db.run("UPDATE bars SET close = close + 0.01 WHERE symbol = 'M3.US' AND ts = ?", [Date.UTC(2020, 5, 1)]);
    db.run("DELETE FROM bars WHERE symbol = 'M7.US' AND ts = ?", [Date.UTC(2021, 0, 15)]);
    db.close();
    const r = await cli(["migrate", "--verify-only", "--from", origin, "--to", `sqlite:${copy}`], { env });
    expect(r.code).toBe(6);
    expect(r.stdout).toContain("verify: DIFFERENT");
    expect(r.stdout).toContain("differs M3.US|1d|2020-06-01: from 1 bars");
    expect(r.stdout).toContain("differs M7.US|1d|2021-01-15: from 1 bars #");
    expect(r.stdout).toMatch(/differs M7\.US\|1d\|2021-01-15: from 1 bars #[0-9a-f]+, to none/);
    expect(r.stdout.match(/differs /g)?.length).toBe(2);
    // The source is untouched by a verify.
    const s = sqliteStore(origin);
    expect(await s.countBars()).toBe(GOOD);
    await s.close();
  });

  test("bad arguments", async () => {
    expect((await cli(["migrate", "--from", origin], { env })).code).toBe(2);
    expect((await cli(["migrate", "--from", origin, "--to", origin], { env })).stderr).toContain("the same store");
  });
});
