// Liveness and readiness probes: /healthz (the process answers) and /readyz (the store does, and
// whatever else server.readiness names: a sink, the disk). Both are open even when reads need a
// token (src/http/security.ts), so /readyz names the dependencies and their state, never the
// reasons (GET /api/health, which follows the read rule, gives those).
import { Hono } from "hono";
import { gates } from "../../monitor/health.ts";
import type { AppDeps } from "../deps.ts";

export function probeRoutes(deps: Pick<AppDeps, "store" | "metrics" | "health">, started: number): Hono {
  const { store, metrics, health } = deps;
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok", uptimeSeconds: Math.round((Date.now() - started) / 1000) }));
  app.get("/readyz", async (c) => {
    const r = await store.ready();
    metrics.storeUp.set({ store: store.kind }, r.ok ? 1 : 0);
    const storeState = { kind: store.kind, schemaVersion: r.schemaVersion, expectedVersion: r.expectedVersion, ...(r.error ? { error: r.error } : {}) };
    // The store only (the default): no other probe runs.
    if (!health || health.readiness.every((d) => d === "store")) return c.json({ ready: r.ok, store: storeState }, r.ok ? 200 : 503);
    const report = await health.check();
    const gating = report.dependencies.filter((d) => d.name !== "store" && gates(health.readiness, d.name));
    const ready = r.ok && gating.every((d) => d.status !== "down");
    return c.json({ ready, store: storeState, dependencies: gating.map((d) => ({ name: d.name, status: d.status })) }, ready ? 200 : 503);
  });
  return app;
}
