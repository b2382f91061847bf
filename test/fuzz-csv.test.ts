// Property tests (fast-check) of the CSV reader, the cell fast path and the file checkpoint, on
// hostile files: quotes, CR/LF mixes, BOMs, NULs, invalid UTF-8, huge fields, enormous numbers,
// many columns, short and long rows. Properties: no crash and no hang; every data line is read
// once and ends accepted or rejected (the cell path and the row path agree on each); ingest into
// a real SQLite store accounts for every row; a checkpoint resumes only over an unchanged prefix.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import * as v from "valibot";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { csvSource, csvSourceSchema } from "../src/sources/csv.ts";
import { validateCells } from "../src/domain/cells.ts";
import { toColumns } from "../src/domain/columns.ts";
import { newValidateCache, validateBatch, type ValidateContext } from "../src/domain/quality.ts";
import { runIngest } from "../src/pipeline/ingest.ts";
import { prefixHash } from "../src/sources/csv-checkpoint.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { DEFAULT_MIN_QUALITY } from "../src/sources/common.ts";
import type { Cursor, Source, SourceBatch } from "../src/sources/types.ts";
import { FUZZ_TIMEOUT_MS, fuzzParams } from "./fuzz.ts";
import { tempDir } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-fuzz-csv-");
const NOW = Date.UTC(2025, 0, 15, 12);
const enc = new TextEncoder();
let fileNo = 0;

type Part = string | Uint8Array;
const LAYOUTS = {
  "stooq-bulk": { header: "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>", d: ",", cfg: { layout: "stooq-bulk" } },
  stooq: { header: "Date,Open,High,Low,Close,Volume", d: ",", cfg: { layout: "stooq", symbol: "PKN" } },
  generic: {
    header: "s;t;o;h;l;c;v;adj;n",
    d: ";",
    cfg: { layout: "generic", delimiter: ";", decimal: ",", columns: { symbol: "s", ts: "t", open: "o", high: "h", low: "l", close: "c", volume: "v", adjClose: "adj", trades: "n" } },
  },
} as const;
type Layout = keyof typeof LAYOUTS;

const INVALID_UTF8 = [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]].map((b) => new Uint8Array(b));
const price = fc.integer({ min: 1, max: 99_999 }).map((n) => String(n / 100));
const date = fc.integer({ min: 0, max: 390 }).map((d) => new Date(Date.UTC(2024, 0, 1) + d * 86_400_000).toISOString().slice(0, 10));
const HOSTILE: Part[] = ["", " ", '"', '""', '"a,b"', '"x""y"', '"6;1"', "\r", "\uFEFF", "\0", "1e400", "-1e400", "9".repeat(400), "1".repeat(16), "0x10", "NaN", "Infinity", "-0", "-5", "ŁÓDŹ", "🚀", "\t", ";", ",", "\u2028", ...INVALID_UTF8];
const cell: fc.Arbitrary<Part> = fc.oneof(
  { weight: 4, arbitrary: fc.oneof(price, date, fc.constantFrom("PKN", "CDR", "AAPL.US", "D", "000000", "20240102", "1234")) },
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 12 }) },
);

/** A plausible row of the layout (prices ordered: high the largest, low the smallest), its cells as text. */
function goodRow(layout: Layout): fc.Arbitrary<Part[]> {
  return fc.tuple(fc.constantFrom("PKN", "CDR", "AAPL.US", "pkn"), date, fc.array(price, { minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 1e7 })).map(([s, d, ps, vol]) => {
    const [l, o, c, h] = ps.sort((x, y) => Number(x) - Number(y)) as [string, string, string, string];
    if (layout === "stooq-bulk") return [s, "D", d.replaceAll("-", ""), "000000", o, h, l, c, String(vol), "0"];
    if (layout === "stooq") return [d, o, h, l, c, String(vol)];
    return [s, d, ...[o, h, l, c].map((p) => p.replace(".", ",")), String(vol), "", String(vol % 100)];
  });
}

function line(layout: Layout): fc.Arbitrary<Part[]> {
  return fc.oneof(
    { weight: 10, arbitrary: goodRow(layout) },
    // A good row with a few cells replaced, dropped or added.
    { weight: 6, arbitrary: fc.tuple(goodRow(layout), fc.array(fc.tuple(fc.nat(12), cell, fc.constantFrom("set", "drop", "add")), { maxLength: 3 })).map(([cells, edits]) => {
      const out = [...cells];
      for (const [i, c, op] of edits) op === "set" ? (out[i % out.length] = c) : op === "drop" ? out.splice(i % out.length, 1) : out.splice(i % (out.length + 1), 0, c);
      return out;
    }) },
    { weight: 3, arbitrary: fc.array(cell, { maxLength: 14 }) },
    { weight: 1, arbitrary: fc.constantFrom<Part[]>([""], ["  "], ["\uFEFF"], ["\0"]) },
    { weight: 1, arbitrary: fc.array(cell, { minLength: 200, maxLength: 1200 }) },
  );
}

