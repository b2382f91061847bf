// GET /api/alerts: every alert rule's state; POST /api/alerts/:name/ack: a person acknowledges a
// firing alert, which silences its reminders until it clears (src/monitor/alerts.ts).
import { Hono, type Context } from "hono";
import { redactValue } from "../../lib/redact.ts";
import { apiActor } from "../actor.ts";
import type { AppDeps } from "../deps.ts";
import { requireScope } from "../security.ts";
import { body, describe, error, json } from "../openapi.ts";
import { optionalJsonBody } from "../query.ts";
import { AckBody, AlertBody, AlertsBody } from "../schemas/ops.ts";
import type { Body } from "../schemas/common.ts";

/** Acknowledge alert `name` by `by` (else the caller's token fingerprint); also POST /api/acknowledge_alert. */
export async function acknowledge(c: Context, deps: Pick<AppDeps, "alerts">, name: string, by: unknown) {
  if (!deps.alerts) return c.json({ error: "no alerts are configured" }, 404);
  const actor = apiActor(c);
  const who = typeof by === "string" && by.trim() ? by.trim().slice(0, 100) : actor.by === "api" && actor.tokenId ? `token ${actor.tokenId}` : "api";
  const s = await deps.alerts.ack(name, who);
  if (!s) return c.json({ error: "unknown alert", alert: name.slice(0, 100) }, 404);
  return c.json({ data: s } satisfies Body<typeof AlertBody>);
}

export function alertRoutes(deps: Pick<AppDeps, "alerts">): Hono {
  const app = new Hono();
  const list = describe({ summary: "Every alert rule's state", tags: ["operations"], responses: { 200: json(AlertsBody, "every alert") } });
  app.get("/", list, async (c) => c.json({ data: redactValue(deps.alerts?.list() ?? []) } satisfies Body<typeof AlertsBody>));
  const ack = describe({
    summary: "Acknowledge a firing alert",
    description: "Silences its reminders until it clears.",
    tags: ["operations"],
    requestBody: body(AckBody, "who acknowledges (default: the token's fingerprint)"),
    responses: { 200: json(AlertBody, "the alert's state"), 404: error("Not Found: no alerts are configured, or no such alert") },
  });
  app.post("/:name/ack", ack, requireScope("operate"), async (c) => {
    const body = await optionalJsonBody(c, AckBody);
    if ("response" in body) return body.response;
    return acknowledge(c, deps, c.req.param("name"), body.output.by);
  });
  return app;
}
