// Deleting single bars (a table source's reconciliation): the SQLite and PostgreSQL stores keep
// their series exact, journal "delete" events that live listeners and replay both see (Postgres:
// another connection too, through NOTIFY), take the bars' extras with them, and the PostgreSQL
// store's materialised rollups are rolled up again without the deleted bars; the Pocketbase sync
// removes the deleted records (not one the store has again) from a real Pocketbase server.
// With CI=true a missing Pocketbase or PostgreSQL fails; without CI those cases skip, saying why.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as v from "valibot";
import PocketBase from "pocketbase";
import postgres from "postgres";
import { tempDir, waitFor, pocketbaseForTests } from "./helpers.ts";
import { STORES } from "./stores.ts";
import { parsePgUrl } from "../src/stores/postgres/index.ts";
import type { Store } from "../src/stores/types.ts";
import type { BarEvent } from "../src/stores/events.ts";
import type { Bar, Interval } from "../src/domain/bar.ts";
import { rollup } from "../src/domain/rollup.ts";
import { pocketbaseSink, pocketbaseSinkConfigSchema, recordId } from "../src/sinks/pocketbase/index.ts";
import { runSync } from "../src/pipeline/sync.ts";
import { startPocketbase, type PocketbaseInstance } from "../scripts/services/pocketbase-instance.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const { bin: pbBin, why: pbWhy } = pocketbaseForTests("bar deletes");

const dir = tempDir("ticksync-deletes-");
const DAY = 86_400_000;
const MIN = 60_000;
const bar = (symbol: string, i: number, close = 10 + i): Bar => ({ source: "seed", symbol, interval: "1d", ts: Date.UTC(2024, 0, 2) + i * DAY, open: close, high: close + 1, low: close - 1, close, volume: 100 + i });
const sqlite = STORES.find((s) => s.kind === "sqlite")!;
const pg = STORES.find((s) => s.kind === "postgres")!;

async function storeWith(bars: Bar[], kind = sqlite, url = kind.freshUrl(dir)): Promise<Store> {
  const store = kind.open(url);
  await store.migrate();
  await commit(store, bars);
  return store;
}

