// The fast path of validation (acceptRow) against the reference (checkRow and BarSchema): for
// every row, random or hand-picked, acceptRow either declines or returns exactly the bar checkRow
// returns, and that bar is BarSchema's output for it. Rows acceptRow declines go through checkRow,
// so every rejection still comes from checkRow.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { BarSchema, INTERVALS, type Bar, type RawRow } from "../src/domain/bar.ts";
import { acceptRow, checkRow, newValidateCache, validateBatch, validateRow, type ValidateContext } from "../src/domain/quality.ts";
import { rng } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);

const NUMBERS = [
  "61.5", "62.75", "60.1", "62", "0", "-0", "0.0", "-1", "-61.5", "1e3", "1E3", "1e-3", "1e400", "-1e400", "1e-400", "5e-324",
  "Infinity", "-Infinity", "+Infinity", "NaN", "nan", "inf", "", " ", "  \t", " 61.5", "61.5 ", "\u00a061.5", "61,5", "61.5.1",
  "0x10", "0X1f", " 0x10", "-0x10", "0b101", "0o17", ".5", "5.", "+5", "1_000", "12345678901234567890", "9007199254740993",
  "0.1", "0.30000000000000004", "1.7976931348623157e308", "abc", "1e", "e5", "--1", "2.5", "1234", "1234.0", "99999999999.99",
];
const SYMBOLS = ["PKN", "pkn", "PKN.WA", "pkn.pl", " PKN ", "", " ", "WSE:PKN", "XX:PKN", "AAPL.US", "BRK.B.US", "bad symbol", "ŁÓDŹ", "^WIG20", "A".repeat(25), "11B", "CDR"];
const DATES = ["2024-05-06", "20240506", "2024-05-06 10:30:00", "2024-05-06T10:30:00Z", "2024-02-30", "20240230", "0001-01-01", "1899-12-31", "2199-12-31", "2300-01-01", "", " ", "yesterday", " 2024-05-06 ", "2025-01-15", "2025-01-16", "2025-01-15 12:00:59", "2025-01-15 12:01:01", "1715000000", "1715000000000", "-5", "2024-05-06T10:30:00+02:00"];
// Bigints of both signs: a negative one once made checkRow throw (JSON.stringify in its reason).
const OTHER = [undefined, null, 0, 1, -1, 61.5, NaN, Infinity, -Infinity, 1.5, 3n, -3n, -(2n ** 70n), 0n, true, {}, new Date(0)];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

/** A field value: mostly valid-looking text near a base price, sometimes an edge case. */
function value(r: () => number, base: number): unknown {
  const x = r();
  if (x < 0.45) return (base * (1 + (r() - 0.5) * 0.1)).toFixed(Math.floor(r() * 4));
  if (x < 0.8) return pick(r, NUMBERS);
  if (x < 0.9) return pick(r, OTHER);
  return String(base * (r() - 0.3) * 10 ** Math.floor(r() * 20 - 10));
}

function randomRow(r: () => number, i: number): RawRow {
  const base = 1 + r() * 300;
  const fields: Record<string, unknown> = {
    symbol: r() < 0.85 ? pick(r, ["PKN", "CDR", "11B"]) : r() < 0.9 ? pick(r, SYMBOLS) : pick(r, OTHER),
    ts: r() < 0.8 ? pick(r, DATES.slice(0, 4)) : r() < 0.9 ? pick(r, DATES) : pick(r, OTHER),
  };
  for (const k of ["open", "high", "low", "close"]) fields[k] = r() < 0.7 ? base.toFixed(2) : value(r, base);
  // Well-ordered prices often, so the high/low rules are reached and passed.
  if (r() < 0.5) {
    const [o, c] = [base * (1 + (r() - 0.5) * 0.02), base * (1 + (r() - 0.5) * 0.02)];
    fields.open = o.toFixed(2);
    fields.close = c.toFixed(2);
    fields.high = (Math.max(o, c) * (1 + r() * 0.01)).toFixed(2);
    fields.low = (Math.min(o, c) * (1 - r() * 0.01)).toFixed(2);
  }
  for (const k of ["volume", "adjClose", "turnover", "trades"]) {
    const x = r();
    if (x < 0.3) continue; // no such field
    fields[k] = x < 0.6 ? String(Math.floor(r() * 1e6)) : value(r, k === "adjClose" ? base : 1000);
  }
  return { locator: `random.csv:${i}`, fields };
}

