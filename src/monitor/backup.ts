// Backups of the store and restores that check before they replace anything.
//   SQLite:   VACUUM INTO a snapshot (consistent while the service writes), gzip-compressed.
//   Postgres: pg_dump of the store's schema in its custom (compressed) format.
// Each backup has a manifest beside it: what was backed up, when, the file's size and sha256,
// the row counts at the time and a checksum of the bars (the digest `migrate` verifies with).
// Restore reads the manifest, checks the file's sha256 before touching the store, restores to a
// temporary place first where it can (SQLite), and checks the counts and the bar checksum after.
import { Database } from "bun:sqlite";
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { openStore } from "../stores/open.ts";
import { parsePgUrl } from "../stores/postgres/index.ts";
import { redact, redactUrl } from "../lib/redact.ts";
import { sqlitePath } from "../stores/sqlite/index.ts";
import type { Store } from "../stores/types.ts";
import { digestStore } from "../pipeline/migrate.ts";
import { auditedStore } from "./audit.ts";

export const MANIFEST_FORMAT = "ticksync-backup/1";

export type BackupManifest = {
  format: typeof MANIFEST_FORMAT;
  kind: "sqlite" | "postgres";
  createdAt: string;
  /** The store backed up, with any password removed. */
  store: string;
  /** The backup file, relative to the manifest. */
  file: string;
  bytes: number;
  sha256: string;
  /** SQLite: the uncompressed snapshot's size and sha256. */
  raw?: { bytes: number; sha256: string };
  schemaVersion: number;
  counts: { bars: number; series: number; quarantine: number; checkpoints: number; runs: number };
  /** Order-independent checksum of every bar (sum of per-bar hashes mod 2^64, hex). */
  barsChecksum: string;
};

export class BackupError extends Error {
  override name = "BackupError";
  constructor(
    message: string,
    readonly code: "unsupported" | "tool_missing" | "checksum" | "exists" | "failed" | "mismatch" | "store",
  ) {
    super(message);
  }
}

