// Coming from Stockula: a database in Stockula's schema (its SQLModel models: stocks, stock_info,
// price_history with several intervals in one table, dividends, splits), imported whole by
// `ticksync import stockula`; a view read by key paging; NUMERIC columns taken exactly or
// quarantined with the reason; a hostile `where`; PostgreSQL numeric text through the same check.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import postgres from "postgres";
import * as v from "valibot";
import { cli, tempDir } from "./helpers.ts";
import { PG_URL, STORES } from "./stores.ts";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { sqliteSource, sqliteSourceSchema } from "../src/sources/sqlite.ts";
import { exactDecimal } from "../src/sources/table-read.ts";
import { splitFraction } from "../src/sources/stockula.ts";
import { runIngest } from "../src/pipeline/ingest.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir("ticksync-stockula-");
const env = { TICKSYNC_LOG__LEVEL: "warn" };
const iso = (t: number) => new Date(t).toISOString().slice(0, 10);

// Stockula's tables as SQLAlchemy creates them on SQLite from its models (FLOAT: REAL affinity).
const SCHEMA = `
CREATE TABLE stocks (symbol VARCHAR NOT NULL PRIMARY KEY, name VARCHAR, sector VARCHAR, industry VARCHAR, market_cap FLOAT,
  exchange VARCHAR, currency VARCHAR, created_at DATETIME DEFAULT CURRENT_TIMESTAMP, updated_at DATETIME DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE price_history (id INTEGER NOT NULL PRIMARY KEY, symbol VARCHAR NOT NULL REFERENCES stocks (symbol), date DATE NOT NULL,
  open_price FLOAT, high_price FLOAT, low_price FLOAT, close_price FLOAT, volume INTEGER, interval VARCHAR NOT NULL,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP, updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT uq_price_history UNIQUE (symbol, date, interval));
CREATE INDEX idx_price_history_symbol_date ON price_history (symbol, date);
CREATE TABLE dividends (id INTEGER NOT NULL PRIMARY KEY, symbol VARCHAR NOT NULL REFERENCES stocks (symbol), date DATE NOT NULL,
  amount FLOAT NOT NULL, created_at DATETIME DEFAULT CURRENT_TIMESTAMP, updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT uq_dividends UNIQUE (symbol, date));
CREATE TABLE splits (id INTEGER NOT NULL PRIMARY KEY, symbol VARCHAR NOT NULL REFERENCES stocks (symbol), date DATE NOT NULL,
  ratio FLOAT NOT NULL, created_at DATETIME DEFAULT CURRENT_TIMESTAMP, updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT uq_splits UNIQUE (symbol, date));
CREATE TABLE stock_info (symbol VARCHAR NOT NULL PRIMARY KEY REFERENCES stocks (symbol), info_json TEXT NOT NULL,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP, updated_at DATETIME DEFAULT CURRENT_TIMESTAMP);
`;

type Row = { symbol: string; date: string; o: number; h: number; l: number; c: number; vol: number; interval: string };
const SYMBOLS = ["AAPL", "MSFT", "BRK-B"];
const weekdays = ["2024-02-05", "2024-02-06", "2024-02-07", "2024-02-08", "2024-02-09", "2024-02-12", "2024-02-13", "2024-02-14", "2024-02-15", "2024-02-16"];
const mondays = ["2024-01-08", "2024-01-15", "2024-01-22", "2024-01-29"];
const months = ["2023-11-01", "2023-12-01", "2024-01-01"];

function priceRows(): Row[] {
  const rows: Row[] = [];
  for (const [si, symbol] of SYMBOLS.entries())
    for (const [interval, dates] of [["1d", weekdays], ["1wk", mondays], ["1mo", months]] as const)
      for (const [i, date] of dates.entries()) {
        const o = Math.round((100 + si * 50 + i * 1.25 + (interval === "1d" ? 0 : 0.5)) * 100) / 100;
        rows.push({ symbol, date, o, h: o + 2.35, l: o - 1.1, c: o + 0.85, vol: 1_000_000 + si * 1000 + i, interval });
      }
  return rows;
}

