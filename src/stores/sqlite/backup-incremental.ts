// SQLite increments (src/stores/backup.ts says what an increment is): in one read transaction
// (WAL: a consistent snapshot while the service writes), the digest of every bar partition
// (source, symbol, interval, time bucket), then the changed partitions' rows and every other
// table whole, as gzip'd JSON lines, and the manifest's counts (a view of the store on that
// connection). Applied to a restored file in one write transaction.
import { Database } from "bun:sqlite";
import { INTERVAL_MS, type Interval } from "../../domain/bar.ts";
import {
  BackupError,
  changedPartitions,
  type DescribeSnapshot,
  DigestAccumulator,
  GzipLineWriter,
  gzipLines,
  partitionWidth,
  SECTION_END,
  type IncrementalBackup,
  type IncrementParent,
  type PartitionDigests,
  type SectionHeader,
  type SnapshotDigest,
} from "../backup.ts";
import { sqlitePath } from "./db.ts";
import { sqliteStore } from "./index.ts";

/** Tables keyed by (symbol, interval, ts, source), carried by partition; the others go whole. */
const PARTITIONED = ["bars", "bar_extras"];
const HEADER = { increment: 1, store: "sqlite" };

const widthOf = (interval: string) => partitionWidth(INTERVAL_MS[interval as Interval] ?? 86_400_000);
type Row = Record<string, unknown>;

/** A value as JSON: blobs (the journal's) as base64. */
const encode = (v: unknown) => (v instanceof Uint8Array ? { b64: Buffer.from(v).toString("base64") } : v);
const decode = (v: unknown) => (v !== null && typeof v === "object" && "b64" in v ? Buffer.from((v as { b64: string }).b64, "base64") : v);

function digestTables(db: Database): PartitionDigests {
  const acc = new DigestAccumulator();
  for (const table of PARTITIONED) {
    // Per row, not per hot path: a backup reads every bar once to find what changed.
    for (const r of db.query(`SELECT * FROM ${table}`).iterate() as IterableIterator<Row>) {
      const interval = r.interval as string;
      const bucket = Math.floor((r.ts as number) / widthOf(interval));
      acc.add(JSON.stringify([r.source, r.symbol, interval, bucket]), Bun.hash.wyhash(`${table}${JSON.stringify(Object.values(r))}`), table === "bars" ? 1 : 0);
    }
  }
  return acc.result();
}

