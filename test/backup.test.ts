// Backup → destroy the store → restore → equal, through the real CLI, for SQLite and for a real
// PostgreSQL (pg_dump / pg_restore); a damaged backup is refused before anything is replaced.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import postgres from "postgres";
import { cli, tempDir, waitFor } from "./helpers.ts";
import { STORES, storeDigest } from "./stores.ts";
import { benchBars } from "../scripts/bench/pocketbase.ts";
import { openStore } from "../src/stores/open.ts";
import type { Store } from "../src/stores/types.ts";
import { parsePgUrl } from "../src/stores/postgres/index.ts";
import { auditEntry, redactParams } from "../src/monitor/audit.ts";
import { backupStore } from "../src/monitor/backup.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-backup-");

async function fill(store: Store) {
  await store.migrate();
  const run = await store.startRun({ kind: "ingest", source: "test" });
  const bars = benchBars(3);
  await store.commitBatch({
    runId: run,
    source: "test",
    bars,
    read: bars.length + 1,
    quarantine: [{ locator: "f.csv:9", rule: "high", reason: "high below low", raw: { high: "1" }, symbol: "ABE.WA", ts: bars[0]!.ts }],
    checkpoint: { stream: "f.csv", cursor: { offset: 1234 }, lastTs: bars[bars.length - 1]!.ts, lastKey: "x" },
  });
  await store.finishRun(run, { outcome: "succeeded", read: bars.length, inserted: bars.length, updated: 0, unchanged: 0, quarantined: 1, fromTs: null, toTs: null, quality: null });
}


for (const kind of STORES.filter((k) => k.kind !== "questdb"))
  describe.skipIf(kind.unavailable !== null)(`${kind.kind} backup and restore`, () => {
    test("backup, destroy, restore: equal; a damaged backup or an existing store is refused", async () => {
      const url = kind.freshUrl(dir);
      const s = kind.open(url);
      await fill(s);
      await s.close();
      const before = await storeDigest(url);
      const out = join(dir, `backups-${kind.kind}-${Date.now()}`);
      const b = await cli(["backup", "--store", url, "--out", out, "--json"]);
      expect(b.code, b.stderr).toBe(0);
      const manifest = JSON.parse(b.stdout);
      expect(manifest).toMatchObject({ format: "ticksync-backup/1", kind: kind.kind, counts: { bars: 1095, series: 3, quarantine: 1, checkpoints: 1, runs: 1 } });
      expect(manifest.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(manifest.store).not.toContain("password");

      // Destroy the store.
      if (kind.kind === "sqlite") {
        const path = url.slice("sqlite:".length);
        for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
      } else {
        const { url: conn, schema } = parsePgUrl(url);
        const sql = postgres(conn, { max: 1, onnotice: () => {} });
        await sql.unsafe(`DROP SCHEMA "${schema}" CASCADE`);
        await sql.end();
      }

      // A damaged backup file: refused, nothing replaced (for SQLite nothing is even created).
      const file = join(out, manifest.file);
      const good = readFileSync(file);
      const bad = Buffer.from(good);
      bad[bad.length >> 1] = bad[bad.length >> 1]! ^ 0xff;
      writeFileSync(file, bad);
      const refused = await cli(["restore", "--from", manifest.manifest, "--to", url]);
      expect(refused.code).toBe(6);
      expect(refused.stderr).toContain("does not match the manifest");
      if (kind.kind === "sqlite") expect(existsSync(url.slice("sqlite:".length))).toBe(false);
      writeFileSync(file, good);

      const r = await cli(["restore", "--from", manifest.manifest, "--to", url, "--json"]);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).counts).toEqual(manifest.counts);
      expect(await storeDigest(url)).toBe(before);
      // The audit trail of the restored store: the restore, started from the CLI.
      const audited = openStore(url);
      const runs = (await audited.listRuns({ limit: 10 })).map(auditEntry);
      await audited.close();
      expect(runs[0]).toMatchObject({ kind: "restore", outcome: "succeeded", startedBy: { by: "cli", command: "restore --from" }, params: { sha256: manifest.sha256 } });

      // Restoring over a store that exists needs --force.
      const again = await cli(["restore", "--from", manifest.manifest, "--to", url]);
      expect(again.code).toBe(2);
      expect(again.stderr).toContain("--force");
      const forced = await cli(["restore", "--from", manifest.manifest, "--to", url, "--force"]);
      expect(forced.code, forced.stderr).toBe(0);
      expect(await storeDigest(url)).toBe(before);
    });
  });

