// Backup manifests and their chains. A full backup starts a chain (sequence 0); each increment
// names its parent manifest by file name and sha256, follows its sequence by one and covers the
// journal positions after the parent's. A chain is checked whole, link by link, before a restore
// touches anything, and pruning never breaks one: what a kept backup depends on is kept.
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { BackupError, sha256File } from "../stores/backup.ts";
import { errorText } from "../lib/errors.ts";

export const MANIFEST_FORMAT = "ticksync-backup/1";

export type BackupManifest = {
  format: typeof MANIFEST_FORMAT;
  /** What was backed up: the store's kind (sqlite, postgres), or another kind's own (pocketbase…). */
  kind: string;
  /** "full" starts a chain, "incremental" continues one; absent (older manifests): full. */
  mode?: "full" | "incremental";
  createdAt: string;
  /** The store backed up, with any password removed. */
  store: string;
  /** The backup file, relative to the manifest. */
  file: string;
  bytes: number;
  sha256: string;
  /** SQLite: the uncompressed snapshot's size and sha256. */
  raw?: { bytes: number; sha256: string };
  /** The bar partitions' digests an increment is made against, with its sha256. */
  digest?: { file: string; sha256: string };
  /** An increment's parent: its manifest's file name and that file's sha256. */
  parent?: { name: string; sha256: string };
  /** The link's place in its chain: 0 for a full backup, the parent's + 1 for an increment. */
  sequence?: number;
  /** The event journal's batches covered: after `from` up to `to` (a full backup: from 0). */
  positions?: { from: number; to: number };
  /** An increment's bar partitions carried (changed, added or gone since the parent). */
  changed?: number;
  schemaVersion: number;
  counts: { bars: number; series: number; quarantine: number; checkpoints: number; runs: number };
  /** Order-independent checksum of every bar (sum of per-bar hashes mod 2^64, hex). */
  barsChecksum: string;
};

export const BACKUP_NAME = /^ticksync-(\d{8}T\d{6}Z)(?:-(\d+))?\.json$/;

