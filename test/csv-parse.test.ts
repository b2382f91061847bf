// The CSV source on small real files: layouts, line endings, BOM, decimal commas, batching, and
// byte-offset cursors that resume exactly where the last batch ended.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { appendFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { csvSource, csvSourceSchema, splitCsvLine, symbolFromFileName } from "../src/sources/csv.ts";
import { SourceError, type Cursor, type SourceBatch } from "../src/sources/types.ts";
import { parseTimestamp } from "../src/domain/time.ts";
import { tempDir, writeFile } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-csv-");
let n = 0;
/** A fresh file name per test, so tests never see each other's files. */
const fresh = (name: string) => join(dir, String(++n), name);

const config = (c: Record<string, unknown>) => v.parse(csvSourceSchema, { type: "csv", ...c });

async function readAll(file: string, cfg: Record<string, unknown> = {}, cursor: Cursor | null = null, batchSize = 1000): Promise<SourceBatch[]> {
  const src = csvSource("test", config({ path: file, ...cfg }));
  const out: SourceBatch[] = [];
  for await (const b of src.read(file, cursor, batchSize)) out.push(b);
  return out;
}

const rowsOf = (batches: SourceBatch[]) => batches.flatMap((b) => b.rows);
const bytes = (s: string) => Buffer.byteLength(s, "utf8");

const HEADER = "Date,Open,High,Low,Close,Volume";
const DAYS = ["2024-01-02,61.5,62.75,60.1,62,1234", "2024-01-03,62,63,61,62.5,99", "2024-01-04,62.5,64,62,63.9,500", "2024-01-05,63.9,64,63,63.5,700", "2024-01-08,63.5,65,63,64.8,800"];

describe("splitCsvLine", () => {
  test("plain fields and empty fields", () => {
    expect(splitCsvLine("a,b,,d,", ",")).toEqual(["a", "b", "", "d", ""]);
    expect(splitCsvLine("", ",")).toEqual([""]);
  });

  test("quoted fields keep delimiters, escaped quotes become one quote", () => {
    expect(splitCsvLine('a,"b,c","d""e",f', ",")).toEqual(["a", "b,c", 'd"e', "f"]);
    expect(splitCsvLine('"",x,""', ",")).toEqual(["", "x", ""]);
    expect(splitCsvLine('"say ""hi""",2', ",")).toEqual(['say "hi"', "2"]);
  });

  test("semicolon delimiter, with commas as decimal marks left alone", () => {
    expect(splitCsvLine("PKN;2024-01-02;61,5;;62", ";")).toEqual(["PKN", "2024-01-02", "61,5", "", "62"]);
    expect(splitCsvLine('"Orlen; SA";61,5', ";")).toEqual(["Orlen; SA", "61,5"]);
  });
});

describe("symbolFromFileName", () => {
  test("Stooq names", () => {
    expect(symbolFromFileName("pkn_d.csv")).toBe("pkn");
    expect(symbolFromFileName("/data/stooq/aapl_us_d.csv")).toBe("aapl.us");
    expect(symbolFromFileName("cdr_pl_w.txt")).toBe("cdr.pl");
    expect(symbolFromFileName("wig20_5.csv")).toBe("wig20");
  });

  test("a name that is already a symbol", () => {
    expect(symbolFromFileName("PKN.WA.csv")).toBe("PKN.WA");
    expect(symbolFromFileName("PKN.CSV")).toBe("PKN");
  });
});

