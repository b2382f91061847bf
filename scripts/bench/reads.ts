// Reads bench (issue #17 item 1): ticksync's read API against a bare Bun server running the
// equivalent query on the same store, in the same run. A store of 1,000,000 daily bars (400
// symbols × 2,500 WSE sessions, scripts/bench/ingest.ts's stooq-bulk file, loaded through
// `ticksync ingest`) on SQLite and on PostgreSQL (a schema of its own in the test database,
// dropped after; materialised rollups brought up to date by `ticksync rollups`). For each store,
// `ticksync serve` and scripts/bench/lib/reads-bare.ts run as child processes, and autocannon
// (scripts/bench/lib/reads-load.ts, a third process) loads one then the other at each connection
// count, a random symbol per request, for:
//   bars      /api/bars?interval=1d, 1,000-bar pages
//   weekly    /api/bars?interval=1w, rolled up from the daily bars (every week of the symbol)
//   indic     /api/indicators?set=sma:20,rsi:14, 1,000 rows
// It prints requests/s and p99 of each side and ticksync's ratios; target from the issue:
// ≥ 0.9× the bare throughput and ≤ 1.2× its p99. A sample of answers must be byte-equal on both
// sides (the correctness check that fails the bench), and every load must be all 2xx.
//   BENCH_READS_ROWS=100000          bars in the store (2,500 per symbol; default 1,000,000)
//   BENCH_READS_SECONDS=10           seconds per load
//   BENCH_READS_CONNECTIONS=32,256   connection counts
//   BENCH_READS_STORES=sqlite,postgres
//   BENCH_READS_CASES=bars,weekly,indic
import postgres from "postgres";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeBulkCsv } from "./ingest.ts";

const ROOT = join(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "main.ts");
const LIB = join(import.meta.dir, "lib");
const THROUGHPUT_TARGET = 0.9;
const P99_TARGET = 1.2;
/** Answers compared byte for byte per case and store. */
const SAMPLE = 20;

const env = process.env;
const ROWS = Number(env.BENCH_READS_ROWS ?? 1_000_000);
const SECONDS = Number(env.BENCH_READS_SECONDS ?? 10);
const CONNECTIONS = (env.BENCH_READS_CONNECTIONS ?? "32,256").split(",").map(Number);
const STORES = (env.BENCH_READS_STORES ?? "sqlite,postgres").split(",");
const CASES = (env.BENCH_READS_CASES ?? "bars,weekly,indic").split(",");

const PATHS: Record<string, (symbol: string) => string> = {
  bars: (s) => `/api/bars?symbol=${s}&interval=1d&limit=1000`,
  weekly: (s) => `/api/bars?symbol=${s}&interval=1w&limit=1000`,
  indic: (s) => `/api/indicators?symbol=${s}&interval=1d&set=sma:20,rsi:14&limit=1000`,
};

type Load = { requests: number; rps: number; p50: number; p99: number; non2xx: number; errors: number; timeouts: number };

const int = (x: number) => Math.round(x).toLocaleString("en-US");

async function cli(args: string[]): Promise<string> {
  const p = Bun.spawn([process.execPath, MAIN, ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...env, TICKSYNC_LOG__LEVEL: "warn" } });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`ticksync ${args[0]} exited ${code}: ${err.slice(-2000)}`);
  return out;
}

/** A child server, ready once `GET url` answers. */
async function startServer(cmd: string[], probe: string, extraEnv: Record<string, string> = {}): Promise<Bun.Subprocess> {
  const p = Bun.spawn(cmd, { cwd: ROOT, stdout: "ignore", stderr: "pipe", env: { ...env, ...extraEnv } });
  for (let i = 0; i < 300; i++) {
    if (p.exitCode !== null) throw new Error(`${cmd.slice(1, 3).join(" ")} exited ${p.exitCode}: ${(await new Response(p.stderr as ReadableStream).text()).slice(-2000)}`);
    try {
      const r = await fetch(probe);
      await r.arrayBuffer();
      if (r.ok) return p;
    } catch {}
    await Bun.sleep(100);
  }
  p.kill();
  throw new Error(`${cmd.join(" ")} did not answer ${probe} within 30 s`);
}

async function load(url: string, paths: string[], connections: number): Promise<Load> {
  const p = Bun.spawn([process.execPath, join(LIB, "reads-load.ts"), JSON.stringify({ url, paths, connections, seconds: SECONDS })], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`load generator exited ${code}: ${err.slice(-2000)}`);
  return JSON.parse(out.trim().split("\n").at(-1)!) as Load;
}

/** The first difference of two bodies, for the failure line. */
function firstDiff(a: string, b: string): string {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return `at char ${i}: ticksync …${a.slice(Math.max(0, i - 60), i + 60)}… bare …${b.slice(Math.max(0, i - 60), i + 60)}…`;
}

/** A sample of answers, byte-equal on both sides. */
async function sameAnswers(tick: string, bare: string, symbols: string[], kase: string): Promise<boolean> {
  for (const s of symbols.slice(0, SAMPLE)) {
    const path = PATHS[kase]!(s);
    const [a, b] = await Promise.all([fetch(tick + path), fetch(bare + path)]);
    const [ta, tb] = await Promise.all([a.text(), b.text()]);
    if (a.status !== 200 || b.status !== 200 || ta !== tb) {
      console.error(`  ${kase}: answers differ for ${path} (status ${a.status} vs ${b.status}) ${firstDiff(ta, tb)}`);
      return false;
    }
  }
  return true;
}

