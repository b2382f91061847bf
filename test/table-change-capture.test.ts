// Change capture from a table (the WIG80 sync service's "new and changed records"), on a real
// PostgreSQL and a real QuestDB, stored in SQLite and synced to a real Pocketbase. A table with a
// change column is read by it (ties split across batches neither skipped nor read twice); a table
// without one is reconciled by per-day digests. After an UPDATE, a late INSERT of an older ts and
// a DELETE, the next run leaves the store equal to the table, and a sync leaves Pocketbase equal
// to the store; the DELETE's reconciliation also with a PostgreSQL store (it deletes bars too). With CI=true a missing server fails; without CI its cases skip, saying why.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import PocketBase from "pocketbase";
import { join } from "node:path";
import { cli, tempDir, waitFor, writeFile, pocketbaseForTests } from "./helpers.ts";
import { STORES, tableServers } from "./stores.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { postgresStore } from "../src/stores/postgres/index.ts";
import { startPocketbase, type PocketbaseInstance } from "../scripts/services/pocketbase-instance.ts";
import type { Bar } from "../src/domain/bar.ts";
import * as v from "valibot";
import { sourceConfigSchema } from "../src/sources/registry.ts";
import { ingestFromConfig } from "../src/pipeline/run.ts";
import { onMarkets } from "../src/pipeline/market-scope.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const { bin: pbBin } = pocketbaseForTests("table change capture");

