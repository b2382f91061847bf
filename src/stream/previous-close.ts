// The previous close of a bar's symbol, for the compatibility protocol's change and
// change_percent: the close of the last bar of an earlier session date — from the symbol's daily
// series when one is stored (providers' own daily closes), else from the bar's own series.
// Found once per symbol and session date (a bounded cache): a batch costs a lookup per new day.
import { dateMs, dateOf, isIntraday, localDate, localMidnight } from "../domain/rollup.ts";
import { previousTradingDay } from "../domain/calendar.ts";
import type { Market } from "../domain/markets/index.ts";
import type { Bar } from "../domain/bar.ts";
import type { Store } from "../stores/types.ts";

const DAY_MS = 86_400_000;
/** Daily bars looked back through for the previous one (long holidays, sparse data). */
const DAILY_LOOKBACK_DAYS = 40;
/** Intraday bars of the previous session read at most (a 24-hour market's 1m bars: 1440). */
const INTRADAY_LIMIT = 5000;
const CACHE_ENTRIES = 50_000;

export class PreviousCloses {
  readonly #cache = new Map<string, number>();
  constructor(private readonly store: Pick<Store, "listSeries" | "queryBars">) {}

  /** The previous session's close, or null when none is stored (not cached: it may arrive later). */
  async before(bar: Bar, market: Market | undefined): Promise<number | null> {
    // Daily and longer bars start at 00:00Z of their session date; intraday ones lie in the market's trade day.
    const date = isIntraday(bar.interval) && market !== undefined ? localDate(market, bar.ts) : dateOf(bar.ts);
    const key = `${bar.symbol}\u0000${bar.source}\u0000${date}`;
    const hit = this.#cache.get(key);
    if (hit !== undefined) return hit;
    const close = await this.#find(bar, market, date);
    if (close === null) return null;
    if (this.#cache.size >= CACHE_ENTRIES) this.#cache.clear();
    this.#cache.set(key, close);
    return close;
  }

  async #find(bar: Bar, market: Market | undefined, date: string): Promise<number | null> {
    const series = await this.store.listSeries({ symbol: bar.symbol });
    const daily = series.find((s) => s.interval === "1d" && s.source === bar.source) ?? series.find((s) => s.interval === "1d");
    if (daily) {
      const end = dateMs(date);
      const bars = await this.store.queryBars({ symbol: bar.symbol, interval: "1d", source: daily.source, from: end - DAILY_LOOKBACK_DAYS * DAY_MS, to: end - 1, limit: DAILY_LOOKBACK_DAYS + 1 });
      return lastBefore(bars, end);
    }
    if (!isIntraday(bar.interval) || market === undefined) return null;
    let from: number;
    try {
      from = localMidnight(market, previousTradingDay(market, date));
    } catch {
      return null; // beyond the calendar
    }
    const end = localMidnight(market, date);
    const bars = await this.store.queryBars({ symbol: bar.symbol, interval: bar.interval, source: bar.source, from, to: end - 1, limit: INTRADAY_LIMIT });
    return lastBefore(bars, end);
  }
}

function lastBefore(bars: Bar[], end: number): number | null {
  for (let i = bars.length - 1; i >= 0; i--) if (bars[i]!.ts < end) return bars[i]!.close;
  return null;
}
