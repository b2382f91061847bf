// Pocketbase backups through its own backup API, against a real Pocketbase server of this test's
// own (restoring restarts it, which must not disturb the shared one): backup → change and delete
// records → restore through the API → the records are back; the zip's sha256 and the records per
// collection are in the manifest; --keep prunes here and on the server; a damaged zip, a restore
// without --force, and the superuser password never show in any output.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import PocketBase from "pocketbase";
import { cli, pocketbaseForTests, tempDir, waitFor } from "./helpers.ts";
import { startPocketbase, type PocketbaseInstance } from "../scripts/services/pocketbase-instance.ts";
import { testTimeout } from "./timeout.ts";
import { parseConfig } from "../src/config/load.ts";
import { backupJob } from "../src/scheduler/jobs/backup.ts";
import type { JobContext } from "../src/scheduler/jobs/kind.ts";
import { createSink } from "../src/sinks/registry.ts";
import { openStore } from "../src/stores/open.ts";
import { auditEntry } from "../src/monitor/audit.ts";

testTimeout();

const { bin } = pocketbaseForTests("backup-pocketbase.test.ts");
const dir = tempDir("ticksync-backup-pb-");
let pb: PocketbaseInstance;
let client: PocketBase;
let config: string;

const stamp = () => new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");

test("config: a backup job's sink must be defined, and backup jobs need dirs of their own", () => {
  const sinks = { app: { type: "pocketbase", url: "http://127.0.0.1:1", email: "a@b.c", password: "secret-pass" } };
  expect(() => parseConfig({ sinks, jobs: [{ name: "b", kind: "backup", sink: "nope" }] })).toThrow('sink "nope" is not defined in sinks (defined: app)');
  expect(() => parseConfig({ sinks, jobs: [{ name: "s", kind: "backup" }, { name: "p", kind: "backup", sink: "app" }] })).toThrow('backup jobs "s" and "p" both write to backups');
  const ok = parseConfig({ sinks, jobs: [{ name: "s", kind: "backup" }, { name: "p", kind: "backup", sink: "app", dir: "backups/pb", keep: 3 }] });
  expect(ok.jobs[1]).toMatchObject({ kind: "backup", sink: "app", dir: "backups/pb", keep: 3 });
});

