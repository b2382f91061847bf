// Replay bench: bars/s of a replay of a 10,000,000-bar SQLite store to one client, against a bare
// Bun.serve + bun:sqlite handler streaming the same rows as the same NDJSON in the same order in
// the same run. ticksync serves GET /api/replay (the app as `serve` builds it) and the WebSocket's
// replay at speed "max", a bar a message and in batches; the client is another process
// (scripts/bench/lib/replay-client.ts) that counts the bars and fails the bench on one out of
// (ts, symbol, source) order. Each run also prints the server's CPU µs per bar (steadier than wall
// time on a shared machine), and first the readers alone in this process: the store's range reader
// against one UNION ALL query merged by SQLite (the previous reader), CPU µs per bar.
// The issue's aim: above tardis-machine's published ~700,000 messages/s.
//   bun scripts/bench/run.ts replay
//   BENCH_REPLAY_ROWS=1000000 bun scripts/bench/run.ts replay     (a quick run)
// The store (100 crypto pairs × ROWS/100 one-minute bars) is built once per size with a raw
// bun:sqlite insert after the store's own migrations, and kept in $TMPDIR/ticksync-bench-cache.
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sqliteStore } from "../../src/stores/sqlite/index.ts";
import { createApp } from "../../src/http/app.ts";
import { createHub } from "../../src/stream/hub.ts";
import { streamWebSocket } from "../../src/stream/ws.ts";
import { defaultStreamConfig } from "../../src/stream/config.ts";
import { defaultReplayConfig } from "../../src/stream/range-read.ts";
import { ticksyncMetrics } from "../../src/lib/metrics.ts";

const ROWS = Number(process.env.BENCH_REPLAY_ROWS ?? 10_000_000);
const SYMBOLS = 100;
const PER = Math.floor(ROWS / SYMBOLS);
const T0 = Date.UTC(2020, 0, 1);
const MIN = 60_000;
/** tardis-machine's published figure (messages/s from its cache). */
const AIM = 700_000;
const CLIENT = join(import.meta.dir, "lib", "replay-client.ts");
/** Bars per message in the batched WebSocket run. */
const WS_BATCH = 500;

const letters = (i: number) => String.fromCharCode(65 + Math.floor(i / 676), 65 + (Math.floor(i / 26) % 26), 65 + (i % 26));
const SYMBOL_LIST = Array.from({ length: SYMBOLS }, (_, i) => `${letters(i)}-USDT.CRYPTO`);

/** The cached store of this size, built when missing: the store's migrations, then a raw insert in key order. */
async function storeFile(): Promise<string> {
  const dir = join(tmpdir(), "ticksync-bench-cache");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `replay-${PER * SYMBOLS}.db`);
  if (existsSync(file)) return file;
  const building = `${file}.building`;
  for (const f of [building, `${building}-wal`, `${building}-shm`]) rmSync(f, { force: true });
  const t = performance.now();
  const store = sqliteStore(`sqlite:${building}`);
  await store.migrate();
  await store.close();
  const db = new Database(building);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF");
  const ins = db.prepare("INSERT INTO bars (symbol, interval, ts, source, open, high, low, close, volume, run_id, updated_at) VALUES (?, '1m', ?, 'binance', ?, ?, ?, ?, ?, 1, 0)");
  const series = db.prepare("INSERT INTO series (source, symbol, interval, first_ts, last_ts, bars) VALUES ('binance', ?, '1m', ?, ?, ?)");
  for (const symbol of SYMBOL_LIST) {
    db.transaction(() => {
      let p = 100;
      for (let i = 0; i < PER; i++) {
        const c = Math.round((p + Math.sin(i / 7) * 0.5) * 100) / 100;
        ins.run(symbol, T0 + i * MIN, p, Math.max(p, c) + 0.1, Math.min(p, c) - 0.1, c, 1000 + (i % 97));
        p = c;
      }
      series.run(symbol, T0, T0 + (PER - 1) * MIN, PER);
    })();
  }
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  renameSync(building, file);
  for (const f of [`${building}-wal`, `${building}-shm`]) rmSync(f, { force: true });
  console.log(`  built ${PER * SYMBOLS} bars in ${((performance.now() - t) / 1000).toFixed(1)} s: ${file}`);
  return file;
}

/**
 * The baseline: a bare Bun.serve + bun:sqlite handler writing the same lines in the same order the
 * plainest fast way: each symbol's primary-key range read in chunks of 1,000 rows (`stmt.values()`),
 * a binary heap on (ts, symbol index) merging them, each ts's ISO text made once. No snapshots, no
 * cursor, no bounds: what ticksync adds over this is what the ratio shows.
 */
