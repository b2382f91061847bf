// SQLite backups: VACUUM INTO a snapshot (consistent while the service writes), described and
// digested from that snapshot file, gzip-compressed;
// restored to a temporary file first, checked (sha256, integrity_check), then moved in place.
import { Database } from "bun:sqlite";
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { BackupError, sha256File, writable, type DescribeSnapshot, type RawSnapshot, type SnapshotDigest, type StoreBackup } from "../backup.ts";
import { snapshotDigest, sqliteIncremental } from "./backup-incremental.ts";
import { sqliteStore } from "./index.ts";
import { sqlitePath } from "./db.ts";

async function dump<T>(url: string, dir: string, name: string, describe: DescribeSnapshot<T>): Promise<{ file: string; raw: RawSnapshot; described: T; digest: SnapshotDigest }> {
  const raw = join(dir, `.${name}.db.part`);
  const file = join(dir, `${name}.db.gz`);
  rmSync(raw, { force: true });
  try {
    // VACUUM INTO writes a consistent, compact copy while others keep writing (WAL).
    const db = new Database(sqlitePath(url), { readonly: true });
    try {
      db.run("VACUUM INTO ?", [raw]);
    } finally {
      db.close();
    }
    // The manifest's counts and the digests are read from the copy itself: nothing written since
    // the copy is in them. Read-only (the copy is not in WAL mode): the file stays as it was made.
    const snap = new Database(raw, { readonly: true });
    let described: T;
    let digest: SnapshotDigest;
    try {
      snap.run("BEGIN");
      digest = snapshotDigest(snap);
      described = await describe(sqliteStore(`sqlite:${raw}`, snap));
      snap.run("COMMIT");
    } finally {
      snap.close();
    }
    const rawInfo = { bytes: statSync(raw).size, sha256: await sha256File(raw) };
    await pipeline(createReadStream(raw), createGzip({ level: 6 }), createWriteStream(`${file}.part`));
    renameSync(`${file}.part`, file);
    return { file, raw: rawInfo, described, digest };
  } finally {
    rmSync(raw, { force: true });
    rmSync(`${file}.part`, { force: true });
  }
}

async function restore(url: string, file: string, opts: { force: boolean; raw?: RawSnapshot }): Promise<void> {
  const path = resolve(sqlitePath(url));
  if (existsSync(path) && !opts.force) throw new BackupError(`${path} exists; restore replaces it only with --force`, "exists");
  writable(() => mkdirSync(dirname(path), { recursive: true }), dirname(path));
  const part = `${path}.restore-${process.pid}`;
  try {
    await pipeline(createReadStream(file), createGunzip(), createWriteStream(part));
    const rawSum = await sha256File(part);
    if (opts.raw && rawSum !== opts.raw.sha256) throw new BackupError(`the decompressed snapshot's sha256 ${rawSum} does not match the manifest's ${opts.raw.sha256}; nothing was restored`, "checksum");
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
}

export const sqliteBackup: StoreBackup = {
  method: "VACUUM INTO a consistent snapshot while the service keeps writing, gzip-compressed",
  dump,
  restore,
  target: (url) => resolve(sqlitePath(url)),
  incremental: sqliteIncremental,
};
