// Incremental backups against real SQLite files and the real PostgreSQL, through the CLI: full →
// inserts, updates, single-bar deletes and retention's deletes → increment → more → increment →
// restore into a fresh store equals the source; each kind of broken chain is refused with one
// line and exit 6 before anything is replaced; pruning keeps chains whole.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import postgres from "postgres";
import { cli, tempDir } from "./helpers.ts";
import { parsePgUrl } from "../src/stores/postgres/index.ts";
import { STORES, storeDigest } from "./stores.ts";
import { benchBars } from "../scripts/bench/pocketbase.ts";
import { openStore } from "../src/stores/open.ts";
import type { Bar } from "../src/domain/bar.ts";
import type { Store } from "../src/stores/types.ts";
import { backupStore, listBackups, restoreStore } from "../src/monitor/backup.ts";
import { COPY_LIMITS } from "../src/stores/postgres/backup-incremental.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-backup-inc-");

async function commit(store: Store, bars: Bar[], stream: string) {
  const run = await store.startRun({ kind: "ingest", source: "test" });
  await store.commitBatch({ runId: run, source: "bench", bars, read: bars.length, quarantine: [], checkpoint: { stream, cursor: { n: bars.length }, lastTs: bars[bars.length - 1]!.ts, lastKey: "k" } });
  await store.finishRun(run, { outcome: "succeeded", read: bars.length, inserted: bars.length, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
  return run;
}

const DAY = 86_400_000;
const all = benchBars(4);
const first = all.filter((b) => b.symbol !== all[all.length - 1]!.symbol);
const lastSymbol = all.filter((b) => b.symbol === all[all.length - 1]!.symbol);


async function dropSchema(url: string) {
  const { url: conn, schema } = parsePgUrl(url);
  const sql = postgres(conn, { max: 1, onnotice: () => {} });
  await sql.unsafe(`DROP SCHEMA "${schema}" CASCADE`);
  await sql.end();
}

async function backup(url: string, out: string, ...flags: string[]) {
  const r = await cli(["backup", "--store", url, "--out", out, "--json", ...flags]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

for (const kind of STORES.filter((k) => k.kind !== "questdb"))
  describe.skipIf(kind.unavailable !== null)(`${kind.kind} incremental backups`, () => {
    test("full → changes → increment → changes → increment → restore equals the source; broken chains refused", async () => {
      const url = kind.freshUrl(dir);
      const out = join(dir, `chain-${kind.kind}-${Date.now()}`);
      const s = kind.open(url);
      await s.migrate();
      await commit(s, first.slice(0, 600), "a");
      await s.close();
      const full = await backup(url, out);
      expect(full).toMatchObject({ mode: "full", sequence: 0, positions: { from: 0 } });
      expect(full.digest.sha256).toMatch(/^[0-9a-f]{64}$/);

      // More bars, some changed, some deleted one by one (journaled) and some by retention (not).
      const s2 = kind.open(url);
      await commit(s2, first.slice(600), "b");
      const changed = first.slice(10, 20).map((b) => ({ ...b, close: b.close + 1, high: Math.max(b.high, b.close + 1) }));
      const run = await commit(s2, changed, "c");
      await s2.deleteBarKeys!({ runId: run, source: "bench", keys: first.slice(100, 105).map((b) => ({ symbol: b.symbol, interval: b.interval, ts: b.ts })) });
      expect(await s2.deleteBars!({ interval: "1d", before: first[0]!.ts + 3 * DAY })).toBeGreaterThan(0);
      await s2.close();
      const inc1 = await backup(url, out, "--incremental");
      expect(inc1).toMatchObject({ mode: "incremental", sequence: 1, parent: { name: basename(full.manifest) }, positions: { from: full.positions.to } });
      expect(inc1.changed).toBeGreaterThan(0);
      expect(inc1.positions.to).toBeGreaterThan(inc1.positions.from);

      // A new series, one more delete; then an increment of nothing changed.
      const s3 = kind.open(url);
      const run3 = await commit(s3, lastSymbol, "d");
      await s3.deleteBarKeys!({ runId: run3, source: "bench", keys: [first[300]!].map((b) => ({ symbol: b.symbol, interval: b.interval, ts: b.ts })) });
      await s3.close();
      const inc2 = await backup(url, out, "--incremental");
      expect(inc2).toMatchObject({ sequence: 2, parent: { name: basename(inc1.manifest) }, positions: { from: inc1.positions.to } });
      const inc3 = await backup(url, out, "--incremental");
      expect(inc3).toMatchObject({ sequence: 3, changed: 0 });
      // An increment is smaller than the full backup it follows.
      expect(inc3.bytes).toBeLessThan(full.bytes);

      const source = await storeDigest(url);
      // pg_restore puts the schema back under its own name: the source's, dropped first.
      const target = kind.kind === "postgres" ? url : kind.freshUrl(dir);
      if (kind.kind === "postgres") await dropSchema(url);
      const r = await cli(["restore", "--from", inc3.manifest, "--to", target, "--json"]);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).counts).toEqual(inc3.counts);
      expect(await storeDigest(target)).toBe(source);
      // Restoring the middle of the chain gives the store as it was then.
      const mid = await cli(["restore", "--from", inc1.manifest, "--to", target, "--force", "--json"]);
      expect(mid.code, mid.stderr).toBe(0);
      expect(JSON.parse(mid.stdout).counts).toEqual(inc1.counts);

      // Each kind of broken chain: one line, exit 6, the target untouched (a fresh one not made).
      const refused = async (what: string) => {
        const fresh = kind.freshUrl(dir);
        const x = await cli(["restore", "--from", inc3.manifest, "--to", fresh]);
        expect(x.code, x.stderr).toBe(6);
        expect(x.stderr.trim().split("\n").length).toBe(1);
        expect(x.stderr).toContain(what);
        if (kind.kind === "sqlite") expect(existsSync(fresh.slice("sqlite:".length))).toBe(false);
      };
      const tamper = async (path: string, what: string, edit: (b: Buffer) => Buffer) => {
        const good = readFileSync(path);
        writeFileSync(path, edit(Buffer.from(good)));
        try {
          await refused(what);
        } finally {
          writeFileSync(path, good);
        }
      };
      // A tampered increment file.
      await tamper(join(out, inc1.file), "does not match the manifest", (b) => ((b[b.length >> 1] = b[b.length >> 1]! ^ 0xff), b));
      // A parent manifest changed after its child recorded its checksum.
      await tamper(inc1.manifest, "broken chain", (b) => Buffer.from(b.toString().replace(`"changed": ${inc1.changed}`, `"changed": ${inc1.changed + 1}`)));
      // A gap in the journal positions.
      await tamper(inc3.manifest, "covers the journal from", (b) => Buffer.from(b.toString().replace(`"from": ${inc3.positions.from}`, `"from": ${inc3.positions.from + 1}`)));
      // A missing link.
      renameSync(inc2.manifest, `${inc2.manifest}.away`);
      try {
        await refused("is missing");
      } finally {
        renameSync(`${inc2.manifest}.away`, inc2.manifest);
      }
      // Still whole after all that.
      const again = await cli(["restore", "--from", inc3.manifest, "--to", target, "--force"]);
      expect(again.code, again.stderr).toBe(0);
      expect(await storeDigest(target)).toBe(source);

      // An increment cannot be made without a usable parent: say so, make a full one instead.
      const digest = join(out, inc3.digest.file);
      const good = readFileSync(digest);
      rmSync(digest);
      const noParent = await cli(["backup", "--store", url, "--out", out, "--incremental"]);
      writeFileSync(digest, good);
      expect(noParent.code).toBe(6);
      expect(noParent.stderr).toContain("cannot make an increment: the digests file");
      expect(noParent.stderr).toContain("make a full backup");
      const empty = await cli(["backup", "--store", url, "--out", join(out, "empty"), "--incremental"]);
      expect(empty.code).toBe(6);
      expect(empty.stderr).toContain("no earlier backup");
    });
  });

const pg = STORES.find((k) => k.kind === "postgres")!;
test.skipIf(pg.unavailable !== null)("postgres increments COPY in small pieces (bars in groups, tables by pages, journal by ranges) and still restore equal", async () => {
  const saved = { ...COPY_LIMITS };
  Object.assign(COPY_LIMITS, { rows: 40, pages: 1, batches: 1 });
  try {
    const url = pg.freshUrl(dir);
    const out = join(dir, `pieces-${Date.now()}`);
    const s = pg.open(url);
    await s.migrate();
    for (let i = 0; i < 4; i++) await commit(s, first.slice(i * 100, i * 100 + 100), `p${i}`);
    await s.close();
    const full = await backupStore(url, out, { now: new Date("2026-12-06T08:00:00Z") });
    const s2 = pg.open(url);
    for (let i = 4; i < 9; i++) await commit(s2, first.slice(i * 100, i * 100 + 100), `p${i}`);
    await commit(s2, first.slice(0, 50).map((b) => ({ ...b, volume: b.volume + 7 })), "u");
    await s2.close();
    const inc = await backupStore(url, out, { incremental: true, now: new Date("2026-12-06T08:00:01Z") });
    expect(inc.manifest).toMatchObject({ mode: "incremental", parent: { name: basename(full.manifestPath) } });
    expect(inc.manifest.changed!).toBeGreaterThan(1);
    const source = await storeDigest(url);
    await dropSchema(url);
    const r = await restoreStore(inc.manifestPath, url);
    expect(r.counts).toEqual(inc.manifest.counts);
    expect(await storeDigest(url)).toBe(source);
  } finally {
    Object.assign(COPY_LIMITS, saved);
  }
});

test("the job's incremental backups: full when there is none to follow and every N; prune keeps chains whole", async () => {
  const url = `sqlite:${join(dir, "job.db")}`;
  const s = openStore(url);
  await s.migrate();
  await commit(s, first.slice(0, 100), "a");
  await s.close();
  const out = join(dir, "job");
  const opts = { incremental: { fallback: true, fullEvery: 2 } };
  const at = (sec: number) => new Date(Date.UTC(2026, 11, 6, 7, 0, sec));
  const made: Awaited<ReturnType<typeof backupStore>>[] = [];
  for (let i = 0; i < 5; i++) {
    const w = openStore(url);
    await commit(w, first.slice(100 + i * 10, 110 + i * 10), `a${i}`);
    await w.close();
    made.push(await backupStore(url, out, { ...opts, now: at(i) }));
  }
  expect(made.map((r) => r.manifest.mode)).toEqual(["full", "incremental", "incremental", "full", "incremental"]);
  expect(made[0]!.fullBecause).toContain("no earlier backup");
  expect(made[3]!.fullBecause).toContain("full backup every 2");
  // keep 1: the newest (an increment) and the full backup it follows stay; the older chain goes.
  const w = openStore(url);
  await commit(w, first.slice(200, 210), "b");
  await w.close();
  const last = await backupStore(url, out, { ...opts, keep: 1, now: at(10) });
  expect(last.manifest).toMatchObject({ mode: "incremental", sequence: 2 });
  const names = (i: number) => basename(made[i]!.manifestPath);
  expect(last.removed.sort()).toEqual([names(0), names(1), names(2)].sort());
  expect(listBackups(out).map((b) => b.name)).toEqual([basename(last.manifestPath), names(4), names(3)]);
  // Every file a kept manifest names is there; nothing of the removed ones is.
  for (const b of listBackups(out)) for (const f of [b.manifest!.file, b.manifest!.digest!.file]) expect(existsSync(join(out, f))).toBe(true);
  for (const i of [0, 1, 2]) expect(existsSync(join(out, made[i]!.manifest.file))).toBe(false);
  const target = `sqlite:${join(dir, "job-restored.db")}`;
  const r = await cli(["restore", "--from", last.manifestPath, "--to", target]);
  expect(r.code, r.stderr).toBe(0);
  expect(await storeDigest(target)).toBe(await storeDigest(url));
});
