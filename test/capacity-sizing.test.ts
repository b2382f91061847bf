// The capacity bench's sizing arithmetic (scripts/bench/lib/sizing.ts): bars, disk, load CPU and
// machines from a store's measured figures, checked against hand-worked numbers; and the pure
// helpers the bench's data preparation uses (the CSV split at a change of symbol, a line's bar).
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bytesText, hoursText, scenarioBars, sizing } from "../scripts/bench/lib/sizing.ts";
import { parseLine, splitCsv } from "../scripts/bench/lib/capacity-data.ts";
import { testTimeout } from "./timeout.ts";

testTimeout();

describe("sizing", () => {
  const usMinutes = { symbols: 10_000, label: "1m US × 5 y", barsPerDay: 390, daysPerYear: 252, years: 5 };

  test("bars: symbols × bars a day × days a year × years", () => {
    expect(scenarioBars(usMinutes)).toBe(4_914_000_000);
    expect(scenarioBars({ symbols: 1_000, label: "1d × 20 y", barsPerDay: 1, daysPerYear: 252, years: 20 })).toBe(5_040_000);
  });

  test("disk, load CPU-hours, daily CPU and machines by disk", () => {
    const z = sizing(usMinutes, { bytesPerBar: 150, rowsPerCpuSecond: 50_000 }, { cores: 16, diskBytes: 4e12 });
    expect(z.diskBytes).toBe(737_100_000_000); // 4.914e9 × 150
    expect(z.loadCpuHours).toBeCloseTo(4_914_000_000 / 50_000 / 3600, 9); // 27.3 h
    expect(z.loadHoursAllCores).toBeCloseTo(z.loadCpuHours / 16, 9);
    expect(z.dailyBars).toBe(3_900_000);
    expect(z.dailyCpuSeconds).toBe(78);
    expect(z.machines).toBe(1);
    // Ten times the symbols: 7.4 TB no longer fits one 4 TB machine.
    expect(sizing({ ...usMinutes, symbols: 100_000 }, { bytesPerBar: 150, rowsPerCpuSecond: 50_000 }, { cores: 16, diskBytes: 4e12 }).machines).toBe(2);
  });

  test("refuses figures that are not measurements", () => {
    expect(() => sizing(usMinutes, { bytesPerBar: 0, rowsPerCpuSecond: 1 }, { cores: 1, diskBytes: 1 })).toThrow(/> 0/);
    expect(() => sizing(usMinutes, { bytesPerBar: 1, rowsPerCpuSecond: Number.NaN }, { cores: 1, diskBytes: 1 })).toThrow(/> 0/);
  });

  test("printed units", () => {
    expect([bytesText(737_100_000_000), bytesText(7.371e12), bytesText(66e12), bytesText(9.9e9), bytesText(986e6)]).toEqual(["737 GB", "7.4 TB", "66 TB", "9.9 GB", "986 MB"]);
    expect([hoursText(0.2), hoursText(1.71), hoursText(27.3), hoursText(60), hoursText(1000)]).toEqual(["12 min", "1.7 h", "27 h", "2.5 d", "42 d"]);
  });
});

describe("capacity data", () => {
  test("a line's bar: the market's symbol, ts in ms UTC", () => {
    expect(parseLine("ABE,D,20120102,000000,10.00,10.50,9.90,10.20,1000,0", "1d")).toEqual({ symbol: "ABE.WA", ts: Date.UTC(2012, 0, 2), open: 10, high: 10.5, low: 9.9, close: 10.2, volume: 1000 });
    expect(parseLine("X7USDT,1,20240101,013500,1,2,0.5,1.5,3,0", "1m")?.symbol).toBe("X7-USDT.CRYPTO");
    expect(parseLine("X7USDT,1,20240101,013500,1,2,0.5,1.5,3,0", "1m")?.ts).toBe(Date.UTC(2024, 0, 1, 1, 35));
    expect(parseLine("<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>", "1d")).toBeNull();
  });

  test("the split falls at the first change of symbol after half the rows, never inside a series", async () => {
    const dir = mkdtempSync(join(tmpdir(), "capacity-split-"));
    try {
      const header = "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>";
      const rows = ["A", "A", "A", "B", "B", "B", "B", "C"].map((s, i) => `${s},D,2012010${i + 1},000000,1,1,1,1,1,0`);
      writeFileSync(join(dir, "all.csv"), [header, ...rows].join("\n") + "\n");
      const r = await splitCsv(join(dir, "all.csv"), join(dir, "a.csv"), join(dir, "b.csv"), rows.length);
      expect(r).toEqual({ rowsA: 7, rowsB: 1 });
      expect(readFileSync(join(dir, "a.csv"), "utf8")).toBe([header, ...rows.slice(0, 7)].join("\n") + "\n");
      expect(readFileSync(join(dir, "b.csv"), "utf8")).toBe([header, rows[7]].join("\n") + "\n");
      writeFileSync(join(dir, "one.csv"), [header, rows[0], rows[1]].join("\n") + "\n");
      await expect(splitCsv(join(dir, "one.csv"), join(dir, "a.csv"), join(dir, "b.csv"), 2)).rejects.toThrow(/two symbols/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