type FuzzFile = { layout: Layout; bytes: Uint8Array; batchSize: number };

/** A whole file: header (maybe after a BOM), lines with mixed endings, maybe a huge field. */
const fuzzFile: fc.Arbitrary<FuzzFile> = fc.constantFrom<Layout>("stooq-bulk", "stooq", "generic").chain((layout) =>
  fc.record({
    layout: fc.constant(layout),
    bom: fc.boolean(),
    lines: fc.array(fc.tuple(line(layout), fc.constantFrom("\n", "\r\n", "\n", "\r\r\n")), { maxLength: 120, size: "max" }),
    huge: fc.option(fc.tuple(fc.nat(119), fc.constantFrom(70_000, 1_100_000)), { freq: 12 }),
    lastEol: fc.boolean(),
    batchSize: fc.constantFrom(1, 3, 64, 5000),
  }).map(({ layout, bom, lines, huge, lastEol, batchSize }) => {
    const { header, d } = LAYOUTS[layout];
    const parts: Part[] = [(bom ? "\uFEFF" : "") + header + "\n"];
    lines.forEach(([cells, eol], i) => {
      if (huge && huge[0] === i) cells = [...cells, "7".repeat(huge[1])];
      cells.forEach((c, k) => parts.push(...(k ? [d, c] : [c])));
      if (i < lines.length - 1 || lastEol) parts.push(eol);
    });
    const chunks = parts.map((p) => (typeof p === "string" ? enc.encode(p) : p));
    const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    chunks.reduce((at, c) => (bytes.set(c, at), at + c.length), 0);
    return { layout, bytes, batchSize };
  }),
);

function write(f: FuzzFile): { file: string; src: Source } {
  const file = join(dir, `f${++fileNo}.csv`);
  writeFileSync(file, f.bytes);
  return { file, src: csvSource("fz", v.parse(csvSourceSchema, { type: "csv", path: file, market: "WSE", ...LAYOUTS[f.layout].cfg })) };
}

/** Data lines the file has: every line after the header that is not blank once decoded. */
function dataLines(bytes: Uint8Array): number {
  const dec = new TextDecoder();
  let n = 0;
  let start = bytes.indexOf(10) + 1;
  if (start === 0) return 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(10, start);
    if (end < 0) end = bytes.length;
    if (dec.decode(bytes.subarray(start, end)).replace(/\r$/, "").trim() !== "") n++;
    start = end + 1;
  }
  return n;
}

const ctx = (): ValidateContext => ({ source: "fz", interval: "1d", market: "WSE", tsFormat: "auto", now: NOW, lastTs: new Map(), cache: newValidateCache() });

async function rowsOf(src: Source, file: string, cursor: Cursor | null, batchSize: number): Promise<SourceBatch[]> {
  const out: SourceBatch[] = [];
  for await (const b of src.read(file, cursor, batchSize)) out.push(b);
  return out;
}

describe("fuzz: the checkpoint's prefix hash", () => {
  test(
    "any split of the same bytes gives the same digest; one changed byte gives another",
    () => {
      const bytes = fc.integer({ min: 0, max: 300_000 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: 2 ** 31 - 1 })));
      fc.assert(
        fc.property(bytes, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }), fc.double({ min: 0, max: 1, noNaN: true }), ([n, seed], cuts, flip) => {
          const data = new Uint8Array(n);
          for (let i = 0, x = seed; i < n; i++) data[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
          const whole = prefixHash();
          whole.update(data);
          const split = prefixHash();
          const points = [0, ...cuts.map((c) => Math.floor(c * n)).sort((a, b) => a - b), n];
          for (let k = 1; k < points.length; k++) split.update(data.subarray(points[k - 1]!, points[k]!));
          expect(split.digest()).toBe(whole.digest());
          expect(split.length).toBe(n);
          if (n === 0) return;
          const other = data.slice();
          other[Math.min(n - 1, Math.floor(flip * n))]! ^= 1;
          const changed = prefixHash();
          changed.update(other);
          expect(changed.digest()).not.toBe(whole.digest());
        }),
        fuzzParams(100),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});

