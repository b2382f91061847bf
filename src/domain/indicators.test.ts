// Indicators against values worked out by hand (with a calculator) for a 12-bar series. The
// expected numbers are literals, not recomputed by the code under test.
import { describe, expect, test } from "bun:test";
import type { Bar } from "./bar.ts";
import {
  computeIndicators,
  ema,
  IndicatorListSchema,
  logReturn,
  parseIndicator,
  rsi,
  simpleReturn,
  sma,
  volatility,
  vwap,
  warmupBars,
  type IndicatorSpec,
} from "./indicators.ts";
import * as v from "valibot";
import { testTimeout } from "../../test/timeout.ts";

testTimeout();

const CLOSES = [10, 11, 10.5, 11.5, 12, 11, 11.5, 12.5, 13, 12, 12.5, 13.5];
const DAY = 86_400_000;
const bar = (close: number, i: number, extra: Partial<Bar> = {}): Bar => ({
  source: "t",
  symbol: "X.US",
  interval: "1d",
  ts: Date.UTC(2024, 0, 1) + i * DAY,
  open: close,
  high: close + 0.5,
  low: close - 0.5,
  close,
  volume: 100,
  ...extra,
});
const BARS = CLOSES.map((c, i) => bar(c, i));

function expectSeries(actual: (number | null)[], expected: (number | null)[], digits = 9) {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => {
    if (e === null) expect(actual[i]).toBeNull();
    else expect(actual[i]!).toBeCloseTo(e, digits);
  });
}

describe("returns", () => {
  test("simple return close/prev - 1, null first", () => {
    // 11/10-1, 10.5/11-1, 11.5/10.5-1, 12/11.5-1, 11/12-1, 11.5/11-1, 12.5/11.5-1, 13/12.5-1, 12/13-1, 12.5/12-1, 13.5/12.5-1
    expectSeries(simpleReturn(BARS), [null, 0.1, -0.0454545454545, 0.0952380952381, 0.0434782608696, -0.0833333333333, 0.0454545454545, 0.0869565217391, 0.04, -0.0769230769231, 0.0416666666667, 0.08]);
  });
  test("log return ln(close/prev)", () => {
    expectSeries(logReturn(BARS), [null, 0.0953101798043, -0.0465200156349, 0.0909717782057, 0.0425596144188, -0.0870113769896, 0.0444517625708, 0.0833816089391, 0.0392207131533, -0.0800427076735, 0.0408219945203, 0.0769610411361]);
  });
});

describe("rolling volatility", () => {
  test("sample stdev of the last 3 log returns, first at bar 3", () => {
    // bar 3: returns 0.0953102, -0.0465200, 0.0909718; mean 0.0465873; squared deviations
    // 0.0023739 + 0.0086690 + 0.0019700 = 0.0130129; / (3 - 1) = 0.0065065; sqrt = 0.0806625
    expectSeries(volatility(BARS, 3), [null, null, null, 0.0806624855, 0.0697410824, 0.0920238945, 0.0753600017, 0.0892859262, 0.0241284118, 0.0845393947, 0.0693236418, 0.0822237639]);
  });
  test("annualised ×√252", () => {
    // 0.0806624855 × 15.8745079 = 1.2804773
    expectSeries(volatility(BARS, 3, 252), [null, null, null, 1.2804772612, 1.1071053616, 1.4608340371, 1.1963029392, 1.4173701371, 0.3830266628, 1.342021286, 1.1004786973, 1.3052617863]);
  });
  test("a window below 2 is refused", () => expect(() => volatility(BARS, 1)).toThrow());
});

describe("moving averages", () => {
  test("SMA(3)", () => {
    // (10+11+10.5)/3, (11+10.5+11.5)/3, (10.5+11.5+12)/3, ...
    expectSeries(sma(BARS, 3), [null, null, 10.5, 11, 11.3333333333, 11.5, 11.5, 11.6666666667, 12.3333333333, 12.5, 12.5, 12.6666666667]);
  });
  test("EMA(3): α = 0.5, seeded with the SMA of the first 3", () => {
    // 10.5; 0.5·11.5 + 0.5·10.5 = 11; 0.5·12 + 0.5·11 = 11.5; 0.5·11 + 0.5·11.5 = 11.25; 11.375;
    // 11.9375; 12.46875; 12.234375; 12.3671875; 12.93359375
    expectSeries(ema(BARS, 3), [null, null, 10.5, 11, 11.5, 11.25, 11.375, 11.9375, 12.46875, 12.234375, 12.3671875, 12.93359375]);
  });
  test("EMA(1) is the close, SMA(1) too", () => {
    expectSeries(ema(BARS, 1), CLOSES);
    expectSeries(sma(BARS, 1), CLOSES);
  });
});

