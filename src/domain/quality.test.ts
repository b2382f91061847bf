// Quality rules one by one: every bad input becomes a rejection with the rule that caught it and
// a reason a person can read; good rows become bars; batches get duplicates, gaps and a score.
import { describe, expect, test } from "bun:test";
import { RULES, scoreBatch, validateBatch, validateRow, type Rejection, type ValidateContext } from "./quality.ts";
import type { Bar, RawRow } from "./bar.ts";
import { testTimeout } from "../../test/timeout.ts";

testTimeout();

const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);
const ctx: ValidateContext = { source: "test", interval: "1d", market: "WSE", now: NOW };

const GOOD = { symbol: "PKN", ts: "2024-05-06", open: "61.5", high: "62.75", low: "60.1", close: "62", volume: "1234" };

function row(fields: Record<string, unknown>, locator = "file.csv:2"): RawRow {
  return { locator, fields };
}

/** A copy of GOOD with some fields changed; `undefined` removes a field. */
function withFields(changes: Record<string, unknown>): Record<string, unknown> {
  const f: Record<string, unknown> = { ...GOOD, ...changes };
  for (const [k, val] of Object.entries(changes)) if (val === undefined) delete f[k];
  return f;
}

function rejected(changes: Record<string, unknown>, c: ValidateContext = ctx): Rejection {
  const out = validateRow(row(withFields(changes)), c);
  if (!("rule" in out)) throw new Error(`expected a rejection, got bar ${JSON.stringify(out)}`);
  return out;
}

function accepted(changes: Record<string, unknown>, c: ValidateContext = ctx): Bar {
  const out = validateRow(row(withFields(changes)), c);
  if ("rule" in out) throw new Error(`expected a bar, got ${out.rule}: ${out.reason}`);
  return out;
}

describe("a valid row", () => {
  test("becomes a bar with canonical symbol, numbers and the day's 00:00Z", () => {
    expect(validateRow(row(GOOD), ctx)).toEqual({
      source: "test",
      symbol: "PKN.WA",
      interval: "1d",
      ts: Date.UTC(2024, 4, 6),
      open: 61.5,
      high: 62.75,
      low: 60.1,
      close: 62,
      volume: 1234,
      adjClose: null,
      turnover: null,
      trades: null,
    });
  });

  test("decimals and exponents are read as numbers", () => {
    const bar = accepted({ open: "0.0001", high: "1e-3", low: "0.00005", close: "0.000999", volume: "2.5" });
    expect([bar.open, bar.high, bar.low, bar.close, bar.volume]).toEqual([0.0001, 0.001, 0.00005, 0.000999, 2.5]);
  });

  test("numbers already typed (a database source) pass through", () => {
    const bar = accepted({ open: 10, high: 12, low: 9, close: 11, volume: 0, trades: 3n });
    expect([bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trades]).toEqual([10, 12, 9, 11, 0, 3]);
  });

  test("adjClose, turnover and trades are kept when present", () => {
    const bar = accepted({ adjClose: "61.9", turnover: "76508.1", trades: "42" });
    expect(bar.adjClose).toBe(61.9);
    expect(bar.turnover).toBe(76508.1);
    expect(bar.trades).toBe(42);
  });

  test("empty optional fields become null, not 0", () => {
    const bar = accepted({ adjClose: "", turnover: " ", trades: null });
    expect(bar.adjClose).toBeNull();
    expect(bar.turnover).toBeNull();
    expect(bar.trades).toBeNull();
  });

  test("a daily bar's ts is floored to 00:00Z of its UTC date", () => {
    expect(accepted({ ts: "2024-05-06T22:30:00Z" }).ts).toBe(Date.UTC(2024, 4, 6));
    expect(accepted({ ts: "2024-05-06 15:45" }).ts).toBe(Date.UTC(2024, 4, 6));
    for (const interval of ["1w", "1mo"] as const) expect(accepted({ ts: "2024-05-06T09:00:00Z" }, { ...ctx, interval }).ts).toBe(Date.UTC(2024, 4, 6));
  });

  test("an intraday bar keeps its time", () => {
    const bar = accepted({ ts: "2024-05-06T09:05:00Z" }, { ...ctx, interval: "5m" });
    expect(bar.ts).toBe(Date.UTC(2024, 4, 6, 9, 5));
    expect(bar.interval).toBe("5m");
  });

  test("surrounding whitespace in numbers is ignored", () => {
    expect(accepted({ open: " 61.5 ", volume: "\t1234" }).open).toBe(61.5);
  });

  test("a suffixed symbol needs no default market", () => {
    expect(accepted({ symbol: "aapl.us" }, { source: "test", interval: "1d", now: NOW }).symbol).toBe("AAPL.US");
  });

  test("a ts in a configured time zone is read there before flooring", () => {
    // 00:30 in Warsaw (CEST, +02:00) is 22:30Z the day before: the UTC day is the 5th.
    const bar = accepted({ ts: "2024-05-06 00:30" }, { ...ctx, timeZone: "Europe/Warsaw" });
    expect(bar.ts).toBe(Date.UTC(2024, 4, 5));
  });
});

