// GET /api/alerts: every alert rule's state; POST /api/alerts/:name/ack: a person acknowledges a
// firing alert, which silences its reminders until it clears (src/monitor/alerts.ts).
import { Hono } from "hono";
import { redactValue } from "../../lib/redact.ts";
import { apiActor } from "../actor.ts";
import type { AppDeps } from "../deps.ts";

export function alertRoutes(deps: Pick<AppDeps, "alerts">): Hono {
  const app = new Hono();
  app.get("/", async (c) => c.json({ data: redactValue(deps.alerts?.list() ?? []) }));
  app.post("/:name/ack", async (c) => {
    if (!deps.alerts) return c.json({ error: "no alerts are configured" }, 404);
    const body = (await c.req.json().catch(() => ({}))) as { by?: unknown };
    const actor = apiActor(c);
    const by = typeof body.by === "string" && body.by.trim() ? body.by.trim().slice(0, 100) : actor.by === "api" && actor.tokenId ? `token ${actor.tokenId}` : "api";
    const s = await deps.alerts.ack(c.req.param("name"), by);
    if (!s) return c.json({ error: "unknown alert", alert: c.req.param("name") }, 404);
    return c.json({ data: s });
  });
  return app;
}
