// `ticksync backup` / `restore` of what is not a SQLite or PostgreSQL store: a Pocketbase sink's
// server (--sink NAME, through its backup API) and the QuestDB store (a checksummed export).
import type { LoadedConfig } from "../config/load.ts";
import { backupPocketbase, restorePocketbase, type PocketbaseManifest } from "../monitor/backup-pocketbase.ts";
import { backupQuestdb, restoreQuestdb } from "../monitor/backup-questdb.ts";
import type { ManifestBase } from "../monitor/backup-kinds.ts";
import type { PocketbaseSinkConfig } from "../sinks/pocketbase/config.ts";
import { intFlag } from "./context.ts";
import { EXIT } from "./exit.ts";
import { out } from "./io.ts";
import { UsageError } from "./command.ts";
import { readFileSync } from "node:fs";

export const QUESTDB_METHOD = "each table exported over HTTP (/exp, CSV) into one gzip file, with its DDL, rows and a checksum";

/** The Pocketbase sink `name` of the config. */
function pocketbaseSink(loaded: LoadedConfig, name: string): PocketbaseSinkConfig {
  const cfg = loaded.config.sinks[name];
  if (!cfg) throw new UsageError(`--sink ${name}: no such sink (defined: ${Object.keys(loaded.config.sinks).join(", ") || "none"})`);
  return cfg;
}

const countsText = (counts: Record<string, number> | null) =>
  counts ? Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(", ") : "counts not kept (records changed during the backup)";

export async function backupOther(loaded: LoadedConfig, dir: string, v: { sink?: string; keep?: string; json?: boolean }): Promise<number> {
  const keep = intFlag("keep", v.keep);
  const r =
    v.sink !== undefined
      ? await backupPocketbase(v.sink, pocketbaseSink(loaded, v.sink), dir, { keep, auditStore: loaded.config.store.url })
      : await backupQuestdb(loaded.config.store.url, dir, { keep });
  if (v.json) out(JSON.stringify({ ...r.manifest, manifest: r.manifestPath, removed: r.removed }, null, 2));
  else {
    out(`backup ${r.manifest.kind}: ${r.manifest.file} in ${dir} (${r.manifest.bytes} bytes, sha256 ${r.manifest.sha256})`);
    out(`  manifest ${r.manifestPath}: ${countsText(r.manifest.counts)}`);
    if (r.removed.length) out(`  removed ${r.removed.length} older backups: ${r.removed.join(", ")}`);
  }
  return EXIT.ok;
}

/** Restore a Pocketbase or QuestDB backup; null when the manifest is of another kind. */
export async function restoreOther(loaded: LoadedConfig, manifestPath: string, kind: string | null, v: { sink?: string; force?: boolean; json?: boolean }): Promise<number | null> {
  let r: { manifest: ManifestBase; target: string; counts: Record<string, number> };
  if (kind === "pocketbase") {
    const m = JSON.parse(readFileSync(manifestPath, "utf8")) as PocketbaseManifest;
    const sink = v.sink ?? m.sink;
    r = await restorePocketbase(manifestPath, sink, pocketbaseSink(loaded, sink), { force: !!v.force, auditStore: loaded.config.store.url });
  } else if (kind === "questdb") r = await restoreQuestdb(manifestPath, loaded.config.store.url, { force: !!v.force });
  else return null;
  if (v.json) out(JSON.stringify(r, null, 2));
  else out(`restored ${r.manifest.kind} backup of ${r.manifest.createdAt} into ${r.target}: ${countsText(r.counts)}, as in the manifest`);
  return EXIT.ok;
}