describe("rule: required", () => {
  for (const name of ["symbol", "ts", "open", "high", "low", "close"]) {
    test(`${name} missing or empty`, () => {
      for (const bad of [undefined, null, "", "   "]) {
        const r = rejected({ [name]: bad });
        expect(r.rule).toBe("required");
        expect(r.reason).toBe(`${name} is missing`);
        expect(r.locator).toBe("file.csv:2");
      }
    });
  }

  test("no volume column (undefined) is volume 0", () => {
    expect(accepted({ volume: undefined }).volume).toBe(0);
  });

  test("an empty volume cell is a hole in the data, not 0", () => {
    for (const bad of ["", "  "]) {
      const r = rejected({ volume: bad });
      expect(r.rule).toBe("required");
      expect(r.reason).toContain("volume");
      expect(r.symbol).toBe("PKN.WA");
      expect(r.ts).toBe(Date.UTC(2024, 4, 6));
    }
  });

  test("the rejection carries the raw fields for replay", () => {
    const fields = withFields({ close: "" });
    const out = validateRow(row(fields, "x.csv:9"), ctx) as Rejection;
    expect(out.raw).toEqual(fields);
    expect(out.locator).toBe("x.csv:9");
  });
});

describe("rule: number", () => {
  test("text that is not a number", () => {
    const r = rejected({ open: "abc" });
    expect(r.rule).toBe("number");
    expect(r.reason).toBe('open "abc" is not a number');
  });

  test("hex is not a price even though Number('0x10') is 16", () => {
    for (const bad of ["0x10", "0X1F", "-0x10"]) {
      const r = rejected({ high: bad });
      expect(r.rule).toBe("number");
      expect(r.reason).toContain("high");
    }
  });

  test("a decimal comma is not a number (the CSV source converts it)", () => {
    expect(rejected({ close: "61,5" }).rule).toBe("number");
  });

  test("'NaN', booleans and objects are not numbers", () => {
    expect(rejected({ low: "NaN" }).rule).toBe("number");
    expect(rejected({ low: true }).rule).toBe("number");
    expect(rejected({ low: {} }).rule).toBe("number");
    expect(rejected({ low: Number.NaN }).rule).toBe("number");
  });

  test("a non-numeric volume or optional field", () => {
    expect(rejected({ volume: "lots" }).rule).toBe("number");
    expect(rejected({ trades: "many" }).rule).toBe("number");
    expect(rejected({ adjClose: "n/a" }).rule).toBe("number");
  });

  test("trades must be whole", () => {
    const r = rejected({ trades: "1.5" });
    expect(r.rule).toBe("number");
    expect(r.reason).toContain("whole");
  });

  test("the first failing field in field order is reported", () => {
    expect(rejected({ open: "x", close: "y" }).reason).toContain("open");
  });
});

