// `ticksync restore`: restore a backup after checking its sha256; counts and checksum checked after.
import { BackupError, restoreStore } from "../monitor/backup.ts";
import { defineCommand, flag, options, text, UsageError, type Options } from "./command.ts";
import { loadCommandConfig } from "./context.ts";
import { EXIT, EXIT_CODES_HELP } from "./exit.ts";
import { err, oneLine, out } from "./io.ts";
import { restoreOther } from "./backup-other.ts";
import { manifestKind } from "../monitor/backup-kinds.ts";

const schema = options({
  from: text("the backup's manifest (ticksync-<time>.json); an increment's restores its whole chain", "MANIFEST"),
  to: text("the store to restore into", "URL"),
  sink: text("a Pocketbase backup: the sink whose server it replaces (default: the one it was made of)", "NAME"),
  force: flag("replace an existing store"),
  json: flag("print the result as JSON"),
});

/** The exit code of a failed restore, by what failed. */
function restoreExit(e: BackupError): number {
  if (e.code === "checksum" || e.code === "mismatch" || e.code === "chain") return EXIT.mismatch;
  if (e.code === "exists" || e.code === "unsupported") return EXIT.usage;
  return e.code === "store" ? EXIT.store : EXIT.runFailed;
}

async function run(v: Options<typeof schema>): Promise<number> {
  if (v.from === undefined) throw new UsageError("restore needs --from <manifest.json>");
  const loaded = loadCommandConfig(v, { store: { url: v.to } });
  try {
    const other = await restoreOther(loaded, v.from, manifestKind(v.from), v);
    if (other !== null) return other;
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

export const restoreCommand = defineCommand({
  type: "restore",
  listed: [["restore", "restore a backup after checking its sha256; counts and checksum checked after"]],
  schema,
  usage: `Usage: ticksync restore --from MANIFEST [--to URL] [--force] [--config FILE] [--json] [--sink NAME]`,
  about: `Restores the backup a manifest describes into the store (default: the config's store.url).
The backup file's sha256 is checked first, and for SQLite the decompressed snapshot's sha256
and integrity too, before anything is replaced; an existing store is replaced only with
--force. An increment's manifest restores its chain: the full backup, then each increment in
order; every link is checked first (each file's sha256, each parent manifest's sha256 as its
child recorded it, sequence numbers and journal positions without a gap) and a broken chain is
refused with one line (exit 6) before anything is replaced. Afterwards the restored store's
counts and bar checksum are compared with the last manifest (exit 6 when they differ). A QuestDB
backup is restored table by table under the target store's prefix (existing tables only with
--force) and each table's rows and checksum compared; a Pocketbase backup replaces all of the
sink's server data through its backup API (--force needed), and its records per collection are
compared once the server has restarted.`,
  footers: [EXIT_CODES_HELP],
  run,
});
