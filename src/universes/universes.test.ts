// Universes: the bundled lists are well-formed data, and user lists resolve the way the config
// documents them (any provider spelling, "@name" expansion, every bad entry named).
import { describe, expect, test } from "bun:test";
import { normaliseSymbol } from "../domain/symbols.ts";
import { formatUniverseList, listUniverses, resolveUniverse, type Universe } from "./universes.ts";
import wig80Data from "./data/wig80.json";
import { testTimeout } from "../../test/timeout.ts";

testTimeout();

function bundled(name: string): Universe {
  const u = listUniverses().find((x) => x.name === name);
  if (!u) throw new Error(`no bundled universe ${name}`);
  return u;
}

function resolved(name: string, user?: Record<string, string[]>, market?: "WSE" | "NYSE"): Universe {
  const r = resolveUniverse(name, user, { market });
  if (!r.ok) throw new Error(r.reason);
  return r.universe;
}

function reason(name: string, user?: Record<string, string[]>): string {
  const r = resolveUniverse(name, user);
  if (r.ok) throw new Error(`${name} resolved to ${r.universe.symbols.length} symbols`);
  return r.reason;
}

describe("bundled universes", () => {
  test("wig80, sp500 and etf-us ship, in that order", () => {
    expect(listUniverses().map((u) => u.name)).toEqual(["wig80", "sp500", "etf-us"]);
  });

  for (const u of listUniverses()) {
    test(`${u.name}: every symbol canonical, of its market, no duplicates`, () => {
      for (const s of u.symbols) {
        const n = normaliseSymbol(s);
        expect(n.ok && n.symbol).toBe(s);
        expect(n.ok && n.market).toBe(u.market as "WSE" | "NYSE");
      }
      expect(new Set(u.symbols).size).toBe(u.symbols.length);
    });

    test(`${u.name}: dated and sourced`, () => {
      expect(u.asOf).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(u.source.length).toBeGreaterThan(20);
      expect(u.bundled).toBe(true);
    });
  }

  test("sp500 has 495..510 constituents, share classes in dash form", () => {
    const u = bundled("sp500");
    expect(u.symbols.length).toBeGreaterThanOrEqual(495);
    expect(u.symbols.length).toBeLessThanOrEqual(510);
    expect(u.symbols).toContain("BRK-B.US");
    expect(u.symbols).toContain("BF-B.US");
    expect(u.symbols).toContain("AAPL.US");
    expect(u.symbols.some((s) => s.startsWith("BRK.") || s.includes("/"))).toBe(false);
  });

  test("wig80 has exactly the 80 symbols of its data file, Warsaw listings", () => {
    const u = bundled("wig80");
    expect(u.symbols.length).toBe(wig80Data.symbols.length);
    expect(u.symbols.length).toBe(80);
    expect(u.market).toBe("WSE");
    expect(u.symbols).toContain("11B.WA");
    expect(u.symbols).toContain("1AT.WA");
  });

  test("etf-us is a curated list of 30..45 US ETFs", () => {
    const u = bundled("etf-us");
    expect(u.symbols.length).toBeGreaterThanOrEqual(30);
    expect(u.symbols.length).toBeLessThanOrEqual(45);
    expect(u.symbols).toEqual(expect.arrayContaining(["SPY.US", "QQQ.US", "AGG.US", "GLD.US", "XLK.US"]));
    expect(u.note).toContain("not an index");
  });

  test("bundled lists cannot be changed by a caller", () => {
    const u = bundled("wig80");
    expect(() => u.symbols.push("XYZ.WA")).toThrow();
    expect(bundled("wig80").symbols.length).toBe(80);
  });
});

describe("resolving by name", () => {
  test("bundled names are case-insensitive", () => {
    expect(resolved("WIG80").name).toBe("wig80");
    expect(resolved(" Sp500 ").symbols.length).toBe(bundled("sp500").symbols.length);
    expect(resolved("ETF-US").name).toBe("etf-us");
  });

  test("user list names are case-insensitive too", () => {
    const u = resolved("MINE", { Mine: ["pkn.pl", "AAPL.US"] });
    expect(u.name).toBe("Mine");
    expect(u.symbols).toEqual(["PKN.WA", "AAPL.US"]);
    expect(u.market).toBe("mixed");
    expect(u.asOf).toBeNull();
    expect(u.bundled).toBe(false);
  });

  test("an unknown universe names the known ones", () => {
    const r = reason("wig20", { mine: ["PKN.WA"] });
    expect(r).toContain('"wig20"');
    for (const known of ["wig80", "sp500", "etf-us", "mine"]) expect(r).toContain(known);
  });
});

