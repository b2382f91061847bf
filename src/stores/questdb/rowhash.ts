// Row hashes of the QuestDB store's bars: a keyed 53-bit hash of each bar's timestamp and eight
// numbers, written with the bar (column `row_hash`). An unchanged re-load then asks QuestDB for
// a count and a sum of hashes per series instead of reading every bar back (that read was the
// re-load's whole cost: QuestDB serves ~1.5 µs a bar in every format it has). A series whose sum
// differs, or that holds bars without a hash, is looked up bar by bar as before, so a hash only
// ever spares a read: it never decides alone that a bar changed.
//
// Written here, not taken from a library: it runs once per bar on the load's hot path, over
// numbers already in a Float64Array, and must give a JavaScript number (an ILP LONG without
// BigInt); Bun.hash works on bytes and answers a BigInt per call.
import type { BarColumns } from "../../domain/columns.ts";
import { COLUMN_WIDTH } from "../../domain/columns.ts";

/** Words per bar: nine doubles (ts, open … trades) as two 32-bit words each. */
const WORDS = COLUMN_WIDTH * 2;

/**
 * The store's key, expanded: per word a mask for each of the two lanes, and the lanes' seeds. The
 * key is random per store (kept in its progress table), so a feed that does not know it cannot
 * make a changed bar hash like the stored one.
 */
export type RowHashKey = { a: Uint32Array; b: Uint32Array; seedA: number; seedB: number };

/** splitmix32: the key's words spread over the masks (each mask depends on all key bits). */
export function expandKey(k0: number, k1: number): RowHashKey {
  let s = (k0 ^ Math.imul(k1, 0x9e3779b1)) >>> 0;
  const next = () => {
    s = (s + 0x9e3779b9) | 0;
    let z = s ^ k1;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return (z ^ (z >>> 15)) >>> 0;
  };
  const a = new Uint32Array(WORDS);
  const b = new Uint32Array(WORDS);
  for (let i = 0; i < WORDS; i++) (a[i] = next()), (b[i] = next());
  return { a, b, seedA: next(), seedB: next() };
}

const fmix = (h: number) => {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
};

/**
 * Each bar's hash, in [0, 2^53): its words as stored (-0 as 0, any NaN, i.e. a null, as one NaN)
 * go through two 32-bit lanes, each word masked by the key before it is mixed in.
 */
export function rowHashes(key: RowHashKey, c: BarColumns): Float64Array {
  const f = c.f64;
  const u = new Uint32Array(f.buffer, f.byteOffset, f.length * 2);
  const out = new Float64Array(c.n);
  const { a: ka, b: kb, seedA, seedB } = key;
  for (let i = 0, k = 0; i < c.n; i++, k += COLUMN_WIDTH) {
    let a = seedA;
    let b = seedB;
    for (let j = 0, w = 0; j < COLUMN_WIDTH; j++, w += 2) {
      const v = f[k + j]!;
      let lo = 0;
      let hi = 0;
      if (v !== v) hi = 0x7ff80000;
      else if (v !== 0) (lo = u[(k + j) * 2]!), (hi = u[(k + j) * 2 + 1]!);
      a = Math.imul(rot(a + (lo ^ ka[w]!), 15), 0xcc9e2d51) ^ hi ^ ka[w + 1]!;
      a = Math.imul(rot(a, 13), 5) + 0xe6546b64;
      b = Math.imul(rot(b ^ (hi + kb[w]!), 17), 0x1b873593) + (lo ^ kb[w + 1]!);
      b = Math.imul(rot(b, 11), 9) ^ 0x52dce729;
    }
    a = fmix(a ^ rot(b, 16));
    b = fmix(b + a);
    out[i] = (a >>> 11) * 4294967296 + (b >>> 0);
  }
  return out;
}

const rot = (x: number, r: number) => (x << r) | (x >>> (32 - r));

/** Bars per series a batch may sum: each sum of 32-bit halves stays exact (below 2^53). */
export const MAX_SUMMED = 2 ** 21;

/**
 * Per series, the sum of bars' hashes mod 2^64, as QuestDB's sum() of a LONG wraps: kept as the
 * sums of their high 21 and low 32 bits, each exact as a double up to MAX_SUMMED bars.
 */
export function hashSums(series: number) {
  const hi = new Float64Array(series);
  const lo = new Float64Array(series);
  return {
    add(s: number, h: number) {
      const top = Math.floor(h / 4294967296);
      hi[s] = hi[s]! + top;
      lo[s] = lo[s]! + (h - top * 4294967296);
    },
    total: (s: number): bigint => BigInt.asUintN(64, (BigInt(hi[s]!) << 32n) + BigInt(lo[s]!)),
  };
}

/** The progress table's row holding the key (kind 'meta'; its cursor: 16 hex digits). */
export const KEY_ROW = { kind: "meta", key: "row_hash_key" } as const;

/** A key as stored: 64 bits in hex. */
export const KEY_HEX = /^[0-9a-f]{16}$/;

/** A new random key, as the migration stores it. */
export const newKeyHex = () => Buffer.from(crypto.getRandomValues(new Uint8Array(8))).toString("hex");
