// Pocketbase bench: 32,120 bars (88 symbols × 365 sessions of the demo's random walk, no broken
// rows) from a SQLite store into a fresh Pocketbase, two ways, each on its own fresh server:
//   naive:    the SDK, one `collection.create` per record, in a loop (what people do today);
//   ticksync: `ticksync sync` (the CLI, start-up included): batch API, concurrency, upserts.
// Then a no-op re-sync (nothing changed since): its wall time, process start-up included.
//   bun scripts/bench/pocketbase.ts     (BENCH_PB_SYMBOLS=20 for a quick run)
import PocketBase from "pocketbase";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { DEMO_TICKERS, randomWalk, wseSessions } from "../gen-demo.ts";
import { sqliteStore } from "../../src/stores/sqlite.ts";
import { BAR_FIELDS, barToRecord } from "../../src/sinks/pocketbase.ts";
import type { Bar } from "../../src/domain/bar.ts";
import { startPocketbase } from "../services/pocketbase-instance.ts";

const SESSIONS = 365;
/** Target from the issue: ticksync ≥ 20× the naive loop's records/s. */
const RATIO_TARGET = 20;
const ROOT = join(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "main.ts");

const int = (x: number) => Math.round(x).toLocaleString("en-US");

export function benchBars(symbols: number): Bar[] {
  const days = wseSessions("2024-07-01", SESSIONS);
  const bars: Bar[] = [];
  DEMO_TICKERS.slice(0, symbols).forEach((ticker, i) => {
    for (const line of randomWalk(days, 20240701 + i)) {
      const [d, o, h, l, c, v] = line.split(",");
      bars.push({ source: "bench", symbol: `${ticker}.WA`, interval: "1d", ts: Date.parse(`${d}T00:00:00Z`), open: +o!, high: +h!, low: +l!, close: +c!, volume: +v! });
    }
  });
  return bars;
}

async function cliSync(config: string, password: string): Promise<{ ms: number; stdout: string; code: number }> {
  const started = performance.now();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TICKSYNC_")));
  const p = Bun.spawn([process.execPath, MAIN, "sync", "--config", config, "--json"], { env: { ...env, TICKSYNC_SINKS__APP__PASSWORD: password, TICKSYNC_LOG__LEVEL: "warn" }, stdout: "pipe", stderr: "inherit" });
  const [stdout, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
  return { ms: performance.now() - started, stdout, code };
}

export async function run(): Promise<boolean> {
  const symbols = Number(process.env.BENCH_PB_SYMBOLS ?? DEMO_TICKERS.length);
  const dir = mkdtempSync(join(tmpdir(), "ticksync-bench-pb-"));
  let ok = true;
  const servers: Awaited<ReturnType<typeof startPocketbase>>[] = [];
  try {
    const bars = benchBars(symbols);
    console.log(`pocketbase: ${int(bars.length)} bars (${symbols} symbols × ${SESSIONS} sessions) sqlite store → fresh Pocketbase (bun ${Bun.version}, ${cpus().length} cores)`);
    const dbPath = join(dir, "store.db");
    const store = sqliteStore(`sqlite:${dbPath}`);
    await store.migrate();
    const runId = await store.startRun({ kind: "ingest", source: "bench" });
    for (let i = 0; i < bars.length; i += 5000) await store.commitBatch({ runId, source: "bench", bars: bars.slice(i, i + 5000), quarantine: [], read: Math.min(5000, bars.length - i) });
    await store.finishRun(runId, { outcome: "succeeded", read: bars.length, inserted: bars.length, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
    await store.close();

    // --- naive: one create per record ----------------------------------------------------------
    const naiveServer = await startPocketbase();
    servers.push(naiveServer);
    const pb = new PocketBase(naiveServer.url);
    pb.autoCancellation(false);
    await pb.collection("_superusers").authWithPassword(naiveServer.email, naiveServer.password);
    await pb.collections.create({ name: "stock_data", type: "base", fields: BAR_FIELDS, indexes: ["CREATE UNIQUE INDEX idx_stock_data_key ON stock_data (source, symbol, interval, ts)"] });
    const records = bars.map((b) => {
      const { id: _id, ...rest } = barToRecord(b);
      return rest;
    });
    const naiveStarted = performance.now();
    for (const r of records) await pb.collection("stock_data").create(r);
    const naiveMs = performance.now() - naiveStarted;
    const naiveCount = (await pb.collection("stock_data").getList(1, 1)).totalItems;
    await naiveServer.destroy();
    servers.pop();

    // --- ticksync sync ---------------------------------------------------------------------------
    const server = await startPocketbase();
    servers.push(server);
    const config = join(dir, "ticksync.toml");
    writeFileSync(
      config,
      `[store]\nurl = "sqlite:${dbPath}"\n\n[sinks.app]\ntype = "pocketbase"\nurl = "${server.url}"\nemail = "${server.email}"\nenableBatchApi = true\n`,
    );
    const first = await cliSync(config, server.password);
    const firstSummary = first.code === 0 ? JSON.parse(first.stdout)[0] : null;
    const check = new PocketBase(server.url);
    await check.collection("_superusers").authWithPassword(server.email, server.password);
    const syncedCount = (await check.collection("stock_data").getList(1, 1)).totalItems;
    const batch = (await check.settings.getAll()).batch;
    const noop = await cliSync(config, server.password);
    const noopSummary = noop.code === 0 ? JSON.parse(noop.stdout)[0] : null;

    const naiveRate = records.length / (naiveMs / 1000);
    const syncRate = bars.length / (first.ms / 1000);
    const w = [28, 10, 10, 12];
    const line = (cells: string[]) => console.log(cells.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(" "));
    line(["", "records", "seconds", "records/s"]);
    line(["naive create loop", int(naiveCount), (naiveMs / 1000).toFixed(2), int(naiveRate)]);
    line([`ticksync sync (batch ${batch.maxRequests})`, int(syncedCount), (first.ms / 1000).toFixed(2), int(syncRate)]);
    console.log(`ratio ticksync / naive: ${(syncRate / naiveRate).toFixed(1)}× (target ≥ ${RATIO_TARGET}×: ${syncRate / naiveRate >= RATIO_TARGET ? "met" : "MISSED"})`);
    console.log(
      `no-op re-sync: ${(noop.ms / 1000).toFixed(3)} s wall (process start-up included), ${noopSummary ? `${(noopSummary.durationMs / 1000).toFixed(3)} s in the sync, ${noopSummary.read} records read` : "failed"}`,
    );
    if (first.code !== 0 || !firstSummary || firstSummary.sent !== bars.length || syncedCount !== bars.length) {
      console.error(`FAIL: ticksync sync exited ${first.code}, sent ${firstSummary?.sent}, Pocketbase holds ${syncedCount} of ${bars.length}`);
      ok = false;
    }
    if (naiveCount !== records.length) {
      console.error(`FAIL: the naive loop left ${naiveCount} of ${records.length} records`);
      ok = false;
    }
    if (noop.code !== 0 || noopSummary?.read !== 0) {
      console.error(`FAIL: the re-sync was not a no-op (exit ${noop.code}, read ${noopSummary?.read})`);
      ok = false;
    }
  } finally {
    for (const s of servers) await s.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  return ok;
}

if (import.meta.main) process.exit((await run()) ? 0 : 1);
