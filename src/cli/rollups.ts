// `ticksync rollups`: bring a Postgres store's materialised rollups up to date with the runs
// queued for them (serve does so in the background).
import { defineCommand, flag, options, text, type Options } from "./command.ts";
import { CONFIG_HELP, loadCommandConfig, withStore } from "./context.ts";
import { EXIT, EXIT_CODES_HELP } from "./exit.ts";
import { out } from "./io.ts";

const schema = options({
  store: text("the store (default: the config's store.url)", "URL"),
  json: flag("print the counts as JSON"),
});

async function run(v: Options<typeof schema>): Promise<number> {
  const loaded = loadCommandConfig(v, { store: { url: v.store } });
  return withStore(loaded, async (store) => {
    if (!store.rollUp) {
      if (v.json) out(JSON.stringify({ store: store.kind, materialised: false }, null, 2));
      else out(`the ${store.kind} store keeps no materialised rollups: /api/bars rolls up on read`);
      return EXIT.ok;
    }
    const started = performance.now();
    const r = await store.rollUp();
    const pending = (await store.rollupPending?.()) ?? 0;
    const seconds = (performance.now() - started) / 1000;
    if (v.json) out(JSON.stringify({ store: store.kind, materialised: true, ...r, pending, seconds: Number(seconds.toFixed(3)) }, null, 2));
    else out(`rolled up ${r.runs} runs in ${seconds.toFixed(2)}s: ${r.written} rows written, ${r.deleted} removed; ${r.failed} failed, ${pending} still queued`);
    return r.failed > 0 ? EXIT.runFailed : EXIT.ok;
  });
}

export const rollupsCommand = defineCommand({
  type: "rollups",
  listed: [["rollups", "bring the materialised rollups (Postgres) up to date with the runs queued\nfor them (serve does so in the background)"]],
  schema,
  usage: `Usage: ticksync rollups [--config FILE] [--store URL] [--json]`,
  about: `Rolls up, into the materialised rollups of a Postgres store, every run that stored bars and is
queued for them, oldest first, and reports the runs, the rows written and removed, and how many
are still queued. A finishing run that stored bars (ingest, backfill, ...) only queues itself:
the rollups serve /api/bars, and 'ticksync serve' works the queue off in the background (at start
and after each run it finishes), answering on read meanwhile. Run this to have them ready before serve starts,
or after a large load. Safe beside a running serve or another replica: one process rolls up at a
time, the others wait. A run whose rollup fails stays queued (exit 1). SQLite and QuestDB keep
no materialised rollups: nothing to do.`,
  footers: [CONFIG_HELP, EXIT_CODES_HELP],
  run,
});
