// The markets registry: the shipped files read as the calendar and the symbols expect, the
// choices and messages built from it, the holiday rule language, and a broken file refused.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { testTimeout } from "../../../test/timeout.ts";
import { formatDate } from "../days.ts";
import { isTradingDay, sessionFor } from "../calendar.ts";
import { normaliseSymbol, providerSpelling } from "../symbols.ts";
import { MARKETS, MARKET_CODES, MarketSchema, isMarket, marketChoices, marketInfo } from "./index.ts";
import { ruleDays } from "./rules.ts";
import { MarketFileSchema, phaseProblem, type HolidayRule, type MarketFile } from "./schema.ts";
import wse from "./wse.json";

testTimeout();

const days = (rules: HolidayRule[], year: number) => ruleDays(rules, year).map(formatDate);

describe("the registry", () => {
  test("lists the shipped markets in order, each with its code, MIC, zone and currency", () => {
    expect(MARKET_CODES).toEqual(["WSE", "NYSE", "LSE", "XETRA", "PAR", "AMS", "SIX", "TSX", "ASX", "FX", "CRYPTO"]);
    expect(MARKETS.map((m) => [m.code, m.mic, m.timeZone, m.currency])).toEqual([
      ["WSE", "XWAR", "Europe/Warsaw", "PLN"],
      ["NYSE", "XNYS", "America/New_York", "USD"],
      ["LSE", "XLON", "Europe/London", "GBP"],
      ["XETRA", "XETR", "Europe/Berlin", "EUR"],
      ["PAR", "XPAR", "Europe/Paris", "EUR"],
      ["AMS", "XAMS", "Europe/Amsterdam", "EUR"],
      ["SIX", "XSWX", "Europe/Zurich", "CHF"],
      ["TSX", "XTSE", "America/Toronto", "CAD"],
      ["ASX", "XASX", "Australia/Sydney", "AUD"],
      ["FX", "XXXX", "America/New_York", undefined],
      ["CRYPTO", "XXXX", "UTC", undefined],
    ]);
  });

  test("knows a code only as it is spelled, and nothing of the prototype", () => {
    expect(isMarket("NYSE")).toBe(true);
    expect(isMarket("nyse")).toBe(false);
    expect(isMarket("constructor")).toBe(false);
    expect(marketInfo("toString")).toBeUndefined();
  });

  test("messages and the config picklist are built from the codes", () => {
    expect(marketChoices()).toBe("WSE, NYSE, LSE, XETRA, PAR, AMS, SIX, TSX, ASX, FX or CRYPTO");
    expect(marketChoices(true)).toBe('"WSE", "NYSE", "LSE", "XETRA", "PAR", "AMS", "SIX", "TSX", "ASX", "FX" or "CRYPTO"');
    const r = v.safeParse(MarketSchema, "XYZ");
    expect(r.success).toBe(false);
    expect(r.issues?.[0]?.message).toBe("expected WSE, NYSE, LSE, XETRA, PAR, AMS, SIX, TSX, ASX, FX or CRYPTO");
    expect(v.parse(MarketSchema, "WSE")).toBe("WSE");
  });
});

describe("how providers spell a ticker", () => {
  test("per the markets' files; a provider a market does not list has none of its listings", () => {
    expect(providerSpelling("yahoo", "PKN", "WSE")).toBe("PKN.WA");
    expect(providerSpelling("yahoo", "BRK-B", "NYSE")).toBe("BRK-B");
    expect(providerSpelling("stooq", "PKN", "WSE")).toBe("pkn");
    expect(providerSpelling("stooq", "BRK-B", "NYSE")).toBe("brk-b.us");
    expect(providerSpelling("polygon", "BRK-B", "NYSE")).toBe("BRK.B");
    expect(providerSpelling("alphavantage", "PKN", "WSE")).toBeNull();
    expect(providerSpelling("constructor", "PKN", "WSE")).toBeNull();
  });
});

