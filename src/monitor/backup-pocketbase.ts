// Backups of a Pocketbase sink's server through Pocketbase's own backup API (the JS SDK's
// pb.backups, as the sink's superuser): the server writes a zip of its pb_data, ticksync downloads
// it into the backup dir with a manifest (sha256, the records per collection), keeps the newest N
// here and of its own on the server. Restore uploads the checked zip under a fresh name, asks the
// server to restore it (Pocketbase replaces its data and restarts itself), waits for the restart
// and compares the records per collection with the manifest.
import { createReadStream, statSync } from "node:fs";
import { join } from "node:path";
import { ClientResponseError } from "pocketbase";
import { BackupError } from "./backup.ts";
import { MANIFEST_FORMAT } from "./backup.ts";
import { prune } from "./backup-chain.ts";
import { checkedBackup, downloadTo, newBackupName, recordRun, writeManifest, type ManifestBase } from "./backup-kinds.ts";
import { connect, withRetry, type PbConnection } from "../sinks/pocketbase/client.ts";
import type { PocketbaseSinkConfig } from "../sinks/pocketbase/config.ts";
import { errorText } from "../lib/errors.ts";
import { redact, redactUrl } from "../lib/redact.ts";

export type PocketbaseManifest = ManifestBase & {
  kind: "pocketbase";
  /** The sink whose server was backed up. */
  sink: string;
  /** The backup's name on the server (pb_data/backups). */
  key: string;
};

export type PocketbaseBackupResult = { manifest: PocketbaseManifest; manifestPath: string; removed: string[]; removedOnServer: string[] };

/** How long a backup or a restart may take (the server zips or unzips all of pb_data). */
const LONG_MS = 30 * 60_000;

const opts = (ms: number) => ({ requestKey: null, signal: AbortSignal.timeout(ms) });

/** A failure as one line, with the sink's URL and any token in it masked. */
function fail(conn: PbConnection, what: string, e: unknown, code: BackupError["code"] = "failed"): BackupError {
  const why = e instanceof ClientResponseError ? `${e.status} ${e.message}` : errorText(e);
  // The sink's own errors (SinkError) name it already.
  return new BackupError(redact(`${conn.where}: ${what}: ${why.startsWith(`${conn.where}: `) ? why.slice(conn.where.length + 2) : why}`), code);
}

/** Backups this sink made on the server are named ticksync-<sink>-<time>.zip (Pocketbase allows [a-z0-9_-]). */
const keyPrefix = (sink: string) => `ticksync-${sink.toLowerCase().replace(/[^a-z0-9_]/g, "_")}-`;

/** A key's place among those of one second: "…z.zip" is the first, "…z-2.zip" the second. */
const keyOrder = (key: string) => {
  const m = /^(.*?)(?:-(\d+))?\.zip$/.exec(key);
  return m ? `${m[1]}-${(m[2] ?? "1").padStart(6, "0")}` : key;
};

/** Records per collection (views left out: they hold no data of their own). */
async function countRecords(conn: PbConnection): Promise<Record<string, number>> {
  const { pb } = conn;
  const cols = await withRetry(conn, "list collections", () => pb.collections.getFullList({ ...opts(conn.cfg.timeoutMs), fields: "name,type,system" }));
  const counts: Record<string, number> = {};
  for (const c of cols.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    // Pocketbase's own bookkeeping (_authOrigins, _otps…) changes with every sign-in; of its
    // system collections only the superusers are counted.
    if (c.type === "view" || (c.system && c.name !== "_superusers")) continue;
    const page = await withRetry(conn, `count ${c.name}`, () => pb.collection(c.name).getList(1, 1, { ...opts(conn.cfg.timeoutMs), fields: "id" }));
    counts[c.name] = page.totalItems;
  }
  return counts;
}

/**
 * Back up the Pocketbase of sink `sink` into `dir`; keep the newest `keep` of its backups there
 * and of its own on the server.
 */
