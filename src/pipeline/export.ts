// `ticksync export`: stored bars of whole series or universes written to Parquet, an Arrow IPC
// file or CSV, read from the store a page at a time (memory bounded by one page plus, for
// Parquet, one row group, whatever the store holds). One file for every symbol, or one per symbol
// into a directory. A file is written under `<name>.partial` and renamed when complete, so a
// failed or interrupted export leaves no truncated file under the final name.
//
// Parquet is written by hyparquet-writer: pure JavaScript, so it runs inside the compiled
// `bun build --compile` executable (parquet-wasm needs a .wasm file at run time), with Snappy
// compression and dictionary encoding built in; Arrow by apache-arrow's RecordBatchFileWriter.
import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { SchemaElement } from "hyparquet";
import type { Bar, Interval } from "../domain/bar.ts";
import type { Store } from "../stores/types.ts";

export const EXPORT_FORMATS = ["parquet", "arrow", "csv"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
export const EXPORT_EXTENSIONS: Record<ExportFormat, string> = { parquet: "parquet", arrow: "arrow", csv: "csv" };

/** Bars read from the store per query. */
export const EXPORT_PAGE_ROWS = 10_000;
/** Rows per Parquet row group (DuckDB and polars parallelise and skip by row group). */
export const DEFAULT_ROW_GROUP_ROWS = 100_000;
/** The largest row group --row-group may ask for: one is held in memory while it fills. */
export const MAX_ROW_GROUP_ROWS = 1_000_000;

export type ExportRequest = {
  store: Store;
  symbols: readonly string[];
  interval: Interval;
  source?: string;
  from?: number;
  to?: number;
  format: ExportFormat;
  /** A file (every symbol in it), or with `perSymbol` a directory of `<SYMBOL>.<interval>.<ext>` files. */
  out: string;
  perSymbol: boolean;
  rowGroupRows?: number;
  pageRows?: number;
  signal?: AbortSignal;
};

export type ExportFile = { path: string; bars: number; symbols: number };
export type ExportResult = { files: ExportFile[]; bars: number; empty: string[] };

/** Why an export failed: `write` (the output could not be written), `store` (the store could not be read), `interrupted`. */
export class ExportError extends Error {
  constructor(
    readonly code: "write" | "store" | "interrupted",
    message: string,
  ) {
    super(message);
  }
}

/** What each format's writer does with the pages of one file. */
interface BarFileWriter {
  write(bars: readonly Bar[]): Promise<void> | void;
  close(): Promise<void> | void;
  abort(): void;
}

const CSV_HEADER = "source,symbol,interval,ts,open,high,low,close,volume,adjClose,turnover,trades\r\n";
const csvField = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
const opt = (n: number | null | undefined) => (n == null ? "" : String(n));

/** CSV as /api/bars?format=csv writes it (same header and fields); its own copy because src/http sits above this layer. */
function csvWriter(path: string): BarFileWriter {
  const fd = openSync(path, "w");
  writeSync(fd, CSV_HEADER);
  return {
    write(bars) {
      let out = "";
      for (const b of bars)
        out += `${csvField(b.source)},${csvField(b.symbol)},${b.interval},${new Date(b.ts).toISOString()},${b.open},${b.high},${b.low},${b.close},${b.volume},${opt(b.adjClose)},${opt(b.turnover)},${opt(b.trades)}\r\n`;
      writeSync(fd, out);
    },
    close: () => closeSync(fd),
    abort: () => closeSync(fd),
  };
}

/** An Arrow IPC file (Feather v2): a record batch per page, the writer's bytes drained to the file as they come. */
async function arrowWriter(path: string): Promise<BarFileWriter> {
  // Loaded here, not at start: every other command (ingest above all) starts without them.
  const [{ RecordBatchFileWriter }, { barsBatch }] = await Promise.all([import("apache-arrow"), import("../domain/arrow-bars.ts")]);
  const fd = openSync(path, "w");
  const writer = new RecordBatchFileWriter();
  const drained = (async () => {
    for await (const chunk of writer) writeSync(fd, chunk);
  })();
  return {
    write(bars) {
      // The drain loop takes this batch's bytes while copySymbol yields after the page.
      writer.write(barsBatch(bars));
    },
    async close() {
      writer.finish();
      await drained;
      closeSync(fd);
    },
    abort() {
      writer.abort();
      closeSync(fd);
    },
  };
}

const PARQUET_SCHEMA: SchemaElement[] = [
  { name: "root", num_children: 12 },
  ...(["source", "symbol", "interval"] as const).map((name): SchemaElement => ({ name, type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "REQUIRED" })),
  { name: "ts", type: "INT64", repetition_type: "REQUIRED", converted_type: "TIMESTAMP_MILLIS", logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MILLIS" } },
  ...(["open", "high", "low", "close", "volume"] as const).map((name): SchemaElement => ({ name, type: "DOUBLE", repetition_type: "REQUIRED" })),
  { name: "adjClose", type: "DOUBLE", repetition_type: "OPTIONAL" },
  { name: "turnover", type: "DOUBLE", repetition_type: "OPTIONAL" },
  { name: "trades", type: "INT64", repetition_type: "OPTIONAL" },
];

/** Parquet: pages gathered into row groups of `rowGroupRows`, each written (and flushed to the file) when full. */
async function parquetWriter(path: string, rowGroupRows: number): Promise<BarFileWriter> {
  const { fileWriter, ParquetWriter } = await import("hyparquet-writer");
  const pq = new ParquetWriter({ writer: fileWriter(path), schema: PARQUET_SCHEMA, createdBy: "ticksync (hyparquet-writer)" });
  const encoder = new TextEncoder();
  // The few distinct strings (sources, symbols, intervals), encoded once each.
  const utf8 = new Map<string, Uint8Array>();
  const bytesOf = (s: string) => utf8.get(s) ?? (utf8.set(s, encoder.encode(s)), utf8.get(s)!);
  let cols = emptyColumns();
  const flush = () => {
    if (cols.ts.length === 0) return;
    const columnData = Object.entries(cols).map(([name, data]) => ({ name, data }));
    pq.write({ columnData, rowGroupSize: cols.ts.length });
    cols = emptyColumns();
  };
  return {
    write(bars) {
      for (const b of bars) {
        cols.source.push(bytesOf(b.source));
        cols.symbol.push(bytesOf(b.symbol));
        cols.interval.push(bytesOf(b.interval));
        cols.ts.push(b.ts);
        cols.open.push(b.open);
        cols.high.push(b.high);
        cols.low.push(b.low);
        cols.close.push(b.close);
        cols.volume.push(b.volume);
        cols.adjClose.push(b.adjClose ?? null);
        cols.turnover.push(b.turnover ?? null);
        cols.trades.push(b.trades == null ? null : BigInt(b.trades));
        if (cols.ts.length >= rowGroupRows) flush();
      }
    },
    close() {
      flush();
      return pq.finish();
    },
    abort() {
      // fileWriter holds no descriptor between flushes: the .partial file is removed by the caller.
    },
  };
}

function emptyColumns() {
  return {
    source: [] as Uint8Array[],
    symbol: [] as Uint8Array[],
    interval: [] as Uint8Array[],
    ts: [] as number[],
    open: [] as number[],
    high: [] as number[],
    low: [] as number[],
    close: [] as number[],
    volume: [] as number[],
    adjClose: [] as (number | null)[],
    turnover: [] as (number | null)[],
    trades: [] as (bigint | null)[],
  };
}

async function openWriter(format: ExportFormat, path: string, rowGroupRows: number): Promise<BarFileWriter> {
  try {
    if (format === "csv") return csvWriter(path);
    if (format === "arrow") return await arrowWriter(path);
    return await parquetWriter(path, rowGroupRows);
  } catch (e) {
    throw new ExportError("write", `cannot write ${path}: ${(e as Error).message}`);
  }
}

/** A symbol as a file name: characters other than letters, digits, '.', '-' and '_' become '_'. */
export const symbolFileName = (symbol: string, interval: Interval, format: ExportFormat) => `${symbol.replace(/[^A-Za-z0-9._-]/g, "_")}.${interval}.${EXPORT_EXTENSIONS[format]}`;

/** Writes every page of one symbol's bars; returns how many. */
async function copySymbol(req: ExportRequest, symbol: string, writer: BarFileWriter): Promise<number> {
  const limit = req.pageRows ?? EXPORT_PAGE_ROWS;
  let after: { ts: number; source: string } | undefined;
  let n = 0;
  for (;;) {
    if (req.signal?.aborted) throw new ExportError("interrupted", "interrupted");
    let page: Bar[];
    try {
      page = await req.store.queryBars({ symbol, interval: req.interval, source: req.source, from: req.from, to: req.to, limit, after });
    } catch (e) {
      throw new ExportError("store", `cannot read ${symbol} ${req.interval} from the store: ${(e as Error).message}`);
    }
    if (page.length === 0) return n;
    try {
      await writer.write(page);
    } catch (e) {
      throw new ExportError("write", `cannot write ${symbol}: ${(e as Error).message}`);
    }
    n += page.length;
    // A turn of the event loop per page: a synchronous store (bun:sqlite) would otherwise never
    // let Ctrl-C's handler or the Arrow writer's drain run until the export ends.
    await new Promise((resolve) => setImmediate(resolve));
    if (page.length < limit) return n;
    const last = page[page.length - 1]!;
    after = { ts: last.ts, source: last.source };
  }
}

/** Writes one output file from the symbols' bars, in symbol order then (ts, source); under .partial until complete. */
async function writeFile(req: ExportRequest, path: string, symbols: readonly string[]): Promise<{ bars: number; counts: number[] }> {
  const partial = `${path}.partial`;
  const writer = await openWriter(req.format, partial, req.rowGroupRows ?? DEFAULT_ROW_GROUP_ROWS);
  const counts: number[] = [];
  try {
    for (const symbol of symbols) counts.push(await copySymbol(req, symbol, writer));
    await writer.close();
    renameSync(partial, path);
  } catch (e) {
    try {
      writer.abort();
    } catch {
      // Already closed: the file is removed below either way.
    }
    rmSync(partial, { force: true });
    if (e instanceof ExportError) throw e;
    throw new ExportError("write", `cannot write ${path}: ${(e as Error).message}`);
  }
  return { bars: counts.reduce((a, b) => a + b, 0), counts };
}

/** Runs an export; symbols without a stored bar in the range are listed in `empty` (and get no file of their own; no bars at all, no file). */
export async function exportBars(req: ExportRequest): Promise<ExportResult> {
  const files: ExportFile[] = [];
  const empty: string[] = [];
  if (!req.perSymbol) {
    const r = await writeFile(req, req.out, req.symbols);
    req.symbols.forEach((s, i) => r.counts[i] === 0 && empty.push(s));
    // No bars at all: no file (as a symbol without bars gets none of its own).
    if (r.bars === 0) return rmSync(req.out, { force: true }), { files, bars: 0, empty };
    files.push({ path: req.out, bars: r.bars, symbols: r.counts.filter((c) => c > 0).length });
    return { files, bars: r.bars, empty };
  }
  try {
    mkdirSync(req.out, { recursive: true });
  } catch (e) {
    throw new ExportError("write", `cannot create the directory ${req.out}: ${(e as Error).message}`);
  }
  let bars = 0;
  for (const symbol of req.symbols) {
    const path = join(req.out, symbolFileName(symbol, req.interval, req.format));
    const r = await writeFile(req, path, [symbol]);
    if (r.bars === 0) {
      rmSync(path, { force: true });
      empty.push(symbol);
      continue;
    }
    files.push({ path, bars: r.bars, symbols: 1 });
    bars += r.bars;
  }
  return { files, bars, empty };
}