async function commit(store: Store, bars: Bar[]) {
  const runId = await store.startRun({ kind: "ingest", source: "seed" });
  await store.commitBatch({ runId, source: "seed", bars, quarantine: [], read: bars.length });
  await store.finishRun(runId, { outcome: "succeeded", read: bars.length, inserted: bars.length, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
}

const keyOf = (b: Bar) => ({ symbol: b.symbol, interval: b.interval, ts: b.ts });

for (const kind of [sqlite, pg])
  describe.skipIf(kind.unavailable !== null)(`${kind.kind} store deletes${kind.unavailable ? ` (skipped: ${kind.unavailable})` : ""}`, () => {
    test("batches whose bars were all deleted since give no events, and reading goes on past them", async () => {
      // Five batches of one bar each; the first three bars are deleted. The journal keeps keys, so
      // those batches replay nothing, and a read from the start must not stop at them (the tailer
      // takes fewer events than asked for as "no more": it would never read on).
      const bars = [0, 1, 2, 3, 4].map((i) => bar("KGH.WA", i));
      const store = await storeWith([], kind);
      for (const b of bars) await commit(store, [b]);
      const runId = await store.startRun({ kind: "ingest", source: "seed" });
      expect(await store.deleteBarKeys!({ runId, source: "seed", keys: bars.slice(0, 3).map(keyOf) })).toBe(3);
      const events = await store.eventsSince(0, 100);
      expect(events.map((e): [string, number] => [e.op, e.bar.ts])).toEqual([
        ["insert", bars[3]!.ts],
        ["insert", bars[4]!.ts],
        ...bars.slice(0, 3).map((b): [string, number] => ["delete", b.ts]),
      ]);
      // From an id inside the deleted batches, and with a small limit, the same events in order.
      const ids = events.map((e) => e.id);
      expect((await store.eventsSince(ids[0]! - 1, 1)).map((e) => e.id)).toEqual([ids[0]!]);
      expect((await store.eventsSince(ids[0]!, 100)).map((e) => e.id)).toEqual(ids.slice(1));
      await store.close();
    });

    test("a deleted bar's extra columns go with it; a kept bar's stay", async () => {
      const bars = [0, 1].map((i) => bar("PKN.WA", i));
      const store = await storeWith([], kind);
      const runId = await store.startRun({ kind: "ingest", source: "seed" });
      await store.commitBatch({ runId, source: "seed", bars, quarantine: [], read: 2, extras: bars.map((b) => ({ symbol: b.symbol, interval: b.interval, ts: b.ts, values: { rsi: 50 + b.ts / 1e12 } })) });
      expect((await store.barExtras(bars)).size).toBe(2);
      await store.deleteBarKeys!({ runId, source: "seed", keys: [keyOf(bars[0]!)] });
      expect([...(await store.barExtras(bars)).values()]).toEqual([{ rsi: 50 + bars[1]!.ts / 1e12 }]);
      await store.close();
    });

    test("series stay exact, the journal and live listeners get delete events, an emptied series goes", async () => {
      const bars = [0, 1, 2, 3, 4].map((i) => bar("PKN.WA", i));
      const url = kind.freshUrl(dir);
      const store = await storeWith([...bars, bar("CDR.WA", 0)], kind, url);
      const live: BarEvent[] = [];
      store.onEvents((e) => live.push(...e));
      // Another process (Postgres: another connection) hears of the deletes through NOTIFY.
      let notified = 0;
      const other = kind.kind === "postgres" ? kind.open(url) : null;
      const unwatch = other ? await other.watchEvents!(() => notified++) : null;
      const before = (await store.eventBounds()).last;
      const runId = await store.startRun({ kind: "ingest", source: "seed" });
      const keys = [bars[0]!, bars[2]!, bar("PKN.WA", 9)].map(keyOf);
      expect(await store.deleteBarKeys!({ runId, source: "seed", keys })).toBe(2);
      const pkn = (await store.listSeries({ symbol: "PKN.WA" }))[0]!;
      expect(pkn).toMatchObject({ bars: 3, firstTs: bars[1]!.ts, lastTs: bars[4]!.ts });
      expect(await store.countBars()).toBe(4);
      expect((await store.queryBars({ symbol: "PKN.WA", interval: "1d", limit: 10 })).map((b) => b.ts)).toEqual([1, 3, 4].map((i) => bars[i]!.ts));
      const replayed = await store.eventsSince(before, 100);
      expect(replayed.map((e) => [e.op, e.bar])).toEqual([["delete", bars[0]!], ["delete", bars[2]!]]);
      expect(live.map((e) => e.id)).toEqual(replayed.map((e) => e.id));
      if (other) {
        await waitFor(async () => notified > 0, 10_000, "a NOTIFY of the deletes");
        expect((await other.eventsSince(before, 100)).map((e) => [e.id, e.op, e.bar])).toEqual(replayed.map((e) => [e.id, e.op, e.bar]));
      }
      // The last bar of the series: first and last follow; the newest deleted, the last ts moves back.
      await store.deleteBarKeys!({ runId, source: "seed", keys: [keyOf(bars[4]!)] });
      expect((await store.listSeries({ symbol: "PKN.WA" }))[0]).toMatchObject({ bars: 2, firstTs: bars[1]!.ts, lastTs: bars[3]!.ts });
      // The last bar of a series: the series goes.
      await store.deleteBarKeys!({ runId, source: "seed", keys: [keyOf(bar("CDR.WA", 0))] });
      expect(await store.listSeries({ symbol: "CDR.WA" })).toEqual([]);
      // Stored again after an emptied series (and after the deleted newest bar): the series counts from there.
      await commit(store, [bar("CDR.WA", 3), bars[4]!]);
      expect((await store.listSeries({ symbol: "CDR.WA" }))[0]).toMatchObject({ bars: 1, firstTs: bar("CDR.WA", 3).ts, lastTs: bar("CDR.WA", 3).ts });
      expect((await store.listSeries({ symbol: "PKN.WA" }))[0]).toMatchObject({ bars: 3, firstTs: bars[1]!.ts, lastTs: bars[4]!.ts });
      // Sinks read only the deletes, among inserts journaled before and after them.
      await commit(store, [bar("PKN.WA", 7)]);
      const deletes = await store.deletesSince!(0, 100);
      const want = [bars[0]!, bars[2]!, bars[4]!, bar("CDR.WA", 0)];
      expect(deletes.map((e) => [e.op, e.bar.symbol, e.bar.ts])).toEqual(want.map((b) => ["delete", b.symbol, b.ts]));
      expect((await store.deletesSince!(deletes[0]!.id, 1)).map((e) => e.id)).toEqual([deletes[1]!.id]);
      expect((await store.deletesSince!(deletes[1]!.id, 100)).map((e) => e.id)).toEqual(deletes.slice(2).map((e) => e.id));
      expect(await store.deletesSince!(deletes[3]!.id, 100)).toEqual([]);
      // The whole replay: inserts, deletes and the inserts after, in id order.
      const all = await store.eventsSince(0, 1000);
      expect(all.filter((e) => e.op === "delete").map((e) => e.id)).toEqual(deletes.map((e) => e.id));
      await unwatch?.();
      await other?.close();
      await store.close();
    });
  });

describe.skipIf(pg.unavailable !== null)(`PostgreSQL rollups after deletes${pg.unavailable ? ` (skipped: ${pg.unavailable})` : ""}`, () => {
  /** `n` one-minute bars of PKN.WA from `start`, in the WSE session. */
  const minutes = (start: string, n: number, seed: number): Bar[] =>
    Array.from({ length: n }, (_, k) => {
      const p = 100 + Math.sin((seed + k) / 5) * 5;
      return { source: "seed", symbol: "PKN.WA", interval: "1m" as Interval, ts: Date.parse(start) + k * MIN, open: p, high: p + 1, low: p - 1, close: p + 0.25, volume: 10 + ((seed + k) % 7) };
    });
  // Daily bars of CDR.WA over three weeks of two months (1w and 1mo from 1d).
  const daily = ["2024-01-24", "2024-01-25", "2024-01-26", "2024-01-29", "2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02", "2024-02-05"].map(
    (d, i): Bar => ({ source: "seed", symbol: "CDR.WA", interval: "1d", ts: Date.parse(`${d}T00:00:00Z`), open: 50 + i, high: 53 + i, low: 48 + i, close: 51 + i, volume: 1000 + i }),
  );

  async function page(store: Store, symbol: string, interval: Interval) {
    return store.rollupPage!({ symbol, interval, limit: 1000 });
  }

  test("a week and a month are rolled up again without the deleted bars (daily and intraday series)", async () => {
    const url = pg.freshUrl(dir);
    // Two sessions (Tuesday and Wednesday, CET: 08:00-16:00Z).
    const intraday = [...minutes("2024-01-30T08:00:00Z", 480, 0), ...minutes("2024-01-31T08:00:00Z", 480, 500)];
    const store = await storeWith([...daily, ...intraday], pg, url);
    await store.rollUp!();
    for (const i of ["1w", "1mo"] as Interval[]) expect((await page(store, "CDR.WA", i))!.bars).toEqual(rollup(daily, i, "WSE"));
    for (const i of ["5m", "1d", "1w"] as Interval[]) expect((await page(store, "PKN.WA", i))!.bars).toEqual(rollup(intraday, i, "WSE"));

    // The week's last trading day and the month's first (a week across two months), the
    // session's first minute (its 5m bucket's open), and one minute of another day.
    const gone = [daily[5]!, daily[6]!, intraday[0]!, intraday[480 + 100]!];
    const runId = await store.startRun({ kind: "ingest", source: "seed" });
    // A catch-up in progress (the rollups' lock held alone) is waited for: it cannot clear marks it did not read.
    const sql = postgres(parsePgUrl(url).url, { max: 1, onnotice: () => {} });
    const catchUp = await sql.reserve();
    await catchUp`BEGIN`;
    await catchUp`SELECT pg_advisory_xact_lock(hashtext(${`${parsePgUrl(url).schema}.ticksync.rollups`}))`;
    let done = false;
    const deleting = store.deleteBarKeys!({ runId, source: "seed", keys: gone.map(keyOf) }).then((n) => ((done = true), n));
    await Bun.sleep(300);
    expect(done).toBe(false);
    await catchUp`COMMIT`;
    catchUp.release();
    expect(await deleting).toBe(4);
    // Until the rollups have the deletes, pages are rolled up on read (null here).
    expect(await page(store, "CDR.WA", "1w")).toBeNull();
    expect(await page(store, "PKN.WA", "1w")).toBeNull();
    await store.finishRun(runId, { outcome: "succeeded", read: 0, inserted: 0, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
    expect(await store.rollupPending!()).toBe(1);
    await store.rollUp!();
    expect(await store.rollupPending!()).toBe(0);
    const keptDaily = daily.filter((b) => !gone.includes(b));
    const keptIntraday = intraday.filter((b) => !gone.includes(b));
    for (const i of ["1w", "1mo"] as Interval[]) expect((await page(store, "CDR.WA", i))!.bars).toEqual(rollup(keptDaily, i, "WSE"));
    for (const i of ["5m", "1h", "1d", "1w", "1mo"] as Interval[]) expect((await page(store, "PKN.WA", i))!.bars).toEqual(rollup(keptIntraday, i, "WSE"));
    // Nothing is left marked for the rollups.
    try {
      const [d] = await sql.unsafe(`SELECT count(*)::int AS n FROM "${parsePgUrl(url).schema}".rollup_dirty`);
      expect(d!.n).toBe(0);
    } finally {
      await sql.end();
    }
    await store.close();
  });
});

describe.skipIf(pbBin === null)(`Pocketbase sync of deletes${pbWhy ? ` (skipped: ${pbWhy})` : ""}`, () => {
  let pb: PocketbaseInstance;
  beforeAll(async () => {
    pb = await startPocketbase({ bin: pbBin! });
  });
  afterAll(async () => {
    await pb?.destroy();
  });

  test("a deleted bar's record is removed; one deleted and stored again stays", async () => {
    const bars = [0, 1, 2, 3].map((i) => bar("PKN.WA", i));
    const store = await storeWith(bars);
    const collection = `del${Date.now().toString(36)}`;
    const cfg = v.parse(pocketbaseSinkConfigSchema, { type: "pocketbase", url: pb.url, email: pb.email, password: pb.password, collection, enableBatchApi: true });
    const sink = pocketbaseSink("app", cfg);
    expect(await runSync({ store, sink })).toMatchObject({ outcome: "succeeded", sent: 4, deleted: 0 });

    const runId = await store.startRun({ kind: "ingest", source: "seed" });
    await store.deleteBarKeys!({ runId, source: "seed", keys: [bars[1]!, bars[2]!].map((b) => ({ symbol: b.symbol, interval: b.interval, ts: b.ts })) });
    await store.finishRun(runId, { outcome: "succeeded", read: 0, inserted: 0, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
    // bars[2] comes back (changed) before the sync: the sync sends it and does not remove it.
    await commit(store, [bar("PKN.WA", 2, 50)]);
    expect(await runSync({ store, sink })).toMatchObject({ outcome: "succeeded", sent: 1, deleted: 1 });

    const c = new PocketBase(pb.url);
    await c.collection("_superusers").authWithPassword(pb.email, pb.password);
    const records = await c.collection(collection).getFullList({ sort: "ts" });
    expect(records.map((r) => [r.id, r.close])).toEqual([0, 2, 3].map((i) => { const b = i === 2 ? bar("PKN.WA", 2, 50) : bars[i]!; return [recordId(b.source, b.symbol, b.interval, b.ts), b.close]; }));
    // Nothing left to do: a sync deletes nothing more.
    expect(await runSync({ store, sink })).toMatchObject({ outcome: "succeeded", sent: 0, deleted: 0 });
    await store.close();
  }, 60_000);
});
