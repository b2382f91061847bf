// CSV files: Stooq's daily download (`Date,Open,High,Low,Close,Volume`, one symbol per file),
// Stooq's bulk ASCII layout (`<TICKER>,<PER>,<DATE>,<TIME>,...`) and a generic layout with the
// columns mapped in config. Files are read in fixed-size slices from a byte offset, so a
// ten-million-row file never sits in memory and a run resumes where its checkpoint says.
import * as v from "valibot";
import { Glob } from "bun";
import { statSync, existsSync } from "node:fs";
import { basename, isAbsolute, join, resolve } from "node:path";
import { IntervalSchema, type RawRow } from "../domain/bar.ts";
import { MarketSchema, TsFormatSchema } from "./common.ts";
import { SourceError, type Cursor, type Source, type SourceBatch } from "./types.ts";

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

  async function* read(file: string, cursor: Cursor | null, batchSize: number): AsyncIterable<SourceBatch> {
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
    // Hot path: one call per row. The object has one fixed shape (unmapped fields undefined),
    // which keeps property access fast downstream.
    const at = (field: Field) => idx.get(field) ?? -1;
    const [iSym, iTs, iDate, iTime, iOpen, iHigh, iLow, iClose, iVol, iAdj, iTurn, iTrades] = (
      ["symbol", "ts", "date", "time", "open", "high", "low", "close", "volume", "adjClose", "turnover", "trades"] as const
    ).map(at) as number[] as [number, number, number, number, number, number, number, number, number, number, number, number];
    const cell = (cols: (string | undefined)[], i: number): string | undefined => {
      if (i < 0) return undefined;
      const val = cols[i];
      if (val === undefined || val === "") return val;
      return val.charCodeAt(0) <= 32 || val.charCodeAt(val.length - 1) <= 32 ? val.trim() : val;
    };
    const num = decimalComma ? (cols: (string | undefined)[], i: number) => cell(cols, i)?.replace(",", ".") : cell;
    const tsOf = (cols: (string | undefined)[]): string | undefined => {
      if (iTs >= 0) return cell(cols, iTs);
      const date = cell(cols, iDate);
      let time = cell(cols, iTime);
      // Stooq's <TIME> is HHMMSS, 000000 on daily bars.
      if (!time || time === "000000" || time === "00:00:00" || time === "0" || date === undefined) return date;
      if (/^\d{5,6}$/.test(time)) time = time.padStart(6, "0").replace(/^(\d{2})(\d{2})(\d{2})$/, "$1:$2:$3");
      return `${date.replace(/^(\d{4})(\d{2})(\d{2})$/, "$1-$2-$3")} ${time}`;
    };
    const fieldsOf = (cols: (string | undefined)[]): Record<string, unknown> => ({
      symbol: iSym >= 0 ? cell(cols, iSym) : fileSymbol,
      ts: tsOf(cols),
      open: num(cols, iOpen),
      high: num(cols, iHigh),
      low: num(cols, iLow),
      close: num(cols, iClose),
      volume: num(cols, iVol),
      adjClose: num(cols, iAdj),
      turnover: num(cols, iTurn),
      trades: num(cols, iTrades),
    });

    // Cells of a line without quotes, cut straight out of the decoded text in one pass over its
    // characters: only the mapped columns become strings (the same strings line.split(delimiter)
    // would give), the others are skipped. `cells` is reused from line to line, and a text cell
    // equal to the one above it (a bulk file's ticker, a constant <TIME>) reuses that string
    // instead of making a new one. fieldsOf copies what it needs out of `cells`.
    const delimiter = cfg.delimiter;
    const delimiterCode = delimiter.charCodeAt(0);
    const fastSplit = delimiter !== "\n" && delimiter !== "\r" && delimiter !== '"';
    const mapped = [iSym, iTs, iDate, iTime, iOpen, iHigh, iLow, iClose, iVol, iAdj, iTurn, iTrades];
    const lastCol = Math.max(...mapped);
    const wanted = Array.from({ length: lastCol + 1 }, (_, c) => mapped.includes(c));
    // Text columns repeat from row to row; prices rarely do, so they are not compared.
    const repeats = Array.from({ length: lastCol + 1 }, (_, c) => c === iSym || c === iTs || c === iDate || c === iTime);
    const cells: (string | undefined)[] = new Array(lastCol + 1).fill(undefined);
    const cut = (text: string, a: number, b: number, c: number): string => {
      const above = cells[c];
      if (above !== undefined && repeats[c] && above.length === b - a) {
        let k = 0;
        while (k < above.length && above.charCodeAt(k) === text.charCodeAt(a + k)) k++;
        if (k === above.length) return above;
      }
      return text.slice(a, b);
    };
    const splitCells = (text: string, p: number, e: number): (string | undefined)[] => {
      let c = 0;
      for (let i = p, start = p; ; i++) {
        if (i === e || text.charCodeAt(i) === delimiterCode) {
          if (wanted[c]) cells[c] = cut(text, start, i, c);
          if (i === e || ++c > lastCol) break;
          start = i + 1;
        }
      }
      while (++c <= lastCol) cells[c] = undefined; // a short row: no such cells
      return cells;
    };

    let rows: RawRow[] = [];
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
      while (pos < buf.length) {
        // Take up to the rest of this batch's lines in one decode.
        let need = batchSize - rows.length;
        let end = -1;
        let p = pos;
        while (need > 0) {
          const i = buf.indexOf(10, p);
          if (i < 0) break;
          end = i;
          p = i + 1;
          need--;
        }
        if (end < 0) {
          if (!(eof || base + buf.length >= size)) break;
          end = buf.length - 1; // last line without a newline at end of file
        }
        const text = decoder.decode(buf.subarray(pos, end + 1));
        // Lines are walked by index in the decoded text (no array of lines); `quote` is the next
        // '"' at or after the current line, so a text without quotes is searched for one once.
        let quote = -2;
        for (let p = 0, next = 0; p < text.length; p = next) {
          let e = text.indexOf("\n", p);
          next = e < 0 ? text.length : e + 1;
          if (e < 0) e = text.length;
          line++;
          if (e > p && text.charCodeAt(e - 1) === 13) e--; // CRLF: one \r before the \n is not data
          // A line that starts with a printable ASCII character is not blank; anything else is trimmed to see.
          const c0 = e > p ? text.charCodeAt(p) : 0;
          if (!(c0 > 32 && c0 < 127) && text.slice(p, e).trim() === "") continue;
          if (quote !== -1 && quote < p) quote = text.indexOf('"', p);
          const cols = fastSplit && !(quote >= 0 && quote < e) ? splitCells(text, p, e) : splitCsvLine(text.slice(p, e), delimiter);
          rows.push({ locator: `${file}:${line}`, fields: fieldsOf(cols) });
        }
        pos = end + 1;
        if (rows.length >= batchSize) {
          yield { rows, cursor: { offset: base + pos, line, fp, fpLen, size, mtime } };
          yieldedAt = base + pos;
          rows = [];
        }
      }
      leftover = buf.subarray(pos);
      base += pos;
      if (eof) break;
    }
    if (rows.length > 0 || yieldedAt !== base) yield { rows, cursor: { offset: base, line, fp, fpLen, size, mtime } };
  }

  return { name, type: "csv", interval: cfg.interval, market: cfg.market, tsFormat: cfg.tsFormat, timeZone: cfg.timeZone, streams, read };
}