describe("rule: symbol", () => {
  test("a symbol that is not a ticker", () => {
    const r = rejected({ symbol: "PKN!" });
    expect(r.rule).toBe("symbol");
    expect(r.reason).toContain("PKN!");
    expect(r.ts).toBeUndefined();
  });

  test("an unknown market prefix", () => {
    expect(rejected({ symbol: "FOO:PKN" }).rule).toBe("symbol");
  });

  test("a bare ticker with no default market", () => {
    const r = rejected({ symbol: "PKN" }, { source: "test", interval: "1d", now: NOW });
    expect(r.rule).toBe("symbol");
    expect(r.reason).toContain("no default market");
  });
});

describe("rule: timestamp", () => {
  for (const bad of ["2024-02-30", "2023-02-29", "2024-13-01", "yesterday", "1899-12-31", "06/05/2024", "2024-05-06 25:00"]) {
    test(`${JSON.stringify(bad)} is not a timestamp`, () => {
      const r = rejected({ ts: bad });
      expect(r.rule).toBe("timestamp");
      expect(r.reason).toContain(JSON.stringify(bad));
      expect(r.symbol).toBe("PKN.WA");
    });
  }

  test("a year-0001 placeholder date is not a timestamp (not 1901)", () => {
    expect(rejected({ ts: "0001-01-01" }).rule).toBe("timestamp");
  });

  test("a leap day is a date", () => {
    expect(accepted({ ts: "2024-02-29" }).ts).toBe(Date.UTC(2024, 1, 29));
  });

  test("an impossible date with a zone is not a timestamp either", () => {
    // ISO with a Z goes through Date.parse, which rolls Feb 30 over into March 1.
    expect(rejected({ ts: "2024-02-30T10:00:00Z" }).rule).toBe("timestamp");
  });
});

describe("rule: future", () => {
  test("a daily bar dated after today is from the future", () => {
    const r = rejected({ ts: "2025-01-16" });
    expect(r.rule).toBe("future");
    expect(r.reason).toContain("2025-01-16");
    expect(r.ts).toBe(Date.UTC(2025, 0, 16));
  });

  test("today's daily bar is not (its 00:00Z is in the past)", () => {
    expect(accepted({ ts: "2025-01-15" }).ts).toBe(Date.UTC(2025, 0, 15));
  });

  test("intraday: within the default 60 s of skew is accepted, beyond it is not", () => {
    const c: ValidateContext = { ...ctx, interval: "1m" };
    expect(accepted({ ts: new Date(NOW + 60_000).toISOString() }, c).ts).toBe(NOW + 60_000);
    expect(rejected({ ts: new Date(NOW + 61_000).toISOString() }, c).rule).toBe("future");
  });

  test("the tolerance is configurable", () => {
    const c: ValidateContext = { ...ctx, interval: "1m", futureToleranceMs: 0 };
    expect(rejected({ ts: new Date(NOW + 1000).toISOString() }, c).rule).toBe("future");
    expect(accepted({ ts: new Date(NOW).toISOString() }, c).ts).toBe(NOW);
  });

  test("without a pinned clock the real clock is used", () => {
    const { now: _, ...unpinned } = ctx;
    expect(rejected({ ts: "2199-01-01" }, unpinned).rule).toBe("future");
  });
});

describe("rule: price", () => {
  for (const [field, bad] of [
    ["open", "0"],
    ["high", "-1"],
    ["low", "-0.01"],
    ["close", "0.0"],
  ] as const) {
    test(`${field} = ${bad} is not a positive price`, () => {
      const r = rejected({ [field]: bad });
      expect(r.rule).toBe("price");
      expect(r.reason).toContain(field);
      expect(r.reason).toContain(`"${bad}"`);
    });
  }

  test("'Infinity' parses as a number but is not finite", () => {
    for (const bad of ["Infinity", "-Infinity", "1e400"]) {
      const r = rejected({ close: bad });
      expect(r.rule).toBe("price");
      expect(r.reason).toContain("finite");
    }
  });

  test("adjClose, when present, is a price too", () => {
    expect(rejected({ adjClose: "0" }).rule).toBe("price");
  });
});