describe("Stooq daily layout", () => {
  test("rows become raw fields; the symbol comes from the file name", async () => {
    const file = writeFile(fresh("pkn_d.csv"), [HEADER, DAYS[0], DAYS[1]].join("\n") + "\n");
    const batches = await readAll(file);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.rows).toEqual([
      { locator: `${file}:2`, fields: { symbol: "pkn", ts: "2024-01-02", open: "61.5", high: "62.75", low: "60.1", close: "62", volume: "1234" } },
      { locator: `${file}:3`, fields: { symbol: "pkn", ts: "2024-01-03", open: "62", high: "63", low: "61", close: "62.5", volume: "99" } },
    ]);
    expect(batches[0]!.cursor).toMatchObject({ offset: bytes(HEADER + "\n" + DAYS[0] + "\n" + DAYS[1] + "\n"), line: 3 });
  });

  test("an index file without a Volume column has no volume field (not an empty one)", async () => {
    const file = writeFile(fresh("wig20_d.csv"), "Date,Open,High,Low,Close\n2024-01-02,2300,2310,2290,2305.5\n");
    const [row] = rowsOf(await readAll(file));
    expect(row!.fields).toEqual({ symbol: "wig20", ts: "2024-01-02", open: "2300", high: "2310", low: "2290", close: "2305.5" });
    // undefined (no column), not "" (an empty cell): validation reads the first as volume 0.
    expect(row!.fields.volume).toBeUndefined();
  });

  test("a configured symbol wins over the file name", async () => {
    const file = writeFile(fresh("export.csv"), [HEADER, DAYS[0]].join("\n") + "\n");
    expect(rowsOf(await readAll(file, { symbol: "PKN.WA" }))[0]!.fields.symbol).toBe("PKN.WA");
  });

  test("header names match case-insensitively and quoted", async () => {
    const file = writeFile(fresh("q_d.csv"), '"date","OPEN","High","Low","Close","Volume"\n"2024-01-02","1","2","0.5","1.5","100"\n');
    expect(rowsOf(await readAll(file))[0]!.fields).toEqual({ symbol: "q", ts: "2024-01-02", open: "1", high: "2", low: "0.5", close: "1.5", volume: "100" });
  });

  test("CRLF line endings: no \\r in the last field, offsets count the \\r", async () => {
    const text = [HEADER, DAYS[0], DAYS[1]].join("\r\n") + "\r\n";
    const file = writeFile(fresh("crlf_d.csv"), text);
    const batches = await readAll(file);
    const rows = rowsOf(batches);
    expect(rows.map((r) => r.fields.volume)).toEqual(["1234", "99"]);
    expect(batches.at(-1)!.cursor.offset).toBe(bytes(text));
  });

  test("a last line without a trailing newline is read, and the cursor stops before it", async () => {
    const text = [HEADER, DAYS[0], DAYS[1]].join("\n");
    const file = writeFile(fresh("nonl_d.csv"), text);
    const batches = await readAll(file);
    expect(rowsOf(batches).map((r) => r.fields.ts)).toEqual(["2024-01-02", "2024-01-03"]);
    expect(rowsOf(batches).at(-1)!.fields.volume).toBe("99");
    // The line may still be being written: the checkpoint covers whole lines only.
    expect(batches.at(-1)!.cursor).toMatchObject({ offset: bytes(HEADER + "\n" + DAYS[0] + "\n"), line: 2 });
    expect(rowsOf(await readAll(file, {}, batches.at(-1)!.cursor)).map((r) => r.locator)).toEqual([`${file}:3`]);
  });

  test("a UTF-8 BOM before the header does not hide the Date column", async () => {
    const text = "\uFEFF" + [HEADER, DAYS[0]].join("\r\n");
    const file = writeFile(fresh("bom_d.csv"), text);
    const batches = await readAll(file);
    expect(rowsOf(batches)[0]!.fields.ts).toBe("2024-01-02");
    expect(batches.at(-1)!.cursor.offset).toBe(bytes("\uFEFF" + HEADER + "\r\n")); // the BOM is 3 bytes; the last line has no newline
  });

  test("blank lines are skipped but counted in locators", async () => {
    const file = writeFile(fresh("blank_d.csv"), [HEADER, DAYS[0], "", "  ", DAYS[1], ""].join("\n") + "\n");
    expect(rowsOf(await readAll(file)).map((r) => r.locator)).toEqual([`${file}:2`, `${file}:5`]);
  });

  test("a header-only file yields one empty batch with a cursor at its end", async () => {
    const file = writeFile(fresh("empty_d.csv"), HEADER + "\n");
    const batches = await readAll(file);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.rows).toEqual([]);
    expect(batches[0]!.cursor.offset).toBe(bytes(HEADER + "\n"));
  });

  test("an empty file is a SourceError", async () => {
    const file = writeFile(fresh("zero_d.csv"), "");
    await expect(readAll(file)).rejects.toThrow(SourceError);
  });

  test("a header line over 64 KiB and a data line over 16 MiB are SourceErrors, not held whole", async () => {
    const wide = writeFile(fresh("wide_d.csv"), "Date," + "x".repeat(70_000) + "\n" + DAYS[0] + "\n");
    await expect(readAll(wide)).rejects.toThrow(`wide_d.csv: header line longer than 65536 bytes`);
    const long = writeFile(fresh("long_d.csv"), [HEADER, DAYS[0], "2024-01-03," + "9".repeat(17 << 20), DAYS[1]].join("\n") + "\n");
    await expect(readAll(long)).rejects.toThrow(`long_d.csv: line 3 is longer than ${16 << 20} bytes`);
  });

  test("a BOM at the start of a file without a header is not part of its first cell", async () => {
    const file = writeFile(fresh("bomnohdr.csv"), "\uFEFF2024-01-02,1,2,0.5,1.5,7\n");
    const rows = rowsOf(await readAll(file, { layout: "generic", header: false, symbol: "PKN", columns: { ts: 0, open: 1, high: 2, low: 3, close: 4, volume: 5 } }));
    expect(rows.map((r) => r.fields.ts)).toEqual(["2024-01-02"]);
  });
});

