// `ticksync backup`: snapshot the store with a manifest beside it.
import { join } from "node:path";
import { BackupError, backupStore } from "../monitor/backup.ts";
import { defineCommand, flag, options, text, type Options } from "./command.ts";
import { intFlag, loadCommandConfig } from "./context.ts";
import { EXIT, EXIT_CODES_HELP } from "./exit.ts";
import { err, oneLine, out } from "./io.ts";
import { STORES } from "../stores/registry.ts";

const schema = options({
  out: text("where backups go (default ./backups)", "DIR"),
  keep: text("keep the newest N backups in DIR, remove older ones", "N"),
  store: text("the store (default: the config's store.url)", "URL"),
  incremental: flag("write only what changed since the newest backup of the store in DIR (chained to it)"),
  json: flag("print the manifest as JSON"),
});

async function run(v: Options<typeof schema>): Promise<number> {
  const loaded = loadCommandConfig(v, { store: { url: v.store } });
  const dir = v.out ?? "backups";
  try {
    const r = await backupStore(loaded.config.store.url, dir, { keep: intFlag("keep", v.keep), incremental: !!v.incremental });
    if (v.json) out(JSON.stringify({ ...r.manifest, manifest: r.manifestPath, removed: r.removed }, null, 2));
    else {
      const what = r.manifest.mode === "incremental" ? `increment ${r.manifest.sequence} on ${r.manifest.parent!.name} (${r.manifest.changed} bar partitions)` : "full";
      out(`backup ${r.manifest.kind} ${what}: ${join(dir, r.manifest.file)} (${r.manifest.bytes} bytes, sha256 ${r.manifest.sha256})`);
      out(`  manifest ${r.manifestPath}: ${r.manifest.counts.bars} bars, ${r.manifest.counts.series} series, ${r.manifest.counts.quarantine} quarantined, ${r.manifest.counts.runs} runs`);
      if (r.removed.length) out(`  removed ${r.removed.length} older backups: ${r.removed.join(", ")}`);
    }
    return EXIT.ok;
  } catch (e) {
    if (e instanceof BackupError) {
      err(`ticksync: backup: ${oneLine(e)}`);
      if (e.code === "chain" || e.code === "checksum") return EXIT.mismatch;
      return e.code === "unsupported" ? EXIT.usage : e.code === "store" ? EXIT.store : EXIT.runFailed;
    }
    throw e;
  }
}

export const backupCommand = defineCommand({
  type: "backup",
  listed: [["backup", "snapshot the store with a manifest (sha256, row counts, a checksum of every bar)"]],
  schema,
  usage: `Usage: ticksync backup [--config FILE] [--store URL] [--out DIR] [--keep N] [--incremental] [--json]`,
  about: `Writes a backup of the store into DIR (default ./backups) with a manifest beside it
(ticksync-<UTC time>.json): the file's size and sha256, the row counts and a checksum of every
bar. With --incremental (SQLite, PostgreSQL) it writes only the bar partitions changed since the
newest backup of the store in DIR, and the other tables whole, with a manifest chained to that
backup's (its name and sha256, a sequence number, the journal positions covered); when no
increment can be made (no earlier backup, a schema migrated since, a broken chain) it refuses
(exit 6) and a full backup has to be made. --keep never removes a backup a kept increment needs.
By store:
${STORES.map((d) => `  ${d.type.padEnd(10)}${"method" in d.backup ? d.backup.method : d.backup.unsupported}`).join("\n")}`,
  footers: [EXIT_CODES_HELP],
  run,
});
