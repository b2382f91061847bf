// What the replaced WIG80 sync service and its app read from Pocketbase, against a real
// Pocketbase (a private instance, as test/pocketbase.test.ts starts it) and real PostgreSQL /
// QuestDB: extra columns of a table source (rsi, sma_20) carried through each store into record
// fields and compared by verify; the market_updates snapshot per cycle; alerts mirrored as they
// fire and resolve; bare symbols (PKN), with two markets' PKN refused.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import PocketBase from "pocketbase";
import postgres from "postgres";
import { join } from "node:path";
import { cli, tempDir, writeFile, pocketbaseForTests } from "./helpers.ts";
import { startPocketbase, type PocketbaseInstance } from "../scripts/services/pocketbase-instance.ts";
import { PG_URL, STORES } from "./stores.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import type { Bar } from "../src/domain/bar.ts";
import type { Store } from "../src/stores/types.ts";
import { pocketbaseSink, recordId, type PocketbaseSinkConfig } from "../src/sinks/pocketbase/index.ts";
import { runSync } from "../src/pipeline/sync.ts";
import { verifySinkAll } from "../src/pipeline/verify-sink.ts";
import { marketStatus } from "../src/pipeline/sync-mirrors.ts";
import { migrateStore } from "../src/pipeline/migrate.ts";
import { createAlerts } from "../src/monitor/alerts.ts";
import { setLogLevel } from "../src/lib/log.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();
setLogLevel("error");

const { bin, why } = pocketbaseForTests();

const dir = tempDir("ticksync-pbmirror-");
let n = 0;

function sinkConfig(pb: PocketbaseInstance, extra: Partial<PocketbaseSinkConfig> = {}): PocketbaseSinkConfig {
  return {
    type: "pocketbase",
    url: pb.url,
    email: pb.email,
    password: pb.password,
    collection: `bars_${++n}`,
    enableBatchApi: true,
    batchSize: 50,
    concurrency: 2,
    timeoutMs: 10_000,
    retryForS: 5,
    readRule: null,
    bars: true,
    tables: {},
    ...extra,
  };
}

async function admin(pb: PocketbaseInstance): Promise<PocketBase> {
  const c = new PocketBase(pb.url);
  c.autoCancellation(false);
  await c.collection("_superusers").authWithPassword(pb.email, pb.password);
  return c;
}

const day = (d: number) => Date.UTC(2024, 0, d);
const bar = (symbol: string, ts: number, close: number, volume = 1000): Bar => ({ source: "seed", symbol, interval: "1d", ts, open: close, high: close + 1, low: close - 1, close, volume });

async function sqliteWith(bars: Bar[]): Promise<Store> {
  const store = sqliteStore(`sqlite:${join(dir, `store-${++n}.db`)}`);
  await store.migrate();
  await addBars(store, bars);
  return store;
}

