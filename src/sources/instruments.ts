// Instrument metadata from a user's CSV file: what no price provider we read publishes (ISIN,
// sector, the exchange's own names), as users have it, e.g. GPW's instrument list exported to
// CSV. A header names the columns (any case, in any order; others are ignored, or mapped with
// `columns`); one line per instrument. A bad line is rejected with its line number and reason,
// and the others are still read.
import { readFile } from "node:fs/promises";
import type { Instrument } from "../domain/actions.ts";
import { isinProblem } from "../domain/isin.ts";
import { normaliseSymbol, type SymbolMarket } from "../domain/symbols.ts";
import { marketChoices } from "../domain/markets/index.ts";
import { splitCsvLine } from "./csv.ts";
import { SourceError } from "./types.ts";
import { errorText } from "../lib/errors.ts";

export const INSTRUMENT_COLUMNS = ["symbol", "name", "isin", "exchange", "currency", "sector", "industry", "type"] as const;
export type InstrumentColumn = (typeof INSTRUMENT_COLUMNS)[number];

export type InstrumentCsvOptions = {
  /** Stored as the records' source (the key is (source, symbol), as the providers' records). */
  source: string;
  /** Market of bare tickers (`PKN`); a suffix in the symbol (`PKN.WA`) wins. */
  market?: SymbolMarket;
  /** Default: whichever of `,` `;` and tab the header line has most of. */
  delimiter?: string;
  /** Header names of fields whose column is named otherwise, e.g. { symbol: "Ticker" }. */
  columns?: Partial<Record<InstrumentColumn, string>>;
};

export type InstrumentRejection = { line: number; reason: string };

export type InstrumentCsv = {
  instruments: Instrument[];
  rejected: InstrumentRejection[];
  /** Data lines read (blank lines not counted). */
  rows: number;
  /** Header columns not read. */
  ignored: string[];
};

export function isInstrumentColumn(name: string): name is InstrumentColumn {
  return (INSTRUMENT_COLUMNS as readonly string[]).includes(name);
}

function guessDelimiter(header: string): string {
  let best = ",";
  let most = 0;
  for (const d of [",", ";", "\t"]) {
    const n = header.split(d).length - 1;
    if (n > most) [best, most] = [d, n];
  }
  return best;
}

export function parseInstrumentsCsv(text: string, opts: InstrumentCsvOptions): InstrumentCsv {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const headerAt = lines.findIndex((l) => l.trim() !== "");
  if (headerAt < 0) throw new SourceError("the file is empty: expected a header line naming the columns (symbol, name, isin, …)");
  const delimiter = opts.delimiter ?? guessDelimiter(lines[headerAt]!);
  const header = splitCsvLine(lines[headerAt]!, delimiter).map((h) => h.trim());
  const lower = header.map((h) => h.toLowerCase());
  const index = new Map<InstrumentColumn, number>();
  for (const field of INSTRUMENT_COLUMNS) {
    const want = (opts.columns?.[field] ?? field).trim().toLowerCase();
    const i = lower.indexOf(want);
    if (i >= 0) index.set(field, i);
    else if (opts.columns?.[field] !== undefined) throw new SourceError(`no column "${opts.columns[field]}" (for ${field}) in the header: ${header.join(", ")}`);
  }
  if (!index.has("symbol")) throw new SourceError(`no symbol column in the header (${header.join(", ")}); name one "symbol" or map it with --columns symbol=<column>`);
  const read = new Set(index.values());

  const out: InstrumentCsv = { instruments: [], rejected: [], rows: 0, ignored: header.filter((_, i) => !read.has(i)) };
  const firstLine = new Map<string, number>();
  for (let i = headerAt + 1; i < lines.length; i++) {
    if (lines[i]!.trim() === "") continue;
    const line = i + 1;
    out.rows++;
    const cells = splitCsvLine(lines[i]!, delimiter);
    const cell = (f: InstrumentColumn) => {
      const at = index.get(f);
      const v = at === undefined ? "" : (cells[at] ?? "").trim();
      return v === "" ? null : v;
    };
    const reject = (reason: string) => out.rejected.push({ line, reason });
    const raw = cell("symbol");
    if (raw === null) {
      reject("no symbol");
      continue;
    }
    const sym = normaliseSymbol(raw, opts.market);
    if (!sym.ok) {
      reject(opts.market === undefined && /no default market/.test(sym.reason) ? `${sym.reason} (give --market ${marketChoices()})` : sym.reason);
      continue;
    }
    const isin = cell("isin")?.toUpperCase() ?? null;
    const bad = isin === null ? null : isinProblem(isin);
    if (bad) {
      reject(`${sym.symbol}: ${bad}`);
      continue;
    }
    const first = firstLine.get(sym.symbol);
    if (first !== undefined) {
      reject(`${sym.symbol} is already on line ${first}`);
      continue;
    }
    firstLine.set(sym.symbol, line);
    out.instruments.push({
      source: opts.source,
      symbol: sym.symbol,
      name: cell("name"),
      exchange: cell("exchange"),
      currency: cell("currency")?.toUpperCase() ?? null,
      type: cell("type"),
      sector: cell("sector"),
      industry: cell("industry"),
      isin,
    });
  }
  return out;
}

export async function readInstrumentsCsv(path: string, opts: InstrumentCsvOptions): Promise<InstrumentCsv> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new SourceError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? errorText(e)}`);
  }
  return parseInstrumentsCsv(text, opts);
}
