// Timestamp parsing: the spellings market-data files use, all to epoch ms UTC, and null for
// anything that is not a real instant between 1900 and 2200.
import { describe, expect, test } from "bun:test";
import { floorUtcDay, parseTimestamp, utcDate } from "./time.ts";
import { testTimeout } from "../../test/timeout.ts";

testTimeout();

const utc = Date.UTC;

describe("dates", () => {
  test("ISO date is 00:00Z", () => {
    expect(parseTimestamp("2024-05-06")).toBe(utc(2024, 4, 6));
    expect(parseTimestamp("  2024-05-06  ")).toBe(utc(2024, 4, 6));
  });

  test("compact yyyymmdd", () => {
    expect(parseTimestamp("20240506")).toBe(utc(2024, 4, 6));
  });

  test("a date alone ignores the time zone: it names a day, not an instant in it", () => {
    expect(parseTimestamp("2024-05-06", "auto", "Europe/Warsaw")).toBe(utc(2024, 4, 6));
    expect(parseTimestamp("20240506", "auto", "America/New_York")).toBe(utc(2024, 4, 6));
  });

  test("a leap day exists in leap years only", () => {
    expect(parseTimestamp("2024-02-29")).toBe(utc(2024, 1, 29));
    expect(parseTimestamp("2000-02-29")).toBe(utc(2000, 1, 29));
    expect(parseTimestamp("2023-02-29")).toBeNull();
    expect(parseTimestamp("1900-02-29")).toBeNull();
    expect(parseTimestamp("20230229")).toBeNull();
  });

  test("impossible months and days", () => {
    for (const s of ["2024-13-01", "2024-00-10", "2024-04-31", "2024-01-32", "2024-02-30", "2024-01-00", "20241301", "20240431"]) expect(parseTimestamp(s)).toBeNull();
  });

  test("other spellings are not guessed", () => {
    for (const s of ["yesterday", "2024-5-6", "06/05/2024", "6.5.2024", "2024/05/06", "May 6, 2024", "", "   "]) expect(parseTimestamp(s)).toBeNull();
  });
});

describe("compact date with time", () => {
  test("HHMMSS and HHMM, with or without a separator", () => {
    const t = utc(2024, 4, 6, 15, 30);
    expect(parseTimestamp("20240506 153000")).toBe(t);
    expect(parseTimestamp("20240506153000")).toBe(t);
    expect(parseTimestamp("20240506T1530")).toBe(t);
    expect(parseTimestamp("20240506 153045")).toBe(t + 45_000);
  });

  test("read in the given time zone", () => {
    // May: Warsaw is UTC+2.
    expect(parseTimestamp("20240506 1530", "auto", "Europe/Warsaw")).toBe(utc(2024, 4, 6, 13, 30));
  });

  test("impossible times", () => {
    expect(parseTimestamp("20240506 2500")).toBeNull();
    expect(parseTimestamp("20240506 1260")).toBeNull();
  });
});

describe("ISO with a zone", () => {
  test("Z, with and without seconds and milliseconds", () => {
    expect(parseTimestamp("2024-05-06T10:00:00Z")).toBe(utc(2024, 4, 6, 10));
    expect(parseTimestamp("2024-05-06T10:00Z")).toBe(utc(2024, 4, 6, 10));
    expect(parseTimestamp("2024-05-06T10:00:00.123Z")).toBe(utc(2024, 4, 6, 10, 0, 0, 123));
  });

  test("offsets, with and without a colon", () => {
    expect(parseTimestamp("2024-05-06T10:00:00+02:00")).toBe(utc(2024, 4, 6, 8));
    expect(parseTimestamp("2024-05-06T10:00:00-05:00")).toBe(utc(2024, 4, 6, 15));
    expect(parseTimestamp("2024-05-06T10:00:00-0500")).toBe(utc(2024, 4, 6, 15));
  });

  test("an explicit offset wins over the configured time zone", () => {
    expect(parseTimestamp("2024-05-06T10:00:00+02:00", "auto", "America/New_York")).toBe(utc(2024, 4, 6, 8));
    expect(parseTimestamp("2024-05-06T10:00:00Z", "auto", "Europe/Warsaw")).toBe(utc(2024, 4, 6, 10));
  });

  test("an hour past 23 is not a time", () => {
    expect(parseTimestamp("2024-05-06T25:00:00Z")).toBeNull();
  });

  test("an impossible date is null with a zone too, not rolled into the next month", () => {
    // Date.parse in JavaScriptCore accepts day 29..31 of any month and rolls it over.
    expect(parseTimestamp("2024-02-30T10:00:00Z")).toBeNull();
    expect(parseTimestamp("2023-02-29T00:00:00Z")).toBeNull();
    expect(parseTimestamp("2024-04-31T12:00:00+02:00")).toBeNull();
  });
});

