// Instruments (what a symbol is) and corporate actions (splits, dividends), kept beside the raw
// bars as their own records. Adjusted prices are never stored: they are the raw bars times the
// factors of the actions after them, computed on read, so a split announced tomorrow re-adjusts
// all of history without downloading a single bar again.
import type { Bar } from "./bar.ts";

/** Symbol metadata as one provider gives it; null where it does not say. Key: (source, symbol). */
export type Instrument = {
  source: string;
  symbol: string;
  name: string | null;
  exchange: string | null;
  currency: string | null;
  /** e.g. EQUITY, ETF (Yahoo's instrumentType, Polygon's type). */
  type: string | null;
  sector: string | null;
  industry: string | null;
  isin: string | null;
  updatedAt?: number;
};

export type ActionType = "split" | "dividend";

/**
 * A split or a cash dividend. Key: (source, symbol, type, exDate). Amounts are per share as the
 * share was on its ex-date (not adjusted by later splits); a split of `numerator` new shares for
 * `denominator` old ones (4-for-1: 4/1).
 */
export type CorporateAction = {
  source: string;
  symbol: string;
  type: ActionType;
  /** Ex-date: 00:00Z of the first session that trades without it (as daily bars' ts). */
  exDate: number;
  numerator: number | null;
  denominator: number | null;
  amount: number | null;
  currency: string | null;
  payDate: number | null;
  updatedAt?: number;
};

/** One action as applied to a series: its factor, or why it could not be applied. */
export type AppliedAction = {
  type: ActionType;
  exDate: number;
  source: string;
  factor: number | null;
  /** Dividends: the raw close of the session before the ex-date the factor is taken from. */
  prevClose?: number;
  skipped?: string;
};

/**
 * Price factor of an action, by the method Yahoo documents for its adjusted close (the CRSP
 * method): a split multiplies earlier prices by denominator/numerator; a dividend by
 * 1 − dividend / close of the session before the ex-date.
 */
export function actionFactor(a: CorporateAction, prevClose: number | null): { factor: number } | { skipped: string } {
  if (a.type === "split") {
    if (!(a.numerator! > 0) || !(a.denominator! > 0)) return { skipped: "split without a positive ratio" };
    return { factor: a.denominator! / a.numerator! };
  }
  if (!(a.amount! > 0)) return { skipped: "dividend without a positive amount" };
  if (prevClose === null) return { skipped: "no stored bar before the ex-date to take the close from" };
  if (a.amount! >= prevClose) return { skipped: `dividend ${a.amount} is not below the previous close ${prevClose}` };
  return { factor: 1 - a.amount! / prevClose };
}

/**
 * One action per (type, ex-date): several providers publish the same split, and applying it
 * twice would halve prices once too often. The series' own source wins, then the newest record.
 */
export function dedupeActions(actions: CorporateAction[], preferSource?: string): CorporateAction[] {
  const best = new Map<string, CorporateAction>();
  for (const a of actions) {
    const k = `${a.type}|${a.exDate}`;
    const cur = best.get(k);
    const rank = (x: CorporateAction) => [x.source === preferSource ? 1 : 0, x.updatedAt ?? 0] as const;
    if (!cur) best.set(k, a);
    else {
      const [ra, rc] = [rank(a), rank(cur)];
      if (ra[0] > rc[0] || (ra[0] === rc[0] && (ra[1] > rc[1] || (ra[1] === rc[1] && a.source < cur.source)))) best.set(k, a);
    }
  }
  return [...best.values()].sort((x, y) => x.exDate - y.exDate || x.type.localeCompare(y.type));
}

/**
 * Adjusted copies of `bars` (one series): each bar's prices times the product of the factors of
 * the actions with an ex-date after it, volume divided by the split factors. `prevClose(exDate)`
 * gives the raw close of the last bar before an ex-date (it may lie before the bars asked for).
 * `adjClose` is set to the adjusted close.
 */
export async function adjustBars(
  bars: Bar[],
  actions: CorporateAction[],
  prevClose: (exDate: number) => Promise<number | null>,
): Promise<{ bars: Bar[]; applied: AppliedAction[] }> {
  const applied: AppliedAction[] = [];
  const factors: { exDate: number; price: number; split: number }[] = [];
  for (const a of actions) {
    const pc = a.type === "dividend" ? await prevClose(a.exDate) : null;
    const f = actionFactor(a, pc);
    const base: AppliedAction = { type: a.type, exDate: a.exDate, source: a.source, factor: null, ...(pc !== null ? { prevClose: pc } : {}) };
    if ("skipped" in f) applied.push({ ...base, skipped: f.skipped });
    else {
      applied.push({ ...base, factor: f.factor });
      factors.push({ exDate: a.exDate, price: f.factor, split: a.type === "split" ? f.factor : 1 });
    }
  }
  const out = bars.map((b) => {
    let price = 1;
    let split = 1;
    for (const f of factors)
      if (b.ts < f.exDate) {
        price *= f.price;
        split *= f.split;
      }
    if (price === 1 && split === 1) return { ...b, adjClose: b.close };
    const p = (x: number) => x * price;
    return { ...b, open: p(b.open), high: p(b.high), low: p(b.low), close: p(b.close), adjClose: p(b.close), volume: b.volume / split };
  });
  return { bars: out, applied };
}
