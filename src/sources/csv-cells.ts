// The CSV reader's hot path: a batch of decoded text cut into cells in one pass over its
// characters, each row's mapped fields kept as spans (start, end) into the text, so no string is
// made per row or cell until a row is asked for (the read worker validates straight from spans).
// Lines with quotes, or the wrong number of cells, are kept whole and split when asked for.
import type { RawRow } from "../domain/bar.ts";
import { CELL_FIELDS, CELL_SPAN, MISSING, UNMAPPED, type CellRows } from "../domain/cells.ts";

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

/** A cell as a row holds it: trimmed when it starts or ends with white space. */
const cellText = (val: string | undefined): string | undefined => {
  if (val === undefined || val === "") return val;
  return val.charCodeAt(0) <= 32 || val.charCodeAt(val.length - 1) <= 32 ? val.trim() : val;
};

/** A timestamp from a date and a time cell (Stooq's <TIME> is HHMMSS, 000000 on daily bars). */
export const composeTs = (date: string | undefined, time: string | undefined): string | undefined => {
  if (!time || time === "000000" || time === "00:00:00" || time === "0" || date === undefined) return date;
  if (/^\d{5,6}$/.test(time)) time = time.padStart(6, "0").replace(/^(\d{2})(\d{2})(\d{2})$/, "$1:$2:$3");
  return `${date.replace(/^(\d{4})(\d{2})(\d{2})$/, "$1-$2-$3")} ${time}`;
};

/** How a file's lines are cut into cells: the scan's constants, worked out once per file. */
export type CellPlan = {
  /** Column of each field (-1: not mapped), in CELL_FIELDS order. */
  col: number[];
  lastCol: number;
  /** Cells a row must have: the header's count, or without a header up to the last mapped column. */
  leastCells: number;
  mostCells: number;
  /** Per column, the fields it feeds (a column may feed two, e.g. date and ts). */
  feeds: number[][];
  /** Per column, the first field it feeds (-1: none). */
  firstField: Int32Array;
  /** The pairs (first, other) of fields fed by one column. */
  sharedFields: (readonly [number, number])[];
  /** A row's spans before its cells are found: not mapped, or mapped and missing. */
  blankSpans: Int32Array;
  delimiter: string;
  delimiterCode: number;
  fastSplit: boolean;
  symbol: string | undefined;
  decimalComma: boolean;
  /** A row's fields from its cells by column. */
  fieldsOf: (cell: (c: number) => string | undefined) => Record<string, unknown>;
};

export function cellPlan(idx: Map<string, number>, header: string[] | null, delimiter: string, symbol: string | undefined, decimalComma: boolean): CellPlan {
  const col = CELL_FIELDS.map((f) => idx.get(f) ?? -1);
  const [iSym, iTs, iDate, iTime] = col as [number, number, number, number];
  const lastCol = Math.max(...col);
  const feeds: number[][] = Array.from({ length: lastCol + 1 }, () => []);
  col.forEach((c, f) => c >= 0 && feeds[c]!.push(f));
  const firstField = new Int32Array(lastCol + 2).fill(-1);
  feeds.forEach((fs, c) => fs.length && (firstField[c] = fs[0]!));
  const blankSpans = new Int32Array(CELL_SPAN);
  CELL_FIELDS.forEach((_, f) => (blankSpans[2 * f] = blankSpans[2 * f + 1] = col[f]! < 0 ? UNMAPPED : MISSING));
  const num = (val: string | undefined) => (decimalComma ? val?.replace(",", ".") : val);
  const fieldsOf = (cell: (c: number) => string | undefined): Record<string, unknown> => {
    const at = (f: number) => (col[f]! < 0 ? undefined : cellText(cell(col[f]!)));
    return {
      symbol: iSym >= 0 ? at(0) : symbol,
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
  return {
    col,
    lastCol,
    leastCells: header ? header.length : lastCol + 1,
    mostCells: header ? header.length : Infinity,
    feeds,
    firstField,
    sharedFields: feeds.flatMap((fs) => fs.slice(1).map((f) => [fs[0]!, f] as const)),
    blankSpans,
    delimiter,
    delimiterCode: delimiter.charCodeAt(0),
    fastSplit: delimiter !== "\n" && delimiter !== "\r" && delimiter !== '"',
    symbol,
    decimalComma,
    fieldsOf,
  };
}

/** A file's arrays, reused batch after batch (a batch's cells are read before the next is asked for). */
export type CellScratch = { spans: Int32Array; plain: Uint8Array; lines: Float64Array };

/** Rows found in a batch's text, the line number reached, and the rows kept whole by index. */
export type CellScan = { n: number; line: number; quoted: Map<number, string> };

/** Cuts `text` (at most `most` lines, after line `line`) into cells: one pass over each line's characters. */
export function scanCells(text: string, plan: CellPlan, scratch: CellScratch, most: number, line: number): CellScan {
  const { lastCol, leastCells, mostCells, firstField, sharedFields, blankSpans, delimiterCode, fastSplit } = plan;
  if (scratch.plain.length < most) (scratch.spans = new Int32Array(most * CELL_SPAN)), (scratch.plain = new Uint8Array(most)), (scratch.lines = new Float64Array(most));
  const { spans, plain, lines } = scratch;
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
  return { n, line, quoted };
}

/** A scanned batch as CellRows; `shapeProblem` says why a row kept whole has the wrong number of cells. */
export function batchCells(text: string, scan: CellScan, scratch: CellScratch, plan: CellPlan, file: string, shapeProblem: (found: number) => string | undefined): CellRows {
  const { spans, plain, lines } = scratch;
  const { quoted } = scan;
  const { feeds, fieldsOf, delimiter, leastCells, mostCells } = plan;
  const locator = (i: number) => `${file}:${lines[i]}`;
  const row = (i: number): RawRow => {
    const whole = quoted.get(i);
    if (whole !== undefined) {
      const cols = splitCsvLine(whole, delimiter);
      const fields = fieldsOf((c) => cols[c]);
      const problem = cols.length >= leastCells && cols.length <= mostCells ? undefined : shapeProblem(cols.length);
      if (problem !== undefined) fields.malformed = problem;
      return { locator: locator(i), fields };
    }
    const o = i * CELL_SPAN;
    // The cell of column c through the first field it feeds (all of them share its span).
    return { locator: locator(i), fields: fieldsOf((c) => (spans[o + 2 * feeds[c]![0]!]! < 0 ? undefined : text.slice(spans[o + 2 * feeds[c]![0]!]!, spans[o + 2 * feeds[c]![0]! + 1]!))) };
  };
  return { n: scan.n, text, spans, plain, symbol: plan.symbol, decimalComma: plan.decimalComma, composeTs, row, locator };
}
