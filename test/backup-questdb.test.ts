// The QuestDB store's backup (a checksummed export of its tables) and restore into a fresh set of
// tables (another prefix), through the real CLI against the real QuestDB: counts, checksums and
// the stored values come back exactly, control characters, backslashes and empty strings included;
// a damaged file and existing tables are refused.
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import { cli, tempDir } from "./helpers.ts";
import { QDB_PG_URL, STORES, storeDigest } from "./stores.ts";
import { benchBars } from "../scripts/bench/pocketbase.ts";
import { openStore } from "../src/stores/open.ts";
import { csvFields, RowSum } from "../src/monitor/backup-questdb.ts";
import { testTimeout } from "./timeout.ts";
import { QDB_SCHEMA_VERSION } from "../src/stores/questdb/schema.ts";
import { backupJob } from "../src/scheduler/jobs/backup.ts";
import type { JobContext } from "../src/scheduler/jobs/kind.ts";

testTimeout();

const qdb = STORES.find((s) => s.kind === "questdb")!;
const dir = tempDir("ticksync-backup-questdb-");
const prefixes: string[] = [];
// Text a CSV export escapes (\n, \\, \u0001) or quotes, and an empty string beside a null.
const TRICKY = 'line\nbreak, "quoted" back\\slash \\n tab\t ctl\u0001 ünï 😀';


/** Rows of a table as stored, by a query over its prefixed name. */
async function rowsOf(prefix: string, query: (t: (name: string) => string) => string) {
  const sql = postgres(QDB_PG_URL!, { max: 1, fetch_types: false, onnotice: () => {} });
  try {
    return [...(await sql.unsafe(query((name) => `"${prefix}${name}"`)))] as Record<string, unknown>[];
  } finally {
    await sql.end();
  }
}

const prefixOf = (url: string) => new URL(url).searchParams.get("prefix")!;

afterAll(async () => {
  if (qdb.unavailable) return;
  const sql = postgres(QDB_PG_URL!, { max: 1, fetch_types: false, onnotice: () => {} });
  for (const p of prefixes) for (const r of await sql`SELECT table_name FROM tables()`) if (String(r.table_name).startsWith(p)) await sql.unsafe(`DROP TABLE IF EXISTS "${r.table_name}"`);
  await sql.end();
});

test("csvFields reads QuestDB's export: quotes doubled, escapes undone, empty unquoted is null", () => {
  const out: (string | null)[] = [];
  const n = csvFields('"a""b",,"",1.5,"x\\ny\\\\z\\u0001",q', out);
  expect(out.slice(0, n)).toEqual(['a"b', null, "", "1.5", "x\ny\\z\u0001", "q"]);
  expect(csvFields("", out)).toBe(1);
  expect(out[0]).toBeNull();
  expect(() => csvFields('"open', out)).toThrow("does not end");
});

test("RowSum: rows and a checksum independent of row order and of chunking", () => {
  const sum = (text: string, cut: number) => {
    const s = new RowSum();
    const b = new TextEncoder().encode(text);
    s.update(b.subarray(0, cut));
    s.update(b.subarray(cut));
    return [s.rows, s.checksum];
  };
  const a = sum('"h"\r\n1,"x"\r\n2,"y"\r\n', 9);
  expect(a).toEqual(sum('"h"\r\n2,"y"\r\n1,"x"\r\n', 3));
  expect(a[0]).toBe(2);
  const cut = new RowSum();
  cut.update(new TextEncoder().encode('"h"\r\n1,"x"\r\n2,"y'));
  expect(cut.complete).toBe(false);
  expect(sum('"h"\r\n1,"x"\r\n2,"z"\r\n', 9)[1]).not.toBe(a[1]);
});

