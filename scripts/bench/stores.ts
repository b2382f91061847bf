// Stores bench: a stooq-bulk CSV → the Postgres and QuestDB stores through the real CLI, each
// against the fastest raw load of the same rows measured in the same run:
//   Postgres: `psql \copy` of a COPY text file into an unindexed table, and into a table with
//             the store's key (the store's own bars table, made by its migration: primary key
//             (series_id, ts), yearly partitions); ticksync's rate is printed against both;
//   QuestDB:  the ILP lines ticksync writes, less its row_hash field (a cost of ticksync's own
//             re-load check: the baseline does not pay it), POSTed to /write into a table made
//             by the store's own migration, until its WAL is applied: 100,000 lines a request (the
//             baseline issue #17 measured; QuestDB's own clients flush every 75,000 rows by
//             default), and as many a request as ticksync's writes hold (one transaction each,
//             src/stores/questdb/ilp.ts); ticksync's rate is printed against both.
// The raw files are prepared beforehand and not timed, so the baselines measure only the load.
// A second run at a quarter of the rows shows whether ticksync's peak RSS grows with the file; the
// load-rate target (issue #17 item 7) holds at both sizes. After each load the same file is loaded
// again into the same store (`--full`): every bar unchanged, printed as re-load ÷ first load (item 5);
// and the quarter's rows interleaved by day (a bulk export's order) are loaded and re-loaded too.
// To use servers already running for another checkout: TICKSYNC_PG_DIR / TICKSYNC_QDB_DIR.
// The servers are the test servers of scripts/services (started here when they are not up).
//   bun scripts/bench/stores.ts [postgres|questdb]   (one store only when named;
//                                     BENCH_STORE_ROWS=200000 for a quick run;
//                                     BENCH_QDB_BUDGET_S: QuestDB's time limit for the full size)
import postgres from "postgres";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { writeBulkCsv, writeInterleavedCsv } from "./ingest.ts";
import { ILP_LINES_PER_REQUEST as QDB_LINES_PER_REQUEST, questdbStore } from "../../src/stores/questdb/index.ts";
import { postgresStore } from "../../src/stores/postgres/index.ts";
import { walApplied } from "./lib/questdb-wal.ts";

/** The issue's size. */
const ROWS = 5_000_000;
/** Target from issue #17 item 7: ticksync loads at ≥ 80% of the raw load rate, at both sizes. */
const RATE_TARGET = 0.8;
/** Target from issue #17 item 5: re-loading the same file (every bar unchanged) takes no longer than the first load. */
const RELOAD_TARGET = 1.0;
/** Flat: four times the rows cost at most 15% more peak RSS. */
const RSS_LIMIT = 1.15;
/**
 * QuestDB through ticksync is tried at the full size first; when it has not finished after this
 * many seconds it is stopped (SIGTERM: it ends the run after the current batch) and QuestDB is
 * reported at a quarter and a sixteenth of the rows instead.
 */
const QDB_BUDGET_S = 300;
/** Lines per /write request of the raw ILP baseline (issue #17's), and of its second run: ticksync's own writes. */
const ILP_LINES_PER_REQUEST = 100_000;
const ILP_LINES_PER_WRITE = QDB_LINES_PER_REQUEST;
const SOURCE = "bench";
/** ticksync's first run in a fresh schema or prefix has id 1; the baselines write the same. */
const RUN_ID = 1;

const ROOT = join(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "main.ts");
const SERVICES = join(ROOT, "scripts", "services");
const PG_COLS = "symbol, interval, ts, source, open, high, low, close, volume, adj_close, turnover, trades, run_id";
/** The store's bars columns a keyed COPY fills (updated_at takes its default). */
const PG_KEYED_COLS = "series_id, ts, open, high, low, close, volume, adj_close, turnover, trades, run_id";

const MiB = (bytes: number) => bytes / (1 << 20);
const int = (x: number) => Math.round(x).toLocaleString("en-US");
const rate = (rows: number, ms: number) => rows / (ms / 1000);
const secs = (ms: number) => (ms / 1000).toFixed(2);
/** As src/stores/questdb/index.ts writes an ILP double. */
const ilpNum = (x: number) => (Number.isInteger(x) ? `${x}.0` : String(x));

// --- services -------------------------------------------------------------------------------

function service(script: "postgres" | "questdb", cmd: string): string {
  const r = Bun.spawnSync(["bash", join(SERVICES, `${script}.sh`), cmd], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`scripts/services/${script}.sh ${cmd} exited ${r.exitCode}: ${r.stderr.toString().slice(-2000)}`);
  return r.stdout.toString().trim();
}

