// Capacity bench (issue #18 item 9): per store (SQLite, PostgreSQL, QuestDB) and per interval (1d,
// 1m), the bytes on disk a stored bar costs and the rows loaded per CPU-second, loading through the
// real CLI (`bun src/main.ts ingest`), each against a raw load of the same rows in the same run.
//   Bytes per bar: the CSV is loaded in two parts (cut at a change of symbol) into one fresh store,
//     compacted and measured after each (SQLite VACUUM + dbstat; PostgreSQL VACUUM, then
//     pg_total_relation_size of every table of the schema; QuestDB table_storage()'s diskSize and
//     table_partitions() of bars, once they stop shrinking). Part B's growth ÷ its bars leaves the
//     store's fixed cost out; "kept" is that less the event journal (pruned after
//     stream.retentionDays) or, QuestDB, the bars partitions alone (WAL segments are purged once
//     applied). Printed against a raw bar of 52 bytes (int64 ts, OHLCV as 5 float64, a 4-byte id).
//   Rows per CPU-second: rows ÷ (CPU-seconds of the CLI process + of the store server for it):
//     PostgreSQL: the backends serving the client's connections (found in /proc by client port)
//     and the WAL writer, checkpointer and background writer, up to a CHECKPOINT after the load;
//     QuestDB: its JVM's CPU less its idle rate (the lower of 3 s before and 3 s after: the server
//     is shared and its CPU cannot be told apart by client). Against the raw load's: a bun:sqlite
//     insert in one transaction (its CPU only, not its CSV parse), psql \copy into the store's own
//     keyed bars table (psql + server), the same ILP lines posted to /write (this process + server).
// Then the sizing table docs/capacity.md is made of: symbols × interval × years → disk, CPU-hours
// to load, machines, from the figures just measured.
//   npm run bench -- capacity
//   BENCH_CAPACITY_1D_ROWS (default 500,000: 200 WSE symbols × 2,500 sessions)
//   BENCH_CAPACITY_1M_ROWS (default 500,000: 1m CRYPTO bars, BENCH_CAPACITY_1M_MINUTES a symbol, default 10,080: a week)
//   BENCH_CAPACITY_STORES=sqlite,postgres,questdb   BENCH_CAPACITY_CORES / _DISK_TB: the machine sized against (16, 4)
// The servers: TICKSYNC_TEST_PG_URL, TICKSYNC_TEST_QUESTDB_URL / _HTTP when set (as /work/env.sh or
// `npm test` export them), else scripts/services' URLs; they must run on this machine (/proc).
//   bun scripts/bench/capacity.ts sqlite-baseline <csv> <db> <interval>   (the SQLite baseline child)
import { Database } from "bun:sqlite";
import postgres from "postgres";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../../src/stores/open.ts";
import { SQLITE_MIGRATIONS } from "../../src/stores/sqlite/index.ts";
import { ILP_LINES_PER_REQUEST } from "../../src/stores/questdb/index.ts";
import { MARKET, RUN_ID, SOURCE, eachLine, parseLine, splitCsv, writeCsv, writeRawFiles, type Interval, type RawFiles } from "./lib/capacity-data.ts";
import { PgClientCpu, pidListening, treeCpuSeconds } from "./lib/proc-cpu.ts";
import { bytesText, hoursText, sizing, type Scenario, type StoreFigures } from "./lib/sizing.ts";
import { walApplied } from "./lib/questdb-wal.ts";

const ROWS = { "1d": 500_000, "1m": 500_000 } as const;
const MINUTES = 10_080;
/** A raw bar: ts as int64, open, high, low, close, volume as float64, a 4-byte series id. */
const RAW_BAR_BYTES = 6 * 8 + 4;
/** Seconds of a server's idle CPU measured before each load (subtracted from the load's). */
const IDLE_S = 3;
const ROOT = join(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "main.ts");
const BAR_COLS = "symbol, interval, ts, source, open, high, low, close, volume, adj_close, turnover, trades, run_id, updated_at";
const PG_KEYED_COLS = "series_id, ts, open, high, low, close, volume, adj_close, turnover, trades, run_id";