export async function backupPocketbase(
  sink: string,
  cfg: PocketbaseSinkConfig,
  dir: string,
  o: { keep?: number; now?: Date; /** The store whose audit trail records the backup. */ auditStore?: string } = {},
): Promise<PocketbaseBackupResult> {
  const now = o.now ?? new Date();
  const name = newBackupName(dir, now);
  const conn = connect(sink, cfg);
  const { pb } = conn;
  let before: Record<string, number>;
  let key = `${keyPrefix(sink)}${name.slice("ticksync-".length).toLowerCase()}`;
  try {
    before = await countRecords(conn);
    // Another directory's backup of this sink may have taken the name this second.
    const taken = new Set((await pb.backups.getFullList(opts(conn.cfg.timeoutMs))).map((b) => b.key));
    const base = key;
    for (let n = 2; taken.has(`${key}.zip`); n++) key = `${base}-${n}`;
    key += ".zip";
  } catch (e) {
    throw fail(conn, "cannot read the collections", e, "store");
  }
  try {
    // Not retried: a create that timed out may still be writing that name.
    await withRetry(conn, "sign in", async () => {});
    await pb.backups.create(key, opts(LONG_MS));
  } catch (e) {
    throw fail(conn, `creating the backup ${key} failed`, e);
  }
  const after = await countRecords(conn).catch(() => null);
  const file = join(dir, `${name}.zip`);
  let got: { bytes: number; sha256: string };
  try {
    const listed = (await pb.backups.getFullList(opts(conn.cfg.timeoutMs))).find((b) => b.key === key);
    if (!listed) throw new Error(`the server lists no backup ${key} after creating it`);
    const token = await pb.files.getToken(opts(conn.cfg.timeoutMs));
    const res = await fetch(pb.backups.getDownloadURL(token, key), { signal: AbortSignal.timeout(LONG_MS) });
    if (!res.ok || !res.body) throw new Error(`download answered ${res.status}`);
    got = await downloadTo(res.body, file);
    if (got.bytes !== listed.size) throw new Error(`downloaded ${got.bytes} bytes of ${listed.size}`);
  } catch (e) {
    throw fail(conn, `downloading the backup ${key} failed`, e);
  }
  const manifest: PocketbaseManifest = {
    format: MANIFEST_FORMAT,
    kind: "pocketbase",
    createdAt: now.toISOString(),
    store: redactUrl(cfg.url),
    file: `${name}.zip`,
    bytes: got.bytes,
    sha256: got.sha256,
    // Records written while the server zipped its data make the counts uncertain: none are kept.
    counts: after && JSON.stringify(after) === JSON.stringify(before) ? before : null,
    sink,
    key,
  };
  const manifestPath = writeManifest(dir, name, manifest);
  const removed = o.keep ? prune(dir, o.keep, (m) => m.kind === "pocketbase" && (m as unknown as PocketbaseManifest).sink === sink && m.store === manifest.store) : [];
  const removedOnServer: string[] = [];
  if (o.keep) {
    try {
      const ours = (await pb.backups.getFullList(opts(conn.cfg.timeoutMs))).filter((b) => b.key.startsWith(keyPrefix(sink)));
      // Newest first: by when the server wrote them, then by name (the -n of a second's backups).
      ours.sort((a, b) => (a.modified === b.modified ? (keyOrder(a.key) < keyOrder(b.key) ? 1 : -1) : a.modified < b.modified ? 1 : -1));
      for (const b of ours.slice(o.keep)) {
        await pb.backups.delete(b.key, opts(conn.cfg.timeoutMs));
        removedOnServer.push(b.key);
      }
    } catch (e) {
      throw fail(conn, `the backup ${manifest.file} is written, but removing older ones on the server failed`, e);
    }
  }
  await recordRun(o.auditStore, { kind: "backup", source: "pocketbase", params: { sink, dir, file: manifest.file, sha256: manifest.sha256, bytes: manifest.bytes, removed, removedOnServer }, read: 0, error: null });
  return { manifest, manifestPath, removed, removedOnServer };
}

