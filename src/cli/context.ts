// What the commands share: finding and loading the config, reading numeric and date flags,
// opening the store (audited, migrated), and stopping cleanly on Ctrl-C.
import { existsSync } from "node:fs";
import { loadConfig, type FlagOverrides, type LoadedConfig } from "../config/load.ts";
import { parseTimestamp } from "../domain/time.ts";
import { setLogLevel } from "../lib/log.ts";
import { redactUrl } from "../lib/redact.ts";
import { auditedStore } from "../monitor/audit.ts";
import { openStore } from "../stores/open.ts";
import type { Store } from "../stores/types.ts";
import { UsageError } from "./command.ts";
import { EXIT } from "./exit.ts";
import { err, oneLine } from "./io.ts";

export const CONFIG_HELP = `Config:
  --config FILE   JSON or TOML config (default: $TICKSYNC_CONFIG, else ./ticksync.toml or
                  ./ticksync.json when present, else built-in defaults)
  Environment overrides: TICKSYNC_<SECTION>__<FIELD>=value, levels separated by a double
  underscore, fields in upper snake case: TICKSYNC_SERVER__PORT=9090,
  TICKSYNC_INGEST__BATCH_SIZE=10000, TICKSYNC_STORE__URL=sqlite:/var/lib/ticksync.db,
  TICKSYNC_SOURCES__DEMO__PATH=/data/csv. Values that parse as JSON are JSON. An override
  inside an entry the config does not have (sources.<name>, sinks.<name>, alerts.email) is
  ignored with a warning.`;

/** The config file: --config, else $TICKSYNC_CONFIG, else ./ticksync.toml or ./ticksync.json. */
export function configPath(flag: string | undefined): string | null {
  if (typeof flag === "string") return flag;
  if (process.env.TICKSYNC_CONFIG) return process.env.TICKSYNC_CONFIG;
  for (const f of ["ticksync.toml", "ticksync.json"]) if (existsSync(f)) return f;
  return null;
}

/** The config a command runs with: the file (--config), the environment, then its flags; sets the log level. */
export function loadCommandConfig(values: { config?: string }, flags?: FlagOverrides): LoadedConfig {
  const loaded = loadConfig(configPath(values.config), process.env, flags);
  setLogLevel(loaded.config.log.level);
  return loaded;
}

export function intFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} expects a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

export function dateFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const t = /^\d{4}-\d{2}-\d{2}$/.test(value) ? parseTimestamp(value) : null;
  if (t === null) throw new UsageError(`--${name} expects a date YYYY-MM-DD, got ${JSON.stringify(value)}`);
  return t;
}

/** Every store the CLI opens records, on each run it starts, who started it. */
export const openAuditedStore = (url: string): Store => auditedStore(openStore(url));

/** Opens and migrates a store, or ends the process with exit 5 and one line naming it. */
export async function openMigrated(url: string, label?: string): Promise<Store> {
  try {
    const store = openAuditedStore(url);
    await store.migrate();
    return store;
  } catch (e) {
    err(`ticksync: cannot open the ${label ? `${label} ` : ""}store ${redactUrl(url)}: ${oneLine(e)}`);
    process.exit(EXIT.store);
  }
}

/** Runs fn with the config's store open, then trims the event journal and closes the store. */
export async function withStore<T>(loaded: LoadedConfig, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openMigrated(loaded.config.store.url);
  try {
    return await fn(store);
  } finally {
    // The event journal keeps a copy of each stored bar for the stream's replay; a CLI-only
    // setup (no serve to prune it) trims it here to the same retention.
    await store.pruneEvents(Date.now() - loaded.config.stream.retentionDays * 86_400_000).catch(() => {});
    await store.close();
  }
}

/** An abort signal raised by the first SIGINT/SIGTERM; the second ends the process (130). */
export function interruptible(): AbortSignal {
  const controller = new AbortController();
  const stop = () => {
    err("ticksync: stopping after the current batches (press again to force)");
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  return controller.signal;
}
