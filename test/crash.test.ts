// Crash safety: kill -9 the ingest process midway through a large file, run it again, and the
// store must hold exactly the rows (and quarantine) of one clean run: none lost, none doubled.
import { expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { MAIN, cli, tempDir, waitFor } from "./helpers.ts";

const dir = tempDir("ticksync-crash-");
const ROWS_PER_SYMBOL = 3000;
const SYMBOLS = 200;
const TOTAL = ROWS_PER_SYMBOL * SYMBOLS;
const BAD_EVERY = 997; // every 997th row is broken and must be quarantined exactly once

async function writeBigCsv(path: string) {
  const out = createWriteStream(path);
  out.write("ticker;date;o;h;l;c;v\n");
  let n = 0;
  let chunk: string[] = [];
  for (let d = 0; d < ROWS_PER_SYMBOL; d++) {
    const day = new Date(Date.UTC(2010, 0, 1) + d * 86_400_000).toISOString().slice(0, 10);
    for (let s = 0; s < SYMBOLS; s++) {
      n++;
      const p = 10 + ((s * 7919 + d * 104729) % 5000) / 100;
      const vol = n % BAD_EVERY === 0 ? -1 : 1000 + ((s + d) % 977);
      chunk.push(`S${s}.US;${day};${p.toFixed(2)};${(p * 1.02).toFixed(2)};${(p * 0.98).toFixed(2)};${(p * 1.01).toFixed(2)};${vol}`);
    }
    if (chunk.length >= 20_000) {
      out.write(chunk.join("\n") + "\n");
      chunk = [];
    }
  }
  out.write(chunk.join("\n") + "\n");
  await new Promise<void>((r) => out.end(r));
}

const ingestArgs = (store: string) => [
  "ingest",
  "--file",
  join(dir, "big.csv"),
  "--layout",
  "generic",
  "--delimiter",
  ";",
  "--columns",
  "symbol=ticker,ts=date,open=o,high=h,low=l,close=c,volume=v",
  "--name",
  "bulk",
  "--store",
  `sqlite:${store}`,
  "--batch-size",
  "2000",
];

function snapshot(path: string) {
  const db = new Database(path, { readonly: true });
  const hasher = new Bun.CryptoHasher("sha256");
  for (const r of db.query("SELECT symbol, interval, ts, source, open, high, low, close, volume, adj_close, turnover, trades FROM bars ORDER BY symbol, interval, ts, source").values())
    hasher.update(r.join("|") + "\n");
  const quarantine = db.query("SELECT source, locator, rule FROM quarantine ORDER BY locator").values().map((r) => r.join("|"));
  const series = db.query("SELECT source, symbol, interval, first_ts, last_ts, bars FROM series ORDER BY 1, 2, 3").values().map((r) => r.join("|"));
  const count = (db.query("SELECT count(*) AS n FROM bars").get() as { n: number }).n;
  const runs = db.query("SELECT outcome FROM runs ORDER BY id").values().map((r) => r[0]);
  db.close();
  return { count, sha: hasher.digest("hex"), quarantine, series, runs };
}

function countBars(path: string): number {
  try {
    const db = new Database(path, { readonly: true });
    try {
      return (db.query("SELECT count(*) AS n FROM bars").get() as { n: number }).n;
    } finally {
      db.close();
    }
  } catch {
    return 0; // not created or not migrated yet
  }
}

test("kill -9 midway, twice, then a rerun gives exactly the rows of one clean run", async () => {
  await writeBigCsv(join(dir, "big.csv"));
  const expectedBad = Math.floor(TOTAL / BAD_EVERY);

  const clean = join(dir, "clean.db");
  const r = await cli(ingestArgs(clean));
  expect(r.stderr).not.toContain("Error");
  expect(r.code).toBe(0);
  const reference = snapshot(clean);
  expect(reference.count).toBe(TOTAL - expectedBad);
  expect(reference.quarantine.length).toBe(expectedBad);

  const crashed = join(dir, "crashed.db");
  const killedAt: number[] = [];
  for (const fraction of [0.2, 0.6]) {
    const proc = Bun.spawn([process.execPath, MAIN, ...ingestArgs(crashed)], { stdout: "ignore", stderr: "ignore" });
    const seen = await waitFor(() => {
      const n = countBars(crashed);
      return n > reference.count * fraction ? n : 0;
    }, 60_000, `ingest to pass ${fraction * 100}%`);
    proc.kill("SIGKILL");
    const code = await proc.exited;
    expect(proc.signalCode).toBe("SIGKILL");
    expect(code).not.toBe(0);
    killedAt.push(seen);
  }
  const partial = countBars(crashed);
  // It really was killed midway: some rows in, not all of them.
  expect(partial).toBeGreaterThan(reference.count * 0.6);
  expect(partial).toBeLessThan(reference.count);

  const rerun = await cli(ingestArgs(crashed));
  expect(rerun.code).toBe(0);
  // The rerun continued from the checkpoint instead of reading the file again.
  const read = Number(/read (\d+)/.exec(rerun.stdout)?.[1]);
  expect(read).toBeLessThan(TOTAL - partial + 2000 * 2);
  expect(read).toBeGreaterThan(0);

  const after = snapshot(crashed);
  expect(after.count).toBe(reference.count);
  expect(after.sha).toBe(reference.sha);
  expect(after.quarantine).toEqual(reference.quarantine);
  expect(after.series).toEqual(reference.series);
  // The killed runs are recorded as interrupted, the last one as succeeded.
  expect(after.runs).toEqual(["interrupted", "interrupted", "succeeded"]);
}, 180_000);
