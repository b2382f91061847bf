// The CSV source's line walk against a plain reference: split the file into lines, drop one
// trailing \r, skip blank lines, split each with splitCsvLine and trim cells the way the source
// does. Random files with quotes, CRLF, blank and white-space lines, short and long rows,
// multi-byte text and every batch size must give the same rows, locators and cursors. A row with
// fewer or more cells than the header is marked malformed (the reason is checked in csv-parse).
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { join } from "node:path";
import { csvSource, csvSourceSchema, splitCsvLine } from "../src/sources/csv.ts";
import type { SourceBatch } from "../src/sources/types.ts";
import { tempDir, writeFile, rng } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-csv-fast-");

const CELLS = ["PKN", "61.5", "", " ", " 61.5", "61.5 ", "\t7\t", '"q,uoted"', '"say ""hi"""', '""', "Łódź", "🚀", "1e3", "x", "20240102", "\u00a0", "a b"];
const COLUMNS = { symbol: "s", ts: "d", open: "o", high: "h", low: "l", close: "c", volume: "v" };
const HEADER = ["s", "d", "n", "o", "h", "l", "c", "v"]; // n: an unmapped column between mapped ones

function randomFile(r: () => number, delimiter: string, lines: number): string {
  const out = [HEADER.join(delimiter)];
  for (let i = 0; i < lines; i++) {
    const x = r();
    if (x < 0.05) out.push("");
    else if (x < 0.08) out.push(["  ", "\t", "\u00a0", " \r"][Math.floor(r() * 4)]!);
    else {
      const width = r() < 0.85 ? HEADER.length : Math.floor(r() * (HEADER.length + 3));
      const cells = Array.from({ length: width }, () => (r() < 0.6 ? String(Math.floor(r() * 1000) / 10) : CELLS[Math.floor(r() * CELLS.length)]!));
      out.push(cells.join(delimiter));
    }
  }
  const eol = r() < 0.5 ? "\n" : "\r\n";
  return out.join(eol) + (r() < 0.8 ? eol : "");
}

/** The reference: the source's semantics written out line by line. */
function reference(file: string, text: string, delimiter: string): { locator: string; fields: Record<string, unknown> }[] {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  const header = splitCsvLine(lines[0]!.replace(/\r$/, ""), delimiter);
  const col = (name: string) => header.indexOf(name);
  const cell = (cols: string[], i: number) => {
    const val = cols[i];
    if (val === undefined || val === "") return val;
    return val.charCodeAt(0) <= 32 || val.charCodeAt(val.length - 1) <= 32 ? val.trim() : val;
  };
  const rows = [];
  for (let n = 1; n < lines.length; n++) {
    const l = lines[n]!.endsWith("\r") ? lines[n]!.slice(0, -1) : lines[n]!;
    if (l.trim() === "") continue;
    const cols = splitCsvLine(l, delimiter);
    rows.push({
      locator: `${file}:${n + 1}`,
      fields: {
        ...(cols.length === header.length ? {} : { malformed: expect.any(String) }),
        symbol: cell(cols, col("s")),
        ts: cell(cols, col("d")),
        open: cell(cols, col("o")),
        high: cell(cols, col("h")),
        low: cell(cols, col("l")),
        close: cell(cols, col("c")),
        volume: cell(cols, col("v")),
        adjClose: undefined,
        turnover: undefined,
        trades: undefined,
      },
    });
  }
  return rows;
}

describe("CSV line walk", () => {
  test("random files: the same rows, locators and cursors as the line-by-line reference", async () => {
    const r = rng(42);
    for (let f = 0; f < 60; f++) {
      const delimiter = [",", ";", "\t", "|"][f % 4]!;
      const text = randomFile(r, delimiter, 50 + Math.floor(r() * 300));
      const file = writeFile(join(dir, `f${f}.csv`), text);
      const src = csvSource("t", v.parse(csvSourceSchema, { type: "csv", path: file, layout: "generic", delimiter, symbol: undefined, columns: COLUMNS }));
      const batchSize = [1, 7, 100, 10_000][f % 4]!;
      const batches: SourceBatch[] = [];
      for await (const b of src.read(file, null, batchSize)) batches.push(b);
      const rows = batches.flatMap((b) => b.rows);
      expect(rows).toEqual(reference(file, text, delimiter));
      // Each cursor is the byte offset just after the batch's last whole line: a last line
      // without a newline is not covered (the next run reads it again).
      const bytes = Buffer.from(text);
      for (const b of batches) {
        const off = b.cursor.offset as number;
        expect(bytes[off - 1]).toBe(10);
      }
      expect(batches.at(-1)!.cursor.offset).toBe(bytes.lastIndexOf(10) + 1);
      // Resuming from every cursor yields exactly the rows after it.
      const cut = batches[Math.floor(batches.length / 2)]!;
      const rest: unknown[] = [];
      for await (const b of src.read(file, cut.cursor, batchSize)) rest.push(...b.rows);
      // (the rows after the cursor's line: an unterminated last line is after it, though read)
      expect(rest).toEqual(rows.filter((row) => Number(row.locator.split(":").at(-1)) > (cut.cursor.line as number)));
    }
  });
});
