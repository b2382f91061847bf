// The SQLite store's batch write (src/stores/sqlite/writes.ts) against a row-by-row model of an
// upsert: seeded random batches in any order, with bars given twice, revisions, unchanged
// re-deliveries, batches larger than one multi-row INSERT, and a series whose stored range is
// stale, must leave the same rows, counts, series and events as upserting each row in turn.
import { Database } from "bun:sqlite";
import { afterAll, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import type { Bar } from "../src/domain/bar.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { BarEvent } from "../src/stores/events.ts";
import type { Store } from "../src/stores/types.ts";
import { rng, tempDir } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-sqlite-writes-");
const DAY = 86_400_000;
const T0 = Date.UTC(2024, 0, 1);
const SYMBOLS = ["PKN.WA", "CDR.WA", "ALE.WA", "KGH.WA", "PZU.WA"];
const opened: Store[] = [];
afterAll(async () => {
  for (const s of opened) await s.close();
});

type Model = { rows: Map<string, Bar>; series: Map<string, { first: number; last: number; n: number }> };
const keyOf = (b: Bar) => `${b.symbol}|${b.ts}`;
const same = (a: Bar, b: Bar) =>
  a.open === b.open && a.high === b.high && a.low === b.low && a.close === b.close && a.volume === b.volume && a.adjClose === b.adjClose && a.turnover === b.turnover && a.trades === b.trades;

/** Upsert each bar in turn: what the store must report and journal for the batch. */
function applyModel(m: Model, bars: Bar[]): { inserted: number; updated: number; unchanged: number; events: [string, string, number, number][] } {
  let inserted = 0;
  let updated = 0;
  const events: [string, string, number, number][] = [];
  for (const b of bars) {
    const had = m.rows.get(keyOf(b));
    if (!had) {
      inserted++;
      const s = m.series.get(b.symbol) ?? { first: b.ts, last: b.ts, n: 0 };
      m.series.set(b.symbol, { first: Math.min(s.first, b.ts), last: Math.max(s.last, b.ts), n: s.n + 1 });
    } else if (!same(had, b)) updated++;
    else continue;
    m.rows.set(keyOf(b), b);
    events.push([had ? "update" : "insert", b.symbol, b.ts, b.close]);
  }
  return { inserted, updated, unchanged: bars.length - inserted - updated, events };
}

function randomBar(r: () => number, symbol: string, day: number, revision: number): Bar {
  const close = Math.round((50 + day + revision * 0.5 + r()) * 100) / 100;
  const bar: Bar = { source: "src", symbol, interval: "1d", ts: T0 + day * DAY, open: close, high: close + 1, low: close - 1, close, volume: 1000 + day };
  if (day % 3 === 0) bar.trades = 10 + revision;
  if (day % 5 === 0) bar.adjClose = close;
  return bar;
}

test("batches in any order, with duplicates, revisions and a stale series range, store what row-by-row upserts would", async () => {
  const path = join(dir, "model.db");
  const store = sqliteStore(`sqlite:${path}`);
  opened.push(store);
  await store.migrate();
  const seen: BarEvent[] = [];
  store.onEvents((e) => seen.push(...e));
  const run = await store.startRun({ kind: "ingest", source: "src" });
  const model: Model = { rows: new Map(), series: new Map() };
  const r = rng(17);
  for (let batch = 0; batch < 12; batch++) {
    if (batch === 8) {
      // A series range narrower than the stored bars: rows taken for new are there already.
      const db = new Database(path);
      db.query("UPDATE series SET first_ts = last_ts WHERE symbol = 'CDR.WA'").run();
      db.close();
      model.series.set("CDR.WA", { ...model.series.get("CDR.WA")!, first: model.series.get("CDR.WA")!.last });
    }
    const size = batch === 0 ? 700 : 1 + Math.floor(r() * 900);
    const bars: Bar[] = [];
    for (let i = 0; i < size; i++) {
      const symbol = SYMBOLS[Math.floor(r() * SYMBOLS.length)]!;
      const day = Math.floor(r() * 400);
      // Most re-deliveries are unchanged; some are revisions.
      bars.push(randomBar(rng(day * 31 + symbol.length), symbol, day, r() < 0.2 ? 1 + Math.floor(r() * 3) : 0));
    }
    if (batch % 2 === 1) bars.sort((a, b) => a.ts - b.ts); // by day, every symbol interleaved
    const before = seen.length;
    const want = applyModel(model, bars);
    const got = await store.commitBatch({ runId: run, source: "src", bars, quarantine: [], read: bars.length });
    expect({ batch, inserted: got.inserted, updated: got.updated, unchanged: got.unchanged }).toEqual({ batch, inserted: want.inserted, updated: want.updated, unchanged: want.unchanged });
    expect(seen.slice(before).map((e) => [e.op, e.bar.symbol, e.bar.ts, e.bar.close])).toEqual(want.events);
  }
  expect(await store.countBars()).toBe(model.rows.size);
  const db = new Database(path, { readonly: true });
  const stored = db.query("SELECT symbol, ts, open, high, low, close, volume, adj_close, trades FROM bars ORDER BY symbol, ts").all() as any[];
  const series = db.query("SELECT symbol, first_ts, last_ts, bars FROM series ORDER BY symbol").all() as any[];
  db.close();
  const want = [...model.rows.values()].sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : a.ts - b.ts));
  expect(stored).toEqual(want.map((b) => ({ symbol: b.symbol, ts: b.ts, open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume, adj_close: b.adjClose ?? null, trades: b.trades ?? null })));
  expect(series).toEqual([...model.series].sort(([a], [b]) => (a < b ? -1 : 1)).map(([symbol, s]) => ({ symbol, first_ts: s.first, last_ts: s.last, bars: s.n })));
  // The journal replays what the listeners heard, by key: each event carries its bar as stored now
  // (the journal keeps keys, not copies), so a bar revised later replays with its last values.
  const replay = await store.eventsSince(0, 1_000_000);
  const now = (b: Bar): Bar => model.rows.get(keyOf(b))!;
  expect(seen.some((e) => JSON.stringify(e.bar) !== JSON.stringify(now(e.bar)))).toBe(true); // some bar was revised after its event
  expect(replay.map((e) => [e.id, e.op, e.bar])).toEqual(seen.map((e) => [e.id, e.op, now(e.bar)]));
});