const CONTEXTS: ValidateContext[] = [
  { source: "test", interval: "1d", market: "WSE", now: NOW },
  { source: "test", interval: "1h", market: "NYSE", now: NOW, timeZone: "America/New_York" },
  { source: "test", interval: "1d", now: NOW, tsFormat: "yyyymmdd" },
  { source: "", interval: "1d", market: "WSE", now: NOW },
  { source: "test", interval: "2d" as never, market: "WSE", now: NOW },
  { source: "test", interval: "1w", market: "WSE", now: NOW, futureToleranceMs: 0 },
];

/** acceptRow declines, or agrees with checkRow and with BarSchema. Returns whether it accepted. */
function agree(row: RawRow, ctx: ValidateContext): boolean {
  const fast = acceptRow(row, ctx, newValidateCache());
  const ref = checkRow(row, ctx, newValidateCache());
  if (fast === null) return false;
  expect({ row: row.fields, out: fast }).toEqual({ row: row.fields, out: ref as Bar });
  // toEqual treats -0 and 0, and key order, loosely: compare exactly too.
  expect(Object.keys(fast)).toEqual(Object.keys(ref));
  for (const k of Object.keys(fast) as (keyof Bar)[]) expect(Object.is(fast[k], (ref as Bar)[k])).toBe(true);
  const parsed = v.safeParse(BarSchema, fast);
  expect(parsed.success).toBe(true);
  expect(Object.keys(parsed.output as object)).toEqual(Object.keys(fast));
  return true;
}

describe("acceptRow decides as checkRow and BarSchema do", () => {
  test("hand-picked edge cases, one field at a time", () => {
    const good = { symbol: "PKN", ts: "2024-05-06", open: "61.5", high: "62.75", low: "60.1", close: "62", volume: "1234" };
    let accepted = 0;
    let n = 0;
    for (const ctx of CONTEXTS) {
      accepted += Number(agree({ locator: "x:1", fields: good }, ctx));
      for (const k of ["open", "high", "low", "close", "volume", "adjClose", "turnover", "trades"])
        for (const x of [...NUMBERS, ...OTHER]) {
          const fields: Record<string, unknown> = { ...good, [k]: x };
          if (x === undefined) delete fields[k];
          accepted += Number(agree({ locator: `x:${++n}`, fields }, ctx));
        }
      for (const s of [...SYMBOLS, ...OTHER]) accepted += Number(agree({ locator: `x:${++n}`, fields: { ...good, symbol: s } }, ctx));
      for (const d of [...DATES, ...OTHER]) accepted += Number(agree({ locator: `x:${++n}`, fields: { ...good, ts: d } }, ctx));
    }
    expect(accepted).toBeGreaterThan(100); // the fast path is exercised, not only declined
  });

  test("200,000 random rows in six contexts", () => {
    const r = rng(20240506);
    let accepted = 0;
    for (let i = 0; i < 200_000; i++) accepted += Number(agree(randomRow(r, i), CONTEXTS[i % CONTEXTS.length]!));
    expect(accepted).toBeGreaterThan(20_000);
  });

  test("validateRow is acceptRow, else checkRow", () => {
    const r = rng(7);
    for (let i = 0; i < 20_000; i++) {
      const row = randomRow(r, i);
      const ctx = CONTEXTS[i % CONTEXTS.length]!;
      expect(validateRow(row, ctx)).toEqual(checkRow(row, ctx));
    }
  });

  test("a whole batch: the same bars, rejections and report as row-by-row checkRow", () => {
    const r = rng(99);
    const rows = Array.from({ length: 20_000 }, (_, i) => randomRow(r, i));
    const ctx = CONTEXTS[0]!;
    const out = validateBatch(rows, { ...ctx, lastTs: new Map() });
    const cache = newValidateCache();
    const ref = rows.map((row) => checkRow(row, ctx, cache));
    const refBars = ref.filter((x): x is Bar => !("rule" in x));
    const refRejections = ref.filter((x) => "rule" in x);
    // Duplicates are found after the row rules: every checkRow bar is a bar or a duplicate.
    expect(out.bars.length + (out.report.rules.duplicate ?? 0)).toBe(refBars.length);
    expect(out.rejections.filter((x) => x.rule !== "duplicate")).toEqual(refRejections as never);
    expect(INTERVALS).toContain(ctx.interval);
  });
});

