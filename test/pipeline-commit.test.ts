// Batches of a stream committed two at a time (store.pipeline, the Postgres store): whatever the
// file holds — keys that come back in later batches with the same or other values, series whose
// bars go back in time, several series per batch — the store ends with exactly what SQLite (one
// batch at a time) ends with, the counters agree, the checkpoint is the last batch's, and a batch
// that fails stops the stream with nothing of it or after it committed.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { join } from "node:path";
import { csvSource, csvSourceSchema } from "../src/sources/csv.ts";
import { runIngest } from "../src/pipeline/ingest.ts";
import { STORES } from "./stores.ts";
import { tempDir, writeFile } from "./helpers.ts";
import type { Store } from "../src/stores/types.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-pipeline-");
const sqlite = STORES.find((s) => s.kind === "sqlite")!;
const pg = STORES.find((s) => s.kind === "postgres")!;

/** Rows of 6 symbols over 60 days, then the same keys again: some equal, some changed, some older. */
function tricky(): string {
  const lines = ["symbol,date,open,high,low,close,volume"];
  const day = (d: number) => new Date(Date.UTC(2023, 11, 1) + d * 86_400_000).toISOString().slice(0, 10);
  const row = (s: number, d: number, p: number) => `S${s}.US,${day(d)},${p},${p + 1},${p - 1},${p + 0.5},${1000 + d}`;
  for (let d = 0; d < 60; d++) for (let s = 0; s < 6; s++) lines.push(row(s, d, 10 + s + d / 10));
  // Back again: the same values (unchanged), new values (updated), and days before the first.
  for (let d = 20; d < 40; d++) lines.push(row(1, d, 10 + 1 + d / 10));
  for (let d = 30; d < 50; d++) lines.push(row(2, d, 99 + d));
  for (let d = -10; d < 5; d++) lines.push(row(3, d, 50 + d / 10));
  return lines.join("\n") + "\n";
}

async function load(store: Store, file: string, batchSize: number) {
  await store.migrate();
  const source = csvSource("t", v.parse(csvSourceSchema, { type: "csv", path: file, layout: "generic", columns: { symbol: "symbol", date: "date", open: "open", high: "high", low: "low", close: "close", volume: "volume" } }));
  return runIngest({ store, source, batchSize });
}

async function contents(store: Store) {
  const out: string[] = [];
  for (const s of await store.listSeries())
    for (const b of await store.queryBars({ symbol: s.symbol, interval: s.interval, limit: 10_000 })) out.push(`${b.symbol} ${b.ts} ${b.open} ${b.high} ${b.low} ${b.close} ${b.volume}`);
  return { bars: out.sort(), series: (await store.listSeries()).map((s) => `${s.symbol} ${s.firstTs} ${s.lastTs} ${s.bars}`) };
}

describe.skipIf(pg.unavailable !== null)(`pipelined commits${pg.unavailable ? ` (skipped: ${pg.unavailable})` : ""}`, () => {
  test("keys that come back in later batches: the same end as one batch at a time", async () => {
    expect(pg.open(pg.freshUrl(dir)).pipeline).toBe(2);
    const file = writeFile(join(dir, "tricky.csv"), tricky());
    for (const batchSize of [7, 50, 333]) {
      const ref = sqlite.open(sqlite.freshUrl(dir));
      const got = pg.open(pg.freshUrl(dir));
      try {
        const a = await load(ref, file, batchSize);
        const b = await load(got, file, batchSize);
        expect(b.outcome).toBe("succeeded");
        expect({ read: b.read, inserted: b.inserted, updated: b.updated, unchanged: b.unchanged }).toEqual({ read: a.read, inserted: a.inserted, updated: a.updated, unchanged: a.unchanged });
        expect(b.updated).toBe(25); // S2 d30–49 and S3 d0–4 changed
        expect(b.unchanged).toBe(20);
        expect(await contents(got)).toEqual(await contents(ref));
        expect((await got.getCheckpoint(`t:${file}`))!.cursor).toEqual((await ref.getCheckpoint(`t:${file}`))!.cursor);
      } finally {
        await ref.close();
        await got.close();
      }
    }
  }, 120_000);

  test("a failing batch: it and every batch after it leave nothing, the checkpoint stays before it", async () => {
    const store = pg.open(pg.freshUrl(dir));
    try {
      await store.migrate();
      const run = await store.startRun({ kind: "ingest", source: "t" });
      const bar = (d: number, open: number) => ({ source: "t", symbol: "A.US", interval: "1d" as const, ts: Date.UTC(2024, 0, 1 + d), open, high: open + 1, low: open - 1, close: open, volume: 1 });
      const cp = (n: number) => ({ stream: "t:s", cursor: { n }, lastTs: null, lastKey: null });
      // Sent together, as the engine does: the second is refused by the database (NOT NULL), so
      // the third, already in flight, must not commit either.
      const first = store.commitBatch({ runId: run, source: "t", bars: [bar(1, 10), bar(2, 11)], quarantine: [], read: 2, checkpoint: cp(1) });
      const second = store.commitBatch({ runId: run, source: "t", bars: [bar(3, 12), { ...bar(4, 13), open: null as unknown as number }], quarantine: [], read: 2, checkpoint: cp(2) });
      const third = store.commitBatch({ runId: run, source: "t", bars: [bar(5, 14)], quarantine: [], read: 1, checkpoint: cp(3) });
      const [r1, r2, r3] = await Promise.allSettled([first, second, third]);
      expect(r1.status).toBe("fulfilled");
      expect(r2.status).toBe("rejected");
      expect(r3.status).toBe("rejected");
      expect(await store.countBars()).toBe(2);
      expect((await store.getCheckpoint("t:s"))!.cursor).toEqual({ n: 1 });
      expect((await store.getRun(run))!.read).toBe(2);
    } finally {
      await store.close();
    }
  });
});
