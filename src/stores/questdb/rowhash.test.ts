// Row hashes (src/stores/questdb/rowhash.ts): a whole number below 2^53 per bar, the same for the
// same stored values (-0 as 0, every NaN as one null), different when any of the nine numbers or
// the key differs, and per-series sums equal to BigInt arithmetic mod 2^64.
import { expect, test } from "bun:test";
import fc from "fast-check";
import { COLUMN_WIDTH, type BarColumns } from "../../domain/columns.ts";
import { expandKey, hashSums, MAX_SUMMED, rowHashes } from "./rowhash.ts";
import { testTimeout } from "../../../test/timeout.ts";

testTimeout();

const columns = (rows: number[][]): BarColumns => ({ n: rows.length, series: [], row: new Uint32Array(rows.length), f64: Float64Array.from(rows.flat()) });
const hashOf = (row: number[], key = expandKey(1, 2)) => rowHashes(key, columns([row]))[0]!;

const value = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(Number.NaN));
const row = fc.tuple(fc.integer({ min: 0, max: 4102444800000 }), ...Array.from({ length: COLUMN_WIDTH - 1 }, () => value)).map((r) => [...r]);

test("a bar's hash is a whole number below 2^53, the same for the same values and key", () => {
  fc.assert(
    fc.property(row, fc.integer(), fc.integer(), (r, k0, k1) => {
      const h = hashOf(r, expandKey(k0, k1));
      expect(Number.isSafeInteger(h) && h >= 0).toBe(true);
      expect(hashOf([...r], expandKey(k0, k1))).toBe(h);
    }),
  );
});

test("-0 hashes as 0 and every NaN as one null, as QuestDB stores them", () => {
  const odd = new Float64Array(new Uint32Array([1, 0x7ff80000 | 0x1234]).buffer)[0]!;
  expect(Number.isNaN(odd)).toBe(true);
  const base = [1_700_000_000_000, 1, 2, 0.5, 1.5, 100, Number.NaN, 0, 7];
  const variant = [1_700_000_000_000, 1, 2, 0.5, 1.5, 100, odd, -0, 7];
  expect(hashOf(variant)).toBe(hashOf(base));
});

test("changing any one of the nine numbers, or the key, changes the hash", () => {
  fc.assert(
    fc.property(row, fc.nat(COLUMN_WIDTH - 1), value, (r, j, v) => {
      fc.pre(!Object.is(r[j], v) && !(Number.isNaN(r[j]!) && Number.isNaN(v)) && !(r[j] === 0 && v === 0) && (j !== 0 || (Number.isInteger(v) && v >= 0)));
      const changed = [...r];
      changed[j] = v;
      expect(hashOf(changed)).not.toBe(hashOf(r));
    }),
  );
  fc.assert(fc.property(row, (r) => expect(hashOf(r, expandKey(1, 3))).not.toBe(hashOf(r, expandKey(1, 2)))));
});

test("two bars' values swapped between their timestamps change their sum", () => {
  const key = expandKey(5, 6);
  const a = [86_400_000, 10, 11, 9, 10.5, 1000, Number.NaN, Number.NaN, Number.NaN];
  const b = [2 * 86_400_000, 10.5, 12, 10, 11.5, 2000, Number.NaN, Number.NaN, Number.NaN];
  const [ha, hb] = rowHashes(key, columns([a, b]));
  const [sa, sb] = rowHashes(key, columns([[a[0]!, ...b.slice(1)], [b[0]!, ...a.slice(1)]]));
  expect(BigInt(sa!) + BigInt(sb!)).not.toBe(BigInt(ha!) + BigInt(hb!));
});

test("per-series sums equal BigInt sums mod 2^64, also where a double's sum would round", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(2), fc.integer({ min: 0, max: 2 ** 53 - 1 })), { maxLength: 400 }), (items) => {
      const sums = hashSums(3);
      const want = [0n, 0n, 0n];
      for (const [s, h] of items) sums.add(s, h), (want[s]! += BigInt(h));
      for (let s = 0; s < 3; s++) expect(sums.total(s)).toBe(BigInt.asUintN(64, want[s]!));
    }),
  );
  // The largest hashes, as many as a series may sum: exact.
  const sums = hashSums(1);
  const h = 2 ** 53 - 1;
  for (let i = 0; i < MAX_SUMMED; i++) sums.add(0, h);
  expect(sums.total(0)).toBe(BigInt.asUintN(64, BigInt(h) * BigInt(MAX_SUMMED)));
});
