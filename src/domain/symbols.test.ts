// Symbol normalisation: every provider's spelling of one listing meets under one canonical key.
import { describe, expect, test } from "bun:test";
import { MARKET_SUFFIX, isMarket, marketOf, normaliseSymbol, type SymbolMarket } from "./symbols.ts";
import { testTimeout } from "../../test/timeout.ts";

testTimeout();

function canonical(raw: string, market?: SymbolMarket): string {
  const r = normaliseSymbol(raw, market);
  if (!r.ok) throw new Error(`${JSON.stringify(raw)} rejected: ${r.reason}`);
  return r.symbol;
}

function reason(raw: string, market?: SymbolMarket): string {
  const r = normaliseSymbol(raw, market);
  if (r.ok) throw new Error(`${JSON.stringify(raw)} accepted as ${r.symbol}`);
  return r.reason;
}

describe("Warsaw listings", () => {
  for (const raw of ["PKN", "PKN.WA", "pkn.pl", " pkn.wa ", "WSE:PKN", "PKN:WSE", "pkn.war", "wse:pkn"]) {
    test(`${JSON.stringify(raw)} with default WSE → PKN.WA`, () => {
      expect(normaliseSymbol(raw, "WSE")).toEqual({ ok: true, symbol: "PKN.WA", ticker: "PKN", market: "WSE" });
    });
  }

  for (const raw of ["PKN.WA", "pkn.pl", " pkn.wa ", "WSE:PKN", "PKN:WSE"]) {
    test(`${JSON.stringify(raw)} carries its own market: no default needed`, () => {
      expect(canonical(raw)).toBe("PKN.WA");
    });
  }

  test("a suffix wins over the default market", () => {
    expect(canonical("PKN.WA", "NYSE")).toBe("PKN.WA");
    expect(canonical("WSE:PKN", "NYSE")).toBe("PKN.WA");
    expect(canonical("aapl.us", "WSE")).toBe("AAPL.US");
  });

  test("tickers starting with a digit (11 bit studios, 1AT)", () => {
    expect(canonical("11b", "WSE")).toBe("11B.WA");
    expect(canonical("1at.pl")).toBe("1AT.WA");
  });

  test("WSE keeps dots and slashes invalid: they are not share classes there", () => {
    expect(reason("BRK.B", "WSE")).toContain("not a valid WSE ticker");
  });
});

describe("US listings", () => {
  test("aapl.us and AAPL with NYSE default → AAPL.US", () => {
    expect(normaliseSymbol("aapl.us")).toEqual({ ok: true, symbol: "AAPL.US", ticker: "AAPL", market: "NYSE" });
    expect(canonical("AAPL", "NYSE")).toBe("AAPL.US");
  });

  test("NASDAQ and NYSE prefixes or suffixes map to the US market", () => {
    for (const raw of ["NASDAQ:AAPL", "AAPL:NASDAQ", "NYSE:AAPL", "aapl.nms", "AAPL.NYQ", "ARCA:AAPL"]) expect(canonical(raw)).toBe("AAPL.US");
  });

  for (const raw of ["BRK.B", "BRK/B", "BRK-B", "brk.b", "brk-b.us", "BRK.B.US", "NYSE:BRK/B"]) {
    test(`share class ${JSON.stringify(raw)} → BRK-B.US`, () => {
      expect(normaliseSymbol(raw, "NYSE")).toEqual({ ok: true, symbol: "BRK-B.US", ticker: "BRK-B", market: "NYSE" });
    });
  }

  test("BRK.B without a default market is a bare ticker, not a market suffix", () => {
    expect(reason("BRK.B")).toContain("no default market");
  });
});

