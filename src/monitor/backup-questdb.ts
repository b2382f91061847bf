// Backups of the QuestDB store as a checksummed export of its tables, over QuestDB's HTTP API.
// Why not CHECKPOINT CREATE/RELEASE: a checkpoint freezes the files under the server's root dir,
// and copying them needs that file system; ticksync talks to QuestDB over the network only. So
// each table is exported (`/exp`, CSV, streamed) into one gzip member of the backup file, with its
// DDL (SHOW CREATE TABLE), its columns, its row count and an order-independent checksum of its
// rows. Restore creates the tables afresh under the target store's prefix, inserts the rows over
// the PG wire in batches (QuestDB's CSV import does not undo the export's escapes, \n and \\, and
// reads "" as null), then exports them again and compares the counts and checksums.
import { createReadStream, createWriteStream, existsSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { createInterface } from "node:readline";
import postgres from "postgres";
import { BackupError, MANIFEST_FORMAT } from "./backup.ts";
import { prune } from "./backup-chain.ts";
import { checkedBackup, newBackupName, recordRun, tap, writeManifest, type ManifestBase } from "./backup-kinds.ts";
import { parseQuestdbUrl, TABLE_NAMES } from "../stores/questdb/context.ts";
import { errorText } from "../lib/errors.ts";
import { redact } from "../lib/redact.ts";

export type QuestdbTable = {
  /** The table's name without the store's prefix (bars, runs…), and as it was in QuestDB. */
  name: string;
  table: string;
  /** Its gzip member in the backup file. */
  offset: number;
  bytes: number;
  rows: number;
  /** Order-independent checksum of the exported rows (see RowSum). */
  checksum: string;
  ddl: string;
  walEnabled: boolean;
  columns: { name: string; type: string }[];
};

export type QuestdbManifest = ManifestBase & { kind: "questdb"; schemaVersion: number; barsChecksum: string | null; tables: QuestdbTable[]; counts: Record<string, number> };

/** Column types whose exported text restores exactly (every type the store's tables use, and more). */
const BARE_TYPES = new Set(["DOUBLE", "FLOAT", "LONG", "INT", "SHORT", "BYTE", "BOOLEAN"]);
const QUOTED_TYPES = new Set(["SYMBOL", "VARCHAR", "STRING", "TIMESTAMP", "TIMESTAMP_NS", "DATE", "UUID"]);
const BARE_VALUE = /^(?:[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|NaN|-?Infinity|true|false)$/;

type Exec = (query: string) => Promise<unknown[][]>;

function execOver(http: string): Exec {
  return async (query) => {
    const res = await fetch(`${http}/exec?query=${encodeURIComponent(query)}`, { signal: AbortSignal.timeout(60_000) });
    const body = (await res.json().catch(() => ({}))) as { dataset?: unknown[][]; error?: string; ddl?: string; dml?: string };
    if (!res.ok || body.error) throw new Error(`QuestDB: ${body.error ?? `HTTP ${res.status}`} (${query.slice(0, 120)})`);
    return body.dataset ?? [];
  };
}

/**
 * Rows and an order-independent checksum of a CSV export, fed its bytes in any chunking: each
 * line (the header excluded) is hashed with two 32-bit multiplicative lanes and the hashes are
 * summed, so the same rows in another order give the same sum. Written here because it runs
 * across chunk boundaries with no allocation per row; QuestDB's export escapes line breaks inside
 * values, so a line is a row.
 */
export class RowSum {
  private h1 = 0xdeadbeef;
  private h2 = 0x41c6ce57;
  private sum1 = 0;
  private sum2 = 0;
  private lines = 0;
  private last = -1;
  update(chunk: Uint8Array): void {
    if (chunk.length) this.last = chunk[chunk.length - 1]!;
    let { h1, h2 } = this;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === 10) {
        if (this.lines++ > 0) {
          // The final mix of cyrb53, so each lane depends on every byte of the line.
          const m1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
          const m2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
          this.sum1 = (this.sum1 + (m1 >>> 0)) >>> 0;
          this.sum2 = (this.sum2 + (m2 >>> 0)) >>> 0;
        }
        h1 = 0xdeadbeef;
        h2 = 0x41c6ce57;
      } else {
        h1 = Math.imul(h1 ^ b, 2654435761);
        h2 = Math.imul(h2 ^ b, 1597334677);
      }
    }
    this.h1 = h1;
    this.h2 = h2;
  }
  /** The export ended after a whole line (one cut short by a failure mid-stream does not). */
  get complete(): boolean {
    return this.last === 10;
  }
  get rows(): number {
    return Math.max(0, this.lines - 1);
  }
  get checksum(): string {
    return this.sum2.toString(16).padStart(8, "0") + this.sum1.toString(16).padStart(8, "0");
  }
}

