// CSV files: Stooq's daily download (`Date,Open,High,Low,Close,Volume`, one symbol per file),
// Stooq's bulk ASCII layout (`<TICKER>,<PER>,<DATE>,<TIME>,...`) and a generic layout with the
// columns mapped in config. Files are read in fixed-size slices from a byte offset, so a
// ten-million-row file never sits in memory and a run resumes where its checkpoint says, when
// the checkpoint proves the file's prefix unchanged (src/sources/csv-checkpoint.ts).
import * as v from "valibot";
import { Glob } from "bun";
import { statSync, existsSync } from "node:fs";
import { basename, isAbsolute, join, resolve } from "node:path";
import { IntervalSchema, type RawRow } from "../domain/bar.ts";
import { MarketSchema, TsFormatSchema, minQualitySchema } from "./common.ts";
import { SourceError, type CellBatch, type Cursor, type Source, type SourceBatch } from "./types.ts";
import { CELL_FIELDS, CELL_SPAN, MISSING, UNMAPPED, type CellRows } from "../domain/cells.ts";
import { prefixHash, resumeFrom } from "./csv-checkpoint.ts";

const ColumnName = v.union([v.pipe(v.string(), v.nonEmpty()), v.pipe(v.number(), v.integer(), v.minValue(0))], "expected a header name or a 0-based column index");

export const csvColumnsSchema = v.strictObject({
  symbol: v.optional(ColumnName),
  ts: v.optional(ColumnName),
  date: v.optional(ColumnName),
  time: v.optional(ColumnName),
  open: v.optional(ColumnName),
  high: v.optional(ColumnName),
  low: v.optional(ColumnName),
  close: v.optional(ColumnName),
  volume: v.optional(ColumnName),
  adjClose: v.optional(ColumnName),
  turnover: v.optional(ColumnName),
  trades: v.optional(ColumnName),
});

export const csvSourceSchema = v.strictObject({
  type: v.literal("csv"),
  minQuality: v.optional(minQualitySchema),
  /** A file, a directory (every *.csv in it) or a glob. Relative paths are relative to the config file. */
  path: v.pipe(v.string(), v.nonEmpty("path is required")),
  layout: v.optional(v.picklist(["stooq", "stooq-bulk", "generic"], "expected stooq, stooq-bulk or generic"), "stooq"),
  /** The symbol of every row, for one-symbol files; otherwise a symbol column or the file name. */
  symbol: v.optional(v.pipe(v.string(), v.nonEmpty())),
  market: v.optional(MarketSchema),
  interval: v.optional(IntervalSchema, "1d"),
  delimiter: v.optional(v.pipe(v.string(), v.length(1, "delimiter must be one character")), ","),
  decimal: v.optional(v.picklist([".", ","], "decimal must be . or ,"), "."),
  header: v.optional(v.boolean(), true),
  columns: v.optional(csvColumnsSchema),
  tsFormat: v.optional(TsFormatSchema, "auto"),
  timeZone: v.optional(v.string()),
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

/** Split one CSV line; fields may be quoted with "" escapes (no newlines inside fields). */
export function splitCsvLine(line: string, delimiter: string): string[] {
  if (!line.includes('"')) return line.split(delimiter);
  const out: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"') {
        if (line[i + 1] === '"') (field += '"'), i++;
        else quoted = false;
      } else field += c;
    } else if (c === '"') quoted = true;
    else if (c === delimiter) out.push(field), (field = "");
    else field += c;
  }
  out.push(field);
  return out;
}

