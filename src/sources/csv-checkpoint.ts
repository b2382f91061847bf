// The CSV source's file checkpoint. A cursor covers a prefix of the file that ends at a line end
// (never inside a line) and holds a hash of that whole prefix. A run resumes from it only when
// the file still holds exactly those bytes (re-hashed, streaming, in bounded memory) and a
// newline just before the offset; otherwise the file is read again from the start, which
// idempotent upserts make safe. An appended file passes: only its new tail is parsed.
import type { BunFile } from "bun";
import type { Cursor } from "./types.ts";

/** Bytes are hashed in aligned chunks, each chunk's hash seeded with the hash before it. */
const CHUNK = 1 << 16;
/** Bytes read at a time when re-hashing a prefix. */
const SLICE = 1 << 20;

/**
 * A running hash of a file's first bytes, fed in order. wyhash (Bun.hash) is not incremental, so
 * the bytes are chained in fixed chunks: any split of the same bytes gives the same digest.
 * 64 bits: an accidental match of a changed prefix has odds of 2^-64.
 */
export type PrefixHash = { update(bytes: Uint8Array): void; digest(): string; readonly length: number };

export function prefixHash(): PrefixHash {
  let state = 0n;
  let length = 0;
  const pending = new Uint8Array(CHUNK);
  let fill = 0;
  return {
    get length() {
      return length;
    },
    update(bytes: Uint8Array) {
      length += bytes.length;
      let i = 0;
      if (fill > 0) {
        i = Math.min(CHUNK - fill, bytes.length);
        pending.set(bytes.subarray(0, i), fill);
        fill += i;
        if (fill < CHUNK) return;
        state = Bun.hash.wyhash(pending, state);
        fill = 0;
      }
      for (; i + CHUNK <= bytes.length; i += CHUNK) state = Bun.hash.wyhash(bytes.subarray(i, i + CHUNK), state);
      if (i < bytes.length) pending.set(bytes.subarray(i), 0), (fill = bytes.length - i);
    },
    digest() {
      return (fill === 0 ? state : Bun.hash.wyhash(pending.subarray(0, fill), state)).toString(16);
    },
  };
}

export type Resume = { offset: number; line: number; hash: PrefixHash };

/**
 * Where to resume `file` (`size` bytes, data from `dataOffset`) from `cursor`: its offset, line
 * and the hash of the bytes before it, carried on as the read goes on; null when the cursor does
 * not prove its prefix unchanged (or is of an older form), so the file is read from the start.
 */
export async function resumeFrom(file: BunFile, cursor: Cursor | null, size: number, dataOffset: number): Promise<Resume | null> {
  if (!cursor || typeof cursor.offset !== "number" || typeof cursor.hash !== "string") return null;
  const offset = cursor.offset;
  const line = Number(cursor.line);
  if (!Number.isSafeInteger(offset) || offset < dataOffset || offset > size || offset === 0 || !Number.isSafeInteger(line) || line < 0) return null;
  // Only at a line end: the byte before the offset is a newline (cheap to see before hashing).
  const before = await file.slice(offset - 1, offset).bytes();
  if (before[0] !== 10) return null;
  const hash = prefixHash();
  for (let at = 0; at < offset; at += SLICE) hash.update(await file.slice(at, Math.min(offset, at + SLICE)).bytes());
  if (hash.length !== offset || hash.digest() !== cursor.hash) return null;
  return { offset, line, hash };
}
