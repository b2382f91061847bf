// Ingest end to end, in process, against a real SQLite file: CSV and SQLite fixtures, the
// quarantine, idempotency, re-delivery with corrections.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { sqliteStore } from "../src/stores/sqlite/index.ts";
import { csvSource } from "../src/sources/csv.ts";
import { sqliteSource } from "../src/sources/sqlite.ts";
import { runIngest } from "../src/pipeline/ingest.ts";
import { stooqCsv, tempDir, writeFile } from "./helpers.ts";
import * as v from "valibot";
import { csvSourceSchema } from "../src/sources/csv.ts";
import { sqliteSourceSchema } from "../src/sources/sqlite.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const dir = tempDir();
const csvCfg = (path: string, extra: Record<string, unknown> = {}) => v.parse(csvSourceSchema, { type: "csv", path, market: "WSE", ...extra });

function fixture() {
  const d = join(dir, `csv-${crypto.randomUUID()}`);
  writeFile(
    join(d, "pkn_d.csv"),
    stooqCsv([
      ["2024-01-02", 60.1, 61.5, 59.8, 61.2, 1_000_000],
      ["2024-01-03", 61.2, 62.0, 60.5, 61.9, 900_000],
      ["2024-01-04", 61.9, 61.0, 62.5, 61.5, 800_000], // high below low: rule high
      ["2024-01-05", 61.5, 63.0, 61.4, 62.8, 750_000],
    ]),
  );
  writeFile(
    join(d, "cdr_d.csv"),
    stooqCsv([
      ["2024-01-02", 120, 125, 119, 124, 50_000],
      ["2024-01-03", 124, 126, 122, 123, -5], // negative volume
      ["2024-01-03", 124, 126, 122, 123, 5], // duplicate of the row above after it is rejected? no: first valid one
      ["2024-01-04", 123, 127, 121, 126, 40_000],
    ]),
  );
  return d;
}