async function symbolsOf(storeUrl: string): Promise<string[]> {
  if (storeUrl.startsWith("sqlite:")) {
    const db = new Database(storeUrl.slice("sqlite:".length), { readonly: true });
    const rows = db.query("SELECT DISTINCT symbol FROM series ORDER BY symbol").all() as { symbol: string }[];
    db.close();
    return rows.map((r) => r.symbol);
  }
  const u = new URL(storeUrl);
  const schema = u.searchParams.get("schema")!;
  u.searchParams.delete("schema");
  const sql = postgres(u.toString(), { max: 1, onnotice: () => {} });
  const rows = await sql.unsafe(`SELECT DISTINCT symbol FROM "${schema}".series ORDER BY symbol`);
  await sql.end();
  return rows.map((r) => r.symbol as string);
}

let nextPort = 20_000 + (process.pid % 20_000);

/** One store: both servers up, the answers compared, then every case at every connection count. */
async function benchStore(kind: string, storeUrl: string): Promise<boolean> {
  const symbols = await symbolsOf(storeUrl);
  console.log(`${kind}: ${symbols.length} symbols`);
  const [tp, bp] = [nextPort++, nextPort++];
  const tick = `http://127.0.0.1:${tp}`;
  const bare = `http://127.0.0.1:${bp}`;
  const servers: Bun.Subprocess[] = [];
  let ok = true;
  try {
    servers.push(await startServer([process.execPath, MAIN, "serve", "--host", "127.0.0.1", "--port", String(tp), "--store", storeUrl], `${tick}/healthz`, { TICKSYNC_LOG__LEVEL: "warn" }));
    servers.push(await startServer([process.execPath, join(LIB, "reads-bare.ts"), storeUrl, String(bp)], `${bare}${PATHS.bars!(symbols[0]!)}`));
    for (const kase of CASES) {
      if (!(await sameAnswers(tick, bare, symbols, kase))) {
        ok = false;
        continue;
      }
      const paths = symbols.map(PATHS[kase]!);
      for (const conns of CONNECTIONS) {
        // Alternated so neither side always runs on a machine warmed (or tired) by the other.
        const order = (CONNECTIONS.indexOf(conns) + CASES.indexOf(kase)) % 2 === 0 ? ["bare", "tick"] : ["tick", "bare"];
        const r: Record<string, Load> = {};
        for (const side of order) r[side] = await load(side === "tick" ? tick : bare, paths, conns);
        const t = r.tick!;
        const b = r.bare!;
        for (const [side, x] of Object.entries(r))
          if (x.non2xx || x.errors || x.timeouts) {
            console.error(`  ${kase} c=${conns} ${side}: ${x.non2xx} non-2xx, ${x.errors} errors, ${x.timeouts} timeouts`);
            ok = false;
          }
        const tr = t.rps / b.rps;
        const pr = t.p99 / Math.max(b.p99, 1);
        const met = tr >= THROUGHPUT_TARGET && pr <= P99_TARGET;
        console.log(
          `  ${kind.padEnd(8)} ${kase.padEnd(6)} c=${String(conns).padEnd(3)}  ticksync ${int(t.rps).padStart(6)} req/s p99 ${String(t.p99).padStart(4)} ms` +
            `  bare ${int(b.rps).padStart(6)} req/s p99 ${String(b.p99).padStart(4)} ms  → ${tr.toFixed(2)}× throughput, ${pr.toFixed(2)}× p99  ${met ? "target met" : "missed"}`,
        );
      }
    }
  } finally {
    for (const s of servers) s.kill();
    await Promise.all(servers.map((s) => s.exited));
  }
  return ok;
}

export async function run(): Promise<boolean> {
  const dir = mkdtempSync(join(tmpdir(), "ticksync-reads-"));
  const csv = join(dir, "bulk.csv");
  let ok = true;
  try {
    let t = performance.now();
    await writeBulkCsv(csv, ROWS);
    console.log(`reads: ${int(ROWS)} daily bars (${Math.ceil(ROWS / 2500)} symbols), ${SECONDS} s per load, connections ${CONNECTIONS.join(", ")}`);
    for (const kind of STORES) {
      let storeUrl: string;
      let drop = async () => {};
      if (kind === "sqlite") storeUrl = `sqlite:${join(dir, "reads.db")}`;
      else if (kind === "postgres") {
        const base = env.TICKSYNC_TEST_PG_URL;
        if (!base) throw new Error("TICKSYNC_TEST_PG_URL is not set (source /work/env.sh or scripts/services)");
        const schema = `bench_reads_${process.pid}`;
        const u = new URL(base);
        u.searchParams.set("schema", schema);
        storeUrl = u.toString();
        drop = async () => {
          const sql = postgres(base, { max: 1, onnotice: () => {} });
          await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          await sql.end();
        };
      } else throw new Error(`unknown store ${kind}`);
      try {
        t = performance.now();
        await cli(["ingest", "--file", csv, "--layout", "stooq-bulk", "--market", "WSE", "--name", "bench", "--store", storeUrl, "--json"]);
        if (kind === "postgres") await cli(["rollups", "--store", storeUrl, "--json"]);
        console.log(`${kind}: loaded in ${((performance.now() - t) / 1000).toFixed(1)} s`);
        ok = (await benchStore(kind, storeUrl)) && ok;
      } finally {
        await drop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return ok;
}

if (import.meta.main) process.exit((await run()) ? 0 : 1);
