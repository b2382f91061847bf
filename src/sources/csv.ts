// CSV files: Stooq's daily download (`Date,Open,High,Low,Close,Volume`, one symbol per file),
// Stooq's bulk ASCII layout (`<TICKER>,<PER>,<DATE>,<TIME>,...`) and a generic layout with the
// columns mapped in config. Files are read in fixed-size slices from a byte offset, so a
// ten-million-row file never sits in memory and a run resumes where its checkpoint says, when
// the checkpoint proves the file's prefix unchanged (src/sources/csv-checkpoint.ts).
// Lines are cut into cells by csv-cells.ts (the hot path).
import * as v from "valibot";
import { Glob } from "bun";
import { statSync, existsSync } from "node:fs";
import { basename, isAbsolute, join, resolve } from "node:path";
import { IntervalSchema, type RawRow } from "../domain/bar.ts";
import { MarketSchema, TsFormatSchema, describe, minQualitySchema, sourceType } from "./common.ts";
import { SourceError, type CellBatch, type Cursor, type Source, type SourceBatch, type SourceDescriptor } from "./types.ts";
import type { CellRows } from "../domain/cells.ts";
import { batchCells, cellPlan, scanCells, splitCsvLine, type CellScratch } from "./csv-cells.ts";
import { prefixHash, resumeFrom } from "./csv-checkpoint.ts";

const ColumnName = v.union([v.pipe(v.string(), v.nonEmpty()), v.pipe(v.number(), v.integer(), v.minValue(0))], "expected a header name or a 0-based column index");

const column = (what: string) => v.optional(v.pipe(ColumnName, v.description(what)));

export const csvColumnsSchema = v.pipe(
  v.strictObject({
    symbol: column("Column of the symbol (else the source's symbol or the file name)."),
    ts: column("Column of a full timestamp (instead of date and time)."),
    date: column("Column of the date."),
    time: column("Column of the time of day, for intraday bars."),
    open: column("Column of the opening price."),
    high: column("Column of the highest price."),
    low: column("Column of the lowest price."),
    close: column("Column of the closing price."),
    volume: column("Column of the volume."),
    adjClose: column("Column of the adjusted close."),
    turnover: column("Column of the turnover (traded value)."),
    trades: column("Column of the number of trades."),
  }),
  v.description("Which column (header name or 0-based index) holds each bar field: the generic layout needs them, a Stooq layout takes them over its own."),
);

export const CSV_SUMMARY = "CSV files: Stooq daily or bulk downloads, or any layout with its columns mapped";

export const csvSourceSchema = v.strictObject({
  type: sourceType("csv", CSV_SUMMARY),
  minQuality: v.optional(minQualitySchema),
  path: v.pipe(
    v.string(),
    v.nonEmpty("path is required"),
    v.description("A file, a directory (every *.csv in it) or a glob. Relative paths are relative to the config file."),
    v.examples(["data"]),
  ),
  layout: v.optional(
    v.pipe(
      v.picklist(["stooq", "stooq-bulk", "generic"], "expected stooq, stooq-bulk or generic"),
      v.description("stooq: Date,Open,High,Low,Close,Volume, one symbol per file; stooq-bulk: <TICKER>,<PER>,<DATE>,<TIME>,…; generic: the columns mapped in `columns`. Without `columns`, a file's header picks between the two Stooq layouts."),
    ),
    "stooq",
  ),
  symbol: v.optional(v.pipe(v.string(), v.nonEmpty(), v.description("The symbol of every row, for one-symbol files; otherwise a symbol column or the file name."))),
  market: v.optional(MarketSchema),
  interval: v.optional(v.pipe(IntervalSchema, v.description(describe.interval)), "1d"),
  delimiter: v.optional(v.pipe(v.string(), v.length(1, "delimiter must be one character"), v.description("The field separator, one character.")), ","),
  decimal: v.optional(v.pipe(v.picklist([".", ","], "decimal must be . or ,"), v.description("The decimal mark of numbers: . or ,.")), "."),
  header: v.optional(v.pipe(v.boolean(), v.description("The first line names the columns.")), true),
  columns: v.optional(csvColumnsSchema),
  tsFormat: v.optional(TsFormatSchema, "auto"),
  timeZone: v.optional(v.pipe(v.string(), v.description(describe.timeZone))),
});
export type CsvSourceConfig = v.InferOutput<typeof csvSourceSchema>;
type Columns = v.InferOutput<typeof csvColumnsSchema>;
type Field = keyof Columns;

