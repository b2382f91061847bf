// The `sessions` option of intraday provider sources: the regular session only (the market's
// `open` phase, as its calendar gives it) or the extended day as the provider sends it
// (pre-market and after-hours bars included). One name and one meaning for every provider that
// offers both (Yahoo asks for one or the other; Polygon always sends both, so its regular bars
// are picked out here).
import * as v from "valibot";
import { sessionFor, type Market } from "../domain/calendar.ts";
import { addDays, localDate } from "../domain/rollup.ts";

export type Sessions = "regular" | "extended";

/** The config entry, for the providers that load intraday bars. */
export const sessionsEntry = {
  sessions: v.optional(
    v.pipe(
      v.picklist(["regular", "extended"], "expected regular or extended"),
      v.description(
        "Intraday bars of the regular session only (regular: bars that lie at least in part in the market's open phase per its calendar) or also pre-market and after-hours bars (extended). Daily and longer bars are the provider's own either way.",
      ),
    ),
    "regular" as Sessions,
  ),
};

/** Days searched for the next session (the longest closure of any market here is far shorter). */
const SEARCH_DAYS = 14;

/**
 * The regular session in hand while a time-ordered run of bars is filtered: a bar starting at
 * `t` is kept when `t + barMs > open && t < close`. The loop calls `moveTo(t)` only when `t` is
 * outside [from, close), so a page costs two comparisons per bar and one calendar look-up per
 * session (a method call per session, not a closure per row).
 */
export class RegularSession {
  /** The span of bar starts this session answers for: from the previous session's close (or the first bar asked) to its own close. */
  from = Infinity;
  open = 0;
  close = -Infinity;

  constructor(readonly market: Market) {}

  /** The first session whose close lies after `t` (the one `t` is in, or the next one). */
  moveTo(t: number): void {
    const today = localDate(this.market, t);
    // The day before first: a session that ran past local midnight would own `t`.
    for (let i = -1; i <= SEARCH_DAYS; i++) {
      const s = sessionFor(this.market, addDays(today, i));
      if (s && t < s.close) {
        this.from = t;
        this.open = s.open;
        this.close = s.close;
        return;
      }
    }
    // No session in reach: nothing until then is kept.
    this.from = t;
    this.open = this.close = t + SEARCH_DAYS * 86_400_000;
  }
}