describe("indices", () => {
  test("^SPX keeps its caret", () => {
    expect(normaliseSymbol("^SPX", "NYSE")).toEqual({ ok: true, symbol: "^SPX.US", ticker: "^SPX", market: "NYSE" });
    expect(canonical("^spx.us")).toBe("^SPX.US");
    expect(canonical("^wig20", "WSE")).toBe("^WIG20.WA");
  });

  test("only one leading caret", () => {
    expect(reason("^^SPX", "NYSE")).toContain("not a valid");
    expect(reason("SP^X", "NYSE")).toContain("not a valid");
  });
});

describe("invalid symbols are rejected with a reason", () => {
  test("empty or blank", () => {
    expect(reason("", "WSE")).toBe("symbol is empty");
    expect(reason("   ", "WSE")).toBe("symbol is empty");
  });

  test("a bare ticker with no default market", () => {
    const r = reason("PKN");
    expect(r).toContain('"PKN"');
    expect(r).toContain("no default market");
  });

  test("characters a ticker does not have", () => {
    for (const raw of ["PKN!", "PK N", "PKN$", "ŁÓDŹ", "-PKN", "PKN.XX"]) {
      const r = reason(raw, "WSE");
      expect(r).toContain(JSON.stringify(raw));
      expect(r).toContain("not a valid WSE ticker");
    }
  });

  test("unknown markets in colon form", () => {
    for (const raw of ["GPW:PKN", "PKN:FOO", "A:B:C", "PKN:"]) expect(reason(raw, "WSE")).toContain("unknown market");
  });

  test("a leading colon or a bare suffix is no ticker", () => {
    expect(reason(":PKN", "WSE")).toContain("not a valid");
    expect(reason(".WA", "WSE")).toContain("not a valid");
  });

  test("at most 20 characters", () => {
    expect(canonical("A".repeat(20), "WSE")).toBe(`${"A".repeat(20)}.WA`);
    expect(reason("A".repeat(21), "WSE")).toContain("not a valid");
  });
});

test("normalising is idempotent: a canonical symbol maps to itself", () => {
  for (const raw of ["pkn.pl", "WSE:CDR", "brk/b", "^spx.us", "^wig20.wa", "aapl.nms"]) {
    const once = canonical(raw, raw.includes("brk") ? "NYSE" : undefined);
    expect(canonical(once)).toBe(once);
  }
});

describe("marketOf", () => {
  test("market of canonical symbols", () => {
    expect(marketOf("PKN.WA")).toBe("WSE");
    expect(marketOf("AAPL.US")).toBe("NYSE");
    expect(marketOf("BRK-B.US")).toBe("NYSE");
    expect(marketOf("^WIG20.WA")).toBe("WSE");
  });

  test("other known suffixes are recognised too", () => {
    expect(marketOf("PKN.PL")).toBe("WSE");
    expect(marketOf("AAPL.NASDAQ")).toBe("NYSE");
  });

  test("no or unknown suffix: undefined", () => {
    expect(marketOf("PKN")).toBeUndefined();
    expect(marketOf("PKN.XX")).toBeUndefined();
    expect(marketOf(".WA")).toBeUndefined();
    expect(marketOf("pkn.wa")).toBeUndefined(); // canonical symbols are upper case
  });

  test("a suffix that is an Object.prototype key is not a market", () => {
    // SUFFIXES is a plain object: without an own-property check, "constructor" finds Object.
    for (const s of ["X.constructor", "X.__proto__", "X.toString", "X.hasOwnProperty"]) expect(marketOf(s)).toBeUndefined();
  });
});

test("isMarket and MARKET_SUFFIX", () => {
  expect(isMarket("WSE")).toBe(true);
  expect(isMarket("NYSE")).toBe(true);
  expect(isMarket("wse")).toBe(false);
  expect(isMarket("constructor")).toBe(false);
  expect(MARKET_SUFFIX).toEqual({ WSE: "WA", NYSE: "US", LSE: "L", XETRA: "DE", PAR: "PA", AMS: "AS", SIX: "SW", TSX: "TO", ASX: "AX", HKEX: "HK" });
});
