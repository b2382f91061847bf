// `ticksync ingest`: one-off ingest from the config's sources, or from a file or SQLite table
// given by flags (which becomes an ordinary config source, validated by the same schema).
import type { IngestSummary } from "../pipeline/ingest.ts";
import { createProgressReporter } from "../pipeline/progress.ts";
import { ingestFromConfig } from "../pipeline/run.ts";
import { startReadWorker } from "../pipeline/validated.ts";
import { SOURCES, type SourceConfig } from "../sources/registry.ts";
import { DEFAULT_BATCH_SIZE } from "../sources/types.ts";
import { defineCommand, flag, options, text, texts, UsageError, type Options } from "./command.ts";
import { CONFIG_HELP, interruptible, intFlag, loadCommandConfig, withStore } from "./context.ts";
import { EXIT, EXIT_CODES_HELP } from "./exit.ts";
import { out } from "./io.ts";
import { marketChoices, marketCodes } from "../domain/markets/index.ts";
import { INTERVALS } from "../domain/bar.ts";

const schema = options({
  source: texts("a source from the config (repeatable; default: every source)", "NAME"),
  file: text("a CSV file, directory of CSV files, or glob", "PATH"),
  layout: text("stooq (Date,Open,High,Low,Close,Volume; default), stooq-bulk\n(<TICKER>,<PER>,<DATE>,...), or generic (map with --columns)", "L"),
  sqlite: text("a SQLite file with a price table", "PATH"),
  table: text("table of --sqlite (default stock_data)", "NAME"),
  columns: text("field=column pairs, e.g. symbol=ticker,ts=date,close=price", "MAP"),
  symbol: text("symbol of every row (default: from the file name or a symbol column)", "SYM"),
  market: text(`market of bare tickers: ${marketChoices()}`, "M"),
  interval: text(INTERVALS.map((i) => (i === "1d" ? "1d (default)" : i)).join(" "), "I"),
  delimiter: text("CSV delimiter (default ,)", "C"),
  decimal: text("decimal separator . or , (default .)", "C"),
  name: text("source name stored with the bars (default: stooq, csv or sqlite)", "NAME"),
  store: text("store URL (config store.url)", "URL"),
  "batch-size": text(`rows per transaction (default ${DEFAULT_BATCH_SIZE})`, "N"),
  full: flag("read every row again, whatever the checkpoints say; a source with\nreconcile compares every day (and deletes what is gone, when set)"),
  "fail-on-quarantine": flag("exit 4 when any row was quarantined"),
  json: flag("print the run summaries as JSON"),
});

/** One run's summary as the CLI prints it (ingest and backfill). */
export function printSummary(s: IngestSummary) {
  // A run that read nothing has no quality to speak of (its score of 1 would claim a perfect run).
  const score = s.read === 0 ? "n/a (0 rows)" : s.quality ? s.quality.score.toFixed(3) : "-";
  out(
    `${s.source}: ${s.outcome} in ${(s.durationMs / 1000).toFixed(2)}s — read ${s.read}, inserted ${s.inserted}, updated ${s.updated}, ` +
      `unchanged ${s.unchanged}, quarantined ${s.quarantined}, quality ${score}` +
      (s.gapWarnings ? `, ${s.gapWarnings} gap warnings` : "") +
      ` (run ${s.runId})`,
  );
  const causes = Object.entries(s.failedStreams ?? {});
  if (causes.length) {
    out(`  failures by cause:`);
    for (const [cause, streams] of causes) out(`    ${cause}: ${s.failures?.[cause] ?? streams.length} (${streams.join(", ")}${(s.failures?.[cause] ?? 0) > streams.length ? ", …" : ""})`);
    if (s.belowMinQuality) out(`  quality gate: ${s.quality!.score.toFixed(3)} is below minQuality ${s.minQuality}`);
  } else if (s.error) out(`  error: ${s.error}`);
  const r = s.reconciled;
  if (r)
    out(
      `  reconciled ${r.from ? `since ${r.from}` : "every day"}: ${r.compared} symbol-days compared, ${r.differing} differed; ${r.reread} days re-read ` +
        `(inserted ${r.inserted}, updated ${r.updated}), ${r.gone} gone from the source, ${r.deleted} deleted`,
    );
  if (s.quality && Object.keys(s.quality.rules).length) out(`  rules: ${Object.entries(s.quality.rules).map(([k, n]) => `${k}=${n}`).join(" ")}`);
}

function columnsFlag(value: string | undefined): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  const columns: Record<string, string> = {};
  for (const pair of value.split(",")) {
    const [field, col] = pair.split("=");
    if (!field || !col) throw new UsageError(`--columns expects field=column pairs, got ${JSON.stringify(pair)}`);
    columns[field.trim()] = col.trim();
  }
  return columns;
}

