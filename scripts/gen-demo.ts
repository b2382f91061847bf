// Generates the bundled demo data set: SYNTHETIC daily bars (a seeded random walk), not market
// data. 88 WSE-style tickers × the WSE sessions of one year, in Stooq's daily CSV layout, plus a
// handful of deliberately broken rows and one missing session so the quarantine and the gap
// warning have something to show. Deterministic: the same seed writes the same files.
//   bun scripts/gen-demo.ts [outDir]
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isTradingDay } from "../src/domain/calendar.ts";

export const DEMO_TICKERS = [
  "11B", "ABE", "ACP", "ALR", "AMC", "APR", "ASB", "ATC", "ATT", "BDX", "BFT", "BHW", "BIO", "BMC", "BNP", "BOS",
  "BRS", "CAR", "CBF", "CCC", "CIG", "CLN", "CMR", "CPS", "CRI", "DAT", "DCR", "DOM", "DVL", "ECH", "ELT", "ENA",
  "ENT", "ERB", "EUR", "FMF", "FTE", "GEA", "GPP", "GRN", "GTC", "HUG", "ING", "KGN", "KTY", "LBW", "LWB", "MAB",
  "MBR", "MCI", "MDG", "MIL", "MLG", "MLS", "MRB", "MRC", "NEU", "NWG", "OPL", "PCR", "PEN", "PEP", "PHN", "PLW",
  "PXM", "RBW", "RVU", "SCP", "SEL", "SGN", "SHO", "SKA", "SLV", "SNK", "SNT", "STP", "STX", "TEN", "TOA", "TOR",
  "TXT", "UNI", "VGO", "VOT", "VRG", "WLT", "WPL", "XTB",
];

/** mulberry32: small, fast, good enough for synthetic prices, and the same everywhere. */
export function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The WSE sessions from `from` (inclusive) until `count` sessions are collected. */
export function wseSessions(from: string, count: number): string[] {
  const days: string[] = [];
  const d = new Date(`${from}T00:00:00Z`);
  while (days.length < count) {
    const s = d.toISOString().slice(0, 10);
    if (isTradingDay("WSE", s)) days.push(s);
    d.setUTCDate(d.getUTCDate() + 1);
  }
  return days;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** Lines of one symbol's random walk (without header). */
export function randomWalk(days: string[], seed: number): string[] {
  const r = rng(seed);
  let price = 5 + r() * 295;
  const lines: string[] = [];
  for (const day of days) {
    const open = price * (1 + (r() - 0.5) * 0.01);
    const close = open * (1 + (r() - 0.5) * 0.04);
    const high = Math.max(open, close) * (1 + r() * 0.015);
    const low = Math.min(open, close) * (1 - r() * 0.015);
    const volume = Math.round(1_000 + r() * 500_000);
    lines.push(`${day},${round2(open)},${round2(high)},${round2(low)},${round2(close)},${volume}`);
    price = close;
  }
  return lines;
}

if (import.meta.main) {
  const outDir = process.argv[2] ?? join(import.meta.dir, "..", "demo", "data");
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const days = wseSessions("2024-07-01", 365);
  DEMO_TICKERS.forEach((ticker, i) => {
    const lines = randomWalk(days, 20240701 + i);
    if (i === 3) lines.splice(100, 1); // one missing session: a gap warning
    if (i === 5) lines[200] = lines[200]!.replace(/^([^,]+),([^,]+),([^,]+),([^,]+)/, "$1,$2,$4,$3"); // high and low swapped
    if (i === 7) lines[50] = lines[50]!.replace(/,\d+$/, ",-500"); // negative volume
    if (i === 11) lines[10] = lines[10]!.replace(/^([^,]+),([^,]+)/, "$1,n/a"); // open not a number
    writeFileSync(join(outDir, `${ticker.toLowerCase()}_d.csv`), ["Date,Open,High,Low,Close,Volume", ...lines].join("\n") + "\n");
  });
  console.log(`wrote ${DEMO_TICKERS.length} synthetic files × ${days.length} sessions (${days[0]} … ${days[days.length - 1]}) to ${outDir}`);
}
