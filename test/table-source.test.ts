// Reading an existing table over the PostgreSQL wire protocol: the seeds' QuestDB table
// `wig80_historical` (symbol, ts, OHLCV and indicator columns), and the same shape in Postgres.
// Incremental by timestamp: a second run reads only the rows added since.
import { afterAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { join } from "node:path";
import { cli, tempDir, waitFor, writeFile } from "./helpers.ts";
import { PG_URL, QDB_HTTP, QDB_PG_URL, STORES } from "./stores.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-table-");
const env = { TICKSYNC_LOG__LEVEL: "warn" };
const SYMBOLS = ["PKN", "CDR", "11B"];
const days = (n: number, from = 0) => Array.from({ length: n }, (_, i) => new Date(Date.UTC(2024, 0, 2 + from + i)));

const targets = [
  { kind: "questdb", available: STORES.find((s) => s.kind === "questdb")!.unavailable === null, pg: QDB_PG_URL, url: () => { const u = new URL(QDB_PG_URL!); return `questdb://${u.username}:${u.password}@${u.host}${u.pathname}?http=${QDB_HTTP}`; } },
  { kind: "postgres", available: STORES.find((s) => s.kind === "postgres")!.unavailable === null, pg: PG_URL, url: () => PG_URL! },
];

for (const t of targets) {
  describe.skipIf(!t.available)(`${t.kind} table source`, () => {
    const table = `wig80_historical_${process.pid}_${Date.now().toString(36)}`;
    const questdb = t.kind === "questdb";
    const sql = t.available ? postgres(t.pg!, { max: 1, fetch_types: !questdb, onnotice: () => {} }) : null;
    afterAll(async () => {
      await sql?.unsafe(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
      await sql?.end();
    });

    async function insert(dates: Date[]) {
      for (const d of dates)
        for (const [i, s] of SYMBOLS.entries()) {
          const p = 50 + i * 10 + d.getUTCDate() / 10;
          await sql!`INSERT INTO ${sql!(table)} (symbol, ts, open, high, low, close, volume, rsi_14, sma_20) VALUES (${s}, ${d}, ${p}, ${p + 1}, ${p - 1}, ${p + 0.5}, ${1000 + i}, ${55.5}, ${p})`;
        }
      // QuestDB applies WAL writes asynchronously: wait until they are readable.
      const want = SYMBOLS.length * dates.length;
      await waitFor(async () => Number((await sql!`SELECT count(*) AS n FROM ${sql!(table)} WHERE ts >= ${dates[0]!}`)[0]!.n) >= want, 20_000, "rows to be visible");
    }

    test("ingest maps the columns, then reads only what was added since", async () => {
      if (questdb)
        await sql!.unsafe(`CREATE TABLE ${table} (symbol SYMBOL, ts TIMESTAMP, open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, volume LONG, rsi_14 DOUBLE, sma_20 DOUBLE) TIMESTAMP(ts) PARTITION BY MONTH WAL`);
      else await sql!.unsafe(`CREATE TABLE ${table} (symbol text, ts timestamptz, open float8, high float8, low float8, close float8, volume bigint, rsi_14 float8, sma_20 float8)`);
      await insert(days(20));
      const cfg = writeFile(
        join(dir, `${t.kind}.toml`),
        `[store]\nurl = "sqlite:${t.kind}.db"\n[ingest]\nbatchSize = 25\n[sources.seed]\ntype = "postgres"\nurl = "${t.url()}"\ntable = "${table}"\nmarket = "WSE"\n`,
      );
      const first = await cli(["ingest", "--config", cfg, "--json"], { env });
      expect(first.stderr).toBe("");
      expect(first.code).toBe(0);
      expect(JSON.parse(first.stdout)[0]).toMatchObject({ outcome: "succeeded", read: 60, inserted: 60, quarantined: 0 });
      const store = sqliteStore(`sqlite:${join(dir, `${t.kind}.db`)}`);
      const cdr = await store.queryBars({ symbol: "CDR.WA", interval: "1d", limit: 100 });
      expect(cdr.length).toBe(20);
      expect(cdr[0]).toEqual({ source: "seed", symbol: "CDR.WA", interval: "1d", ts: Date.UTC(2024, 0, 2), open: 60.2, high: 61.2, low: 59.2, close: 60.7, volume: 1001 });

      await insert(days(5, 20));
      const second = await cli(["ingest", "--config", cfg, "--json"], { env });
      expect(JSON.parse(second.stdout)[0]).toMatchObject({ outcome: "succeeded", read: 15, inserted: 15 });
      expect((await store.queryBars({ symbol: "PKN.WA", interval: "1d", limit: 100 })).length).toBe(25);
      const third = await cli(["ingest", "--config", cfg, "--json"], { env });
      expect(JSON.parse(third.stdout)[0]).toMatchObject({ read: 0 });
      await store.close();
    }, 60_000);
  });
}