describe("missing columns", () => {
  test("a header without a mapped column: SourceError naming the column and the header", async () => {
    const file = writeFile(fresh("noclose_d.csv"), "Date,Open,High,Low,Volume\n2024-01-02,1,2,0.5,100\n");
    const err = await readAll(file).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SourceError);
    expect((err as Error).message).toContain('column "Close" for close not found');
    expect((err as Error).message).toContain("Date,Open,High,Low,Volume");
    expect((err as Error).message).toContain(file);
  });

  test("a volume column configured explicitly must exist even in a preset", async () => {
    const file = writeFile(fresh("novol_d.csv"), "Date,Open,High,Low,Close\n2024-01-02,1,2,0.5,1.5\n");
    await expect(readAll(file, { columns: { volume: "Vol" } })).rejects.toThrow('column "Vol" for volume not found');
  });

  test("generic layout: every mapped column must exist", async () => {
    const file = writeFile(fresh("g.csv"), "d,o,h,l,c\n2024-01-02,1,2,0.5,1.5\n");
    const cfg = { layout: "generic", symbol: "PKN", columns: { ts: "d", open: "o", high: "h", low: "l", close: "c", volume: "v" } };
    await expect(readAll(file, cfg)).rejects.toThrow('column "v" for volume not found');
  });

  test("generic layout without a ts or date mapping", async () => {
    const file = writeFile(fresh("g2.csv"), "d,o,h,l,c\n2024-01-02,1,2,0.5,1.5\n");
    await expect(readAll(file, { layout: "generic", symbol: "PKN", columns: { open: "o", high: "h", low: "l", close: "c" } })).rejects.toThrow("no ts or date column");
  });
});