test("an unchanged re-load writes nothing: no event, no journal entry, rows keep their run", async () => {
  const path = join(dir, "reload.db");
  const store = sqliteStore(`sqlite:${path}`);
  opened.push(store);
  await store.migrate();
  const bars: Bar[] = [];
  for (let day = 0; day < 600; day++) for (const symbol of SYMBOLS) bars.push(randomBar(rng(day), symbol, day, 0));
  const first = await store.startRun({ kind: "ingest", source: "src" });
  expect((await store.commitBatch({ runId: first, source: "src", bars, quarantine: [], read: bars.length })).inserted).toBe(bars.length);
  const bounds = await store.eventBounds();
  const again = await store.startRun({ kind: "ingest", source: "src" });
  const got = await store.commitBatch({ runId: again, source: "src", bars: [...bars].reverse(), quarantine: [], read: bars.length });
  expect(got).toEqual({ inserted: 0, updated: 0, unchanged: bars.length, quarantined: 0 });
  expect(await store.eventBounds()).toEqual(bounds);
  const db = new Database(path, { readonly: true });
  expect(db.query("SELECT count(*) AS n FROM bars WHERE run_id <> ?").get(first)).toEqual({ n: 0 });
  db.close();
});

test("a bulk batch checkpoints every 64 MiB of WAL, a small one at SQLite's 4 MiB", async () => {
  const path = join(dir, "checkpoints.db");
  const store = sqliteStore(`sqlite:${path}`);
  opened.push(store);
  await store.migrate();
  const run = await store.startRun({ kind: "ingest", source: "src" });
  const fileSize = () => statSync(path).size;
  const walPages = () => statSync(`${path}-wal`).size / 4096;
  const empty = fileSize();
  // Bulk batches (≥ 5,000 bars) well past 1,000 pages of WAL: no checkpoint yet, the file stays as it was.
  const symbols = Array.from({ length: 40 }, (_, i) => `S${i}.WA`);
  for (let b = 0; b < 3; b++) {
    const bars: Bar[] = [];
    for (let day = b * 250; day < (b + 1) * 250; day++) for (const symbol of symbols) bars.push(randomBar(rng(day), symbol, day, 0));
    await store.commitBatch({ runId: run, source: "src", bars, quarantine: [], read: bars.length });
  }
  expect(walPages()).toBeGreaterThan(1_500);
  expect(fileSize()).toBe(empty);
  // A small batch (a live feed's) commits with SQLite's own threshold: its commit checkpoints.
  const one = [randomBar(rng(1), "PKN.WA", 900, 0)];
  await store.commitBatch({ runId: run, source: "src", bars: one, quarantine: [], read: 1 });
  expect(fileSize()).toBeGreaterThan(empty + 1_000 * 4096);
});
