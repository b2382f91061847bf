// Backups of the store and restores that check before they replace anything. How a store is
// copied to a file and back is its own (the registry's `backup`, src/stores/registry.ts):
//   SQLite:   VACUUM INTO a snapshot (consistent while the service writes), gzip-compressed.
//   Postgres: pg_dump of the store's schema in its custom (compressed) format.
// Each backup has a manifest beside it: what was backed up, when, the file's size and sha256,
// the row counts and a checksum of the bars (the digest `migrate` verifies with), both read in
// the backup's own snapshot through a view of the store the store's backup step gives.
// Restore reads the manifest, checks the file's sha256 before touching the store, restores to a
// temporary place first where it can (SQLite), and checks the counts and the bar checksum after.
// Increments (--incremental; src/stores/backup.ts says what they hold) chain to the backup
// before them (src/monitor/backup-chain.ts); a restore applies the full backup, then each link.
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { openStore } from "../stores/open.ts";
import { redactUrl } from "../lib/redact.ts";
import { BackupError, readDigests, sha256File, writable, writeDigests, type IncrementalBackup, type SnapshotDigest } from "../stores/backup.ts";
import { chainHead, manifestNames, prune, readManifest, verifyChain, type BackupManifest, MANIFEST_FORMAT } from "./backup-chain.ts";
import { storeFor } from "../stores/registry.ts";
import type { Store } from "../stores/types.ts";
import { digestStore } from "../pipeline/migrate.ts";
import { auditedStore } from "./audit.ts";
import { errorText } from "../lib/errors.ts";

export { BackupError } from "../stores/backup.ts";
export { MANIFEST_FORMAT, prune, readManifest, type BackupManifest } from "./backup-chain.ts";

const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");

type Described = Pick<BackupManifest, "counts" | "barsChecksum" | "schemaVersion">;

/** What a manifest records of a store's content (a backup's snapshot), to be checked again after a restore. */
async function describe(store: Store): Promise<Described> {
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

export type BackupResult = { manifest: BackupManifest; manifestPath: string; removed: string[]; /** Why a full backup was made where an increment was asked for. */ fullBecause?: string };

/** What `incremental` asks for: an increment, unless the chain is due for a full backup. */
export type IncrementalOptions = {
  /** Where no increment can be made, make a full backup (a job) rather than refuse (the CLI). */
  fallback?: boolean;
  /** A full backup once the chain has this many increments. */
  fullEvery?: number;
  /** A full backup once the chain's full backup is older than this (ms). */
  fullAfterMs?: number;
};

type Head = { chain: { name: string; manifest: BackupManifest }[]; digest: string; manifestSha: string };

/** The chain an increment would follow, or why a full backup has to be made instead. */
async function incrementBase(inc: IncrementalBackup | undefined, dir: string, url: string, kind: string, schemaVersion: number, o: IncrementalOptions, now: Date): Promise<Head | string> {
  if (!inc) return `the ${kind} store has no increments`;
  const head = await chainHead(dir, redactUrl(url), kind, schemaVersion);
  if ("reason" in head) return head.reason;
  const increments = head.chain.length - 1;
  if (o.fullEvery !== undefined && increments >= o.fullEvery) return `the chain has ${increments} increments (a full backup every ${o.fullEvery})`;
  const fullAt = Date.parse(head.chain[0]!.manifest.createdAt);
  if (o.fullAfterMs !== undefined && now.getTime() - fullAt >= o.fullAfterMs) return `the chain's full backup ${head.chain[0]!.name} is older than ${Math.round(o.fullAfterMs / 1000)} s`;
  return head;
}

/** Write to `path` through a `.part` file, renamed into place when complete. */
async function writeWhole<T>(path: string, fn: (part: string) => Promise<T>): Promise<T> {
  try {
    const r = await fn(`${path}.part`);
    renameSync(`${path}.part`, path);
    return r;
  } catch (e) {
    rmSync(`${path}.part`, { force: true });
    throw e;
  }
}

/**
 * Back the store up into `dir` (with `incremental`, as an increment on the newest backup of the
 * store there); then keep the newest `keep` backups and every one they depend on.
 */
export async function backupStore(url: string, dir: string, opts: { keep?: number; now?: Date; incremental?: boolean | IncrementalOptions } = {}): Promise<BackupResult> {
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
    const inc = backup.incremental;
    let head: Head | null = null;
    let fullBecause: string | undefined;
    if (opts.incremental) {
      const o = opts.incremental === true ? {} : opts.incremental;
      const base = await incrementBase(inc, dir, url, store.kind, (await store.ready()).schemaVersion, o, now);
      if (typeof base !== "string") head = base;
      else if (o.fallback) fullBecause = base;
      else throw new BackupError(`cannot make an increment: ${base}; make a full backup (ticksync backup without --incremental)`, "chain");
    }
    // The counts and the checksum are read in the backup's own snapshot (a view of the store the
    // backup step gives): a service writing meanwhile changes neither the backup nor them.
    let file: string;
    let raw: BackupManifest["raw"];
    let described: Described;
    let snap: (SnapshotDigest & { changed?: number }) | undefined;
    if (head) {
      const parent = await readDigests(head.digest);
      file = join(dir, `${name}.inc.gz`);
      const after = head.chain[head.chain.length - 1]!.manifest.positions!.to;
      ({ described, ...snap } = await writeWhole(file, (part) => inc!.snapshot(url, { digests: parent.digests, after, file: part }, describe)));
    } else ({ file, raw, described, digest: snap } = await backup.dump(url, dir, name, describe));
    let digest: BackupManifest["digest"];
    if (snap) {
      const path = join(dir, `${name}.digest.gz`);
      await writeWhole(path, (part) => writeDigests(part, snap));
      digest = { file: basename(path), sha256: await sha256File(path) };
    }
    const parent = head?.chain[head.chain.length - 1]!.manifest;
    const from = parent?.positions?.to ?? 0;
    const manifest: BackupManifest = {
      format: MANIFEST_FORMAT,
      kind: store.kind,
      mode: head ? "incremental" : "full",
      createdAt: now.toISOString(),
      store: redactUrl(url),
      file: basename(file),
      bytes: statSync(file).size,
      sha256: await sha256File(file),
      ...(raw ? { raw } : {}),
      ...(digest ? { digest } : {}),
      ...(head ? { parent: { name: head.chain[head.chain.length - 1]!.name, sha256: head.manifestSha }, changed: snap!.changed! } : {}),
      sequence: parent ? (parent.sequence ?? 0) + 1 : 0,
      // Batch numbers only grow; a journal pruned empty reads 0, which stays at the parent's.
      positions: { from, to: Math.max(from, snap?.lastBatch ?? 0) },
      ...described,
    };
    const manifestPath = join(dir, `${name}.json`);
    writeFileSync(`${manifestPath}.part`, JSON.stringify(manifest, null, 2) + "\n");
    renameSync(`${manifestPath}.part`, manifestPath);
    const removed = opts.keep ? prune(dir, opts.keep, (m) => m.kind === manifest.kind && m.store === manifest.store) : [];
    await record("succeeded", { file: manifest.file, mode: manifest.mode, sha256: manifest.sha256, bytes: manifest.bytes, removed, ...(fullBecause ? { fullBecause } : {}) }, manifest.counts.bars, null);
    return { manifest, manifestPath, removed, ...(fullBecause ? { fullBecause } : {}) };
  } catch (e) {
    if (migrated) await record("failed", {}, 0, errorText(e)).catch(() => {});
    throw e;
  } finally {
    await store.close();
  }
}

