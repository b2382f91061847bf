// `ticksync sync`: deliver new and changed bars from the store to the config's sinks.
import type { SyncSummary } from "../pipeline/sync.ts";
import { syncWithMetrics } from "../scheduler/jobs/sync.ts";
import { defineCommand, flag, options, texts, type Options } from "./command.ts";
import { interruptible, loadCommandConfig, withStore } from "./context.ts";
import { EXIT, EXIT_CODES_HELP } from "./exit.ts";
import { out } from "./io.ts";
import { pickSinks } from "./sinks.ts";

const schema = options({
  sink: texts("a sink from the config's [sinks] (repeatable; default: all)", "NAME"),
  json: flag("print the summaries as JSON"),
});

async function run(v: Options<typeof schema>): Promise<number> {
  const loaded = loadCommandConfig(v);
  const signal = interruptible();
  const sinks = pickSinks(loaded, v.sink ?? [], signal);
  return withStore(loaded, async (store) => {
    const summaries: SyncSummary[] = [];
    let complete = true;
    for (const sink of sinks) {
      if (signal.aborted) {
        complete = false;
        break;
      }
      const all = await syncWithMetrics(store, sink, null, { signal, baseDir: loaded.baseDir });
      if (all.length < sink.collections.length) complete = false;
      summaries.push(...all);
      if (!v.json)
        for (const s of all)
          out(
            `sync ${s.sink} → ${s.collection}: ${s.outcome}, ${s.read} read, ${s.sent} sent, ${s.rejected} refused by Pocketbase (quarantined), ` +
              `${s.batches} batches, ${s.retries} retries, ${(s.durationMs / 1000).toFixed(2)} s (run ${s.runId})${s.error ? `\n  error: ${s.error}` : ""}`,
          );
    }
    if (v.json) out(JSON.stringify(summaries, null, 2));
    return complete && summaries.every((s) => s.outcome === "succeeded") ? EXIT.ok : EXIT.runFailed;
  });
}

export const syncCommand = defineCommand({
  type: "sync",
  listed: [["sync", "deliver new and changed bars from the store to a sink (Pocketbase)"]],
  schema,
  usage: `Usage: ticksync sync [--config FILE] [--sink NAME ...] [--json]`,
  about: `Delivers the bars the store gained or changed since the sink's cursor to each sink in the
config's [sinks] (or only the named ones): Pocketbase records upserted through its batch API,
one record id per (source, symbol, interval, ts), so running it again never duplicates. The
cursor moves only past batches Pocketbase acknowledged. While Pocketbase is down or answers
5xx/429 the sync waits (the sink's retryForS, default 600 s) and then fails with the cursor
kept; the next sync continues from there. Records Pocketbase refuses are quarantined with its
error (rule "sink"); the rest of their batch still goes in. Bars of ingest runs still running
wait for the next sync.`,
  flagGap: 3,
  footers: [EXIT_CODES_HELP],
  run,
});