describe("local date-time in a time zone", () => {
  test("without a zone it is UTC", () => {
    expect(parseTimestamp("2024-05-06 10:00")).toBe(utc(2024, 4, 6, 10));
    expect(parseTimestamp("2024-05-06T10:00:00")).toBe(utc(2024, 4, 6, 10));
    expect(parseTimestamp("2024-05-06 10:00", "auto", "UTC")).toBe(utc(2024, 4, 6, 10));
  });

  test("Europe/Warsaw in summer (CEST, +2) and winter (CET, +1)", () => {
    expect(parseTimestamp("2024-07-01 10:00", "auto", "Europe/Warsaw")).toBe(utc(2024, 6, 1, 8));
    expect(parseTimestamp("2024-01-15 10:00", "auto", "Europe/Warsaw")).toBe(utc(2024, 0, 15, 9));
    expect(parseTimestamp("2024-01-15T17:00:00", "auto", "Europe/Warsaw")).toBe(utc(2024, 0, 15, 16));
  });

  test("America/New_York in summer (EDT, -4) and winter (EST, -5)", () => {
    expect(parseTimestamp("2024-07-01 09:30", "auto", "America/New_York")).toBe(utc(2024, 6, 1, 13, 30));
    expect(parseTimestamp("2024-01-15 09:30", "auto", "America/New_York")).toBe(utc(2024, 0, 15, 14, 30));
  });

  test("seconds and fractions survive the zone conversion", () => {
    expect(parseTimestamp("2024-07-01 10:00:30.5", "auto", "Europe/Warsaw")).toBe(utc(2024, 6, 1, 8, 0, 30, 500));
    expect(parseTimestamp("2024-07-01 10:00:30.123456")).toBe(utc(2024, 6, 1, 10, 0, 30, 123));
  });

  test("around the DST changes", () => {
    // Spring forward: 02:30 does not exist on 2024-03-31 in Warsaw; read as 03:30 CEST.
    expect(parseTimestamp("2024-03-31 02:30", "auto", "Europe/Warsaw")).toBe(utc(2024, 2, 31, 1, 30));
    // Fall back: 02:30 happens twice on 2024-10-27; the first (CEST) is meant.
    expect(parseTimestamp("2024-10-27 02:30", "auto", "Europe/Warsaw")).toBe(utc(2024, 9, 27, 0, 30));
    // The day after each change uses the new offset.
    expect(parseTimestamp("2024-04-01 10:00", "auto", "Europe/Warsaw")).toBe(utc(2024, 3, 1, 8));
    expect(parseTimestamp("2024-10-28 10:00", "auto", "Europe/Warsaw")).toBe(utc(2024, 9, 28, 9));
  });

  test("impossible clock times", () => {
    expect(parseTimestamp("2024-05-06 24:00")).toBeNull();
    expect(parseTimestamp("2024-05-06 23:60")).toBeNull();
    expect(parseTimestamp("2024-05-06 10:00:60")).toBeNull();
    expect(parseTimestamp("2024-02-30 10:00", "auto", "Europe/Warsaw")).toBeNull();
  });
});

describe("epoch numbers", () => {
  const T = utc(2024, 4, 6);

  test("auto: below 1e11 is seconds, above is milliseconds", () => {
    expect(parseTimestamp(T / 1000)).toBe(T);
    expect(parseTimestamp(T)).toBe(T);
    expect(parseTimestamp(String(T / 1000))).toBe(T);
    expect(parseTimestamp(String(T))).toBe(T);
    expect(parseTimestamp(99_999_999_999)).toBeNull(); // seconds → year 5138, out of range
    expect(parseTimestamp(100_000_000_000)).toBe(100_000_000_000); // ms → 1973
  });

  test("fractional seconds become whole milliseconds", () => {
    expect(parseTimestamp(T / 1000 + 0.5)).toBe(T + 500);
    expect(parseTimestamp(`${T / 1000}.25`)).toBe(T + 250);
    expect(parseTimestamp(T + 0.9)).toBe(T);
  });

  test("bigint (SQLite INTEGER) is a number too", () => {
    expect(parseTimestamp(BigInt(T / 1000))).toBe(T);
    expect(parseTimestamp(BigInt(T))).toBe(T);
  });

  test("explicit formats override the guess", () => {
    expect(parseTimestamp(T / 1000, "epoch_s")).toBe(T);
    expect(parseTimestamp(String(T / 1000), "epoch_s")).toBe(T);
    expect(parseTimestamp(String(T + 123), "epoch_ms")).toBe(T + 123);
    // Seconds read as ms: January 1970 — a real instant, so not null.
    expect(parseTimestamp(T / 1000, "epoch_ms")).toBe(T / 1000);
    // Ms read as seconds: out of range.
    expect(parseTimestamp(T, "epoch_s")).toBeNull();
  });

  test("epoch formats reject text that is not a number", () => {
    expect(parseTimestamp("abc", "epoch_s")).toBeNull();
    expect(parseTimestamp("2024-05-06", "epoch_ms")).toBeNull();
    expect(parseTimestamp("", "epoch_s")).toBeNull();
  });

  test("non-finite numbers", () => {
    expect(parseTimestamp(Number.NaN)).toBeNull();
    expect(parseTimestamp(Infinity)).toBeNull();
    expect(parseTimestamp(-Infinity)).toBeNull();
  });

  test("negative epochs after 1900 are instants", () => {
    expect(parseTimestamp(-1)).toBe(-1000);
    expect(parseTimestamp("-2208988800")).toBe(utc(1900, 0, 1));
  });
});

