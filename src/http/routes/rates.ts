// GET /api/rates: ingest and sync rows per second over a window, from the runs in the store
// (src/monitor/rates.ts).
import { Hono } from "hono";
import * as v from "valibot";
import type { Store } from "../../stores/types.ts";
import { rates } from "../../monitor/rates.ts";
import { badRequest } from "../query.ts";
import { MAX_RATE_BUCKETS } from "../limits.ts";

const Seconds = (max: number, dflt: string) => v.optional(v.pipe(v.string(), v.regex(/^\d+$/, "expected whole seconds"), v.transform(Number), v.minValue(10), v.maxValue(max)), dflt);
const RatesQuery = v.pipe(
  v.strictObject({ window: Seconds(31 * 86_400, "21600"), bucket: Seconds(86_400, "300") }),
  v.check((q) => q.window / q.bucket <= MAX_RATE_BUCKETS, `at most ${MAX_RATE_BUCKETS} buckets per window`),
);

export function rateRoutes(store: Store): Hono {
  const app = new Hono();
  app.get("/", async (c) => {
    const q = v.safeParse(RatesQuery, c.req.query());
    if (!q.success) return badRequest(c, q.issues);
    return c.json(await rates(store, { windowSeconds: q.output.window, bucketSeconds: q.output.bucket }));
  });
  return app;
}