describe("holiday rules", () => {
  test("a fixed date, Easter-relative days, the nth and the last weekday of a month", () => {
    const rules: HolidayRule[] = [
      { date: "05-03", what: "fixed" },
      { easter: -2, what: "Good Friday" },
      { month: 11, weekday: "Thu", nth: 4, what: "Thanksgiving" },
      { month: 5, weekday: "Mon", nth: "last", what: "Memorial Day" },
    ];
    expect(days(rules, 2024)).toEqual(["2024-05-03", "2024-03-29", "2024-11-28", "2024-05-27"]);
  });

  test("observance: nearest weekday, or Sunday to Monday with a Saturday dropped", () => {
    const nearest: HolidayRule[] = [{ date: "07-04", observed: "nearest-weekday", what: "x" }];
    expect(days(nearest, 2020)).toEqual(["2020-07-03"]); // a Saturday
    expect(days(nearest, 2021)).toEqual(["2021-07-05"]); // a Sunday
    const sunday: HolidayRule[] = [{ date: "01-01", observed: "sunday-to-monday", what: "x" }];
    expect(days(sunday, 2022)).toEqual([]); // a Saturday
    expect(days(sunday, 2023)).toEqual(["2023-01-02"]);
  });

  test("substitute days: next weekday, and a second moved holiday moves past the first", () => {
    const christmas: HolidayRule[] = [
      { date: "12-25", observed: "next-weekday", what: "Christmas" },
      { date: "12-26", observed: "next-weekday", what: "Boxing Day" },
    ];
    expect(days(christmas, 2024)).toEqual(["2024-12-25", "2024-12-26"]); // Wed, Thu: not moved
    expect(days(christmas, 2021)).toEqual(["2021-12-27", "2021-12-28"]); // Sat, Sun → Mon, Tue
    expect(days(christmas, 2022)).toEqual(["2022-12-26", "2022-12-27"]); // Sun → Mon, so Mon → Tue
    expect(days(christmas, 2020)).toEqual(["2020-12-25", "2020-12-28"]); // Fri stays, Sat → Mon
    // The order of the rules decides which moves: only the later one avoids the earlier.
    expect(days([...christmas].reverse(), 2022)).toEqual(["2022-12-26", "2022-12-27"]);
    expect(days([{ date: "01-01", observed: "next-weekday", what: "x" }], 2022)).toEqual(["2022-01-03"]); // Sat → Mon
  });

  test("previous weekday: a weekend day moves to the Friday before", () => {
    const eve: HolidayRule[] = [{ date: "12-24", observed: "previous-weekday", what: "x" }];
    expect([2022, 2023, 2024].map((y) => days(eve, y)[0])).toEqual(["2022-12-23", "2023-12-22", "2024-12-24"]);
  });

  test("the last weekday on or before a date (Victoria Day: the Monday before May 25)", () => {
    const victoria: HolidayRule[] = [{ weekday: "Mon", onOrBefore: "05-24", what: "Victoria Day" }];
    expect([2021, 2022, 2023, 2024].map((y) => days(victoria, y)[0])).toEqual(["2021-05-24", "2022-05-23", "2023-05-22", "2024-05-20"]);
  });

  test("an offset, then the weekdays and the years it applies in", () => {
    expect(days([{ month: 11, weekday: "Thu", nth: 4, offset: 1, what: "x" }], 2024)).toEqual(["2024-11-29"]);
    const eve: HolidayRule[] = [{ date: "12-24", onWeekdays: ["Mon", "Tue", "Wed", "Thu"], what: "x" }];
    expect(days(eve, 2024)).toEqual(["2024-12-24"]); // a Tuesday
    expect(days(eve, 2021)).toEqual([]); // a Friday
    const bounded: HolidayRule[] = [{ date: "06-19", from: 2022, until: 2023, what: "x" }];
    expect([2021, 2022, 2023, 2024].map((y) => days(bounded, y).length)).toEqual([0, 1, 1, 0]);
  });
});