describe("generic layout", () => {
  test("semicolons and decimal commas, columns mapped by name, unmapped ones ignored", async () => {
    const text = "Ticker;Data;Otwarcie;Max;Min;Zamkniecie;Wolumen;Nazwa\nPKN;2024-01-02;61,5;62,75;60,1;62,0;1234;Orlen SA\n";
    const file = writeFile(fresh("gpw.csv"), text);
    const cfg = { layout: "generic", delimiter: ";", decimal: ",", columns: { symbol: "Ticker", ts: "Data", open: "Otwarcie", high: "Max", low: "Min", close: "Zamkniecie", volume: "Wolumen" } };
    expect(rowsOf(await readAll(file, cfg))).toEqual([
      { locator: `${file}:2`, fields: { symbol: "PKN", ts: "2024-01-02", open: "61.5", high: "62.75", low: "60.1", close: "62.0", volume: "1234" } },
    ]);
  });

  test("no header: columns by 0-based index, locators count from line 1", async () => {
    const file = writeFile(fresh("nohdr.csv"), "2024-01-02,1,2,0.5,1.5,7\n2024-01-03,1,2,0.5,1.5,8\n");
    const rows = rowsOf(await readAll(file, { layout: "generic", header: false, symbol: "PKN", columns: { ts: 0, open: 1, high: 2, low: 3, close: 4, volume: 5 } }));
    expect(rows.map((r) => [r.locator, r.fields.ts, r.fields.volume])).toEqual([
      [`${file}:1`, "2024-01-02", "7"],
      [`${file}:2`, "2024-01-03", "8"],
    ]);
  });

  test("multi-byte UTF-8 in an unmapped column does not break byte offsets", async () => {
    const header = "symbol;date;open;high;low;close;volume;name";
    const lines = ["PKN;2024-01-02;61,5;62,75;60,1;62,0;1234;Łódź SA", "CDR;2024-01-02;120;121;119;120,5;10;Zażółć gęślą jaźń", "LPP;2024-01-02;1,5;2;1;1,5;3;Kraków 🚀"];
    const text = [header, ...lines].join("\n") + "\n";
    const file = writeFile(fresh("utf8.csv"), text);
    const cfg = { layout: "generic", delimiter: ";", decimal: ",", columns: { symbol: "symbol", date: "date", open: "open", high: "high", low: "low", close: "close", volume: "volume" } };
    const batches = await readAll(file, cfg, null, 1);
    expect(batches).toHaveLength(3);
    let expected = bytes(header + "\n");
    for (let i = 0; i < 3; i++) {
      expected += bytes(lines[i]! + "\n");
      expect(batches[i]!.cursor.offset).toBe(expected);
    }
    expect(batches.at(-1)!.cursor.offset).toBe(bytes(text));
    expect(rowsOf(batches).map((r) => r.fields.symbol)).toEqual(["PKN", "CDR", "LPP"]);
    // Resuming after the first Łódź row starts exactly at the CDR line.
    const rest = rowsOf(await readAll(file, cfg, batches[0]!.cursor, 10));
    expect(rest.map((r) => [r.locator, r.fields.symbol, r.fields.close])).toEqual([
      [`${file}:3`, "CDR", "120.5"],
      [`${file}:4`, "LPP", "1.5"],
    ]);
  });

  test("a multi-byte field in a mapped column survives", async () => {
    const file = writeFile(fresh("sym.csv"), "s,d,o,h,l,c\nŁÓDŹ,2024-01-02,1,2,0.5,1.5\n");
    const [row] = rowsOf(await readAll(file, { layout: "generic", columns: { symbol: "s", ts: "d", open: "o", high: "h", low: "l", close: "c" } }));
    expect(row!.fields.symbol).toBe("ŁÓDŹ");
  });
});

describe("stooq-bulk layout", () => {
  test("<TICKER>, <DATE> and <TIME>: daily rows are dates, intraday rows get their time", async () => {
    const text = [
      "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>",
      "PKN,D,20240102,000000,61.5,62.75,60.1,62,1234,0",
      "PKN,5,20240102,090500,61.5,62.75,60.1,62,10,0",
      "AAPL.US,5,20240102,93000,185,186,184.5,185.5,1000,0",
    ].join("\n") + "\n";
    const file = writeFile(fresh("bulk.txt"), text);
    const rows = rowsOf(await readAll(file, { layout: "stooq-bulk" }));
    expect(rows.map((r) => r.fields.symbol)).toEqual(["PKN", "PKN", "AAPL.US"]);
    expect(rows.map((r) => parseTimestamp(r.fields.ts))).toEqual([Date.UTC(2024, 0, 2), Date.UTC(2024, 0, 2, 9, 5), Date.UTC(2024, 0, 2, 9, 30)]);
    expect(rows[1]!.fields).toMatchObject({ ts: "2024-01-02 09:05:00", open: "61.5", high: "62.75", low: "60.1", close: "62", volume: "10" });
    for (const r of rows) {
      expect(r.fields).not.toHaveProperty("date");
      expect(r.fields).not.toHaveProperty("time");
    }
  });

  test("the header says which Stooq layout a file is: a bulk file read with the default layout, a daily one with stooq-bulk", async () => {
    const bulk = writeFile(fresh("bulk2.txt"), "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>\nPKN,D,20240102,000000,61.5,62.75,60.1,62,1234,0\n");
    const fromBulk = rowsOf(await readAll(bulk));
    expect(fromBulk.map((r) => [r.fields.symbol, parseTimestamp(r.fields.ts)])).toEqual([["PKN", Date.UTC(2024, 0, 2)]]);
    const daily = writeFile(fresh("pkn_d.csv"), [HEADER, DAYS[0]].join("\n") + "\n");
    const fromDaily = rowsOf(await readAll(daily, { layout: "stooq-bulk" }));
    expect(fromDaily.map((r) => r.fields.close)).toEqual(["62"]);
    // Mapped columns mean the caller chose: no guessing then.
    await expect(readAll(bulk, { columns: { date: "Date" } })).rejects.toThrow(/column "Date" for date not found/);
  });
});