describe("CSV ingest into the embedded store", () => {
  test("stores good rows, quarantines bad ones with rule, reason and locator, records the run", async () => {
    const d = fixture();
    const store = sqliteStore(join(d, "store.db"));
    await store.migrate();
    const s = await runIngest({ store, source: csvSource("stooq", csvCfg(d)), batchSize: 2 });
    expect(s.outcome).toBe("succeeded");
    expect(s.read).toBe(8);
    expect(s.inserted).toBe(6);
    expect(s.quarantined).toBe(2);
    // The rejected PKN row leaves one session missing: 6/8 accepted, less half of 1/7 missing.
    expect(s.quality?.rules).toEqual({ high: 1, volume: 1, gap: 1 });
    expect(s.quality?.score).toBeCloseTo((6 / 8) * (1 - 0.5 / 7), 6);

    const bars = await store.queryBars({ symbol: "PKN.WA", interval: "1d", limit: 10 });
    expect(bars.map((b) => new Date(b.ts).toISOString().slice(0, 10))).toEqual(["2024-01-02", "2024-01-03", "2024-01-05"]);
    expect(bars[0]).toEqual({ source: "stooq", symbol: "PKN.WA", interval: "1d", ts: Date.UTC(2024, 0, 2), open: 60.1, high: 61.5, low: 59.8, close: 61.2, volume: 1_000_000 });
    const cdr = await store.queryBars({ symbol: "CDR.WA", interval: "1d", limit: 10 });
    // The rejected negative-volume row does not block the valid re-delivery of the same session.
    expect(cdr.map((b) => b.volume)).toEqual([50_000, 5, 40_000]);

    const q = await store.listQuarantine({ limit: 10 });
    expect(q.map((r) => r.rule).sort()).toEqual(["high", "volume"]);
    const high = q.find((r) => r.rule === "high")!;
    expect(high.locator).toBe(`${join(d, "pkn_d.csv")}:4`);
    expect(high.reason).toContain("high 61 is below max");
    expect(high.raw).toMatchObject({ open: "61.9", high: "61", low: "62.5", symbol: "pkn" });
    expect(high.runId).toBe(s.runId);

    const [run] = await store.listRuns({ limit: 1 });
    expect(run).toMatchObject({ id: s.runId, kind: "ingest", source: "stooq", outcome: "succeeded", read: 8, inserted: 6, quarantined: 2 });
    expect(run!.fromTs).toBe(Date.UTC(2024, 0, 2));
    expect(run!.toTs).toBe(Date.UTC(2024, 0, 5));
    expect(run!.durationMs).toBeGreaterThanOrEqual(0);
    const series = await store.listSeries();
    expect(series.map((x) => [x.symbol, x.bars])).toEqual([
      ["CDR.WA", 3],
      ["PKN.WA", 3],
    ]);
    await store.close();
  });

  test("ingesting twice stores the same rows; the second run reads nothing; a forced re-read writes nothing", async () => {
    const d = fixture();
    const path = join(d, "store.db");
    const store = sqliteStore(path);
    await store.migrate();
    await runIngest({ store, source: csvSource("stooq", csvCfg(d)) });
    const second = await runIngest({ store, source: csvSource("stooq", csvCfg(d)) });
    expect(second.read).toBe(0);
    expect(await store.countBars()).toBe(6);
    await store.close();

    // Drop the checkpoints: every row is delivered again and must be reported unchanged, with no write.
    const raw = new Database(path);
    raw.exec("DELETE FROM checkpoints");
    const before = raw.query("SELECT group_concat(updated_at || ':' || run_id) AS s FROM bars").get() as { s: string };
    raw.close();
    const again = sqliteStore(path);
    const third = await runIngest({ store: again, source: csvSource("stooq", csvCfg(d)) });
    expect(third).toMatchObject({ read: 8, inserted: 0, updated: 0, unchanged: 6, quarantined: 2 });
    expect(await again.countBars()).toBe(6);
    expect((await again.listQuarantine({ limit: 10 })).length).toBe(2);
    await again.close();
    const check = new Database(path);
    expect((check.query("SELECT group_concat(updated_at || ':' || run_id) AS s FROM bars").get() as { s: string }).s).toBe(before.s);
    check.close();
  });

  test("a replaced file with a corrected price updates exactly that bar", async () => {
    const d = fixture();
    const store = sqliteStore(join(d, "store.db"));
    await store.migrate();
    await runIngest({ store, source: csvSource("stooq", csvCfg(d)) });
    writeFile(
      join(d, "pkn_d.csv"),
      stooqCsv([
        ["2024-01-02", 60.1, 61.5, 59.8, 61.25, 1_000_000],
        ["2024-01-03", 61.2, 62.0, 60.5, 61.9, 900_000],
        ["2024-01-05", 61.5, 63.0, 61.4, 62.8, 750_000],
      ]),
    );
    const s = await runIngest({ store, source: csvSource("stooq", csvCfg(join(d, "pkn_d.csv"))) });
    expect(s).toMatchObject({ read: 3, inserted: 0, updated: 1, unchanged: 2, quarantined: 0 });
    const [bar] = await store.queryBars({ symbol: "PKN.WA", interval: "1d", limit: 1 });
    expect(bar!.close).toBe(61.25);
    await store.close();
  });

  test("rows appended to a file are picked up from the checkpoint", async () => {
    const d = join(dir, "append");
    const file = writeFile(join(d, "11b_d.csv"), stooqCsv([["2024-01-02", 400, 410, 395, 405, 1000]]));
    const store = sqliteStore(join(d, "store.db"));
    await store.migrate();
    await runIngest({ store, source: csvSource("stooq", csvCfg(file)) });
    await Bun.write(file, (await Bun.file(file).text()) + "2024-01-03,405,412,401,411,1200\n");
    const s = await runIngest({ store, source: csvSource("stooq", csvCfg(file)) });
    expect(s).toMatchObject({ read: 1, inserted: 1 });
    expect((await store.queryBars({ symbol: "11B.WA", interval: "1d", limit: 10 })).map((b) => b.close)).toEqual([405, 411]);
    await store.close();
  });

  test("a missing file fails its stream and the run, and the other streams still load", async () => {
    const d = fixture();
    const store = sqliteStore(join(d, "store.db"));
    await store.migrate();
    const s = await runIngest({ store, source: csvSource("stooq", csvCfg(d)), streams: [join(d, "nope_d.csv"), join(d, "pkn_d.csv")] });
    expect(s.outcome).toBe("failed");
    expect(s.error).toContain("1 of 2 streams failed");
    expect(s.streams[0]!.error).toContain("nope_d.csv");
    expect(s.inserted).toBe(3);
    const [run] = await store.listRuns({ limit: 1 });
    expect(run!.outcome).toBe("failed");
    await store.close();
  });
});

