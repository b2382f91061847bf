// CSV files: Stooq's daily download (`Date,Open,High,Low,Close,Volume`, one symbol per file),
// Stooq's bulk ASCII layout (`<TICKER>,<PER>,<DATE>,<TIME>,...`) and a generic layout with the
// columns mapped in config. Files are read in fixed-size slices from a byte offset, so a
// ten-million-row file never sits in memory and a run resumes where its checkpoint says.
import * as v from "valibot";
import { Glob } from "bun";
import { statSync, existsSync } from "node:fs";
import { basename, isAbsolute, join, resolve } from "node:path";
import { IntervalSchema, type RawRow } from "../domain/bar.ts";
import { MarketSchema, TsFormatSchema, minQualitySchema } from "./common.ts";
import { SourceError, type CellBatch, type Cursor, type Source, type SourceBatch } from "./types.ts";
import { CELL_FIELDS, CELL_SPAN, MISSING, UNMAPPED, type CellRows } from "../domain/cells.ts";

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

  /** Map field → column index from the header (or the configured indices when there is none). */
  function columnIndex(header: string[] | null, file: string): Map<Field, number> {
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
    for (const f of ["open", "high", "low", "close"] as const)
      if (!idx.has(f)) throw new SourceError(`source ${name}: no ${f} column is mapped for ${file}`);
    return idx;
  }

  /**
   * Hash of the first `length` bytes: the same while the file is only appended to, different
   * when it is replaced. The length is kept in the cursor so a grown file hashes the same span.
   */
  async function fingerprint(file: string, length: number): Promise<string> {
    const head = await Bun.file(file).slice(0, length).bytes();
    return Bun.hash(head).toString(16);
  }

  async function readHeader(file: string): Promise<{ header: string[] | null; dataOffset: number }> {
    if (!cfg.header) return { header: null, dataOffset: 0 };
    const head = await Bun.file(file).slice(0, 65536).bytes();
    const nl = head.indexOf(10);
    const line = new TextDecoder().decode(nl >= 0 ? head.subarray(0, nl) : head).replace(/\r$/, "");
    if (line.trim() === "") throw new SourceError(`source ${name}: ${file}: empty file or empty header line`);
    return { header: splitCsvLine(line, cfg.delimiter), dataOffset: nl >= 0 ? nl + 1 : head.length };
  }

  /**
   * The file's rows after `cursor`, in batches of cells: each line is cut into the mapped
   * fields' cell positions in its decoded text (no string per row or cell); a line with quotes is
   * kept whole and split by splitCsvLine when its row is asked for.
   */
  async function* readCells(file: string, cursor: Cursor | null, batchSize: number): AsyncIterable<CellBatch> {
    const bf = Bun.file(file);
    const size = bf.size;
    const mtime = bf.lastModified;
    const fpLen = Math.min(size, 4096);
    const fp = await fingerprint(file, fpLen);
    const { header, dataOffset } = await readHeader(file);
    const idx = columnIndex(header, file);
    const fileSymbol = cfg.symbol ?? (idx.has("symbol") ? undefined : symbolFromFileName(file));
    let offset = dataOffset;
    let line = cfg.header ? 1 : 0;
    let yieldedAt = -1; // offset of the last cursor handed out, so an unchanged file yields nothing
    // Resume only if this is the same file (same first bytes) and it has not shrunk.
    // A file rewritten in place to the same size (a corrected row) has a new mtime: read it again.
    const rewritten = cursor !== null && cursor.size === size && cursor.mtime !== mtime;
    const sameFile =
      cursor !== null && !rewritten && typeof cursor.fpLen === "number" && cursor.fpLen <= size && cursor.fp === (await fingerprint(file, cursor.fpLen));
    if (sameFile && typeof cursor.offset === "number" && cursor.offset <= size && cursor.offset >= dataOffset) {
      offset = yieldedAt = cursor.offset;
      line = Number(cursor.line ?? 0);
    }
    const decoder = new TextDecoder();
    const decimalComma = cfg.decimal === ",";
    // Column of each field (-1: not mapped), in CELL_FIELDS order.
    const col = CELL_FIELDS.map((f) => idx.get(f) ?? -1);
    const [iSym, iTs, iDate, iTime] = col as [number, number, number, number];
    const lastCol = Math.max(...col);
    // Per column, the fields it feeds (a column may feed two, e.g. date and ts).
    const feeds: number[][] = Array.from({ length: lastCol + 1 }, () => []);
    col.forEach((c, f) => c >= 0 && feeds[c]!.push(f));
    const delimiter = cfg.delimiter;
    const delimiterCode = delimiter.charCodeAt(0);
    const fastSplit = delimiter !== "\n" && delimiter !== "\r" && delimiter !== '"';
    // Per column, the first field it feeds (-1: none); the pairs (first, other) of a shared column.
    const firstField = new Int32Array(lastCol + 2).fill(-1);
    feeds.forEach((fs, c) => fs.length && (firstField[c] = fs[0]!));
    const sharedFields = feeds.flatMap((fs) => fs.slice(1).map((f) => [fs[0]!, f] as const));
    // A row's spans before its cells are found: not mapped, or mapped and missing.
    const blankSpans = new Int32Array(CELL_SPAN);
    CELL_FIELDS.forEach((_, f) => (blankSpans[2 * f] = blankSpans[2 * f + 1] = col[f]! < 0 ? UNMAPPED : MISSING));

    /** A cell as a row holds it: trimmed when it starts or ends with white space. */
    const cellText = (val: string | undefined): string | undefined => {
      if (val === undefined || val === "") return val;
      return val.charCodeAt(0) <= 32 || val.charCodeAt(val.length - 1) <= 32 ? val.trim() : val;
    };
    const num = (val: string | undefined) => (decimalComma ? val?.replace(",", ".") : val);
    const composeTs = (date: string | undefined, time: string | undefined): string | undefined => {
      // Stooq's <TIME> is HHMMSS, 000000 on daily bars.
      if (!time || time === "000000" || time === "00:00:00" || time === "0" || date === undefined) return date;
      if (/^\d{5,6}$/.test(time)) time = time.padStart(6, "0").replace(/^(\d{2})(\d{2})(\d{2})$/, "$1:$2:$3");
      return `${date.replace(/^(\d{4})(\d{2})(\d{2})$/, "$1-$2-$3")} ${time}`;
    };
    /** A row's fields from its cells by column. */
    const fieldsOf = (cell: (c: number) => string | undefined): Record<string, unknown> => {
      const at = (f: number) => (col[f]! < 0 ? undefined : cellText(cell(col[f]!)));
      return {
        symbol: iSym >= 0 ? at(0) : fileSymbol,
        ts: iTs >= 0 ? at(1) : composeTs(iDate >= 0 ? at(2) : undefined, iTime >= 0 ? at(3) : undefined),
        open: num(at(4)),
        high: num(at(5)),
        low: num(at(6)),
        close: num(at(7)),
        volume: num(at(8)),
        adjClose: num(at(9)),
        turnover: num(at(10)),
        trades: num(at(11)),
      };
    };

    let spansAll = new Int32Array(0);
    let plainAll = new Uint8Array(0);
    let linesAll = new Float64Array(0);
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
        let p = pos;
        while (need > 0) {
          const i = buf.indexOf(10, p);
          if (i < 0) break;
          end = i;
          p = i + 1;
          need--;
        }
        if (need > 0) {
          if (!atEnd) break;
          end = buf.length - 1; // the rest, with a last line that may have no newline
        }
        const text = decoder.decode(buf.subarray(pos, end + 1));
        // Lines in the text, at most. The arrays are the stream's, reused batch after batch
        // (a batch's cells are read before the next batch is asked for).
        const most = batchSize - need + 1;
        if (plainAll.length < most) (spansAll = new Int32Array(most * CELL_SPAN)), (plainAll = new Uint8Array(most)), (linesAll = new Float64Array(most));
        const spans = spansAll;
        const plain = plainAll;
        const lines = linesAll;
        plain.fill(0, 0, most);
        const quoted = new Map<number, string>();
        let n = 0;
        // One pass over each line's characters: its end, its cells, and whether it has a quote.
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
          if (fastSplit && !hasQuote) {
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
        pos = end + 1;
        const locator = (i: number) => `${file}:${lines[i]}`;
        const row = (i: number): RawRow => {
          const whole = quoted.get(i);
          if (whole !== undefined) {
            const cols = splitCsvLine(whole, delimiter);
            return { locator: locator(i), fields: fieldsOf((c) => cols[c]) };
          }
          const o = i * CELL_SPAN;
          // The cell of column c through the first field it feeds (all of them share its span).
          return { locator: locator(i), fields: fieldsOf((c) => (spans[o + 2 * feeds[c]![0]!]! < 0 ? undefined : text.slice(spans[o + 2 * feeds[c]![0]!]!, spans[o + 2 * feeds[c]![0]! + 1]!))) };
        };
        const cells: CellRows = { n, text, spans, plain, symbol: fileSymbol, decimalComma, composeTs, row, locator };
        if (n > 0) {
          yield { cells, cursor: { offset: base + pos, line, fp, fpLen, size, mtime } };
          yieldedAt = base + pos;
        }
      }
      leftover = buf.subarray(pos);
      base += pos;
      if (eof) break;
    }
    if (yieldedAt !== base) yield { cells: emptyCells(fileSymbol, decimalComma), cursor: { offset: base, line, fp, fpLen, size, mtime } };
  }

  async function* read(file: string, cursor: Cursor | null, batchSize: number): AsyncIterable<SourceBatch> {
    for await (const { cells, cursor: next } of readCells(file, cursor, batchSize)) {
      const rows: RawRow[] = new Array(cells.n);
      for (let i = 0; i < cells.n; i++) rows[i] = cells.row(i);
      yield { rows, cursor: next };
    }
  }

  return { name, type: "csv", interval: cfg.interval, market: cfg.market, tsFormat: cfg.tsFormat, timeZone: cfg.timeZone, streams, read, readCells };
}
