// GET /api/health: every dependency's state in one answer (src/monitor/health.ts): 200 while the
// dependencies that gate readiness are up (status healthy or degraded), 503 when one is down
// (unhealthy). Probe results are shared for server.healthCacheSeconds.
import { Hono } from "hono";
import type { HealthReport } from "../../monitor/health.ts";
import type { AppDeps } from "../deps.ts";

/** The report as the API shows it: times as ISO strings, and a name → status map for quick checks. */
export function healthBody(r: HealthReport) {
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
  app.get("/", async (c) => {
    const r = await deps.health.check();
    return c.json(healthBody(r), r.ready ? 200 : 503);
  });
  return app;
}