async function addBars(store: Store, bars: Bar[]) {
  const runId = await store.startRun({ kind: "ingest", source: "seed" });
  await store.commitBatch({ runId, source: "seed", bars, quarantine: [], read: bars.length });
  await store.finishRun(runId, { outcome: "succeeded", read: bars.length, inserted: bars.length, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
}

describe.skipIf(!bin)(`Pocketbase mirrors and extras${why ? ` (skipped: ${why})` : ""}`, () => {
  let pb: PocketbaseInstance;
  let c: PocketBase;
  beforeAll(async () => {
    pb = await startPocketbase({ bin: bin! });
    c = await admin(pb);
  }, 120_000);
  afterAll(async () => {
    await pb?.destroy();
  });

  // Extras from a PostgreSQL table, through each store, into record fields.
  const table = `wig80_historical_x_${process.pid}_${Date.now().toString(36)}`;
  const sql = PG_URL ? postgres(PG_URL, { max: 1, onnotice: () => {} }) : null;
  afterAll(async () => {
    await sql?.unsafe(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    await sql?.end();
  });
  let tableReady: Promise<void> | null = null;
  const makeTable = () =>
    (tableReady ??= (async () => {
      await sql!.unsafe(`CREATE TABLE ${table} (symbol text, ts timestamptz, open float8, high float8, low float8, close float8, volume bigint, rsi float8, sma_20 numeric)`);
      for (let d = 2; d <= 6; d++)
        for (const [i, s] of ["PKN", "CDR"].entries()) {
          const p = 50 + i * 10 + d;
          // Day 2: rsi not defined yet (NULL); CDR on day 4: rsi NaN, a row to quarantine.
          const rsi = d === 2 ? null : s === "CDR" && d === 4 ? Number.NaN : 40 + d + i / 4;
          await sql!`INSERT INTO ${sql!(table)} VALUES (${s}, ${new Date(day(d))}, ${p}, ${p + 1}, ${p - 1}, ${p + 0.5}, ${1000 + d}, ${rsi}, ${(p + 0.25).toFixed(4)})`;
        }
    })());

  for (const kind of STORES) {
    test.skipIf(!PG_URL || kind.unavailable !== null)(`extras from a PostgreSQL table through the ${kind.kind} store into Pocketbase fields; verify sees a changed one`, async () => {
      await makeTable();
      const storeUrl = kind.freshUrl(dir);
      const cfg = writeFile(
        join(dir, `extras-${kind.kind}.toml`),
        `[store]\nurl = "${storeUrl}"\n[sources.seed]\ntype = "postgres"\nurl = "${PG_URL}"\ntable = "${table}"\nmarket = "WSE"\nextraColumns = ["rsi", "sma_20"]\n`,
      );
      const ing = await cli(["ingest", "--config", cfg, "--json"], { env: { TICKSYNC_LOG__LEVEL: "error" } });
      expect(ing.stderr).toBe("");
      expect(JSON.parse(ing.stdout)[0]).toMatchObject({ read: 10, inserted: 9, quarantined: 1 });
      const store = kind.open(storeUrl);
      try {
        const q = await store.listQuarantine({ limit: 10 });
        expect(q.map((r) => [r.symbol, r.rule, r.reason])).toEqual([["CDR.WA", "number", "extra rsi NaN is not a finite number"]]);

        const sink = pocketbaseSink("app", sinkConfig(pb, { fields: { rsi: "rsi", sma20: "sma_20" } }));
        const s = await runSync({ store, sink });
        expect(s).toMatchObject({ outcome: "succeeded", sent: 9, rejected: 0 });
        const recs = await c.collection(sink.collection).getFullList({ sort: "symbol,ts" });
        expect(recs.length).toBe(9);
        const pkn = recs.filter((r) => r.symbol === "PKN.WA");
        // Day 2: no rsi (0, Pocketbase's empty number), sma_20 a NUMERIC that came as text.
        expect(pkn.map((r) => [r.ts.slice(0, 10), r.rsi, r.sma20])).toEqual([
          ["2024-01-02", 0, 52.25],
          ["2024-01-03", 43, 53.25],
          ["2024-01-04", 44, 54.25],
          ["2024-01-05", 45, 55.25],
          ["2024-01-06", 46, 56.25],
        ]);
        expect(recs.find((r) => r.symbol === "CDR.WA" && r.ts.startsWith("2024-01-05"))).toMatchObject({ rsi: 45.25, sma20: 65.25, close: 65.5 });

        const v1 = await verifySinkAll(store, sink);
        expect(v1[0]).toMatchObject({ ok: true, storeRecords: 9, sinkRecords: 9 });
        // Someone changes an extra in Pocketbase: verify finds that record, repair puts it back.
        const id = recordId("seed", "PKN.WA", "1d", day(4));
        await c.collection(sink.collection).update(id, { rsi: 99 });
        const v2 = await verifySinkAll(store, sink, { repair: true });
        expect(v2[0]).toMatchObject({ ok: false, changed: 1, missing: 0, extra: 0, repaired: { sent: 1, deleted: 0, rejected: 0 } });
        expect(v2[0]!.differing.map((d) => d.key)).toEqual(["PKN.WA|2024-01-04"]);
        expect((await c.collection(sink.collection).getOne(id)).rsi).toBe(44);
        expect((await verifySinkAll(store, sink))[0]!.ok).toBe(true);
      } finally {
        await store.close();
      }
    }, 120_000);
  }

  for (const kind of STORES) {
    test.skipIf(kind.unavailable !== null)(`an extra that changes while its bar does not is sent again (${kind.kind} store)`, async () => {
      const store = kind.open(kind.freshUrl(dir));
      await store.migrate();
      const b = bar("PKN.WA", day(2), 50);
      const commit = async (rsi: number) => {
        const runId = await store.startRun({ kind: "ingest", source: "seed" });
        const r = await store.commitBatch({ runId, source: "seed", bars: [b], quarantine: [], read: 1, extras: [{ symbol: b.symbol, interval: "1d", ts: b.ts, values: { rsi } }] });
        await store.finishRun(runId, { outcome: "succeeded", read: 1, inserted: r.inserted, updated: r.updated, unchanged: r.unchanged, quarantined: 0, fromTs: null, toTs: null, quality: null });
        return r;
      };
      try {
        await commit(40);
        const sink = pocketbaseSink("app", sinkConfig(pb, { fields: { rsi: "rsi" } }));
        expect(await runSync({ store, sink })).toMatchObject({ outcome: "succeeded", sent: 1 });
        // The bar's prices are the same; its extras are not: an update.
        expect(await commit(41)).toMatchObject({ inserted: 0, updated: 1, unchanged: 0 });
        expect(await runSync({ store, sink })).toMatchObject({ outcome: "succeeded", sent: 1 });
        expect((await c.collection(sink.collection).getOne(recordId("seed", "PKN.WA", "1d", b.ts))).rsi).toBe(41);
        expect(await commit(41)).toMatchObject({ inserted: 0, updated: 0, unchanged: 1 });
        expect(await runSync({ store, sink })).toMatchObject({ outcome: "succeeded", sent: 0 });
        expect(await store.barExtras([b])).toEqual(new Map([[`seed\u0000PKN.WA\u00001d\u0000${b.ts}`, { rsi: 41 }]]));
      } finally {
        await store.close();
      }
    }, 60_000);
  }

  test("market_updates: one record per symbol after a cycle; the next cycle updates it", async () => {
    // 2024-01-02..05 are WSE trading days (Tue..Fri).
    const store = await sqliteWith([bar("PKN.WA", day(2), 50, 100), bar("PKN.WA", day(3), 52, 200), bar("CDR.WA", day(2), 100, 10), bar("CDR.WA", day(3), 95, 20)]);
    const col = `market_updates_${++n}`;
    const sink = pocketbaseSink("app", sinkConfig(pb, { mirrors: { market_updates: col } }));
    expect(await runSync({ store, sink })).toMatchObject({ outcome: "succeeded", sent: 4 });
    let recs = await c.collection(col).getFullList({ sort: "symbol" });
    const status = marketStatus("WSE", Date.now());
    expect(recs.map((r) => [r.symbol, r.price, r.previous_close, r.change, r.change_percent, r.volume, r.time.slice(0, 10), r.market, r.market_status])).toEqual([
      ["CDR.WA", 95, 100, -5, -5, 20, "2024-01-03", "WSE", status],
      ["PKN.WA", 52, 50, 2, 4, 200, "2024-01-03", "WSE", status],
    ]);
    const first = recs.find((r) => r.symbol === "PKN.WA")!;

    await addBars(store, [bar("PKN.WA", day(4), 51.48, 300)]);
    expect(await runSync({ store, sink })).toMatchObject({ outcome: "succeeded", sent: 1 });
    recs = await c.collection(col).getFullList({ sort: "symbol" });
    expect(recs.length).toBe(2);
    const pkn = recs.find((r) => r.symbol === "PKN.WA")!;
    expect(pkn.id).toBe(first.id);
    expect([pkn.price, pkn.previous_close, pkn.change, pkn.change_percent, pkn.volume, pkn.time.slice(0, 10)]).toEqual([51.48, 52, -0.52, -1, 300, "2024-01-04"]);

    // A quiet cycle leaves the records as they are; a corrected close of the same bar updates its symbol's.
    expect(await runSync({ store, sink })).toMatchObject({ outcome: "succeeded", sent: 0 });
    expect((await c.collection(col).getOne(first.id)).price).toBe(51.48);
    await addBars(store, [bar("PKN.WA", day(4), 53, 300)]);
    expect(await runSync({ store, sink })).toMatchObject({ outcome: "succeeded", sent: 1 });
    expect(await c.collection(col).getOne(first.id)).toMatchObject({ price: 53, change: 1, change_percent: 1.9231 });
    expect(await c.collection(col).getFullList()).toHaveLength(2);
    await store.close();
  }, 60_000);

  test("market status words: WSE on a weekday session, a weekend and a holiday", () => {
    expect(marketStatus("WSE", Date.parse("2024-01-03T10:00:00Z"))).toBe("OPEN");
    expect(marketStatus("WSE", Date.parse("2024-01-06T10:00:00Z"))).toBe("WEEKEND");
    expect(marketStatus("WSE", Date.parse("2024-01-01T10:00:00Z"))).toBe("HOLIDAY");
    expect(marketStatus("WSE", Date.parse("2024-01-03T22:00:00Z"))).toBe("CLOSED");
  });

  test("alerts: one record per rule, mirrored when it fires and when it resolves", async () => {
    const store = await sqliteWith([]);
    const col = `alerts_${++n}`;
    const sink = pocketbaseSink("app", sinkConfig(pb, { mirrors: { alerts: col } }));
    const notifier = sink.alertsNotifier();
    expect(notifier).not.toBeNull();
    let pending = 10;
    const alerts = createAlerts(
      store,
      { intervalS: 30, repeatS: 0, rules: [{ kind: "sink_backlog", name: "app-backlog", severity: "warning", sink: "app", maxPending: 5 }] },
      { isOpen: () => true, sinkBacklog: async () => pending },
      [notifier!],
    );
    await alerts.evaluate();
    let recs = await c.collection(col).getFullList();
    expect(recs.length).toBe(1);
    expect(recs[0]).toMatchObject({ name: "app-backlog", kind: "sink_backlog", severity: "warning", status: "firing", value: 10, resolved_at: "" });
    expect(recs[0]!.since).not.toBe("");
    pending = 0;
    await alerts.evaluate();
    recs = await c.collection(col).getFullList();
    expect(recs.length).toBe(1);
    expect(recs[0]).toMatchObject({ name: "app-backlog", status: "resolved" });
    expect(recs[0]!.resolved_at).not.toBe("");
    // A sink without mirrors.alerts offers no notifier.
    expect(pocketbaseSink("x", sinkConfig(pb)).alertsNotifier()).toBeNull();
    await store.close();
  }, 60_000);

  test('symbolField = "bare": records say PKN, verify agrees; two markets\' PKN are refused', async () => {
    const store = await sqliteWith([bar("PKN.WA", day(2), 50), bar("PKN.WA", day(3), 51), bar("CDR.WA", day(2), 100)]);
    const mu = `market_updates_${++n}`;
    const sink = pocketbaseSink("app", sinkConfig(pb, { symbolField: "bare", mirrors: { market_updates: mu } }));
    expect(await runSync({ store, sink })).toMatchObject({ outcome: "succeeded", sent: 3 });
    const recs = await c.collection(sink.collection).getFullList({ sort: "symbol,ts" });
    expect(recs.map((r) => r.symbol)).toEqual(["CDR", "PKN", "PKN"]);
    expect(recs[1]!.id).toBe(recordId("seed", "PKN.WA", "1d", day(2)));
    expect((await c.collection(mu).getFullList({ sort: "symbol" })).map((r) => [r.symbol, r.full_symbol])).toEqual([
      ["CDR", "CDR.WA"],
      ["PKN", "PKN.WA"],
    ]);
    expect((await verifySinkAll(store, sink))[0]).toMatchObject({ ok: true, storeRecords: 3, sinkRecords: 3 });

    await addBars(store, [bar("PKN.US", day(2), 7)]);
    const s = await runSync({ store, sink });
    expect(s.outcome).toBe("failed");
    expect(s.error).toContain('symbolField = "bare" would give two markets\' symbols one record symbol (PKN: PKN.US, PKN.WA)');
    expect(s.sent).toBe(0);
    expect(await c.collection(sink.collection).getFullList()).toHaveLength(3);
    await expect(verifySinkAll(store, sink)).rejects.toThrow("PKN: PKN.US, PKN.WA");
    await store.close();
  }, 60_000);
});

test("a migration between stores carries the extras", async () => {
  const targets = STORES.filter((s) => s.unavailable === null);
  const from = sqliteStore(`sqlite:${join(dir, `migrate-from-${++n}.db`)}`);
  await from.migrate();
  const bars = [bar("PKN.WA", day(2), 50), bar("PKN.WA", day(3), 51), bar("CDR.WA", day(2), 100)];
  const runId = await from.startRun({ kind: "ingest", source: "seed" });
  await from.commitBatch({ runId, source: "seed", bars, quarantine: [], read: 3, extras: [{ symbol: "PKN.WA", interval: "1d", ts: day(3), values: { rsi: 55.5, sma_20: 50.25 } }] });
  await from.finishRun(runId, { outcome: "succeeded", read: 3, inserted: 3, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
  const want = new Map([[`seed\u0000PKN.WA\u00001d\u0000${day(3)}`, { rsi: 55.5, sma_20: 50.25 }]]);
  for (const t of targets) {
    const to = t.open(t.freshUrl(dir));
    await to.migrate();
    try {
      expect(await to.hasExtras()).toBe(false);
      await migrateStore(from, to);
      expect(await to.hasExtras()).toBe(true);
      expect(await to.barExtras(bars)).toEqual(want);
    } finally {
      await to.close();
    }
  }
  await from.close();
}, 60_000);

test("retention deletes the extras of the bars it deletes", async () => {
  for (const t of STORES.filter((s) => s.unavailable === null && s.kind !== "questdb")) {
    const store = t.open(t.freshUrl(dir));
    await store.migrate();
    try {
      const bars = [bar("PKN.WA", day(2), 50), bar("PKN.WA", day(3), 51)];
      const runId = await store.startRun({ kind: "ingest", source: "seed" });
      const extras = bars.map((b) => ({ symbol: b.symbol, interval: "1d" as const, ts: b.ts, values: { rsi: b.close } }));
      await store.commitBatch({ runId, source: "seed", bars, quarantine: [], read: 2, extras });
      await store.finishRun(runId, { outcome: "succeeded", read: 2, inserted: 2, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
      expect(await store.deleteBars!({ interval: "1d", before: day(3) })).toBe(1);
      expect(await store.barExtras(bars)).toEqual(new Map([[`seed\u0000PKN.WA\u00001d\u0000${day(3)}`, { rsi: 51 }]]));
    } finally {
      await store.close();
    }
  }
}, 60_000);
