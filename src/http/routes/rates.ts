// GET /api/rates: ingest and sync rows per second over a window, from the runs in the store
// (src/monitor/rates.ts).
import { Hono } from "hono";
import * as v from "valibot";
import type { Store } from "../../stores/types.ts";
import { rates } from "../../monitor/rates.ts";
import { describe, json, query } from "../openapi.ts";
import { RatesBody } from "../schemas/data.ts";
import type { Body } from "../schemas/common.ts";
import { MAX_RATE_BUCKETS } from "../limits.ts";

const Seconds = (max: number, dflt: string) => v.optional(v.pipe(v.string(), v.regex(/^\d+$/, "expected whole seconds"), v.transform(Number), v.minValue(10), v.maxValue(max)), dflt);
const RatesQuery = v.pipe(
  v.strictObject({ window: v.pipe(Seconds(31 * 86_400, "21600"), v.description("seconds back from now")), bucket: v.pipe(Seconds(86_400, "300"), v.description("seconds per point")) }),
  v.check((q) => q.window / q.bucket <= MAX_RATE_BUCKETS, `at most ${MAX_RATE_BUCKETS} buckets per window`),
);

export function rateRoutes(store: Store): Hono {
  const app = new Hono();
  const doc = describe({ summary: "Ingest and sync rows per second over a window, from the runs", tags: ["operations"], responses: { 200: json(RatesBody, "a point per bucket") } });
  app.get("/", doc, query(RatesQuery), async (c) => {
    const q = { output: c.req.valid("query") };
    return c.json((await rates(store, { windowSeconds: q.output.window, bucketSeconds: q.output.bucket })) satisfies Body<typeof RatesBody>);
  });
  return app;
}
