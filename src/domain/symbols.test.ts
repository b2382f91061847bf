// Symbol normalisation: every provider's spelling of one listing meets under one canonical key.
import { describe, expect, test } from "bun:test";
import { MARKET_SUFFIX, isMarket, marketOf, normaliseSymbol, providerSpelling, type SymbolMarket } from "./symbols.ts";
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

  test("NASDAQ and NYSE prefixes or suffixes store as .US", () => {
    for (const raw of ["NASDAQ:AAPL", "AAPL:NASDAQ", "NYSE:AAPL", "aapl.nms", "AAPL.NYQ", "ARCA:AAPL", "XNAS:AAPL", "AAPL.NASDAQ"]) expect(canonical(raw)).toBe("AAPL.US");
  });

  test("Nasdaq's prefixes and suffixes, or NASDAQ as the default, name NASDAQ; the stored symbol is NYSE's .US", () => {
    const nasdaq = { ok: true as const, symbol: "AAPL.US", ticker: "AAPL", market: "NASDAQ" as const };
    for (const raw of ["NASDAQ:AAPL", "AAPL:NASDAQ", "aapl.nms", "XNAS:AAPL", "AAPL.NASDAQ"]) expect(normaliseSymbol(raw)).toEqual(nasdaq);
    expect(normaliseSymbol("AAPL", "NASDAQ")).toEqual(nasdaq);
    expect(normaliseSymbol("brk.b", "NASDAQ")).toEqual({ ok: true, symbol: "BRK-B.US", ticker: "BRK-B", market: "NASDAQ" });
    // .US is NYSE's: a suffix in the symbol wins over the NASDAQ default, as any suffix does.
    expect(normaliseSymbol("AAPL.US", "NASDAQ")).toEqual({ ok: true, symbol: "AAPL.US", ticker: "AAPL", market: "NYSE" });
    expect(marketOf("AAPL.US")).toBe("NYSE");
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
    expect(marketOf("AAPL.NASDAQ")).toBe("NASDAQ");
    expect(marketOf("7203.JP")).toBe("TSE");
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
  expect(MARKET_SUFFIX).toEqual({ WSE: "WA", NYSE: "US", NASDAQ: "NASDAQ", LSE: "L", XETRA: "DE", PAR: "PA", AMS: "AS", SIX: "SW", TSX: "TO", ASX: "AX", TSE: "T", HKEX: "HK", FX: "FX", CRYPTO: "CRYPTO" });
});

describe("currency pairs (FX)", () => {
  for (const raw of ["EURGBP=X", "eurgbp=x", "C:EURGBP", "EURGBP.FX", "eurgbp.forex", "FX:EURGBP", "EUR/GBP.FX"]) {
    test(`${JSON.stringify(raw)} names its own market → EURGBP.FX`, () => {
      expect(normaliseSymbol(raw)).toEqual({ ok: true, symbol: "EURGBP.FX", ticker: "EURGBP", market: "FX" });
    });
  }

  for (const raw of ["eurgbp", "EUR/GBP", "EUR-GBP", "eur_gbp"]) {
    test(`${JSON.stringify(raw)} with default FX → EURGBP.FX`, () => expect(canonical(raw, "FX")).toBe("EURGBP.FX"));
  }

  test("a pair that is not two 3-letter codes is refused with the form expected", () => {
    expect(reason("EURGB", "FX")).toContain("two 3-letter codes");
    expect(reason("EURO/GBP", "FX")).toContain("not a valid FX pair");
    expect(reason("C:EURGBPX")).toContain("not a valid FX pair");
  });

  test("each provider's spelling, and back", () => {
    expect(providerSpelling("yahoo", "EURGBP", "FX")).toBe("EURGBP=X");
    expect(providerSpelling("stooq", "EURGBP", "FX")).toBe("eurgbp");
    expect(providerSpelling("polygon", "EURGBP", "FX")).toBe("C:EURGBP");
    expect(providerSpelling("alphavantage", "EURGBP", "FX")).toBeNull();
    for (const provider of ["yahoo", "polygon"]) expect(canonical(providerSpelling(provider, "EURGBP", "FX")!)).toBe("EURGBP.FX");
    expect(canonical(providerSpelling("stooq", "EURGBP", "FX")!, "FX")).toBe("EURGBP.FX");
  });

  test("Yahoo's =F (futures) is still an unknown market, listing the known ones", () => {
    const r = reason("GC=F");
    expect(r).toContain('unknown market suffix "=F"');
    expect(r).toContain(".FX (FX; also .FOREX)");
  });
});

describe("crypto pairs", () => {
  for (const [raw, symbol] of [
    ["X:BTCUSD", "BTC-USD.CRYPTO"],
    ["BTC-USD.CRYPTO", "BTC-USD.CRYPTO"],
    ["btc-usdt.cc", "BTC-USDT.CRYPTO"],
    ["CRYPTO:ETHBTC", "ETH-BTC.CRYPTO"],
    ["X:1INCHUSD", "1INCH-USD.CRYPTO"],
  ] as const) {
    test(`${raw} → ${symbol}`, () => expect(canonical(raw)).toBe(symbol));
  }

  test("a bare pair with default CRYPTO splits at the longest known quote", () => {
    expect(normaliseSymbol("BTCUSDT", "CRYPTO")).toEqual({ ok: true, symbol: "BTC-USDT.CRYPTO", ticker: "BTC-USDT", market: "CRYPTO" });
    expect(canonical("BTCUSD", "CRYPTO")).toBe("BTC-USD.CRYPTO");
    expect(canonical("btc/eur", "CRYPTO")).toBe("BTC-EUR.CRYPTO");
    expect(canonical("SOLFDUSD", "CRYPTO")).toBe("SOL-FDUSD.CRYPTO");
  });

  test("a pair with no known quote at its end is refused, naming the quotes", () => {
    const r = reason("BTCXYZ", "CRYPTO");
    expect(r).toContain('"BTCXYZ" is not a valid CRYPTO pair');
    expect(r).toContain("USDT");
    expect(reason("USDT", "CRYPTO")).toContain("not a valid CRYPTO pair");
    expect(reason("A-B-C", "CRYPTO")).toContain("not a valid CRYPTO pair");
  });

  test("each provider's spelling, and back", () => {
    expect(providerSpelling("yahoo", "BTC-USD", "CRYPTO")).toBe("BTC-USD");
    expect(providerSpelling("polygon", "BTC-USD", "CRYPTO")).toBe("X:BTCUSD");
    expect(providerSpelling("binance", "BTC-USDT", "CRYPTO")).toBe("BTCUSDT");
    expect(providerSpelling("stooq", "BTC-USD", "CRYPTO")).toBeNull();
    expect(canonical(providerSpelling("polygon", "BTC-USD", "CRYPTO")!)).toBe("BTC-USD.CRYPTO");
    expect(canonical(providerSpelling("binance", "BTC-USDT", "CRYPTO")!, "CRYPTO")).toBe("BTC-USDT.CRYPTO");
  });

  test("Citi on NYSE is not a currency: a market name wins over Polygon's C: prefix", () => {
    expect(canonical("C:NYSE")).toBe("C.US");
    expect(canonical("NYSE:C")).toBe("C.US");
  });

  test("marketOf pairs", () => {
    expect(marketOf("BTC-USDT.CRYPTO")).toBe("CRYPTO");
    expect(marketOf("EURGBP.FX")).toBe("FX");
  });
});
