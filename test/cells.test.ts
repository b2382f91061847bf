// Bulk validation from cells (src/domain/cells.ts, what the read worker runs on CSV files)
// against the ordinary way (the source's rows through validateBatch): random files full of good
// rows and bad ones — numbers in every form, blanks, white space, quotes, duplicates within and
// across symbols, unknown symbols, bad and future dates, short rows, gaps — in several layouts,
// delimiters and batch sizes must give the same bars, rejections, warnings and reports.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { join } from "node:path";
import { csvSource, csvSourceSchema } from "../src/sources/csv.ts";
import { plainNumber, validateCells } from "../src/domain/cells.ts";
import { toColumns } from "../src/domain/columns.ts";
import { newValidateCache, validateBatch, type ValidateContext } from "../src/domain/quality.ts";
import type { SourceBatch } from "../src/sources/types.ts";
import { tempDir, writeFile, rng } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-cells-");
const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

const ODD_NUMBERS = ["0", "-1", "1e3", "", " ", " 61.5", "61.5 ", "61,5", ".5", "5.", "+5", "0x10", "12345678901234567890", "1234567890123456", "0.1000000000000000055", "abc", "1.2.3", "007", "99999999999.99", "1e400", "NaN"];
const ODD_SYMBOLS = ["", " ", " PKN ", "bad symbol", "XX:PKN", "pkn", "PKN.WA", "^WIG20", "ŁÓDŹ"];
const SYMBOLS = ["PKN", "CDR", "11B", "KGH"];

type Layout = "stooq-bulk" | "generic-iso" | "generic-comma" | "stooq";

/** A day's date as the layout writes it (8 digits, or ISO), from a day number after 2024-01-01. */
const day = (d: number) => new Date(Date.UTC(2024, 0, 1) + d * 86_400_000).toISOString().slice(0, 10);

function randomFile(r: () => number, layout: Layout, rows: number): string {
  const d = layout === "generic-comma" ? ";" : ",";
  const lines: string[] = [];
  if (layout === "stooq-bulk") lines.push("<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>");
  else if (layout === "stooq") lines.push("Date,Open,High,Low,Close,Volume");
  else lines.push(["symbol", "when", "o", "h", "l", "c", "v", "adj", "trades"].join(d));
  const days = new Map<string, number>();
  for (let i = 0; i < rows; i++) {
    const x = r();
    if (x < 0.02) {
      lines.push(pick(r, ["", "   ", '"PKN",20240102']));
      continue;
    }
    const sym = r() < 0.93 ? pick(r, SYMBOLS) : pick(r, ODD_SYMBOLS);
    // Mostly rising days per symbol, with repeats (duplicates), steps back, gaps and the future.
    let dn = (days.get(sym) ?? Math.floor(r() * 5)) + (r() < 0.8 ? 1 : r() < 0.5 ? 0 : r() < 0.5 ? -3 : 9);
    if (r() < 0.01) dn = 500; // past NOW: from the future
    days.set(sym, dn);
    const base = 10 + r() * 300;
    const o = base * (1 + (r() - 0.5) * 0.02);
    const c = base * (1 + (r() - 0.5) * 0.02);
    const dec = Math.floor(r() * 4);
    let cells = [o, Math.max(o, c) * (1 + r() * 0.01), Math.min(o, c) * (1 - r() * 0.01), c].map((p) => p.toFixed(dec));
    if (r() < 0.1) cells = cells.map((p) => (r() < 0.3 ? pick(r, ODD_NUMBERS) : p));
    if (r() < 0.05) [cells[1], cells[2]] = [cells[2]!, cells[1]!]; // high below low
    const vol = r() < 0.9 ? String(Math.floor(r() * 1e6)) : pick(r, ODD_NUMBERS);
    const date = r() < 0.97 ? day(dn) : pick(r, ["2024-02-30", "yesterday", "", " 2024-05-06"]);
    if (layout === "stooq-bulk") {
      const time = r() < 0.9 ? "000000" : pick(r, ["093000", "", "0", "9300", " 093000"]);
      lines.push([sym, "D", date.replaceAll("-", ""), time, ...cells, vol, "0"].join(d).slice(0, r() < 0.02 ? 20 : undefined));
    } else if (layout === "stooq") lines.push([date, ...cells, vol].join(d));
    else {
      const when = r() < 0.7 ? date : `${date}T${pick(r, ["10:30:00Z", "00:00:00Z"])}`;
      const adj = r() < 0.5 ? "" : r() < 0.9 ? cells[3]! : pick(r, ODD_NUMBERS);
      const trades = r() < 0.5 ? "" : r() < 0.9 ? String(Math.floor(r() * 1000)) : pick(r, ["1.5", "-2", "x"]);
      const row = [sym, when, ...cells.map((p) => (layout === "generic-comma" ? p.replace(".", ",") : p)), vol, adj, trades];
      lines.push(row.join(d));
    }
  }
  return lines.join(r() < 0.5 ? "\n" : "\r\n") + "\n";
}

