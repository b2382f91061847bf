// The live feed's outbox (conflation per bar, its bound, what a REST read supersedes) and the
// open time of the next bar (calendar months for 1mo).
import { describe, expect, test } from "bun:test";
import { Inbox, nextOpen } from "./binance-live.ts";
import { setLogLevel } from "../lib/log.ts";
import { testTimeout } from "../../test/timeout.ts";

testTimeout();
setLogLevel("error");

const pending = (symbol: string, t: number, close: number, closed = false) => ({ row: { locator: `${symbol}:${t}`, fields: { symbol, ts: t, close } }, t, closed });

describe("binance live outbox", () => {
  test("the newest state of a bar wins, one entry per bar", () => {
    const box = new Inbox(10);
    box.put("A", 1, pending("A", 1, 10));
    box.put("A", 1, pending("A", 1, 11));
    box.put("A", 2, pending("A", 2, 12));
    box.put("B", 1, pending("B", 1, 13));
    expect(box.size).toBe(3);
    const got = box.take(2);
    expect(got.map(([s, p]) => [s, p.row.fields.close])).toEqual([
      ["A", 11],
      ["A", 12],
    ]);
    expect(box.size).toBe(1);
    expect(box.take(10).map(([s]) => s)).toEqual(["B"]);
    expect(box.size).toBe(0);
  });

  test("full: what waits is dropped and every symbol in it goes to REST; nothing is lost silently", () => {
    const box = new Inbox(3);
    box.put("A", 1, pending("A", 1, 1));
    box.put("B", 1, pending("B", 1, 1));
    box.put("C", 1, pending("C", 1, 1));
    expect(box.backfills.size).toBe(0);
    box.put("D", 1, pending("D", 1, 1));
    expect([...box.backfills].sort()).toEqual(["A", "B", "C"]);
    expect(box.size).toBe(1);
    expect(box.take(10).map(([s]) => s)).toEqual(["D"]);
  });

  test("a REST read of a symbol drops its in-progress bars that came before it, not its closed ones", () => {
    const box = new Inbox(10);
    box.put("A", 1, pending("A", 1, 1, true));
    box.put("A", 2, pending("A", 2, 1));
    box.put("B", 1, pending("B", 1, 1));
    box.put("C", 1, pending("C", 1, 1));
    box.dropInProgress("A");
    box.dropInProgress("C");
    expect(box.size).toBe(2);
    expect(box.take(10).map(([s, p]) => [s, p.t, p.closed])).toEqual([
      ["A", 1, true],
      ["B", 1, false],
    ]);
  });
});

describe("nextOpen", () => {
  test("fixed intervals add their length; months are calendar months", () => {
    expect(nextOpen(Date.UTC(2026, 0, 1, 10, 5), "1m")).toBe(Date.UTC(2026, 0, 1, 10, 6));
    expect(nextOpen(Date.UTC(2026, 0, 5), "1w")).toBe(Date.UTC(2026, 0, 12));
    expect(nextOpen(Date.UTC(2026, 0, 1), "1mo")).toBe(Date.UTC(2026, 1, 1));
    expect(nextOpen(Date.UTC(2024, 1, 1), "1mo")).toBe(Date.UTC(2024, 2, 1));
    expect(nextOpen(Date.UTC(2025, 11, 1), "1mo")).toBe(Date.UTC(2026, 0, 1));
  });
});