describe.skipIf(bin === null)("Pocketbase backups through its backup API", () => {
  beforeAll(async () => {
    pb = await startPocketbase({ bin: bin! });
    client = new PocketBase(pb.url);
    client.autoCancellation(false);
    await client.collection("_superusers").authWithPassword(pb.email, pb.password);
    await client.collections.create({ name: "notes", type: "base", fields: [{ name: "text", type: "text" }] });
    for (let i = 0; i < 5; i++) await client.collection("notes").create({ id: `note${String(i).padStart(11, "0")}`, text: `note ${i}` });
    config = join(dir, "ticksync.json");
    // The credentials come from the environment, as the docs recommend; the config names the server.
    writeFileSync(config, JSON.stringify({ store: { url: `sqlite:${join(dir, "store.db")}` }, sinks: { app: { type: "pocketbase", url: pb.url, email: "set-by-env@x.y", password: "set-by-env" } } }));
  });
  afterAll(async () => {
    await pb?.destroy();
  });

  const env = () => ({ TICKSYNC_SINKS__APP__EMAIL: pb.email, TICKSYNC_SINKS__APP__PASSWORD: pb.password });
  const notes = async () => (await client.collection("notes").getFullList({ sort: "id" })).map((r) => [r.id, r.text]);

  test("backup, change and delete records, restore: the records are back", async () => {
    const before = await notes();
    const out = join(dir, "pb");
    const b = await cli(["backup", "--config", config, "--sink", "app", "--out", out, "--json"], { env: env() });
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout + b.stderr).not.toContain(pb.password);
    const manifest = JSON.parse(b.stdout);
    expect(manifest).toMatchObject({ format: "ticksync-backup/1", kind: "pocketbase", sink: "app", counts: { notes: 5, _superusers: 1 } });
    expect(manifest.sha256).toMatch(/^[0-9a-f]{64}$/);
    const zip = readFileSync(join(out, manifest.file));
    expect(zip.length).toBe(manifest.bytes);
    expect(new Bun.CryptoHasher("sha256").update(zip).digest("hex")).toBe(manifest.sha256);
    expect(zip.subarray(0, 2).toString()).toBe("PK");
    expect((await client.backups.getFullList()).map((x) => x.key)).toContain(manifest.key);

    await client.collection("notes").update("note00000000001", { text: "changed" });
    await client.collection("notes").delete("note00000000002");
    await client.collection("notes").create({ text: "new" });
    expect(await notes()).not.toEqual(before);

    // Without --force nothing happens; a damaged zip is refused before anything is sent.
    const noForce = await cli(["restore", "--config", config, "--from", manifest.manifest], { env: env() });
    expect(noForce.code).toBe(2);
    expect(noForce.stderr).toContain("--force");
    const good = Buffer.from(zip);
    const bad = Buffer.from(zip);
    bad[bad.length >> 1] = bad[bad.length >> 1]! ^ 0xff;
    writeFileSync(join(out, manifest.file), bad);
    const refused = await cli(["restore", "--config", config, "--from", manifest.manifest, "--force"], { env: env() });
    expect(refused.code).toBe(6);
    expect(refused.stderr).toContain("does not match the manifest");
    writeFileSync(join(out, manifest.file), good);
    expect((await notes()).length).toBe(5);

    const r = await cli(["restore", "--config", config, "--from", manifest.manifest, "--force", "--json"], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(pb.password);
    expect(JSON.parse(r.stdout).counts).toEqual(manifest.counts);
    await client.collection("_superusers").authWithPassword(pb.email, pb.password);
    expect(await notes()).toEqual(before);
    // The uploaded copy the restore used is gone from the server; the backup itself stays.
    const keys = (await client.backups.getFullList()).map((x) => x.key);
    expect(keys.filter((k) => k.startsWith("ticksync-restore-"))).toEqual([]);
    expect(keys).toContain(manifest.key);
    // The audit trail of the config's store: the backup and the restore, started from the CLI.
    const store = openStore(`sqlite:${join(dir, "store.db")}`);
    const runs = (await store.listRuns({ limit: 10 })).map(auditEntry);
    await store.close();
    expect(runs.map((x) => [x.kind, x.source, x.outcome])).toEqual([
      ["restore", "pocketbase", "succeeded"],
      ["backup", "pocketbase", "succeeded"],
    ]);
    expect(runs[0]).toMatchObject({ startedBy: { by: "cli" }, params: { sink: "app", sha256: manifest.sha256 } });
    expect(JSON.stringify(runs)).not.toContain(pb.password);
  });

  test("--keep keeps the newest N here and of its own on the server", async () => {
    const out = join(dir, "keep");
    await client.backups.create("someone-elses.zip");
    const made: string[] = [];
    for (let i = 0; i < 3; i++) {
      // Names carry the second: the next backup waits for a second that has none yet.
      if (i > 0) await waitFor(() => !made.some((m) => m.includes(stamp().toLowerCase())), 5000, "the next second");
      const b = await cli(["backup", "--config", config, "--sink", "app", "--out", out, "--keep", "2", "--json"], { env: env() });
      expect(b.code, b.stderr).toBe(0);
      made.push(JSON.parse(b.stdout).key);
    }
    expect(readdirSync(out).filter((f) => f.endsWith(".zip")).length).toBe(2);
    expect(readdirSync(out).filter((f) => f.endsWith(".json")).length).toBe(2);
    const keys = (await client.backups.getFullList()).map((x) => x.key);
    expect(keys).toContain("someone-elses.zip");
    expect(keys.filter((k) => k.startsWith("ticksync-app-")).sort()).toEqual(made.slice(1).sort());
  });

  test("the backup job with a sink backs that Pocketbase up", async () => {
    const sink = createSink("app", parseConfig({ sinks: { app: { type: "pocketbase", url: pb.url, email: pb.email, password: pb.password } } }).sinks.app!);
    const ctx = { sinks: new Map([["app", sink]]), settings: { baseDir: dir }, storeUrl: `sqlite:${join(dir, "store.db")}`, signal: new AbortController().signal } as unknown as JobContext;
    const run = backupJob.create({ name: "pb", sink: "app", dir: "job", keep: 1 }, ctx);
    expect(await run()).toEqual({ outcome: "succeeded" });
    const manifests = readdirSync(join(dir, "job")).filter((f) => f.endsWith(".json"));
    expect(manifests.length).toBe(1);
    expect(JSON.parse(readFileSync(join(dir, "job", manifests[0]!), "utf8"))).toMatchObject({ kind: "pocketbase", sink: "app", counts: { notes: 5 } });
  });

  test("a wrong password: one clear line, no secret in it", async () => {
    const b = await cli(["backup", "--config", config, "--sink", "app", "--out", join(dir, "bad")], { env: { TICKSYNC_SINKS__APP__EMAIL: pb.email, TICKSYNC_SINKS__APP__PASSWORD: "wrong-password-123" } });
    expect(b.code).not.toBe(0);
    expect(b.stderr).toContain("sign-in failed");
    expect(b.stderr).not.toContain("wrong-password-123");
    expect(b.stderr.trim().split("\n").length).toBe(1);
  });
});
