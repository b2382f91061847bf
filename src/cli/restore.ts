// `ticksync restore`: restore a backup after checking its sha256; counts and checksum checked after.
import { loadConfig } from "../config/load.ts";
import { setLogLevel } from "../lib/log.ts";
import { BackupError, restoreStore } from "../monitor/backup.ts";
import { defineCommand, flag, options, parseOptions, text, UsageError } from "./command.ts";
import { configPath } from "./context.ts";
import { EXIT, EXIT_CODES_HELP } from "./exit.ts";
import { err, oneLine, out } from "./io.ts";

const schema = options({
  from: text("the backup's manifest (ticksync-<time>.json)"),
  to: text("the store to restore into (default: the config's store.url)"),
  force: flag("replace an existing store"),
  json: flag("print the result as JSON"),
});

/** The exit code of a failed restore, by what failed. */
function restoreExit(e: BackupError): number {
  if (e.code === "checksum" || e.code === "mismatch") return EXIT.mismatch;
  if (e.code === "exists" || e.code === "unsupported") return EXIT.usage;
  return e.code === "store" ? EXIT.store : EXIT.runFailed;
}

async function run(argv: string[]): Promise<number> {
  const { values: v } = parseOptions(schema, argv);
  if (v.help) return out(help.restore), EXIT.ok;
  if (v.from === undefined) throw new UsageError("restore needs --from <manifest.json>");
  const loaded = loadConfig(configPath(v.config), process.env, { store: { url: v.to } });
  setLogLevel(loaded.config.log.level);
  try {
    const r = await restoreStore(v.from, loaded.config.store.url, { force: !!v.force });
    if (v.json) out(JSON.stringify(r, null, 2));
    else out(`restored ${r.manifest.kind} backup of ${r.manifest.createdAt} into ${r.target}: ${r.counts.bars} bars, ${r.counts.series} series, checksum ${r.barsChecksum} as in the manifest`);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof BackupError) {
      err(`ticksync: restore: ${oneLine(e)}`);
      return restoreExit(e);
    }
    throw e;
  }
}

const help = {
  restore: `Usage: ticksync restore --from MANIFEST [--to URL] [--force] [--config FILE] [--json]

Restores the backup a manifest describes into the store (default: the config's store.url).
The backup file's sha256 is checked first, and for SQLite the decompressed snapshot's sha256
and integrity too, before anything is replaced; an existing store is replaced only with
--force. Afterwards the restored store's counts and bar checksum are compared with the manifest
(exit 6 when they differ).

Flags:
  --from MANIFEST  the backup's manifest (ticksync-<time>.json)
  --to URL         the store to restore into
  --force          replace an existing store
  --json           print the result as JSON

${EXIT_CODES_HELP}
`,
};

export const restoreCommand = defineCommand({
  type: "restore",
  listed: [["restore", "restore a backup after checking its sha256; counts and checksum checked after"]],
  schema,
  help,
  run,
});
