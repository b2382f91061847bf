// `ticksync import stockula --sqlite FILE`: a whole Stockula database in one command. Each
// interval of its price_history becomes its own series through the ordinary sqlite source (one
// recorded ingest run per interval, resumable by its checkpoint); its dividends and splits become
// corporate actions and its stocks (with stock_info) instruments, as one recorded run.
import { resolve } from "node:path";
import * as v from "valibot";
import type { CorporateAction, Instrument } from "../domain/actions.ts";
import { isMarket } from "../domain/symbols.ts";
import { marketChoices, marketCodes, type Market } from "../domain/markets/index.ts";
import { runIngest, type IngestSummary } from "../pipeline/ingest.ts";
import { createSource, type SourceConfig } from "../sources/registry.ts";
import { sqliteSourceSchema } from "../sources/sqlite.ts";
import { stockulaActions, stockulaInstruments, stockulaIntervals, stockulaPriceSource, type ReferenceRejection, type StockulaInterval } from "../sources/stockula.ts";
import { DEFAULT_BATCH_SIZE } from "../sources/types.ts";
import type { Store } from "../stores/types.ts";
import { errorText } from "../lib/errors.ts";
import { defineRawCommand, flag, helpText, options, parseOptions, text, UsageError } from "./command.ts";
import { CONFIG_HELP, interruptible, intFlag, loadCommandConfig, withStore } from "./context.ts";
import { EXIT, EXIT_CODES_HELP } from "./exit.ts";
import { err, out } from "./io.ts";
import { printSummary } from "./ingest.ts";

const schema = options({
  sqlite: text("the Stockula database (stockula.db)", "FILE"),
  name: text("source name stored with the bars, actions and instruments (default stockula)", "NAME"),
  market: text(`market of bare tickers (default NYSE, as yfinance's US tickers): ${marketChoices()}`, "M"),
  store: text("store URL (config store.url)", "URL"),
  "batch-size": text(`rows per transaction (default ${DEFAULT_BATCH_SIZE})`, "N"),
  json: flag("print the result as JSON"),
});

export type ReferenceImport = {
  runId: number;
  actions: { read: number; stored: number };
  instruments: { read: number; inserted: number; updated: number; unchanged: number };
  /** The first rejections (at most 100); `rejectedCount` counts them all. */
  rejected: ReferenceRejection[];
  rejectedCount: number;
  error: string | null;
};

const INSTRUMENT_FIELDS = ["name", "exchange", "currency", "type", "sector", "industry", "isin"] as const;
/** Rejections kept in the result; the count goes on. */
const REJECTIONS_KEPT = 100;

/** Dividends, splits and stock info into the store's actions and instruments, as one recorded run. */
async function importReference(store: Store, file: string, source: string, market: Market): Promise<ReferenceImport> {
  const runId = await store.startRun({ kind: "stockula", source, params: { file, market } });
  let actionsValid = 0;
  const r: ReferenceImport = { runId, actions: { read: 0, stored: 0 }, instruments: { read: 0, inserted: 0, updated: 0, unchanged: 0 }, rejected: [], rejectedCount: 0, error: null };
  const reject = (xs: ReferenceRejection[]) => {
    r.rejectedCount += xs.length;
    for (const x of xs) if (r.rejected.length < REJECTIONS_KEPT) r.rejected.push(x);
  };
  try {
    if (!store.upsertActions || !store.upsertInstruments || !store.listInstruments) throw new Error(`the ${store.kind} store keeps no corporate actions or instruments (use SQLite or Postgres)`);
    const stored = new Map((await store.listInstruments()).filter((i) => i.source === source).map((i) => [i.symbol, i]));
    for await (const page of stockulaInstruments(file, source, market)) {
      reject(page.rejected);
      r.instruments.read += page.items.length + page.rejected.length;
      const changed: Instrument[] = [];
      for (const i of page.items) {
        const was = stored.get(i.symbol);
        if (!was) r.instruments.inserted++;
        else if (INSTRUMENT_FIELDS.some((f) => was[f] !== i[f])) r.instruments.updated++;
        else {
          r.instruments.unchanged++;
          continue;
        }
        changed.push(i);
      }
      if (changed.length) await store.upsertInstruments(changed);
    }
    for await (const page of stockulaActions(file, source, market)) {
      reject(page.rejected);
      r.actions.read += page.items.length + page.rejected.length;
      const actions: CorporateAction[] = page.items;
      actionsValid += actions.length;
      if (actions.length) r.actions.stored += await store.upsertActions(actions);
    }
  } catch (e) {
    r.error = errorText(e);
  }
  const rejectedCount = r.rejectedCount;
  const rejected = rejectedCount ? `${rejectedCount} rows rejected: ${r.rejected.slice(0, 5).map((x) => `${x.row}: ${x.reason}`).join("; ")}${rejectedCount > 5 ? "; …" : ""}` : null;
  await store.finishRun(runId, {
    outcome: r.error || rejectedCount ? "failed" : "succeeded",
    read: r.actions.read + r.instruments.read,
    inserted: r.actions.stored + r.instruments.inserted,
    updated: r.instruments.updated,
    unchanged: r.instruments.unchanged + actionsValid - r.actions.stored,
    quarantined: rejectedCount,
    fromTs: null,
    toTs: null,
    quality: null,
    error: [r.error, rejected].filter(Boolean).join("; ") || null,
  });
  return r;
}