describe.skipIf(qdb.unavailable !== null)("QuestDB store backup and restore", () => {
  test("backup, restore into another prefix: equal; a damaged file or existing tables are refused", async () => {
    const url = qdb.freshUrl(dir);
    prefixes.push(prefixOf(url));
    const s = openStore(url);
    await s.migrate();
    const run = await s.startRun({ kind: "ingest", source: "test", params: { note: TRICKY } });
    const bars = benchBars(3);
    await s.commitBatch({
      runId: run,
      source: "test",
      bars,
      read: bars.length + 1,
      quarantine: [{ locator: "f.csv:9", rule: "high", reason: TRICKY, raw: { high: "1" }, symbol: "ABE.WA", ts: bars[0]!.ts }],
      checkpoint: { stream: "f.csv", cursor: { offset: 1234 }, lastTs: bars[bars.length - 1]!.ts, lastKey: "x" },
    });
    await s.finishRun(run, { outcome: "failed", read: bars.length, inserted: bars.length, updated: 0, unchanged: 0, quarantined: 1, fromTs: null, toTs: null, quality: null, error: "" });
    await s.close();
    const before = await storeDigest(url);

    const out = join(dir, "qdb");
    const b = await cli(["backup", "--store", url, "--out", out, "--json"]);
    expect(b.code, b.stderr).toBe(0);
    const manifest = JSON.parse(b.stdout);
    expect(manifest).toMatchObject({ format: "ticksync-backup/1", kind: "questdb", schemaVersion: QDB_SCHEMA_VERSION, counts: { bars: 1095, quarantine: 1, runs: 1 } });
    expect(manifest.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.store).not.toContain(`:${new URL(QDB_PG_URL!).password}@`);
    expect(manifest.store).toContain(":***@");
    expect(manifest.tables.map((t: { name: string }) => t.name)).toContain("progress");

    const target = qdb.freshUrl(dir);
    prefixes.push(prefixOf(target));
    // A damaged backup file: refused before a table is made.
    const file = join(out, manifest.file);
    const good = readFileSync(file);
    const bad = Buffer.from(good);
    bad[bad.length >> 1] = bad[bad.length >> 1]! ^ 0xff;
    writeFileSync(file, bad);
    const refused = await cli(["restore", "--from", manifest.manifest, "--to", target]);
    expect(refused.code).toBe(6);
    expect(refused.stderr).toContain("does not match the manifest");
    writeFileSync(file, good);
    // A manifest edited to smuggle SQL in: refused before a table is made.
    const hostile = join(out, "hostile.json");
    writeFileSync(hostile, JSON.stringify({ ...manifest, tables: [{ ...manifest.tables[0], name: 'bars" (x INT); --' }] }));
    const smuggled = await cli(["restore", "--from", hostile, "--to", target]);
    expect(smuggled.code).toBe(1);
    expect(smuggled.stderr).toContain("is not one this backup makes");

    const r = await cli(["restore", "--from", manifest.manifest, "--to", target, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).counts).toEqual(manifest.counts);
    expect(await storeDigest(target)).toBe(before);
    // The audit trail: the backup in the store backed up, the restore in the restored one.
    const audit = (t: (n: string) => string) => `SELECT kind, source, outcome FROM ${t("runs")} WHERE kind IN ('backup', 'restore')`;
    expect(await rowsOf(prefixOf(url), audit)).toEqual([{ kind: "backup", source: "questdb", outcome: "succeeded" }]);
    expect(await rowsOf(prefixOf(target), audit)).toEqual([{ kind: "restore", source: "questdb", outcome: "succeeded" }]);
    const runs = (t: (n: string) => string) => `SELECT id, kind, source, params, owner, started_at, outcome, error, read FROM ${t("runs")} WHERE kind = 'ingest' ORDER BY id`;
    const restoredRuns = await rowsOf(prefixOf(target), runs);
    expect(restoredRuns).toEqual(await rowsOf(prefixOf(url), runs));
    expect(JSON.parse(String(restoredRuns[0]!.params)).note).toBe(TRICKY);
    expect(restoredRuns[0]!.error).toBe("");
    const quarantine = (t: (n: string) => string) => `SELECT id, reason, raw, ts FROM ${t("quarantine")}`;
    const restoredQuarantine = await rowsOf(prefixOf(target), quarantine);
    expect(restoredQuarantine).toEqual(await rowsOf(prefixOf(url), quarantine));
    expect(restoredQuarantine[0]!.reason).toBe(TRICKY);

    // Tables that exist are replaced only with --force.
    const again = await cli(["restore", "--from", manifest.manifest, "--to", target]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("--force");
    const forced = await cli(["restore", "--from", manifest.manifest, "--to", target, "--force"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(await storeDigest(target)).toBe(before);
  });

  test("the backup job of a QuestDB store exports it; keep = 1 leaves the newest", async () => {
    const url = qdb.freshUrl(dir);
    prefixes.push(prefixOf(url));
    const s = openStore(url);
    await s.migrate();
    await s.close();
    const ctx = { sinks: new Map(), settings: { baseDir: dir }, storeUrl: url, signal: new AbortController().signal } as unknown as JobContext;
    const run = backupJob.create({ name: "qdb", dir: "qdb-job", keep: 1 }, ctx);
    expect(await run()).toEqual({ outcome: "succeeded" });
    expect(await run()).toEqual({ outcome: "succeeded" });
    const files = readdirSync(join(dir, "qdb-job")).sort();
    expect(files.length).toBe(2);
    const manifest = JSON.parse(readFileSync(join(dir, "qdb-job", files.find((f) => f.endsWith(".json"))!), "utf8"));
    expect(manifest).toMatchObject({ kind: "questdb", counts: { bars: 0 } });
    expect(files).toContain(manifest.file);
  });
});
