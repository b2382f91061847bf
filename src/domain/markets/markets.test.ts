// The markets registry: the shipped files read as the calendar and the symbols expect, the
// choices and messages built from it, the holiday rule language, and a broken file refused.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { testTimeout } from "../../../test/timeout.ts";
import { formatDate } from "../days.ts";
import { clipToBreaks, isOpen, isTradingDay, marketPhase, nextOpen, phasesOn, sessionFor } from "../calendar.ts";
import { normaliseSymbol, providerSpelling } from "../symbols.ts";
import { MARKETS, MARKET_CODES, MarketSchema, isMarket, marketChoices, marketInfo, symbolsProblem } from "./index.ts";
import { ruleDays } from "./rules.ts";
import { MarketFileSchema, phaseProblem, type HolidayRule, type MarketFile } from "./schema.ts";
import wse from "./wse.json";

testTimeout();

const days = (rules: HolidayRule[], year: number) => ruleDays(rules, year).map(formatDate);

describe("the registry", () => {
  test("lists the shipped markets in order, each with its code, MIC, zone and currency", () => {
    expect(MARKET_CODES).toEqual(["WSE", "NYSE", "NASDAQ", "LSE", "XETRA", "PAR", "AMS", "SIX", "TSX", "ASX", "TSE", "HKEX", "FX", "CRYPTO"]);
    expect(MARKETS.map((m) => [m.code, m.mic, m.timeZone, m.currency])).toEqual([
      ["WSE", "XWAR", "Europe/Warsaw", "PLN"],
      ["NYSE", "XNYS", "America/New_York", "USD"],
      ["NASDAQ", "XNAS", "America/New_York", "USD"],
      ["LSE", "XLON", "Europe/London", "GBP"],
      ["XETRA", "XETR", "Europe/Berlin", "EUR"],
      ["PAR", "XPAR", "Europe/Paris", "EUR"],
      ["AMS", "XAMS", "Europe/Amsterdam", "EUR"],
      ["SIX", "XSWX", "Europe/Zurich", "CHF"],
      ["TSX", "XTSE", "America/Toronto", "CAD"],
      ["ASX", "XASX", "Australia/Sydney", "AUD"],
      ["TSE", "XTKS", "Asia/Tokyo", "JPY"],
      ["HKEX", "XHKG", "Asia/Hong_Kong", "HKD"],
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
    expect(marketChoices()).toBe("WSE, NYSE, NASDAQ, LSE, XETRA, PAR, AMS, SIX, TSX, ASX, TSE, HKEX, FX or CRYPTO");
    expect(marketChoices(true)).toBe('"WSE", "NYSE", "NASDAQ", "LSE", "XETRA", "PAR", "AMS", "SIX", "TSX", "ASX", "TSE", "HKEX", "FX" or "CRYPTO"');
    const r = v.safeParse(MarketSchema, "XYZ");
    expect(r.success).toBe(false);
    expect(r.issues?.[0]?.message).toBe("expected WSE, NYSE, NASDAQ, LSE, XETRA, PAR, AMS, SIX, TSX, ASX, TSE, HKEX, FX or CRYPTO");
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

  test("Hong Kong's next-free-day: a Sunday one, or one on an earlier rule's weekday, moves on; a Saturday one stays", () => {
    const rules: HolidayRule[] = [
      { easter: 1, what: "Easter Monday" },
      { date: "04-05", observed: "next-free-day", what: "Ching Ming" },
    ];
    expect(days(rules, 2015)).toEqual(["2015-04-06", "2015-04-07"]); // Sunday → Monday, Easter Monday's → Tuesday
    expect(days(rules, 2010)).toEqual(["2010-04-05", "2010-04-06"]); // on Easter Monday → Tuesday
    expect(days(rules, 2025)).toEqual(["2025-04-21", "2025-04-05"]); // a Saturday stays
    const coinciding: HolidayRule[] = [
      { date: "10-01", what: "National Day" },
      { date: "10-01", observed: "next-free-day", what: "x" },
    ];
    expect(days(coinciding, 2033)).toEqual(["2033-10-01", "2033-10-01"]); // a Saturday: not moved even so
    expect(days(coinciding, 2025)).toEqual(["2025-10-01", "2025-10-02"]);
  });

  test("a date of the Chinese calendar and a solar term, observed like any other day", () => {
    const lunar: HolidayRule[] = [
      { lunar: "01-01", observed: "next-free-day", what: "Lunar New Year" },
      { lunar: "01-02", observed: "next-free-day", what: "second day" },
      { lunar: "01-03", observed: "next-free-day", what: "third day" },
      { lunar: "01-01", offset: -1, what: "eve" },
      { lunar: "08-16", what: "the day after Mid-Autumn" },
    ];
    // 2023: Lunar New Year on a Sunday, so the three days are Monday to Wednesday.
    expect(days(lunar, 2023)).toEqual(["2023-01-23", "2023-01-24", "2023-01-25", "2023-01-21", "2023-09-30"]);
    expect(days([{ solarTerm: 15, what: "Ching Ming" }], 2025)).toEqual(["2025-04-04"]);
    expect(days([{ solarTerm: 15, observed: "next-free-day", what: "Ching Ming" }], 2026)).toEqual(["2026-04-06"]); // a Sunday
  });

  test("an offset, then the weekdays and the years it applies in", () => {
    expect(days([{ month: 11, weekday: "Thu", nth: 4, offset: 1, what: "x" }], 2024)).toEqual(["2024-11-29"]);
    const eve: HolidayRule[] = [{ date: "12-24", onWeekdays: ["Mon", "Tue", "Wed", "Thu"], what: "x" }];
    expect(days(eve, 2024)).toEqual(["2024-12-24"]); // a Tuesday
    expect(days(eve, 2021)).toEqual([]); // a Friday
    const bounded: HolidayRule[] = [{ date: "06-19", from: 2022, until: 2023, what: "x" }];
    expect([2021, 2022, 2023, 2024].map((y) => days(bounded, y).length)).toEqual([0, 1, 1, 0]);
  });

  test("equinox days by the Japanese formula, with a substitute when one falls on a Sunday", () => {
    const vernal: HolidayRule[] = [{ equinox: "vernal", what: "x" }];
    const autumnal: HolidayRule[] = [{ equinox: "autumnal", observed: "substitute", what: "x" }];
    expect([2010, 2012, 2024, 2027].map((y) => days(vernal, y)[0])).toEqual(["2010-03-21", "2012-03-20", "2024-03-20", "2027-03-21"]);
    expect(days(autumnal, 2012)).toEqual(["2012-09-22"]);
    expect(days(autumnal, 2024)).toEqual(["2024-09-22", "2024-09-23"]); // a Sunday, and Monday's substitute
    expect(days(vernal, 1979)).toEqual([]); // outside the formula's years: no day rather than a wrong one
  });

  test("substitute: a Sunday holiday adds the next day no rule names, whichever rule comes first", () => {
    const golden: HolidayRule[] = [
      { date: "05-03", observed: "substitute", what: "Constitution Day" },
      { date: "05-04", observed: "substitute", what: "Greenery Day" },
      { date: "05-05", observed: "substitute", what: "Children's Day" },
    ];
    expect(days(golden, 2015).sort()).toEqual(["2015-05-03", "2015-05-04", "2015-05-05", "2015-05-06"]); // May 3 a Sunday: Wednesday
    expect(days(golden, 2014).sort()).toEqual(["2014-05-03", "2014-05-04", "2014-05-05", "2014-05-06"]); // May 4 a Sunday: Tuesday
    expect(days(golden, 2024).sort()).toEqual(["2024-05-03", "2024-05-04", "2024-05-05", "2024-05-06"]); // May 5 a Sunday: Monday
    expect(days([{ date: "05-03", observed: "substitute", what: "x" }], 2025)).toEqual(["2025-05-03"]); // a Saturday one is lost
  });

  test("sandwiched: a day between two days other rules name on their own dates", () => {
    const silver: HolidayRule[] = [
      { month: 9, weekday: "Mon", nth: 3, what: "Respect for the Aged Day" },
      { equinox: "autumnal", observed: "substitute", what: "Autumnal Equinox Day" },
      { sandwiched: true, what: "citizens' holiday" },
    ];
    expect(days(silver, 2015)).toEqual(["2015-09-21", "2015-09-23", "2015-09-22"]);
    expect(days(silver, 2024)).toEqual(["2024-09-16", "2024-09-22", "2024-09-23"]); // a week apart: none
    // A substitute day is not a holiday of its own date: Sunday 05-03's Monday and a Wednesday holiday sandwich nothing.
    const moved: HolidayRule[] = [
      { date: "05-03", observed: "substitute", what: "x" },
      { date: "05-06", what: "y" },
      { sandwiched: true, what: "z" },
    ];
    expect(days(moved, 2026).sort()).toEqual(["2026-05-03", "2026-05-04", "2026-05-06"]);
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
    expect(parse({ holidays: [{ lunar: "13-01", what: "x" }] }).success).toBe(false);
    expect(parse({ holidays: [{ lunar: "08-31", what: "x" }] }).success).toBe(false);
    expect(parse({ holidays: [{ solarTerm: 20, what: "x" }] }).success).toBe(false);
    expect(parse({ holidays: [{ date: "05-01", observed: "next-free-day", what: "x" }] }).success).toBe(true);
    const file = v.parse(MarketFileSchema, wse) as MarketFile;
    expect(phaseProblem({ ...file, phases: { ...file.phases, pre: { ...file.phases.pre!, to: "08:45" } } })).toBe("the WSE phases are not contiguous and in order");
    expect(phaseProblem({ ...file, halfDays: [{ date: "12-24", what: "x" }] })).toBe("WSE has half days but no phases.earlyClose hours");
    const lunch = (from: string, to: string) => phaseProblem({ ...file, phases: { ...file.phases, breaks: [{ from, to, what: "lunch" }] } });
    expect(lunch("12:00", "13:00")).toBeUndefined();
    expect(lunch("08:00", "13:00")).toBe("the WSE breaks are not inside phases.open, in order and apart");
    expect(lunch("13:00", "12:00")).toBe("the WSE breaks are not inside phases.open, in order and apart");
  });

  test("breaks lie inside the session, in order; earlier hours are in date order", () => {
    const file = v.parse(MarketFileSchema, wse) as MarketFile;
    const withBreaks = (breaks: { from: string; to: string }[]) => ({ ...file, phases: { ...file.phases, breaks: breaks.map((b) => ({ ...b, what: "lunch" })) } });
    expect(phaseProblem(withBreaks([{ from: "12:00", to: "13:00" }]))).toBeUndefined();
    const broken = "the WSE breaks are not inside phases.open, in order and apart";
    expect(phaseProblem(withBreaks([{ from: "08:30", to: "09:30" }]))).toBe(broken); // starts before the 09:00 open
    expect(phaseProblem(withBreaks([{ from: "16:00", to: "17:00" }]))).toBe(broken); // reaches the 17:00 close
    expect(phaseProblem(withBreaks([{ from: "13:00", to: "12:00" }]))).toBe(broken);
    expect(phaseProblem(withBreaks([{ from: "12:00", to: "13:00" }, { from: "12:30", to: "14:00" }]))).toBe(broken);
    const history = (h: { until: string; close?: string; earlyClose?: string }[]) => ({ ...file, hoursHistory: h.map((x) => ({ ...x, what: "x" })) });
    expect(phaseProblem(history([{ until: "2010-01-01", close: "16:30" }, { until: "2013-04-12" }]))).toBeUndefined();
    expect(phaseProblem(history([{ until: "2013-04-12" }, { until: "2010-01-01" }]))).toBe("the WSE hoursHistory is not in date order");
    expect(phaseProblem(history([{ until: "2010-01-01", close: "08:00" }]))).toContain("is not a session inside the day's phases");
    expect(phaseProblem(history([{ until: "2010-01-01", close: "16:30", earlyClose: "14:00" }]))).toBeUndefined();
    expect(phaseProblem(history([{ until: "2010-01-01", close: "16:30", earlyClose: "16:30" }]))).toBe("the WSE hoursHistory entry until 2010-01-01 has an earlyClose outside its session");
    expect(phaseProblem(history([{ until: "2010-01-01", earlyClose: "08:59" }]))).toContain("has an earlyClose outside its session");
  });

  test("symbols: one owner per suffix, and storedAs names a market that stores its own", () => {
    const files = MARKETS.map((m) => v.parse(MarketFileSchema, m) as MarketFile);
    expect(symbolsProblem(files)).toBeUndefined();
    const patch = (code: string, symbols: Partial<MarketFile["symbols"]>) => files.map((m) => (m.code === code ? { ...m, symbols: { ...m.symbols, ...symbols } } : m));
    expect(symbolsProblem(patch("NASDAQ", { aliases: ["XNAS", "NMS", "US"] }))).toBe("suffix US of NASDAQ is already NYSE's");
    expect(symbolsProblem(patch("TSE", { suffix: "NASDAQ" }))).toBe("suffix NASDAQ of TSE is already NASDAQ's");
    expect(symbolsProblem(patch("NASDAQ", { storedAs: "XYZ" }))).toBe('NASDAQ: symbols.storedAs "XYZ" is not another market that stores its own symbols');
    expect(symbolsProblem(patch("NASDAQ", { storedAs: "NASDAQ" }))).toContain("is not another market");
    expect(symbolsProblem(patch("TSE", { storedAs: "NASDAQ" }))).toContain("is not another market"); // NASDAQ stores as NYSE itself
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

// Facts of Tokyo, each known on its own (not read from exchange-calendars).
describe("Tokyo", () => {
  const iso = (ms: number) => new Date(ms).toISOString();
  const at = (instant: string) => Date.parse(instant);

  test("holidays: equinoxes, substitutes, the citizens' holiday, the year-end closure, one-offs", () => {
    const closed = (d: string) => !isTradingDay("TSE", d);
    expect(closed("2025-03-20")).toBe(true); // Vernal Equinox Day (Thursday)
    expect(closed("2024-09-23")).toBe(true); // Autumnal Equinox on Sunday the 22nd: Monday's substitute holiday
    expect(closed("2024-02-12")).toBe(true); // National Foundation Day on a Sunday
    expect(closed("2015-05-06")).toBe(true); // Constitution Day on a Sunday: the Wednesday after Golden Week
    expect(closed("2015-09-22")).toBe(true); // Silver Week: between Respect for the Aged Day and the equinox
    expect(["2019-04-30", "2019-05-01", "2019-05-02", "2019-10-22"].every(closed)).toBe(true); // the accession and enthronement
    expect(["2020-07-23", "2020-07-24", "2021-08-09"].every(closed)).toBe(true); // Olympic moves (Mountain Day 2021 on a Sunday)
    expect(closed("2020-10-12")).toBe(false); // Sports Day 2020 moved to July 24, so October's second Monday traded
    expect(closed("2020-10-01")).toBe(true); // arrowhead failure
    expect(["2024-12-31", "2025-01-02", "2025-01-03"].every(closed)).toBe(true);
    expect(closed("2025-01-06")).toBe(false);
    expect(closed("2019-12-23")).toBe(false); // no Emperor's Birthday in 2019
    expect(closed("2020-02-24")).toBe(true); // Emperor Naruhito's birthday on a Sunday
  });

  test("the session: 09:00-15:30 with lunch 11:30-12:30, 15:00 before 2024-11-05", () => {
    expect(sessionFor("TSE", "2025-06-02")).toEqual({
      date: "2025-06-02",
      open: at("2025-06-02T00:00:00Z"),
      close: at("2025-06-02T06:30:00Z"),
      early: false,
      breaks: [{ from: at("2025-06-02T02:30:00Z"), to: at("2025-06-02T03:30:00Z") }],
    });
    expect(iso(sessionFor("TSE", "2024-11-01")!.close)).toBe("2024-11-01T06:00:00.000Z");
    expect(iso(sessionFor("TSE", "2024-11-05")!.close)).toBe("2024-11-05T06:30:00.000Z");
  });

  test("lunch is a break: not open, and the next open is its end", () => {
    const cases: [string, string][] = [
      ["2025-06-02T02:29:59Z", "open"], // 11:29:59 JST
      ["2025-06-02T02:30:00Z", "break"],
      ["2025-06-02T02:45:00Z", "break"], // 11:45
      ["2025-06-02T03:15:00Z", "break"], // 12:15
      ["2025-06-02T03:30:00Z", "open"], // 12:30
      ["2025-06-02T06:30:00Z", "post"], // 15:30
      ["2025-06-01T02:45:00Z", "closed"], // a Sunday has no lunch break
    ];
    expect(cases.map(([t]) => [t, marketPhase("TSE", at(t))])).toEqual(cases);
    expect(isOpen("TSE", at("2025-06-02T02:45:00Z"))).toBe(false);
    expect(isOpen("TSE", at("2025-06-02T02:45:00Z"), ["pre", "open", "post"])).toBe(false);
    expect(iso(nextOpen("TSE", at("2025-06-02T02:45:00Z")))).toBe("2025-06-02T03:30:00.000Z");
    expect(iso(nextOpen("TSE", at("2025-06-02T02:45:00Z"), ["post"]))).toBe("2025-06-02T06:30:00.000Z");
    expect(phasesOn("TSE", "2025-06-02").map((p) => [p.phase, iso(p.from), iso(p.to)])).toEqual([
      ["pre", "2025-06-01T23:00:00.000Z", "2025-06-02T00:00:00.000Z"],
      ["open", "2025-06-02T00:00:00.000Z", "2025-06-02T02:30:00.000Z"],
      ["break", "2025-06-02T02:30:00.000Z", "2025-06-02T03:30:00.000Z"],
      ["open", "2025-06-02T03:30:00.000Z", "2025-06-02T06:30:00.000Z"],
      ["post", "2025-06-02T06:30:00.000Z", "2025-06-02T07:00:00.000Z"],
    ]);
  });

  test("a shortened session ends at a break it closes in, or opens at the end of one it opens in", () => {
    const lunch = [{ from: "11:30", to: "12:30" }];
    expect(clipToBreaks("09:00", "15:30", lunch)).toEqual({ open: "09:00", close: "15:30", breaks: lunch });
    expect(clipToBreaks("09:00", "12:00", lunch)).toEqual({ open: "09:00", close: "11:30", breaks: [] }); // closes inside lunch
    expect(clipToBreaks("09:00", "11:00", lunch)).toEqual({ open: "09:00", close: "11:00", breaks: [] }); // closes before it
    expect(clipToBreaks("09:00", "12:30", lunch)).toEqual({ open: "09:00", close: "11:30", breaks: [] }); // closes at its end
    expect(clipToBreaks("12:00", "15:30", lunch)).toEqual({ open: "12:30", close: "15:30", breaks: [] }); // opens inside it
    expect(clipToBreaks("13:00", "15:30", lunch)).toEqual({ open: "13:00", close: "15:30", breaks: [] });
  });

  test("symbols: .T is canonical, Stooq's .jp and TSE: read as Tokyo", () => {
    for (const raw of ["7203.T", "7203.jp", "TSE:7203", "7203.TYO", "XTKS:7203"]) {
      expect(normaliseSymbol(raw)).toEqual({ ok: true, symbol: "7203.T", ticker: "7203", market: "TSE" });
    }
    expect(normaliseSymbol("130A", "TSE")).toMatchObject({ ok: true, symbol: "130A.T" });
    expect(["yahoo", "stooq", "alphavantage", "polygon"].map((p) => providerSpelling(p, "7203", "TSE"))).toEqual(["7203.T", "7203.jp", null, null]);
  });
});

describe("Nasdaq", () => {
  test("NYSE's holidays and half days, Nasdaq's extended hours", () => {
    expect(isTradingDay("NASDAQ", "2025-04-18")).toBe(false); // Good Friday
    expect(isTradingDay("NASDAQ", "2025-01-09")).toBe(false); // national day of mourning for President Carter
    expect(new Date(sessionFor("NASDAQ", "2025-07-03")!.close).toISOString()).toBe("2025-07-03T17:00:00.000Z"); // 13:00 EDT
    expect(marketPhase("NASDAQ", Date.parse("2025-06-02T08:00:00Z"))).toBe("pre"); // 04:00 EDT
    expect(marketPhase("NASDAQ", Date.parse("2025-06-02T23:59:00Z"))).toBe("post"); // 19:59 EDT
  });

  test("the same sessions as NYSE 2000-2035 but for NYSE's noon opening of 2002-09-11", () => {
    const differing: string[] = [];
    for (let t = Date.UTC(2000, 0, 1); t <= Date.UTC(2035, 11, 31); t += 86_400_000) {
      const d = formatDate(Math.floor(t / 86_400_000));
      if (JSON.stringify(sessionFor("NASDAQ", d)) !== JSON.stringify(sessionFor("NYSE", d))) differing.push(d);
    }
    expect(differing).toEqual(["2002-09-11"]);
  });

  test("symbols: stored as .US, read as NASDAQ; providers spell them as NYSE's", () => {
    expect(normaliseSymbol("AAPL", "NASDAQ")).toEqual({ ok: true, symbol: "AAPL.US", ticker: "AAPL", market: "NASDAQ" });
    expect(normaliseSymbol("NASDAQ:AAPL")).toEqual({ ok: true, symbol: "AAPL.US", ticker: "AAPL", market: "NASDAQ" });
    expect(normaliseSymbol("aapl.us")).toMatchObject({ symbol: "AAPL.US", market: "NYSE" });
    for (const p of ["yahoo", "stooq", "alphavantage", "polygon"]) expect(providerSpelling(p, "BRK-B", "NASDAQ")).toBe(providerSpelling(p, "BRK-B", "NYSE"));
  });
});

// Hong Kong, known independently of exchange-calendars: the gazetted general holidays (2023's
// Lunar New Year on a Sunday, 2025's Buddha's Birthday, 2027's Lunar New Year on a Saturday, which
// the runtime's ICU alone would put a day late), the morning-only eves, four-digit tickers.
describe("Hong Kong", () => {
  const closeUtc = (date: string) => new Date(sessionFor("HKEX", date)!.close).toISOString();
  const trading = (...dates: string[]) => dates.map((d) => isTradingDay("HKEX", d));

  test("Lunar New Year: three days, a Sunday among them adds the fourth; the eve is a morning", () => {
    expect(trading("2025-01-29", "2025-01-30", "2025-01-31", "2025-02-03")).toEqual([false, false, false, true]);
    expect(closeUtc("2025-01-28")).toBe("2025-01-28T04:00:00.000Z"); // 12:00 HKT
    expect(trading("2023-01-20", "2023-01-23", "2023-01-24", "2023-01-25", "2023-01-26")).toEqual([true, false, false, false, true]);
    // 2027-02-06 is a Saturday: the third day (Monday) and the fourth (Tuesday) closed, Friday the eve.
    expect(trading("2027-02-08", "2027-02-09", "2027-02-10")).toEqual([false, false, true]);
    expect(closeUtc("2027-02-05")).toBe("2027-02-05T04:00:00.000Z");
  });

  test("the Buddha's Birthday 2025, Ching Ming moved past Easter Monday, Christmas on a Sunday", () => {
    expect(trading("2025-05-05", "2025-05-06")).toEqual([false, true]);
    expect(trading("2015-04-06", "2015-04-07", "2015-04-08")).toEqual([false, false, true]);
    expect(trading("2022-12-26", "2022-12-27", "2022-12-28")).toEqual([false, false, true]);
    expect(trading("2025-10-01", "2025-10-07", "2025-10-29")).toEqual([false, false, false]); // National Day, the day after Mid-Autumn, Chung Yeung
  });

  test("hours: 09:30 to 16:00 with a lunch break; Christmas Eve ends at noon", () => {
    const s = sessionFor("HKEX", "2025-03-03")!;
    expect([new Date(s.open).toISOString(), new Date(s.close).toISOString()]).toEqual(["2025-03-03T01:30:00.000Z", "2025-03-03T08:00:00.000Z"]);
    expect(marketInfo("HKEX")!.phases.breaks).toEqual([{ from: "12:00", to: "13:00", what: expect.any(String) }]);
    expect(closeUtc("2025-12-24")).toBe("2025-12-24T04:00:00.000Z");
  });

  // Per HKEx's news releases of 2010-11-23 and 2012-03-01 (stored copies) and exchange-calendars'
  // 10:00 open and 12:30 half-day close until 2011-03-04; its lunch is today's for every year.
  test("earlier hours: 10:00, lunch 12:30-14:30 and half days to 12:30 until 2011-03-04; lunch 12:00-13:30 until 2012-03-02", () => {
    const iso = (t: number) => new Date(t).toISOString();
    const shape = (date: string) => {
      const s = sessionFor("HKEX", date)!;
      return { open: iso(s.open), close: iso(s.close), early: s.early, breaks: (s.breaks ?? []).map((b) => [iso(b.from), iso(b.to)]) };
    };
    expect(shape("2010-06-01")).toEqual({ open: "2010-06-01T02:00:00.000Z", close: "2010-06-01T08:00:00.000Z", early: false, breaks: [["2010-06-01T04:30:00.000Z", "2010-06-01T06:30:00.000Z"]] });
    expect(marketPhase("HKEX", Date.parse("2010-06-01T04:15:00Z"))).toBe("open"); // 12:15: still the morning session then
    expect(marketPhase("HKEX", Date.parse("2010-06-01T06:00:00Z"))).toBe("break"); // 14:00: today's afternoon, then lunch
    expect(shape("2010-12-24")).toEqual({ open: "2010-12-24T02:00:00.000Z", close: "2010-12-24T04:30:00.000Z", early: true, breaks: [] });
    expect(shape("2011-03-04").open).toBe("2011-03-04T02:00:00.000Z");
    expect(shape("2011-03-07").open).toBe("2011-03-07T01:30:00.000Z");
    expect(shape("2011-06-01")).toEqual({ open: "2011-06-01T01:30:00.000Z", close: "2011-06-01T08:00:00.000Z", early: false, breaks: [["2011-06-01T04:00:00.000Z", "2011-06-01T05:30:00.000Z"]] });
    expect(shape("2012-03-02").breaks).toEqual([["2012-03-02T04:00:00.000Z", "2012-03-02T05:30:00.000Z"]]);
    expect(shape("2012-03-05").breaks).toEqual([["2012-03-05T04:00:00.000Z", "2012-03-05T05:00:00.000Z"]]);
    expect(closeUtc("2012-12-24")).toBe("2012-12-24T04:00:00.000Z");
  });

  test("tickers are stored with four digits, as Yahoo writes them; Stooq drops the zeros", () => {
    for (const raw of ["700.HK", "0700.HK", "00700.hk", "HKG:700", "700:XHKG", "700.HKEX"]) expect(normaliseSymbol(raw)).toEqual({ ok: true, symbol: "0700.HK", ticker: "0700", market: "HKEX" });
    expect(normaliseSymbol("9988.HK")).toMatchObject({ symbol: "9988.HK" });
    expect(normaliseSymbol("5", "HKEX")).toMatchObject({ symbol: "0005.HK" });
    expect(normaliseSymbol("700", "NYSE")).toMatchObject({ symbol: "700.US" }); // padding is Hong Kong's alone
    expect(["yahoo", "stooq", "alphavantage", "polygon"].map((p) => providerSpelling(p, "0700", "HKEX"))).toEqual(["0700.HK", "700.hk", null, null]);
    expect(providerSpelling("stooq", "0005", "HKEX")).toBe("5.hk");
  });
});