describe("a market file", () => {
  test("a third market is data: a file of its own reads like the shipped ones", () => {
    const xyz = { ...wse, code: "XYZ", mic: "XXYZ", name: "A test exchange", timeZone: "Asia/Tokyo", currency: "JPY", symbols: { suffix: "XY", aliases: [] }, providers: {} };
    const file = v.parse(MarketFileSchema, xyz);
    expect(phaseProblem(file)).toBeUndefined();
    expect(days(file.holidays, 2024)).toContain("2024-03-29");
  });

  test("a broken file is refused with what is wrong", () => {
    const parse = (patch: object) => v.safeParse(MarketFileSchema, { ...wse, ...patch });
    expect(parse({ timeZone: "Mars/Olympus" }).success).toBe(false);
    expect(parse({ holidays: [{ date: "13-01", what: "x" }] }).success).toBe(false);
    expect(parse({ holidays: [{ easter: 1, nth: 2, what: "x" }] }).success).toBe(false);
    const file = v.parse(MarketFileSchema, wse) as MarketFile;
    expect(phaseProblem({ ...file, phases: { ...file.phases, pre: { ...file.phases.pre!, to: "08:45" } } })).toBe("the WSE phases are not contiguous and in order");
    expect(phaseProblem({ ...file, halfDays: [{ date: "12-24", what: "x" }] })).toBe("WSE has half days but no phases.earlyClose hours");
  });
});

// A few facts per market, known independently of exchange-calendars (the check compares the rest).
describe("London, Toronto and Sydney", () => {
  const closeUtc = (market: "LSE" | "TSX" | "ASX", date: string) => new Date(sessionFor(market, date)!.close).toISOString();

  test("LSE: substitute bank holidays, the Platinum Jubilee, 12:30 half days", () => {
    expect(["2022-06-02", "2022-06-03", "2022-12-26", "2022-12-27", "2022-05-30"].map((d) => isTradingDay("LSE", d))).toEqual([false, false, false, false, true]);
    expect(closeUtc("LSE", "2023-12-22")).toBe("2023-12-22T12:30:00.000Z"); // Christmas Eve on a Sunday: the Friday before
    expect(closeUtc("LSE", "2024-07-01")).toBe("2024-07-01T15:30:00.000Z"); // 16:30 BST
    expect(normaliseSymbol("VOD.L")).toEqual({ ok: true, symbol: "VOD.L", ticker: "VOD", market: "LSE" });
    expect(normaliseSymbol("vod.uk")).toMatchObject({ ok: true, symbol: "VOD.L" });
    expect(["yahoo", "stooq", "alphavantage", "polygon"].map((p) => providerSpelling(p, "VOD", "LSE"))).toEqual(["VOD.L", "vod.uk", "VOD.LON", null]);
  });

  test("TSX: Victoria Day, Canada Day on a Saturday, 13:00 on Christmas Eve", () => {
    expect(["2024-05-20", "2023-07-03", "2023-07-04"].map((d) => isTradingDay("TSX", d))).toEqual([false, false, true]);
    expect(closeUtc("TSX", "2021-12-24")).toBe("2021-12-24T18:00:00.000Z"); // 13:00 EST
    expect(normaliseSymbol("RY.TO")).toEqual({ ok: true, symbol: "RY.TO", ticker: "RY", market: "TSX" });
    expect(providerSpelling("alphavantage", "RY", "TSX")).toBe("RY.TRT");
    expect(providerSpelling("stooq", "RY", "TSX")).toBeNull();
  });

  test("ASX: Anzac Day, Australia Day on a Sunday, the 14:10 close before Christmas", () => {
    expect(["2024-04-25", "2025-01-27", "2022-09-22", "2025-01-28"].map((d) => isTradingDay("ASX", d))).toEqual([false, false, false, true]);
    expect(closeUtc("ASX", "2024-12-24")).toBe("2024-12-24T03:10:00.000Z"); // 14:10 AEDT
    expect(closeUtc("ASX", "2024-12-23")).toBe("2024-12-23T05:00:00.000Z"); // 16:00 AEDT
    expect(normaliseSymbol("APS.AX")).toEqual({ ok: true, symbol: "APS.AX", ticker: "APS", market: "ASX" });
    expect(providerSpelling("yahoo", "BHP", "ASX")).toBe("BHP.AX");
  });
});

