// What the backups of other things than the SQLite/PostgreSQL store share (Pocketbase through its
// backup API, backup-pocketbase.ts; the QuestDB store as a checksummed export, backup-questdb.ts):
// the manifest's top-level fields (those of src/monitor/backup.ts, plus what the kind adds), its
// name beside the backup file, and a pruning that removes only backups of the same kind and origin.
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BackupError, MANIFEST_FORMAT } from "./backup.ts";
import { readManifest } from "./backup-chain.ts";
import { sha256File, writable } from "../stores/backup.ts";
import { errorText } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { openStore } from "../stores/open.ts";
import { auditedStore } from "./audit.ts";

/** The fields every manifest has, whatever its kind (GET /api/backups reads these). */
export type ManifestBase = {
  format: typeof MANIFEST_FORMAT;
  kind: string;
  createdAt: string;
  /** What was backed up, without credentials. */
  store: string;
  /** The backup file, relative to the manifest. */
  file: string;
  bytes: number;
  sha256: string;
  /** Rows or records by table or collection at the time of the backup (null: they changed during it). */
  counts: Record<string, number> | null;
};

const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");

/** A new backup's name in `dir` (ticksync-<UTC time>[-n], as the store's backups are named). */
export function newBackupName(dir: string, now: Date): string {
  writable(() => mkdirSync(dir, { recursive: true }), dir);
  let name = `ticksync-${stamp(now)}`;
  for (let n = 2; existsSync(join(dir, `${name}.json`)); n++) name = `ticksync-${stamp(now)}-${n}`;
  return name;
}

/** Write a manifest atomically (a reader never sees half of one). */
export function writeManifest(dir: string, name: string, manifest: ManifestBase): string {
  const path = join(dir, `${name}.json`);
  writable(() => {
    writeFileSync(`${path}.part`, JSON.stringify(manifest, null, 2) + "\n");
    renameSync(`${path}.part`, path);
  }, path);
  return path;
}

/** A manifest of one `kind`, and its backup file after its sha256 was checked against it. */
export async function checkedBackup<M extends ManifestBase>(manifestPath: string, kind: M["kind"]): Promise<{ manifest: M; file: string }> {
  const m = readManifest(manifestPath) as unknown as M;
  if (m.kind !== kind) throw new BackupError(`${manifestPath} is a ${JSON.stringify(m.kind)} backup, not a ${kind} one`, "unsupported");
  const file = join(dirname(resolve(manifestPath)), basename(String(m.file)));
  if (!existsSync(file)) throw new BackupError(`the backup file ${file} named by the manifest is missing`, "failed");
  const sum = await sha256File(file);
  if (sum !== m.sha256) throw new BackupError(`${file}: sha256 ${sum} does not match the manifest's ${m.sha256}; nothing was restored`, "checksum");
  return { manifest: m, file };
}

/** The kind a manifest names ("sqlite", "postgres", "pocketbase", "questdb"), or null. */
export function manifestKind(path: string): string | null {
  try {
    const m = readManifest(path);
    return typeof m.kind === "string" ? m.kind : null;
  } catch {
    return null;
  }
}

/** A pass-through stream that feeds every chunk to `see` (a hash, a byte count). */
export const tap = (see: (chunk: Buffer) => void) =>
  new Transform({
    transform(chunk: Buffer, _enc, done) {
      see(chunk);
      done(null, chunk);
    },
  });

/**
 * Stream an HTTP body to `path` (through `.part`, renamed when complete) with its sha256 and
 * size: memory stays a chunk's worth whatever the size.
 */
export async function downloadTo(body: ReadableStream<Uint8Array>, path: string): Promise<{ bytes: number; sha256: string }> {
  const h = new Bun.CryptoHasher("sha256");
  let bytes = 0;
  const part = `${path}.part`;
  try {
    await pipeline(
      Readable.fromWeb(body as import("node:stream/web").ReadableStream<Uint8Array>),
      tap((c) => {
        h.update(c);
        bytes += c.length;
      }),
      createWriteStream(part),
    );
    renameSync(part, path);
  } catch (e) {
    rmSync(part, { force: true });
    throw e;
  }
  return { bytes, sha256: h.digest("hex") };
}

/**
 * Record a backup or restore as a run of the store at `storeUrl` (the audit trail, as the store
 * backups do). Best effort: the backup itself is done, so a store that cannot take the record
 * is a warning, not a failed backup.
 */
export async function recordRun(
  storeUrl: string | undefined,
  run: { kind: "backup" | "restore"; source: string; params: Record<string, unknown>; read: number; error: string | null },
): Promise<void> {
  if (!storeUrl) return;
  const store = auditedStore(openStore(storeUrl));
  try {
    await store.migrate();
    const id = await store.startRun({ kind: run.kind, source: run.source, params: run.params });
    await store.finishRun(id, { outcome: run.error ? "failed" : "succeeded", read: run.read, inserted: 0, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null, error: run.error });
  } catch (e) {
    log.warn(`the ${run.kind} is done but could not be recorded in the store`, { error: errorText(e) });
  } finally {
    await store.close().catch(() => {});
  }
}