/** The export of one table (or query) as a stream of CSV bytes. */
async function exportCsv(http: string, table: string, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
  const res = await fetch(`${http}/exp?query=${encodeURIComponent(`"${table}"`)}`, { signal });
  if (!res.ok || !res.body) throw new Error(`QuestDB /exp of ${table} answered ${res.status}: ${(await res.text().catch(() => "")).slice(0, 200)}`);
  return res.body;
}

const webStream = (s: ReadableStream<Uint8Array>) => Readable.fromWeb(s as import("node:stream/web").ReadableStream<Uint8Array>);

/** The store's tables that exist, with what restoring them needs. */
async function describeTables(exec: Exec, prefix: string) {
  const present = new Map((await exec(`SELECT table_name, walEnabled FROM tables()`)).map((r) => [String(r[0]), r[1] === true]));
  const out: Omit<QuestdbTable, "offset" | "bytes" | "rows" | "checksum">[] = [];
  for (const name of TABLE_NAMES) {
    const table = `${prefix}${name}`;
    if (!present.has(table)) continue;
    const columns = (await exec(`SELECT "column", type FROM table_columns('${table}')`)).map((r) => ({ name: String(r[0]), type: String(r[1]).toUpperCase() }));
    const odd = columns.find((c) => !BARE_TYPES.has(c.type) && !QUOTED_TYPES.has(c.type));
    if (odd) throw new BackupError(`${table}.${odd.name} is a ${odd.type} column, which this backup cannot restore exactly`, "unsupported");
    const [ddl] = await exec(`SHOW CREATE TABLE "${table}"`);
    out.push({ name, table, ddl: String(ddl?.[0] ?? ""), walEnabled: present.get(table)!, columns });
  }
  return out;
}

export type QuestdbBackupResult = { manifest: QuestdbManifest; manifestPath: string; removed: string[] };

/** Back the QuestDB store at `url` up into `dir`; then keep the newest `keep` of its backups there. */
export async function backupQuestdb(url: string, dir: string, o: { keep?: number; now?: Date; signal?: AbortSignal } = {}): Promise<QuestdbBackupResult> {
  const { http, prefix, location } = parseQuestdbUrl(url);
  const exec = execOver(http);
  const now = o.now ?? new Date();
  const name = newBackupName(dir, now);
  const file = join(dir, `${name}.csv.gz`);
  let tables: Awaited<ReturnType<typeof describeTables>>;
  let schemaVersion = 0;
  try {
    tables = await describeTables(exec, prefix);
    if (!tables.some((t) => t.name === "bars")) throw new Error(`no table ${prefix}bars: this is not a ticksync store (is the prefix right?)`);
    if (tables.some((t) => t.name === "schema_migrations")) schemaVersion = Number((await exec(`SELECT max(version) FROM "${prefix}schema_migrations"`))[0]?.[0] ?? 0);
  } catch (e) {
    if (e instanceof BackupError) throw e;
    throw new BackupError(redact(`cannot read the QuestDB store ${location}: ${errorText(e)}`), "store");
  }
  const file_h = new Bun.CryptoHasher("sha256");
  let offset = 0;
  const done: QuestdbTable[] = [];
  try {
    for (const t of tables) {
      const sum = new RowSum();
      let bytes = 0;
      // One gzip member per table, appended: the file is one valid gzip stream, and each member
      // can be read alone from its offset.
      await pipeline(
        webStream(await exportCsv(http, t.table, o.signal)),
        tap((c) => sum.update(c)),
        createGzip(),
        tap((c) => {
          file_h.update(c);
          bytes += c.length;
        }),
        createWriteStream(`${file}.part`, { flags: offset === 0 ? "w" : "a" }),
      );
      if (!sum.complete) throw new Error(`the export of ${t.table} ended in the middle of a row`);
      done.push({ ...t, offset, bytes, rows: sum.rows, checksum: sum.checksum });
      offset += bytes;
    }
    if (existsSync(file)) rmSync(file);
    renameSync(`${file}.part`, file);
  } catch (e) {
    rmSync(`${file}.part`, { force: true });
    throw new BackupError(redact(`exporting the QuestDB store ${location} failed: ${errorText(e)}`), "failed");
  }
  const manifest: QuestdbManifest = {
    format: MANIFEST_FORMAT,
    kind: "questdb",
    createdAt: now.toISOString(),
    store: location,
    file: `${name}.csv.gz`,
    bytes: offset,
    sha256: file_h.digest("hex"),
    counts: Object.fromEntries(done.map((t) => [t.name, t.rows])),
    schemaVersion,
    barsChecksum: done.find((t) => t.name === "bars")?.checksum ?? null,
    tables: done,
  };
  const manifestPath = writeManifest(dir, name, manifest);
  const removed = o.keep ? prune(dir, o.keep, (m) => m.kind === "questdb" && m.store === location) : [];
  await recordRun(url, { kind: "backup", source: "questdb", params: { dir, file: manifest.file, sha256: manifest.sha256, bytes: manifest.bytes, removed }, read: manifest.counts.bars ?? 0, error: null });
  return { manifest, manifestPath, removed };
}

