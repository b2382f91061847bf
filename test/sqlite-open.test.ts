// A SQLite store closed by one process and opened at once by another: bun's close() finishes
// lazily (when its statements are collected) and checkpoints the WAL under an exclusive lock, so
// the opening process must wait for the lock (busy_timeout before any other pragma), not fail
// "database is locked". Seen as intermittent Pocketbase-test failures (a child sync's store open).
import { expect, test } from "bun:test";
import { join } from "node:path";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Bar } from "../src/domain/bar.ts";
import { ROOT, tempDir } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-sqlite-open-");

test("a child opens a store the parent has just closed, every time", async () => {
  const child = `const { sqliteStore } = await import(${JSON.stringify(join(ROOT, "src/stores/sqlite/index.ts"))});
const s = sqliteStore(process.argv[1]); await s.migrate(); await s.close(); console.log("opened");`;
  const failures: string[] = [];
  for (let i = 0; i < 12; i++) {
    const path = join(dir, `s${i}.db`);
    const store = sqliteStore(`sqlite:${path}`);
    await store.migrate();
    const runId = await store.startRun({ kind: "ingest", source: "t" });
    const bars: Bar[] = Array.from({ length: 60_000 }, (_, k) => ({ source: "t", symbol: `S${k % 200}.US`, interval: "1d", ts: Date.UTC(2020, 0, 1) + Math.floor(k / 200) * 86_400_000, open: 1, high: 2, low: 0.5, close: 1.5, volume: k }));
    await store.commitBatch({ runId, source: "t", bars, quarantine: [], read: bars.length });
    await store.close();
    const proc = Bun.spawn([process.execPath, "-e", child, path], { stdout: "pipe", stderr: "pipe" });
    // The parent's lazy close runs when its statements are collected: collect while the child opens.
    let exited = false;
    void proc.exited.then(() => (exited = true));
    for (let t = 0; t < 40 && !exited; t++) {
      await Bun.sleep(5);
      Bun.gc(true);
    }
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0 || !out.includes("opened")) failures.push(`#${i}: exit ${code}: ${err.split("\n").find((l) => /error/i.test(l)) ?? err.slice(0, 200)}`);
  }
  expect(failures).toEqual([]);
}, 120_000);