const PRESETS: Record<"stooq" | "stooq-bulk", Columns> = {
  stooq: { date: "Date", time: "Time", open: "Open", high: "High", low: "Low", close: "Close", volume: "Volume" },
  "stooq-bulk": { symbol: "<TICKER>", date: "<DATE>", time: "<TIME>", open: "<OPEN>", high: "<HIGH>", low: "<LOW>", close: "<CLOSE>", volume: "<VOL>" },
};
/** Columns a preset may lack (Stooq index files have no Volume, daily files no Time). */
const OPTIONAL_IN_PRESET = new Set<Field>(["time", "volume"]);

const SLICE = 1 << 20;
/** A header line longer than this is refused (hostile input: bounded work and memory). */
const HEADER_MAX = 65536;
/** A line longer than this stops the stream with a SourceError (it would have to sit in memory whole). */
const LINE_MAX = 16 << 20;
/** Names listed in a short row's reason, at most. */
const NAMES_MAX = 8;

const emptyCells = (symbol: string | undefined, decimalComma: boolean): CellRows => ({
  n: 0,
  text: "",
  spans: new Int32Array(0),
  plain: new Uint8Array(0),
  symbol,
  decimalComma,
  composeTs: () => undefined,
  row: () => {
    throw new Error("no rows");
  },
  locator: () => "",
});

/** Symbol from a Stooq-style file name: `pkn_d.csv` → `pkn`, `aapl_us_d.csv` → `aapl.us`, `PKN.WA.csv` → `PKN.WA`. */
export function symbolFromFileName(file: string): string {
  let name = basename(file).replace(/\.(csv|txt)$/i, "");
  name = name.replace(/_(d|w|m|q|y|\d+)$/i, "");
  return name.replace(/_(us|pl|wa)$/i, ".$1");
}

export { splitCsvLine };

