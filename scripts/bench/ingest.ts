// Ingest bench: CSV → the embedded SQLite store through the real CLI, against a raw bun:sqlite
// insert of the same rows (one transaction, one prepared statement) measured in the same run.
// Both run in child processes, so their peak RSS and their times are comparable. Two file sizes
// show whether ticksync's peak RSS grows with the file (it must not: files are read in slices).
//   bun scripts/bench/ingest.ts          (BENCH_ROWS=200000 BENCH_REPEAT=1 for a quick run)
//   bun scripts/bench/ingest.ts baseline <csv> <db>   (the baseline child; prints JSON)
import { Database } from "bun:sqlite";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { DEMO_TICKERS, rng, wseSessions } from "../gen-demo.ts";
import { SQLITE_MIGRATIONS } from "../../src/stores/sqlite/index.ts";

/** The size: the rate is measured here. */
const ROWS = 1_000_000;
/** Each measurement is the best of this many runs (peak RSS: the highest); BENCH_REPEAT overrides. */
const REPEAT = 3;
/** Sessions per symbol: 2,500 WSE sessions from 2012-01-02 end on 2022-01-10, so no bar is in the future. */
const SESSIONS = 2_500;
const FIRST_SESSION = "2012-01-02";
const SEED = 20120102;
const SOURCE = "bench";
/** Target from the issue: ticksync inserts at ≥ 50% of the raw insert rate. */
const RATE_TARGET = 0.5;
/**
 * Peak RSS is compared between ROWS and twice ROWS. The store lets SQLite cache up to 64 MiB of
 * pages (`cache_size = -65536` in src/stores/sqlite/index.ts); a 1M-row store is ~90 MiB, so that cap is
 * reached in both runs and what is left to compare is the reader's memory. Flat: the double-size
 * file costs at most 15% more.
 */
const RSS_LIMIT = 1.15;

const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");
const HEADER = "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>";
const BAR_COLS = "symbol, interval, ts, source, open, high, low, close, volume, adj_close, turnover, trades, run_id, updated_at";

/** `ABE`, …, `XTB`, then `ABE1`, …: as many distinct valid WSE tickers as needed. */
function ticker(i: number): string {
  const base = DEMO_TICKERS[i % DEMO_TICKERS.length]!;
  const round = Math.floor(i / DEMO_TICKERS.length);
  return round === 0 ? base : `${base}${round}`;
}

/**
 * A Stooq bulk file: one symbol after another, each a seeded random walk over consecutive WSE
 * sessions (no gaps, no duplicates, every row valid). The walk is pulled back into 5..500 so a
 * long series never rounds a price down to zero. Deterministic: n rows are a prefix of m > n rows.
 */
export async function writeBulkCsv(path: string, rows: number): Promise<void> {
  const days = wseSessions(FIRST_SESSION, SESSIONS).map((d) => d.replaceAll("-", ""));
  const writer = Bun.file(path).writer();
  writer.write(HEADER + "\n");
  for (let i = 0, left = rows; left > 0; i++) {
    const n = Math.min(left, days.length);
    const r = rng(SEED + i);
    const sym = ticker(i);
    let price = 10 + r() * 290;
    let chunk = "";
    for (let d = 0; d < n; d++) {
      const open = price * (1 + (r() - 0.5) * 0.01);
      const close = open * (1 + (r() - 0.5) * 0.04);
      const high = Math.max(open, close) * (1 + r() * 0.015);
      const low = Math.min(open, close) * (1 - r() * 0.015);
      const volume = Math.round(1_000 + r() * 500_000);
      chunk += `${sym},D,${days[d]},000000,${open.toFixed(2)},${high.toFixed(2)},${low.toFixed(2)},${close.toFixed(2)},${volume},0\n`;
      price = close < 5 ? close * 1.05 : close > 500 ? close * 0.95 : close;
    }
    writer.write(chunk);
    left -= n;
  }
  await writer.end();
}