describe("batches and cursors", () => {
  const text = [HEADER, ...DAYS].join("\n") + "\n";

  test("batchSize 2 over 5 rows: 3 batches, offsets increasing to the file size", async () => {
    const file = writeFile(fresh("five_d.csv"), text);
    const batches = await readAll(file, {}, null, 2);
    expect(batches.map((b) => b.rows.length)).toEqual([2, 2, 1]);
    const offsets = batches.map((b) => b.cursor.offset as number);
    expect(offsets).toEqual([bytes([HEADER, DAYS[0], DAYS[1]].join("\n") + "\n"), bytes([HEADER, ...DAYS.slice(0, 4)].join("\n") + "\n"), bytes(text)]);
    expect(batches.map((b) => b.cursor.line)).toEqual([3, 5, 6]);
  });

  test("an exact multiple of the batch size yields no trailing empty batch", async () => {
    const file = writeFile(fresh("four_d.csv"), [HEADER, ...DAYS.slice(0, 4)].join("\n") + "\n");
    expect((await readAll(file, {}, null, 2)).map((b) => b.rows.length)).toEqual([2, 2]);
  });

  test("resuming from the 2nd batch's cursor yields only the remaining rows", async () => {
    const file = writeFile(fresh("resume_d.csv"), text);
    const first = await readAll(file, {}, null, 2);
    const rest = await readAll(file, {}, first[1]!.cursor, 2);
    expect(rowsOf(rest).map((r) => [r.locator, r.fields.ts])).toEqual([[`${file}:6`, "2024-01-08"]]);
    expect(rest.at(-1)!.cursor.offset).toBe(bytes(text));
  });

  test("an unchanged, fully read file yields nothing from its final cursor", async () => {
    const file = writeFile(fresh("done_d.csv"), text);
    const all = await readAll(file, {}, null, 2);
    expect(await readAll(file, {}, all.at(-1)!.cursor, 2)).toEqual([]);
  });

  test("an appended file yields only the new rows", async () => {
    const file = writeFile(fresh("grow_d.csv"), [HEADER, ...DAYS.slice(0, 3)].join("\n") + "\n");
    const before = await readAll(file);
    appendFileSync(file, DAYS.slice(3).join("\n") + "\n");
    const after = await readAll(file, {}, before.at(-1)!.cursor);
    expect(rowsOf(after).map((r) => [r.locator, r.fields.ts])).toEqual([
      [`${file}:5`, "2024-01-05"],
      [`${file}:6`, "2024-01-08"],
    ]);
    expect(after.at(-1)!.cursor.offset).toBe(bytes(text));
  });

  test("a file replaced by a different one (different first bytes) is read from the start", async () => {
    const file = writeFile(fresh("swap_d.csv"), text);
    const old = await readAll(file);
    writeFileSync(file, ["date,open,high,low,close,volume", "2024-02-01,1,2,0.5,1.5,1", "2024-02-02,1,2,0.5,1.5,2"].join("\n") + "\n");
    const rows = rowsOf(await readAll(file, {}, old.at(-1)!.cursor));
    expect(rows.map((r) => [r.locator, r.fields.ts])).toEqual([
      [`${file}:2`, "2024-02-01"],
      [`${file}:3`, "2024-02-02"],
    ]);
  });

  test("a file rewritten in place to the same size (a corrected row) is read again", async () => {
    const file = writeFile(fresh("fix_d.csv"), text);
    const old = await readAll(file);
    writeFileSync(file, text.replace("62.5,99", "62.5,98"));
    const later = new Date(Date.now() + 10_000);
    utimesSync(file, later, later);
    const rows = rowsOf(await readAll(file, {}, old.at(-1)!.cursor));
    expect(rows).toHaveLength(5);
    expect(rows[1]!.fields.volume).toBe("98");
  });

  test("a cursor from before the data (or past the end) is not trusted", async () => {
    const file = writeFile(fresh("odd_d.csv"), text);
    const [b] = await readAll(file);
    expect(rowsOf(await readAll(file, {}, { ...b!.cursor, offset: 3, line: 0 }))).toHaveLength(5);
    expect(rowsOf(await readAll(file, {}, { ...b!.cursor, offset: bytes(text) + 10 }))).toHaveLength(5);
  });

  test("over 1 MiB: slices join without losing, splitting or repeating a line", async () => {
    // 45k rows of ~50 bytes cross the source's 1 MiB read slice twice. The first row's name is
    // padded so that the first slice ends inside a two-byte character.
    const SLICE = 1 << 20;
    const start = Date.UTC(2000, 0, 1);
    const header = "ts;o;h;l;c;v;name";
    let lines: string[] = [];
    let text = "";
    for (let pad = 0; pad < 64; pad++) {
      lines = [];
      for (let i = 0; i < 45_000; i++) lines.push(`${new Date(start + i * 60_000).toISOString()};1;2;0,5;1,5;${i};Łódź${i === 0 ? "x".repeat(pad) : ""}`);
      text = [header, ...lines].join("\n") + "\n";
      const data = Buffer.from(text).subarray(bytes(header + "\n"));
      if ((data[SLICE]! & 0xc0) === 0x80) break; // a UTF-8 continuation byte
    }
    expect((Buffer.from(text).subarray(bytes(header + "\n"))[SLICE]! & 0xc0) === 0x80).toBe(true);
    expect(bytes(text)).toBeGreaterThan(2 * SLICE);
    const file = writeFile(fresh("big.csv"), text);
    const cfg = { layout: "generic", delimiter: ";", decimal: ",", symbol: "PKN", interval: "1m", columns: { ts: "ts", open: "o", high: "h", low: "l", close: "c", volume: "v" } };
    const batches = await readAll(file, cfg, null, 7000);
    const rows = rowsOf(batches);
    expect(rows).toHaveLength(45_000);
    expect(rows.every((r, i) => r.fields.volume === String(i))).toBe(true);
    expect(rows[44_999]!.locator).toBe(`${file}:45001`);
    expect(batches.map((b) => b.rows.length)).toEqual([7000, 7000, 7000, 7000, 7000, 7000, 3000]);
    // Each cursor is the byte length of header + the rows handed out so far.
    let consumed = bytes(header + "\n");
    for (const b of batches) {
      consumed += b.rows.reduce((s, r) => s + bytes(lines[Number(r.fields.volume)]! + "\n"), 0);
      expect(b.cursor.offset).toBe(consumed);
    }
    // Resuming mid-file continues with the next row.
    const rest = rowsOf(await readAll(file, cfg, batches[2]!.cursor, 100_000));
    expect(rest).toHaveLength(24_000);
    expect(rest[0]!.fields.volume).toBe("21000");
  });
});

