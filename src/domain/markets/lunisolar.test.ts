// The Chinese calendar dates and solar terms the holiday rules use, against published dates
// (the Hong Kong Observatory's, Meeus's worked example), including the two Lunar New Years of
// 2000-2035 the runtime's ICU gets wrong on its own.
import { expect, test } from "bun:test";
import { testTimeout } from "../../../test/timeout.ts";
import { dayNumber, formatDate } from "../days.ts";
import { lunarDay, newMoonInstant, solarTermDay } from "./lunisolar.ts";

testTimeout();

const lunar = (y: number, m: number, d: number) => {
  const n = lunarDay(y, m, d);
  return n === null ? null : formatDate(n);
};

test("Lunar New Year, including 2027 and 2030, where a new moon falls minutes from midnight in China", () => {
  expect([2023, 2024, 2025, 2026, 2027, 2030, 2033, 2034].map((y) => lunar(y, 1, 1))).toEqual([
    "2023-01-22", "2024-02-10", "2025-01-29", "2026-02-17", "2027-02-06", "2030-02-03", "2033-01-31", "2034-02-19",
  ]);
});

test("festivals of 2025, a year with a leap sixth month, and a 30th that a 29-day month lacks", () => {
  expect([lunar(2025, 4, 8), lunar(2025, 5, 5), lunar(2025, 8, 15), lunar(2025, 9, 9)]).toEqual(["2025-05-05", "2025-05-31", "2025-10-06", "2025-10-29"]);
  expect(lunar(2025, 12, 30)).toBeNull(); // the year's last month has 29 days: Lunar New Year 2026 is 02-17
  expect(lunar(2025, 12, 29)).toBe("2026-02-16");
});

test("new moons: Meeus's example 49.a, and the day-deciding ones of 2027 and 2030", () => {
  const tt = newMoonInstant(dayNumber(1977, 2, 18)) + 69_000; // the book gives Terrestrial Time
  expect(tt / 86_400_000 + 2_440_587.5).toBeCloseTo(2_443_192.65118, 4);
  // 23:56 and 00:07 in China: the first begins a month on February 6, the second on February 3.
  expect(new Date(newMoonInstant(dayNumber(2027, 2, 6))).toISOString().slice(0, 16)).toBe("2027-02-06T15:56");
  expect(new Date(newMoonInstant(dayNumber(2030, 2, 2))).toISOString().slice(0, 16)).toBe("2030-02-02T16:07");
});

test("Qingming (the sun at 15 degrees) and other solar terms", () => {
  expect([2024, 2025, 2026, 2027].map((y) => formatDate(solarTermDay(y, 15)))).toEqual(["2024-04-04", "2025-04-04", "2026-04-05", "2027-04-05"]);
  expect(formatDate(solarTermDay(2025, 0))).toBe("2025-03-20"); // the March equinox
  expect(formatDate(solarTermDay(2025, 315))).toBe("2025-02-03"); // Lichun, the start of spring
  expect(formatDate(solarTermDay(2025, 270))).toBe("2025-12-21"); // the December solstice
});