export type RestoreResult = { manifest: BackupManifest; target: string; counts: BackupManifest["counts"]; barsChecksum: string };

/**
 * Restore the backup a manifest describes into the store at `url`. Nothing is replaced unless
 * the backup file's sha256 (and for SQLite the decompressed snapshot's) match the manifest; an
 * existing store is replaced only with `force`.
 */
export async function restoreStore(manifestPath: string, url: string, opts: { force?: boolean } = {}): Promise<RestoreResult> {
  // Every link checked (files, parents, sequence, positions) before anything is replaced.
  const links = await verifyChain(resolve(manifestPath), { files: true });
  const full = links[0]!;
  const m = links[links.length - 1]!.manifest;
  const target = storeFor(url);
  const kind = target.type;
  if (kind !== m.kind) throw new BackupError(`this is a ${m.kind} backup; it cannot be restored into a ${kind} store (use ticksync migrate after restoring it into a ${m.kind} store)`, "unsupported");
  const backup = target.backup;
  if (!("restore" in backup)) throw new BackupError(backup.unsupported, "unsupported");
  if (links.length > 1 && !backup.incremental) throw new BackupError(`the ${kind} store cannot apply increments`, "unsupported");
  await backup.restore(url, full.file, { force: !!opts.force, raw: full.manifest.raw });
  for (const link of links.slice(1)) {
    try {
      await backup.incremental!.apply(url, link.file);
    } catch (e) {
      throw new BackupError(`the full backup and the increments before ${link.name} are restored, but applying ${link.name} failed: ${errorText(e)}`, e instanceof BackupError ? e.code : "failed");
    }
  }
  const store = auditedStore(openStore(url));
  try {
    const after = await describe(store);
    const same = JSON.stringify(after.counts) === JSON.stringify(m.counts) && after.barsChecksum === m.barsChecksum;
    // Recorded in the restored store itself (after the check, so the check sees the snapshot).
    const runId = await store.startRun({ kind: "restore", source: m.kind, params: { manifest: resolve(manifestPath), createdAt: m.createdAt, sha256: m.sha256, from: m.store, links: links.length } });
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
  return manifestNames(dir)
    .slice(0, limit)
    .map((name) => {
      try {
        return { name, manifest: readManifest(join(dir, name)), error: null };
      } catch (e) {
        return { name, manifest: null, error: errorText(e) };
      }
    });
}