type Measured = { ms: number; maxRss: number };
type BaselineResult = Measured & { insertMs: number; rows: number };
type TicksyncResult = Measured & { runMs: number; inserted: number; quarantined: number };

/**
 * GNU time, when installed, reports a child's own peak RSS. Bun's resourceUsage().maxRSS cannot:
 * Linux carries the spawning process's high-water mark into the child at exec.
 */
const GNU_TIME = Bun.file("/usr/bin/time").size > 0 ? "/usr/bin/time" : null;
let rssFiles = 0;

/** Run a child to completion: its wall time and peak RSS (bytes). */
async function spawnMeasured(cmd: string[], cwd: string): Promise<Measured & { stdout: string; stderr: string; exitCode: number }> {
  // No TICKSYNC_* overrides from the caller's shell: the bench measures the defaults.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TICKSYNC_")));
  const rssFile = join(tmpdir(), `ticksync-bench-ingest-rss-${process.pid}-${rssFiles++}`);
  const started = performance.now();
  const proc = Bun.spawn(GNU_TIME ? [GNU_TIME, "-f", "%M", "-o", rssFile, ...cmd] : cmd, { cwd, env, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const ms = performance.now() - started;
  if (GNU_TIME) {
    const kib = Number(readFileSync(rssFile, "utf8").trim().split("\n").pop());
    rmSync(rssFile, { force: true });
    if (!Number.isFinite(kib) || kib <= 0) throw new Error(`GNU time reported no peak RSS for ${cmd.join(" ")}`);
    return { ms, maxRss: kib * 1024, stdout, stderr, exitCode };
  }
  const usage = proc.resourceUsage();
  if (!usage) throw new Error(`no resource usage for ${cmd.join(" ")}`);
  return { ms, maxRss: usage.maxRSS, stdout, stderr, exitCode };
}

async function runTicksync(csv: string, db: string, cwd: string): Promise<TicksyncResult> {
  const cmd = [process.execPath, MAIN, "ingest", "--file", csv, "--layout", "stooq-bulk", "--market", "WSE", "--store", `sqlite:${db}`, "--name", SOURCE, "--json"];
  const r = await spawnMeasured(cmd, cwd);
  if (r.exitCode !== 0) throw new Error(`ticksync ingest exited ${r.exitCode}\n${r.stderr}${r.stdout}`);
  const [summary] = JSON.parse(r.stdout) as { durationMs: number; inserted: number; quarantined: number }[];
  if (!summary) throw new Error(`ticksync ingest printed no summary: ${r.stdout}`);
  return { ms: r.ms, maxRss: r.maxRss, runMs: summary.durationMs, inserted: summary.inserted, quarantined: summary.quarantined };
}

async function runBaseline(csv: string, db: string, cwd: string): Promise<BaselineResult> {
  const r = await spawnMeasured([process.execPath, import.meta.path, "baseline", csv, db], cwd);
  if (r.exitCode !== 0) throw new Error(`baseline exited ${r.exitCode}\n${r.stderr}${r.stdout}`);
  const out = JSON.parse(r.stdout) as { insertMs: number; rows: number };
  return { ms: r.ms, maxRss: r.maxRss, insertMs: out.insertMs, rows: out.rows };
}

/**
 * The baseline child. Parsing the CSV into column arrays is not timed; the timed part opens a
 * fresh file with the store's pragmas and schema and inserts every row in one transaction.
 */
function baselineChild(csv: string, dbPath: string): void {
  const lines = readFileSync(csv, "utf8").split("\n");
  const n = lines.length - 1 - (lines[lines.length - 1] === "" ? 1 : 0);
  const symbol: string[] = new Array(n);
  const ts = new Float64Array(n);
  const open = new Float64Array(n);
  const high = new Float64Array(n);
  const low = new Float64Array(n);
  const close = new Float64Array(n);
  const volume = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = lines[i + 1]!.split(",");
    const d = c[2]!;
    symbol[i] = `${c[0]}.WA`;
    ts[i] = Date.UTC(+d.slice(0, 4), +d.slice(4, 6) - 1, +d.slice(6, 8));
    open[i] = +c[4]!;
    high[i] = +c[5]!;
    low[i] = +c[6]!;
    close[i] = +c[7]!;
    volume[i] = +c[8]!;
  }
  lines.length = 0;
  Bun.gc(true); // the parse's garbage is not the insert's to collect

  const started = performance.now();
  const db = new Database(dbPath, { create: true, strict: false });
  // The same pragmas as src/stores/sqlite/index.ts.
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec("PRAGMA busy_timeout = 10000");
  db.exec("PRAGMA temp_store = MEMORY");
  db.exec("PRAGMA cache_size = -65536");
  for (const m of SQLITE_MIGRATIONS) db.exec(m.sql);
  const insert = db.prepare(`INSERT INTO bars (${BAR_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`);
  const now = Date.now();
  db.transaction(() => {
    for (let i = 0; i < n; i++) insert.run(symbol[i]!, "1d", ts[i]!, SOURCE, open[i]!, high[i]!, low[i]!, close[i]!, volume[i]!, null, null, null, 1, now);
  })();
  insert.finalize();
  db.close();
  process.stdout.write(JSON.stringify({ rows: n, insertMs: performance.now() - started }) + "\n");
}

type Fingerprint = { n: number; symbols: number; minTs: number; maxTs: number; volume: number; close: number };

/** What both stores must agree on: the same rows, not just as many. */
function fingerprint(dbPath: string): Fingerprint {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db
      .query("SELECT count(*) AS n, count(DISTINCT symbol) AS symbols, min(ts) AS minTs, max(ts) AS maxTs, total(volume) AS volume, round(total(close), 2) AS close FROM bars")
      .get() as Fingerprint;
  } finally {
    db.close();
  }
}