function marketFlag(value: string | undefined): Market {
  if (value === undefined) return "NYSE";
  const m = value.toUpperCase();
  if (!isMarket(m)) throw new UsageError(`--market expects ${marketChoices()}, got ${JSON.stringify(value)}`);
  return m;
}

export type StockulaImport = { file: string; source: string; intervals: StockulaInterval[]; runs: IngestSummary[]; reference: ReferenceImport };

async function run(argv: string[]): Promise<number> {
  const sub = argv[0]?.startsWith("-") ? undefined : argv[0];
  const { values: o } = parseOptions(schema, sub === undefined ? argv : argv.slice(1));
  if (o.help || sub === undefined) return out(help.import), o.help ? EXIT.ok : EXIT.usage;
  if (sub !== "stockula") throw new UsageError(`unknown import: ${sub} (expected stockula)`);
  if (o.sqlite === undefined) throw new UsageError("import stockula needs --sqlite <file>");
  const source = (o.name ?? "stockula").trim();
  if (source === "") throw new UsageError("--name expects a name");
  const market = marketFlag(o.market);
  const loaded = loadCommandConfig(o, { store: { url: o.store }, ingest: { batchSize: intFlag("batch-size", o["batch-size"]) } });
  const file = resolve(o.sqlite);
  const intervals = stockulaIntervals(file);
  const signal = interruptible();
  return withStore(loaded, async (store) => {
    const runs: IngestSummary[] = [];
    for (const iv of intervals) {
      if (iv.skipped || iv.value === null || iv.interval === null) continue;
      const cfg = v.parse(sqliteSourceSchema, stockulaPriceSource(file, iv.value, iv.interval, market)) as SourceConfig;
      const s = await runIngest({ store, source: createSource(source, cfg), batchSize: loaded.config.ingest.batchSize, signal, params: { stockula: file, interval: iv.value } });
      runs.push(s);
      if (signal.aborted) break;
    }
    if (signal.aborted) {
      for (const s of runs) printSummary(s);
      err("ticksync: import stockula: interrupted; run it again to continue (each interval resumes from its checkpoint)");
      return EXIT.runFailed;
    }
    const reference = await importReference(store, file, source, market);
    const result: StockulaImport = { file, source, intervals, runs, reference };
    if (o.json) out(JSON.stringify(result, null, 2));
    else {
      for (const s of runs) printSummary(s);
      for (const iv of intervals) if (iv.skipped) err(`${o.sqlite}: price_history interval ${iv.value ?? "(none)"}: ${iv.rows} rows not imported: ${iv.skipped}`);
      for (const x of reference.rejected) err(`${o.sqlite}: ${x.row}: rejected: ${x.reason}`);
      const a = reference.actions;
      const i = reference.instruments;
      out(`${source}: actions read ${a.read}, stored ${a.stored} new or changed; instruments read ${i.read}, inserted ${i.inserted}, updated ${i.updated}, unchanged ${i.unchanged}; rejected ${reference.rejectedCount} (run ${reference.runId})`);
      if (reference.error) err(`ticksync: import stockula: ${reference.error}`);
    }
    if (reference.error || runs.some((s) => s.outcome !== "succeeded" && (s.readFailed || !s.belowMinQuality))) return EXIT.runFailed;
    if (intervals.some((iv) => iv.skipped) || reference.rejectedCount || runs.some((s) => s.quarantined > 0)) return EXIT.quarantined;
    return EXIT.ok;
  });
}

const help = {
  import: helpText(schema, {
    usage: `Usage: ticksync import stockula --sqlite FILE [--name stockula] [--market ${marketCodes().join("|")}] [--store URL] [--json]`,
    about: `Imports a whole Stockula database (the SQLite file of its ETL) into the store: every interval
of price_history into its own series (1d, 1wk → 1w, 1mo, 60m/1h → 1h, …; one ingest run per
interval, continued by its checkpoint when run again), dividends and splits as corporate actions
and stocks with stock_info as instruments, all under the source NAME. Rows are validated as any
ingest's: bad ones are quarantined with their reason. An interval ticksync has no match for (90m,
5d, 3mo), or intraday rows stamped with a date only, is not imported and is named with its row
count. Exit 4 when anything was quarantined, rejected or not imported, 1 when a run failed.`,
    flagGap: 7,
    footers: [CONFIG_HELP, EXIT_CODES_HELP],
  }),
};

export const importCommand = defineRawCommand({
  type: "import",
  listed: [["import stockula", "import a whole Stockula database: bars of every interval,\ndividends, splits and stock info"]],
  schema,
  help,
  run,
});
