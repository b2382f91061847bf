// PostgreSQL increments (src/stores/backup.ts says what an increment is): in one REPEATABLE READ
// transaction (one snapshot while the service writes), the digest of every bar partition
// (series id, time bucket) computed in the database, then the changed partitions' rows and every
// other table whole through COPY's text format, streamed into a gzip'd file of lines, and the
// manifest's counts (a view of the store on that transaction). Applied in one transaction with
// COPY FROM STDIN. A full backup's pg_dump is given such a transaction's snapshot (fullSnapshot).
import postgres from "postgres";
import { INTERVALS, INTERVAL_MS } from "../../domain/bar.ts";
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
import type { Sql, Tx } from "./sql.ts";
import { parsePgUrl } from "./url.ts";
import { postgresStore } from "./index.ts";

/** Tables keyed by (series_id, ts), carried by partition; the others go whole. */
const PARTITIONED = ["bars", "bar_extras"];
const HEADER = { increment: 1, store: "postgres" };
const WIDTHS = INTERVALS.map((i) => partitionWidth(INTERVAL_MS[i]));

function connect(url: string): { sql: Sql; schema: string } {
  const { url: conn, schema } = parsePgUrl(url);
  return { sql: postgres(conn, { max: 1, onnotice: () => {}, connection: { search_path: schema, application_name: "ticksync-backup" }, types: { bigint: postgres.BigInt } }), schema };
}

/** Text output that is the same in every session: the digests compare rows as text. */
const pinSession = async (tx: Tx) => {
  await tx`SET LOCAL TimeZone = 'UTC'`;
  await tx`SET LOCAL DateStyle = 'ISO, YMD'`;
  await tx`SET LOCAL extra_float_digits = 1`;
};

async function digestTables(tx: Tx): Promise<PartitionDigests> {
  // Per partition: its bar count and the sum of its rows' 64-bit hashes (the extras' too, uncounted).
  const rows = await tx`
    WITH w AS (SELECT * FROM unnest(${INTERVALS as unknown as string[]}::text[], ${WIDTHS}::float8[]) AS w(interval, width)),
    r AS (
      SELECT b.series_id AS sid, floor(extract(epoch FROM b.ts) * 1000 / w.width)::bigint AS bucket, 1 AS n, hashtextextended(b::text, 0) AS h
      FROM bars b JOIN series s ON s.id = b.series_id JOIN w ON w.interval = s.interval
      UNION ALL
      SELECT e.series_id, floor(extract(epoch FROM e.ts) * 1000 / w.width)::bigint, 0, hashtextextended('x' || e::text, 0)
      FROM bar_extras e JOIN series s ON s.id = e.series_id JOIN w ON w.interval = s.interval)
    SELECT sid, bucket::text AS bucket, sum(n)::bigint::text AS n, sum(h::numeric)::text AS sum FROM r GROUP BY sid, bucket`;
  const acc = new DigestAccumulator();
  for (const r of rows) acc.add(`${r.sid}:${r.bucket}`, BigInt(r.sum), Number(r.n));
  return acc.result();
}

/**
 * What one COPY carries at most, its text being held while gzip catches up (copyOut): bars
 * (`rows`), pages of a whole table (`pages`, 8 MB) and journal batches (`batches`). Tests lower them.
 */
export const COPY_LIMITS = { rows: 100_000, pages: 1024, batches: 1000 };

/** A whole table's rows as COPY queries of at most COPY_LIMITS.pages pages each (ctid ranges). */
async function pagedQueries(tx: Tx, schema: string, table: string): Promise<string[]> {
  const [r] = await tx`SELECT (pg_relation_size(${`"${schema}"."${table}"`}::regclass) / current_setting('block_size')::int)::bigint::text AS pages`;
  const pages = Number(r!.pages);
  const out: string[] = [];
  for (let p = 0; p + COPY_LIMITS.pages < pages; p += COPY_LIMITS.pages) out.push(`SELECT * FROM "${table}" WHERE ctid >= '(${p},0)'::tid AND ctid < '(${p + COPY_LIMITS.pages},0)'::tid`);
  out.push(`SELECT * FROM "${table}" WHERE ctid >= '(${Math.floor(Math.max(0, pages - 1) / COPY_LIMITS.pages) * COPY_LIMITS.pages},0)'::tid`);
  return out;
}

