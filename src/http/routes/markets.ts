// GET /api/markets: every market of the registry now, as the dashboard's header shows it: phase,
// local date, next regular open and close, and the holiday it is closed for today
// (src/monitor/markets.ts).
import { Hono } from "hono";
import { marketsStatus } from "../../monitor/markets.ts";

export function marketRoutes(now: () => number = Date.now): Hono {
  const app = new Hono();
  app.get("/", (c) => c.json({ data: marketsStatus(now()) }));
  return app;
}
