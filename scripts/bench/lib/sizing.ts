// Sizing arithmetic of the capacity bench (scripts/bench/capacity.ts): what a number of symbols,
// an interval and a number of years come to on disk and in load time, from a store's measured
// bytes per bar and rows per CPU-second, and how many machines of a given size that needs.

export type Scenario = {
  symbols: number;
  /** Label of the series: `1d`, `1m US` … */
  label: string;
  /** Bars per trading day: 1 for 1d, 390 for a US regular session of 1m bars, 1,440 for 1m crypto. */
  barsPerDay: number;
  /** Trading days a year: 252 (US exchanges), 365 (crypto). */
  daysPerYear: number;
  years: number;
};

/** One store's measurements. */
export type StoreFigures = { bytesPerBar: number; rowsPerCpuSecond: number };

/** The machine a row is sized against. */
export type Machine = { cores: number; diskBytes: number };

export type Sizing = {
  bars: number;
  diskBytes: number;
  /** CPU-hours of ticksync and the store server to load every bar once. */
  loadCpuHours: number;
  /** Wall hours of that load on one machine when it keeps every core busy. */
  loadHoursAllCores: number;
  /** Bars a day brings once loaded. */
  dailyBars: number;
  /** CPU-seconds a day of those. */
  dailyCpuSeconds: number;
  /** Machines by disk: the store's bytes ÷ one machine's disk, rounded up. */
  machines: number;
};

export const scenarioBars = (s: Scenario) => s.symbols * s.barsPerDay * s.daysPerYear * s.years;

export function sizing(s: Scenario, f: StoreFigures, m: Machine): Sizing {
  if (!(f.bytesPerBar > 0) || !(f.rowsPerCpuSecond > 0)) throw new Error(`store figures must be > 0: ${JSON.stringify(f)}`);
  const bars = scenarioBars(s);
  const diskBytes = bars * f.bytesPerBar;
  const loadCpuHours = bars / f.rowsPerCpuSecond / 3600;
  const dailyBars = s.symbols * s.barsPerDay;
  return {
    bars,
    diskBytes,
    loadCpuHours,
    loadHoursAllCores: loadCpuHours / m.cores,
    dailyBars,
    dailyCpuSeconds: dailyBars / f.rowsPerCpuSecond,
    machines: Math.max(1, Math.ceil(diskBytes / m.diskBytes)),
  };
}

/** Bytes as the sizing table prints them: MB, GB or TB (powers of 1000, as disks are sold). */
export function bytesText(b: number): string {
  if (b >= 1e12) return `${(b / 1e12).toFixed(b >= 1e13 ? 0 : 1)} TB`;
  if (b >= 1e9) return `${(b / 1e9).toFixed(b >= 1e10 ? 0 : 1)} GB`;
  return `${(b / 1e6).toFixed(b >= 1e7 ? 0 : 1)} MB`;
}

/** Hours as the sizing table prints them: minutes under one, days over 48. */
export function hoursText(h: number): string {
  if (h < 1) return `${Math.max(1, Math.round(h * 60))} min`;
  if (h > 48) return `${(h / 24).toFixed(h > 240 ? 0 : 1)} d`;
  return `${h.toFixed(h >= 10 ? 0 : 1)} h`;
}
