// `ticksync backfill`: a provider source's history over a date range, symbol by symbol, and
// --resume to continue an interrupted one (which run, and with what, is chosen in pipeline/).
import type { LoadedConfig } from "../config/load.ts";
import { chooseBackfillResume, ResumeError } from "../pipeline/backfill-resume.ts";
import { createProgressReporter } from "../pipeline/progress.ts";
import { ingestFromConfig, type IngestRequest } from "../pipeline/run.ts";
import { PROVIDER_SOURCE_TYPES } from "../sources/registry.ts";
import type { Store } from "../stores/types.ts";
import { resolveUniverse } from "../universes/universes.ts";
import { defineCommand, flag, options, text, unlisted, UsageError, type Options } from "./command.ts";
import { CONFIG_HELP, dateFlag, interruptible, intFlag, loadCommandConfig, withStore } from "./context.ts";
import { EXIT, EXIT_CODES_HELP } from "./exit.ts";
import { err, out } from "./io.ts";
import { printSummary } from "./ingest.ts";
import type { Market } from "../domain/markets/index.ts";

const schema = options({
  source: text(`a provider source from the config (${PROVIDER_SOURCE_TYPES.join(", ")})`, "NAME"),
  from: text("first day to load", "DATE"),
  to: text("last day to load (default: today)", "DATE"),
  symbols: text("only these symbols (any provider spelling; @wig80 style universes allowed)", "LIST"),
  concurrency: text("symbols at once (default: the source's concurrency)", "N"),
  resume: flag("continue the newest unfinished backfill run (or --run ID)"),
  run: unlisted(text("with --resume: the run to continue", "ID")),
  "retry-failed": flag("with --resume: also try the failed symbols again"),
  store: text("store URL (config store.url)", "URL"),
  json: flag("print the run summary as JSON"),
});
type Values = Options<typeof schema>;

/** The request that continues an unfinished backfill run. */
async function resumeRequest(loaded: LoadedConfig, store: Store, v: Values, concurrency: number | undefined): Promise<IngestRequest> {
  const retryFailed = Boolean(v["retry-failed"]);
  let chosen;
  try {
    chosen = await chooseBackfillResume(store, { runId: intFlag("run", v.run), retryFailed, sources: loaded.config.sources });
  } catch (e) {
    if (e instanceof ResumeError) throw new UsageError(e.message);
    throw e;
  }
  const { run, pending } = chosen;
  const p = run.params ?? {};
  err(`resuming backfill run ${run.id} of ${run.source}: ${pending} streams not yet done`);
  return {
    loaded,
    store,
    source: run.source,
    kind: "backfill",
    resumeRunId: run.id,
    retryFailed,
    range: { from: (p.from as number | undefined) ?? undefined, to: (p.to as number | undefined) ?? undefined },
    concurrency: concurrency ?? (p.concurrency as number | undefined),
  };
}

/** The request that starts a new backfill run from --source, --from, --to and --symbols. */
function newRequest(loaded: LoadedConfig, store: Store, v: Values, concurrency: number | undefined): IngestRequest {
  if (v.source === undefined) throw new UsageError("backfill needs --source NAME (or --resume)");
  if (!loaded.config.sources[v.source]) throw new UsageError(`source ${v.source} is not defined in the config (defined: ${Object.keys(loaded.config.sources).join(", ") || "none"})`);
  const from = dateFlag("from", v.from);
  if (from === undefined) throw new UsageError("backfill needs --from YYYY-MM-DD");
  const to = dateFlag("to", v.to);
  if (to !== undefined && to < from) throw new UsageError("--to is before --from");
  let streams: string[] | undefined;
  if (v.symbols !== undefined) {
    const market = (loaded.config.sources[v.source] as { market?: Market }).market;
    const list = resolveUniverse("cli", { cli: v.symbols.split(",").map((s) => s.trim()).filter(Boolean) }, { market });
    if (!list.ok) throw new UsageError(`--symbols: ${list.reason}`);
    streams = list.universe.symbols;
  }
  return { loaded, store, source: v.source, kind: "backfill", range: { from, to }, streams, concurrency, params: { from, to: to ?? null, concurrency: concurrency ?? null } };
}

async function run(v: Values): Promise<number> {
  const loaded = loadCommandConfig(v, { store: { url: v.store } });
  const concurrency = intFlag("concurrency", v.concurrency);
  const signal = interruptible();
  return withStore(loaded, async (store) => {
    const req = v.resume ? await resumeRequest(loaded, store, v, concurrency) : newRequest(loaded, store, v, concurrency);
    const progress = createProgressReporter({ unit: "symbols" });
    const s = await ingestFromConfig({ ...req, signal, onProgress: (p) => progress.update(p) });
    progress.finish();
    if (v.json) out(JSON.stringify(s, null, 2));
    else printSummary(s);
    if (s.outcome === "interrupted") err(`interrupted: continue with 'ticksync backfill --resume --run ${s.runId}'`);
    return s.outcome === "succeeded" ? EXIT.ok : s.belowMinQuality && !s.readFailed ? EXIT.quarantined : EXIT.runFailed;
  });
}

export const backfillCommand = defineCommand({
  type: "backfill",
  listed: [["backfill", "load a provider source's full history from a date; --resume continues an\ninterrupted backfill with the symbols it has not done"]],
  schema,
  usage: `Usage: ticksync backfill --source NAME --from YYYY-MM-DD [--to YYYY-MM-DD] [--symbols A,B,...]
       ticksync backfill --resume [--run ID] [--retry-failed]`,
  about: `Loads every symbol of a provider source (its symbols and universe) over a date range, with
bounded concurrency under the provider's rate limit. The run's state is in the store, symbol by
symbol: after a crash, kill -9 or Ctrl-C, --resume continues with the symbols not yet done. A
symbol that fails is recorded with its cause (not_found, no_data, rate_limited, timeout,
server_error, network, bad_response, client_error, auth) and does not stop the run; the summary
lists failures by cause. A progress bar (plain lines when not a terminal) shows symbols done,
rows, rate and ETA.`,
  flagGap: 3,
  footers: [CONFIG_HELP, EXIT_CODES_HELP],
  run,
});