// Facts of the European markets, each known on its own (not read from exchange-calendars): a
// holiday, a day that is not one, a half day's close in UTC, a symbol and its spellings.
describe("the European markets", () => {
  const closeUtc = (m: Parameters<typeof sessionFor>[0], date: string) => new Date(sessionFor(m, date)!.close).toISOString();
  const marketOfSymbol = (raw: string) => {
    const r = normaliseSymbol(raw);
    return r.ok ? [r.symbol, r.market] : r.reason;
  };

  test("Xetra: Christmas Eve, Good Friday and Reformation Day 2017 closed, the year's last trading day short", () => {
    expect(isTradingDay("XETRA", "2024-12-24")).toBe(false);
    expect(isTradingDay("XETRA", "2017-10-31")).toBe(false);
    expect(isTradingDay("XETRA", "2024-03-29")).toBe(false);
    expect(closeUtc("XETRA", "2024-12-30")).toBe("2024-12-30T13:00:00.000Z"); // 14:00 CET
    expect(closeUtc("XETRA", "2024-12-23")).toBe("2024-12-23T16:30:00.000Z"); // 17:30 CET
    expect(marketOfSymbol("sap.de")).toEqual(["SAP.DE", "XETRA"]);
    expect(providerSpelling("yahoo", "SAP", "XETRA")).toBe("SAP.DE");
    expect(providerSpelling("stooq", "SAP", "XETRA")).toBe("sap.de");
    expect(providerSpelling("alphavantage", "SAP", "XETRA")).toBe("SAP.DEX");
  });

  test("Euronext Paris: Labour Day closed, Bastille Day traded, Christmas Eve closes at 14:05", () => {
    expect(isTradingDay("PAR", "2025-05-01")).toBe(false);
    expect(isTradingDay("PAR", "2025-07-14")).toBe(true);
    expect(closeUtc("PAR", "2025-12-24")).toBe("2025-12-24T13:05:00.000Z");
    expect(marketOfSymbol("AIR.PA")).toEqual(["AIR.PA", "PAR"]);
    expect(providerSpelling("yahoo", "AIR", "PAR")).toBe("AIR.PA");
    expect(providerSpelling("stooq", "AIR", "PAR")).toBeNull();
  });

  test("Euronext Amsterdam: Good Friday closed, King's Day traded, New Year's Eve closes at 14:05", () => {
    expect(isTradingDay("AMS", "2025-04-18")).toBe(false);
    expect(isTradingDay("AMS", "2025-04-28")).toBe(true);
    expect(closeUtc("AMS", "2025-12-31")).toBe("2025-12-31T13:05:00.000Z");
    expect(marketOfSymbol("ASML.AS")).toEqual(["ASML.AS", "AMS"]);
    expect(providerSpelling("yahoo", "ASML", "AMS")).toBe("ASML.AS");
  });

  test("SIX: Berchtoldstag, Ascension and the National Day closed; no half days", () => {
    expect(isTradingDay("SIX", "2025-01-02")).toBe(false);
    expect(isTradingDay("SIX", "2025-05-29")).toBe(false);
    expect(isTradingDay("SIX", "2025-08-01")).toBe(false);
    expect(closeUtc("SIX", "2025-12-30")).toBe("2025-12-30T16:30:00.000Z");
    expect(marketOfSymbol("nesn.sw")).toEqual(["NESN.SW", "SIX"]);
    expect(providerSpelling("yahoo", "NESN", "SIX")).toBe("NESN.SW");
  });
});