/** The partitions a key names, as series ids and ts bounds, in groups of at most COPY_LIMITS.rows bars. */
async function partsOf(tx: Tx, keys: string[], now: PartitionDigests): Promise<{ sid: number[]; lo: string[]; hi: string[]; grp: number[] }> {
  const widths = new Map((await tx`SELECT id, interval FROM series`).map((r) => [Number(r.id), partitionWidth(INTERVAL_MS[r.interval as (typeof INTERVALS)[number]] ?? 86_400_000)]));
  const out = { sid: [] as number[], lo: [] as string[], hi: [] as string[], grp: [] as number[] };
  let grp = 0;
  let rows = 0;
  for (const k of keys) {
    const n = Number(now.get(k)?.split(":")[0] ?? 0);
    if (rows > 0 && rows + n > COPY_LIMITS.rows) (grp++, (rows = 0));
    rows += n;
    out.grp.push(grp);
    const [sid, bucket] = k.split(":").map(Number) as [number, number];
    // A series gone since the parent: its ids are not reused (serial), so any width covers it.
    const w = widths.get(sid) ?? 86_400_000;
    out.sid.push(sid);
    out.lo.push(new Date(bucket * w).toISOString());
    out.hi.push(new Date((bucket + 1) * w).toISOString());
  }
  return out;
}

async function columnsOf(tx: Tx, schema: string, table: string): Promise<string[]> {
  return (await tx`SELECT column_name FROM information_schema.columns WHERE table_schema = ${schema} AND table_name = ${table} ORDER BY ordinal_position`).map((r) => r.column_name as string);
}

/**
 * One COPY's text into the file. Read as it arrives ('data' events), never paused: postgres.js
 * leaves a connection deaf to the next statement when a COPY stream ends full (porsager/postgres#499,
 * as src/stores/postgres/rollups/daily.ts says; seen here too), and its read() after the end makes
 * sure the socket flows. What one COPY holds is bounded by its query instead (COPY_LIMITS).
 */
async function copyOut(tx: Tx, w: GzipLineWriter, query: string) {
  const stream = await tx.unsafe(`COPY (${query}) TO STDOUT`).readable();
  const sent: Promise<void>[] = [];
  await new Promise<void>((resolve, reject) => {
    stream.on("data", (chunk: Buffer) => sent.push(w.write(chunk)));
    stream.on("end", () => resolve());
    stream.on("error", reject);
  });
  (stream as unknown as { _read(size: number): void })._read(0);
  await Promise.all(sent);
}

async function copySection(tx: Tx, w: GzipLineWriter, schema: string, table: string, mode: SectionHeader["mode"], query: string | string[], extra: Partial<SectionHeader> = {}) {
  const columns = await columnsOf(tx, schema, table);
  await w.line(JSON.stringify({ table, columns, mode, ...extra } satisfies SectionHeader));
  for (const q of Array.isArray(query) ? query : [query]) await copyOut(tx, w, q);
  await w.line(SECTION_END);
}