function buildStockula(path: string): Row[] {
  const db = new Database(path, { create: true });
  db.exec(SCHEMA);
  const rows = priceRows();
  db.transaction(() => {
    for (const [symbol, name, sector, industry, exchange] of [
      ["AAPL", "Apple Inc.", "Technology", "Consumer Electronics", "NMS"],
      ["MSFT", "Microsoft Corporation", "Technology", "Software—Infrastructure", "NMS"],
      ["BRK-B", "", "", "", ""],
    ])
      db.run("INSERT INTO stocks (symbol, name, sector, industry, market_cap, exchange, currency) VALUES (?, ?, ?, ?, ?, ?, ?)", [symbol!, name!, sector!, industry!, 1e12, exchange!, "USD"]);
    db.run("INSERT INTO stock_info (symbol, info_json) VALUES (?, ?)", ["AAPL", JSON.stringify({ quoteType: "EQUITY", isin: "US0378331005", longName: "Apple Inc." })]);
    // Stockula left the stocks row of BRK-B empty ("" defaults); its info has the names.
    db.run("INSERT INTO stock_info (symbol, info_json) VALUES (?, ?)", ["BRK-B", JSON.stringify({ quoteType: "EQUITY", longName: "Berkshire Hathaway Inc.", sector: "Financial Services", exchange: "NYQ" })]);
    for (const r of rows)
      db.run("INSERT INTO price_history (symbol, date, open_price, high_price, low_price, close_price, volume, interval) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [r.symbol, r.date, r.o, r.h, r.l, r.c, r.vol, r.interval]);
    // Intraday rows keyed by date only (Stockula's DATE column) and an interval ticksync has no match for.
    for (const d of weekdays.slice(0, 3)) db.run("INSERT INTO price_history (symbol, date, open_price, high_price, low_price, close_price, volume, interval) VALUES ('AAPL', ?, 1, 2, 0.5, 1.5, 10, '1h')", [d]);
    for (const d of weekdays.slice(0, 2)) db.run("INSERT INTO price_history (symbol, date, open_price, high_price, low_price, close_price, volume, interval) VALUES ('MSFT', ?, 1, 2, 0.5, 1.5, 10, '5d')", [d]);
    db.run("INSERT INTO dividends (symbol, date, amount) VALUES ('AAPL', '2024-02-09', 0.24), ('MSFT', '2024-02-14', 0.75), ('AAPL', '2023-11-10', 0.24)");
    db.run("INSERT INTO splits (symbol, date, ratio) VALUES ('AAPL', '2020-08-31', 4.0), ('MSFT', '2003-02-18', 2.0), ('BRK-B', '2010-01-21', 50.0), ('MSFT', '1990-04-16', 1.5), ('AAPL', '1987-06-16', 0.5)");
  })();
  db.close();
  return rows;
}

const INTERVAL = { "1d": "1d", "1wk": "1w", "1mo": "1mo" } as Record<string, string>;

const db = join(dir, "stockula.db");
const rows = buildStockula(db);

for (const f of STORES.filter((s) => s.kind !== "questdb"))
  describe.skipIf(f.unavailable !== null)(`ticksync import stockula into ${f.kind}`, () => {
    const storeUrl = f.unavailable === null ? f.freshUrl(dir) : "";

    test("imports every interval into its own series, dividends and splits as actions, stock info as instruments", async () => {
      const r = await cli(["import", "stockula", "--sqlite", db, "--store", storeUrl, "--json"], { env });
      // Exit 4: the 1h rows (date only) and the 5d rows were not imported, and say so.
      expect(r.code).toBe(4);
      const result = JSON.parse(r.stdout);
      expect(result.intervals).toEqual([
        { value: "1d", rows: 30, interval: "1d", skipped: null },
        { value: "1h", rows: 3, interval: "1h", skipped: "3 of its rows have a date without a time of day (Stockula keys price_history by date), not an intraday bar's open" },
        { value: "1mo", rows: 9, interval: "1mo", skipped: null },
        { value: "1wk", rows: 12, interval: "1w", skipped: null },
        { value: "5d", rows: 2, interval: null, skipped: expect.stringContaining('interval "5d" has no ticksync interval') },
      ]);
      expect(result.runs.map((s: { outcome: string; read: number; inserted: number; quarantined: number }) => [s.outcome, s.read, s.inserted, s.quarantined])).toEqual([
        ["succeeded", 30, 30, 0],
        ["succeeded", 9, 9, 0],
        ["succeeded", 12, 12, 0],
      ]);
      expect(result.reference).toMatchObject({ actions: { read: 8, stored: 8 }, instruments: { read: 3, inserted: 3, updated: 0, unchanged: 0 }, rejected: [], error: null });

      const store = f.open(storeUrl);
      try {
        // Every bar, value for value, in its own series.
        let bars = 0;
        for (const symbol of SYMBOLS)
          for (const interval of ["1d", "1wk", "1mo"]) {
            const want = rows.filter((x) => x.symbol === symbol && x.interval === interval);
            const got = await store.queryBars({ symbol: `${symbol}.US`, interval: INTERVAL[interval] as never, limit: 1000 });
            expect(got.map((b) => [b.source, iso(b.ts), b.open, b.high, b.low, b.close, b.volume])).toEqual(want.map((x) => ["stockula", x.date, x.o, x.h, x.l, x.c, x.vol]));
            bars += got.length;
          }
        expect(bars).toBe(rows.length);
        expect(await store.queryBars({ symbol: "AAPL.US", interval: "1h", limit: 10 })).toEqual([]);

        const aapl = await store.listActions!("AAPL.US");
        expect(aapl.map((a) => [a.source, a.type, iso(a.exDate), a.amount, a.numerator, a.denominator, a.currency])).toEqual([
          ["stockula", "split", "1987-06-16", null, 1, 2, null],
          ["stockula", "split", "2020-08-31", null, 4, 1, null],
          ["stockula", "dividend", "2023-11-10", 0.24, null, null, "USD"],
          ["stockula", "dividend", "2024-02-09", 0.24, null, null, "USD"],
        ]);
        const msft = await store.listActions!("MSFT.US");
        expect(msft.map((a) => [a.type, iso(a.exDate), a.amount ?? `${a.numerator}:${a.denominator}`])).toEqual([
          ["split", "1990-04-16", "3:2"],
          ["split", "2003-02-18", "2:1"],
          ["dividend", "2024-02-14", 0.75],
        ]);
        expect((await store.listActions!("BRK-B.US")).map((a) => [a.type, iso(a.exDate), a.numerator, a.denominator])).toEqual([["split", "2010-01-21", 50, 1]]);

        const instruments = (await store.listInstruments!()).filter((i) => i.source === "stockula");
        expect(instruments.map(({ updatedAt: _, ...i }) => i)).toEqual([
          { source: "stockula", symbol: "AAPL.US", name: "Apple Inc.", exchange: "NMS", currency: "USD", type: "EQUITY", sector: "Technology", industry: "Consumer Electronics", isin: "US0378331005" },
          { source: "stockula", symbol: "BRK-B.US", name: "Berkshire Hathaway Inc.", exchange: "NYQ", currency: "USD", type: "EQUITY", sector: "Financial Services", industry: null, isin: null },
          { source: "stockula", symbol: "MSFT.US", name: "Microsoft Corporation", exchange: "NMS", currency: "USD", type: null, sector: "Technology", industry: "Software—Infrastructure", isin: null },
        ]);
      } finally {
        await store.close();
      }

      // Run again: nothing new anywhere.
      const again = await cli(["import", "stockula", "--sqlite", db, "--store", storeUrl, "--json"], { env });
      const second = JSON.parse(again.stdout);
      expect(second.runs.map((s: { read: number; inserted: number }) => [s.read, s.inserted])).toEqual([[0, 0], [0, 0], [0, 0]]);
      expect(second.reference).toMatchObject({ actions: { read: 8, stored: 0 }, instruments: { inserted: 0, updated: 0, unchanged: 3 } });

      // Human output names what was not imported.
      const text = await cli(["import", "stockula", "--sqlite", db, "--store", storeUrl], { env });
      expect(text.stderr).toContain("price_history interval 5d: 2 rows not imported");
      expect(text.stderr).toContain("price_history interval 1h: 3 rows not imported");
    }, 120_000);
  });

test("hostile rows of a Stockula file: each is rejected or quarantined with its reason, the rest imported", async () => {
  const bad = join(dir, "stockula-bad.db");
  const b = new Database(bad, { create: true });
  b.exec(SCHEMA);
  b.run("INSERT INTO stocks (symbol, name) VALUES ('AAPL', 'Apple Inc.'), ('   ', 'blank')");
  b.run("INSERT INTO price_history (symbol, date, open_price, high_price, low_price, close_price, volume, interval) VALUES ('AAPL', '2024-02-05', 10, 11, 9, 10.5, 1000, '1d')");
  b.run("INSERT INTO price_history (symbol, date, open_price, high_price, low_price, close_price, volume, interval) VALUES ('AAPL', '2024-02-06', 10, 11, 9, 10.5, 9223372036854775807, '1d')");
  b.run("INSERT INTO dividends (symbol, date, amount) VALUES ('AAPL', '2024-02-09', 0), ('AAPL', 'soon', 0.24), ('AAPL', '2024-05-10', 0.25)");
  b.run("INSERT INTO splits (symbol, date, ratio) VALUES ('AAPL', '2020-08-31', -4)");
  b.close();
  const r = await cli(["import", "stockula", "--sqlite", bad, "--store", `sqlite:${join(dir, "bad-store.db")}`, "--json"], { env });
  expect(r.code).toBe(4);
  const result = JSON.parse(r.stdout);
  expect(result.runs.map((s: { read: number; inserted: number; quarantined: number }) => [s.read, s.inserted, s.quarantined])).toEqual([[2, 1, 1]]);
  expect(result.reference).toMatchObject({ actions: { read: 4, stored: 1 }, instruments: { read: 2, inserted: 1 }, rejectedCount: 4, error: null });
  expect(result.reference.rejected.map((x: { row: string; reason: string }) => `${x.row}: ${x.reason}`)).toEqual([
    "stocks rowid 2: symbol is empty",
    "dividends rowid 1: AAPL.US: amount 0 is not a positive number",
    'dividends rowid 2: AAPL.US: date "soon" is not a date',
    "splits rowid 1: AAPL.US: ratio -4 is not a positive number",
  ]);
  const store = sqliteStore(`sqlite:${join(dir, "bad-store.db")}`);
  try {
    const [q] = await store.listQuarantine({ limit: 10 });
    expect(q!.reason).toBe('volume "9223372036854775807 (an integer beyond 2^53: not exact as a number)" is not a number');
  } finally {
    await store.close();
  }
}, 60_000);

const questdb = STORES.find((s) => s.kind === "questdb")!;
test.skipIf(questdb.unavailable !== null)("into QuestDB, which keeps no actions or instruments: the bars go in, the rest fails in one line", async () => {
  const r = await cli(["import", "stockula", "--sqlite", db, "--store", questdb.freshUrl(dir)], { env });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("ticksync: import stockula: the questdb store keeps no corporate actions or instruments (use SQLite or Postgres)");
  expect(r.stdout).toContain("stockula: succeeded");
}, 120_000);

describe("sqlite source: views, NUMERIC columns, where", () => {
  const path = join(dir, "numeric.db");
  const db = new Database(path, { create: true });
  // The TimescaleDB-shaped table of Stockula's ETL design (NUMERIC prices), and a view over it.
  db.exec(`CREATE TABLE prices (symbol TEXT, timestamp TEXT, interval_type TEXT, open_price NUMERIC(12,4), high_price NUMERIC(12,4),
    low_price NUMERIC(12,4), close_price NUMERIC(12,4), volume NUMERIC, adj_close TEXT);
    CREATE VIEW daily AS SELECT symbol, timestamp, open_price, high_price, low_price, close_price, volume, adj_close FROM prices WHERE interval_type = '1d';`);
  const good: [string, string, string, string, string, string, string, string][] = [];
  for (const symbol of ["AAPL", "MSFT"])
    for (const [i, d] of weekdays.entries()) {
      const o = (150 + i + (symbol === "MSFT" ? 250 : 0)).toFixed(4);
      good.push([symbol, d, o, (Number(o) + 1.2345).toFixed(4), (Number(o) - 0.5001).toFixed(4), (Number(o) + 0.0001).toFixed(4), String(5_000_000 + i), (Number(o) - 0.125).toFixed(4)]);
    }
  const insert = db.prepare("INSERT INTO prices VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  for (const g of good) insert.run(g[0], g[1], "1d", g[2], g[3], g[4], g[5], g[6], g[7]);
  // Hostile values: an integer past 2^53 (bun:sqlite would round it), a NUMERIC overflowing to
  // Infinity, decimal text with more digits than a number holds.
  insert.run("NVDA", "2024-02-05", "1d", "100", "101", "99", "100.5", "9223372036854775807", null);
  insert.run("NVDA", "2024-02-06", "1d", "100", "1e400", "99", "100.5", "1000", null);
  insert.run("NVDA", "2024-02-07", "1d", "100", "101", "99", "100.5", "1000", "100.12345678901234567");
  // Other intervals the view leaves out.
  for (const d of mondays) insert.run("AAPL", d, "1wk", "1", "2", "0.5", "1.5", "10", null);
  db.close();

  const cfg = (extra: Record<string, unknown>) =>
    v.parse(sqliteSourceSchema, {
      type: "sqlite",
      path,
      market: "NASDAQ",
      columns: { symbol: "symbol", ts: "timestamp", open: "open_price", high: "high_price", low: "low_price", close: "close_price", volume: "volume", adjClose: "adj_close" },
      ...extra,
    });

  test("a view is read by key paging, page after page; NUMERIC values exact; what does not fit is quarantined with its reason", async () => {
    const store = sqliteStore(join(dir, "view-store.db"));
    await store.migrate();
    try {
      const s = await runIngest({ store, source: sqliteSource("view", cfg({ table: "daily" })), batchSize: 3, now: () => Date.UTC(2025, 0, 1) });
      expect(s).toMatchObject({ read: 23, inserted: 20, quarantined: 3 });
      for (const symbol of ["AAPL", "MSFT"]) {
        const got = await store.queryBars({ symbol: `${symbol}.US`, interval: "1d", limit: 100 });
        const want = good.filter((g) => g[0] === symbol);
        expect(got.map((b) => [iso(b.ts), b.open, b.high, b.low, b.close, b.volume, b.adjClose])).toEqual(want.map((g) => [g[1], Number(g[2]), Number(g[3]), Number(g[4]), Number(g[5]), Number(g[6]), Number(g[7])]));
      }
      const q = await store.listQuarantine({ limit: 10 });
      const reasons = q.map((x) => x.reason).sort();
      expect(reasons).toEqual([
        'adjClose "100.12345678901234567 (20 significant digits: more than a number holds exactly)" is not a number',
        'high "Infinity (beyond the range of a number)" is not a number',
        'volume "9223372036854775807 (an integer beyond 2^53: not exact as a number)" is not a number',
      ]);
      // Paged by the view's key (symbol, timestamp): the checkpoint holds the last key read.
      expect((await store.getCheckpoint(`view:${path}#daily`))?.cursor).toEqual({ key: '["NVDA","2024-02-07"]' });
      // A second run reads nothing.
      expect((await runIngest({ store, source: sqliteSource("view", cfg({ table: "daily" })), batchSize: 3, now: () => Date.UTC(2025, 0, 1) })).read).toBe(0);
    } finally {
      await store.close();
    }
  });

  test("a key that is not unique stops the read with the key named, rather than skip rows", async () => {
    const store = sqliteStore(join(dir, "dup-store.db"));
    await store.migrate();
    try {
      const s = await runIngest({ store, source: sqliteSource("dup", cfg({ table: "prices", key: ["symbol"] })), batchSize: 4 });
      expect(s.outcome).toBe("failed");
      expect(s.error).toContain('key (symbol) is not unique in prices: ["AAPL"] is on more than one row');
    } finally {
      await store.close();
    }
  });

  test("where reads one interval as bound values: an injection attempt matches nothing, an unknown column is refused", async () => {
    const store = sqliteStore(join(dir, "where-store.db"));
    await store.migrate();
    try {
      const weekly = await runIngest({ store, source: sqliteSource("w", cfg({ table: "prices", where: { interval_type: "1wk" }, interval: "1w" })) });
      expect(weekly).toMatchObject({ read: 4, inserted: 4, quarantined: 0 });
      const list = await runIngest({ store, source: sqliteSource("l", cfg({ table: "prices", where: { interval_type: ["1wk", "1mo"] }, interval: "1w" })) });
      expect(list).toMatchObject({ read: 4 });
      const injected = await runIngest({ store, source: sqliteSource("i", cfg({ table: "prices", where: { interval_type: "1d' OR '1'='1" } })) });
      expect(injected).toMatchObject({ read: 0, inserted: 0 });
      const column = await runIngest({ store, source: sqliteSource("c", cfg({ table: "prices", where: { 'interval_type" = "interval_type" OR "1': "1" } })) });
      expect(column.outcome).toBe("failed");
      expect(column.error).toContain("not found in prices");
      // The file is untouched and still whole.
      const check = new Database(path, { readonly: true });
      expect((check.query("SELECT count(*) AS n FROM prices").get() as { n: number }).n).toBe(27);
      check.close();
      expect(() => v.parse(sqliteSourceSchema, { type: "sqlite", path, where: { a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9 } })).toThrow("at most 8 columns");
      expect(() => v.parse(sqliteSourceSchema, { type: "sqlite", path, where: { a: { toString: 1 } } })).toThrow();
    } finally {
      await store.close();
    }
  });
});

test("decimal text is a number only when exact; split ratios as fractions", () => {
  expect(exactDecimal("123.4500")).toBe(123.45);
  expect(exactDecimal("0.1")).toBe(0.1);
  expect(exactDecimal("9007199254740993")).toEqual({ reason: "16 significant digits: more than a number holds exactly" });
  expect(exactDecimal("9007199254740992")).toBe(9007199254740992);
  expect(exactDecimal("1e400")).toEqual({ reason: "beyond the range of a number" });
  expect(exactDecimal("1e-400")).toEqual({ reason: "too small for a number" });
  expect(Number.isNaN(exactDecimal("abc") as number)).toBe(true);
  expect([4, 0.5, 1.5, 50, 1 / 3, 0.1].map(splitFraction)).toEqual([
    { numerator: 4, denominator: 1 },
    { numerator: 1, denominator: 2 },
    { numerator: 3, denominator: 2 },
    { numerator: 50, denominator: 1 },
    { numerator: 1, denominator: 3 },
    { numerator: 1, denominator: 10 },
  ]);
});

const pgAvailable = STORES.find((s) => s.kind === "postgres")!.unavailable === null;
test.skipIf(!pgAvailable)("PostgreSQL numeric (text over the wire) goes through the same exactness check", async () => {
  const sql = postgres(PG_URL!, { max: 1, onnotice: () => {} });
  try {
    const [r] = await sql`SELECT '123.4500'::numeric AS a, '12345678901234567.891'::numeric AS b, ('1' || repeat('0', 400))::numeric AS c, '-0.000123'::numeric AS d`;
    expect(typeof r!.a).toBe("string");
    expect(exactDecimal(r!.a)).toBe(123.45);
    expect(exactDecimal(r!.b)).toEqual({ reason: "20 significant digits: more than a number holds exactly" });
    expect(exactDecimal(r!.c)).toEqual({ reason: "beyond the range of a number" });
    expect(exactDecimal(r!.d)).toBe(-0.000123);
  } finally {
    await sql.end();
  }
});