function check(rows: number, baseline: BaselineResult, ticksync: TicksyncResult, want: Fingerprint, got: Fingerprint): string[] {
  const problems: string[] = [];
  if (baseline.rows !== rows || want.n !== rows) problems.push(`baseline stored ${want.n} of ${rows} rows`);
  if (got.n !== rows) problems.push(`ticksync store has ${got.n} bars, expected ${rows}`);
  if (ticksync.inserted !== rows || ticksync.quarantined !== 0) problems.push(`ticksync reported inserted ${ticksync.inserted}, quarantined ${ticksync.quarantined}`);
  if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`stores differ: ticksync ${JSON.stringify(got)} vs baseline ${JSON.stringify(want)}`);
  return problems;
}

type Row = { rows: number; ticksync: TicksyncResult; baseline: BaselineResult };

/** Fastest time of a and b, highest peak RSS of both. */
function best<T extends Measured>(a: T, b: T, time: (x: T) => number): T {
  return { ...(time(b) < time(a) ? b : a), maxRss: Math.max(a.maxRss, b.maxRss) };
}

const MiB = (bytes: number) => bytes / (1 << 20);
const int = (x: number) => Math.round(x).toLocaleString("en-US");
const rate = (rows: number, ms: number) => rows / (ms / 1000);

function printTable(results: Row[]): void {
  const head = ["rows", "ticksync s", "rows/s", "peak RSS MiB", "baseline s", "rows/s", "peak RSS MiB", "ratio"];
  const w = [11, 11, 10, 13, 11, 10, 13, 7];
  const line = (cells: string[]) => console.log(cells.map((c, i) => c.padStart(w[i]!)).join(" "));
  line(head);
  for (const r of results) {
    const t = rate(r.rows, r.ticksync.ms);
    const b = rate(r.rows, r.baseline.insertMs);
    line([
      int(r.rows),
      (r.ticksync.ms / 1000).toFixed(2),
      int(t),
      MiB(r.ticksync.maxRss).toFixed(1),
      (r.baseline.insertMs / 1000).toFixed(2),
      int(b),
      MiB(r.baseline.maxRss).toFixed(1),
      (t / b).toFixed(2),
    ]);
  }
}