describe("acceptRow accepts exactly what BarSchema (and the high/low rules) accept", () => {
  test("random candidates as rows through acceptRow itself: its bar is BarSchema's output, and it declines only what BarSchema or the rules refuse", () => {
    const r = rng(1);
    const vals: unknown[] = [0, -0, 1, -1, 0.5, 1e308, Infinity, -Infinity, NaN, 2 ** 53, 1.5, 3];
    const TS = ["2023-11-14T22:13:20Z", "2023-11-14T22:13:20.5Z", "2023-11-14"];
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 50_000; i++) {
      const ctx: ValidateContext = { source: r() < 0.9 ? "s" : "", interval: r() < 0.9 ? "1h" : ("2d" as never), market: "WSE", now: NOW };
      const fields: Record<string, unknown> = { symbol: "PKN.WA", ts: pick(r, TS) };
      for (const k of ["open", "high", "low", "close"]) fields[k] = pick(r, vals);
      if (r() < 0.5) [fields.low, fields.open, fields.close, fields.high] = [1, 1.5, pick(r, [1, 1.5, 3]), 3]; // ordered, so the rest decides
      if (r() < 0.9) fields.volume = pick(r, vals);
      for (const k of ["adjClose", "turnover", "trades"]) if (r() < 0.5) fields[k] = pick(r, vals);
      const fast = acceptRow({ locator: `c:${i}`, fields }, ctx, newValidateCache());
      // The candidate BarSchema judges: the row's values as they are, ts parsed, no volume as 0.
      const cand = {
        source: ctx.source, symbol: "PKN.WA", interval: ctx.interval, ts: Date.parse(fields.ts as string),
        open: fields.open, high: fields.high, low: fields.low, close: fields.close, volume: fields.volume ?? 0,
        adjClose: fields.adjClose ?? null, turnover: fields.turnover ?? null, trades: fields.trades ?? null,
      } as unknown as Record<string, number>;
      const parsed = v.safeParse(BarSchema, cand);
      const ordered = cand.high! >= Math.max(cand.open!, cand.close!, cand.low!) && cand.low! <= Math.min(cand.open!, cand.close!, cand.high!);
      if (fast === null) {
        refused++;
        expect({ fields, ctx, ok: parsed.success && ordered }).toEqual({ fields, ctx, ok: false });
      } else {
        accepted++;
        expect(parsed.success).toBe(true);
        expect(fast).toEqual(parsed.output as Bar);
        expect(Object.keys(fast)).toEqual(Object.keys(parsed.output as object));
      }
    }
    expect(accepted).toBeGreaterThan(500);
    expect(refused).toBeGreaterThan(500);
  });
});

describe("a bigint in any field is a readable rejection, never a throw", () => {
  test("negative and huge bigints in open, volume, trades and ts", () => {
    const good = { symbol: "PKN", ts: "2024-05-06", open: "61.5", high: "62.75", low: "60.1", close: "62", volume: "1234" };
    const cases: [string, unknown, string][] = [
      ["open", -3n, "price"],
      ["volume", -3n, "volume"],
      ["trades", -3n, "number"],
      ["trades", -(2n ** 70n), "number"],
      ["ts", -(10n ** 30n), "timestamp"],
    ];
    for (const [k, x, rule] of cases) {
      const out = checkRow({ locator: "x:1", fields: { ...good, [k]: x } }, CONTEXTS[0]!);
      expect(out).toMatchObject({ rule });
      expect((out as { reason: string }).reason).toContain(String(x).replace("n", ""));
      // The quarantine keeps the raw row as JSON: it must be serialisable.
      expect(() => JSON.stringify((out as { raw: unknown }).raw)).not.toThrow();
    }
  });
});