/** The source --file or --sqlite describes, as a config source; null when neither is given. */
function sourceFromFlags(v: Options<typeof schema>): { name: string; cfg: SourceConfig } | null {
  const common = {
    ...(v.symbol !== undefined ? { symbol: v.symbol } : {}),
    ...(v.market !== undefined ? { market: v.market } : {}),
    ...(v.interval !== undefined ? { interval: v.interval } : {}),
  };
  const columns = columnsFlag(v.columns);
  if (v.file !== undefined) {
    const layout = v.layout ?? (columns ? "generic" : "stooq");
    return {
      name: v.name ?? (layout === "generic" ? "csv" : "stooq"),
      cfg: {
        type: "csv",
        path: v.file,
        layout,
        ...common,
        ...(columns ? { columns } : {}),
        ...(v.delimiter !== undefined ? { delimiter: v.delimiter } : {}),
        ...(v.decimal !== undefined ? { decimal: v.decimal } : {}),
      } as SourceConfig,
    };
  }
  if (v.sqlite !== undefined)
    return {
      name: v.name ?? "sqlite",
      cfg: { type: "sqlite", path: v.sqlite, ...(v.table !== undefined ? { table: v.table } : {}), ...common, ...(columns ? { columns } : {}) } as SourceConfig,
    };
  return null;
}

async function run(v: Options<typeof schema>): Promise<number> {
  const fromFlags = sourceFromFlags(v);
  const loaded = loadCommandConfig(v, {
    store: { url: v.store },
    ingest: { batchSize: intFlag("batch-size", v["batch-size"]) },
    sources: fromFlags ? { [fromFlags.name]: fromFlags.cfg } : undefined,
  });
  const names = fromFlags ? [fromFlags.name] : (v.source ?? Object.keys(loaded.config.sources));
  for (const n of names)
    if (!loaded.config.sources[n]) throw new UsageError(`source ${n} is not defined in the config (defined: ${Object.keys(loaded.config.sources).join(", ") || "none"})`);
  if (names.length === 0) throw new UsageError("nothing to ingest: give --file, --sqlite or --source, or define sources in the config");

  const signal = interruptible();
  // A source read in a worker thread (a file, a SQLite table): the worker is started now, so it
  // gets ready while the store is opened and migrated.
  if (names.some((n) => SOURCES.some((d) => d.type === loaded.config.sources[n]!.type && d.rebuildInWorker))) startReadWorker();
  return withStore(loaded, async (store) => {
    const summaries: IngestSummary[] = [];
    for (const name of names) {
      const progress = createProgressReporter({ unit: loaded.config.sources[name]!.type === "csv" ? "files" : "streams" });
      // One stream shows no progress line, unless it has to wait (then from that wait on).
      let waited = false;
      const s = await ingestFromConfig({ loaded, store, source: name, signal, full: v.full, onProgress: (p) => (p.total > 1 || (waited ||= Boolean(p.waiting))) && progress.update(p) });
      progress.finish();
      summaries.push(s);
      if (!v.json) printSummary(s);
    }
    if (v.json) out(JSON.stringify(summaries, null, 2));
    // A live feed (Binance mode = "live") runs until stopped: Ctrl-C or SIGTERM is its clean end.
    const live = (s: IngestSummary) => s.outcome === "interrupted" && (loaded.config.sources[s.source] as { mode?: string } | undefined)?.mode === "live";
    if (summaries.some((s) => s.outcome !== "succeeded" && !live(s) && (s.readFailed || !s.belowMinQuality))) return EXIT.runFailed;
    if (summaries.some((s) => s.belowMinQuality)) return EXIT.quarantined;
    if (v["fail-on-quarantine"] && summaries.some((s) => s.quarantined > 0)) return EXIT.quarantined;
    return EXIT.ok;
  });
}

export const ingestCommand = defineCommand({
  type: "ingest",
  listed: [["ingest", "one-off ingest from config sources or from a file given by flags\n(providers continue after each symbol's last stored bar, less an overlap)"]],
  schema,
  usage: `Usage: ticksync ingest [--config FILE] [--source NAME ...]
       ticksync ingest --file PATH [--layout stooq|stooq-bulk|generic] [--symbol SYM] [--market ${marketCodes().join("|")}] ...
       ticksync ingest --sqlite PATH [--table stock_data] [--columns field=col,...] ...`,
  about: `Reads every row, validates it, stores the good ones idempotently and quarantines the bad ones
with the rule they broke. Progress is checkpointed with every batch: an interrupted ingest run
again continues where it stopped, and re-running a finished one writes nothing.`,
  flagGap: 1,
  footers: [CONFIG_HELP, EXIT_CODES_HELP],
  run,
});