describe("user lists", () => {
  test("provider spellings are normalised; a market is given for bare tickers", () => {
    const u = resolved("pl", { pl: ["PKN", "cdr.pl", "WSE:KGH", "pzu.wa"] }, "WSE");
    expect(u.symbols).toEqual(["PKN.WA", "CDR.WA", "KGH.WA", "PZU.WA"]);
    expect(u.market).toBe("WSE");
    expect(resolved("us", { us: ["brk.b", "BF/B", "msft"] }, "NYSE").symbols).toEqual(["BRK-B.US", "BF-B.US", "MSFT.US"]);
  });

  test("@wig80 expands in place; duplicates keep their first position", () => {
    const wig = bundled("wig80").symbols;
    const u = resolved("mine", { mine: ["PKN.WA", "@wig80", "11b.pl", "PKN.WA", "aapl.us"] });
    expect(u.symbols[0]).toBe("PKN.WA");
    expect(u.symbols.slice(1, 1 + wig.length)).toEqual(wig);
    expect(u.symbols.at(-1)).toBe("AAPL.US");
    expect(u.symbols.length).toBe(1 + wig.length + 1); // 11B.WA is already in wig80, PKN.WA repeats
    expect(new Set(u.symbols).size).toBe(u.symbols.length);
  });

  test("@names are case-insensitive and may point at another user list", () => {
    const u = resolved("all", { core: ["PKN.WA", "CDR.WA"], all: ["@CORE", "@Etf-Us", "CDR.WA"] });
    expect(u.symbols.slice(0, 2)).toEqual(["PKN.WA", "CDR.WA"]);
    expect(u.symbols.length).toBe(2 + bundled("etf-us").symbols.length);
  });

  test("a user list named like a bundled one extends it", () => {
    const u = resolved("wig80", { wig80: ["@wig80", "PKN.WA"] });
    expect(u.bundled).toBe(false);
    expect(u.symbols.length).toBe(81);
  });

  test("a bad symbol is rejected, naming it and why", () => {
    const r = reason("mine", { mine: ["PKN.WA", "XX:YY", "AAPL.US"] });
    expect(r).toContain('universe "mine"');
    expect(r).toContain('"XX:YY"');
    expect(r).toContain("unknown market");
  });

  test("every bad entry is named, not just the first", () => {
    const r = reason("mine", { mine: ["PKN", "bad ticker!", "@nope"] });
    expect(r).toContain("3 bad entries");
    expect(r).toContain('"PKN"');
    expect(r).toContain("no default market");
    expect(r).toContain('"bad ticker!"');
    expect(r).toContain('"@nope" refers to no universe');
  });

  test("cycles between user lists are reported", () => {
    expect(reason("a", { a: ["@b"], b: ["@a", "PKN.WA"] })).toContain("cycle");
  });

  test("an empty list is rejected", () => {
    expect(reason("empty", { empty: [] })).toContain("no symbols");
  });
});

describe("formatUniverseList", () => {
  test("one header and one row per universe with name, market, count, as-of and title", () => {
    const text = formatUniverseList(listUniverses());
    const lines = text.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^NAME\s+MARKET\s+COUNT\s+AS OF\s+TITLE$/);
    expect(lines.length).toBe(4);
    const sp = bundled("sp500");
    expect(lines[2]).toMatch(new RegExp(`^sp500\\s+NYSE\\s+${sp.symbols.length}\\s+${sp.asOf}\\s+${sp.title}$`));
    expect(text).not.toContain("AAPL.US");
  });

  test("with symbols: source, note and every symbol", () => {
    const u = resolved("wig80");
    const text = formatUniverseList([u], { symbols: true });
    for (const s of u.symbols) expect(text).toContain(s);
    expect(text).toContain("source:");
    expect(text).toContain(`symbols (${u.symbols.length})`);
    expect(Math.max(...text.split("\n").map((l) => l.length))).toBeLessThanOrEqual(120);
  });

  test("user lists show '-' for the date", () => {
    const text = formatUniverseList([resolved("mine", { mine: ["PKN.WA"] })]);
    expect(text.split("\n")[1]).toMatch(/^mine\s+WSE\s+1\s+-\s+user list$/);
  });
});
