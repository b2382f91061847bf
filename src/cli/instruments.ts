// `ticksync instruments import`: store what symbols are (name, ISIN, sector, …) from a CSV file.
import { resolve } from "node:path";
import { isMarket } from "../domain/symbols.ts";
import { importInstruments } from "../pipeline/instruments.ts";
import { INSTRUMENT_COLUMNS, isInstrumentColumn, type InstrumentColumn } from "../sources/instruments.ts";
import { defineRawCommand, flag, helpText, options, parseOptions, text, UsageError } from "./command.ts";
import { CONFIG_HELP, loadCommandConfig, withStore } from "./context.ts";
import { EXIT, EXIT_CODES_HELP } from "./exit.ts";
import { err, out } from "./io.ts";
import { marketChoices, marketCodes, type Market } from "../domain/markets/index.ts";

const schema = options({
  file: text("the instrument list", "CSV"),
  source: text("the source the records are stored under (default csv)", "NAME"),
  market: text(`market of bare tickers: ${marketChoices()}`, "M"),
  store: text("store URL (config store.url); SQLite or Postgres (QuestDB keeps no instruments)", "URL"),
  delimiter: text(", ; or tab (default: the one the header line has most of)", "C"),
  columns: text("field=column pairs for other header names, e.g. symbol=Ticker,isin=Kod ISIN", "MAP"),
  json: flag("print the result (counts, rejected lines) as JSON"),
});

function marketFlag(value: string | undefined): Market | undefined {
  if (value === undefined) return undefined;
  const m = value.toUpperCase();
  if (!isMarket(m)) throw new UsageError(`--market expects ${marketChoices()}, got ${JSON.stringify(value)}`);
  return m;
}

function columnsFlag(value: string | undefined): Partial<Record<InstrumentColumn, string>> | undefined {
  if (value === undefined) return undefined;
  const columns: Partial<Record<InstrumentColumn, string>> = {};
  for (const pair of value.split(",")) {
    const [field, col] = pair.split("=").map((x) => x.trim());
    if (!field || !col) throw new UsageError(`--columns expects field=column pairs, got ${JSON.stringify(pair)}`);
    if (!isInstrumentColumn(field)) throw new UsageError(`--columns: unknown field ${JSON.stringify(field)} (fields: ${INSTRUMENT_COLUMNS.join(", ")})`);
    columns[field] = col;
  }
  return columns;
}

function delimiterFlag(value: string | undefined): string | undefined {
  const delimiter = value !== undefined ? (value === "\\t" || value === "tab" ? "\t" : value) : undefined;
  if (delimiter !== undefined && delimiter.length !== 1) throw new UsageError(`--delimiter expects one character (or tab), got ${JSON.stringify(value)}`);
  return delimiter;
}

async function run(argv: string[]): Promise<number> {
  const sub = argv[0]?.startsWith("-") ? undefined : argv[0];
  const { values: v } = parseOptions(schema, sub === undefined ? argv : argv.slice(1));
  if (v.help || sub === undefined) return out(help.instruments), v.help ? EXIT.ok : EXIT.usage;
  if (sub !== "import") throw new UsageError(`unknown instruments command: ${sub} (expected import)`);
  if (v.file === undefined) throw new UsageError("instruments import needs --file <csv>");
  const source = v.source !== undefined ? v.source.trim() : "csv";
  if (source === "") throw new UsageError("--source expects a name");
  const market = marketFlag(v.market);
  const columns = columnsFlag(v.columns);
  const delimiter = delimiterFlag(v.delimiter);
  const loaded = loadCommandConfig(v, { store: { url: v.store } });
  const file = resolve(v.file);
  return withStore(loaded, async (store) => {
    const r = await importInstruments(store, file, { source, market, delimiter, columns });
    if (v.json) out(JSON.stringify(r, null, 2));
    else {
      for (const x of r.rejected) err(`${v.file}:${x.line}: rejected: ${x.reason}`);
      if (!r.error)
        out(
          `instruments ${v.file} → ${source}: ${r.rows} rows, inserted ${r.inserted}, updated ${r.updated}, unchanged ${r.unchanged}, rejected ${r.rejected.length}` +
            `${r.ignored.length ? ` (columns not read: ${r.ignored.join(", ")})` : ""} (run ${r.runId})`,
        );
      if (r.error) err(`ticksync: instruments import: ${r.error}`);
    }
    return r.error ? EXIT.runFailed : r.rejected.length ? EXIT.quarantined : EXIT.ok;
  });
}

const help = {
  instruments: helpText(schema, {
    usage: `Usage: ticksync instruments import --file CSV [--source NAME] [--market ${marketCodes().join("|")}] [--store URL]
                                [--delimiter C] [--columns field=column,...] [--json]`,
    about: `Stores instrument metadata from a CSV file (e.g. GPW's instrument list exported to CSV): what no
price provider publishes, ISIN above all. The header names the columns, in any case and order:
symbol (required), name, isin, exchange, currency, sector, industry, type; other columns are
ignored. One line per instrument (no line breaks inside fields). Symbols in any spelling
(PKN.WA, pkn.pl, WSE:PKN, or a bare PKN with --market). An ISIN is checked with its check digit
(ISO 6166). A line with no symbol, a bad symbol or ISIN, or a symbol already given is rejected
with its line number and reason, and the other lines are still stored: exit 4 when any line was
rejected, 1 when the file could not be read or stored. Records are keyed (source, symbol), as a
provider's are; a record equal to the stored one is not written again. /api/symbols shows each
field from the newest record of any source that has it, and every source's own record.`,
    flagGap: 7,
    footers: [CONFIG_HELP, EXIT_CODES_HELP],
  }),
};

export const instrumentsCommand = defineRawCommand({
  type: "instruments",
  listed: [["instruments import", "store what symbols are (name, ISIN, sector, …) from your CSV file"]],
  schema,
  help,
  run,
});