/** POST the zip as multipart form data, streamed from disk (the SDK would hold it in memory). */
async function upload(conn: PbConnection, file: string, key: string): Promise<void> {
  const boundary = `ticksync-${crypto.randomUUID()}`;
  const enc = new TextEncoder();
  const head = enc.encode(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${key}"\r\nContent-Type: application/zip\r\n\r\n`);
  const tail = enc.encode(`\r\n--${boundary}--\r\n`);
  const size = statSync(file).size;
  const body = new ReadableStream<Uint8Array>({
    async start(c) {
      c.enqueue(head);
      for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) c.enqueue(new Uint8Array(chunk as Buffer));
      c.enqueue(tail);
      c.close();
    },
  });
  const res = await fetch(conn.pb.buildURL("/api/backups/upload"), {
    method: "POST",
    body,
    headers: { "content-type": `multipart/form-data; boundary=${boundary}`, "content-length": String(head.length + size + tail.length), authorization: conn.pb.authStore.token },
    signal: AbortSignal.timeout(LONG_MS),
  });
  if (!res.ok) throw new Error(`upload answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
}

/**
 * Resolves when the server process that holds the realtime connection goes away (Pocketbase
 * re-executes itself after a restore, which closes every connection of the old process).
 */
async function processEnded(conn: PbConnection, signal: AbortSignal): Promise<() => Promise<void>> {
  const res = await fetch(conn.pb.buildURL("/api/realtime"), { signal, headers: { accept: "text/event-stream" } });
  if (!res.ok || !res.body) throw new Error(`the realtime connection answered ${res.status}`);
  const reader = res.body.getReader();
  // The first event (PB_CONNECT) proves the stream is open before the restore is asked for.
  await reader.read();
  return async () => {
    while (!(await reader.read()).done);
  };
}

async function healthy(conn: PbConnection, until: number): Promise<void> {
  for (;;) {
    try {
      await conn.pb.health.check(opts(2000));
      return;
    } catch (e) {
      if (Date.now() > until) throw new Error(`the server did not answer again: ${errorText(e)}`);
    }
    await Bun.sleep(200); // polling a restarting server, whose port is closed meanwhile
  }
}

export type PocketbaseRestoreResult = { manifest: PocketbaseManifest; target: string; counts: Record<string, number> };

/**
 * Restore the backup a manifest describes into the Pocketbase of sink `sink`: the zip's sha256 is
 * checked first; Pocketbase's data is replaced, so `force` is required. Afterwards the records
 * per collection are compared with the manifest's (when it has them).
 */
export async function restorePocketbase(
  manifestPath: string,
  sink: string,
  cfg: PocketbaseSinkConfig,
  o: { force?: boolean; timeoutMs?: number; auditStore?: string } = {},
): Promise<PocketbaseRestoreResult> {
  const { manifest: m, file } = await checkedBackup<PocketbaseManifest>(manifestPath, "pocketbase");
  const conn = connect(sink, cfg);
  if (!o.force) throw new BackupError(`restoring replaces every collection and record of ${conn.where} with the backup's (and restarts it): add --force`, "exists");
  const key = `ticksync-restore-${crypto.randomUUID().slice(0, 8)}.zip`;
  const stop = new AbortController();
  const timeoutMs = o.timeoutMs ?? 5 * 60_000;
  const timer = setTimeout(() => stop.abort(), timeoutMs);
  try {
    await withRetry(conn, "sign in", async () => {});
    await upload(conn, file, key);
    const ended = await processEnded(conn, stop.signal);
    await conn.pb.backups.restore(key, opts(conn.cfg.timeoutMs));
    // The stream ends, or breaks, when the old process goes; only our own deadline is a failure.
    await ended().catch(() => {
      if (stop.signal.aborted) throw new Error(`the server did not restart within ${timeoutMs / 1000} s (see its log: the restore may have failed)`);
    });
    await healthy(conn, Date.now() + timeoutMs);
    // The restored data has its own superusers: sign in again, as the config says.
    conn.pb.authStore.clear();
    const counts = await countRecords(conn);
    await conn.pb.backups.delete(key, opts(conn.cfg.timeoutMs)).catch(() => {});
    const differ = m.counts !== null && JSON.stringify(counts) !== JSON.stringify(m.counts);
    const params = { sink, manifest: manifestPath, createdAt: m.createdAt, sha256: m.sha256, from: m.store };
    await recordRun(o.auditStore, { kind: "restore", source: "pocketbase", params, read: 0, error: differ ? "restored records differ from the manifest" : null });
    if (differ) throw new BackupError(`restored, but the records differ from the manifest: ${JSON.stringify(counts)} vs ${JSON.stringify(m.counts)}`, "mismatch");
    return { manifest: m, target: conn.where, counts };
  } catch (e) {
    if (e instanceof BackupError) throw e;
    throw fail(conn, "restore failed", e);
  } finally {
    clearTimeout(timer);
    stop.abort();
  }
}