function bareServer(file: string) {
  const db = new Database(file, { readonly: true });
  const chunk = db.query("SELECT ts, symbol, source, open, high, low, close, volume FROM bars WHERE symbol = ?1 AND interval = '1m' AND ts >= ?2 AND (ts > ?2 OR source > ?3) ORDER BY ts, source LIMIT 1000");
  type Row = [number, string, string, number, number, number, number, number];
  const n = SYMBOL_LIST.length;
  return Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch() {
      const bufs: Row[][] = SYMBOL_LIST.map((s) => chunk.values(s, T0 - 1, null) as Row[]);
      const at = new Int32Array(n);
      const headTs = new Float64Array(n);
      const heap = SYMBOL_LIST.map((_, i) => i).filter((i) => bufs[i]!.length);
      for (const i of heap) headTs[i] = bufs[i]![0]![0];
      const down = (k: number) => {
        const x = heap[k]!;
        for (;;) {
          let c = 2 * k + 1;
          if (c >= heap.length) break;
          const y = heap[c]!;
          if (c + 1 < heap.length) {
            const z = heap[c + 1]!;
            if (headTs[z]! < headTs[y]! || (headTs[z] === headTs[y] && z < y)) c++;
          }
          const m = heap[c]!;
          if (headTs[x]! < headTs[m]! || (headTs[x] === headTs[m] && x < m)) break;
          heap[k] = m;
          k = c;
        }
        heap[k] = x;
      };
      for (let k = (heap.length >> 1) - 1; k >= 0; k--) down(k);
      const body = new ReadableStream<Uint8Array>(
        {
          pull(ctl) {
            let out = "";
            let lastTs = NaN;
            let iso = "";
            for (let m = 0; m < 10_000 && heap.length; m++) {
              const i = heap[0]!;
              const r = bufs[i]![at[i]!++]!;
              if (r[0] !== lastTs) iso = new Date((lastTs = r[0])).toISOString();
              out += `{"type":"bar","symbol":"${r[1]}","source":"${r[2]}","interval":"1m","ts":"${iso}","open":${r[3]},"high":${r[4]},"low":${r[5]},"close":${r[6]},"volume":${r[7]}}\n`;
              if (at[i]! === bufs[i]!.length) {
                bufs[i] = bufs[i]!.length < 1000 ? [] : (chunk.values(SYMBOL_LIST[i]!, r[0], r[2]) as Row[]);
                at[i] = 0;
                if (!bufs[i]!.length) heap[0] = heap[heap.length - 1]!, heap.pop();
              }
              if (bufs[i]!.length) headTs[i] = bufs[i]![at[i]!]![0];
              if (heap.length) down(0);
            }
            if (out) ctl.enqueue(Buffer.from(out));
            if (!heap.length) ctl.close();
          },
        },
        { highWaterMark: 0 },
      );
      return new Response(body, { headers: { "Content-Type": "application/x-ndjson" } });
    },
  });
}

/** CPU µs per bar of reading every row in pages of 10,000: the store's range reader, then one UNION ALL query a page. */
async function readerCpu(file: string, store: ReturnType<typeof sqliteStore>): Promise<{ store: number; union: number; rows: number }> {
  const cpuUs = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  let c0 = cpuUs();
  let rows = 0;
  const reader = store.readRange!({ symbols: SYMBOL_LIST, interval: "1m", from: T0, to: T0 + PER * MIN });
  for (let p = await reader.next(10_000); p.rows.length; p = await reader.next(10_000)) rows += p.rows.length;
  const storeUs = (cpuUs() - c0) / rows;
  const db = new Database(file, { readonly: true });
  const arms = SYMBOL_LIST.map(
    (_, i) => `SELECT ts, symbol, source, open, high, low, close, volume, adj_close, turnover, trades FROM bars WHERE symbol = ?${3 + 3 * i} AND interval = '1m' AND ts >= ?${4 + 3 * i} AND ts <= ?1 AND (ts > ?${4 + 3 * i} OR source > ?${5 + 3 * i})`,
  );
  const page = db.query(`${arms.join(" UNION ALL ")} ORDER BY 1, 2, 3 LIMIT ?2`);
  const params: (string | number | null)[] = [Number.MAX_SAFE_INTEGER, 10_000];
  for (const s of SYMBOL_LIST) params.push(s, T0 - 1, null);
  c0 = cpuUs();
  let unionRows = 0;
  for (;;) {
    const got = page.values(...(params as any[])) as [number, string, string][];
    unionRows += got.length;
    const last = got[got.length - 1];
    if (!last) break;
    for (let i = 0; i < SYMBOL_LIST.length; i++) {
      const s = SYMBOL_LIST[i]!;
      params[3 + 3 * i] = s < last[1] ? last[0] : s > last[1] ? last[0] - 1 : last[0];
      params[4 + 3 * i] = s === last[1] ? last[2] : null;
    }
  }
  db.close();
  if (unionRows !== rows) throw new Error(`the readers disagree: ${rows} and ${unionRows} rows`);
  return { store: storeUs, union: (cpuUs() - c0) / rows, rows };
}

