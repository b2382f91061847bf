// What a store's backup (src/stores/<store>/backup.ts, named by the registry) is made of: the
// steps that copy a store to a file and back, and their errors. The manifest, the checks of the
// content before and after, and the audit trail are src/monitor/backup.ts's.
import { createReadStream, createWriteStream } from "node:fs";
import { createInterface } from "node:readline";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { errorText } from "../lib/errors.ts";
import type { Store } from "./types.ts";

export class BackupError extends Error {
  override name = "BackupError";
  constructor(
    message: string,
    readonly code: "unsupported" | "tool_missing" | "checksum" | "exists" | "failed" | "mismatch" | "store" | "chain",
  ) {
    super(message);
  }
}

/** The snapshot a compressed backup holds: its size and sha256 before compression. */
export type RawSnapshot = { bytes: number; sha256: string };

/**
 * Reads what a manifest records (counts, the bars' checksum) from `snapshot`: a view of the store
 * that sees exactly what the backup holds (its reads run in the backup's own snapshot; not to be
 * closed). A service writing meanwhile changes neither.
 */
export type DescribeSnapshot<T> = (snapshot: Store) => Promise<T>;

export interface StoreBackup {
  /** How it is done, for help and docs (`ticksync backup --help`). */
  readonly method: string;
  /**
   * Write the store's backup into `dir` as `name` plus its own extension; returns the file
   * written, what `describe` read of the same snapshot, and (where the store has increments) the
   * snapshot's partition digests, for the next increment to compare with.
   */
  dump<T>(url: string, dir: string, name: string, describe: DescribeSnapshot<T>): Promise<{ file: string; raw?: RawSnapshot; described: T; digest?: SnapshotDigest }>;
  /**
   * Replace the store at `url` with the backup `file` (its sha256 already checked): an existing
   * store only with `force`; `raw`, the snapshot the manifest recorded, is checked where it applies.
   */
  restore(url: string, file: string, opts: { force: boolean; raw?: RawSnapshot }): Promise<void>;
  /** Where a restore went, as it is reported. */
  target(url: string): string;
  /** Increments since a previous backup; absent where the store has none. */
  readonly incremental?: IncrementalBackup;
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

// --- incremental backups ---
// An increment holds what changed since its parent backup, found by comparing digests rather
// than by reading the event journal: the journal does not record retention's deletes (nor any
// change made outside a batch), and a pruned journal would leave nothing to compare with, while
// a digest per partition of the bars (a series' bars within one time bucket) is exact for
// inserts, updates and deletes of every kind. A changed partition is carried whole (its old
// rows deleted, its current rows inserted); the other tables, small beside the bars, whole.

/** Per partition key, its bar count and the sum of its rows' hashes ("count:hex"). */
export type PartitionDigests = Map<string, string>;

/** What a store snapshot is, for an increment: its partitions' digests and the journal's last batch. */
export type SnapshotDigest = { digests: PartitionDigests; lastBatch: number };

export interface IncrementalBackup {
  /**
   * In one consistent snapshot of the store: the digests of its bar partitions, the increment
   * from the parent's digests to this snapshot written to `parent.file` (gzip, streamed), and
   * what `describe` reads of it. Returns the snapshot's digests, its journal position, the
   * partitions written and what was described.
   */
  snapshot<T>(url: string, parent: IncrementParent, describe: DescribeSnapshot<T>): Promise<SnapshotDigest & { changed: number; described: T }>;
  /** Apply an increment (its checksums already checked) to the store at `url`, in one transaction. */
  apply(url: string, file: string): Promise<void>;
}

/**
 * What an increment is made against: the parent's digests, its journal position (the journal
 * only grows, and loses its oldest batches to pruning: it is carried from there on, not whole),
 * and the file to write.
 */
export type IncrementParent = { digests: PartitionDigests; after: number; file: string };

/**
 * A partition's width: 256 bars of its interval, at least a day (1m: a day, 1h: 256 hours, 1d:
 * 256 days). Narrower carries less with each change but makes more digests (kept in memory while
 * a backup runs: 75M daily bars are about 400,000 partitions).
 */
export const partitionWidth = (intervalMs: number) => Math.max(86_400_000, intervalMs * 256);

const MASK64 = (1n << 64n) - 1n;

/** Accumulates partition digests from row hashes (64-bit, summed mod 2^64: order-independent). */
export class DigestAccumulator {
  private readonly sums = new Map<string, { n: number; sum: bigint }>();
  add(key: string, hash: bigint, n = 1) {
    const d = this.sums.get(key);
    if (d) (d.n += n), (d.sum = (d.sum + hash) & MASK64);
    else this.sums.set(key, { n, sum: hash & MASK64 });
  }
  result(): PartitionDigests {
    const out: PartitionDigests = new Map();
    for (const [k, d] of this.sums) out.set(k, `${d.n}:${d.sum.toString(16)}`);
    return out;
  }
}

/** The partitions whose digest differs between parent and now, or that exist on one side only. */
export function changedPartitions(parent: PartitionDigests, now: PartitionDigests): string[] {
  const out: string[] = [];
  for (const [k, d] of now) if (parent.get(k) !== d) out.push(k);
  for (const k of parent.keys()) if (!now.has(k)) out.push(k);
  return out;
}

/** A gzip file written line by line, waiting when the compressor is behind (bounded memory). */
export class GzipLineWriter {
  private readonly gz = createGzip({ level: 6 });
  private readonly done: Promise<void>;
  constructor(readonly path: string) {
    this.done = pipeline(this.gz, createWriteStream(path));
    this.done.catch(() => {}); // awaited by close(); not an unhandled rejection before that
  }
  private buffered = "";
  /** A line, sent on to the compressor in 64 KB pieces, each awaited until taken. */
  async line(text: string): Promise<void> {
    this.buffered += text + "\n";
    if (this.buffered.length >= 1 << 16) await this.flush();
  }
  /** Resolves when the compressor has taken the chunk (its write callback): bounded memory without 'drain'. */
  private send(chunk: Buffer | string): Promise<void> {
    return new Promise<void>((resolve, reject) => this.gz.write(chunk, (e) => (e ? reject(e) : resolve())));
  }
  private async flush(): Promise<void> {
    const text = this.buffered;
    this.buffered = "";
    if (text) await this.send(text);
  }
  /** Raw text (COPY output, already lines), after the lines before it; resolves when taken. */
  write(chunk: Buffer | string): Promise<void> {
    const before = this.buffered;
    this.buffered = "";
    // Both handed over now, in order; awaited together.
    const sent = before ? [this.send(before), this.send(chunk)] : [this.send(chunk)];
    return Promise.all(sent).then(() => {});
  }
  async close(): Promise<void> {
    await this.flush();
    this.gz.end();
    await this.done;
  }
}

/** The lines of a gzip file, streamed. */
export async function* gzipLines(path: string): AsyncGenerator<string> {
  const gunzip = createGunzip();
  // .pipe() does not pass the file's errors on: they end the gunzip, which the lines rethrow.
  createReadStream(path)
    .on("error", (e) => gunzip.destroy(e))
    .pipe(gunzip);
  const rl = createInterface({ input: gunzip, crlfDelay: Infinity });
  try {
    for await (const line of rl) yield line;
  } finally {
    rl.close();
  }
}

/**
 * A section header line of an increment: `insert` adds rows, `replace` empties the table first,
 * `journal` deletes the journal's batches before `first` (pruned since) and after `after` (the
 * parent's position; rows there are carried again), then adds rows.
 */
export type SectionHeader = { table: string; columns: string[]; mode: "insert" | "replace" | "journal"; after?: number; first?: number };
/** Ends a section's rows (as COPY's text format ends its data). */
export const SECTION_END = "\\.";

export async function writeDigests(path: string, d: SnapshotDigest): Promise<void> {
  const w = new GzipLineWriter(path);
  await w.line(JSON.stringify({ lastBatch: d.lastBatch, partitions: d.digests.size }));
  for (const [k, v] of d.digests) await w.line(JSON.stringify([k, v]));
  await w.close();
}

export async function readDigests(path: string): Promise<SnapshotDigest> {
  const digests: PartitionDigests = new Map();
  let head: { lastBatch: number; partitions: number } | null = null;
  for await (const line of gzipLines(path)) {
    if (!head) head = JSON.parse(line);
    else {
      const [k, v] = JSON.parse(line) as [string, string];
      digests.set(k, v);
    }
  }
  if (!head || head.partitions !== digests.size) throw new BackupError(`${path} is incomplete (${digests.size} of ${head?.partitions ?? "?"} partitions)`, "checksum");
  return { digests, lastBatch: head.lastBatch };
}