async function sha256File(path: string): Promise<string> {
  const h = new Bun.CryptoHasher("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");

/** What a manifest records of a store's content, to be checked again after a restore. */
async function describe(store: Store): Promise<Pick<BackupManifest, "counts" | "barsChecksum" | "schemaVersion">> {
  const d = await digestStore(store);
  let sum = 0n;
  let bars = 0;
  for (const day of d.bars.values()) {
    sum = (sum + day.sum) & ((1n << 64n) - 1n);
    bars += day.count;
  }
  const series = (await store.listSeries()).length;
  let runs = 0;
  for (let before: number | undefined; ; ) {
    const page = await store.listRuns({ limit: 1000, before });
    runs += page.length;
    if (page.length < 1000) break;
    before = page[page.length - 1]!.id;
  }
  const r = await store.ready();
  return { counts: { bars, series, quarantine: d.quarantine.size, checkpoints: (await store.listCheckpoints()).length, runs }, barsChecksum: sum.toString(16), schemaVersion: r.schemaVersion };
}

function pgTool(name: "pg_dump" | "pg_restore" | "psql"): string {
  const onPath = Bun.which(name);
  if (onPath) return onPath;
  if (existsSync("/usr/lib/postgresql"))
    for (const v of readdirSync("/usr/lib/postgresql").sort().reverse()) if (existsSync(`/usr/lib/postgresql/${v}/bin/${name}`)) return `/usr/lib/postgresql/${v}/bin/${name}`;
  throw new BackupError(`${name} is not installed: Postgres backups need it (Debian: apt-get install postgresql-client)`, "tool_missing");
}

/** libpq's environment for a postgres:// URL (no password on a command line). */
function pgEnv(url: string): { env: Record<string, string>; schema: string } {
  const { url: conn, schema } = parsePgUrl(url);
  const u = new URL(conn);
  const env: Record<string, string> = { PGHOST: u.hostname, PGPORT: u.port || "5432", PGDATABASE: decodeURIComponent(u.pathname.slice(1)) || "postgres" };
  if (u.username) env.PGUSER = decodeURIComponent(u.username);
  if (u.password) env.PGPASSWORD = decodeURIComponent(u.password);
  return { env, schema };
}

async function run(cmd: string[], env: Record<string, string>): Promise<void> {
  const p = Bun.spawn(cmd, { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new BackupError(`${basename(cmd[0]!)} exited ${code}: ${redact(err.trim().slice(-2000))}`, "failed");
}

/** A file-system step whose failure (EACCES, ENOENT under /proc…) is a one-line BackupError. */
function writable<T>(fn: () => T, where: string): T {
  try {
    return fn();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new BackupError(`cannot write to ${where}: ${code ?? (e as Error).message}`, "failed");
  }
}

export type BackupResult = { manifest: BackupManifest; manifestPath: string; removed: string[] };

/** Back the store up into `dir`; then keep only the newest `keep` backups of that store there. */
export async function backupStore(url: string, dir: string, opts: { keep?: number; now?: Date } = {}): Promise<BackupResult> {
  writable(() => mkdirSync(dir, { recursive: true }), dir);
  const now = opts.now ?? new Date();
  // A second backup within the same second gets -2, -3…: it never replaces the first.
  let name = `ticksync-${stamp(now)}`;
  for (let n = 2; existsSync(join(dir, `${name}.json`)); n++) name = `ticksync-${stamp(now)}-${n}`;
  const store = auditedStore(openStore(url));
  // The backup is a run of its own in the audit trail, recorded when it is done (so the
  // snapshot does not hold it as running).
  const record = async (outcome: "succeeded" | "failed", params: Record<string, unknown>, read: number, error: string | null) => {
    const runId = await store.startRun({ kind: "backup", source: store.kind, params: { dir: resolve(dir), name, ...params } });
    await store.finishRun(runId, { outcome, read, inserted: 0, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null, error });
  };
  let migrated = false;
  try {
    if (store.kind === "questdb")
      throw new BackupError("the QuestDB store is backed up with QuestDB's own tools (SNAPSHOT / a copy of its root dir), not by ticksync", "unsupported");
    try {
      await store.migrate();
    } catch (e) {
      throw new BackupError(`cannot open the store ${redactUrl(url)}: ${(e as Error).message}`, "store");
    }
    migrated = true;
    const described = await describe(store);
    let manifest: BackupManifest;
    if (store.kind === "sqlite") {
      const raw = join(dir, `.${name}.db.part`);
      const file = join(dir, `${name}.db.gz`);
      rmSync(raw, { force: true });
      // VACUUM INTO writes a consistent, compact copy while others keep writing (WAL).
      const db = new Database(sqlitePath(url), { readonly: true });
      try {
        db.run("VACUUM INTO ?", [raw]);
      } finally {
        db.close();
      }
      const rawInfo = { bytes: statSync(raw).size, sha256: await sha256File(raw) };
      await pipeline(createReadStream(raw), createGzip({ level: 6 }), createWriteStream(`${file}.part`));
      renameSync(`${file}.part`, file);
      rmSync(raw, { force: true });
      manifest = { format: MANIFEST_FORMAT, kind: "sqlite", createdAt: now.toISOString(), store: redactUrl(url), file: basename(file), bytes: statSync(file).size, sha256: await sha256File(file), raw: rawInfo, ...described };
    } else {
      const file = join(dir, `${name}.pgdump`);
      const { env, schema } = pgEnv(url);
      await run([pgTool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", `--schema=${schema}`, `--file=${file}.part`], env);
      renameSync(`${file}.part`, file);
      manifest = { format: MANIFEST_FORMAT, kind: "postgres", createdAt: now.toISOString(), store: redactUrl(url), file: basename(file), bytes: statSync(file).size, sha256: await sha256File(file), ...described };
    }
    const manifestPath = join(dir, `${name}.json`);
    writeFileSync(`${manifestPath}.part`, JSON.stringify(manifest, null, 2) + "\n");
    renameSync(`${manifestPath}.part`, manifestPath);
    const removed = opts.keep ? prune(dir, opts.keep) : [];
    await record("succeeded", { file: manifest.file, sha256: manifest.sha256, bytes: manifest.bytes, removed }, manifest.counts.bars, null);
    return { manifest, manifestPath, removed };
  } catch (e) {
    if (migrated) await record("failed", {}, 0, (e as Error).message).catch(() => {});
    throw e;
  } finally {
    await store.close();
  }
}

const BACKUP_NAME = /^ticksync-(\d{8}T\d{6}Z)(?:-(\d+))?\.json$/;

/** The newest `keep` backups in `dir` stay; older ones (manifest and file) go. */
export function prune(dir: string, keep: number): string[] {
  // Newest first: by the time stamp, then by the number a backup of the same second got.
  const order = (f: string) => {
    const m = BACKUP_NAME.exec(f)!;
    return [m[1]!, Number(m[2] ?? 1)] as const;
  };
  const manifests = readdirSync(dir)
    .filter((f) => BACKUP_NAME.test(f))
    .sort((a, b) => {
      const [sa, na] = order(a);
      const [sb, nb] = order(b);
      return sa < sb ? 1 : sa > sb ? -1 : nb - na;
    });
  const removed: string[] = [];
  for (const m of manifests.slice(keep)) {
    try {
      const man = JSON.parse(readFileSync(join(dir, m), "utf8")) as BackupManifest;
      rmSync(join(dir, basename(man.file)), { force: true });
    } catch {}
    rmSync(join(dir, m), { force: true });
    removed.push(m);
  }
  return removed;
}

export function readManifest(path: string): BackupManifest {
  let m: BackupManifest;
  try {
    m = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new BackupError(`cannot read the manifest ${path}: ${(e as Error).message}`, "failed");
  }
  if (m?.format !== MANIFEST_FORMAT) throw new BackupError(`${path} is not a ticksync backup manifest (format ${JSON.stringify(m?.format)})`, "failed");
  return m;
}

export type RestoreResult = { manifest: BackupManifest; target: string; counts: BackupManifest["counts"]; barsChecksum: string };

/**
 * Restore the backup a manifest describes into the store at `url`. Nothing is replaced unless
 * the backup file's sha256 (and for SQLite the decompressed snapshot's) match the manifest; an
 * existing store is replaced only with `force`.
 */
export async function restoreStore(manifestPath: string, url: string, opts: { force?: boolean } = {}): Promise<RestoreResult> {
  const m = readManifest(manifestPath);
  const file = join(dirname(resolve(manifestPath)), basename(m.file));
  if (!existsSync(file)) throw new BackupError(`the backup file ${file} named by the manifest is missing`, "failed");
  const sum = await sha256File(file);
  if (sum !== m.sha256) throw new BackupError(`${file}: sha256 ${sum} does not match the manifest's ${m.sha256}; nothing was restored`, "checksum");
  const kind = /^postgres(ql)?:\/\//i.test(url) ? "postgres" : /^questdb:/i.test(url) ? "questdb" : "sqlite";
  if (kind !== m.kind) throw new BackupError(`this is a ${m.kind} backup; it cannot be restored into a ${kind} store (use ticksync migrate after restoring it into a ${m.kind} store)`, "unsupported");
  if (kind === "sqlite") {
    const path = resolve(sqlitePath(url));
    if (existsSync(path) && !opts.force) throw new BackupError(`${path} exists; restore replaces it only with --force`, "exists");
    writable(() => mkdirSync(dirname(path), { recursive: true }), dirname(path));
    const part = `${path}.restore-${process.pid}`;
    try {
      await pipeline(createReadStream(file), createGunzip(), createWriteStream(part));
      const rawSum = await sha256File(part);
      if (m.raw && rawSum !== m.raw.sha256) throw new BackupError(`the decompressed snapshot's sha256 ${rawSum} does not match the manifest's ${m.raw.sha256}; nothing was restored`, "checksum");
      const check = new Database(part, { readonly: true });
      try {
        const r = check.query("PRAGMA integrity_check").get() as { integrity_check: string };
        if (r.integrity_check !== "ok") throw new BackupError(`the snapshot fails SQLite's integrity check: ${r.integrity_check}`, "checksum");
      } finally {
        check.close();
      }
      // The old file's WAL and shared-memory files belong to it, not to the restored one.
      for (const suffix of ["-wal", "-shm"]) rmSync(path + suffix, { force: true });
      renameSync(part, path);
    } finally {
      rmSync(part, { force: true });
    }
  } else {
    const { env, schema } = pgEnv(url);
    const exists = await pgSchemaHasTables(url);
    if (exists && !opts.force) throw new BackupError(`schema ${schema} already has tables; restore replaces it only with --force`, "exists");
    if (exists) await run([pgTool("psql"), "-v", "ON_ERROR_STOP=1", "-q", "-c", `DROP SCHEMA IF EXISTS "${schema}" CASCADE`], env);
    await run([pgTool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", `--dbname=${env.PGDATABASE}`, file], env);
  }
  const store = auditedStore(openStore(url));
  try {
    const after = await describe(store);
    const same = JSON.stringify(after.counts) === JSON.stringify(m.counts) && after.barsChecksum === m.barsChecksum;
    // Recorded in the restored store itself (after the check, so the check sees the snapshot).
    const runId = await store.startRun({ kind: "restore", source: m.kind, params: { manifest: resolve(manifestPath), createdAt: m.createdAt, sha256: m.sha256, from: m.store } });
    await store.finishRun(runId, {
      outcome: same ? "succeeded" : "failed",
      read: after.counts.bars,
      inserted: 0,
      updated: 0,
      unchanged: 0,
      quarantined: 0,
      fromTs: null,
      toTs: null,
      quality: null,
      error: same ? null : "restored content differs from the manifest",
    });
    if (!same)
      throw new BackupError(
        `restored, but the content differs from the manifest: counts ${JSON.stringify(after.counts)} vs ${JSON.stringify(m.counts)}, bars checksum ${after.barsChecksum} vs ${m.barsChecksum}`,
        "mismatch",
      );
    return { manifest: m, target: kind === "sqlite" ? resolve(sqlitePath(url)) : redactUrl(url), counts: after.counts, barsChecksum: after.barsChecksum };
  } finally {
    await store.close();
  }
}

async function pgSchemaHasTables(url: string): Promise<boolean> {
  const { env, schema } = pgEnv(url);
  const p = Bun.spawn([pgTool("psql"), "-At", "-c", `SELECT count(*) FROM information_schema.tables WHERE table_schema = '${schema.replace(/'/g, "''")}'`], {
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new BackupError(`psql exited ${code}: ${err.trim()}`, "failed");
  return Number(out.trim()) > 0;
}
