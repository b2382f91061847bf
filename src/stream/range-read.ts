// Replay's reading half, shared by GET /api/replay and the WebSocket's `replay`: the limits
// (`[replay]` in the config), a range of several symbols' stored bars in (ts, symbol, source)
// order a page at a time (the store's readRange; a k-way merge of per-symbol queryBars pages
// where a store has none: QuestDB), and bars written as NDJSON lines straight from the rows
// (a ts's ISO text made once for all its bars).
// The format and the tie order are documented in docs/stream.md ("Replay").
import * as v from "valibot";
import type { Interval } from "../domain/bar.ts";
import type { RangePage, RangeQuery, RangeReader, RangeRow, Store } from "../stores/types.ts";

const whole = (what: string, min: number, max: number, doc: string) =>
  v.pipe(v.number(`expected ${what}`), v.integer(`expected a whole number of ${what}`), v.minValue(min, `must be at least ${min}`), v.maxValue(max, `must be at most ${max}`), v.description(doc));

export const replayConfigSchema = v.strictObject({
  maxSymbols: v.optional(
    whole("symbols", 1, 500, "Symbols one replay (GET /api/replay, the WebSocket's replay) may name; more is refused (400 / an error reply). At most 500: a page reads each symbol at least once."),
    100,
  ),
  maxRows: v.optional(
    whole("rows", 1, 1e12, "Bars one replay sends at most; a range with more ends with a `truncated` line (GET /api/replay) or status carrying the cursor to continue from."),
    10_000_000,
  ),
  pageRows: v.optional(whole("rows", 100, 100_000, "Bars read from the store per read transaction (a page) while replaying. A replay holds at most about five pages in memory: the page and, on SQLite, each symbol's rows read ahead (up to four pages' worth in all)."), 10_000),
});
export type ReplayConfig = v.InferOutput<typeof replayConfigSchema>;
export const defaultReplayConfig = (): ReplayConfig => v.parse(replayConfigSchema, {});

/** The store's range reader, or a k-way merge of per-symbol queryBars pages where it has none. */
export function openRange(store: Store, q: RangeQuery): RangeReader {
  return store.readRange ? store.readRange(q) : mergedRange(store, q);
}

const cmp = (a: RangeRow, b: RangeRow) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0);

/**
 * The fallback: each symbol's bars come from queryBars in (ts, source) pages, and the heads are
 * merged by a linear scan over the symbols (at most `replay.maxSymbols`, so no heap is needed).
 * No journal position: a store without range reads keeps no journal either (journalAt 0).
 */
function mergedRange(store: Store, q: RangeQuery): RangeReader {
  const symbols = [...new Set(q.symbols)].sort();
  type Head = { symbol: string; rows: RangeRow[]; at: number; done: boolean; after?: { ts: number; source: string } };
  const heads: Head[] = symbols.map((symbol) => {
    const a = q.after;
    // Each symbol's side of the (ts, symbol, source) cursor, as a (ts, source) cursor of its own.
    const after = !a ? undefined : symbol < a.symbol ? { ts: a.ts, source: "\u{10FFFF}" } : symbol > a.symbol ? { ts: a.ts - 1, source: "\u{10FFFF}" } : { ts: a.ts, source: a.source };
    return { symbol, rows: [], at: 0, done: false, after };
  });
  async function fill(h: Head, limit: number) {
    const bars = await store.queryBars({ symbol: h.symbol, interval: q.interval, source: q.source, from: q.from, to: q.to, limit, after: h.after });
    h.rows = bars.map((b) => [b.ts, b.symbol, b.source, b.open, b.high, b.low, b.close, b.volume, b.adjClose ?? null, b.turnover ?? null, b.trades ?? null]);
    h.at = 0;
    h.done = bars.length < limit;
    const last = bars[bars.length - 1];
    if (last) h.after = { ts: last.ts, source: last.source };
  }
  return {
    async next(limit): Promise<RangePage> {
      const per = Math.max(100, Math.ceil(limit / Math.max(1, heads.length)));
      const out: RangeRow[] = [];
      while (out.length < limit) {
        let best: Head | null = null;
        for (const h of heads) {
          if (h.at >= h.rows.length && !h.done) await fill(h, per);
          if (h.at < h.rows.length && (!best || cmp(h.rows[h.at]!, best.rows[best.at]!) < 0)) best = h;
        }
        if (!best) break;
        out.push(best.rows[best.at++]!);
      }
      return { rows: out, journalAt: 0 };
    },
  };
}

/**
 * Rows as NDJSON lines (`{"type":"bar","symbol":…,"source":…,"interval":…,"ts":"<ISO>","open":…}`),
 * written from the row values: one string per page, no object per bar. Rows of one ts (a tie
 * across symbols) reuse its ISO text; symbols and sources are quoted once per page.
 */
export function ndjsonLines(rows: readonly RangeRow[], interval: Interval, start = 0, end = rows.length): string {
  let out = "";
  let lastTs = NaN;
  let iso = "";
  const quoted = new Map<string, string>();
  const q = (s: string) => {
    let x = quoted.get(s);
    if (x === undefined) quoted.set(s, (x = JSON.stringify(s)));
    return x;
  };
  for (let i = start; i < end; i++) {
    const r = rows[i]!;
    if (r[0] !== lastTs) iso = new Date((lastTs = r[0])).toISOString();
    out += `{"type":"bar","symbol":${q(r[1])},"source":${q(r[2])},"interval":"${interval}","ts":"${iso}","open":${r[3]},"high":${r[4]},"low":${r[5]},"close":${r[6]},"volume":${r[7]}`;
    if (r[8] != null) out += `,"adjClose":${r[8]}`;
    if (r[9] != null) out += `,"turnover":${r[9]}`;
    if (r[10] != null) out += `,"trades":${r[10]}`;
    out += "}\n";
  }
  return out;
}

/** A position in a replay as an opaque cursor (the `truncated` line's `next`), and back. */
export const encodeRangeCursor = (p: { ts: number; symbol: string; source: string }) => Buffer.from(JSON.stringify([p.ts, p.symbol, p.source])).toString("base64url");
export function decodeRangeCursor(s: string): { ts: number; symbol: string; source: string } | null {
  try {
    const a = JSON.parse(Buffer.from(s, "base64url").toString("utf8"));
    if (Array.isArray(a) && a.length === 3 && Number.isSafeInteger(a[0]) && typeof a[1] === "string" && typeof a[2] === "string") return { ts: a[0], symbol: a[1], source: a[2] };
  } catch {}
  return null;
}