/** The tables that go whole: every table but the partitioned ones and SQLite's own (its AUTOINCREMENT counters included). */
function wholeTables(db: Database): string[] {
  const names = (db.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
  return names.filter((n) => !PARTITIONED.includes(n) && n !== "journal" && (!n.startsWith("sqlite_") || n === "sqlite_sequence"));
}

async function writeSection(w: GzipLineWriter, db: Database, table: string, mode: SectionHeader["mode"], rows: Iterable<Iterable<Row>>, extra: Partial<SectionHeader> = {}) {
  const columns = (db.query(`PRAGMA table_info("${table}")`).all() as { name: string }[]).map((c) => c.name);
  await w.line(JSON.stringify({ table, columns, mode, ...extra } satisfies SectionHeader));
  for (const it of rows) for (const r of it) await w.line(JSON.stringify(columns.map((c) => encode(r[c]))));
  await w.line(SECTION_END);
}

async function writeIncrement(db: Database, file: string, after: number, changed: string[]) {
  const w = new GzipLineWriter(file);
  try {
    await w.line(JSON.stringify(HEADER));
    const parts = changed.map((k) => {
      const [source, symbol, interval, bucket] = JSON.parse(k) as [string, string, string, number];
      const lo = bucket * widthOf(interval);
      return [source, symbol, interval, lo, lo + widthOf(interval)] as const;
    });
    for (const p of parts) await w.line(JSON.stringify({ drop: p }));
    for (const table of PARTITIONED) {
      const q = db.query(`SELECT * FROM ${table} WHERE source = ? AND symbol = ? AND interval = ? AND ts >= ? AND ts < ?`);
      await writeSection(w, db, table, "insert", (function* () {
        for (const p of parts) yield q.iterate(...p) as IterableIterator<Row>;
      })());
    }
    const whole = wholeTables(db);
    for (const table of whole) await writeSection(w, db, table, "replace", [db.query(`SELECT * FROM "${table}"`).iterate() as IterableIterator<Row>]);
    const first = (db.query("SELECT min(batch) AS b FROM journal").get() as { b: number | null }).b;
    await writeSection(w, db, "journal", "journal", [db.query("SELECT * FROM journal WHERE batch > ? ORDER BY batch").iterate(after) as IterableIterator<Row>], { after, first: first ?? Number.MAX_SAFE_INTEGER });
    await w.line(JSON.stringify({ end: PARTITIONED.length + whole.length + 1 }));
  } finally {
    await w.close();
  }
}

/** The digests of a snapshot and its journal position, read within the caller's transaction. */
export function snapshotDigest(db: Database): SnapshotDigest {
  const digests = digestTables(db);
  const lastBatch = (db.query("SELECT coalesce(max(batch), 0) AS b FROM journal").get() as { b: number }).b;
  return { digests, lastBatch };
}

async function snapshot<T>(url: string, parent: IncrementParent, describe: DescribeSnapshot<T>): Promise<SnapshotDigest & { changed: number; described: T }> {
  const db = new Database(sqlitePath(url), { readonly: true });
  try {
    db.run("BEGIN");
    const { digests, lastBatch } = snapshotDigest(db);
    // Read in the same transaction: the manifest describes what the increment carries.
    const described = await describe(sqliteStore(url, db));
    const keys = changedPartitions(parent.digests, digests);
    await writeIncrement(db, parent.file, parent.after, keys);
    db.run("COMMIT");
    return { digests, lastBatch, changed: keys.length, described };
  } finally {
    db.close();
  }
}

async function apply(url: string, file: string): Promise<void> {
  const db = new Database(sqlitePath(url));
  let sections = 0;
  let ended = false;
  try {
    db.run("BEGIN IMMEDIATE");
    const lines = gzipLines(file);
    const first = await lines.next();
    if (first.done || first.value !== JSON.stringify(HEADER)) throw new BackupError(`${file} is not a SQLite increment`, "chain");
    const dropBars = db.query("DELETE FROM bars WHERE source = ? AND symbol = ? AND interval = ? AND ts >= ? AND ts < ?");
    const dropExtras = db.query("DELETE FROM bar_extras WHERE source = ? AND symbol = ? AND interval = ? AND ts >= ? AND ts < ?");
    let insert: ReturnType<Database["query"]> | null = null;
    for await (const line of lines) {
      if (insert) {
        if (line === SECTION_END) insert = null;
        else insert.run(...(JSON.parse(line) as unknown[]).map(decode) as never[]);
        continue;
      }
      const m = JSON.parse(line) as { drop?: [string, string, string, number, number]; end?: number } & Partial<SectionHeader>;
      if (m.drop) (dropBars.run(...m.drop), dropExtras.run(...m.drop));
      else if (m.table && m.columns) {
        sections++;
        if (m.mode === "replace") db.run(`DELETE FROM "${m.table}"`);
        else if (m.mode === "journal") db.query(`DELETE FROM "${m.table}" WHERE batch < ? OR batch > ?`).run(m.first!, m.after!);
        insert = db.query(`INSERT INTO "${m.table}" (${m.columns.map((c) => `"${c}"`).join(", ")}) VALUES (${m.columns.map(() => "?").join(", ")})`);
      } else if (m.end !== undefined) ended = m.end === sections;
    }
    if (!ended) throw new BackupError(`${file} ends early (after ${sections} sections); nothing of it was applied`, "chain");
    db.run("COMMIT");
  } catch (e) {
    if (db.inTransaction) db.run("ROLLBACK");
    throw e;
  } finally {
    db.close();
  }
}

export const sqliteIncremental: IncrementalBackup = { snapshot, apply };
