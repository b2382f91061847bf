// `ticksync export`: stored bars of series or universes to Parquet, an Arrow IPC file or CSV
// (the work is src/pipeline/export.ts).
import { existsSync, statSync } from "node:fs";
import type { Interval } from "../domain/bar.ts";
import { INTERVALS } from "../domain/bar.ts";
import { DEFAULT_ROW_GROUP_ROWS, EXPORT_FORMATS, MAX_ROW_GROUP_ROWS, ExportError, exportBars, type ExportFormat } from "../pipeline/export.ts";
import { resolveUniverse } from "../universes/universes.ts";
import { defineCommand, flag, options, text, UsageError, type Options } from "./command.ts";
import { CONFIG_HELP, dateFlag, intFlag, interruptible, loadCommandConfig, withStore } from "./context.ts";
import { EXIT, EXIT_CODES_HELP } from "./exit.ts";
import { err, oneLine, out } from "./io.ts";

const schema = options({
  format: text(`${EXPORT_FORMATS.join(", ")} (default: from --out's extension, else parquet)`, "FORMAT"),
  out: text("the output file (every symbol in it), or a directory (ending in /, or existing):\none <SYMBOL>.<interval>.<ext> file per symbol", "PATH"),
  symbols: text("these symbols, comma-separated (any provider spelling; @wig80 style universes allowed)", "LIST"),
  universe: text("the symbols of a universe (the config's [universes] or a bundled one)", "NAME"),
  interval: text(`the bars' interval (default 1d): ${INTERVALS.join(", ")}`, "INTERVAL"),
  source: text("only the bars of this source (default: every source, ordered by ts then source)", "NAME"),
  from: text("first session, inclusive", "YYYY-MM-DD"),
  to: text("last session, inclusive", "YYYY-MM-DD"),
  "row-group": text(`Parquet rows per row group (default ${DEFAULT_ROW_GROUP_ROWS}, at most ${MAX_ROW_GROUP_ROWS})`, "N"),
  store: text("the store (default: the config's store.url)", "URL"),
  json: flag("print the files written as JSON"),
});
type Values = Options<typeof schema>;

const DAY_MS = 86_400_000;

function formatOf(v: Values): ExportFormat {
  if (v.format !== undefined) {
    if (!(EXPORT_FORMATS as readonly string[]).includes(v.format)) throw new UsageError(`--format expects one of ${EXPORT_FORMATS.join(", ")}, got ${JSON.stringify(v.format)}`);
    return v.format as ExportFormat;
  }
  const ext = /\.([a-z]+)$/i.exec(v.out ?? "")?.[1]?.toLowerCase();
  return ext === "csv" ? "csv" : ext === "arrow" || ext === "feather" || ext === "ipc" ? "arrow" : "parquet";
}

function symbolsOf(v: Values, userLists: Record<string, string[]>): string[] | undefined {
  const out: string[] = [];
  if (v.symbols !== undefined) {
    const r = resolveUniverse("cli", { cli: v.symbols.split(",").map((s) => s.trim()).filter(Boolean) });
    if (!r.ok) throw new UsageError(`--symbols: ${r.reason}`);
    out.push(...r.universe.symbols);
  }
  if (v.universe !== undefined) {
    const r = resolveUniverse(v.universe, userLists);
    if (!r.ok) throw new UsageError(`--universe: ${r.reason}`);
    out.push(...r.universe.symbols);
  }
  return v.symbols === undefined && v.universe === undefined ? undefined : [...new Set(out)];
}