describe("rule: volume", () => {
  test("negative volume", () => {
    const r = rejected({ volume: "-5" });
    expect(r.rule).toBe("volume");
    expect(r.reason).toContain("negative");
  });

  test("infinite volume", () => {
    expect(rejected({ volume: "Infinity" }).rule).toBe("volume");
  });

  test("zero volume is allowed (a session without trades)", () => {
    expect(accepted({ volume: "0" }).volume).toBe(0);
  });
});

describe("rule: high", () => {
  test("high below open, close or low", () => {
    for (const changes of [
      { open: "63" }, // open above high 62.75
      { close: "63" },
      { low: "63", open: "63", close: "63" },
    ]) {
      const r = rejected(changes);
      expect(r.rule).toBe("high");
      expect(r.reason).toContain("high 62.75");
    }
  });

  test("high equal to the max is fine", () => {
    expect(accepted({ open: "62.75", high: "62.75" }).high).toBe(62.75);
  });
});

describe("rule: low", () => {
  test("low above open or close", () => {
    for (const changes of [{ low: "61.6" }, { close: "60", low: "60.5" }]) {
      const r = rejected(changes);
      expect(r.rule).toBe("low");
      expect(r.reason).toContain("low");
    }
  });

  test("low equal to the min is fine; all four equal is fine", () => {
    expect(accepted({ low: "61.5" }).low).toBe(61.5);
    expect(accepted({ open: "5", high: "5", low: "5", close: "5" }).close).toBe(5);
  });
});

test("every rule has a human description", () => {
  expect(Object.keys(RULES).sort()).toEqual(["duplicate", "future", "gap", "high", "low", "number", "price", "required", "sink", "symbol", "timestamp", "volume"]);
  for (const text of Object.values(RULES)) expect(text.length).toBeGreaterThan(10);
});

// ---------------------------------------------------------------------------------------------

const bar = (i: number, ts: string, extra: Record<string, unknown> = {}): RawRow => row({ ...GOOD, ts, ...extra }, `f.csv:${i}`);

describe("rule: duplicate (within a batch)", () => {
  test("the second occurrence is rejected and names the first", () => {
    const out = validateBatch([bar(2, "2024-05-06"), bar(3, "2024-05-07"), bar(4, "2024-05-06", { close: "61" })], ctx);
    expect(out.bars.map((b) => b.close)).toEqual([62, 62]);
    expect(out.rejections).toHaveLength(1);
    const r = out.rejections[0]!;
    expect(r.rule).toBe("duplicate");
    expect(r.locator).toBe("f.csv:4");
    expect(r.reason).toContain("f.csv:2");
    expect(r.reason).toContain("PKN.WA");
    expect(r.reason).toContain("2024-05-06");
    expect(out.report.rules.duplicate).toBe(1);
  });

  test("spellings that normalise to the same key are duplicates", () => {
    const out = validateBatch([bar(2, "2024-05-06"), row({ ...GOOD, symbol: "pkn.pl", ts: "20240506" }, "f.csv:3"), row({ ...GOOD, symbol: "WSE:PKN", ts: "2024-05-06T18:00:00Z" }, "f.csv:4")], ctx);
    expect(out.bars).toHaveLength(1);
    expect(out.rejections.map((r) => [r.locator, r.rule])).toEqual([
      ["f.csv:3", "duplicate"],
      ["f.csv:4", "duplicate"],
    ]);
    for (const r of out.rejections) expect(r.reason).toContain("f.csv:2");
  });

  test("the same ts for different symbols is not a duplicate", () => {
    const out = validateBatch([bar(2, "2024-05-06"), row({ ...GOOD, symbol: "CDR" }, "f.csv:3")], ctx);
    expect(out.rejections).toEqual([]);
    expect(out.bars.map((b) => b.symbol)).toEqual(["PKN.WA", "CDR.WA"]);
  });

  test("a rejected row does not claim the key: a later good row is accepted", () => {
    const out = validateBatch([bar(2, "2024-05-06", { high: "1" }), bar(3, "2024-05-06")], ctx);
    expect(out.rejections.map((r) => r.rule)).toEqual(["high"]);
    expect(out.bars).toHaveLength(1);
  });
});

