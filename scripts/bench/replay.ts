// Replay bench: messages/s of a replay of a 10,000,000-bar SQLite store to one client, against a
// bare Bun.serve + bun:sqlite handler streaming the same rows as the same NDJSON in the same run.
// ticksync serves GET /api/replay (the app as `serve` builds it) and the WebSocket's replay at
// speed "max"; the client is another process (scripts/bench/lib/replay-client.ts) that counts the
// bars and fails the bench on one out of (ts, symbol, source) order. The issue's aim: above
// tardis-machine's published ~700,000 messages/s.
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

/** The baseline: a bare Bun.serve + bun:sqlite handler, the same merge query in keyset pages, the same lines. */
function bareServer(file: string) {
  const db = new Database(file, { readonly: true });
  const arms = SYMBOL_LIST.map(
    (_, i) => `SELECT ts, symbol, source, open, high, low, close, volume FROM bars WHERE symbol = ?${4 + 3 * i} AND interval = '1m' AND ts >= ?${5 + 3 * i} AND ts <= ?1 AND (ts > ?${5 + 3 * i} OR source > ?${6 + 3 * i})`,
  );
  const page = db.query(`${arms.join(" UNION ALL ")} ORDER BY 1, 2, 3 LIMIT ?2`);
  return Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch() {
      let after: [number, string, string] | null = null;
      const params: (string | number | null)[] = [Number.MAX_SAFE_INTEGER, 10_000, null];
      for (const s of SYMBOL_LIST) params.push(s, T0 - 1, null);
      const body = new ReadableStream<Uint8Array>(
        {
          pull(ctl) {
            if (after) for (let i = 0; i < SYMBOL_LIST.length; i++) {
              const s = SYMBOL_LIST[i]!;
              const k = 3 + 3 * i;
              params[k + 1] = s < after[1] ? after[0] : s > after[1] ? after[0] - 1 : after[0];
              params[k + 2] = s === after[1] ? after[2] : null;
            }
            const rows = page.values(...(params as any[])) as [number, string, string, number, number, number, number, number][];
            let out = "";
            for (const r of rows)
              out += `{"type":"bar","symbol":"${r[1]}","source":"${r[2]}","interval":"1m","ts":"${new Date(r[0]).toISOString()}","open":${r[3]},"high":${r[4]},"low":${r[5]},"close":${r[6]},"volume":${r[7]}}\n`;
            if (out) ctl.enqueue(Buffer.from(out));
            const last = rows[rows.length - 1];
            if (!last) return ctl.close();
            after = [last[0], last[1], last[2]];
          },
        },
        { highWaterMark: 0 },
      );
      return new Response(body, { headers: { "Content-Type": "application/x-ndjson" } });
    },
  });
}

type ClientResult = { bars: number; seconds: number; outOfOrder: number };
async function client(args: string[]): Promise<ClientResult> {
  const proc = Bun.spawn([process.execPath, CLIENT, ...args], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(proc.stdout).text();
  if ((await proc.exited) !== 0) throw new Error(`the replay client failed (${args[0]})`);
  return JSON.parse(out.trim().split("\n").pop()!);
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
    console.log(`  ${name.padEnd(28)} ${r.bars} bars in ${r.seconds.toFixed(2)} s: ${Math.round(rate).toLocaleString("en")} messages/s${r.outOfOrder ? `, ${r.outOfOrder} OUT OF ORDER` : ""}${r.bars !== total ? `, expected ${total} bars` : ""}`);
    return rate;
  };
  try {
    console.log(`replay: ${total.toLocaleString("en")} one-minute bars of ${SYMBOLS} symbols (SQLite), one client`);
    // Warm-up (page cache, JIT): one pass of each reader, not timed.
    await client(["http", `http://127.0.0.1:${bare.port}/`]);
    await client(["http", `http://127.0.0.1:${server.port}/api/replay?symbols=${SYMBOL_LIST.join(",")}&interval=1m&from=${from}&to=${to}`]);
    const base = report("bare Bun + bun:sqlite", await client(["http", `http://127.0.0.1:${bare.port}/`]));
    const http = report("ticksync GET /api/replay", await client(["http", `http://127.0.0.1:${server.port}/api/replay?symbols=${SYMBOL_LIST.join(",")}&interval=1m&from=${from}&to=${to}`]));
    const op = JSON.stringify({ op: "replay", symbols: SYMBOL_LIST, interval: "1m", from, to, speed: "max" });
    const ws = report("ticksync WebSocket replay", await client(["ws", `ws://127.0.0.1:${server.port}/api/ws`, op]));
    console.log(`  /api/replay ÷ bare: ${(http / base).toFixed(2)}; WebSocket ÷ bare: ${(ws / base).toFixed(2)}`);
    console.log(`  aim (above ${AIM.toLocaleString("en")} messages/s, tardis-machine's figure): /api/replay ${http > AIM ? "met" : "missed"}, WebSocket ${ws > AIM ? "met" : "missed"}`);
  } finally {
    bare.stop(true);
    await hub.stop();
    server.stop(true);
    await store.close();
  }
  return ok;
}

if (import.meta.main) process.exit((await run()) ? 0 : 1);