async function writeIncrement(tx: Tx, schema: string, file: string, after: number, changed: string[], now: PartitionDigests) {
  const w = new GzipLineWriter(file);
  try {
    await w.line(JSON.stringify(HEADER));
    const parts = await partsOf(tx, changed, now);
    // Drop lines in chunks: the apply deletes each chunk's partitions in one statement.
    for (let i = 0; i < parts.sid.length; i += 1000) await w.line(JSON.stringify({ drop: { sid: parts.sid.slice(i, i + 1000), lo: parts.lo.slice(i, i + 1000), hi: parts.hi.slice(i, i + 1000) } }));
    await tx`CREATE TEMP TABLE backup_parts ON COMMIT DROP AS SELECT * FROM unnest(${parts.sid}::int[], ${parts.lo}::timestamptz[], ${parts.hi}::timestamptz[], ${parts.grp}::int[]) AS p(sid, lo, hi, grp)`;
    const groups = parts.grp.length ? parts.grp[parts.grp.length - 1]! + 1 : 0;
    for (const table of PARTITIONED) {
      const queries = Array.from({ length: groups }, (_, g) => `SELECT t.* FROM "${table}" t JOIN backup_parts p ON t.series_id = p.sid AND t.ts >= p.lo AND t.ts < p.hi WHERE p.grp = ${g}`);
      await copySection(tx, w, schema, table, "insert", queries);
    }
    const whole = (
      await tx`
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ${schema} AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> ALL(${[...PARTITIONED, "journal"]}) ORDER BY c.relname`
    ).map((r) => r.relname as string);
    for (const table of whole) await copySection(tx, w, schema, table, "replace", await pagedQueries(tx, schema, table));
    const seqs = await tx`SELECT sequencename, last_value::text AS v FROM pg_sequences WHERE schemaname = ${schema} ORDER BY sequencename`;
    await w.line(JSON.stringify({ sequences: seqs.map((s) => [s.sequencename, s.v]) }));
    const [j] = await tx`SELECT min(batch)::text AS first FROM journal`;
    const first = j?.first == null ? Number.MAX_SAFE_INTEGER : Number(j.first);
    // Batches after the parent's, in ranges of COPY_LIMITS.batches.
    const [l] = await tx`SELECT coalesce(max(batch), 0)::text AS last FROM journal`;
    const step = COPY_LIMITS.batches;
    const ranges: string[] = [];
    for (let b = Math.trunc(after); b < Number(l!.last); b += step) ranges.push(`SELECT * FROM journal WHERE batch > ${b} AND batch <= ${b + step} ORDER BY batch`);
    await copySection(tx, w, schema, "journal", "journal", ranges, { after, first });
    await w.line(JSON.stringify({ end: PARTITIONED.length + whole.length + 1 }));
  } finally {
    await w.close();
  }
}

async function snapshot<T>(url: string, parent: IncrementParent, describe: DescribeSnapshot<T>): Promise<SnapshotDigest & { changed: number; described: T }> {
  const { sql, schema } = connect(url);
  try {
    return await sql.begin("ISOLATION LEVEL REPEATABLE READ", async (tx) => {
      await pinSession(tx);
      const digests = await digestTables(tx);
      const [j] = await tx`SELECT coalesce(max(batch), 0)::text AS b FROM journal`;
      // In the same transaction: the manifest describes what the increment carries.
      const described = await describe(postgresStore(url, { sql: tx as unknown as Sql }));
      const keys = changedPartitions(parent.digests, digests);
      await writeIncrement(tx, schema, parent.file, parent.after, keys, digests);
      return { digests, lastBatch: Number(j!.b), changed: keys.length, described };
    });
  } finally {
    await sql.end();
  }
}

/**
 * A full backup's snapshot: in one REPEATABLE READ transaction, exported (pg_export_snapshot) to
 * `dumpWith` (pg_dump --snapshot) and kept open until it is done, the digests and what `describe`
 * reads: the manifest and the next increment's base are exactly what the dump holds.
 */
export async function fullSnapshot<T>(url: string, describe: DescribeSnapshot<T>, dumpWith: (snapshotId: string) => Promise<void>): Promise<{ described: T; digest: SnapshotDigest }> {
  const { sql } = connect(url);
  try {
    return await sql.begin("ISOLATION LEVEL REPEATABLE READ", async (tx) => {
      const [e] = await tx`SELECT pg_export_snapshot() AS id`;
      await pinSession(tx);
      // pg_dump works while the reads here run: both see the exported snapshot. Both are waited
      // for, whichever fails (the transaction stays open until pg_dump is done with it).
      const [dumped, read] = await Promise.allSettled([
        dumpWith(e!.id as string),
        (async () => {
          const digests = await digestTables(tx);
          const [j] = await tx`SELECT coalesce(max(batch), 0)::text AS b FROM journal`;
          const described = await describe(postgresStore(url, { sql: tx as unknown as Sql }));
          return { described, digest: { digests, lastBatch: Number(j!.b) } };
        })(),
      ]);
      if (dumped.status === "rejected") throw dumped.reason;
      if (read.status === "rejected") throw read.reason;
      return read.value;
    });
  } finally {
    await sql.end();
  }
}

