// Ingest bench: CSV → the embedded SQLite store through the real CLI, against a raw bun:sqlite
// insert of the same rows (one transaction, one prepared statement) measured in the same run.
// Both run in child processes, so their peak RSS and their times are comparable. Two file sizes
// show whether ticksync's peak RSS grows with the file (it must not: files are read in slices).
// The same rows are also loaded interleaved by day (a bulk export's order), and each file is
// loaded a second time into the same store (every row unchanged) to time a re-load.
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
/** Runs per file: ratios are their median, times the best, peak RSS the highest; BENCH_REPEAT overrides. */
const REPEAT = 3;
/** Sessions per symbol: 2,500 WSE sessions from 2012-01-02 end on 2022-01-10, so no bar is in the future. */
const SESSIONS = 2_500;
const FIRST_SESSION = "2012-01-02";
const SEED = 20120102;
const SOURCE = "bench";
/** Target from issue #17: ticksync inserts at least at the raw insert's rate, grouped by symbol or by day. */
const RATE_TARGET = 1.0;
/** Target from issue #17: loading the same file again (every row unchanged) takes no longer than the first load. */
const RELOAD_TARGET = 1.0;
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

/**
 * The same rows as `src`, interleaved by day: every symbol's bar of a day, then the next day
 * (a bulk export's order). Lines sort by date, then by their place in `src` (symbol order).
 */
export async function writeInterleavedCsv(src: string, path: string): Promise<void> {
  const lines = readFileSync(src, "utf8").split("\n");
  const header = lines.shift()!;
  if (lines[lines.length - 1] === "") lines.pop();
  const order = lines.map((_, i) => i);
  const day = lines.map((l) => Number(l.split(",", 3)[2]));
  order.sort((a, b) => day[a]! - day[b]! || a - b);
  const writer = Bun.file(path).writer();
  writer.write(header + "\n");
  for (let i = 0; i < order.length; i += 10_000) writer.write(order.slice(i, i + 10_000).map((k) => lines[k]).join("\n") + "\n");
  await writer.end();
}

type Measured = { ms: number; maxRss: number };
type BaselineResult = Measured & { insertMs: number; rows: number };
type TicksyncResult = Measured & { runMs: number; inserted: number; updated: number; unchanged: number; quarantined: number };

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

