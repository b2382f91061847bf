// `ticksync backup`: snapshot the store with a manifest beside it.
import { join } from "node:path";
import { BackupError, backupStore } from "../monitor/backup.ts";
import { defineCommand, flag, options, text, UsageError, type Options } from "./command.ts";
import { intFlag, loadCommandConfig } from "./context.ts";
import { EXIT, EXIT_CODES_HELP } from "./exit.ts";
import { err, oneLine, out } from "./io.ts";
import { STORES, storeFor } from "../stores/registry.ts";
import { backupOther, QUESTDB_METHOD } from "./backup-other.ts";

const schema = options({
  out: text("where backups go (default ./backups)", "DIR"),
  keep: text("keep the newest N backups in DIR, remove older ones", "N"),
  store: text("the store (default: the config's store.url)", "URL"),
  sink: text("back up this Pocketbase sink's server (its backup API) instead of the store", "NAME"),
  incremental: flag("write only what changed since the newest backup of the store in DIR (chained to it)"),
  json: flag("print the manifest as JSON"),
});

async function run(v: Options<typeof schema>): Promise<number> {
  const loaded = loadCommandConfig(v, { store: { url: v.store } });
  const dir = v.out ?? "backups";
  try {
    if (v.sink !== undefined || storeFor(loaded.config.store.url).type === "questdb") {
      if (v.incremental) throw new UsageError("--incremental is for SQLite and PostgreSQL stores, not for a sink or a QuestDB store");
      return await backupOther(loaded, dir, v);
    }
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
  usage: `Usage: ticksync backup [--config FILE] [--store URL] [--out DIR] [--keep N] [--json] [--sink NAME] [--incremental]`,
  about: `Writes a backup of the store into DIR (default ./backups) with a manifest beside it
(ticksync-<UTC time>.json): the file's size and sha256, the row counts and a checksum of every
bar. With --incremental (SQLite, PostgreSQL) it writes only the bar partitions changed since the
newest backup of the store in DIR, and the other tables whole, with a manifest chained to that
backup's (its name and sha256, a sequence number, the journal positions covered); when no
increment can be made (no earlier backup, a schema migrated since, a broken chain) it refuses
(exit 6) and a full backup has to be made. --keep never removes a backup a kept increment needs.
By store:
${STORES.map((d) => `  ${d.type.padEnd(10)}${"method" in d.backup ? d.backup.method : d.type === "questdb" ? QUESTDB_METHOD : d.backup.unsupported}`).join("\n")}
With --sink NAME, the Pocketbase server of that sink is backed up instead, through its own backup
API (a zip of its pb_data, downloaded; the records per collection in the manifest).`,
  footers: [EXIT_CODES_HELP],
  run,
});