describe("SQLite file source", () => {
  function legacyDb(path: string) {
    const db = new Database(path, { create: true });
    db.exec(`CREATE TABLE stock_data (id INTEGER PRIMARY KEY, symbol TEXT, date TEXT, open REAL, high REAL, low REAL, close REAL, volume INTEGER)`);
    db.exec(`CREATE TABLE price_history (ticker TEXT, trade_date INTEGER, o REAL, h REAL, l REAL, c REAL, vol REAL, adj REAL)`);
    const ins = db.prepare("INSERT INTO stock_data (symbol, date, open, high, low, close, volume) VALUES (?,?,?,?,?,?,?)");
    ins.run("PKN.WA", "2024-03-01", 60, 61, 59, 60.5, 1000);
    ins.run("pkn.pl", "2024-03-04", 60.5, 62, 60, 61.5, 2000);
    ins.run("CDR", "2024-03-01", 120, 119, 118, 119.5, 10); // high below open
    ins.run("CDR", "2024-03-04", 119.5, 121, 119, 120, null); // null volume: required
    const ph = db.prepare("INSERT INTO price_history VALUES (?,?,?,?,?,?,?,?)");
    for (let i = 0; i < 25; i++) ph.run("AAPL", Date.UTC(2024, 0, 2 + i) / 1000, 180 + i, 182 + i, 179 + i, 181 + i, 5e7, 180.5 + i);
    db.close();
  }

  test("reads a stock_data table with the default mapping and a price_history table with a custom one", async () => {
    const d = join(dir, "sqlite-src");
    const legacy = join(d, "legacy.db");
    writeFile(join(d, ".keep"), "");
    legacyDb(legacy);
    const store = sqliteStore(join(d, "store.db"));
    await store.migrate();
    const a = await runIngest({ store, source: sqliteSource("legacy", v.parse(sqliteSourceSchema, { type: "sqlite", path: legacy, market: "WSE" })) });
    expect(a).toMatchObject({ outcome: "succeeded", read: 4, inserted: 2, quarantined: 2 });
    expect((await store.queryBars({ symbol: "PKN.WA", interval: "1d", limit: 10 })).map((b) => b.close)).toEqual([60.5, 61.5]);
    const q = await store.listQuarantine({ limit: 10, source: "legacy" });
    expect(q.map((r) => [r.rule, r.locator.split(":").pop()]).sort()).toEqual([
      ["high", "rowid=3"],
      ["required", "rowid=4"],
    ]);

    const cfg = v.parse(sqliteSourceSchema, {
      type: "sqlite",
      path: legacy,
      table: "price_history",
      market: "NYSE",
      tsFormat: "epoch_s",
      columns: { symbol: "ticker", ts: "trade_date", open: "o", high: "h", low: "l", close: "c", volume: "vol", adjClose: "adj" },
    });
    const b = await runIngest({ store, source: sqliteSource("history", cfg), batchSize: 10 });
    expect(b).toMatchObject({ outcome: "succeeded", read: 25, inserted: 25, quarantined: 0 });
    const aapl = await store.queryBars({ symbol: "AAPL.US", interval: "1d", limit: 100 });
    expect(aapl.length).toBe(25);
    expect(aapl[24]).toMatchObject({ ts: Date.UTC(2024, 0, 26), open: 204, adjClose: 204.5 });
    // Resumes after the last rowid: nothing new, nothing read.
    expect((await runIngest({ store, source: sqliteSource("history", cfg) })).read).toBe(0);
    const add = new Database(legacy);
    add.query("INSERT INTO price_history VALUES ('AAPL', ?, 1, 2, 0.5, 1.5, 10, 1.4)").run(Date.UTC(2024, 1, 1) / 1000);
    add.close();
    expect(await runIngest({ store, source: sqliteSource("history", cfg) })).toMatchObject({ read: 1, inserted: 1 });
    await store.close();
  });

  test("a mapped column that does not exist fails with its name", async () => {
    const d = join(dir, "sqlite-bad");
    writeFile(join(d, ".keep"), "");
    legacyDb(join(d, "legacy.db"));
    const store = sqliteStore(join(d, "store.db"));
    await store.migrate();
    const cfg = v.parse(sqliteSourceSchema, { type: "sqlite", path: join(d, "legacy.db"), table: "price_history", columns: { symbol: "ticker", ts: "when" } });
    const s = await runIngest({ store, source: sqliteSource("x", cfg) });
    expect(s.outcome).toBe("failed");
    expect(s.error).toContain("column when (for ts) not found in price_history");
    await store.close();
  });
});