const dir = tempDir("ticksync-cdc-");
const DAY = 86_400_000;
const SYMBOLS = ["PKN", "CDR", "11B"];
/** Ten sessions ending yesterday (UTC), so a 15-day reconcile window holds them all. */
const today = Math.floor(Date.now() / DAY) * DAY;
const days = Array.from({ length: 10 }, (_, i) => new Date(today - (10 - i) * DAY));
const dayText = (d: Date) => d.toISOString().slice(0, 10);
const unique = () => `${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;

const pgStore = STORES.find((s) => s.kind === "postgres")!;

const servers = tableServers("table change capture");

let pb: PocketbaseInstance | null = null;
beforeAll(async () => {
  if (pbBin) pb = await startPocketbase({ bin: pbBin });
});
afterAll(async () => {
  await pb?.destroy();
});

async function pbAdmin(): Promise<PocketBase> {
  const c = new PocketBase(pb!.url);
  c.autoCancellation(false);
  await c.collection("_superusers").authWithPassword(pb!.email, pb!.password);
  return c;
}

/** What a bar is, compared across table, store and Pocketbase. */
const key = (b: { symbol: string; ts: number; open: number; high: number; low: number; close: number; volume: number }) =>
  `${b.symbol}|${new Date(b.ts).toISOString()}|${b.open}|${b.high}|${b.low}|${b.close}|${b.volume}`;

for (const srv of servers) {
  describe.skipIf(srv.unavailable !== null)(`${srv.kind} table change capture`, () => {
    const questdb = srv.kind === "questdb";
    const sql = srv.unavailable === null ? postgres(srv.pg!, { max: 1, fetch_types: !questdb, onnotice: () => {} }) : null;
    const tables: string[] = [];
    afterAll(async () => {
      for (const t of tables) await sql?.unsafe(`DROP TABLE IF EXISTS ${t}`).catch(() => {});
      await sql?.end();
    });

    async function createTable(withChange: boolean): Promise<string> {
      const table = `cdc_${withChange ? "chg" : "rec"}_${unique()}`;
      tables.push(table);
      const change = withChange ? (questdb ? ", updated_at TIMESTAMP" : ", updated_at timestamptz") : "";
      if (questdb)
        await sql!.unsafe(`CREATE TABLE ${table} (symbol SYMBOL, ts TIMESTAMP, open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, volume LONG, rsi_14 DOUBLE${change}) TIMESTAMP(ts) PARTITION BY DAY WAL`);
      else await sql!.unsafe(`CREATE TABLE ${table} (symbol text, ts timestamptz, open float8, high float8, low float8, close float8, volume bigint, rsi_14 float8${change})`);
      return table;
    }

    /** Rows of the table as bars (the store's symbols: WSE tickers). */
    async function tableBars(table: string): Promise<string[]> {
      const rows = await sql!.unsafe(`SELECT symbol, ts, open, high, low, close, volume FROM ${table}`);
      return rows.map((r) => key({ symbol: `${r.symbol}.WA`, ts: new Date(r.ts).getTime(), open: r.open, high: r.high, low: r.low, close: r.close, volume: Number(r.volume) })).sort();
    }

    /** QuestDB applies WAL writes asynchronously: wait until the table reads `n` rows with `close` of the probe. */
    async function settle(table: string, n: number, probe?: { symbol: string; ts: Date; close: number }) {
      await waitFor(
        async () => {
          const [c] = await sql!.unsafe(`SELECT count(*) AS n FROM ${table}`);
          if (Number(c!.n) !== n) return false;
          if (!probe) return true;
          const [r] = await sql!`SELECT close FROM ${sql!(table)} WHERE symbol = ${probe.symbol} AND ts = ${probe.ts}`;
          return r?.close === probe.close;
        },
        30_000,
        `${table} to hold ${n} rows`,
      );
    }

    async function insert(table: string, rows: { symbol: string; ts: Date; p: number }[], updatedAt?: Date) {
      for (const r of rows) {
        const cols = [r.symbol, r.ts, r.p, r.p + 1, r.p - 1, r.p + 0.5, 1000, 55.5];
        if (updatedAt) await sql!`INSERT INTO ${sql!(table)} (symbol, ts, open, high, low, close, volume, rsi_14, updated_at) VALUES (${cols[0]!}, ${r.ts}, ${r.p}, ${r.p + 1}, ${r.p - 1}, ${r.p + 0.5}, ${1000}, ${55.5}, ${updatedAt})`;
        else await sql!`INSERT INTO ${sql!(table)} (symbol, ts, open, high, low, close, volume, rsi_14) VALUES (${cols[0]!}, ${r.ts}, ${r.p}, ${r.p + 1}, ${r.p - 1}, ${r.p + 0.5}, ${1000}, ${55.5})`;
      }
    }

    /** CDR's close on days[3] after the UPDATE: within the row's low (62) and high (64), so it passes the rules. */
    const UPDATED_CLOSE = 62.25;

    /** The change every case makes: an UPDATE of a stored row, a late INSERT of an older ts, a DELETE. */
    async function change(table: string, withChange: boolean, rowsBefore: number) {
      const later = new Date(Date.now() + 60_000);
      const set = withChange ? (questdb ? `, updated_at = '${later.toISOString()}'` : `, updated_at = '${later.toISOString()}'`) : "";
      await sql!.unsafe(`UPDATE ${table} SET close = ${UPDATED_CLOSE}${set} WHERE symbol = 'CDR' AND ts = '${days[3]!.toISOString()}'`);
      // The late row: a session before every stored one (a symbol the table lacked that day).
      const early = new Date(days[0]!.getTime() - DAY);
      await insert(table, [{ symbol: "PKN", ts: early, p: 40 }], withChange ? later : undefined);
      // QuestDB has no DELETE: rows leave a table by dropping their partition (here one day, every symbol).
      if (questdb) {
        await settle(table, rowsBefore + 1, { symbol: "CDR", ts: days[3]!, close: UPDATED_CLOSE });
        await sql!.unsafe(`ALTER TABLE ${table} DROP PARTITION LIST '${dayText(days[5]!)}'`);
        await settle(table, rowsBefore + 1 - SYMBOLS.length);
      } else await sql!.unsafe(`DELETE FROM ${table} WHERE symbol = '11B' AND ts = '${days[5]!.toISOString()}'`);
      return questdb ? SYMBOLS.length : 1;
    }

    /** The store of each config by name, when not its SQLite file. */
    const storeUrls = new Map<string, string>();

    function config(table: string, name: string, extra: string, collection: string, storeUrl = `sqlite:${name}.db`) {
      if (!storeUrl.startsWith("sqlite:")) storeUrls.set(name, storeUrl);
      const sink = pb ? `[sinks.app]\ntype = "pocketbase"\nurl = "${pb.url}"\nemail = "${pb.email}"\ncollection = "${collection}"\nenableBatchApi = true\n` : "";
      return writeFile(
        join(dir, `${name}.toml`),
        `[store]\nurl = "${storeUrl}"\n[ingest]\nbatchSize = 4\n[sources.seed]\ntype = "postgres"\nurl = "${srv.url()}"\ntable = "${table}"\nmarket = "WSE"\n${extra}\n${sink}`,
      );
    }

    const env = () => ({ TICKSYNC_LOG__LEVEL: "warn", ...(pb ? { TICKSYNC_SINKS__APP__PASSWORD: pb.password } : {}) });

    async function ingest(cfg: string, args: string[] = []) {
      const r = await cli(["ingest", "--config", cfg, "--json", ...args], { env: env() });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      return JSON.parse(r.stdout)[0];
    }

    async function storeBars(name: string): Promise<Bar[]> {
      const pgUrl = storeUrls.get(name);
      const store = pgUrl ? postgresStore(pgUrl) : sqliteStore(`sqlite:${join(dir, `${name}.db`)}`);
      try {
        const out: Bar[] = [];
        for (const s of await store.listSeries()) out.push(...(await store.queryBars({ symbol: s.symbol, interval: s.interval, source: s.source, limit: 10_000 })));
        return out;
      } finally {
        await store.close();
      }
    }

    /** `ticksync sync`, then Pocketbase's records equal the store's bars. */
    async function syncedEqualsStore(cfg: string, name: string, collection: string) {
      if (!pb) return;
      const r = await cli(["sync", "--config", cfg, "--json"], { env: env() });
      expect(r.code, r.stderr).toBe(0);
      const records = await (await pbAdmin()).collection(collection).getFullList({ batch: 1000 });
      const fromPb = records.map((x) => key({ symbol: x.symbol, ts: Date.parse(String(x.ts).replace(" ", "T")), open: x.open, high: x.high, low: x.low, close: x.close, volume: x.volume })).sort();
      expect(fromPb).toEqual((await storeBars(name)).map(key).sort());
    }

    const initial = () => days.flatMap((d, i) => SYMBOLS.map((symbol, j) => ({ symbol, ts: d, p: 50 + j * 10 + i })));

    test("change column: every row once (ties split across batches), then the updated and the late row; reconcile deletes what is gone", async () => {
      const table = await createTable(true);
      // Every row shares one change value: batches of 4 split the ties.
      await insert(table, initial(), new Date(today - DAY));
      await settle(table, 30);
      const name = `chg-${srv.kind}`;
      const collection = `cdc_chg_${srv.kind}`;
      const cfg = config(table, name, `changeColumn = "updated_at"\nreconcile = { days = 15, deleteMissing = true }`, collection);
      const first = await ingest(cfg);
      expect(first).toMatchObject({ outcome: "succeeded", read: 30, inserted: 30, quarantined: 0 });
      expect(first.reconciled).toMatchObject({ differing: 0, deleted: 0 });
      expect((await storeBars(name)).map(key).sort()).toEqual(await tableBars(table));
      await syncedEqualsStore(cfg, name, collection);

      const deleted = await change(table, true, 30);
      const second = await ingest(cfg);
      // Only the two rows whose change column moved are read; the delete is the reconciliation's.
      expect(second).toMatchObject({ outcome: "succeeded", read: 2, inserted: 1, updated: 1 });
      expect(second.reconciled).toMatchObject({ gone: deleted, deleted });
      expect((await storeBars(name)).map(key).sort()).toEqual(await tableBars(table));
      await syncedEqualsStore(cfg, name, collection);

      // Nothing changed: nothing read, nothing differs.
      const third = await ingest(cfg);
      expect(third).toMatchObject({ read: 0, inserted: 0, updated: 0 });
      expect(third.reconciled).toMatchObject({ differing: 0 });

      // --full reads every row again and changes nothing.
      const full = await ingest(cfg, ["--full"]);
      expect(full).toMatchObject({ outcome: "succeeded", read: 31 - deleted, inserted: 0, updated: 0, unchanged: 31 - deleted });
      expect(full.reconciled).toMatchObject({ from: null, differing: 0 });
    }, 120_000);

    test("no change column: the next run reads nothing new, the reconciliation re-reads only the days that differ", async () => {
      const table = await createTable(false);
      await insert(table, initial());
      await settle(table, 30);
      const name = `rec-${srv.kind}`;
      const collection = `cdc_rec_${srv.kind}`;
      const cfg = config(table, name, `reconcile = { days = 15, deleteMissing = true }`, collection);
      expect(await ingest(cfg)).toMatchObject({ outcome: "succeeded", read: 30, inserted: 30 });
      await syncedEqualsStore(cfg, name, collection);

      const deleted = await change(table, false, 30);
      // A tick gated to another market's hours reads none of the table: it must not reconcile
      // (every stored bar would look gone).
      const store = sqliteStore(`sqlite:${join(dir, `${name}.db`)}`);
      const sourceCfg = v.parse(sourceConfigSchema, { type: "postgres", url: srv.url(), table, market: "WSE", reconcile: { days: 15, deleteMissing: true } });
      const settings = { config: { sources: { seed: sourceCfg }, universes: {}, ingest: { batchSize: 4 }, jobs: [] }, baseDir: dir };
      const gated = await ingestFromConfig({ loaded: settings, store, source: "seed", adapt: (s) => onMarkets(s, ["NYSE"]) });
      expect(gated).toMatchObject({ outcome: "succeeded", read: 0 });
      expect(gated.reconciled).toBeUndefined();
      expect(await store.countBars()).toBe(30);
      await store.close();

      const second = await ingest(cfg);
      // Past the (ts, symbol) cursor there is nothing: the changes are the reconciliation's to find.
      expect(second).toMatchObject({ outcome: "succeeded", read: 0, inserted: 1, updated: 1 });
      // Three days differ: the updated one, the late one's, the one with the delete.
      expect(second.reconciled).toMatchObject({ differing: 2 + deleted, reread: 3, inserted: 1, updated: 1, gone: deleted, deleted });
      expect((await storeBars(name)).map(key).sort()).toEqual(await tableBars(table));
      await syncedEqualsStore(cfg, name, collection);

      // A row changed into one the rules reject (close above high) is quarantined, never deleted.
      const stored = await storeBars(name);
      await sql!.unsafe(`UPDATE ${table} SET close = 500 WHERE symbol = 'PKN' AND ts = '${days[7]!.toISOString()}'`);
      await settle(table, 31 - deleted, { symbol: "PKN", ts: days[7]!, close: 500 });
      const third = await ingest(cfg);
      expect(third.reconciled).toMatchObject({ differing: 1, reread: 1, quarantined: 1, gone: 0, deleted: 0 });
      expect((await storeBars(name)).map(key).sort()).toEqual(stored.map(key).sort());
    }, 120_000);

    test.skipIf(pgStore.unavailable !== null)("a PostgreSQL store: the reconciliation deletes what the table lost, the sync removes it from Pocketbase", async () => {
      const table = await createTable(false);
      await insert(table, initial());
      await settle(table, 30);
      const name = `pgstore-${srv.kind}`;
      const collection = `cdc_pgstore_${srv.kind}`;
      const storeUrl = pgStore.freshUrl(dir);
      const cfg = config(table, name, `reconcile = { days = 15, deleteMissing = true }`, collection, storeUrl);
      const check = await cli(["config", "check", "--config", cfg], { env: env() });
      expect(check.code, check.stderr).toBe(0);
      expect(await ingest(cfg)).toMatchObject({ outcome: "succeeded", read: 30, inserted: 30 });
      await syncedEqualsStore(cfg, name, collection);

      const deleted = await change(table, false, 30);
      const second = await ingest(cfg);
      expect(second.reconciled).toMatchObject({ differing: 2 + deleted, inserted: 1, updated: 1, gone: deleted, deleted });
      expect((await storeBars(name)).map(key).sort()).toEqual(await tableBars(table));
      // Journaled as delete events, series exact.
      const store = postgresStore(storeUrl);
      try {
        const deletes = await store.deletesSince!(0, 100);
        expect(deletes.map((e) => dayText(new Date(e.bar.ts)))).toEqual(Array(deleted).fill(dayText(days[5]!)));
        expect((await store.listSeries()).reduce((t, s) => t + s.bars, 0)).toBe(31 - deleted);
      } finally {
        await store.close();
      }
      await syncedEqualsStore(cfg, name, collection);
      // Nothing differs any more: the next run deletes nothing.
      expect((await ingest(cfg)).reconciled).toMatchObject({ differing: 0, deleted: 0 });
    }, 120_000);

    test("without deleteMissing, bars gone from the table are counted and kept", async () => {
      const table = await createTable(false);
      await insert(table, initial());
      await settle(table, 30);
      const cfg = config(table, `keep-${srv.kind}`, `reconcile = { days = 15 }`, `cdc_keep_${srv.kind}`);
      await ingest(cfg);
      const deleted = await change(table, false, 30);
      const second = await ingest(cfg);
      expect(second.reconciled).toMatchObject({ gone: deleted, deleted: 0 });
      expect((await storeBars(`keep-${srv.kind}`)).length).toBe(31);
    }, 120_000);
  });
}

describe("reconcile config", () => {
  test("config check refuses deleteMissing on a store that cannot delete bars (QuestDB), and takes it on SQLite and PostgreSQL", async () => {
    const source = `[sources.seed]\ntype = "postgres"\nurl = "postgres://u:p@127.0.0.1:1/db"\ntable = "t"\nreconcile = { days = 3, deleteMissing = true }\n`;
    const qdbStore = writeFile(join(dir, "delete-qdb.toml"), `[store]\nurl = "questdb://u:p@127.0.0.1:1/qdb?http=http://127.0.0.1:2"\n${source}`);
    const refused = await cli(["config", "check", "--config", qdbStore]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain("source seed: reconcile.deleteMissing needs a store that deletes bars (sqlite, postgres); the questdb store cannot");
    for (const [name, url] of [["delete-sqlite", "sqlite:x.db"], ["delete-pg", "postgres://u:p@127.0.0.1:1/db"]]) {
      const ok = await cli(["config", "check", "--config", writeFile(join(dir, `${name}.toml`), `[store]\nurl = "${url}"\n${source}`)]);
      expect(ok.code, ok.stderr).toBe(0);
    }
  });
});