async function run(v: Values): Promise<number> {
  if (v.out === undefined) throw new UsageError("export needs --out FILE or --out DIR/");
  const format = formatOf(v);
  const interval = (v.interval ?? "1d") as Interval;
  if (!(INTERVALS as readonly string[]).includes(interval)) throw new UsageError(`--interval expects one of ${INTERVALS.join(", ")}, got ${JSON.stringify(v.interval)}`);
  const from = dateFlag("from", v.from);
  const toDay = dateFlag("to", v.to);
  if (from !== undefined && toDay !== undefined && toDay < from) throw new UsageError("--to is before --from");
  const rowGroupRows = intFlag("row-group", v["row-group"]);
  if (rowGroupRows !== undefined && (rowGroupRows < 1 || rowGroupRows > MAX_ROW_GROUP_ROWS)) throw new UsageError(`--row-group must be 1 to ${MAX_ROW_GROUP_ROWS}, got ${rowGroupRows}`);
  const perSymbol = v.out.endsWith("/") || (existsSync(v.out) && statSync(v.out).isDirectory());
  const loaded = loadCommandConfig(v, { store: { url: v.store } });
  const listed = symbolsOf(v, loaded.config.universes);
  const signal = interruptible();
  return withStore(loaded, async (store) => {
    // No list: every symbol with stored bars at the interval (and source).
    const symbols = listed ?? [...new Set((await store.listSeries()).filter((s) => s.interval === interval && s.bars > 0 && (!v.source || s.source === v.source)).map((s) => s.symbol))].sort();
    if (symbols.length === 0) {
      err(`ticksync: export: the store has no ${interval} bars${v.source ? ` of ${v.source}` : ""}`);
      return EXIT.runFailed;
    }
    try {
      const started = performance.now();
      // --to names a session: every bar starting on that day is in.
      const to = toDay === undefined ? undefined : toDay + DAY_MS - 1;
      const r = await exportBars({ store, symbols, interval, source: v.source, from, to, format, out: v.out!, perSymbol, rowGroupRows, signal });
      const seconds = (performance.now() - started) / 1000;
      if (v.json) out(JSON.stringify({ format, interval, bars: r.bars, files: r.files, empty: r.empty, seconds: Number(seconds.toFixed(3)) }, null, 2));
      else {
        for (const f of r.files) out(`${f.path}: ${f.bars} bars, ${f.symbols} symbols`);
        out(`exported ${r.bars} ${interval} bars as ${format} in ${seconds.toFixed(2)}s${r.empty.length ? `; no bars for ${r.empty.length} symbols: ${r.empty.slice(0, 20).join(", ")}${r.empty.length > 20 ? ", …" : ""}` : ""}`);
      }
      if (r.bars > 0) return EXIT.ok;
      err(`ticksync: export: no ${interval} bars${v.source ? ` of ${v.source}` : ""} for ${symbols.length === 1 ? symbols[0] : `any of the ${symbols.length} symbols`}${from !== undefined || to !== undefined ? " in the range" : ""}: nothing written`);
      return EXIT.runFailed;
    } catch (e) {
      if (!(e instanceof ExportError)) throw e;
      err(`ticksync: export: ${oneLine(e)}`);
      return e.code === "store" ? EXIT.store : e.code === "interrupted" ? 130 : EXIT.runFailed;
    }
  });
}

export const exportCommand = defineCommand({
  type: "export",
  listed: [["export", "write stored bars of symbols or universes to Parquet, Arrow or CSV"]],
  schema,
  usage: `Usage: ticksync export --out PATH [--format parquet|arrow|csv] [--symbols LIST] [--universe NAME]
                       [--interval INTERVAL] [--source NAME] [--from DATE] [--to DATE] [--row-group N]`,
  about: `Writes the stored bars of the symbols named (--symbols and/or --universe; neither: every symbol
with bars at the interval) to one file, ordered by symbol (in the order named) then ts then
source, or with --out DIR/ one <SYMBOL>.<interval>.<ext> file per symbol (a symbol without bars
gets none). Columns as /api/bars: source, symbol, interval, ts (UTC timestamp, ms), open, high,
low, close, volume, adjClose, turnover, trades (the last three nullable).
  parquet  hyparquet-writer (pure JavaScript, works in the compiled executable), Snappy,
           row groups of --row-group rows
  arrow    an Arrow IPC file (Feather v2; pyarrow.ipc.open_file, polars.read_ipc), a record
           batch per page read
  csv      as /api/bars?format=csv
The store is read a page at a time: memory does not grow with the export. A file is written
as <name>.partial and renamed when complete. Only stored bars are exported (no rollups on read).`,
  footers: [CONFIG_HELP, EXIT_CODES_HELP],
  run,
});
