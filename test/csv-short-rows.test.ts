// A CSV row with fewer or more cells than its header is quarantined (rule `required`) with a
// reason that names the missing columns or counts the extra cells, by the cell fast path (what
// ingest runs) and by the row path alike; a column the header does not have (an index file's
// Volume), a blank last line or a last line without a newline is not a short row.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { join } from "node:path";
import { csvSource, csvSourceSchema } from "../src/sources/csv.ts";
import { validateCells } from "../src/domain/cells.ts";
import { newValidateCache, validateBatch, validateRow, type Rejection, type ValidateContext } from "../src/domain/quality.ts";
import { runIngest } from "../src/pipeline/ingest.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { SourceError } from "../src/sources/types.ts";
import { tempDir, writeFile } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-csv-short-");
const NOW = Date.UTC(2025, 0, 15);
const ctx = (): ValidateContext => ({ source: "t", interval: "1d", market: "WSE", now: NOW, lastTs: new Map(), cache: newValidateCache() });

type Out = { accepted: { ts: number; volume: number }[]; rejections: Rejection[] };

/** Both ways over a file: the cells (ingest's way) and the rows through validateBatch; they must agree. */
async function validate(name: string, text: string, cfg: Record<string, unknown> = {}): Promise<Out> {
  const file = writeFile(join(dir, name), text);
  const src = csvSource("t", v.parse(csvSourceSchema, { type: "csv", path: file, market: "WSE", ...cfg }));
  const fast: Out = { accepted: [], rejections: [] };
  const slow: Out = { accepted: [], rejections: [] };
  const [a, b] = [ctx(), ctx()];
  for await (const batch of src.readCells!(file, null, 3)) {
    const out = validateCells(batch.cells, a);
    for (let i = 0; i < out.columns.n; i++) fast.accepted.push({ ts: out.columns.f64[i * 9]!, volume: out.columns.f64[i * 9 + 5]! });
    fast.rejections.push(...out.rejections);
  }
  for await (const batch of src.read(file, null, 3)) {
    const out = validateBatch(batch.rows, b);
    slow.accepted.push(...out.bars.map((x) => ({ ts: x.ts, volume: x.volume })));
    slow.rejections.push(...out.rejections);
  }
  expect(fast).toEqual(slow);
  return fast;
}

const HEADER = "Date,Open,High,Low,Close,Volume";