const ESCAPES: Record<string, string> = { b: "\b", t: "\t", n: "\n", f: "\f", r: "\r", "\\": "\\", "/": "/", '"': '"' };
/** Undo the export's escapes inside a value (\n, \\, \u0001…: JSON's, which QuestDB's CSV uses). */
const unescape = (s: string) =>
  s.indexOf("\\") < 0 ? s : s.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_, e: string) => (e.length === 5 ? String.fromCharCode(parseInt(e.slice(1), 16)) : (ESCAPES[e] ?? e)));

/** One exported CSV line into `out`: null for an empty unquoted field, else the value's text. */
export function csvFields(line: string, out: (string | null)[]): number {
  let n = 0;
  let i = 0;
  const L = line.length;
  for (;;) {
    if (line.charCodeAt(i) === 34) {
      let s = "";
      for (i++; ; ) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new Error("a quoted value does not end");
        s += line.slice(i, q);
        i = q + 1;
        if (line.charCodeAt(i) !== 34) break;
        s += '"';
        i++;
      }
      out[n++] = unescape(s);
    } else {
      const c = line.indexOf(",", i);
      const end = c < 0 ? L : c;
      out[n++] = end === i ? null : unescape(line.slice(i, end));
      i = end;
    }
    if (i >= L) return n;
    if (line.charCodeAt(i) !== 44) throw new Error(`a comma was expected at ${i}`);
    i++;
  }
}

/** A value as an SQL literal of its column's type (numbers bare and checked, the rest quoted). */
function literal(value: string | null, type: string): string {
  if (value === null) return "NULL";
  if (BARE_TYPES.has(type)) {
    if (!BARE_VALUE.test(value)) throw new Error(`${JSON.stringify(value.slice(0, 40))} is not a ${type}`);
    return value;
  }
  return `'${value.replace(/'/g, "''")}'`;
}

/** The DDL of a table under another name, WAL as the original was. */
function ddlFor(t: QuestdbTable, target: string): string {
  const head = `CREATE TABLE '${t.table}'`;
  if (!t.ddl.startsWith(head)) throw new Error(`the manifest's DDL of ${t.table} does not start with ${head}`);
  let ddl = `CREATE TABLE '${target}'${t.ddl.slice(head.length)}`.replace(/;\s*$/, "");
  const partitioned = /PARTITION BY (\w+)/i.exec(ddl);
  if (partitioned && partitioned[1]!.toUpperCase() !== "NONE" && !/\bWAL\b/i.test(ddl)) ddl = ddl.replace(partitioned[0], `${partitioned[0]} ${t.walEnabled ? "WAL" : "BYPASS WAL"}`);
  return ddl;
}

const ROWS_PER_INSERT = 500;
const CHARS_PER_INSERT = 1 << 20;

/** Insert a table's rows from its gzip member, in batches over the PG wire. */
async function insertRows(sql: postgres.Sql<{}>, file: string, t: QuestdbTable, target: string): Promise<number> {
  const lines = createInterface({ input: createReadStream(file, { start: t.offset, end: t.offset + t.bytes - 1 }).pipe(createGunzip()), crlfDelay: Infinity });
  const types = t.columns.map((c) => c.type);
  const fields: (string | null)[] = [];
  let head = "";
  let values: string[] = [];
  let chars = 0;
  let rows = 0;
  const flush = async () => {
    if (!values.length) return;
    await sql.unsafe(`${head}${values.join(",")}`);
    values = [];
    chars = 0;
  };
  for await (const line of lines) {
    if (!head) {
      const n = csvFields(line, fields);
      const names = fields.slice(0, n);
      if (JSON.stringify(names) !== JSON.stringify(t.columns.map((c) => c.name))) throw new Error(`the export of ${t.table} has columns ${names.join(", ")}, the manifest ${t.columns.map((c) => c.name).join(", ")}`);
      head = `INSERT INTO "${target}" (${names.map((c) => `"${c}"`).join(", ")}) VALUES `;
      continue;
    }
    const n = csvFields(line, fields);
    if (n !== types.length) throw new Error(`row ${rows + 1} of ${t.table} has ${n} values, not ${types.length}`);
    let row = "(";
    for (let i = 0; i < n; i++) row += (i ? "," : "") + literal(fields[i]!, types[i]!);
    row += ")";
    values.push(row);
    chars += row.length;
    rows++;
    if (values.length >= ROWS_PER_INSERT || chars >= CHARS_PER_INSERT) await flush();
  }
  await flush();
  return rows;
}