/** The bars' year partitions a range needs, made where missing (TimescaleDB: none to make). */
async function ensureYears(tx: Tx, schema: string, lo: string[], hi: string[]) {
  const [p] = await tx`SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ${schema} AND c.relname = 'bars'`;
  if (p?.relkind !== "p" || lo.length === 0) return;
  const years = new Set<number>();
  for (let i = 0; i < lo.length; i++) for (let y = new Date(lo[i]!).getUTCFullYear(); y <= new Date(Date.parse(hi[i]!) - 1).getUTCFullYear(); y++) years.add(y);
  for (const y of years) await tx.unsafe(`CREATE TABLE IF NOT EXISTS bars_y${y} PARTITION OF bars FOR VALUES FROM ('${y}-01-01 00:00:00+00') TO ('${y + 1}-01-01 00:00:00+00')`);
}

/** COPY one section's lines into `table`, in chunks (the file's lines, streamed). */
async function copyIn(tx: Tx, header: SectionHeader, lines: AsyncGenerator<string>) {
  if (header.mode === "replace") await tx.unsafe(`DELETE FROM "${header.table}"`);
  else if (header.mode === "journal") await tx.unsafe(`DELETE FROM "${header.table}" WHERE batch < $1 OR batch > $2`, [String(header.first), String(header.after)]);
  const stream = await tx.unsafe(`COPY "${header.table}" (${header.columns.map((c) => `"${c}"`).join(", ")}) FROM STDIN`).writable();
  const failed = new Promise<never>((_, reject) => stream.on("error", reject));
  failed.catch(() => {});
  let chunk = "";
  for (;;) {
    const next = await lines.next();
    if (next.done) throw new BackupError(`the increment ends inside the rows of ${header.table}`, "chain");
    if (next.value === SECTION_END) break;
    chunk += next.value + "\n";
    if (chunk.length >= 1 << 16) {
      if (!stream.write(chunk)) await Promise.race([new Promise((r) => stream.once("drain", r)), failed]);
      chunk = "";
    }
  }
  if (chunk) stream.write(chunk);
  await Promise.race([new Promise<void>((r) => stream.end(() => r())), failed]);
}

async function apply(url: string, file: string): Promise<void> {
  const { sql, schema } = connect(url);
  try {
    await sql.begin(async (tx) => {
      await pinSession(tx);
      const lines = gzipLines(file);
      const first = await lines.next();
      if (first.done || first.value !== JSON.stringify(HEADER)) throw new BackupError(`${file} is not a PostgreSQL increment`, "chain");
      let sections = 0;
      let ended = false;
      for (;;) {
        const next = await lines.next();
        if (next.done) break;
        const m = JSON.parse(next.value) as { drop?: { sid: number[]; lo: string[]; hi: string[] }; sequences?: [string, string | null][]; end?: number } & Partial<SectionHeader>;
        if (m.drop) {
          const { sid, lo, hi } = m.drop;
          await ensureYears(tx, schema, lo, hi);
          for (const table of PARTITIONED)
            await tx.unsafe(`DELETE FROM "${table}" t USING unnest($1::int[], $2::timestamptz[], $3::timestamptz[]) AS p(sid, lo, hi) WHERE t.series_id = p.sid AND t.ts >= p.lo AND t.ts < p.hi`, [sid, lo, hi] as never[]);
        } else if (m.table && m.columns && m.mode) {
          sections++;
          await copyIn(tx, { table: m.table, columns: m.columns, mode: m.mode, after: m.after, first: m.first }, lines);
        } else if (m.sequences) {
          for (const [name, v] of m.sequences) await tx`SELECT setval(${`"${schema}"."${name}"`}::regclass, ${v ?? "1"}::bigint, ${v !== null})`;
        } else if (m.end !== undefined) ended = m.end === sections;
      }
      if (!ended) throw new BackupError(`${file} ends early (after ${sections} sections); nothing of it was applied`, "chain");
    });
  } finally {
    await sql.end();
  }
}

export const postgresIncremental: IncrementalBackup = { snapshot, apply };