/** Manifest names in `dir`, newest first (by time stamp, then the number a same-second backup got). */
export function manifestNames(dir: string): string[] {
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
  return names.sort((a, b) => (key(a) < key(b) ? 1 : key(a) > key(b) ? -1 : 0));
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

/** One link of a chain as checked: its manifest, where it is, and its file's path. */
export type ChainLink = { name: string; path: string; manifest: BackupManifest; file: string };

/** A file a manifest names must be there and have its recorded sha256. */
async function checkFile(file: string, sha256: string, what: string) {
  if (!existsSync(file)) throw new BackupError(`${what} ${file} is missing`, "chain");
  const sum = await sha256File(file);
  if (sum !== sha256) throw new BackupError(`${file}: sha256 ${sum} does not match the manifest's ${sha256}; nothing was restored`, "checksum");
}

/**
 * The chain ending at `manifestPath`, full backup first, every link checked: each parent there
 * with the sha256 its child recorded, sequence numbers following by one, journal positions
 * without a gap, one store and kind throughout, and every backup file's sha256 (with `files`).
 */
export async function verifyChain(manifestPath: string, opts: { files: boolean }): Promise<ChainLink[]> {
  const dir = join(manifestPath, "..");
  const links: ChainLink[] = [];
  let path = manifestPath;
  let m = readManifest(path);
  for (;;) {
    const link = { name: basename(path), path, manifest: m, file: join(dir, basename(m.file)) };
    links.unshift(link);
    if (opts.files) await checkFile(link.file, m.sha256, "the backup file");
    if (m.mode !== "incremental") break;
    if (!m.parent || m.sequence === undefined || !m.positions) throw new BackupError(`${link.name} is an increment without its parent, sequence or positions`, "chain");
    if (links.length > 100_000) throw new BackupError(`${link.name}: the chain does not end in a full backup`, "chain");
    const parentPath = join(dir, basename(m.parent.name));
    if (!existsSync(parentPath)) throw new BackupError(`broken chain: ${link.name} follows ${m.parent.name}, which is missing; restore an earlier backup or make a full one`, "chain");
    const sum = await sha256File(parentPath);
    if (sum !== m.parent.sha256) throw new BackupError(`broken chain: ${m.parent.name} has sha256 ${sum}, not the ${m.parent.sha256} its increment ${link.name} recorded`, "checksum");
    const p = readManifest(parentPath);
    if ((p.sequence ?? 0) + 1 !== m.sequence) throw new BackupError(`broken chain: ${link.name} is link ${m.sequence} but follows link ${p.sequence ?? 0} (${m.parent.name})`, "chain");
    if ((p.positions?.to ?? -1) !== m.positions.from) throw new BackupError(`broken chain: ${link.name} covers the journal from ${m.positions.from} but ${m.parent.name} ends at ${p.positions?.to ?? "an unknown position"}`, "chain");
    if (p.kind !== m.kind || p.store !== m.store) throw new BackupError(`broken chain: ${link.name} is of ${m.kind} ${m.store} but ${m.parent.name} of ${p.kind} ${p.store}`, "chain");
    path = parentPath;
    m = p;
  }
  return links;
}

/**
 * The newest backup of this store in `dir` an increment can follow, with its digests file
 * checked; a one-line reason when there is none (then a full backup has to be made).
 */
export async function chainHead(dir: string, store: string, kind: string, schemaVersion: number): Promise<{ chain: ChainLink[]; digest: string; manifestSha: string } | { reason: string }> {
  const name = manifestNames(dir).find((n) => {
    try {
      const m = readManifest(join(dir, n));
      return m.store === store && m.kind === kind;
    } catch {
      return false;
    }
  });
  if (!name) return { reason: `no earlier backup of ${store} in ${dir}` };
  const path = join(dir, name);
  const m = readManifest(path);
  if (!m.digest || !m.positions) return { reason: `${name} was made without the digests an increment is made against` };
  if (m.schemaVersion !== schemaVersion) return { reason: `the store's schema is version ${schemaVersion} now, ${m.schemaVersion} in ${name}` };
  const digest = join(dir, basename(m.digest.file));
  let chain: ChainLink[];
  try {
    await checkFile(digest, m.digest.sha256, "the digests file");
    // Every earlier link must still be there: an increment on a broken chain restores nothing.
    chain = await verifyChain(path, { files: false });
  } catch (e) {
    return { reason: errorText(e) };
  }
  return { chain, digest, manifestSha: await sha256File(path) };
}

/**
 * Keep the newest `keep` backups in `dir` and every backup a kept increment depends on (its
 * parent, that one's parent… down to the full backup); remove the others (manifest and files).
 */
export function prune(dir: string, keep: number, mine: (m: BackupManifest) => boolean = () => true): string[] {
  // Only backups `mine` accepts (the same kind and store): another kind's backups in the
  // directory (a Pocketbase sink's, say), and a manifest that cannot be read, are left alone.
  const manifests = new Map<string, BackupManifest>(); // newest first, as manifestNames orders them
  for (const n of manifestNames(dir)) {
    try {
      const m = readManifest(join(dir, n));
      if (mine(m)) manifests.set(n, m);
    } catch {
      // not ours to remove
    }
  }
  const names = [...manifests.keys()];
  const kept = new Set<string>();
  for (const n of names.slice(0, keep))
    for (let at: string | undefined = n; at && !kept.has(at) && manifests.has(at); ) {
      kept.add(at);
      const m: BackupManifest = manifests.get(at)!;
      at = m.mode === "incremental" ? basename(m.parent?.name ?? "") : undefined;
    }
  const removed: string[] = [];
  for (const n of names) {
    if (kept.has(n)) continue;
    const m = manifests.get(n)!;
    for (const f of [m.file, m.digest?.file]) if (f) rmSync(join(dir, basename(f)), { force: true });
    rmSync(join(dir, n), { force: true });
    removed.push(n);
  }
  return removed;
}