describe("streams", () => {
  test("a directory lists its csv and txt files, sorted", async () => {
    const d = join(dir, "streams");
    writeFile(join(d, "b_d.csv"), HEADER + "\n");
    writeFile(join(d, "a_d.txt"), HEADER + "\n");
    writeFile(join(d, "notes.md"), "x");
    const src = csvSource("test", config({ path: d }));
    expect(await src.streams()).toEqual([join(d, "a_d.txt"), join(d, "b_d.csv")]);
  });

  test("a relative path is relative to the base directory", async () => {
    const d = join(dir, "rel");
    writeFile(join(d, "data", "pkn_d.csv"), HEADER + "\n");
    expect(await csvSource("test", config({ path: "data/pkn_d.csv" }), d).streams()).toEqual([join(d, "data", "pkn_d.csv")]);
  });

  test("a glob with no match and a missing file are SourceErrors", async () => {
    const d = join(dir, "nomatch");
    writeFile(join(d, "x.md"), "x");
    await expect(csvSource("test", config({ path: join(d, "*.csv") })).streams()).rejects.toThrow(new SourceError(`source test: no file matches ${join(d, "*.csv")}`));
    await expect(csvSource("test", config({ path: join(dir, "none", "x.csv") })).streams()).rejects.toThrow(SourceError);
  });

  test("a glob under a directory that does not exist is a SourceError too, not a bare ENOENT", async () => {
    const path = join(dir, "missing-dir", "*.csv");
    await expect(csvSource("test", config({ path })).streams()).rejects.toThrow(SourceError);
  });
});