describe("rule: gap (warnings against the exchange calendar)", () => {
  test("WSE 2024-12-20 → 2024-12-30 misses the 23rd and 27th (24-26 are holidays)", () => {
    const out = validateBatch([bar(2, "2024-12-20"), bar(3, "2024-12-30")], ctx);
    expect(out.bars).toHaveLength(2);
    expect(out.rejections).toEqual([]);
    expect(out.warnings).toEqual([{ rule: "gap", symbol: "PKN.WA", interval: "1d", after: "2024-12-20", before: "2024-12-30", missing: 2 }]);
    expect(out.report.gapSessions).toBe(2);
    expect(out.report.rules.gap).toBe(2);
  });

  test("consecutive sessions across a weekend and a holiday are no gap", () => {
    // 2024-12-23 (Mon) → 2024-12-27 (Fri): 24, 25, 26 are WSE holidays.
    const out = validateBatch([bar(2, "2024-12-20"), bar(3, "2024-12-23"), bar(4, "2024-12-27")], ctx);
    expect(out.warnings).toEqual([]);
    expect(out.report.gapSessions).toBe(0);
    expect(out.report.score).toBe(1);
  });

  test("NYSE: Thanksgiving is closed, the Friday after is a (short) session", () => {
    const c: ValidateContext = { ...ctx, market: "NYSE" };
    const out = validateBatch([row({ ...GOOD, symbol: "AAPL", ts: "2024-11-27" }, "a:2"), row({ ...GOOD, symbol: "AAPL", ts: "2024-12-02" }, "a:3")], c);
    expect(out.warnings).toEqual([{ rule: "gap", symbol: "AAPL.US", interval: "1d", after: "2024-11-27", before: "2024-12-02", missing: 1 }]);
  });

  test("rows out of order are sorted per symbol before gap checks", () => {
    const out = validateBatch([bar(2, "2024-12-30"), bar(3, "2024-12-20")], ctx);
    expect(out.warnings.map((w) => [w.after, w.before, w.missing])).toEqual([["2024-12-20", "2024-12-30", 2]]);
  });

  test("gaps are per symbol", () => {
    const out = validateBatch([bar(2, "2024-12-20"), row({ ...GOOD, symbol: "CDR", ts: "2024-12-23" }, "f:3"), bar(4, "2024-12-23")], ctx);
    expect(out.warnings).toEqual([]);
  });

  test("carried across batches through lastTs, which is updated per symbol", () => {
    const lastTs = new Map<string, number>();
    const first = validateBatch([bar(2, "2024-12-19"), bar(3, "2024-12-20")], { ...ctx, lastTs });
    expect(first.warnings).toEqual([]);
    expect([...lastTs]).toEqual([["PKN.WA", Date.UTC(2024, 11, 20)]]);
    const second = validateBatch([bar(4, "2024-12-30"), row({ ...GOOD, symbol: "CDR", ts: "2024-12-30" }, "f:5")], { ...ctx, lastTs });
    expect(second.warnings).toEqual([{ rule: "gap", symbol: "PKN.WA", interval: "1d", after: "2024-12-20", before: "2024-12-30", missing: 2 }]);
    expect(lastTs.get("PKN.WA")).toBe(Date.UTC(2024, 11, 30));
    expect(lastTs.get("CDR.WA")).toBe(Date.UTC(2024, 11, 30));
  });

  test("a batch older than lastTs (a backfill) neither warns nor moves lastTs back", () => {
    const lastTs = new Map([["PKN.WA", Date.UTC(2024, 11, 30)]]);
    const out = validateBatch([bar(2, "2024-12-02"), bar(3, "2024-12-20")], { ...ctx, lastTs });
    expect(out.warnings).toEqual([]);
    expect(lastTs.get("PKN.WA")).toBe(Date.UTC(2024, 11, 30));
  });

  test("without lastTs the first bar of a batch has nothing to compare with", () => {
    expect(validateBatch([bar(2, "2024-12-30")], ctx).warnings).toEqual([]);
  });

  test("only daily bars are checked", () => {
    const c: ValidateContext = { ...ctx, interval: "1h" };
    expect(validateBatch([bar(2, "2024-12-20T09:00:00Z"), bar(3, "2024-12-30T09:00:00Z")], c).warnings).toEqual([]);
  });

  test("dates outside the calendar's coverage are not judged", () => {
    expect(validateBatch([bar(2, "1999-12-20"), bar(3, "1999-12-30")], ctx).warnings).toEqual([]);
  });

  test("rejected rows do not count as sessions", () => {
    const out = validateBatch([bar(2, "2024-12-20"), bar(3, "2024-12-23", { open: "0" }), bar(4, "2024-12-27")], ctx);
    expect(out.warnings.map((w) => w.missing)).toEqual([1]);
  });
});

