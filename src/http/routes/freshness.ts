// GET /api/freshness: the dashboard's heat map, each series' days over the last `days` against
// its market's calendar (src/monitor/freshness.ts).
import { Hono } from "hono";
import * as v from "valibot";
import type { Store } from "../../stores/types.ts";
import { freshness } from "../../monitor/freshness.ts";
import { describe, json, query } from "../openapi.ts";
import { FreshnessBody } from "../schemas/data.ts";
import type { Body } from "../schemas/common.ts";
import { MAX_FRESHNESS_DAYS } from "../limits.ts";
import { MarketSchema } from "../../domain/markets/index.ts";
import type { Interval } from "../../domain/bar.ts";
import { INTRADAY } from "../../domain/rollup.ts";

/** The heat map counts sessions: intraday and daily series have them, weeks and months do not. */
const HEAT_MAP_INTERVALS = [...INTRADAY, "1d"] as Interval[];

const FreshnessQuery = v.strictObject({
  days: v.optional(v.pipe(v.string(), v.regex(/^\d+$/, "expected a whole number"), v.transform(Number), v.minValue(1), v.maxValue(MAX_FRESHNESS_DAYS, `days must be at most ${MAX_FRESHNESS_DAYS}`)), "40"),
  interval: v.optional(v.picklist(HEAT_MAP_INTERVALS, `expected one of ${HEAT_MAP_INTERVALS.join(", ")}`), "1d"),
  market: v.optional(MarketSchema),
  to: v.optional(v.pipe(v.string(), v.isoDate("expected the last day as YYYY-MM-DD"), v.description("the last day (default: today, UTC)"))),
});

export function freshnessRoutes(store: Store): Hono {
  const app = new Hono();
  const doc = describe({ summary: "Each series' days against its market's calendar (the dashboard's heat map)", tags: ["data"], responses: { 200: json(FreshnessBody, "the heat map") } });
  app.get("/", doc, query(FreshnessQuery), async (c) => {
    const q = { output: c.req.valid("query") };
    return c.json((await freshness(store, { days: q.output.days, interval: q.output.interval, market: q.output.market, to: q.output.to })) satisfies Body<typeof FreshnessBody>);
  });
  return app;
}
