// Backups of the store and restores that check before they replace anything. How a store is
// copied to a file and back is its own (the registry's `backup`, src/stores/registry.ts):
//   SQLite:   VACUUM INTO a snapshot (consistent while the service writes), gzip-compressed.
//   Postgres: pg_dump of the store's schema in its custom (compressed) format.
// Each backup has a manifest beside it: what was backed up, when, the file's size and sha256,
// the row counts at the time and a checksum of the bars (the digest `migrate` verifies with).
// Restore reads the manifest, checks the file's sha256 before touching the store, restores to a
// temporary place first where it can (SQLite), and checks the counts and the bar checksum after.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { openStore } from "../stores/open.ts";
import { redactUrl } from "../lib/redact.ts";
import { BackupError, sha256File, writable } from "../stores/backup.ts";
import { storeFor } from "../stores/registry.ts";
import type { Store } from "../stores/types.ts";
import { digestStore } from "../pipeline/migrate.ts";
import { auditedStore } from "./audit.ts";
import { errorText } from "../lib/errors.ts";

export { BackupError } from "../stores/backup.ts";

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
    const backup = storeFor(url).backup;
    if (!("dump" in backup)) throw new BackupError(backup.unsupported, "unsupported");
    try {
      await store.migrate();
    } catch (e) {
      throw new BackupError(`cannot open the store ${redactUrl(url)}: ${errorText(e)}`, "store");
    }
    migrated = true;
    const described = await describe(store);
    const { file, raw } = await backup.dump(url, dir, name);
    const manifest: BackupManifest = {
      format: MANIFEST_FORMAT,
      kind: store.kind as BackupManifest["kind"],
      createdAt: now.toISOString(),
      store: redactUrl(url),
      file: basename(file),
      bytes: statSync(file).size,
      sha256: await sha256File(file),
      ...(raw ? { raw } : {}),
      ...described,
    };
    const manifestPath = join(dir, `${name}.json`);
    writeFileSync(`${manifestPath}.part`, JSON.stringify(manifest, null, 2) + "\n");
    renameSync(`${manifestPath}.part`, manifestPath);
    const removed = opts.keep ? prune(dir, opts.keep) : [];
    await record("succeeded", { file: manifest.file, sha256: manifest.sha256, bytes: manifest.bytes, removed }, manifest.counts.bars, null);
    return { manifest, manifestPath, removed };
  } catch (e) {
    if (migrated) await record("failed", {}, 0, errorText(e)).catch(() => {});
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
    throw new BackupError(`cannot read the manifest ${path}: ${errorText(e)}`, "failed");
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
  const target = storeFor(url);
  const kind = target.type;
  if (kind !== m.kind) throw new BackupError(`this is a ${m.kind} backup; it cannot be restored into a ${kind} store (use ticksync migrate after restoring it into a ${m.kind} store)`, "unsupported");
  const backup = target.backup;
  if (!("restore" in backup)) throw new BackupError(backup.unsupported, "unsupported");
  await backup.restore(url, file, { force: !!opts.force, raw: m.raw });
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
    return { manifest: m, target: backup.target(url), counts: after.counts, barsChecksum: after.barsChecksum };
  } finally {
    await store.close();
  }
}

export type BackupListing = { name: string; manifest: BackupManifest | null; error: string | null };

/**
 * The backups in `dir`, newest first, at most `limit` (GET /api/backups): each manifest as
 * written, or why it cannot be read. A missing directory is an empty list.
 */
export function listBackups(dir: string, limit = 1000): BackupListing[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((f) => BACKUP_NAME.test(f));
  } catch {
    return [];
  }
  const key = (f: string) => {
    const m = BACKUP_NAME.exec(f)!;
    return `${m[1]}-${String(Number(m[2] ?? 1)).padStart(6, "0")}`;
  };
  names.sort((a, b) => (key(a) < key(b) ? 1 : key(a) > key(b) ? -1 : 0));
  return names.slice(0, limit).map((name) => {
    try {
      return { name, manifest: readManifest(join(dir, name)), error: null };
    } catch (e) {
      return { name, manifest: null, error: errorText(e) };
    }
  });
}
