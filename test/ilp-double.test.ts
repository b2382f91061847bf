// The QuestDB store writes doubles digit by digit from a scaled whole number (src/stores/questdb/index.ts):
// every text it writes must be an ILP double (a point or an exponent, never a bare integer, which
// ILP reads as a LONG) that reads back as exactly the number, whatever decimal places the number
// before it in the column had.
import { describe, expect, test } from "bun:test";
import { ilpDoubleText } from "../src/stores/questdb/index.ts";
import { rng } from "./helpers.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

describe("ILP doubles", () => {
  test("read back exactly, always as doubles", () => {
    const r = rng(11);
    const values = [0, 1, 62, 0.05, 297.96, 0.1 + 0.2, 1e-9, 5e-324, 1e15, 2 ** 31, 2 ** 53 - 1, 2 ** 53, 1e21, 1.7976931348623157e308, 123456.789, 12.3456789, 0.00000001];
    for (let i = 0; i < 100_000; i++) {
      values.push(Number((r() * 10 ** Math.floor(r() * 12)).toFixed(Math.floor(r() * 9))));
      values.push(r() * 1000);
    }
    let bad = 0;
    for (const [i, x] of values.entries()) {
      const text = ilpDoubleText(x, i % 3);
      if (Number(text) !== x || !/[.e]/.test(text)) bad++;
    }
    expect(bad).toBe(0);
    expect(ilpDoubleText(297.96)).toMatch(/^297\.960*$/);
    expect(ilpDoubleText(1.7976931348623157e308)).toBe("1.7976931348623157e+308");
  });
});
