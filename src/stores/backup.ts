// What a store's backup (src/stores/<store>/backup.ts, named by the registry) is made of: the
// steps that copy a store to a file and back, and their errors. The manifest, the checks of the
// content before and after, and the audit trail are src/monitor/backup.ts's.
import { createReadStream } from "node:fs";
import { errorText } from "../lib/errors.ts";

export class BackupError extends Error {
  override name = "BackupError";
  constructor(
    message: string,
    readonly code: "unsupported" | "tool_missing" | "checksum" | "exists" | "failed" | "mismatch" | "store",
  ) {
    super(message);
  }
}

/** The snapshot a compressed backup holds: its size and sha256 before compression. */
export type RawSnapshot = { bytes: number; sha256: string };

export interface StoreBackup {
  /** How it is done, for help and docs (`ticksync backup --help`). */
  readonly method: string;
  /** Write the store's backup into `dir` as `name` plus its own extension; returns the file written. */
  dump(url: string, dir: string, name: string): Promise<{ file: string; raw?: RawSnapshot }>;
  /**
   * Replace the store at `url` with the backup `file` (its sha256 already checked): an existing
   * store only with `force`; `raw`, the snapshot the manifest recorded, is checked where it applies.
   */
  restore(url: string, file: string, opts: { force: boolean; raw?: RawSnapshot }): Promise<void>;
  /** Where a restore went, as it is reported. */
  target(url: string): string;
}

export async function sha256File(path: string): Promise<string> {
  const h = new Bun.CryptoHasher("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** A file-system step whose failure (EACCES, ENOENT under /proc…) is a one-line BackupError. */
export function writable<T>(fn: () => T, where: string): T {
  try {
    return fn();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new BackupError(`cannot write to ${where}: ${code ?? errorText(e)}`, "failed");
  }
}