function sourceFor(layout: Layout, file: string) {
  if (layout === "stooq-bulk") return csvSource("t", v.parse(csvSourceSchema, { type: "csv", path: file, layout: "stooq-bulk", market: "WSE" }));
  if (layout === "stooq") return csvSource("t", v.parse(csvSourceSchema, { type: "csv", path: file, layout: "stooq", symbol: "PKN", market: "WSE" }));
  const columns = { symbol: "symbol", ts: "when", open: "o", high: "h", low: "l", close: "c", volume: "v", adjClose: "adj", trades: "trades" };
  return layout === "generic-comma"
    ? csvSource("t", v.parse(csvSourceSchema, { type: "csv", path: file, layout: "generic", delimiter: ";", decimal: ",", market: "WSE", columns }))
    : csvSource("t", v.parse(csvSourceSchema, { type: "csv", path: file, layout: "generic", market: "WSE", columns }));
}

describe("validation from cells", () => {
  test("plainNumber equals Number() on the cells it takes, and declines the rest", () => {
    const r = rng(7);
    const cells = ["0", "1", "61.5", "297.96", "0.1", "0.30000000000000004", "123456789012345", "1234567890123456", "99999999999.99", "5.", ".5", ".", "", "1e3", "-1", "+1", "1,5", "1.5.1", " 1", "007.50"];
    for (let i = 0; i < 20_000; i++) cells.push((r() * 10 ** Math.floor(r() * 12)).toFixed(Math.floor(r() * 9)));
    for (const c of cells) {
      const x = plainNumber(c, 0, c.length, false);
      if (Number.isNaN(x)) expect(/^\d*\.?\d*$/.test(c) && c.replace(".", "").length > 0 && c.replace(".", "").length <= 15).toBe(false);
      else expect(x).toBe(Number(c));
    }
    expect(plainNumber("1,5", 0, 3, true)).toBe(1.5);
    expect(plainNumber("1,5,1", 0, 5, true)).toBeNaN();
  });

  for (const layout of ["stooq-bulk", "generic-iso", "generic-comma", "stooq"] as const)
    test(`${layout}: the same bars, rejections, warnings and reports as validateBatch`, async () => {
      const r = rng(layout.length * 101);
      let rejected = 0;
      let accepted = 0;
      for (let f = 0; f < 12; f++) {
        const text = randomFile(r, layout, 200 + Math.floor(r() * 1500));
        const file = writeFile(join(dir, `${layout}-${f}.csv`), text);
        const src = sourceFor(layout, file);
        const batchSize = [1, 13, 250, 5000][f % 4]!;
        const ctx = (): ValidateContext => ({ source: "t", interval: "1d", market: "WSE", tsFormat: "auto", now: NOW, lastTs: new Map(), cache: newValidateCache() });
        const [a, b] = [ctx(), ctx()];
        const rows: SourceBatch[] = [];
        for await (const x of src.read(file, null, batchSize)) rows.push(x);
        // A batch's cells are read before the next is asked for (the source reuses its arrays).
        let i = 0;
        for await (const cells of src.readCells!(file, null, batchSize)) {
          expect(cells.cursor).toEqual(rows[i]!.cursor);
          const want = validateBatch(rows[i]!.rows, a);
          const got = validateCells(cells.cells, b);
          expect(cells.cells.n).toBe(rows[i]!.rows.length);
          const wantColumns = toColumns(want.bars);
          expect({ ...got.columns, f64: Array.from(got.columns.f64.subarray(0, got.columns.n * 9)), row: Array.from(got.columns.row.subarray(0, got.columns.n)) }).toEqual({
            ...wantColumns,
            f64: Array.from(wantColumns.f64),
            row: Array.from(wantColumns.row),
          });
          expect(got.rejections).toEqual(want.rejections);
          expect(got.warnings).toEqual(want.warnings);
          expect(got.report).toEqual(want.report);
          expect([...b.lastTs!]).toEqual([...a.lastTs!]);
          rejected += want.rejections.length;
          accepted += want.bars.length;
          i++;
        }
        expect(i).toBe(rows.length);
      }
      // The files exercise both ways: many rows go in, and many are turned away.
      expect(accepted).toBeGreaterThan(2000);
      expect(rejected).toBeGreaterThan(300);
    });
});