describe("rows short of or past their header", () => {
  test("the issue's row: a missing Volume cell is quarantined, not stored with volume 0", async () => {
    const out = await validate("pkn_d.csv", `${HEADER}\n2024-07-16,10,11,9,10,500\n2024-07-17,10,11,9,10\n2024-07-18,10,11,9,10,700\n`);
    expect(out.accepted.map((x) => x.volume)).toEqual([500, 700]);
    expect(out.rejections).toHaveLength(1);
    expect(out.rejections[0]).toMatchObject({ rule: "required", reason: "short row: 5 cells where the header has 6; missing Volume" });
    expect(out.rejections[0]!.locator).toEndWith("pkn_d.csv:3");
  });

  test("a row missing several cells names them all", async () => {
    const out = await validate("two_d.csv", `${HEADER}\n2024-07-17,10,11,9\n`);
    expect(out.rejections.map((r) => [r.rule, r.reason])).toEqual([["required", "short row: 4 cells where the header has 6; missing Close, Volume"]]);
  });

  test("extra cells: quarantined, saying how many were expected and found", async () => {
    const out = await validate("extra_d.csv", `${HEADER}\n2024-07-17,10,11,9,10,500,7,8\n2024-07-18,10,11,9,10,700\n`);
    expect(out.accepted.map((x) => x.volume)).toEqual([700]);
    expect(out.rejections.map((r) => [r.rule, r.reason])).toEqual([["required", "extra cells: 8 cells where the header has 6 (2 extra)"]]);
  });

  test("a quoted short row is caught too (the row path splits it)", async () => {
    const out = await validate("quoted_d.csv", `${HEADER}\n"2024-07-17","10","11","9","10"\n"2024-07-18","10","11","9","10","700"\n`);
    expect(out.accepted.map((x) => x.volume)).toEqual([700]);
    expect(out.rejections.map((r) => r.reason)).toEqual(["short row: 5 cells where the header has 6; missing Volume"]);
  });

  test("an index file without Volume in its header: five cells is the whole row, volume 0", async () => {
    const out = await validate("wig20_d.csv", "Date,Open,High,Low,Close\n2024-07-17,2300,2310,2290,2305.5\n");
    expect(out).toEqual({ accepted: [{ ts: Date.UTC(2024, 6, 17), volume: 0 }], rejections: [] });
  });

  test("blank lines, CRLF and a last line without a newline are not short rows", async () => {
    const out = await validate("tail_d.csv", `${HEADER}\r\n2024-07-16,10,11,9,10,500\r\n\r\n  \r\n2024-07-17,10,11,9,10,600`);
    expect(out).toEqual({ accepted: [{ ts: Date.UTC(2024, 6, 16), volume: 500 }, { ts: Date.UTC(2024, 6, 17), volume: 600 }], rejections: [] });
  });

  test("stooq-bulk: a row without <OPENINT> is short", async () => {
    const h = "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>";
    const out = await validate("bulk.txt", `${h}\nPKN,D,20240717,000000,10,11,9,10,500,0\nPKN,D,20240718,000000,10,11,9,10,500\n`, { layout: "stooq-bulk" });
    expect(out.accepted).toHaveLength(1);
    expect(out.rejections.map((r) => r.reason)).toEqual(["short row: 9 cells where the header has 10; missing <OPENINT>"]);
  });

  test("no header: a row short of a mapped column is quarantined (extra cells cannot be known)", async () => {
    const cfg = { layout: "generic", header: false, symbol: "PKN", columns: { ts: 0, open: 1, high: 2, low: 3, close: 4, volume: 5 } };
    const out = await validate("nohdr.csv", "2024-07-16,10,11,9,10,500,x\n2024-07-17,10,11,9,10\n", cfg);
    expect(out.accepted.map((x) => x.volume)).toEqual([500]);
    expect(out.rejections.map((r) => r.reason)).toEqual(["short row: 5 cells where the mapped columns need 6; missing volume (column 5)"]);
  });

  test("a configured column index past the header's columns is a SourceError, not every row short", async () => {
    const file = writeFile(join(dir, "idx.csv"), "d,o,h,l,c\n2024-07-17,10,11,9,10\n");
    const src = csvSource("t", v.parse(csvSourceSchema, { type: "csv", path: file, layout: "generic", symbol: "PKN", columns: { ts: "d", open: "o", high: "h", low: "l", close: "c", volume: 7 } }));
    await expect(async () => {
      for await (const _ of src.read(file, null, 10));
    }).toThrow(new SourceError(`source t: ${file}: column 7 for volume is past the header's 5 columns`));
  });

  test("a quarantined short row stays quarantined when replayed (the raw row keeps why)", async () => {
    const out = await validate("replay_d.csv", `${HEADER}\n2024-07-17,10,11,9,10\n`);
    const r = out.rejections[0]!;
    const again = validateRow({ locator: r.locator, fields: r.raw }, ctx());
    expect(again).toMatchObject({ rule: "required", reason: r.reason });
  });

  test("ingest into a real SQLite store: the short row is in quarantine, not in the bars", async () => {
    const file = writeFile(join(dir, "ingest", "pkn_d.csv"), `${HEADER}\n2024-07-16,10,11,9,10,500\n2024-07-17,10,11,9,10\n`);
    const store = sqliteStore(join(dir, "short.db"));
    try {
      await store.migrate();
      const s = await runIngest({ store, source: csvSource("stooq", v.parse(csvSourceSchema, { type: "csv", path: file, market: "WSE" })) });
      expect(s).toMatchObject({ read: 2, inserted: 1, quarantined: 1 });
      expect((await store.queryBars({ symbol: "PKN.WA", interval: "1d", limit: 10 })).map((b) => b.volume)).toEqual([500]);
      const [q] = await store.listQuarantine({ limit: 10 });
      expect(q).toMatchObject({ rule: "required", reason: "short row: 5 cells where the header has 6; missing Volume", locator: `${file}:3` });
    } finally {
      await store.close();
    }
  });
});