/** One CLI ingest; `full` reads the file again whatever its checkpoint says (a re-load). */
async function runTicksync(csv: string, db: string, cwd: string, full = false): Promise<TicksyncResult> {
  const cmd = [process.execPath, MAIN, "ingest", "--file", csv, "--layout", "stooq-bulk", "--market", "WSE", "--store", `sqlite:${db}`, "--name", SOURCE, "--json", ...(full ? ["--full"] : [])];
  const r = await spawnMeasured(cmd, cwd);
  if (r.exitCode !== 0) throw new Error(`ticksync ingest exited ${r.exitCode}\n${r.stderr}${r.stdout}`);
  const [summary] = JSON.parse(r.stdout) as { durationMs: number; inserted: number; updated: number; unchanged: number; quarantined: number }[];
  if (!summary) throw new Error(`ticksync ingest printed no summary: ${r.stdout}`);
  const { inserted, updated, unchanged, quarantined } = summary;
  return { ms: r.ms, maxRss: r.maxRss, runMs: summary.durationMs, inserted, updated, unchanged, quarantined };
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
  db.exec("PRAGMA journal_size_limit = 67108864");
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

/**
 * One file's measurement: the first load, the re-load of the same file (when measured), the
 * baseline (best times, highest RSS), and each run's paired ratios.
 */
type Row = { label: string; rows: number; ticksync: TicksyncResult; reload: TicksyncResult | null; baseline: BaselineResult; ratios: number[]; reloads: number[] };

/** The middle of some numbers (the mean of the middle two for an even count). */
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Fastest time of a and b, highest peak RSS of both. */
function best<T extends Measured>(a: T, b: T, time: (x: T) => number): T {
  return { ...(time(b) < time(a) ? b : a), maxRss: Math.max(a.maxRss, b.maxRss) };
}

const MiB = (bytes: number) => bytes / (1 << 20);
const int = (x: number) => Math.round(x).toLocaleString("en-US");
const rate = (rows: number, ms: number) => rows / (ms / 1000);
const loadRatio = (r: { rows: number; ticksync: Measured; baseline: BaselineResult }) => rate(r.rows, r.ticksync.ms) / rate(r.rows, r.baseline.insertMs);
const reloadRatio = (r: { ticksync: Measured; reload: Measured | null }) => (r.reload ? r.reload.ms / r.ticksync.ms : NaN);

function printTable(results: Row[]): void {
  const head = ["file", "rows", "ticksync s", "rows/s", "peak RSS MiB", "re-load s", "baseline s", "rows/s", "peak RSS MiB", "ratio*"];
  const w = [12, 11, 11, 10, 13, 10, 11, 10, 13, 7];
  const line = (cells: string[]) => console.log(cells.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(" "));
  line(head);
  for (const r of results) {
    line([
      r.label,
      int(r.rows),
      (r.ticksync.ms / 1000).toFixed(2),
      int(rate(r.rows, r.ticksync.ms)),
      MiB(r.ticksync.maxRss).toFixed(1),
      r.reload ? (r.reload.ms / 1000).toFixed(2) : "-",
      (r.baseline.insertMs / 1000).toFixed(2),
      int(rate(r.rows, r.baseline.insertMs)),
      MiB(r.baseline.maxRss).toFixed(1),
      median(r.ratios).toFixed(2),
    ]);
  }
  console.log("* ratio: the median of the runs' ratios, each run's ticksync rate ÷ the baseline's rate measured just before it");
}

/** Drop a store file and its WAL. */
const dropDb = (f: string) => {
  for (const suffix of ["", "-wal", "-shm"]) rmSync(f + suffix, { force: true });
};

/** Baseline, first load and (optionally) the re-load of one file, `repeat` times, alternating; each run's ratios printed. */
async function measureFile(dir: string, label: string, csv: string, rows: number, repeat: number, reload: boolean): Promise<{ row: Row; ok: boolean }> {
  let row: Row | null = null;
  let ok = true;
  for (let i = 0; i < repeat; i++) {
    const baseDb = join(dir, `baseline-${label}-${rows}.db`);
    const tsDb = join(dir, `ticksync-${label}-${rows}.db`);
    const baseline = await runBaseline(csv, baseDb, dir);
    const ticksync = await runTicksync(csv, tsDb, dir);
    const problems = check(rows, baseline, ticksync, fingerprint(baseDb), fingerprint(tsDb));
    let again: TicksyncResult | null = null;
    if (reload) {
      // The same file into the same store: every row is there already and unchanged.
      again = await runTicksync(csv, tsDb, dir, true);
      if (again.inserted !== 0 || again.updated !== 0 || again.unchanged !== rows || again.quarantined !== 0)
        problems.push(`re-load reported inserted ${again.inserted}, updated ${again.updated}, unchanged ${again.unchanged}, quarantined ${again.quarantined}`);
      const after = fingerprint(tsDb);
      if (JSON.stringify(after) !== JSON.stringify(fingerprint(baseDb))) problems.push(`re-load changed the store: ${JSON.stringify(after)}`);
    }
    for (const p of problems) console.error(`FAIL ${label} ${int(rows)} rows, run ${i + 1}: ${p}`);
    if (problems.length) ok = false;
    dropDb(baseDb);
    dropDb(tsDb);
    const run = { label, rows, baseline, ticksync, reload: again, ratios: [] as number[], reloads: [] as number[] };
    console.log(
      `run ${i + 1} ${label} ${int(rows)} rows: ticksync/baseline ${loadRatio(run).toFixed(2)}` + (again ? `, re-load/first load ${reloadRatio(run).toFixed(2)}` : ""),
    );
    const ratios: number[] = [...((row as Row | null)?.ratios ?? []), loadRatio(run)];
    const reloads: number[] = again ? [...((row as Row | null)?.reloads ?? []), reloadRatio(run)] : [];
    row = row
      ? {
          label,
          rows,
          ratios,
          reloads,
          baseline: best(row.baseline, baseline, (x) => x.insertMs),
          ticksync: best(row.ticksync, ticksync, (x) => x.ms),
          reload: again && row.reload ? best(row.reload, again, (x) => x.ms) : again,
        }
      : { ...run, ratios, reloads };
  }
  return { row: row!, ok };
}

export async function run(): Promise<boolean> {
  const main = Number(process.env.BENCH_ROWS ?? ROWS);
  if (!Number.isInteger(main) || main < 2) throw new Error(`BENCH_ROWS must be a whole number ≥ 2, got ${process.env.BENCH_ROWS}`);
  const big = main * 2;
  const repeat = Number(process.env.BENCH_REPEAT ?? REPEAT);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`BENCH_REPEAT must be a whole number ≥ 1, got ${process.env.BENCH_REPEAT}`);
  const dir = mkdtempSync(join(tmpdir(), "ticksync-bench-ingest-"));
  let ok = true;
  try {
    console.log(`ingest: stooq-bulk CSV → sqlite store, ticksync CLI vs raw bun:sqlite insert (bun ${Bun.version}, ${cpus().length} cores, ${repeat} runs each)`);
    const genStarted = performance.now();
    for (const rows of [main, big]) await writeBulkCsv(join(dir, `bars-${rows}.csv`), rows);
    await writeInterleavedCsv(join(dir, `bars-${main}.csv`), join(dir, `bars-${main}-by-day.csv`));
    console.log(`generated ${[main, big].map(int).join(" and ")} rows (${Math.ceil(big / SESSIONS)} symbols × up to ${SESSIONS} sessions), and ${int(main)} by day, in ${((performance.now() - genStarted) / 1000).toFixed(1)}s`);

    // by symbol: one symbol's sessions after another; by day: every symbol's bar of a day, then the next day.
    const files = [
      { label: "by symbol", csv: join(dir, `bars-${main}.csv`), rows: main, reload: true },
      { label: "by day", csv: join(dir, `bars-${main}-by-day.csv`), rows: main, reload: true },
      { label: "by symbol", csv: join(dir, `bars-${big}.csv`), rows: big, reload: false },
    ];
    const results: Row[] = [];
    for (const f of files) {
      const m = await measureFile(dir, f.label, f.csv, f.rows, repeat, f.reload);
      results.push(m.row);
      ok &&= m.ok;
    }

    printTable(results);
    const [bySymbol, byDay, large] = results as [Row, Row, Row];
    // Medians of paired runs: each ticksync run is set against the baseline run just before it, so a
    // busy moment on a shared machine weighs on both sides of a ratio, not on one side of "best of".
    for (const r of [bySymbol, byDay]) {
      const ratio = median(r.ratios);
      const again = median(r.reloads);
      const spread = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
      console.log(`rate    ${r.label.padEnd(9)} ${int(r.rows)} rows: ticksync/baseline median ${ratio.toFixed(2)}, runs ${spread(r.ratios)} (target ≥ ${RATE_TARGET.toFixed(2)}): ${ratio >= RATE_TARGET ? "target met" : "target missed"}`);
      console.log(`re-load ${r.label.padEnd(9)} ${int(r.rows)} rows: re-load/first load median ${again.toFixed(2)}, runs ${spread(r.reloads)} (target ≤ ${RELOAD_TARGET.toFixed(2)}): ${again <= RELOAD_TARGET ? "target met" : "target missed"}`);
    }
    const rss = large.ticksync.maxRss / bySymbol.ticksync.maxRss;
    console.log(
      `RSS     ticksync peak ${MiB(large.ticksync.maxRss).toFixed(1)} MiB at ${int(large.rows)} rows vs ${MiB(bySymbol.ticksync.maxRss).toFixed(1)} MiB at ${int(bySymbol.rows)}: ` +
        `${rss.toFixed(2)}× for ${(large.rows / bySymbol.rows).toFixed(0)}× the rows (flat: ≤ ${RSS_LIMIT}×): ${rss <= RSS_LIMIT ? "target met" : "target missed"}`,
    );
    console.log(
      `note    ticksync s: the CLI's wall clock, process start to exit (the run itself took ${(bySymbol.ticksync.runMs / 1000).toFixed(2)}s at ${int(bySymbol.rows)} rows by symbol). ` +
        `baseline s: open + schema + insert + close only, not its CSV parse; its RSS holds every row in memory. Times and RSS in the table: best (RSS: highest) of the runs.`,
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
