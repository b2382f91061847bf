// `ticksync serve`: the HTTP API, metrics, the live feed and the scheduler (wired in src/serve.ts).
import { resolve } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { defineCommand, options, text, type Options } from "./command.ts";
import { CONFIG_HELP, intFlag, loadCommandConfig } from "./context.ts";
import { EXIT, EXIT_CODES_HELP } from "./exit.ts";
import { err, oneLine, out } from "./io.ts";
import { marketCodes } from "../domain/markets/index.ts";
import { setLogFile } from "../lib/log.ts";
import { buildStamp } from "./version.ts";

const schema = options({
  host: text("listen address (default 127.0.0.1, config server.host)", "HOST"),
  port: text("listen port (default 8080, config server.port; 0 picks a free port)", "PORT"),
  store: text("store URL, e.g. sqlite:./data/ticksync.db (config store.url)", "URL"),
});

async function run(v: Options<typeof schema>): Promise<number> {
  const loaded = loadCommandConfig(v, { store: { url: v.store }, server: { host: v.host, port: intFlag("port", v.port) } });
  // Only serve writes log.file: one process per file, as rotation is not shared between processes.
  const logConfig = loaded.config.log;
  if (logConfig.file) setLogFile({ ...logConfig, path: resolve(loaded.baseDir, logConfig.file) });
  // The server (HTTP app, scheduler, feeds) is loaded only by this command: the others start without it.
  const { serve, ServeError } = await import("../serve.ts");
  try {
    // One machine-readable line on stdout says where it listens (port 0 picks a free one).
    // The first line says which build answers: the version and the commit `ticksync --version` prints.
    const { commit } = buildStamp();
    await serve(loaded, (url) => out(JSON.stringify({ listening: url, version: pkg.version, commit })));
    return EXIT.ok;
  } catch (e) {
    if (!(e instanceof ServeError)) throw e;
    if (e.reason === "store") {
      err(`ticksync: ${e.message}: ${oneLine(e.cause)}`);
      return EXIT.store;
    }
    err(`ticksync: ${e.message}: ${(e.cause as Error).message}`);
    return EXIT.runFailed;
  }
}

export const serveCommand = defineCommand({
  type: "serve",
  listed: [["serve", "run the HTTP API, metrics and the scheduler"]],
  schema,
  usage: `Usage: ticksync serve [--config FILE] [--host HOST] [--port PORT] [--store URL]`,
  about: `Starts the HTTP server (GET /healthz, /readyz, /metrics, /api/symbols, /api/bars, /api/runs,
/api/quarantine, /api/jobs; POST /api/jobs/<name>/run; the live feed of stored bars on
/api/ws (WebSocket) and /api/stream (SSE), see [stream]) and the scheduler, which runs the jobs of
the config (cron schedules, runOnStart; a job with market = ${marketCodes().map((m) => JSON.stringify(m)).join("|")} runs its cron ticks
only in its phases, default ["open"]). With a Postgres store it also keeps the materialised
rollups that /api/bars serves: the runs queued for them are rolled up in the background, at start
and after each run it finishes (see 'ticksync rollups'). Stops cleanly on SIGINT/SIGTERM, letting
running batches commit (a rollup in progress rolls back and stays queued).`,
  flagGap: 5,
  footers: [CONFIG_HELP, EXIT_CODES_HELP],
  run,
});
