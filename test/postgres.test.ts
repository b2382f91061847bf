// What only the PostgreSQL store does: yearly range partitions made on demand (no TimescaleDB
// on Debian), and the materialised rollups refreshed for a run (test/rollup-pg.test.ts has the rest).
import { afterAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { STORES } from "./stores.ts";
import { tempDir } from "./helpers.ts";
import type { Bar } from "../src/domain/bar.ts";
import type { Store } from "../src/stores/types.ts";
import { PG_MIGRATIONS, parsePgUrl } from "../src/stores/postgres/index.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const pg = STORES.find((s) => s.kind === "postgres")!;
const dir = tempDir("ticksync-pg-");

/** Whether the server offers TimescaleDB (the store then uses hypertables, not yearly partitions). */
async function timescaleAvailable(): Promise<boolean> {
  const sql = postgres(parsePgUrl(pg.freshUrl(dir)).url, { max: 1, onnotice: () => {} });
  try {
    return (await sql`SELECT count(*)::int AS n FROM pg_available_extensions WHERE name = 'timescaledb'`)[0]!.n > 0;
  } finally {
    await sql.end();
  }
}
const timescale = pg.unavailable === null && (await timescaleAvailable());
const WITHOUT_TIMESCALE = "(plain PostgreSQL only: skipped where TimescaleDB is installed, the store makes hypertables there)";
if (timescale) console.warn(`WARNING: TimescaleDB is installed: the tests marked ${WITHOUT_TIMESCALE} are skipped`);

describe.skipIf(pg.unavailable !== null)("postgres store specifics", () => {
  const url = pg.unavailable === null ? pg.freshUrl(dir) : "";
  let store: Store;
  const sql = pg.unavailable === null ? postgres(parsePgUrl(url).url, { max: 1, onnotice: () => {} }) : null;
  const schema = pg.unavailable === null ? parsePgUrl(url).schema : "";
  afterAll(async () => {
    await store?.close();
    await sql?.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await sql?.end();
  });

  test("daily bars of the Warsaw sessions are rolled up after the run", async () => {
    store = pg.open(url);
    await store.migrate();
    const run = await store.startRun({ kind: "ingest", source: "t" });
    const m = (iso: string, o: number, h: number, l: number, c: number, v: number): Bar => ({ source: "t", symbol: "PKN.WA", interval: "1m", ts: Date.parse(iso), open: o, high: h, low: l, close: c, volume: v });
    const bars = [
      m("2023-12-29T09:00:00Z", 10, 11, 9, 10.5, 100),
      m("2023-12-29T09:01:00Z", 10.5, 12, 10, 11.5, 50),
      m("2024-01-02T09:00:00Z", 20, 21, 19, 20.5, 10),
      m("2024-01-02T09:01:00Z", 20.5, 20.6, 18, 19, 20),
      m("2024-01-02T09:02:00Z", 19, 22, 19, 21, 30),
    ];
    await store.commitBatch({ runId: run, source: "t", bars, quarantine: [], read: bars.length });
    await store.finishRun(run, { outcome: "succeeded", read: 5, inserted: 5, updated: 0, unchanged: 0, quarantined: 0, fromTs: null, toTs: null, quality: null });
    expect(await store.rollUp!()).toMatchObject({ runs: 1, failed: 0 });
    const rollup = await sql!.unsafe(
      `SELECT s.symbol, s.source, r.ts AS day, r.open, r.high, r.low, r.close, r.volume FROM "${schema}".rollups r JOIN "${schema}".series s ON s.id = r.series_id WHERE r.interval = '1d' ORDER BY r.ts`,
    );
    expect(rollup.map((r): Record<string, unknown> => ({ ...r, day: new Date(r.day).toISOString().slice(0, 10) }))).toEqual([
      { symbol: "PKN.WA", source: "t", day: "2023-12-29", open: 10, high: 12, low: 9, close: 11.5, volume: 150 },
      { symbol: "PKN.WA", source: "t", day: "2024-01-02", open: 20, high: 22, low: 18, close: 21, volume: 60 },
    ]);
  });
  test.skipIf(timescale)(`the bars of that run are in yearly partitions made on demand ${WITHOUT_TIMESCALE}`, async () => {
    expect(store).toBeDefined(); // the test above stored the run
    const parts = await sql!`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
                             JOIN pg_namespace n ON n.oid = p.relnamespace WHERE p.relname = 'bars' AND n.nspname = ${schema} ORDER BY 1`;
    expect(parts.map((r) => r.relname)).toEqual(["bars_y2023", "bars_y2024"]);
    const [y24] = await sql!.unsafe(`SELECT count(*)::int AS n FROM "${schema}".bars_y2024`);
    expect(y24!.n).toBe(3);
  });
  // Version 1 is made here as plain PostgreSQL.
  test.skipIf(timescale)(`a schema of version 1 (bars keyed by text) moves to version 2 with its bars, series and partitions ${WITHOUT_TIMESCALE}`, async () => {
    const oldUrl = pg.freshUrl(dir);
    const old = parsePgUrl(oldUrl).schema;
    const v1 = postgres(parsePgUrl(oldUrl).url, { max: 1, onnotice: () => {}, connection: { search_path: old } });
    const iso = (s: string) => new Date(s);
    try {
      await v1.unsafe(`CREATE SCHEMA "${old}"`);
      await v1.begin(async (tx) => {
        await tx`CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), timescale boolean NOT NULL DEFAULT false)`;
        await PG_MIGRATIONS[0]!.up(tx, { timescale: false });
        await tx`INSERT INTO schema_migrations (version, name) VALUES (1, ${PG_MIGRATIONS[0]!.name})`;
        for (const y of [2023, 2024]) await tx.unsafe(`CREATE TABLE bars_y${y} PARTITION OF bars FOR VALUES FROM ('${y}-01-01 00:00:00+00') TO ('${y + 1}-01-01 00:00:00+00')`);
        await tx`INSERT INTO runs (kind, source, owner, outcome) VALUES ('ingest', 'a', 'gone', 'succeeded')`;
        await tx`
          INSERT INTO bars (symbol, interval, ts, source, open, high, low, close, volume, adj_close, turnover, trades, run_id) VALUES
            ('PKN.WA', '1d', ${iso("2023-12-29")}, 'a', 1, 2, 0.5, 1.5, 10, null, null, null, 1),
            ('PKN.WA', '1d', ${iso("2024-01-02")}, 'a', 2, 3, 1.5, 2.5, 20, 2.4, 50, 7, 1),
            ('PKN.WA', '1d', ${iso("2024-01-02")}, 'b', 2.1, 3, 1.5, 2.5, 21, null, null, null, 1),
            ('CDR.WA', '1m', ${iso("2024-01-02T09:00:00Z")}, 'a', 5, 6, 4, 5.5, 1, null, null, null, 1)`;
        await tx`
          INSERT INTO series (source, symbol, interval, first_ts, last_ts, bars)
          SELECT source, symbol, interval, min(ts), max(ts), count(*) FROM bars GROUP BY 1, 2, 3`;
        await tx`REFRESH MATERIALIZED VIEW bars_1d_from_intraday`;
      });
      const upgraded = pg.open(oldUrl);
      try {
        expect(await upgraded.migrate()).toEqual({ applied: PG_MIGRATIONS.slice(1).map((m) => m.version), version: PG_MIGRATIONS[PG_MIGRATIONS.length - 1]!.version });
        expect(await upgraded.countBars()).toBe(4);
        expect((await upgraded.listSeries()).map((x) => `${x.source}|${x.symbol}|${x.interval}|${x.bars}`)).toEqual(["a|CDR.WA|1m|1", "a|PKN.WA|1d|2", "b|PKN.WA|1d|1"]);
        expect(await upgraded.queryBars({ symbol: "PKN.WA", interval: "1d", limit: 10 })).toEqual([
          { source: "a", symbol: "PKN.WA", interval: "1d", ts: Date.parse("2023-12-29"), open: 1, high: 2, low: 0.5, close: 1.5, volume: 10 },
          { source: "a", symbol: "PKN.WA", interval: "1d", ts: Date.parse("2024-01-02"), open: 2, high: 3, low: 1.5, close: 2.5, volume: 20, adjClose: 2.4, turnover: 50, trades: 7 },
          { source: "b", symbol: "PKN.WA", interval: "1d", ts: Date.parse("2024-01-02"), open: 2.1, high: 3, low: 1.5, close: 2.5, volume: 21 },
        ]);
        const parts = await v1`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'bars'::regclass ORDER BY 1`;
        expect(parts.map((r) => r.relname)).toEqual(["bars_y2023", "bars_y2024"]);
        // The upgraded store writes: a newer bar, a re-delivered one changed, one unchanged.
        const run = await upgraded.startRun({ kind: "ingest", source: "a" });
        const bar = (ts: string, close: number) => ({ source: "a", symbol: "PKN.WA", interval: "1d" as const, ts: Date.parse(ts), open: 2, high: 3, low: 1.5, close, volume: 20 });
        expect(await upgraded.commitBatch({ runId: run, source: "a", bars: [bar("2024-01-03", 2.6)], quarantine: [], read: 1 })).toMatchObject({ inserted: 1, updated: 0, unchanged: 0 });
        const again = [{ ...bar("2024-01-02", 2.5), adjClose: 2.4, turnover: 50, trades: 7 }, bar("2024-01-03", 2.7)];
        expect(await upgraded.commitBatch({ runId: run, source: "a", bars: again, quarantine: [], read: 2 })).toMatchObject({ inserted: 0, updated: 1, unchanged: 1 });
        const [s] = await upgraded.listSeries({ symbol: "PKN.WA" });
        expect(s).toMatchObject({ source: "a", bars: 3, firstTs: Date.parse("2023-12-29"), lastTs: Date.parse("2024-01-03") });
        await upgraded.finishRun(run, { outcome: "succeeded", read: 3, inserted: 1, updated: 1, unchanged: 1, quarantined: 0, fromTs: null, toTs: null, quality: null });
        await upgraded.rollUp!();
        // Migration 8 rolled the stored bars up (CDR's minute into its session, PKN's days into
        // weeks and months); the run then rewrote the week and month of its days.
        const rollup = await v1`
          SELECT s.symbol, s.source, r.interval, to_char(r.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS ts, r.open, r.close, r.volume, r.run_id
          FROM rollups r JOIN series s ON s.id = r.series_id WHERE r.interval IN ('1d', '1w', '1mo') ORDER BY 1, 2, 3, 4`;
        expect(rollup.map((r: any) => ({ ...r, run_id: r.run_id === null ? null : Number(r.run_id) }))).toEqual([
          { symbol: "CDR.WA", source: "a", interval: "1d", ts: "2024-01-02", open: 5, close: 5.5, volume: 1, run_id: null },
          { symbol: "CDR.WA", source: "a", interval: "1mo", ts: "2024-01-02", open: 5, close: 5.5, volume: 1, run_id: null },
          { symbol: "CDR.WA", source: "a", interval: "1w", ts: "2024-01-02", open: 5, close: 5.5, volume: 1, run_id: null },
          { symbol: "PKN.WA", source: "a", interval: "1mo", ts: "2023-12-01", open: 1, close: 1.5, volume: 10, run_id: null },
          { symbol: "PKN.WA", source: "a", interval: "1mo", ts: "2024-01-02", open: 2, close: 2.7, volume: 40, run_id: run },
          { symbol: "PKN.WA", source: "a", interval: "1w", ts: "2023-12-27", open: 1, close: 1.5, volume: 10, run_id: null },
          { symbol: "PKN.WA", source: "a", interval: "1w", ts: "2024-01-02", open: 2, close: 2.7, volume: 40, run_id: run },
          { symbol: "PKN.WA", source: "b", interval: "1mo", ts: "2024-01-02", open: 2.1, close: 2.5, volume: 21, run_id: null },
          { symbol: "PKN.WA", source: "b", interval: "1w", ts: "2024-01-02", open: 2.1, close: 2.5, volume: 21, run_id: null },
        ]);
      } finally {
        await upgraded.close();
      }
    } finally {
      await v1.unsafe(`DROP SCHEMA IF EXISTS "${old}" CASCADE`);
      await v1.end();
    }
  });

  test("a re-load of stored bars through the staging table writes only the changed ones: journal keys, run_series ranges", async () => {
    // Its own schema: the bars here are not those of the other tests.
    const own = pg.freshUrl(dir);
    const s2 = pg.open(own);
    const ownSchema = parsePgUrl(own).schema;
    try {
      await s2.migrate();
      const d = (day: number) => Date.UTC(2024, 0, 2 + day);
      // Two series over two years' partitions, 40 bars each.
      const bars: Bar[] = [];
      for (const symbol of ["PKN.WA", "CDR.WA"]) for (let i = 0; i < 40; i++) bars.push({ source: "t", symbol, interval: "1d", ts: d(i - 20), open: 10 + i, high: 11 + i, low: 9 + i, close: 10.5 + i, volume: 100 + i });
      const r1 = await s2.startRun({ kind: "ingest", source: "t" });
      expect(await s2.commitBatch({ runId: r1, source: "t", bars, quarantine: [], read: bars.length })).toEqual({ inserted: 80, updated: 0, unchanged: 0, quarantined: 0 });
      const journal = async () => Number((await sql!.unsafe(`SELECT count(*)::int AS n FROM "${ownSchema}".journal`))[0]!.n);
      const ranges = async (run: number) => (await sql!.unsafe(`SELECT series_id, min_ts, max_ts FROM "${ownSchema}".run_series WHERE run_id = $1 ORDER BY series_id`, [run])).length;
      const before = await journal();
      // The same bars again (a re-load): nothing written.
      const r2 = await s2.startRun({ kind: "ingest", source: "t" });
      expect(await s2.commitBatch({ runId: r2, source: "t", bars, quarantine: [], read: bars.length })).toEqual({ inserted: 0, updated: 0, unchanged: 80, quarantined: 0 });
      expect(await journal()).toBe(before);
      expect(await ranges(r2)).toBe(0);
      // One bar changed, one new bar after the rest: exactly those two.
      const again = bars.map((b) => ({ ...b }));
      again[5]!.close = 99;
      again.push({ source: "t", symbol: "CDR.WA", interval: "1d", ts: d(-30), open: 1, high: 2, low: 0.5, close: 1.5, volume: 7 });
      const r3 = await s2.startRun({ kind: "ingest", source: "t" });
      const seen: string[] = [];
      const off = s2.onEvents((evs) => seen.push(...evs.map((e) => `${e.op} ${e.bar.symbol} ${e.bar.ts}`)));
      expect(await s2.commitBatch({ runId: r3, source: "t", bars: again, quarantine: [], read: again.length })).toEqual({ inserted: 1, updated: 1, unchanged: 79, quarantined: 0 });
      off();
      expect(seen.sort()).toEqual([`insert CDR.WA ${d(-30)}`, `update PKN.WA ${d(-15)}`]);
      expect(await journal()).toBe(before + 1);
      expect(await ranges(r3)).toBe(2);
      const page = await s2.queryBars({ symbol: "PKN.WA", interval: "1d", from: d(-15), to: d(-15), limit: 5 });
      expect(page.map((b) => b.close)).toEqual([99]);
    } finally {
      await s2.close();
      await sql!.unsafe(`DROP SCHEMA IF EXISTS "${ownSchema}" CASCADE`);
    }
  });
});
