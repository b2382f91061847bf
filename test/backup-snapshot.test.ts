// Backups made while the service writes, against real SQLite files and the real PostgreSQL: a
// writer in this process keeps committing batches (new bars, updated bars) while the CLI (its own
// process) makes a full backup and then an increment. Each manifest's counts and bar checksum
// must describe exactly what its backup holds: restoring the full backup, and the chain, passes
// its own check (exit 0), and the bar count is one the store had between two batches.
// (Before the counts were read in the backup's snapshot, a write between them and the dump made
// the restore report a difference, exit 6.)
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cli, tempDir } from "./helpers.ts";
import { STORES } from "./stores.ts";
import type { Bar } from "../src/domain/bar.ts";
import type { Store } from "../src/stores/types.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-backup-snap-");
const MIN = 60_000;
const T0 = Date.parse("2024-01-02T00:00:00Z");

const bar = (symbol: string, i: number, bump = 0): Bar => {
  const p = 100 + (i % 50) + bump;
  return { source: "w", symbol, interval: "1m", ts: T0 + i * MIN, open: p, high: p + 1, low: p - 1, close: p, volume: 1000 + i };
};

async function commit(store: Store, bars: Bar[], stream: string) {
  const run = await store.startRun({ kind: "ingest", source: "w" });
  await store.commitBatch({ runId: run, source: "w", bars, read: bars.length, quarantine: [], checkpoint: { stream, cursor: { n: bars.length }, lastTs: bars[bars.length - 1]!.ts, lastKey: "k" } });
  await store.finishRun(run, { outcome: "succeeded", read: bars.length, inserted: bars.length, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
}

/**
 * Commits batches until stopped, alternately new bars (of a symbol of its own) and updates of the
 * first ones; `totals` holds the store's bar count after each batch (batches are atomic, so a
 * snapshot's count is one of them).
 */
function writer(store: Store, base: number) {
  const totals = new Set<number>([base]);
  let stop = false;
  let batches = 0;
  const done = (async () => {
    let total = base;
    for (let n = 0; !stop; n++) {
      if (n % 2 === 0) {
        await commit(store, Array.from({ length: 50 }, (_, k) => bar("NEW", n * 50 + k)), "new");
        total += 50;
      } else await commit(store, Array.from({ length: 50 }, (_, k) => bar("OLD", k, n)), "upd");
      totals.add(total);
      batches++;
      await Bun.sleep(1);
    }
  })();
  return {
    totals,
    batches: () => batches,
    stop: async () => {
      stop = true;
      await done;
    },
  };
}

async function run(args: string[]) {
  const r = await cli([...args, "--json"]);
  return { ...r, json: r.code === 0 ? JSON.parse(r.stdout) : null };
}

const manifestOf = (path: string) => JSON.parse(readFileSync(path, "utf8")) as { counts: { bars: number }; barsChecksum: string; mode: string };

for (const kind of STORES.filter((k) => k.kind !== "questdb"))
  describe.skipIf(kind.unavailable !== null)(`${kind.kind} backups while the service writes`, () => {
    test("full backup and increment made during writes: each restore (and the chain) passes its check and holds a batch boundary", async () => {
      const url = kind.freshUrl(dir);
      const out = join(dir, `snap-${kind.kind}-${Date.now()}`);
      const store = kind.open(url);
      await store.migrate();
      // Enough bars that reading them for the counts takes a while: writes land in between.
      const initial = 20_000;
      for (let i = 0; i < initial; i += 5000) await commit(store, Array.from({ length: 5000 }, (_, k) => bar("OLD", i + k)), "init");
      const w = writer(store, initial);
      let full, inc;
      try {
        const before = w.batches();
        full = await run(["backup", "--store", url, "--out", out]);
        expect(full.code, full.stderr).toBe(0);
        inc = await run(["backup", "--store", url, "--out", out, "--incremental"]);
        expect(inc.code, inc.stderr).toBe(0);
        // The test means something only when the writer committed while the backups ran.
        expect(w.batches() - before).toBeGreaterThan(4);
      } finally {
        await w.stop();
        await store.close();
      }
      expect(inc.json.mode).toBe("incremental");
      for (const made of [full.json, inc.json]) {
        const m = manifestOf(made.manifest);
        expect(w.totals.has(m.counts.bars), `${m.mode} backup's ${m.counts.bars} bars is no batch boundary`).toBe(true);
        // pg_restore puts the schema back under its own name: the source's, replaced (--force).
        const target = kind.kind === "postgres" ? url : kind.freshUrl(dir);
        const r = await run(["restore", "--from", made.manifest, "--to", target, "--force"]);
        expect(r.code, `${m.mode}: ${r.stderr}`).toBe(0);
        expect(r.json.counts).toEqual(m.counts);
        expect(r.json.barsChecksum).toBe(m.barsChecksum);
      }
    });
  });