describe("RSI (Wilder)", () => {
  test("RSI(3)", () => {
    // changes +1 -0.5 +1 +0.5 -1 +0.5 +1 +0.5 -1 +0.5 +1
    // bar 3: avgGain (1+0+1)/3 = 2/3, avgLoss 0.5/3 = 1/6, RS 4, RSI 100 - 100/5 = 80
    // bar 4: avgGain (2/3·2 + 0.5)/3 = 11/18, avgLoss (1/6·2)/3 = 1/9, RS 5.5, RSI 84.615385
    // bar 5: avgGain (11/18·2)/3 = 11/27, avgLoss (1/9·2 + 1)/3 = 11/27, RSI 50
    // bar 6: 71/162 vs 44/162: RSI 100 - 100·44/115 = 61.739130
    // bar 7: 152/243 vs 44/243: 100 - 100·44/196 = 77.551020
    // bar 8: 851/1458 vs 176/1458: 100 - 100·176/1027 = 82.862707
    // bar 9: 851/2187 vs 905/2187: 100 - 100·905/1756 = 48.462415
    // bar 10: 5591/13122 vs 3620/13122: 100 - 100·3620/9211 = 60.699164
    // bar 11: 24304/39366 vs 7240/39366: 100 - 100·7240/31544 = 77.047933
    expectSeries(rsi(BARS, 3), [null, null, null, 80, 84.6153846154, 50, 61.7391304348, 77.5510204082, 82.8627069133, 48.4624145786, 60.699164043, 77.0479330459]);
  });
  test("100 when nothing fell, 50 when nothing moved", () => {
    expect(rsi([1, 2, 3, 4].map((c, i) => bar(c, i)), 3)[3]).toBe(100);
    expect(rsi([5, 5, 5, 5].map((c, i) => bar(c, i)), 3)[3]).toBe(50);
  });
});

describe("VWAP", () => {
  test("per session, from typical price × volume, bars without volume add nothing", () => {
    const b = [
      bar(10, 0, { high: 11, low: 9, volume: 100 }), // session A: tp 10
      bar(11, 1, { high: 12, low: 10, volume: 0 }), // no volume
      bar(12, 2, { high: 12.5, low: 11, volume: 300 }), // tp 35.5/3 = 11.8333
      bar(15, 3, { high: 16, low: 14, volume: 0 }), // session B: nothing traded yet
      bar(20, 4, { high: 21, low: 19, volume: 50 }), // tp 20
    ];
    const session = (x: Bar) => (x.ts < Date.UTC(2024, 0, 4) ? "A" : "B");
    // A: 10·100/100 = 10; 10; (1000 + 11.8333·300)/400 = (1000 + 3550)/400 = 11.375
    expectSeries(vwap(b, session), [10, 10, 11.375, null, 20]);
  });
  test("daily bars: each bar its own session, VWAP = typical price", () => {
    expectSeries(vwap([bar(10, 0, { high: 12, low: 9 }), bar(10, 1, { volume: 0 })]), [31 / 3, null]);
  });
});

describe("indicator sets", () => {
  test("names parse; bad ones say what is expected", () => {
    expect(parseIndicator("sma:20")).toEqual({ kind: "sma", key: "sma:20", n: 20 });
    expect(parseIndicator("vol:20:ann")).toEqual({ kind: "vol", key: "vol:20:ann", n: 20, annualised: true });
    expect(parseIndicator("vwap")).toEqual({ kind: "vwap", key: "vwap" });
    expect(parseIndicator("macd")).toContain("unknown indicator");
    expect(parseIndicator("sma:0")).toContain("between 1 and 1000");
    expect(parseIndicator("vol:1")).toContain("between 2 and 1000");
    expect(v.safeParse(IndicatorListSchema, ["sma:20", "rsi:14"]).success).toBe(true);
    expect(v.safeParse(IndicatorListSchema, ["sma:20", "sma:20"]).success).toBe(false);
    expect(v.safeParse(IndicatorListSchema, []).success).toBe(false);
  });

  test("warm-up: enough bars that a later window gives the full-history values", () => {
    const specs = ["ema:10", "rsi:5", "sma:20", "vol:7"].map((s) => parseIndicator(s) as IndicatorSpec);
    const w = warmupBars(specs, 1);
    expect(w).toBe(9 + Math.ceil((37 * 11) / 2)); // EMA(10) needs the most: 9 + 204 = 213
    // A long random walk: values computed from the series' start equal those from a window that
    // starts `w` bars before the bar looked at.
    let x = 100;
    let seed = 7;
    const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const long = Array.from({ length: 1000 }, (_, i) => bar((x *= 1 + (rnd() - 0.5) / 50), i));
    const full = computeIndicators(long, specs);
    const at = 900;
    const part = computeIndicators(long.slice(at - w), specs);
    for (const s of specs) expect(part[s.key]![w]!).toBeCloseTo(full[s.key]![at]!, 10);
  });

  test("annualised volatility needs a period count", () => {
    expect(() => computeIndicators(BARS, [parseIndicator("vol:3:ann") as IndicatorSpec])).toThrow("annualised");
    expect(computeIndicators(BARS, [parseIndicator("vol:3:ann") as IndicatorSpec], { periodsPerYear: 252 })["vol:3:ann"]![3]).toBeCloseTo(1.2804772612, 9);
  });
});

describe("[indicators] in the config", () => {
  test("sets are checked; a universe must exist", async () => {
    const { configSchema } = await import("../config/schema.ts");
    const ok = v.safeParse(configSchema, { universes: { mine: ["PKN.WA"] }, indicators: { default: ["sma:20"], universes: { mine: ["rsi:14"], wig80: ["ema:12"] } } });
    expect(ok.success).toBe(true);
    expect(v.safeParse(configSchema, {}).output).toMatchObject({ indicators: { default: ["sma:20", "rsi:14"], universes: {} } });
    const bad = v.safeParse(configSchema, { indicators: { default: ["sma:x"] } });
    expect(bad.success).toBe(false);
    const unknown = v.safeParse(configSchema, { indicators: { universes: { nope: ["sma:5"] } } });
    expect(unknown.success).toBe(false);
    expect(unknown.issues![0].message).toContain("indicators.universes.nope");
  });
});