test("--keep leaves the newest backups only", async () => {
  const url = `sqlite:${join(dir, "keep.db")}`;
  const s = openStore(url);
  await fill(s);
  await s.close();
  const out = join(dir, "keep");
  const manifests = () => readdirSync(out).filter((f) => f.endsWith(".json")).sort();
  const made: string[] = [];
  for (let i = 0; i < 3; i++) {
    // Names carry the second: the next backup waits for a second that has no backup yet.
    if (i > 0) await waitFor(() => !made.includes(`ticksync-${new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}.json`), 5000, "the next second");
    const before = new Set(existsSync(out) ? manifests() : []);
    expect((await cli(["backup", "--store", url, "--out", out, "--keep", "2"])).code).toBe(0);
    made.push(...manifests().filter((m) => !before.has(m)));
  }
  expect(made.length).toBe(3);
  expect(manifests()).toEqual(made.slice(1));
  expect(readdirSync(out).filter((f) => f.endsWith(".db.gz")).sort()).toEqual(made.slice(1).map((m) => m.replace(".json", ".db.gz")));
});

test("backups within the same second all stay, numbered; --keep counts them newest last", async () => {
  const url = `sqlite:${join(dir, "same-second.db")}`;
  const s = openStore(url);
  await fill(s);
  await s.close();
  const out = join(dir, "same-second");
  const now = new Date("2026-12-06T07:00:00.250Z");
  const names: string[] = [];
  for (let i = 0; i < 3; i++) names.push(basename((await backupStore(url, out, { now })).manifestPath));
  expect(names).toEqual(["ticksync-20261206T070000Z.json", "ticksync-20261206T070000Z-2.json", "ticksync-20261206T070000Z-3.json"]);
  expect(readdirSync(out).filter((f) => f.endsWith(".db.gz")).length).toBe(3);
  // A later second's backup is newer than all three; keep 2 leaves it and the third.
  const later = await backupStore(url, out, { now: new Date("2026-12-06T07:00:01Z"), keep: 2 });
  expect(later.removed.sort()).toEqual(names.slice(0, 2).sort());
  expect(readdirSync(out).filter((f) => f.endsWith(".json")).sort()).toEqual(["ticksync-20261206T070000Z-3.json", "ticksync-20261206T070001Z.json"]);
});

test("--keep removes only backups of the same kind and store: another kind's, another store's and unreadable manifests stay", async () => {
  const url = `sqlite:${join(dir, "keep-kinds.db")}`;
  const s = openStore(url);
  await fill(s);
  await s.close();
  const out = join(dir, "keep-kinds");
  const first = await backupStore(url, out, { now: new Date("2026-12-06T07:00:00Z") });
  const base = JSON.parse(readFileSync(first.manifestPath, "utf8"));
  // Older than everything: a Pocketbase sink's backup, another store's, and a manifest that is not JSON.
  writeFileSync(join(out, "ticksync-20261206T060000Z.json"), JSON.stringify({ ...base, kind: "pocketbase", file: "ticksync-app-x.zip" }));
  writeFileSync(join(out, "ticksync-20261206T060001Z.json"), JSON.stringify({ ...base, store: "sqlite:/elsewhere/other.db" }));
  writeFileSync(join(out, "ticksync-20261206T060002Z.json"), "{ not json");
  const later = await backupStore(url, out, { now: new Date("2026-12-06T07:00:01Z"), keep: 1 });
  expect(later.removed).toEqual([basename(first.manifestPath)]);
  expect(readdirSync(out).filter((f) => f.endsWith(".json")).sort()).toEqual([
    "ticksync-20261206T060000Z.json",
    "ticksync-20261206T060001Z.json",
    "ticksync-20261206T060002Z.json",
    "ticksync-20261206T070001Z.json",
  ]);
});

test("audit parameters never carry secrets", () => {
  expect(
    redactParams({ url: "postgres://ticksync:s3cret@db:5432/x", sinks: { app: { password: "pw", email: "a@b.c" } }, href: "https://x/q?apikey=K1&symbol=A", token: null }),
  ).toEqual({ url: "postgres://ticksync:***@db:5432/x", sinks: { app: { password: "***", email: "a@b.c" } }, href: "https://x/q?apikey=***&symbol=A", token: null });
});