export async function run(): Promise<boolean> {
  const main = Number(process.env.BENCH_ROWS ?? ROWS);
  if (!Number.isInteger(main) || main < 2) throw new Error(`BENCH_ROWS must be a whole number ≥ 2, got ${process.env.BENCH_ROWS}`);
  const big = main * 2;
  const repeat = Number(process.env.BENCH_REPEAT ?? REPEAT);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`BENCH_REPEAT must be a whole number ≥ 1, got ${process.env.BENCH_REPEAT}`);
  const sizes = [main, big] as const;
  const dir = mkdtempSync(join(tmpdir(), "ticksync-bench-ingest-"));
  let ok = true;
  try {
    console.log(`ingest: stooq-bulk CSV → sqlite store, ticksync CLI vs raw bun:sqlite insert (bun ${Bun.version}, ${cpus().length} cores, best of ${repeat})`);
    const genStarted = performance.now();
    for (const rows of sizes) await writeBulkCsv(join(dir, `bars-${rows}.csv`), rows);
    console.log(`generated ${sizes.map(int).join(" and ")} rows (${Math.ceil(big / SESSIONS)} symbols × up to ${SESSIONS} sessions) in ${((performance.now() - genStarted) / 1000).toFixed(1)}s`);

    const results: Row[] = [];
    for (const rows of sizes) {
      const csv = join(dir, `bars-${rows}.csv`);
      let row: Row | null = null;
      // Alternate the two, so that a noisy moment on the machine hits both alike.
      for (let i = 0; i < repeat; i++) {
        const baseDb = join(dir, `baseline-${rows}.db`);
        const tsDb = join(dir, `ticksync-${rows}.db`);
        const baseline = await runBaseline(csv, baseDb, dir);
        const ticksync = await runTicksync(csv, tsDb, dir);
        const problems = check(rows, baseline, ticksync, fingerprint(baseDb), fingerprint(tsDb));
        for (const p of problems) console.error(`FAIL ${int(rows)} rows, run ${i + 1}: ${p}`);
        if (problems.length) ok = false;
        for (const f of [baseDb, tsDb]) for (const suffix of ["", "-wal", "-shm"]) rmSync(f + suffix, { force: true });
        row = row
          ? { rows, baseline: best(row.baseline, baseline, (x) => x.insertMs), ticksync: best(row.ticksync, ticksync, (x) => x.ms) }
          : { rows, baseline, ticksync };
      }
      results.push(row!);
    }

    printTable(results);
    const [small, large] = results as [Row, Row];
    const ratio = rate(small.rows, small.ticksync.ms) / rate(small.rows, small.baseline.insertMs);
    const rss = large.ticksync.maxRss / small.ticksync.maxRss;
    console.log(`rate  ${int(small.rows)} rows: ticksync/baseline ${ratio.toFixed(2)} (target ≥ ${RATE_TARGET.toFixed(2)}): ${ratio >= RATE_TARGET ? "target met" : "target missed"}`);
    console.log(
      `RSS   ticksync peak ${MiB(large.ticksync.maxRss).toFixed(1)} MiB at ${int(large.rows)} rows vs ${MiB(small.ticksync.maxRss).toFixed(1)} MiB at ${int(small.rows)}: ` +
        `${rss.toFixed(2)}× for ${(large.rows / small.rows).toFixed(0)}× the rows (flat: ≤ ${RSS_LIMIT}×): ${rss <= RSS_LIMIT ? "target met" : "target missed"}`,
    );
    console.log(
      `note  ticksync s: the CLI's wall clock, process start to exit (the run itself took ${(small.ticksync.runMs / 1000).toFixed(2)}s at ${int(small.rows)} rows). ` +
        `baseline s: open + schema + insert + close only, not its CSV parse; its RSS holds every row in memory.`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return ok;
}

if (import.meta.main) {
  const [mode, csv, db] = process.argv.slice(2);
  if (mode === "baseline") {
    if (!csv || !db) throw new Error("usage: bun scripts/bench/ingest.ts baseline <csv> <db>");
    baselineChild(csv, db);
  } else process.exit((await run()) ? 0 : 1);
}