const int = (x: number) => Math.round(x).toLocaleString("en-US");
const fix = (x: number, d = 2) => x.toFixed(d);
const env = (name: string, dflt: number) => {
  const n = Number(process.env[name] ?? dflt);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a whole number ≥ 1, got ${process.env[name]}`);
  return n;
};

// --- children and CPU -----------------------------------------------------------------------

type Child = { ms: number; cpuS: number; stdout: string; stderr: string; exitCode: number };

/** A child to completion: wall time and its own CPU-seconds (user + system, from wait4). */
async function spawnCpu(cmd: string[], watch?: (pid: number) => void): Promise<Child> {
  // No TICKSYNC_* overrides from the caller's shell: the bench measures the defaults.
  const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TICKSYNC_")));
  const started = performance.now();
  const proc = Bun.spawn(cmd, { cwd: ROOT, env: childEnv, stdout: "pipe", stderr: "pipe" });
  watch?.(proc.pid);
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const usage = proc.resourceUsage();
  if (!usage) throw new Error(`no resource usage for ${cmd[0]}`);
  return { ms: performance.now() - started, cpuS: Number(usage.cpuTime.user + usage.cpuTime.system) / 1e6, stdout, stderr, exitCode };
}

/** A server's CPU meter: its idle rate first, then what a load took above it. */
type Server = { pid: number; idlePerS: number };

async function idleServer(pid: number | null): Promise<Server | null> {
  if (pid === null) return null;
  const a = treeCpuSeconds(pid);
  await Bun.sleep(IDLE_S * 1000);
  return { pid, idlePerS: (treeCpuSeconds(pid) - a) / IDLE_S };
}

/**
 * CPU-seconds the server spent in `work` above its idle rate: the lower of the rates measured just
 * before and just after it (other clients' bursts on a shared server inflate one or the other).
 */
async function serverCpu<T>(server: Server | null, work: () => Promise<T>): Promise<{ value: T; cpuS: number; windowS: number; idlePerS: number }> {
  const started = performance.now();
  const a = server ? treeCpuSeconds(server.pid) : 0;
  const value = await work();
  const windowS = (performance.now() - started) / 1000;
  if (!server) return { value, cpuS: 0, windowS, idlePerS: 0 };
  const used = treeCpuSeconds(server.pid) - a;
  const after = await idleServer(server.pid);
  const idlePerS = Math.min(server.idlePerS, after!.idlePerS);
  return { value, cpuS: Math.max(0, used - idlePerS * windowS), windowS, idlePerS };
}

type Load = { ms: number; clientCpuS: number; serverCpuS: number; idlePerS: number };
/** A store's bytes: all of it, and what stays (less the event journal, pruned after stream.retentionDays; QuestDB: the bars partitions, less WAL segments). */
type Size = { bytes: number; keptBytes: number; bars: number };
type Result = {
  store: string;
  interval: Interval;
  rows: number;
  rowsB: number;
  /** ticksync's two loads (A, then B into the same store), summed. */
  ticksync: Load;
  baseline: Load;
  empty: Size;
  afterA: Size;
  afterB: Size;
};
/** The CSV of an interval and its two parts. */
type Split = { csv: string; rows: number; a: string; rowsA: number; b: string; rowsB: number };

const sumLoads = (x: Load, y: Load): Load => ({ ms: x.ms + y.ms, clientCpuS: x.clientCpuS + y.clientCpuS, serverCpuS: x.serverCpuS + y.serverCpuS, idlePerS: Math.max(x.idlePerS, y.idlePerS) });

/** ticksync loads part A, then part B into the same store; the store's size is read (compacted) after each, outside the CPU windows. */
async function loadTwice(split: Split, load: (csv: string, rows: number, part: string) => Promise<Load>, size: () => Promise<Size>) {
  const a = await load(split.a, split.rowsA, "A");
  const afterA = await size();
  const b = await load(split.b, split.rowsB, "B");
  const afterB = await size();
  return { ticksync: sumLoads(a, b), afterA, afterB };
}

async function ingest(csv: string, interval: Interval, store: string, watch?: (pid: number) => void): Promise<Child> {
  const r = await spawnCpu([process.execPath, MAIN, "ingest", "--file", csv, "--layout", "stooq-bulk", "--market", MARKET[interval], "--interval", interval, "--name", SOURCE, "--store", store, "--json"], watch);
  if (r.exitCode !== 0) throw new Error(`ticksync ingest exited ${r.exitCode}\n${r.stderr.slice(-3000)}${r.stdout.slice(-2000)}`);
  const [summary] = JSON.parse(r.stdout) as { inserted: number; quarantined: number }[];
  if (!summary) throw new Error(`ticksync ingest printed no summary: ${r.stdout}`);
  return { ...r, stdout: JSON.stringify({ inserted: summary.inserted, quarantined: summary.quarantined }) };
}

function checkIngest(r: Child, rows: number, problems: string[], what: string) {
  const s = JSON.parse(r.stdout) as { inserted: number; quarantined: number };
  if (s.inserted !== rows || s.quarantined !== 0) problems.push(`${what}: ticksync reported inserted ${s.inserted}, quarantined ${s.quarantined} of ${rows}`);
}

// --- SQLite ---------------------------------------------------------------------------------

/** The baseline child: the CSV parsed first (not measured), then one transaction of inserts with the store's pragmas and schema; prints its CPU-seconds. */
async function sqliteBaselineChild(csv: string, dbPath: string, interval: Interval) {
  const bars: NonNullable<ReturnType<typeof parseLine>>[] = [];
  await eachLine(csv, (l) => {
    const b = parseLine(l, interval);
    if (b) bars.push(b);
  });
  Bun.gc(true);
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const db = new Database(dbPath, { create: true, strict: false });
  // The same pragmas as src/stores/sqlite/index.ts.
  for (const p of ["journal_mode = WAL", "synchronous = NORMAL", "busy_timeout = 10000", "temp_store = MEMORY", "cache_size = -65536", "journal_size_limit = 67108864"]) db.exec(`PRAGMA ${p}`);
  for (const m of SQLITE_MIGRATIONS) db.exec(m.sql);
  const insert = db.prepare(`INSERT INTO bars (${BAR_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`);
  const now = Date.now();
  db.transaction(() => {
    for (const b of bars) insert.run(b.symbol, interval, b.ts, SOURCE, b.open, b.high, b.low, b.close, b.volume, null, null, null, RUN_ID, now);
  })();
  insert.finalize();
  db.close();
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(JSON.stringify({ rows: bars.length, ms: performance.now() - started, cpuS: (cpu.user + cpu.system) / 1e6 }) + "\n");
}

/** A SQLite store file compacted (VACUUM, WAL checkpointed into it): its bytes, those less the journal's pages (dbstat), its bars. */
function sqliteCompact(path: string): Size {
  const db = new Database(path);
  const { n } = db.query("SELECT count(*) AS n FROM bars").get() as { n: number };
  db.exec("VACUUM");
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const { j } = db.query("SELECT coalesce(sum(pgsize), 0) AS j FROM dbstat WHERE name IN (SELECT name FROM sqlite_schema WHERE tbl_name = 'journal')").get() as { j: number };
  db.close();
  const size = (f: string) => (existsSync(f) ? statSync(f).size : 0);
  const bytes = size(path) + size(`${path}-wal`);
  return { bytes, keptBytes: bytes - j, bars: n };
}

async function benchSqlite(dir: string, split: Split, interval: Interval, problems: string[]): Promise<Result> {
  const tsDb = join(dir, `ticksync-${interval}.db`);
  const store = openStore(`sqlite:${tsDb}`);
  await store.migrate();
  await store.close();
  const empty = sqliteCompact(tsDb);

  const baseDb = join(dir, `baseline-${interval}.db`);
  const base = await spawnCpu([process.execPath, import.meta.path, "sqlite-baseline", split.csv, baseDb, interval]);
  if (base.exitCode !== 0) throw new Error(`sqlite baseline exited ${base.exitCode}: ${base.stderr.slice(-2000)}`);
  const b = JSON.parse(base.stdout) as { rows: number; ms: number; cpuS: number };
  if (b.rows !== split.rows) problems.push(`sqlite ${interval}: the baseline inserted ${b.rows} of ${split.rows}`);

  const two = await loadTwice(
    split,
    async (csv, rows, part) => {
      const t = await ingest(csv, interval, `sqlite:${tsDb}`);
      checkIngest(t, rows, problems, `sqlite ${interval} ${part}`);
      return { ms: t.ms, clientCpuS: t.cpuS, serverCpuS: 0, idlePerS: 0 };
    },
    async () => sqliteCompact(tsDb),
  );
  if (two.afterB.bars !== split.rows) problems.push(`sqlite ${interval}: the store holds ${two.afterB.bars} bars, expected ${split.rows}`);
  for (const f of [baseDb, tsDb]) for (const sfx of ["", "-wal", "-shm"]) rmSync(f + sfx, { force: true });
  return { store: "sqlite", interval, rows: split.rows, rowsB: split.rowsB, ...two, baseline: { ms: b.ms, clientCpuS: b.cpuS, serverCpuS: 0, idlePerS: 0 }, empty };
}

// --- PostgreSQL -----------------------------------------------------------------------------

function psqlBin(): string {
  const onPath = Bun.which("psql");
  if (onPath) return onPath;
  const dirs = existsSync("/usr/lib/postgresql") ? readdirSync("/usr/lib/postgresql").sort().reverse() : [];
  for (const d of dirs) if (existsSync(`/usr/lib/postgresql/${d}/bin/psql`)) return `/usr/lib/postgresql/${d}/bin/psql`;
  throw new Error("no psql found (scripts/services/postgres.sh installs it)");
}

const withSchema = (url: string, schema: string) => `${url}${url.includes("?") ? "&" : "?"}schema=${schema}`;

/** Every table of a schema vacuumed, then the bytes of all (heap, indexes, TOAST, maps), and of all but the journal. */
async function pgCompactSize(sql: postgres.Sql, schema: string): Promise<Size> {
  const tables = await sql`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ${schema} AND c.relkind = 'r'`;
  for (const t of tables) await sql.unsafe(`VACUUM "${schema}"."${t.relname}"`);
  const [r] = await sql`
    SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS bytes,
           coalesce(sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.relname <> 'journal'), 0)::bigint AS kept
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ${schema} AND c.relkind = 'r'`;
  const [n] = await sql.unsafe(`SELECT count(*)::bigint AS n FROM "${schema}".bars`);
  return { bytes: Number(r!.bytes), keptBytes: Number(r!.kept), bars: Number(n!.n) };
}

async function pgCheckpoint(sql: postgres.Sql) {
  try {
    await sql`CHECKPOINT`;
  } catch {
    // not allowed for this role: the server's own checkpoints write the pages later, outside the window
  }
}

async function benchPostgres(sql: postgres.Sql, pgUrl: string, tag: string, split: Split, raw: RawFiles, interval: Interval, problems: string[]): Promise<Result> {
  const pid = pidListening(Number(new URL(pgUrl).port || 5432));
  if (pid === null) throw new Error(`no local process listens on port ${new URL(pgUrl).port || 5432}: the bench reads the server's CPU from /proc`);
  const [keyedS, tsS] = [`${tag}_${interval}_keyed`, `${tag}_${interval}`];
  for (const s of [keyedS, tsS]) {
    const st = openStore(withSchema(pgUrl, s));
    await st.migrate();
    await st.close();
  }
  const empty = await pgCompactSize(sql, tsS);
  for (const y of raw.years) await sql.unsafe(`CREATE TABLE "${keyedS}".bars_y${y} PARTITION OF "${keyedS}".bars FOR VALUES FROM ('${y}-01-01 00:00:00+00') TO ('${y + 1}-01-01 00:00:00+00')`);

  // The server's CPU for one client: its backends and the shared writers, up to a CHECKPOINT after it.
  const port = Number(new URL(pgUrl).port || 5432);
  const metered = async (what: string, run: (watch: (pid: number) => void) => Promise<Child>) => {
    await pgCheckpoint(sql);
    const meter = new PgClientCpu(pid, port);
    const r = await run((p) => meter.watch(p));
    await pgCheckpoint(sql);
    const m = meter.stop();
    if (m.backends === 0) problems.push(`postgres ${interval}: found no backend serving ${what} (its server CPU is missing)`);
    return { r, serverCpuS: m.backendsS + m.backgroundS };
  };
  const base = await metered("psql", async (watch) => {
    const r = await spawnCpu([psqlBin(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pgUrl, "-c", `\\copy "${keyedS}".bars (${PG_KEYED_COLS}) FROM '${raw.keyedCopy}'`], watch);
    if (r.exitCode !== 0) throw new Error(`psql \\copy exited ${r.exitCode}: ${r.stderr}`);
    return r;
  });
  const [kn] = await sql.unsafe(`SELECT count(*)::bigint AS n FROM "${keyedS}".bars`);
  if (Number(kn!.n) !== raw.rows) problems.push(`postgres ${interval}: the keyed COPY stored ${kn!.n} of ${raw.rows}`);

  const two = await loadTwice(
    split,
    async (csv, rows, part) => {
      const t = await metered("ticksync", (watch) => ingest(csv, interval, withSchema(pgUrl, tsS), watch));
      checkIngest(t.r, rows, problems, `postgres ${interval} ${part}`);
      return { ms: t.r.ms, clientCpuS: t.r.cpuS, serverCpuS: t.serverCpuS, idlePerS: 0 };
    },
    () => pgCompactSize(sql, tsS),
  );
  if (two.afterB.bars !== raw.rows) problems.push(`postgres ${interval}: the store holds ${two.afterB.bars} bars, expected ${raw.rows}`);
  for (const s of [keyedS, tsS]) await sql.unsafe(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  const baseline = { ms: base.r.ms, clientCpuS: base.r.cpuS, serverCpuS: base.serverCpuS, idlePerS: 0 };
  return { store: "postgres", interval, rows: raw.rows, rowsB: split.rowsB, ...two, baseline, empty };
}

// --- QuestDB --------------------------------------------------------------------------------

/**
 * A QuestDB catalogue query, tried again while another client's table is locked or gone (tests on
 * the same server create and drop tables all the time: table_storage() and tables() open them all).
 */
async function qdbCatalogue<T>(what: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await what();
    } catch (e) {
      if (i >= 20) throw e;
      await Bun.sleep(250 + 100 * i);
    }
  }
}

/** The store's tables (table_storage()'s diskSize: WAL segments included) and the bars partitions alone (table_partitions()). */
async function qdbBytes(sql: postgres.Sql, prefix: string): Promise<Size> {
  return qdbCatalogue(() => qdbBytesOnce(sql, prefix));
}

async function qdbBytesOnce(sql: postgres.Sql, prefix: string): Promise<Size> {
  let [bytes, keptBytes] = [0, 0];
  for (const r of await sql`SELECT tableName, diskSize FROM table_storage()`) if (String(r.tableName).startsWith(prefix)) bytes += Number(r.diskSize);
  const bars = `${prefix}bars`;
  if ((await sql`SELECT table_name FROM tables() WHERE table_name = ${bars}`).length === 0) return { bytes, keptBytes, bars: 0 };
  for (const r of await sql.unsafe(`SELECT diskSize FROM table_partitions('${bars}')`)) keptBytes += Number(r.diskSize);
  const [n] = await sql.unsafe(`SELECT count() AS n FROM "${bars}"`);
  return { bytes, keptBytes, bars: Number(n!.n) };
}

/** The size once QuestDB has purged the partition versions a load replaced: unchanged for 3 s (at most 60 s). */
async function qdbSettledBytes(sql: postgres.Sql, prefix: string) {
  let last = await qdbBytes(sql, prefix);
  for (let same = 0, i = 0; same < 3 && i < 60; i++) {
    await Bun.sleep(1000);
    const now = await qdbBytes(sql, prefix);
    same = now.bytes === last.bytes ? same + 1 : 0;
    last = now;
  }
  return last;
}

async function qdbDropPrefix(sql: postgres.Sql, prefix: string) {
  const names = await qdbCatalogue(async () => (await sql`SELECT table_name FROM tables()`).map((r) => String(r.table_name)));
  for (const name of names) if (name.startsWith(prefix)) await sql.unsafe(`DROP TABLE IF EXISTS "${name}"`);
}

function questdbUrl(pgWire: string, http: string, prefix: string): string {
  const u = new URL(pgWire);
  return `questdb://${u.username}:${u.password}@${u.host}${u.pathname}?http=${http}&prefix=${prefix}`;
}

async function benchQuestdb(sql: postgres.Sql, pgWire: string, http: string, tag: string, split: Split, raw: RawFiles, ilpTable: string, interval: Interval, problems: string[]): Promise<Result> {
  const pid = pidListening(Number(new URL(http).port));
  if (pid === null) throw new Error(`no local process listens on ${http}: the bench reads the server's CPU from /proc`);
  const [baseP, tsP] = [ilpTable.slice(0, -"bars".length), `${tag}_${interval}_t_`];
  for (const p of [baseP, tsP])
    await qdbCatalogue(async () => {
      const st = openStore(questdbUrl(pgWire, http, p));
      try {
        await st.migrate();
      } finally {
        await st.close();
      }
    });
  const empty = await qdbSettledBytes(sql, tsP);

  const baseIdle = await idleServer(pid);
  const base = await serverCpu(baseIdle, async () => {
    const cpu0 = process.cpuUsage();
    const started = performance.now();
    for (const [a, b] of raw.ilpBodies) {
      const res = await fetch(`${http}/write?precision=ms`, { method: "POST", body: Bun.file(raw.ilp).slice(a, b) });
      if (res.status !== 204 && res.status !== 200) throw new Error(`QuestDB /write answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    }
    await walApplied(sql, ilpTable);
    const cpu = process.cpuUsage(cpu0);
    return { ms: performance.now() - started, cpuS: (cpu.user + cpu.system) / 1e6 };
  });
  const [bn] = await sql.unsafe(`SELECT count() AS n FROM "${ilpTable}"`);
  if (Number(bn!.n) !== raw.rows) problems.push(`questdb ${interval}: raw ILP stored ${bn!.n} of ${raw.rows}`);

  const two = await loadTwice(
    split,
    async (csv, rows, part) => {
      const server = await idleServer(pid);
      const t = await serverCpu(server, async () => {
        const r = await ingest(csv, interval, questdbUrl(pgWire, http, tsP));
        await walApplied(sql, `${tsP}bars`);
        return r;
      });
      checkIngest(t.value, rows, problems, `questdb ${interval} ${part}`);
      return { ms: t.value.ms, clientCpuS: t.value.cpuS, serverCpuS: t.cpuS, idlePerS: t.idlePerS };
    },
    () => qdbSettledBytes(sql, tsP),
  );
  if (two.afterB.bars !== raw.rows) problems.push(`questdb ${interval}: the store holds ${two.afterB.bars} bars, expected ${raw.rows}`);
  for (const p of [baseP, tsP]) await qdbDropPrefix(sql, p);
  const baseline = { ms: base.value.ms, clientCpuS: base.value.cpuS, serverCpuS: base.cpuS, idlePerS: base.idlePerS };
  return { store: "questdb", interval, rows: raw.rows, rowsB: split.rowsB, ...two, baseline, empty };
}

// --- report ---------------------------------------------------------------------------------

const perCpu = (rows: number, l: Load) => rows / (l.clientCpuS + l.serverCpuS);
/** Bytes a bar costs once the store exists: part B's growth ÷ its bars (what the sizing uses). */
const marginal = (r: Result) => (r.afterB.bytes - r.afterA.bytes) / r.rowsB;
/** The same for what stays: the sizing's figure. */
const kept = (r: Result) => (r.afterB.keptBytes - r.afterA.keptBytes) / r.rowsB;
const overall = (r: Result) => (r.afterB.bytes - r.empty.bytes) / r.rows;

function printResults(results: Result[]) {
  const head = ["store", "int", "rows", "wall s", "rows/s", "CLI cpu-s", "server cpu-s", "rows/cpu-s", "raw rows/cpu-s", "ratio", "B/bar all", "B/bar more", "kept", "÷ 52 B"];
  const w = [8, 3, 9, 7, 9, 9, 12, 10, 14, 5, 9, 10, 9, 6];
  const line = (cells: string[]) => console.log(cells.map((c, i) => (i < 2 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(" "));
  line(head);
  for (const r of results) {
    const t = perCpu(r.rows, r.ticksync);
    const b = perCpu(r.rows, r.baseline);
    line([r.store, r.interval, int(r.rows), fix(r.ticksync.ms / 1000), int(r.rows / (r.ticksync.ms / 1000)), fix(r.ticksync.clientCpuS), fix(r.ticksync.serverCpuS), int(t), int(b), fix(t / b), fix(overall(r), 1), fix(marginal(r), 1), fix(kept(r), 1), fix(kept(r) / RAW_BAR_BYTES)]);
  }
  console.log(
    "rows/cpu-s: rows ÷ CPU-seconds of the CLI (or raw client) + the server above its idle rate; ticksync: part A then part B, summed. " +
      "B/bar all: (store after both − empty store) ÷ rows; B/bar more: part B's growth ÷ its rows; kept: the same less the event journal (pruned after stream.retentionDays) or, QuestDB, " +
      "the bars partitions alone (WAL segments are purged once applied): the sizing's figure.",
  );
  for (const r of results)
    console.log(
      `RESULT ${r.store} ${r.interval}: ${fix(kept(r), 1)} B/bar kept, ${fix(marginal(r), 1)} with journal/WAL (÷ raw ${RAW_BAR_BYTES} B: ${fix(kept(r) / RAW_BAR_BYTES)}), ` +
        `${int(perCpu(r.rows, r.ticksync))} rows/cpu-s (÷ raw load's ${int(perCpu(r.rows, r.baseline))}: ${fix(perCpu(r.rows, r.ticksync) / perCpu(r.rows, r.baseline))}); ` +
        `raw load ${fix(r.baseline.ms / 1000)}s wall, ${fix(r.baseline.clientCpuS)} + ${fix(r.baseline.serverCpuS)} cpu-s; ${r.store === "questdb" ? `server idle ${fix(r.ticksync.idlePerS, 3)} cpu-s/s subtracted; ` : ""}` +
        `store bytes: empty ${int(r.empty.bytes)}, after A ${int(r.afterA.bytes)}, after B ${int(r.afterB.bytes)} (${int(r.rows - r.rowsB)} + ${int(r.rowsB)} bars)`,
    );
}

/** The scenarios of docs/capacity.md: 1d over 20 years of US sessions, 1m over 5 years of US regular sessions and of crypto. */
const SCENARIOS = (symbols: number): Scenario[] => [
  { symbols, label: "1d × 20 y", barsPerDay: 1, daysPerYear: 252, years: 20 },
  { symbols, label: "1m US × 5 y", barsPerDay: 390, daysPerYear: 252, years: 5 },
  { symbols, label: "1m crypto × 5 y", barsPerDay: 1440, daysPerYear: 365, years: 5 },
];

function printSizing(results: Result[], cores: number, diskTb: number) {
  const m = { cores, diskBytes: diskTb * 1e12 };
  const stores = [...new Set(results.map((r) => r.store))];
  console.log(`\nsizing (from the figures above; machine: ${cores} cores, ${diskTb} TB; load: CPU-hours of ticksync + server, and hours when all ${cores} cores load; machines: by disk)`);
  const w = [8, 16, 16];
  console.log(["symbols", "series", "bars", ...stores.map((s) => `${s}: disk, load cpu-h / all cores, daily cpu-s, machines`)].map((c, i) => (i < 3 ? c.padEnd(w[i]!) : c)).join(" | "));
  for (const symbols of [1_000, 10_000, 100_000])
    for (const s of SCENARIOS(symbols)) {
      const interval: Interval = s.barsPerDay === 1 ? "1d" : "1m";
      const cells = stores.map((store) => {
        const r = results.find((x) => x.store === store && x.interval === interval);
        if (!r) return "-";
        // A small run's part B may fit in the page-rounded files part A left (QuestDB's last partition): nothing to size from.
        if (!(kept(r) > 0)) return "- (part B did not grow the store: more rows)";
        const f: StoreFigures = { bytesPerBar: kept(r), rowsPerCpuSecond: perCpu(r.rows, r.ticksync) };
        const z = sizing(s, f, m);
        return `${bytesText(z.diskBytes)}, ${fix(z.loadCpuHours, z.loadCpuHours < 10 ? 1 : 0)} / ${hoursText(z.loadHoursAllCores)}, ${int(z.dailyCpuSeconds)}, ${z.machines}`;
      });
      const bars = sizing(s, { bytesPerBar: 1, rowsPerCpuSecond: 1 }, m).bars;
      console.log([int(symbols), s.label, `${fix(bars / 1e9, 3)} G`, ...cells].map((c, i) => (i < 3 ? c.padEnd(w[i]!) : c)).join(" | "));
    }
}

// --- the bench ------------------------------------------------------------------------------

function service(script: "postgres" | "questdb", cmd: string): string {
  const r = Bun.spawnSync(["bash", join(ROOT, "scripts", "services", `${script}.sh`), cmd], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`scripts/services/${script}.sh ${cmd} exited ${r.exitCode}: ${r.stderr.toString().slice(-2000)}`);
  return r.stdout.toString().trim();
}

export async function run(): Promise<boolean> {
  const rows = { "1d": env("BENCH_CAPACITY_1D_ROWS", ROWS["1d"]), "1m": env("BENCH_CAPACITY_1M_ROWS", ROWS["1m"]) };
  const minutes = env("BENCH_CAPACITY_1M_MINUTES", MINUTES);
  const [cores, diskTb] = [env("BENCH_CAPACITY_CORES", 16), env("BENCH_CAPACITY_DISK_TB", 4)];
  const stores = (process.env.BENCH_CAPACITY_STORES ?? "sqlite,postgres,questdb").split(",").map((s) => s.trim());
  for (const s of stores) if (!["sqlite", "postgres", "questdb"].includes(s)) throw new Error(`BENCH_CAPACITY_STORES: unknown store ${JSON.stringify(s)}`);
  const has = (s: string) => stores.includes(s);
  const pgUrl = process.env.TICKSYNC_TEST_PG_URL ?? service("postgres", "url");
  const qdbPg = process.env.TICKSYNC_TEST_QUESTDB_URL ?? service("questdb", "url");
  const qdbHttp = process.env.TICKSYNC_TEST_QUESTDB_HTTP ?? service("questdb", "http-url");
  const tag = `cap_${Date.now().toString(36)}`;
  const dir = mkdtempSync(join(tmpdir(), "ticksync-bench-capacity-"));
  const pg = postgres(pgUrl, { max: 1, connect_timeout: 120, onnotice: () => {} });
  const qdb = postgres(qdbPg, { max: 1, connect_timeout: 120, fetch_types: false, onnotice: () => {} });
  const problems: string[] = [];
  const results: Result[] = [];
  try {
    console.log(`capacity: bytes per bar and rows per CPU-second, ticksync CLI vs raw loads (bun ${Bun.version}, ${cpus().length} cores, load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")})`);
    for (const interval of ["1d", "1m"] as const) {
      const csv = join(dir, `bars-${interval}.csv`);
      const started = performance.now();
      await writeCsv(interval, csv, rows[interval], minutes);
      const raw = await writeRawFiles(csv, interval, join(dir, `bars-${interval}`), `${tag}_${interval}_raw_bars`, ILP_LINES_PER_REQUEST);
      if (raw.rows !== rows[interval]) throw new Error(`prepared ${raw.rows} rows, expected ${rows[interval]}`);
      const [a, b] = [join(dir, `bars-${interval}-a.csv`), join(dir, `bars-${interval}-b.csv`)];
      const split: Split = { csv, rows: raw.rows, a, b, ...(await splitCsv(csv, a, b, raw.rows)) };
      console.log(
        `${interval}: ${int(raw.rows)} rows (${interval === "1d" ? "WSE sessions" : `CRYPTO minutes, ${int(minutes)} a symbol`}; ticksync loads ${int(split.rowsA)} then ${int(split.rowsB)}), ` +
          `CSV ${fix(statSync(csv).size / raw.rows, 1)} B/row, prepared in ${fix((performance.now() - started) / 1000, 1)}s (not measured)`,
      );
      if (has("sqlite")) results.push(await benchSqlite(dir, split, interval, problems));
      if (has("postgres")) results.push(await benchPostgres(pg, pgUrl, tag, split, raw, interval, problems));
      if (has("questdb")) results.push(await benchQuestdb(qdb, qdbPg, qdbHttp, tag, split, raw, `${tag}_${interval}_raw_bars`, interval, problems));
      for (const r of results.filter((x) => x.interval === interval)) console.log(`  ${r.store} ${interval}: ticksync ${fix(r.ticksync.ms / 1000)}s (A + B), raw load ${fix(r.baseline.ms / 1000)}s`);
      for (const f of [csv, a, b, raw.keyedCopy, raw.ilp]) rmSync(f, { force: true });
    }
    console.log("");
    printResults(results);
    printSizing(results, cores, diskTb);
    for (const p of problems) console.error(`FAIL ${p}`);
  } finally {
    // Whatever this run made, even after a failure half-way; a failing clean-up is reported, not thrown (it would hide the failure).
    try {
      if (has("postgres")) for (const r of await pg`SELECT nspname FROM pg_namespace`) if (String(r.nspname).startsWith(`${tag}_`)) await pg.unsafe(`DROP SCHEMA IF EXISTS "${r.nspname}" CASCADE`);
      if (has("questdb")) await qdbDropPrefix(qdb, `${tag}_`);
    } catch (e) {
      console.error(`clean-up of ${tag}_* failed: ${(e as Error).message}`);
    }
    await pg.end();
    await qdb.end();
    rmSync(dir, { recursive: true, force: true });
  }
  return problems.length === 0;
}

if (import.meta.main) {
  const [mode, csv, db, interval] = process.argv.slice(2);
  if (mode === "sqlite-baseline") {
    if (!csv || !db || (interval !== "1d" && interval !== "1m")) throw new Error("usage: bun scripts/bench/capacity.ts sqlite-baseline <csv> <db> <1d|1m>");
    await sqliteBaselineChild(csv, db, interval);
  } else process.exit((await run()) ? 0 : 1);
}