describe("fuzz: the CSV reader and the cell fast path", () => {
  test(
    "every data line is read once and is accepted or rejected, the same way by cells and by rows",
    async () => {
      // What the cases exercised, so a generator that stopped making some kind of row is seen.
      const seen = { accepted: 0, rejected: 0, shapes: 0, huge: 0 };
      await fc.assert(
        fc.asyncProperty(fuzzFile, async (f) => {
          const { file, src } = write(f);
          if (f.bytes.length > 1 << 20) seen.huge++;
          const rows = await rowsOf(src, file, null, f.batchSize);
          const [a, b] = [ctx(), ctx()];
          let read = 0;
          let i = 0;
          let lastOffset = 0;
          for await (const cells of src.readCells!(file, null, f.batchSize)) {
            const want = validateBatch(rows[i]!.rows, a);
            const got = validateCells(cells.cells, b);
            expect(cells.cursor).toEqual(rows[i]!.cursor);
            expect(cells.cells.n).toBe(rows[i]!.rows.length);
            const wantColumns = toColumns(want.bars);
            expect(Array.from(got.columns.f64.subarray(0, got.columns.n * 9))).toEqual(Array.from(wantColumns.f64));
            expect(got.columns.series).toEqual(wantColumns.series);
            expect(got.rejections).toEqual(want.rejections);
            expect(got.report).toEqual(want.report);
            // Every row ends accepted or rejected.
            expect(got.columns.n + got.rejections.length).toBe(cells.cells.n);
            // Checkpoints only at line ends, never backwards.
            const off = cells.cursor.offset as number;
            expect(f.bytes[off - 1]).toBe(10);
            expect(off).toBeGreaterThanOrEqual(lastOffset);
            lastOffset = off;
            read += cells.cells.n;
            seen.accepted += got.columns.n;
            seen.rejected += got.rejections.length;
            seen.shapes += got.rejections.filter((r) => /^(short row|extra cells)/.test(r.reason)).length;
            i++;
          }
          expect(i).toBe(rows.length);
          expect(read).toBe(dataLines(f.bytes));
        }),
        fuzzParams(100),
      );
      expect(seen.accepted).toBeGreaterThan(500);
      expect(seen.rejected).toBeGreaterThan(500);
      expect(seen.shapes).toBeGreaterThan(50);
      expect(seen.huge).toBeGreaterThan(0);
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "ingest into a real SQLite store accounts for every row: read = stored + quarantined",
    async () => {
      await fc.assert(
        fc.asyncProperty(fuzzFile, async (f) => {
          const { src } = write(f);
          const store = sqliteStore(join(dir, `s${fileNo}.db`));
          try {
            await store.migrate();
            const s = await runIngest({ store, source: src, batchSize: f.batchSize, now: () => NOW });
            // The quality gate fails a run that read rows and kept (almost) none; nothing else fails.
            expect(s.outcome).toBe(s.read > 0 && s.quality!.score < DEFAULT_MIN_QUALITY ? "failed" : "succeeded");
            expect(s.belowMinQuality).toBe(s.outcome === "failed");
            expect(s.read).toBe(dataLines(f.bytes));
            // Within a batch a repeated key is a duplicate (quarantined); across batches an upsert.
            expect(s.inserted + s.updated + s.unchanged + s.quarantined).toBe(s.read);
            expect(await store.countBars()).toBe(s.inserted);
            const q = await store.listQuarantine({ limit: 100_000 });
            expect(q.length).toBe(s.quarantined);
          } finally {
            await store.close();
          }
        }),
        fuzzParams(15),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "a checkpoint resumes only over an unchanged prefix: after any change, the rows are a fresh read's (or those after the cursor)",
    async () => {
      const change = fc.record({ op: fc.constantFrom("none", "append", "flip", "truncate", "insert", "delete"), at: fc.double({ min: 0, max: 1, noNaN: true }), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) });
      await fc.assert(
        fc.asyncProperty(fuzzFile, fc.nat(), change, async (f, pickCursor, c) => {
          const { file, src } = write(f);
          const first = await rowsOf(src, file, null, f.batchSize);
          const cursor = first[pickCursor % first.length]!.cursor;
          const old = f.bytes;
          const at = Math.floor(c.at * old.length);
          const cat = (...xs: Uint8Array[]) => Buffer.concat(xs);
          const next =
            c.op === "append" ? cat(old, c.bytes)
            : c.op === "flip" ? cat(old.subarray(0, at), new Uint8Array([(old[at] ?? 0) ^ (c.bytes[0]! || 1)]), old.subarray(at + 1))
            : c.op === "truncate" ? old.subarray(0, Math.max(1, at))
            : c.op === "insert" ? cat(old.subarray(0, at), c.bytes, old.subarray(at))
            : c.op === "delete" ? cat(old.subarray(0, at), old.subarray(at + c.bytes.length))
            : old;
          writeFileSync(file, next);
          const outcome = async (cur: Cursor | null) => rowsOf(src, file, cur, f.batchSize).then((bs) => bs.flatMap((b) => b.rows), (e: Error) => e.message);
          const [resumed, fresh] = [await outcome(cursor), await outcome(null)];
          const off = cursor.offset as number;
          const kept = off <= next.length && Buffer.from(next.subarray(0, off)).equals(Buffer.from(old.subarray(0, off)));
          if (typeof fresh === "string" || !kept) expect(resumed).toEqual(fresh);
          else expect(resumed).toEqual(fresh.filter((r) => Number(r.locator.slice(file.length + 1)) > (cursor.line as number)));
        }),
        fuzzParams(100),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});
