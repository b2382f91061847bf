// The postgres table source takes a number only when it is exact, on a real PostgreSQL and a real
// QuestDB: a NUMERIC/DECIMAL value with more digits than a double holds, a bigint past 2^53 and
// NaN/Infinity are quarantined with the reason; ordinary NUMERIC(12,4) values come exactly.
// `where` reads only the rows with the given values, bound as parameters (an injection reads 0).
import { afterAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import * as v from "valibot";
import { waitFor } from "./helpers.ts";
import { tableServers } from "./stores.ts";
import { postgresSource, postgresSourceSchema } from "../src/sources/postgres.ts";
import { validateBatch } from "../src/domain/quality.ts";
import { exactCell, exactDecimal } from "../src/sources/table-read.ts";
import type { RawRow } from "../src/domain/bar.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const unique = () => `${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
const servers = tableServers("postgres source exactness");

test("exactCell's short-text fast path gives exactDecimal's answer", () => {
  const slow = (x: string) => {
    const n = exactDecimal(x);
    return typeof n === "number" ? x : `${x} (${n.reason})`;
  };
  const cases = ["1", "0", "-0", "0.0", "", " ", "abc", "0x10", "1e400", "-1e400", "1e-400", "5e-324", "1e308", "123456789012345", "12345678.1234", " 12 ", "Infinity", "NaN", "1.", ".5", "+7", "1e-320", "100.500000000000000000", "1000000000000000000000", "1.0e100", "1.0e4000", "1e-4000", "0.000000000001234567", "12345678901234567.0000", "123456789012345.0000", "0000000000000000", "-0.000000000000000000"];
  for (const x of cases) expect([x, exactCell(x)]).toEqual([x, slow(x)]);
  // Generated decimals with leading and trailing zeros, signs and exponents (a fixed LCG: the same cases each run).
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
  const digits = (n: number) => Array.from({ length: n }, () => String(rnd(10))).join("");
  for (let i = 0; i < 5000; i++) {
    const x = `${["", "-", "+"][rnd(3)]}${"0".repeat(rnd(3))}${digits(rnd(20))}${rnd(2) ? `.${digits(rnd(20))}` : ""}${"0".repeat(rnd(20))}${rnd(4) === 0 ? `e${rnd(2) ? "-" : ""}${rnd(400)}` : ""}`;
    expect([x, exactCell(x)]).toEqual([x, slow(x)]);
  }
  expect(exactCell("1e-400")).toBe("1e-400 (too small for a number)");
});

const D1 = "2024-01-02T00:00:00.000Z";
const D2 = "2024-01-03T00:00:00.000Z";

for (const srv of servers) {
  describe.skipIf(srv.unavailable !== null)(`${srv.kind} table source: exact numbers and where`, () => {
    const questdb = srv.kind === "questdb";
    const sql = srv.unavailable === null ? postgres(srv.pg!, { max: 1, fetch_types: !questdb, onnotice: () => {} }) : null;
    const tables: string[] = [];
    afterAll(async () => {
      for (const t of tables) await sql?.unsafe(`DROP TABLE IF EXISTS ${t}`).catch(() => {});
      await sql?.end();
    });

    /** A table of the given price type, filled with `rows` (SQL literals), readable once this returns. */
    async function table(priceType: string, rows: string[][]): Promise<string> {
      const name = `exact_${unique()}`;
      tables.push(name);
      const ddl = questdb
        ? `CREATE TABLE ${name} (symbol SYMBOL, ts TIMESTAMP, kind SYMBOL, open ${priceType}, high ${priceType}, low ${priceType}, close ${priceType}, volume LONG, rsi ${priceType}) TIMESTAMP(ts) PARTITION BY DAY WAL`
        : `CREATE TABLE ${name} (symbol text, ts timestamptz, kind text, open ${priceType}, high ${priceType}, low ${priceType}, close ${priceType}, volume bigint, rsi ${priceType})`;
      await sql!.unsafe(ddl);
      const cast = (x: string) => (questdb && /^'?-?[\d.]+'?$/.test(x) ? `cast(${x} as ${priceType})` : x);
      for (const r of rows) {
        const [symbol, ts, kind, ...nums] = r;
        const prices = nums.slice(0, 4).map(cast);
        await sql!.unsafe(`INSERT INTO ${name} (symbol, ts, kind, open, high, low, close, volume, rsi) VALUES ('${symbol}', '${ts}', '${kind}', ${prices.join(", ")}, ${nums[4]}, ${cast(nums[5]!)})`);
      }
      await waitFor(async () => Number((await sql!.unsafe(`SELECT count(*) AS n FROM ${name}`))[0]!.n) === rows.length, 30_000, `${name} to hold ${rows.length} rows`);
      return name;
    }

    async function read(name: string, extra: Record<string, unknown> = {}) {
      const cfg = v.parse(postgresSourceSchema, { type: "postgres", url: srv.url(), table: name, market: "WSE", extraColumns: ["rsi"], ...extra });
      const src = postgresSource("exact", cfg);
      const rows: RawRow[] = [];
      const [stream] = await src.streams();
      for await (const b of src.read(stream!, null, 2)) rows.push(...b.rows);
      const out = validateBatch(rows, { source: "exact", interval: "1d", market: "WSE" });
      return { stream, rows, bars: out.bars, reasons: Object.fromEntries(out.rejections.map((r) => [r.symbol ?? "", r.reason])) };
    }

    test("a NUMERIC(38,18) value past a double's precision and a bigint past 2^53 are quarantined with the reason", async () => {
      const t = await table(questdb ? "DECIMAL(38,18)" : "NUMERIC(38,18)", [
        ["PKN", D1, "a", "'100.5'", "'101.25'", "'99.125'", "'100.75'", "1000", "'55.5'"],
        ["CDR", D1, "a", "'100'", "'101'", "'99'", "'100.123456789012345678'", "1000", "'50'"],
        ["11B", D1, "a", "'100'", "'101'", "'99'", "'100'", "9007199254740993", "'50'"],
        ["ALR", D1, "a", "'100'", "'101'", "'99'", "'100'", "1000", "'55.123456789012345678'"],
      ]);
      const r = await read(t);
      expect(r.bars.map((b) => [b.symbol, b.open, b.high, b.low, b.close, b.volume, b.extras])).toEqual([["PKN.WA", 100.5, 101.25, 99.125, 100.75, 1000, { rsi: 55.5 }]]);
      expect(r.reasons).toEqual({
        "CDR.WA": 'close "100.123456789012345678 (21 significant digits: more than a number holds exactly)" is not a number',
        "11B.WA": 'volume "9007199254740993 (16 significant digits: more than a number holds exactly)" is not a number',
        "ALR.WA": 'extra rsi "55.123456789012345678 (20 significant digits: more than a number holds exactly)" is not a finite number',
      });
    });

    test("ordinary NUMERIC(12,4) values come exactly", async () => {
      const t = await table(questdb ? "DECIMAL(12,4)" : "NUMERIC(12,4)", [
        ["PKN", D1, "a", "'12345678.1234'", "'12345679.9999'", "'12345677.0001'", "'12345678.5'", "9007199254740991", "'0.0001'"],
      ]);
      const r = await read(t);
      expect(r.reasons).toEqual({});
      expect(r.bars.map((b) => [b.open, b.high, b.low, b.close, b.volume, b.extras])).toEqual([[12345678.1234, 12345679.9999, 12345677.0001, 12345678.5, 9007199254740991, { rsi: 0.0001 }]]);
    });

    test.skipIf(questdb)("NaN and Infinity (numeric and float8) are quarantined", async () => {
      const t = await table("NUMERIC", [
        ["PKN", D1, "a", "'NaN'", "101", "99", "100", "1000", "50"],
        ["CDR", D1, "a", "100", "'Infinity'", "99", "100", "1000", "50"],
        ["11B", D1, "a", "100", "101", "99", "100", "1000", "'-Infinity'"],
      ]);
      const f = await table("float8", [
        ["ALR", D1, "a", "100", "101", "99", "'Infinity'", "1000", "50"],
        ["PEO", D1, "a", "100", "101", "99", "100", "1000", "'NaN'"],
      ]);
      const r = { ...(await read(t)).reasons, ...(await read(f)).reasons };
      expect(r).toEqual({
        "PKN.WA": 'open "NaN" is not a number',
        "CDR.WA": 'high must be finite (got "Infinity")',
        "11B.WA": 'extra rsi "-Infinity" is not a finite number',
        "ALR.WA": 'close "Infinity (beyond the range of a number)" is not a number',
        "PEO.WA": "extra rsi NaN is not a finite number",
      });
    });

    test("where reads only the rows with the given values, bound as parameters", async () => {
      const t = await table(questdb ? "DOUBLE" : "float8", [
        ["PKN", D1, "1d", "100", "101", "99", "100", "1000", "50"],
        ["PKN", D2, "1d", "100", "101", "99", "100", "1000", "50"],
        ["CDR", D1, "1wk", "100", "101", "99", "100", "1000", "50"],
        ["11B", D1, "60m", "100", "101", "99", "100", "1000", "50"],
        ["ALR", D1, "1h", "100", "101", "99", "100", "1000", "50"],
      ]);
      const day = await read(t, { where: { kind: "1d" } });
      expect(day.stream).toBe(`${t}?kind=1d`);
      expect(day.bars.map((b) => `${b.symbol} ${new Date(b.ts).toISOString()}`)).toEqual([`PKN.WA ${D1}`, `PKN.WA ${D2}`]);
      const hours = await read(t, { where: { kind: ["60m", "1h"], symbol: ["11B", "ALR", "CDR"] } });
      expect(hours.bars.map((b) => b.symbol).sort()).toEqual(["11B.WA", "ALR.WA"]);
      const injected = await read(t, { where: { kind: "1d' OR '1'='1" } });
      expect(injected.rows.length).toBe(0);
      await expect(read(t, { where: { nosuch: "1d" } })).rejects.toThrow(/nosuch/);
      expect(() => v.parse(postgresSourceSchema, { type: "postgres", url: srv.url(), table: t, where: { "kind; DROP TABLE x": "1d" } })).toThrow(/column name/);
    });
  });
}
