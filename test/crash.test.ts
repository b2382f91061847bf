// Crash safety: kill -9 the ingest process midway through a large file, run it again, and the
// store must hold exactly the rows (and quarantine) of one clean run: none lost, none doubled.
import { beforeAll, describe, expect, test } from "bun:test";
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { MAIN, cli, tempDir, waitFor } from "./helpers.ts";
import { STORES } from "./stores.ts";
import type { Store } from "../src/stores/types.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

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

const ingestArgs = (storeUrl: string) => [
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
  storeUrl,
  "--batch-size",
  "5000",
];

/** Everything a store holds, through the store contract: the same for any store. */
async function snapshot(store: Store) {
  const hasher = new Bun.CryptoHasher("sha256");
  const series = await store.listSeries();
  for (const s of series) {
    let after: { ts: number; source: string } | undefined;
    for (;;) {
      const page = await store.queryBars({ symbol: s.symbol, interval: s.interval, source: s.source, limit: 10_000, after });
      for (const b of page) hasher.update(`${b.symbol}|${b.interval}|${b.ts}|${b.source}|${b.open}|${b.high}|${b.low}|${b.close}|${b.volume}|${b.adjClose}|${b.turnover}|${b.trades}\n`);
      if (page.length < 10_000) break;
      after = { ts: page[page.length - 1]!.ts, source: page[page.length - 1]!.source };
    }
  }
  const quarantine: string[] = [];
  for (let before: number | undefined; ; ) {
    const page = await store.listQuarantine({ limit: 1000, before });
    quarantine.push(...page.map((q) => `${q.source}|${q.locator}|${q.rule}`));
    if (page.length < 1000) break;
    before = page[page.length - 1]!.id;
  }
  quarantine.sort();
  const runs = (await store.listRuns({ limit: 100 })).reverse().map((r) => r.outcome);
  return { count: await store.countBars(), sha: hasher.digest("hex"), quarantine, series: series.map((s) => `${s.source}|${s.symbol}|${s.firstTs}|${s.lastTs}|${s.bars}`), runs };
}

async function countBars(store: Store): Promise<number> {
  try {
    return await store.countBars();
  } catch {
    return 0; // not created or not migrated yet
  }
}

beforeAll(async () => {
  await writeBigCsv(join(dir, "big.csv"));
});

for (const kind of STORES) {
  describe.skipIf(kind.unavailable !== null)(`${kind.kind}${kind.unavailable ? ` (skipped: ${kind.unavailable})` : ""}`, () => {
    test("kill -9 midway, twice, then a rerun gives exactly the rows of one clean run", async () => {
      const expectedBad = Math.floor(TOTAL / BAD_EVERY);
      // QuestDB: a write per batch (not the default 100,000 lines), so a kill lands between writes.
      const freshUrl = () => (kind.kind === "questdb" ? `${kind.freshUrl(dir)}&lines=5000` : kind.freshUrl(dir));
      const cleanUrl = freshUrl();
      const r = await cli(ingestArgs(cleanUrl));
      expect(r.stderr).not.toContain("Error");
      expect(r.stderr + r.stdout).not.toContain("invalid config");
      expect(r.code).toBe(0);
      const cleanStore = kind.open(cleanUrl);
      const reference = await snapshot(cleanStore);
      await cleanStore.close();
      expect(reference.count).toBe(TOTAL - expectedBad);
      expect(reference.quarantine.length).toBe(expectedBad);

      const crashedUrl = freshUrl();
      const watcher = kind.open(crashedUrl);
      try {
        for (const fraction of [0.2, 0.6]) {
          const proc = Bun.spawn([process.execPath, MAIN, ...ingestArgs(crashedUrl)], { stdout: "ignore", stderr: "ignore" });
          await waitFor(async () => (await countBars(watcher)) > reference.count * fraction, 60_000, `ingest to pass ${fraction * 100}%`);
          proc.kill("SIGKILL");
          const code = await proc.exited;
          expect(proc.signalCode).toBe("SIGKILL");
          expect(code).not.toBe(0);
        }
        const partial = await countBars(watcher);
        // It really was killed midway: some rows in, not all of them.
        expect(partial).toBeGreaterThan(reference.count * 0.6);
        expect(partial).toBeLessThan(reference.count);

        const rerun = await cli(ingestArgs(crashedUrl));
        expect(rerun.code).toBe(0);
        // The rerun continued from the checkpoint instead of reading the file again.
        const read = Number(/read (\d+)/.exec(rerun.stdout)?.[1]);
        expect(read).toBeLessThan(TOTAL - partial + 5000 * 5);
        expect(read).toBeGreaterThan(0);

        const after = await snapshot(watcher);
        expect(after.count).toBe(reference.count);
        expect(after.sha).toBe(reference.sha);
        expect(after.quarantine).toEqual(reference.quarantine);
        expect(after.series).toEqual(reference.series);
        // The killed runs are recorded as interrupted, the last one as succeeded.
        expect(after.runs).toEqual(["interrupted", "interrupted", "succeeded"]);
      } finally {
        await watcher.close();
      }
    }, 600_000);
  });
}