type ClientResult = { bars: number; seconds: number; outOfOrder: number; messages: number; serverCpuUs: number };
/** One client run; the server's CPU time meanwhile (this process: both servers, one of them busy). */
async function client(args: string[]): Promise<ClientResult> {
  const cpu0 = process.cpuUsage();
  const proc = Bun.spawn([process.execPath, CLIENT, ...args], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(proc.stdout).text();
  if ((await proc.exited) !== 0) throw new Error(`the replay client failed (${args[0]})`);
  const cpu = process.cpuUsage(cpu0);
  return { ...JSON.parse(out.trim().split("\n").pop()!), serverCpuUs: cpu.user + cpu.system };
}

export async function run(): Promise<boolean> {
  const file = await storeFile();
  const total = PER * SYMBOLS;
  const store = sqliteStore(`sqlite:${file}`);
  const config = { ...defaultStreamConfig(), pollMs: 1000 };
  const replay = { ...defaultReplayConfig(), maxRows: 1e12 };
  const hub = createHub({ store, config, replay });
  await hub.start();
  const app = createApp({ store, metrics: ticksyncMetrics(), stream: { hub, config }, replay });
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch, websocket: streamWebSocket(config) });
  const bare = bareServer(file);
  const from = new Date(T0).toISOString();
  const to = new Date(T0 + PER * MIN).toISOString();
  let ok = true;
  const report = (name: string, r: ClientResult) => {
    const rate = r.bars / r.seconds;
    const bad = r.bars !== total || r.outOfOrder > 0;
    if (bad) ok = false;
    const frames = r.messages !== r.bars ? ` (${r.messages.toLocaleString("en")} frames)` : "";
    console.log(`  ${name.padEnd(34)} ${r.bars} bars${frames} in ${r.seconds.toFixed(2)} s: ${Math.round(rate).toLocaleString("en")} bars/s, server CPU ${(r.serverCpuUs / r.bars).toFixed(2)} µs/bar${r.outOfOrder ? `, ${r.outOfOrder} OUT OF ORDER` : ""}${r.bars !== total ? `, expected ${total} bars` : ""}`);
    return rate;
  };
  try {
    console.log(`replay: ${total.toLocaleString("en")} one-minute bars of ${SYMBOLS} symbols (SQLite), one client`);
    const cpu = await readerCpu(file, store);
    console.log(`  readers alone (CPU, this process): store's range reader ${cpu.store.toFixed(2)} µs/bar; one UNION ALL query a page ${cpu.union.toFixed(2)} µs/bar`);
    // Warm-up (page cache, JIT): one pass of each reader, not timed.
    await client(["http", `http://127.0.0.1:${bare.port}/`]);
    await client(["http", `http://127.0.0.1:${server.port}/api/replay?symbols=${SYMBOL_LIST.join(",")}&interval=1m&from=${from}&to=${to}`]);
    const base = report("bare Bun + bun:sqlite", await client(["http", `http://127.0.0.1:${bare.port}/`]));
    const http = report("ticksync GET /api/replay", await client(["http", `http://127.0.0.1:${server.port}/api/replay?symbols=${SYMBOL_LIST.join(",")}&interval=1m&from=${from}&to=${to}`]));
    const op = JSON.stringify({ op: "replay", symbols: SYMBOL_LIST, interval: "1m", from, to, speed: "max" });
    const ws = report("ticksync WebSocket replay", await client(["ws", `ws://127.0.0.1:${server.port}/api/ws`, op]));
    const opBatch = JSON.stringify({ op: "replay", symbols: SYMBOL_LIST, interval: "1m", from, to, speed: "max", batch: WS_BATCH });
    const wsBatch = report(`ticksync WebSocket, batch ${WS_BATCH}`, await client(["ws", `ws://127.0.0.1:${server.port}/api/ws`, opBatch]));
    console.log(`  ÷ bare (bars/s): /api/replay ${(http / base).toFixed(2)}; WebSocket ${(ws / base).toFixed(2)}; WebSocket batch ${WS_BATCH} ${(wsBatch / base).toFixed(2)}`);
    const met = (x: number) => (x > AIM ? "met" : "missed");
    console.log(`  aim (above ${AIM.toLocaleString("en")} messages/s, tardis-machine's figure; a bar a message): /api/replay ${met(http)}, WebSocket ${met(ws)}; batched, in bars/s: ${met(wsBatch)}`);
  } finally {
    bare.stop(true);
    await hub.stop();
    server.stop(true);
    await store.close();
  }
  return ok;
}

if (import.meta.main) process.exit((await run()) ? 0 : 1);
