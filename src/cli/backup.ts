// `ticksync backup`: snapshot the store with a manifest beside it.
import { join } from "node:path";
import { loadConfig } from "../config/load.ts";
import { setLogLevel } from "../lib/log.ts";
import { BackupError, backupStore } from "../monitor/backup.ts";
import { defineCommand, flag, options, parseOptions, text } from "./command.ts";
import { configPath, intFlag } from "./context.ts";
import { EXIT, EXIT_CODES_HELP } from "./exit.ts";
import { err, oneLine, out } from "./io.ts";

const schema = options({
  out: text("where backups go (default ./backups)"),
  keep: text("keep the newest N backups in DIR, remove older ones"),
  store: text("the store (default: the config's store.url)"),
  json: flag("print the manifest as JSON"),
});

async function run(argv: string[]): Promise<number> {
  const { values: v } = parseOptions(schema, argv);
  if (v.help) return out(help.backup), EXIT.ok;
  const loaded = loadConfig(configPath(v.config), process.env, { store: { url: v.store } });
  setLogLevel(loaded.config.log.level);
  const dir = v.out ?? "backups";
  try {
    const r = await backupStore(loaded.config.store.url, dir, { keep: intFlag("keep", v.keep) });
    if (v.json) out(JSON.stringify({ ...r.manifest, manifest: r.manifestPath, removed: r.removed }, null, 2));
    else {
      out(`backup ${r.manifest.kind}: ${join(dir, r.manifest.file)} (${r.manifest.bytes} bytes, sha256 ${r.manifest.sha256})`);
      out(`  manifest ${r.manifestPath}: ${r.manifest.counts.bars} bars, ${r.manifest.counts.series} series, ${r.manifest.counts.quarantine} quarantined, ${r.manifest.counts.runs} runs`);
      if (r.removed.length) out(`  removed ${r.removed.length} older backups: ${r.removed.join(", ")}`);
    }
    return EXIT.ok;
  } catch (e) {
    if (e instanceof BackupError) {
      err(`ticksync: backup: ${oneLine(e)}`);
      return e.code === "unsupported" ? EXIT.usage : e.code === "store" ? EXIT.store : EXIT.runFailed;
    }
    throw e;
  }
}

// How each store is backed up should come from the store registry (stores/).
const help = {
  backup: `Usage: ticksync backup [--config FILE] [--store URL] [--out DIR] [--keep N] [--json]

Writes a backup of the store into DIR (default ./backups) with a manifest beside it
(ticksync-<UTC time>.json): the file's size and sha256, the row counts and a checksum of every
bar. SQLite: VACUUM INTO a consistent snapshot while the service keeps writing, gzip-compressed.
Postgres: pg_dump of the store's schema (custom format; pg_dump must be installed). QuestDB
stores are backed up with QuestDB's own tools.

Flags:
  --out DIR    where backups go (default ./backups)
  --keep N     keep the newest N backups in DIR, remove older ones
  --store URL  the store (default: the config's store.url)
  --json       print the manifest as JSON

${EXIT_CODES_HELP}
`,
};

export const backupCommand = defineCommand({
  type: "backup",
  listed: [["backup", "snapshot the store (SQLite: VACUUM INTO + gzip; Postgres: pg_dump) with a manifest"]],
  schema,
  help,
  run,
});