describe("score", () => {
  test("10 rows, 2 rejected: 0.8", () => {
    // 8 consecutive WSE sessions (no gap) plus two bad rows that are not PKN sessions at all:
    // a rejected PKN session would leave a gap and cost more than its row.
    const dates = ["2024-05-06", "2024-05-07", "2024-05-08", "2024-05-09", "2024-05-10", "2024-05-13", "2024-05-14", "2024-05-15"];
    const rows = dates.map((d, i) => bar(i + 2, d));
    rows.splice(3, 0, row({ ...GOOD, symbol: "PKN!" }, "f.csv:90"));
    rows.push(row({ ...GOOD, volume: "-1", ts: "2024-05-16", symbol: "CDR" }, "f.csv:91"));
    const out = validateBatch(rows, ctx);
    expect(out.report).toEqual({ read: 10, accepted: 8, rejected: 2, gapSessions: 0, score: 0.8, rules: { symbol: 1, volume: 1 } });
  });

  test("gaps cost half their share of expected sessions", () => {
    // 2 bars, 2 missing sessions: missing share 2/4, score 1 × (1 − 0.5 × 0.5).
    const out = validateBatch([bar(2, "2024-12-20"), bar(3, "2024-12-30")], ctx);
    expect(out.report.score).toBe(0.75);
  });

  test("rejections and gaps together", () => {
    // 3 read, 2 accepted (one with a gap of 2 between them): 2/3 × (1 − 0.5 × 2/4) = 0.5.
    const out = validateBatch([bar(2, "2024-12-20"), bar(3, "2024-12-23", { high: "1" }), bar(4, "2024-12-30")], ctx);
    expect(out.report.accepted).toBe(2);
    expect(out.report.rejected).toBe(1);
    expect(out.report.gapSessions).toBe(2);
    expect(out.report.score).toBe(0.5);
    expect(out.report.rules).toEqual({ high: 1, gap: 2 });
  });

  test("an empty batch scores 1", () => {
    expect(validateBatch([], ctx).report).toEqual({ read: 0, accepted: 0, rejected: 0, gapSessions: 0, score: 1, rules: {} });
  });

  test("all rejected scores 0", () => {
    expect(validateBatch([bar(2, "yesterday"), bar(3, "2024-05-06", { open: "" })], ctx).report.score).toBe(0);
  });

  test("scoreBatch rounds to 6 decimals and stays within 0..1", () => {
    expect(scoreBatch(3, 1, 0, {}).score).toBe(0.333333);
    expect(scoreBatch(3, 2, 0, {}).score).toBe(0.666667);
    expect(scoreBatch(1, 1, 1000, {}).score).toBeGreaterThanOrEqual(0.5);
    expect(scoreBatch(0, 0, 0, {}).score).toBe(1);
  });
});
