// GET /api/gaps: the sessions a series misses against its market's calendar, per series and as
// runs of missing bars (src/pipeline/gaps.ts).
import { Hono } from "hono";
import * as v from "valibot";
import { IntervalSchema } from "../../domain/bar.ts";
import type { GapScanner } from "../../pipeline/gaps.ts";
import type { Store } from "../../stores/types.ts";
import { invalid, Limit } from "../query.ts";
import { describe, json, query } from "../openapi.ts";
import { GapsBody } from "../schemas/data.ts";
import type { Body } from "../schemas/common.ts";
import { MAX_GAPS_PAGE } from "../limits.ts";
import { resolveSymbol } from "../resolve-symbol.ts";
import { MarketSchema } from "../../domain/markets/index.ts";

const GapsQuery = v.strictObject({
  symbol: v.optional(v.pipe(v.string(), v.nonEmpty())),
  market: v.optional(MarketSchema),
  interval: v.optional(IntervalSchema, "1d"),
  source: v.optional(v.pipe(v.string(), v.nonEmpty())),
  limit: Limit(MAX_GAPS_PAGE),
});

const iso = (t: number) => new Date(t).toISOString();

export function gapRoutes(store: Store, gaps: GapScanner): Hono {
  const app = new Hono();
  const doc = describe({ summary: "The sessions each series misses against its market's calendar", tags: ["data"], responses: { 200: json(GapsBody, "per series, and the runs of missing bars") } });
  app.get("/", doc, query(GapsQuery), async (c) => {
    const q = { output: c.req.valid("query") };
    let symbol: string | undefined;
    if (q.output.symbol !== undefined) {
      const r = await resolveSymbol(store, q.output.symbol);
      if ("error" in r) return invalid(c, [{ field: "symbol", message: r.error }]);
      symbol = r.symbol;
    }
    const limit = q.output.limit ?? 1000;
    const found = await gaps.scan({ symbol, market: q.output.market, interval: q.output.interval, source: q.output.source });
    const runs = found.flatMap((g) => g.runs.map((r) => ({ source: g.source, symbol: g.symbol, market: g.market, interval: g.interval, ...r })));
    return c.json({
      interval: q.output.interval,
      series: found.map((g) => ({
        source: g.source,
        symbol: g.symbol,
        market: g.market,
        interval: g.interval,
        first: iso(g.firstTs),
        last: iso(g.lastTs),
        bars: g.bars,
        expected: g.expected,
        missingSessions: g.missingSessions,
        missingBars: g.missingBars,
      })),
      data: runs.slice(0, limit),
      count: runs.length,
      truncated: runs.length > limit,
    } satisfies Body<typeof GapsBody>);
  });
  return app;
}