/** The files of a csv source: a directory's *.csv, a glob's matches, or the one file. */
function csvFiles(name: string, cfg: CsvSourceConfig, pattern: string): string[] {
  if (existsSync(pattern) && statSync(pattern).isDirectory())
    return [...new Glob("*.{csv,CSV,txt}").scanSync({ cwd: pattern, absolute: true })].sort();
  if (/[*?[{]/.test(pattern)) {
    let files: string[] = [];
    try {
      files = [...new Glob(pattern).scanSync({ absolute: true })].sort();
    } catch {
      // a glob under a directory that does not exist: no file matches
    }
    if (files.length === 0) throw new SourceError(`source ${name}: no file matches ${cfg.path}`);
    return files;
  }
  if (!existsSync(pattern)) throw new SourceError(`source ${name}: file not found: ${cfg.path}`);
  return [resolve(pattern)];
}

/**
 * The Stooq layout a file's header shows: a bulk download's `<TICKER>,…,<DATE>` header read with
 * the default `stooq` layout (or the other way round) is the other layout, when no column is mapped.
 */
function stooqLayout(cfg: CsvSourceConfig, lower: string[] | undefined): CsvSourceConfig["layout"] {
  if (cfg.layout === "generic" || cfg.columns || !lower) return cfg.layout;
  const bulk = lower.includes("<ticker>") && lower.includes("<date>");
  const daily = lower.includes("date") && lower.includes("close");
  return bulk && !daily ? "stooq-bulk" : daily && !bulk ? "stooq" : cfg.layout;
}

/** Map field → column index from the header (or the configured indices when there is none). */
function columnIndex(name: string, cfg: CsvSourceConfig, header: string[] | null, file: string): Map<Field, number> {
  const lower = header?.map((h) => h.trim().replace(/^\uFEFF/, "").toLowerCase());
  const layout = stooqLayout(cfg, lower);
  const wanted: Columns = { ...(layout === "generic" ? {} : PRESETS[layout]), ...cfg.columns };
  const idx = new Map<Field, number>();
  for (const [field, col] of Object.entries(wanted) as [Field, string | number | undefined][]) {
    if (col === undefined) continue;
    if (typeof col === "number") {
      idx.set(field, col);
      continue;
    }
    const i = lower ? lower.indexOf(col.toLowerCase()) : -1;
    if (i >= 0) idx.set(field, i);
    else if (!(layout !== "generic" && OPTIONAL_IN_PRESET.has(field) && !cfg.columns?.[field]))
      throw new SourceError(
        `source ${name}: ${file}: column "${col}" for ${field} not found in header [${header?.join(",") ?? "no header"}]`,
      );
  }
  if (!idx.has("ts") && !idx.has("date")) throw new SourceError(`source ${name}: no ts or date column is mapped for ${file}`);
  for (const [field, i] of idx)
    if (header && i >= header.length) throw new SourceError(`source ${name}: ${file}: column ${i} for ${field} is past the header's ${header.length} columns`);
  for (const f of ["open", "high", "low", "close"] as const)
    if (!idx.has(f)) throw new SourceError(`source ${name}: no ${f} column is mapped for ${file}`);
  return idx;
}

async function readHeader(name: string, cfg: CsvSourceConfig, file: string): Promise<{ header: string[] | null; headBytes: Uint8Array }> {
  if (!cfg.header) {
    // A UTF-8 BOM at the start of a file without a header is not part of its first cell.
    const bom = await Bun.file(file).slice(0, 3).bytes();
    return { header: null, headBytes: bom.length === 3 && bom[0] === 0xef && bom[1] === 0xbb && bom[2] === 0xbf ? bom : new Uint8Array(0) };
  }
  const head = await Bun.file(file).slice(0, HEADER_MAX).bytes();
  const nl = head.indexOf(10);
  if (nl < 0 && head.length >= HEADER_MAX) throw new SourceError(`source ${name}: ${file}: header line longer than ${HEADER_MAX} bytes`);
  const line = new TextDecoder().decode(nl >= 0 ? head.subarray(0, nl) : head).replace(/\r$/, "");
  if (line.trim() === "") throw new SourceError(`source ${name}: ${file}: empty file or empty header line`);
  return { header: splitCsvLine(line, cfg.delimiter), headBytes: nl >= 0 ? head.subarray(0, nl + 1) : head };
}

/**
 * The file's rows after `cursor`, in batches of cells: each line is cut into the mapped
 * fields' cell positions in its decoded text (no string per row or cell; csv-cells.ts); a line
 * with quotes is kept whole and split by splitCsvLine when its row is asked for.
 */
async function* readCsvCells(name: string, cfg: CsvSourceConfig, file: string, cursor: Cursor | null, batchSize: number): AsyncIterable<CellBatch> {
  const bf = Bun.file(file);
  const size = bf.size;
  const { header, headBytes } = await readHeader(name, cfg, file);
  const idx = columnIndex(name, cfg, header, file);
  const fileSymbol = cfg.symbol ?? (idx.has("symbol") ? undefined : symbolFromFileName(file));
  // Resume only where the cursor proves the bytes before it unchanged; else from the start.
  const resume = await resumeFrom(bf, cursor, size, headBytes.length);
  const hash = resume?.hash ?? prefixHash();
  if (!resume) hash.update(headBytes);
  const offset = resume?.offset ?? headBytes.length;
  let line = resume?.line ?? (cfg.header ? 1 : 0);
  // The checkpoint: the end of the last whole line consumed (hashed up to there), and its line.
  let cpOffset = offset;
  let cpLine = line;
  let yieldedAt = resume ? offset : -1; // offset of the last cursor handed out, so an unchanged file yields nothing
  // A BOM is data past the file's start: a decoder would drop it at the start of each batch's
  // text only, so a row would depend on where its batch began.
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  const decimalComma = cfg.decimal === ",";
  const plan = cellPlan(idx, header, cfg.delimiter, fileSymbol, decimalComma);
  const scratch: CellScratch = { spans: new Int32Array(0), plain: new Uint8Array(0), lines: new Float64Array(0) };

  let leftover: Uint8Array = new Uint8Array(0);
  let base = offset; // file offset of leftover[0]
  while (base + leftover.length < size || leftover.length > 0) {
    const readFrom = base + leftover.length;
    const eof = readFrom >= size;
    let buf: Uint8Array;
    if (!eof) {
      const chunk = await bf.slice(readFrom, Math.min(size, readFrom + SLICE)).bytes();
      if (chunk.length === 0) break;
      if (leftover.length === 0) buf = chunk;
      else {
        buf = new Uint8Array(leftover.length + chunk.length);
        buf.set(leftover);
        buf.set(chunk, leftover.length);
      }
    } else buf = leftover;
    let pos = 0;
    const atEnd = eof || base + buf.length >= size;
    while (pos < buf.length) {
      // A batch's lines in one decode: batchSize lines (blank ones count here, so a batch may
      // hold fewer rows), or at the end of the file all that is left. Short of both, read on.
      let need = batchSize;
      let end = -1;
      const batchStart = pos;
      let p = pos;
      while (need > 0) {
        const i = buf.indexOf(10, p);
        if (i < 0) break;
        end = i;
        p = i + 1;
        need--;
      }
      const lastNewline = end; // -1: none in this batch
      if (need > 0) {
        if (buf.length - (lastNewline >= 0 ? lastNewline + 1 : pos) > LINE_MAX)
          throw new SourceError(`source ${name}: ${file}: line ${line + 1 + (lastNewline < 0 ? 0 : buf.subarray(pos, lastNewline + 1).filter((b) => b === 10).length)} is longer than ${LINE_MAX} bytes`);
        if (!atEnd) break;
        end = buf.length - 1; // the rest, with a last line that may have no newline
      }
      const text = decoder.decode(buf.subarray(pos, end + 1));
      const scan = scanCells(text, plan, scratch, batchSize - need + 1, line);
      line = scan.line;
      pos = end + 1;
      // The checkpoint moves to the batch's last newline: a last line without one (the file's
      // end, perhaps still being written) is read again by the next run.
      if (lastNewline >= batchStart) {
        hash.update(buf.subarray(cpOffset - base, lastNewline + 1));
        cpOffset = base + lastNewline + 1;
        cpLine = lastNewline === end ? line : line - 1;
      }
      if (scan.n > 0) {
        const cells = batchCells(text, scan, scratch, plan, file, (found) => shapeProblem(found, header, idx, plan.leastCells));
        yield { cells, cursor: { offset: cpOffset, line: cpLine, hash: hash.digest() } };
        yieldedAt = cpOffset;
      }
    }
    leftover = buf.subarray(pos);
    base += pos;
    if (eof) break;
  }
  if (yieldedAt !== cpOffset) yield { cells: emptyCells(fileSymbol, decimalComma), cursor: { offset: cpOffset, line: cpLine, hash: hash.digest() } };
}

/**
 * Why a row of `found` cells has the wrong shape (its cells do not line up with the header),
 * or undefined when it has the right number. Without a header only a short row is known.
 */
function shapeProblem(found: number, header: string[] | null, idx: Map<Field, number>, least: number): string | undefined {
  const most = header ? header.length : Infinity;
  if (found > most) return `extra cells: ${found} cells where the header has ${most} (${found - most} extra)`;
  if (found >= least) return undefined;
  const names = header
    ? header.slice(found).map((h) => h.trim().replace(/^\uFEFF/, "").slice(0, 40))
    : [...idx].filter(([, i]) => i >= found).sort((a, b) => a[1] - b[1]).map(([f, i]) => `${f} (column ${i})`);
  const more = names.length > NAMES_MAX ? ` and ${names.length - NAMES_MAX} more` : "";
  return `short row: ${found} cells where the ${header ? "header has" : "mapped columns need"} ${least}; missing ${names.slice(0, NAMES_MAX).join(", ")}${more}`;
}

export function csvSource(name: string, cfg: CsvSourceConfig, baseDir = process.cwd()): Source {
  const pattern = isAbsolute(cfg.path) ? cfg.path : join(baseDir, cfg.path);
  const readCells = (file: string, cursor: Cursor | null, batchSize: number) => readCsvCells(name, cfg, file, cursor, batchSize);

  async function* read(file: string, cursor: Cursor | null, batchSize: number): AsyncIterable<SourceBatch> {
    for await (const { cells, cursor: next } of readCells(file, cursor, batchSize)) {
      const rows: RawRow[] = new Array(cells.n);
      for (let i = 0; i < cells.n; i++) rows[i] = cells.row(i);
      yield { rows, cursor: next };
    }
  }

  return { name, type: "csv", interval: cfg.interval, market: cfg.market, tsFormat: cfg.tsFormat, timeZone: cfg.timeZone, streams: async () => csvFiles(name, cfg, pattern), read, readCells };
}

export const csvDescriptor: SourceDescriptor<typeof csvSourceSchema> = {
  type: "csv",
  summary: CSV_SUMMARY,
  schema: csvSourceSchema,
  create: (name, cfg, baseDir) => csvSource(name, cfg, baseDir),
  provider: false,
  rebuildInWorker: true,
};
