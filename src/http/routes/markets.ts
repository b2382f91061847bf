// GET /api/markets: every market of the registry now, as the dashboard's header shows it: phase,
// local date, next regular open and close, and the holiday it is closed for today
// (src/monitor/markets.ts).
import { Hono } from "hono";
import { marketsStatus } from "../../monitor/markets.ts";
import { describe, json } from "../openapi.ts";
import { MarketsBody } from "../schemas/data.ts";
import type { Body } from "../schemas/common.ts";

export function marketRoutes(now: () => number = Date.now): Hono {
  const app = new Hono();
  const doc = describe({ summary: "Every market now: phase, local date, next open and close, today's holiday", tags: ["data"], responses: { 200: json(MarketsBody, "every market") } });
  app.get("/", doc, (c) => c.json({ data: marketsStatus(now()) } satisfies Body<typeof MarketsBody>));
  return app;
}