function psqlBin(): string {
  const onPath = Bun.which("psql");
  if (onPath) return onPath;
  const dirs = readdirSync("/usr/lib/postgresql").sort().reverse();
  for (const d of dirs) if (Bun.file(`/usr/lib/postgresql/${d}/bin/psql`).size > 0) return `/usr/lib/postgresql/${d}/bin/psql`;
  throw new Error("no psql found (scripts/services/postgres.sh installs it)");
}

// --- children -------------------------------------------------------------------------------

type Measured = { ms: number; maxRss: number; stdout: string; stderr: string; exitCode: number; timedOut: boolean };

/**
 * GNU time, when installed, reports a child's own peak RSS. Bun's resourceUsage().maxRSS cannot:
 * Linux carries the spawning process's high-water mark into the child at exec, so a child of a
 * bench process that once held 300 MiB reports ≥ 300 MiB even for `true`.
 */
const GNU_TIME = Bun.file("/usr/bin/time").size > 0 ? "/usr/bin/time" : null;
let rssFiles = 0;

/** Run a child to completion: its wall time and peak RSS (bytes). After timeoutMs it gets SIGTERM. */
async function spawnMeasured(cmd: string[], timeoutMs = Infinity): Promise<Measured> {
  // No TICKSYNC_* overrides from the caller's shell: the bench measures the defaults.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TICKSYNC_")));
  const rssFile = join(tmpdir(), `ticksync-bench-rss-${process.pid}-${rssFiles++}`);
  const started = performance.now();
  const proc = Bun.spawn(GNU_TIME ? [GNU_TIME, "-f", "%M", "-o", rssFile, ...cmd] : cmd, { cwd: ROOT, env, stdout: "pipe", stderr: "pipe" });
  // The command itself, not GNU time (which would die of SIGTERM and leave it running).
  const signal = (sig: "SIGTERM" | "SIGKILL") => {
    if (!GNU_TIME) return proc.kill(sig);
    const kids = readFileSafe(`/proc/${proc.pid}/task/${proc.pid}/children`).trim().split(/\s+/).filter(Boolean);
    for (const k of kids) process.kill(Number(k), sig);
  };
  let timedOut = false;
  let kill: Timer | undefined;
  const term = Number.isFinite(timeoutMs)
    ? setTimeout(() => {
        timedOut = true;
        signal("SIGTERM");
        kill = setTimeout(() => signal("SIGKILL"), 60_000);
      }, timeoutMs)
    : undefined;
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const ms = performance.now() - started;
  clearTimeout(term);
  clearTimeout(kill);
  let maxRss: number;
  if (GNU_TIME) {
    // KiB on the last line (a line before it says so when the command died of a signal).
    const kib = Number(readFileSafe(rssFile).trim().split("\n").pop());
    rmSync(rssFile, { force: true });
    if (!Number.isFinite(kib) || kib <= 0) throw new Error(`GNU time reported no peak RSS for ${cmd.join(" ")}`);
    maxRss = kib * 1024;
  } else {
    const usage = proc.resourceUsage();
    if (!usage) throw new Error(`no resource usage for ${cmd.join(" ")}`);
    maxRss = usage.maxRSS;
  }
  return { ms, maxRss, stdout, stderr, exitCode, timedOut };
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

type TicksyncResult = { ms: number; maxRss: number; runMs: number; read: number; inserted: number; updated: number; quarantined: number; timedOut: boolean };

/** `full`: read the file again whatever the checkpoint says (the re-load: otherwise the checkpoint skips it). */
async function runTicksync(csv: string, store: string, timeoutMs = Infinity, full = false): Promise<TicksyncResult> {
  const cmd = [process.execPath, MAIN, "ingest", "--file", csv, "--layout", "stooq-bulk", "--market", "WSE", "--name", SOURCE, "--store", store, "--json", ...(full ? ["--full"] : [])];
  const r = await spawnMeasured(cmd, timeoutMs);
  if (r.timedOut) return { ms: r.ms, maxRss: r.maxRss, runMs: r.ms, read: 0, inserted: 0, updated: 0, quarantined: 0, timedOut: true };
  if (r.exitCode !== 0) throw new Error(`ticksync ingest exited ${r.exitCode}\n${r.stderr.slice(-3000)}${r.stdout.slice(-2000)}`);
  const [summary] = JSON.parse(r.stdout) as { durationMs: number; read: number; inserted: number; updated: number; quarantined: number }[];
  if (!summary) throw new Error(`ticksync ingest printed no summary: ${r.stdout}`);
  return { ms: r.ms, maxRss: r.maxRss, runMs: summary.durationMs, read: summary.read, inserted: summary.inserted, updated: summary.updated, quarantined: summary.quarantined, timedOut: false };
}

// --- the raw files --------------------------------------------------------------------------

type Prepared = { rows: number; csv: string; copy: string; keyed: string; years: number[]; ilp: string; ilpTable: string; ilpBodies: [number, number][]; ilpWrites: [number, number][] };

/**
 * The CSV and, from it, the same rows as ticksync stores them: a COPY text file (the values
 * ticksync's COPY into its staging table carries) and ILP lines (the lines ticksync POSTs), with
 * the byte ranges of each request's body. Symbols get the market suffix, ts is the session's
 * midnight UTC, as the stooq-bulk reader makes them. The keyed COPY file has the store's bars
 * columns: a series id per symbol instead of the text key.
 */
async function prepare(dir: string, rows: number, ilpTable: string): Promise<Prepared> {
  const csv = join(dir, `bars-${rows}.csv`);
  const copy = join(dir, `bars-${rows}.copy`);
  const ilp = join(dir, `bars-${rows}.ilp`);
  const keyed = join(dir, `bars-${rows}.keyed.copy`);
  await writeBulkCsv(csv, rows);
  const copyOut = Bun.file(copy).writer();
  const keyedOut = Bun.file(keyed).writer();
  const seriesIds = new Map<string, number>();
  const years = new Set<number>();
  const ilpOut = Bun.file(ilp).writer();
  const updatedAt = Date.now() * 1000;
  const ilpBodies: [number, number][] = [];
  const ilpWrites: [number, number][] = [];
  let writeStart = 0;
  let ilpBytes = 0;
  let bodyStart = 0;
  let n = 0;
  let copyChunk = "";
  let keyedChunk = "";
  let ilpChunk = "";
  const flush = () => {
    copyOut.write(copyChunk);
    keyedOut.write(keyedChunk);
    ilpOut.write(ilpChunk);
    ilpBytes += ilpChunk.length; // ASCII only
    copyChunk = keyedChunk = ilpChunk = "";
  };
  const line = (l: string) => {
    if (l === "" || l.startsWith("<TICKER>")) return;
    const c = l.split(",");
    const d = c[2]!;
    const symbol = `${c[0]}.WA`;
    const ts = Date.UTC(+d.slice(0, 4), +d.slice(4, 6) - 1, +d.slice(6, 8));
    const [open, high, low, close, volume] = [+c[4]!, +c[5]!, +c[6]!, +c[7]!, +c[8]!];
    const iso = new Date(ts).toISOString();
    copyChunk += `${symbol}\t1d\t${iso}\t${SOURCE}\t${open}\t${high}\t${low}\t${close}\t${volume}\t\\N\t\\N\t\\N\t${RUN_ID}\n`;
    let sid = seriesIds.get(symbol);
    if (sid === undefined) seriesIds.set(symbol, (sid = seriesIds.size + 1));
    years.add(Number(d.slice(0, 4)));
    keyedChunk += `${sid}\t${iso}\t${open}\t${high}\t${low}\t${close}\t${volume}\t\\N\t\\N\t\\N\t${RUN_ID}\n`;
    ilpChunk += `${ilpTable},symbol=${symbol},interval=1d,source=${SOURCE} open=${ilpNum(open)},high=${ilpNum(high)},low=${ilpNum(low)},close=${ilpNum(close)},volume=${ilpNum(volume)},run_id=${RUN_ID}i,updated_at=${updatedAt}t ${ts}\n`;
    if (++n % ILP_LINES_PER_REQUEST === 0) {
      flush();
      ilpBodies.push([bodyStart, ilpBytes]);
      bodyStart = ilpBytes;
    }
    if (n % ILP_LINES_PER_WRITE === 0) {
      flush();
      ilpWrites.push([writeStart, ilpBytes]);
      writeStart = ilpBytes;
    }
  };
  let rest = "";
  const decoder = new TextDecoder();
  for await (const chunk of Bun.file(csv).stream()) {
    const text = rest + decoder.decode(chunk, { stream: true });
    const lines = text.split("\n");
    rest = lines.pop()!;
    for (const l of lines) line(l);
  }
  line(rest + decoder.decode());
  flush();
  if (ilpBytes > bodyStart) ilpBodies.push([bodyStart, ilpBytes]);
  if (ilpBytes > writeStart) ilpWrites.push([writeStart, ilpBytes]);
  await copyOut.end();
  await keyedOut.end();
  await ilpOut.end();
  if (n !== rows) throw new Error(`prepared ${n} rows from ${csv}, expected ${rows}`);
  return { rows, csv, copy, keyed, years: [...years].sort(), ilp, ilpTable, ilpBodies, ilpWrites };
}

function unprepare(p: Prepared) {
  for (const f of [p.csv, p.copy, p.keyed, p.ilp]) rmSync(f, { force: true });
}

// --- results --------------------------------------------------------------------------------

type Row = {
  rows: number;
  ticksync: TicksyncResult;
  baselineMs: number;
  baselineRss?: number;
  /** The second baseline: Postgres' COPY into the store's keyed bars table, QuestDB's raw ILP in ticksync's transactions. */
  alsoMs?: number;
  /** The same file loaded again into the same store (every bar unchanged). */
  reload?: TicksyncResult;
};

/** The load-rate target holds at every size (the issue's full size and a quarter of it). */
function printTable(title: string, results: Row[], baselineName: string, alsoName: string): void {
  console.log(title);
  const also = results.some((r) => r.alsoMs !== undefined);
  const head = ["rows", "ticksync s", "rows/s", "peak RSS MiB", `${baselineName} s`, "rows/s", "ratio", `target ≥ ${RATE_TARGET}`, ...(also ? [`${alsoName} s`, "rows/s", "ratio"] : [])];
  const w = [11, 11, 10, 13, Math.max(11, baselineName.length + 2), 10, 6, 13, Math.max(13, alsoName.length + 2), 10, 6];
  const line = (cells: string[]) => console.log(cells.map((c, i) => c.padStart(w[i]!)).join(" "));
  line(head);
  for (const r of results) {
    const t = rate(r.rows, r.ticksync.ms);
    const b = rate(r.rows, r.baselineMs);
    const verdict = t / b >= RATE_TARGET ? "target met" : "target missed";
    const k = r.alsoMs === undefined ? [] : [secs(r.alsoMs), int(rate(r.rows, r.alsoMs)), (t / rate(r.rows, r.alsoMs)).toFixed(2)];
    line([int(r.rows), secs(r.ticksync.ms), int(t), MiB(r.ticksync.maxRss).toFixed(1), secs(r.baselineMs), int(b), (t / b).toFixed(2), verdict, ...k]);
  }
}

/** The issue's two targets, one line per store and size: load rate / raw rate, and re-load time / first-load time. */
function printRatios(store: string, results: Row[], baselineName: string): void {
  for (const r of results) {
    const ratio = rate(r.rows, r.ticksync.ms) / rate(r.rows, r.baselineMs);
    let line = `RATIO ${store} ${int(r.rows)} rows: load ${ratio.toFixed(2)} of ${baselineName} (target ≥ ${RATE_TARGET}: ${ratio >= RATE_TARGET ? "met" : "missed"})`;
    if (r.reload && !r.reload.timedOut) {
      const x = r.reload.ms / r.ticksync.ms;
      line += `; re-load ${secs(r.reload.ms)}s / first load ${secs(r.ticksync.ms)}s = ${x.toFixed(2)} (target ≤ ${RELOAD_TARGET.toFixed(1)}: ${x <= RELOAD_TARGET ? "met" : "missed"})`;
    }
    console.log(line);
  }
}

/** The re-load of an unchanged file stores nothing new: every bar counted unchanged. */
function reloadProblems(r: TicksyncResult, rows: number): string[] {
  if (r.timedOut) return [];
  if (r.read !== rows) return [`the re-load read ${r.read} rows, expected ${rows}`];
  return r.inserted !== 0 || r.updated !== 0 || r.quarantined !== 0 ? [`the re-load reported inserted ${r.inserted}, updated ${r.updated}, quarantined ${r.quarantined} (expected none)`] : [];
}

function printRss(store: string, small: Row, large: Row): void {
  const x = large.ticksync.maxRss / small.ticksync.maxRss;
  console.log(
    `RSS   ${store}: ticksync peak ${MiB(large.ticksync.maxRss).toFixed(1)} MiB at ${int(large.rows)} rows vs ${MiB(small.ticksync.maxRss).toFixed(1)} MiB at ${int(small.rows)}: ` +
      `${x.toFixed(2)}× for ${(large.rows / small.rows).toFixed(0)}× the rows (flat: ≤ ${RSS_LIMIT}×): ${x <= RSS_LIMIT ? "target met" : "target missed"}`,
  );
}

/** One line per measurement as it is made: a long run shows where it is. */
function progress(store: string, rows: number, baseline: string, baselineMs: number, t: TicksyncResult, note?: string, other?: string) {
  console.log(`  ${store} ${int(rows)} rows: ${baseline} ${secs(baselineMs)}s, ${other ? `${other}, ` : ""}ticksync ${note ?? `${secs(t.ms)}s`}`);
}

// --- Postgres -------------------------------------------------------------------------------

type PgPrint = { n: number; close: string; minTs: string; maxTs: string };

async function pgFingerprint(sql: postgres.Sql, table: string): Promise<PgPrint> {
  const [r] = await sql.unsafe(`SELECT count(*)::bigint AS n, sum(close::numeric)::text AS close, min(ts)::text AS "minTs", max(ts)::text AS "maxTs" FROM ${table}`);
  return { n: Number(r!.n), close: r!.close, minTs: r!.minTs, maxTs: r!.maxTs };
}

async function pgJournalRows(sql: postgres.Sql, schema: string): Promise<number> {
  const [r] = await sql.unsafe(`SELECT count(*)::bigint AS n FROM "${schema}".journal`);
  return Number(r!.n);
}

/** A checkpoint before each load, so neither pays for the other's dirty pages. */
async function pgCheckpoint(sql: postgres.Sql) {
  try {
    await sql`CHECKPOINT`;
  } catch {
    // not allowed for this role: the loads then share the server's own checkpoints
  }
}

async function benchPostgres(sql: postgres.Sql, pgUrl: string, psql: string, tag: string, p: Prepared): Promise<{ row: Row; problems: string[] }> {
  const copySchema = `${tag}_${p.rows}_copy`;
  const keyedSchema = `${tag}_${p.rows}_keyed`;
  const tsSchema = `${tag}_${p.rows}`;
  const problems: string[] = [];
  await sql.unsafe(`CREATE SCHEMA "${copySchema}"`);
  await sql.unsafe(`CREATE TABLE "${copySchema}".bars (
      symbol text, interval text, ts timestamptz, source text, open float8, high float8, low float8, close float8,
      volume float8, adj_close float8, turnover float8, trades bigint, run_id bigint)`);
  await pgCheckpoint(sql);
  const base = await spawnMeasured([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pgUrl, "-c", `\\copy "${copySchema}".bars (${PG_COLS}) FROM '${p.copy}'`]);
  if (base.exitCode !== 0) throw new Error(`psql \\copy exited ${base.exitCode}: ${base.stderr}`);

  // The keyed baseline: the store's own bars table (its migration, in another schema) with the
  // partitions the rows need made beforehand (not timed), then one COPY of the prepared rows.
  const sep = pgUrl.includes("?") ? "&" : "?";
  const maker = postgresStore(`${pgUrl}${sep}schema=${keyedSchema}`);
  await maker.migrate();
  await maker.close();
  for (const y of p.years) await sql.unsafe(`CREATE TABLE "${keyedSchema}".bars_y${y} PARTITION OF "${keyedSchema}".bars FOR VALUES FROM ('${y}-01-01 00:00:00+00') TO ('${y + 1}-01-01 00:00:00+00')`);
  await pgCheckpoint(sql);
  const keyed = await spawnMeasured([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pgUrl, "-c", `\\copy "${keyedSchema}".bars (${PG_KEYED_COLS}) FROM '${p.keyed}'`]);
  if (keyed.exitCode !== 0) throw new Error(`psql \\copy into the keyed table exited ${keyed.exitCode}: ${keyed.stderr}`);

  await pgCheckpoint(sql);
  const ticksync = await runTicksync(p.csv, `${pgUrl}${sep}schema=${tsSchema}`);
  const journalBefore = await pgJournalRows(sql, tsSchema);
  await pgCheckpoint(sql);
  const reload = await runTicksync(p.csv, `${pgUrl}${sep}schema=${tsSchema}`, Infinity, true);
  problems.push(...reloadProblems(reload, p.rows));
  const journalAfter = await pgJournalRows(sql, tsSchema);
  if (journalAfter !== journalBefore) problems.push(`the re-load wrote ${journalAfter - journalBefore} journal rows (expected none)`);

  const want = await pgFingerprint(sql, `"${copySchema}".bars`);
  const got = await pgFingerprint(sql, `"${tsSchema}".bars`);
  const keyedGot = await pgFingerprint(sql, `"${keyedSchema}".bars`);
  if (want.n !== p.rows) problems.push(`psql \\copy stored ${want.n} of ${p.rows} rows`);
  if (JSON.stringify(keyedGot) !== JSON.stringify(want)) problems.push(`tables differ: keyed COPY ${JSON.stringify(keyedGot)} vs psql \\copy ${JSON.stringify(want)}`);
  if (got.n !== p.rows) problems.push(`ticksync's bars hold ${got.n} rows, expected ${p.rows}`);
  if (ticksync.inserted !== p.rows || ticksync.quarantined !== 0) problems.push(`ticksync reported inserted ${ticksync.inserted}, quarantined ${ticksync.quarantined}`);
  if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`tables differ: ticksync ${JSON.stringify(got)} vs psql \\copy ${JSON.stringify(want)}`);
  for (const s of [copySchema, keyedSchema, tsSchema]) await sql.unsafe(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  progress("postgres", p.rows, "\\copy", base.ms, ticksync, `${secs(ticksync.ms)}s, re-load ${secs(reload.ms)}s`, `keyed COPY ${secs(keyed.ms)}s`);
  return { row: { rows: p.rows, ticksync, baselineMs: base.ms, baselineRss: base.maxRss, alsoMs: keyed.ms, reload }, problems };
}

// --- QuestDB --------------------------------------------------------------------------------

type QdbPrint = { n: number; close: number; minTs: number | null; maxTs: number | null };

async function qdbFingerprint(sql: postgres.Sql, table: string): Promise<QdbPrint> {
  const [r] = await sql.unsafe(`SELECT count() AS n, sum(close) AS close, min(ts) AS "minTs", max(ts) AS "maxTs" FROM "${table}"`);
  const t = (x: unknown) => (x == null ? null : new Date(String(x)).getTime());
  return { n: Number(r!.n), close: Number(r!.close ?? 0), minTs: t(r!.minTs), maxTs: t(r!.maxTs) };
}

async function qdbDropPrefix(sql: postgres.Sql, prefix: string) {
  for (const r of await sql`SELECT table_name FROM tables()`) if (String(r.table_name).startsWith(prefix)) await sql.unsafe(`DROP TABLE IF EXISTS "${r.table_name}"`);
}

/** ticksync's store URL for QuestDB, from the PG-wire and HTTP URLs the service script prints. */
function questdbUrl(pgWire: string, http: string, prefix: string): string {
  const u = new URL(pgWire);
  return `questdb://${u.username}:${u.password}@${u.host}${u.pathname}?http=${http}&prefix=${prefix}`;
}

type QdbOutcome = { row: Row; problems: string[]; stored: number };

async function benchQuestdb(sql: postgres.Sql, pgWire: string, http: string, tag: string, p: Prepared, timeoutMs = Infinity): Promise<QdbOutcome> {
  const basePrefix = p.ilpTable.slice(0, -"bars".length);
  const tsPrefix = `${tag}_${p.rows}_`;
  const problems: string[] = [];
  // The baseline's table is made by the store's own migration: the same DDL, another name.
  const maker = questdbStore(questdbUrl(pgWire, http, basePrefix));
  await maker.migrate();
  await maker.close();

  const raw = async (bodies: [number, number][]) => {
    const started = performance.now();
    for (const [a, b] of bodies) {
      const res = await fetch(`${http}/write?precision=ms`, { method: "POST", body: Bun.file(p.ilp).slice(a, b) });
      if (res.status !== 204 && res.status !== 200) throw new Error(`QuestDB /write answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    }
    await walApplied(sql, p.ilpTable);
    return performance.now() - started;
  };
  // The lines name their table: the second raw load goes into it again, emptied.
  const alsoMs = await raw(p.ilpWrites);
  await sql.unsafe(`TRUNCATE TABLE "${p.ilpTable}"`);
  const baselineMs = await raw(p.ilpBodies);

  const ticksync = await runTicksync(p.csv, questdbUrl(pgWire, http, tsPrefix), timeoutMs);
  const tsTable = `${tsPrefix}bars`;
  let stored = 0;
  let reload: TicksyncResult | undefined;
  if ((await sql`SELECT table_name FROM tables() WHERE table_name = ${tsTable}`).length > 0) {
    await walApplied(sql, tsTable);
    if (!ticksync.timedOut) {
      reload = await runTicksync(p.csv, questdbUrl(pgWire, http, tsPrefix), timeoutMs, true);
      problems.push(...reloadProblems(reload, p.rows));
      await walApplied(sql, tsTable);
    }
    const got = await qdbFingerprint(sql, tsTable);
    stored = got.n;
    if (!ticksync.timedOut) {
      const want = await qdbFingerprint(sql, p.ilpTable);
      if (want.n !== p.rows) problems.push(`raw ILP stored ${want.n} of ${p.rows} rows`);
      if (got.n !== want.n) problems.push(`ticksync's bars hold ${got.n} rows, raw ILP ${want.n}`);
      if (ticksync.inserted !== p.rows || ticksync.quarantined !== 0) problems.push(`ticksync reported inserted ${ticksync.inserted}, quarantined ${ticksync.quarantined}`);
      // Sums of the same doubles in another order may differ in the last bits.
      const close = Math.abs(got.close - want.close) <= 1e-9 * Math.abs(want.close);
      if (got.minTs !== want.minTs || got.maxTs !== want.maxTs || !close) problems.push(`tables differ: ticksync ${JSON.stringify(got)} vs raw ILP ${JSON.stringify(want)}`);
    }
  } else if (!ticksync.timedOut) problems.push(`ticksync made no table ${tsTable}`);
  await qdbDropPrefix(sql, basePrefix);
  await qdbDropPrefix(sql, tsPrefix);
  progress("questdb", p.rows, "raw ILP", baselineMs, ticksync, ticksync.timedOut ? `stopped after ${secs(ticksync.ms)}s with ${int(stored)} rows stored` : `${secs(ticksync.ms)}s, re-load ${reload ? secs(reload.ms) : "-"}s`, `raw ILP ${int(ILP_LINES_PER_WRITE)} a request ${secs(alsoMs)}s`);
  return { row: { rows: p.rows, ticksync, baselineMs, alsoMs, reload }, problems, stored };
}

// --- the bench ------------------------------------------------------------------------------

/**
 * The same rows interleaved by day (a bulk export's order: every symbol's bar of a day, then the
 * next day), loaded into a fresh store and loaded again unchanged: item 5 on the other order,
 * where every batch holds hundreds of series over a few days.
 */
async function byDay(store: string, p: Prepared, url: string): Promise<{ line: string; problems: string[] }> {
  const csv = join(p.csv, "..", `by-day-${p.rows}.csv`);
  await writeInterleavedCsv(p.csv, csv);
  try {
    const first = await runTicksync(csv, url);
    const again = await runTicksync(csv, url, Infinity, true);
    const problems = [...reloadProblems(again, p.rows), ...(first.inserted !== p.rows ? [`the load by day inserted ${first.inserted} of ${p.rows} rows`] : [])];
    const x = again.ms / first.ms;
    const line = `RATIO ${store} ${int(p.rows)} rows by day: re-load ${secs(again.ms)}s / first load ${secs(first.ms)}s = ${x.toFixed(2)} (target ≤ ${RELOAD_TARGET.toFixed(1)}: ${x <= RELOAD_TARGET ? "met" : "missed"}); peak RSS ${MiB(first.maxRss).toFixed(1)} MiB`;
    return { line, problems };
  } finally {
    rmSync(csv, { force: true });
  }
}

export async function run(only?: string): Promise<boolean> {
  if (only !== undefined && only !== "postgres" && only !== "questdb") throw new Error(`unknown store ${JSON.stringify(only)}: postgres or questdb`);
  const bench = (store: "postgres" | "questdb") => only === undefined || only === store;
  const full = Number(process.env.BENCH_STORE_ROWS ?? ROWS);
  if (!Number.isInteger(full) || full < 16) throw new Error(`BENCH_STORE_ROWS must be a whole number ≥ 16, got ${process.env.BENCH_STORE_ROWS}`);
  const budgetS = Number(process.env.BENCH_QDB_BUDGET_S ?? QDB_BUDGET_S);
  if (!(budgetS > 0)) throw new Error(`BENCH_QDB_BUDGET_S must be a number of seconds > 0, got ${process.env.BENCH_QDB_BUDGET_S}`);
  const quarter = Math.floor(full / 4);
  // A fresh name per run: schemas bench_<tag>_<rows>[_copy], QuestDB tables bench_<tag>_<rows>_*.
  const tag = `bench_${Date.now().toString(36)}`;
  const dir = mkdtempSync(join(tmpdir(), "ticksync-bench-stores-"));
  const problems: string[] = [];
  const fail = (store: string, rows: number, list: string[]) => {
    for (const p of list) console.error(`FAIL ${store} ${int(rows)} rows: ${p}`);
    problems.push(...list);
  };

  // Only the servers of the stores benched (a URL that is never connected to costs nothing).
  const pgUrl = service("postgres", bench("postgres") ? "start" : "url");
  const qdbPg = service("questdb", bench("questdb") ? "start" : "url");
  const qdbHttp = service("questdb", "http-url");
  const psql = psqlBin();
  const pg = postgres(pgUrl, { max: 1, onnotice: () => {} });
  const qdb = postgres(qdbPg, { max: 1, fetch_types: false, onnotice: () => {} });
  const prepared = new Map<number, Prepared>();
  const prep = async (rows: number) => {
    let p = prepared.get(rows);
    if (!p) {
      const started = performance.now();
      p = await prepare(dir, rows, `${tag}_ilp${rows}_bars`);
      console.log(`prepared ${int(rows)} rows: CSV, COPY text and ILP files in ${secs(performance.now() - started)}s (not timed)`);
      prepared.set(rows, p);
    }
    return p;
  };

  try {
    const [pgVersion] = bench("postgres") ? await pg`SELECT current_setting('server_version') AS v` : [{ v: "not benched" }];
    console.log(
      `stores: stooq-bulk CSV → postgres and questdb stores, ticksync CLI vs psql \\copy / raw ILP (bun ${Bun.version}, ${cpus().length} cores, ` +
        `PostgreSQL ${pgVersion!.v}, QuestDB at ${qdbHttp}; peak RSS: ${GNU_TIME ? "GNU time" : "Bun's maxRSS, which includes this process's own peak: install Debian's time for the children's alone"})`,
    );

    // Postgres: the quarter, then the full size.
    const pgRows: Row[] = [];
    for (const rows of bench("postgres") ? [quarter, full] : []) {
      const r = await benchPostgres(pg, pgUrl, psql, tag, await prep(rows));
      fail("postgres", rows, r.problems);
      pgRows.push(r.row);
    }
    const dayLines: string[] = [];
    if (bench("postgres")) {
      const r = await byDay("postgres", await prep(quarter), `${pgUrl}${pgUrl.includes("?") ? "&" : "?"}schema=${tag}_byday`);
      fail("postgres", quarter, r.problems);
      dayLines.push(r.line);
    }

    // QuestDB: the full size first, within the budget; a quarter after it (or, when the full size
    // did not fit, a quarter and a sixteenth).
    const qdbRows: Row[] = [];
    const notes: string[] = [];
    if (bench("questdb")) {
      const first = await benchQuestdb(qdb, qdbPg, qdbHttp, tag, await prep(full), budgetS * 1000);
      fail("questdb", full, first.problems);
      let qdbSizes: number[];
      if (first.row.ticksync.timedOut) {
        const t = first.row.ticksync;
        notes.push(
          `note  questdb: ${int(full)} rows through ticksync did not finish within ${budgetS}s (BENCH_QDB_BUDGET_S): stopped after ${secs(t.ms)}s with ` +
            `${int(first.stored)} rows stored (${int(rate(first.stored, t.ms))} rows/s, peak RSS ${MiB(t.maxRss).toFixed(1)} MiB; raw ILP took ${secs(first.row.baselineMs)}s for all ${int(full)}, ` +
            `${int(rate(full, first.row.baselineMs))} rows/s). questdb is reported at ${int(quarter)} and ${int(Math.floor(full / 16))} rows.`,
        );
        qdbSizes = [Math.floor(full / 16), quarter];
      } else {
        qdbSizes = [quarter];
        qdbRows.push(first.row);
      }
      for (const p of prepared.values()) if (p.rows === full) unprepare(p);
      for (const rows of qdbSizes) {
        const r = await benchQuestdb(qdb, qdbPg, qdbHttp, tag, await prep(rows));
        fail("questdb", rows, r.problems);
        qdbRows.push(r.row);
      }
      qdbRows.sort((a, b) => a.rows - b.rows);
      const r = await byDay("questdb", await prep(quarter), questdbUrl(qdbPg, qdbHttp, `${tag}_byday_`));
      fail("questdb", quarter, r.problems);
      dayLines.push(r.line);
      await qdbDropPrefix(qdb, `${tag}_byday_`);
    }

    const pgLast = pgRows[pgRows.length - 1];
    const qdbLast = qdbRows[qdbRows.length - 1];
    if (pgLast) {
      console.log("");
      printTable("postgres (ticksync: a binary COPY per batch of 20,000 into bars keyed by (series_id, ts), two batches in flight, staged + upserted when keys may exist; baselines: psql \\copy into an unindexed table, and keyed COPY: psql \\copy into the store's own bars table, primary key (series_id, ts), yearly partitions)", pgRows, "\\copy", "keyed COPY");
    }
    if (qdbLast) {
      console.log("");
      printTable(
        `questdb (ticksync: bars streamed over ILP/HTTP in writes of up to ${int(ILP_LINES_PER_WRITE)} lines, one transaction each, then journal + checkpoint + run counters; ` +
          `baselines: the same ILP lines, ${int(ILP_LINES_PER_REQUEST)} a request, and ${int(ILP_LINES_PER_WRITE)} a request, until the WAL is applied)`,
        qdbRows,
        "raw ILP",
        `raw ILP ×${ILP_LINES_PER_WRITE / 1000}k`,
      );
    }
    console.log("");
    printRatios("postgres", pgRows, "psql \\copy");
    printRatios("questdb", qdbRows, "raw ILP");
    for (const l of dayLines) console.log(l);
    if (pgLast) printRss("postgres", pgRows[0]!, pgLast);
    if (qdbLast) printRss("questdb", qdbRows[0]!, qdbLast);
    for (const n of notes) console.log(n);
    const runs = [pgLast && `postgres ${secs(pgLast.ticksync.runMs)}s`, qdbLast && `questdb ${secs(qdbLast.ticksync.runMs)}s`].filter(Boolean).join(", ");
    console.log(
      `note  ticksync s: the CLI's wall clock, process start to exit (its run itself: ${runs} at the largest size).` +
        (pgLast ? ` \\copy s: the psql process (connect + \\copy of a prepared file); psql's own peak RSS at ${int(full)} rows: ${MiB(pgLast.baselineRss ?? 0).toFixed(1)} MiB.` : "") +
        (qdbLast ? " raw ILP s: the /write requests of prepared bodies + the WAL wait." : ""),
    );
  } finally {
    // Whatever this run made, even after a failure half-way.
    try {
      if (bench("postgres")) for (const r of await pg`SELECT nspname FROM pg_namespace`) if (String(r.nspname).startsWith(`${tag}_`)) await pg.unsafe(`DROP SCHEMA IF EXISTS "${r.nspname}" CASCADE`);
      if (bench("questdb")) await qdbDropPrefix(qdb, `${tag}_`);
    } finally {
      await pg.end();
      await qdb.end();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return problems.length === 0;
}

if (import.meta.main) process.exit((await run(process.argv[2])) ? 0 : 1);