/** Map field → column index from the header (or the configured indices when there is none). */
function columnIndex(name: string, cfg: CsvSourceConfig, header: string[] | null, file: string): Map<Field, number> {
  const wanted: Columns = { ...(cfg.layout === "generic" ? {} : PRESETS[cfg.layout]), ...cfg.columns };
  const lower = header?.map((h) => h.trim().replace(/^\uFEFF/, "").toLowerCase());
  const idx = new Map<Field, number>();
  for (const [field, col] of Object.entries(wanted) as [Field, string | number | undefined][]) {
    if (col === undefined) continue;
    if (typeof col === "number") {
      idx.set(field, col);
      continue;
    }
    const i = lower ? lower.indexOf(col.toLowerCase()) : -1;
    if (i >= 0) idx.set(field, i);
    else if (!(cfg.layout !== "generic" && OPTIONAL_IN_PRESET.has(field) && !cfg.columns?.[field]))
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

/** How one file's lines are cut into cells: its header, which column feeds which field, its delimiter. */
type FileLayout = {
  readonly file: string;
  readonly header: string[] | null;
  readonly idx: Map<Field, number>;
  /** The symbol of every row when no column holds one. */
  readonly fileSymbol: string | undefined;
  readonly decimalComma: boolean;
  /** Column of each field (-1: not mapped), in CELL_FIELDS order. */
  readonly col: number[];
  readonly iSym: number;
  readonly iTs: number;
  readonly iDate: number;
  readonly iTime: number;
  readonly lastCol: number;
  /**
   * Cells a row must have: the header's count (a row with fewer or more is quarantined), or
   * without a header at least up to the last mapped column.
   */
  readonly leastCells: number;
  readonly mostCells: number;
  /** Per column, the fields it feeds (a column may feed two, e.g. date and ts). */
  readonly feeds: number[][];
  readonly delimiter: string;
  readonly delimiterCode: number;
  readonly fastSplit: boolean;
  /** Per column, the first field it feeds (-1: none). */
  readonly firstField: Int32Array;
  /** The pairs (first, other) of a column that feeds more than one field. */
  readonly sharedFields: (readonly [number, number])[];
  /** A row's spans before its cells are found: not mapped, or mapped and missing. */
  readonly blankSpans: Int32Array;
};

function fileLayout(cfg: CsvSourceConfig, file: string, header: string[] | null, idx: Map<Field, number>): FileLayout {
  const col = CELL_FIELDS.map((f) => idx.get(f) ?? -1);
  const lastCol = Math.max(...col);
  const feeds: number[][] = Array.from({ length: lastCol + 1 }, () => []);
  col.forEach((c, f) => c >= 0 && feeds[c]!.push(f));
  const delimiter = cfg.delimiter;
  const firstField = new Int32Array(lastCol + 2).fill(-1);
  feeds.forEach((fs, c) => fs.length && (firstField[c] = fs[0]!));
  const blankSpans = new Int32Array(CELL_SPAN);
  CELL_FIELDS.forEach((_, f) => (blankSpans[2 * f] = blankSpans[2 * f + 1] = col[f]! < 0 ? UNMAPPED : MISSING));
  return {
    file,
    header,
    idx,
    fileSymbol: cfg.symbol ?? (idx.has("symbol") ? undefined : symbolFromFileName(file)),
    decimalComma: cfg.decimal === ",",
    col,
    iSym: col[0]!,
    iTs: col[1]!,
    iDate: col[2]!,
    iTime: col[3]!,
    lastCol,
    leastCells: header ? header.length : lastCol + 1,
    mostCells: header ? header.length : Infinity,
    feeds,
    delimiter,
    delimiterCode: delimiter.charCodeAt(0),
    fastSplit: delimiter !== "\n" && delimiter !== "\r" && delimiter !== '"',
    firstField,
    sharedFields: feeds.flatMap((fs) => fs.slice(1).map((f) => [fs[0]!, f] as const)),
    blankSpans,
  };
}

/** A cell as a row holds it: trimmed when it starts or ends with white space. */
function cellText(val: string | undefined): string | undefined {
  if (val === undefined || val === "") return val;
  return val.charCodeAt(0) <= 32 || val.charCodeAt(val.length - 1) <= 32 ? val.trim() : val;
}

/** A row's ts text from its date and time cells. */
function composeTs(date: string | undefined, time: string | undefined): string | undefined {
  // Stooq's <TIME> is HHMMSS, 000000 on daily bars.
  if (!time || time === "000000" || time === "00:00:00" || time === "0" || date === undefined) return date;
  if (/^\d{5,6}$/.test(time)) time = time.padStart(6, "0").replace(/^(\d{2})(\d{2})(\d{2})$/, "$1:$2:$3");
  return `${date.replace(/^(\d{4})(\d{2})(\d{2})$/, "$1-$2-$3")} ${time}`;
}

/** A number cell's text with a decimal comma made a point (when the source says it has them). */
const numText = (val: string | undefined, decimalComma: boolean) => (decimalComma ? val?.replace(",", ".") : val);

/** A row's fields from its cells by column. */
function fieldsOf(l: FileLayout, cell: (c: number) => string | undefined): Record<string, unknown> {
  const { col, decimalComma: dc } = l;
  const at = (f: number) => (col[f]! < 0 ? undefined : cellText(cell(col[f]!)));
  return {
    symbol: l.iSym >= 0 ? at(0) : l.fileSymbol,
    ts: l.iTs >= 0 ? at(1) : composeTs(l.iDate >= 0 ? at(2) : undefined, l.iTime >= 0 ? at(3) : undefined),
    open: numText(at(4), dc),
    high: numText(at(5), dc),
    low: numText(at(6), dc),
    close: numText(at(7), dc),
    volume: numText(at(8), dc),
    adjClose: numText(at(9), dc),
    turnover: numText(at(10), dc),
    trades: numText(at(11), dc),
  };
}

/** Arrays a file's batches are cut into, reused batch after batch (a batch's cells are read before the next is asked for). */
type CutBuffers = { spans: Int32Array; plain: Uint8Array; lines: Float64Array };

/**
 * One pass over each line's characters of a batch's text: its end, its cells, and whether it has
 * a quote. Fills `b` (spans, plain, line numbers) and `quoted` (whole lines to split later);
 * returns the rows found and the number of the last line read.
 */
function cutLines(l: FileLayout, text: string, b: CutBuffers, quoted: Map<number, string>, line: number): { n: number; line: number } {
  const { spans, plain, lines } = b;
  const { blankSpans, delimiterCode, fastSplit, lastCol, firstField, leastCells, mostCells, sharedFields } = l;
  let n = 0;
  for (let q = 0; q < text.length; ) {
    line++;
    const o = n * CELL_SPAN;
    for (let k = 0; k < CELL_SPAN; k++) spans[o + k] = blankSpans[k]!;
    let c = 0;
    let start = q;
    let hasQuote = false;
    let i = q;
    for (; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      if (ch === delimiterCode && fastSplit) {
        const f = c <= lastCol ? firstField[c]! : -1;
        if (f >= 0) (spans[o + 2 * f] = start), (spans[o + 2 * f + 1] = i);
        c++;
        start = i + 1;
      } else if (ch === 10) break;
      else if (ch === 34) hasQuote = true;
    }
    const next = i + 1;
    let e = i;
    if (e > q && text.charCodeAt(e - 1) === 13) e--; // CRLF: one \r before the \n is not data
    // A line that starts with a printable ASCII character is not blank; anything else is trimmed to see.
    const c0 = e > q ? text.charCodeAt(q) : 0;
    if (!(c0 > 32 && c0 < 127) && text.slice(q, e).trim() === "") {
      q = next;
      continue;
    }
    lines[n] = line;
    // A row with too few or too many cells is left to row(i), which says what is wrong.
    if (fastSplit && !hasQuote && c + 1 >= leastCells && c + 1 <= mostCells) {
      plain[n] = 1;
      // The last cell ends the line (or what is before its \r).
      const f = c <= lastCol ? firstField[c]! : -1;
      if (f >= 0) (spans[o + 2 * f] = Math.min(start, e)), (spans[o + 2 * f + 1] = e);
      // A column that feeds more than one field: the others get its cell too.
      for (const [f1, f2] of sharedFields) (spans[o + 2 * f2] = spans[o + 2 * f1]!), (spans[o + 2 * f2 + 1] = spans[o + 2 * f1 + 1]!);
    } else quoted.set(n, text.slice(q, e));
    n++;
    q = next;
  }
  return { n, line };
}

/** A batch's cut lines as CellRows: row(i) makes a row's RawRow when it is asked for. */
function cellRows(l: FileLayout, n: number, text: string, b: CutBuffers, quoted: Map<number, string>): CellRows {
  const { file, feeds, delimiter, leastCells, mostCells, header, idx } = l;
  const { spans, plain, lines } = b;
  const locator = (i: number) => `${file}:${lines[i]}`;
  const row = (i: number): RawRow => {
    const whole = quoted.get(i);
    if (whole !== undefined) {
      const cols = splitCsvLine(whole, delimiter);
      const fields = fieldsOf(l, (c) => cols[c]);
      const problem = cols.length >= leastCells && cols.length <= mostCells ? undefined : shapeProblem(cols.length, header, idx, leastCells);
      if (problem !== undefined) fields.malformed = problem;
      return { locator: locator(i), fields };
    }
    const o = i * CELL_SPAN;
    // The cell of column c through the first field it feeds (all of them share its span).
    return { locator: locator(i), fields: fieldsOf(l, (c) => (spans[o + 2 * feeds[c]![0]!]! < 0 ? undefined : text.slice(spans[o + 2 * feeds[c]![0]!]!, spans[o + 2 * feeds[c]![0]! + 1]!))) };
  };
  return { n, text, spans, plain, symbol: l.fileSymbol, decimalComma: l.decimalComma, composeTs, row, locator };
}

/**
 * The file's rows after `cursor`, in batches of cells: each line is cut into the mapped
 * fields' cell positions in its decoded text (no string per row or cell); a line with quotes is
 * kept whole and split by splitCsvLine when its row is asked for.
 */
async function* readCsvCells(name: string, cfg: CsvSourceConfig, file: string, cursor: Cursor | null, batchSize: number): AsyncIterable<CellBatch> {
  const bf = Bun.file(file);
  const size = bf.size;
  const { header, headBytes } = await readHeader(name, cfg, file);
  const layout = fileLayout(cfg, file, header, columnIndex(name, cfg, header, file));
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
  let bufs: CutBuffers = { spans: new Int32Array(0), plain: new Uint8Array(0), lines: new Float64Array(0) };
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
      // Lines in the text, at most.
      const most = batchSize - need + 1;
      if (bufs.plain.length < most) bufs = { spans: new Int32Array(most * CELL_SPAN), plain: new Uint8Array(most), lines: new Float64Array(most) };
      bufs.plain.fill(0, 0, most);
      const quoted = new Map<number, string>();
      const cut = cutLines(layout, text, bufs, quoted, line);
      line = cut.line;
      pos = end + 1;
      // The checkpoint moves to the batch's last newline: a last line without one (the file's
      // end, perhaps still being written) is read again by the next run.
      if (lastNewline >= batchStart) {
        hash.update(buf.subarray(cpOffset - base, lastNewline + 1));
        cpOffset = base + lastNewline + 1;
        cpLine = lastNewline === end ? line : line - 1;
      }
      if (cut.n > 0) {
        yield { cells: cellRows(layout, cut.n, text, bufs, quoted), cursor: { offset: cpOffset, line: cpLine, hash: hash.digest() } };
        yieldedAt = cpOffset;
      }
    }
    leftover = buf.subarray(pos);
    base += pos;
    if (eof) break;
  }
  if (yieldedAt !== cpOffset) yield { cells: emptyCells(layout.fileSymbol, layout.decimalComma), cursor: { offset: cpOffset, line: cpLine, hash: hash.digest() } };
}

export function csvSource(name: string, cfg: CsvSourceConfig, baseDir = process.cwd()): Source {
  const pattern = isAbsolute(cfg.path) ? cfg.path : join(baseDir, cfg.path);

  async function streams(): Promise<string[]> {
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

  const readCells = (file: string, cursor: Cursor | null, batchSize: number): AsyncIterable<CellBatch> => readCsvCells(name, cfg, file, cursor, batchSize);

  async function* read(file: string, cursor: Cursor | null, batchSize: number): AsyncIterable<SourceBatch> {
    for await (const { cells, cursor: next } of readCells(file, cursor, batchSize)) {
      const rows: RawRow[] = new Array(cells.n);
      for (let i = 0; i < cells.n; i++) rows[i] = cells.row(i);
      yield { rows, cursor: next };
    }
  }

  return { name, type: "csv", interval: cfg.interval, market: cfg.market, tsFormat: cfg.tsFormat, timeZone: cfg.timeZone, streams, read, readCells };
}