async function walApplied(exec: Exec, table: string, until: number): Promise<void> {
  for (;;) {
    const [r] = await exec(`SELECT writerTxn, sequencerTxn, suspended FROM wal_tables() WHERE name = '${table}'`);
    if (!r || Number(r[0]) >= Number(r[1])) return;
    if (r[2] === true) throw new Error(`QuestDB suspended the WAL of ${table} (see its log)`);
    if (Date.now() > until) throw new Error(`QuestDB did not apply the WAL of ${table} in time`);
    await Bun.sleep(50); // polling QuestDB's WAL apply, which has no notification
  }
}

/** What of a manifest's table would reach SQL unchecked: a name, a column, a second statement. */
function unsafePart(t: QuestdbTable): string | null {
  if (!(TABLE_NAMES as readonly string[]).includes(t.name)) return `table ${JSON.stringify(t.name)}`;
  if (t.columns.some((c) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(c.name) || (!BARE_TYPES.has(c.type) && !QUOTED_TYPES.has(c.type)))) return `a column of ${t.name}`;
  if (typeof t.ddl !== "string" || t.ddl.replace(/;\s*$/, "").includes(";")) return `the DDL of ${t.name}`;
  return null;
}

export type QuestdbRestoreResult = { manifest: QuestdbManifest; target: string; counts: Record<string, number> };

/**
 * Restore a QuestDB backup into the QuestDB store at `url` (its prefix names the new tables):
 * the file's sha256 is checked first; existing tables are replaced only with `force`. Each
 * table's rows and checksum are compared with the manifest's afterwards.
 */
export async function restoreQuestdb(manifestPath: string, url: string, o: { force?: boolean } = {}): Promise<QuestdbRestoreResult> {
  const { manifest: m, file } = await checkedBackup<QuestdbManifest>(manifestPath, "questdb");
  const { http, prefix, location, pg } = parseQuestdbUrl(url);
  const exec = execOver(http);
  // The manifest is not checksummed: what of it reaches SQL is checked first.
  for (const t of m.tables ?? []) {
    const bad = unsafePart(t);
    if (bad) throw new BackupError(`${manifestPath}: ${bad} is not one this backup makes; nothing was restored`, "failed");
  }
  const targets = m.tables.map((t) => ({ t, target: `${prefix}${t.name}` }));
  let present: Set<string>;
  try {
    present = new Set((await exec(`SELECT table_name FROM tables()`)).map((r) => String(r[0])));
  } catch (e) {
    throw new BackupError(redact(`cannot reach the QuestDB store ${location}: ${errorText(e)}`), "store");
  }
  const existing = targets.filter((x) => present.has(x.target)).map((x) => x.target);
  if (existing.length && !o.force) throw new BackupError(`${location} has the tables ${existing.join(", ")} already: restore into another prefix, or add --force to replace them`, "exists");
  const sql = postgres(pg, { max: 1, fetch_types: false, onnotice: () => {} });
  const counts: Record<string, number> = {};
  try {
    for (const { t, target } of targets) {
      if (present.has(target)) await exec(`DROP TABLE IF EXISTS "${target}"`);
      await exec(ddlFor(t, target));
      await insertRows(sql, file, t, target);
    }
    for (const { t, target } of targets) {
      if (t.walEnabled) await walApplied(exec, target, Date.now() + 120_000);
      const sum = new RowSum();
      for await (const chunk of await exportCsv(http, target)) sum.update(chunk);
      counts[t.name] = sum.rows;
      if (sum.rows !== t.rows || sum.checksum !== t.checksum)
        throw new BackupError(`restored ${target}, but it differs from the manifest: ${sum.rows} rows, checksum ${sum.checksum} vs ${t.rows} rows, ${t.checksum}`, "mismatch");
    }
  } catch (e) {
    if (e instanceof BackupError) throw e;
    throw new BackupError(redact(`restoring into ${location} failed: ${errorText(e)}`), "failed");
  } finally {
    await sql.end({ timeout: 5 });
  }
  // Recorded in the restored store itself, after the check (so the check sees the backup's runs).
  await recordRun(url, { kind: "restore", source: "questdb", params: { manifest: manifestPath, createdAt: m.createdAt, sha256: m.sha256, from: m.store }, read: counts.bars ?? 0, error: null });
  return { manifest: m, target: location, counts };
}
