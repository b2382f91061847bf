// GET /api/health: every dependency's state in one answer (src/monitor/health.ts): 200 while the
// dependencies that gate readiness are up (status healthy or degraded), 503 when one is down
// (unhealthy). Probe results are shared for server.healthCacheSeconds.
import { Hono } from "hono";
import type { HealthReport } from "../../monitor/health.ts";
import type { AppDeps } from "../deps.ts";
import { describe, json } from "../openapi.ts";
import { HealthBody } from "../schemas/ops.ts";
import type { Body } from "../schemas/common.ts";

/** The report as the API shows it: times as ISO strings, and a name → status map for quick checks. */
export function healthBody(r: HealthReport): Body<typeof HealthBody> {
  return {
    status: r.status,
    ready: r.ready,
    checkedAt: new Date(r.checkedAt).toISOString(),
    readiness: r.readiness,
    checks: Object.fromEntries(r.dependencies.map((d) => [d.name, d.status])),
    dependencies: r.dependencies,
  };
}

export function healthRoutes(deps: Required<Pick<AppDeps, "health">>): Hono {
  const app = new Hono();
  const doc = describe({
    summary: "Every dependency's state",
    tags: ["operations"],
    responses: { 200: json(HealthBody, "the dependencies that gate readiness are up (healthy or degraded)"), 503: json(HealthBody, "Service Unavailable: a dependency that gates readiness is down") },
  });
  app.get("/", doc, async (c) => {
    const r = await deps.health.check();
    return c.json(healthBody(r), r.ready ? 200 : 503);
  });
  return app;
}