describe("explicit formats", () => {
  test("iso does not read compact dates", () => {
    expect(parseTimestamp("20240506", "iso")).toBeNull();
    expect(parseTimestamp("2024-05-06", "iso")).toBe(utc(2024, 4, 6));
    expect(parseTimestamp("2024-05-06T10:00:00Z", "iso")).toBe(utc(2024, 4, 6, 10));
  });

  test("yyyymmdd reads compact dates given as text or number", () => {
    expect(parseTimestamp("20240506", "yyyymmdd")).toBe(utc(2024, 4, 6));
    expect(parseTimestamp(20240506, "yyyymmdd")).toBe(utc(2024, 4, 6));
    expect(parseTimestamp(20240230, "yyyymmdd")).toBeNull();
  });
});

describe("range 1900..2200", () => {
  test("bounds are inclusive", () => {
    expect(parseTimestamp("1900-01-01")).toBe(utc(1900, 0, 1));
    expect(parseTimestamp("2200-01-01")).toBe(utc(2200, 0, 1));
  });

  test("outside is null", () => {
    expect(parseTimestamp("1899-12-31")).toBeNull();
    expect(parseTimestamp("2200-01-02")).toBeNull();
    expect(parseTimestamp("9999-12-31T00:00:00Z")).toBeNull();
    expect(parseTimestamp("0024-05-06T10:00:00Z")).toBeNull();
  });

  test("two-digit years are not moved into the 1900s", () => {
    // Date.UTC maps years 0..99 to 1900..1999, so "0001-01-01" (a common placeholder for "no
    // date") would otherwise come back as 1901-01-01 and "0099-12-31" as 1999-12-31.
    expect(parseTimestamp("0001-01-01")).toBeNull();
    expect(parseTimestamp("0000-01-01")).toBeNull();
    expect(parseTimestamp("0099-12-31")).toBeNull();
    expect(parseTimestamp("00240506")).toBeNull();
    expect(parseTimestamp("0050-06-01 10:00")).toBeNull();
  });
});

test("Date objects and other types", () => {
  expect(parseTimestamp(new Date(utc(2024, 4, 6, 1)))).toBe(utc(2024, 4, 6, 1));
  expect(parseTimestamp(new Date(Number.NaN))).toBeNull();
  expect(parseTimestamp(null)).toBeNull();
  expect(parseTimestamp(undefined)).toBeNull();
  expect(parseTimestamp(true)).toBeNull();
  expect(parseTimestamp({})).toBeNull();
});

describe("floorUtcDay and utcDate", () => {
  test("floor to 00:00Z", () => {
    expect(floorUtcDay(utc(2024, 4, 6, 23, 59, 59, 999))).toBe(utc(2024, 4, 6));
    expect(floorUtcDay(utc(2024, 4, 6))).toBe(utc(2024, 4, 6));
    expect(floorUtcDay(utc(2024, 4, 7) - 1)).toBe(utc(2024, 4, 6));
  });

  test("before 1970 it floors down, not toward zero", () => {
    expect(floorUtcDay(-1)).toBe(-86_400_000);
    expect(floorUtcDay(utc(1969, 11, 31, 12))).toBe(utc(1969, 11, 31));
    expect(floorUtcDay(utc(1900, 0, 1, 6))).toBe(utc(1900, 0, 1));
  });

  test("utcDate is the UTC calendar date", () => {
    expect(utcDate(utc(2024, 4, 6, 23, 59))).toBe("2024-05-06");
    expect(utcDate(utc(2024, 4, 6))).toBe("2024-05-06");
    expect(utcDate(-1)).toBe("1969-12-31");
    // 01:00 in Warsaw on May 7 is still May 6 in UTC.
    expect(utcDate(parseTimestamp("2024-05-07 01:00", "auto", "Europe/Warsaw")!)).toBe("2024-05-06");
  });
});
