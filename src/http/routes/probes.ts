// Liveness and readiness probes: /healthz (the process answers) and /readyz (the store does, and
// whatever else server.readiness names: a sink, the disk). Both are open even when reads need a
// token (src/http/security.ts), so /readyz names the dependencies and their state, never the
// reasons (GET /api/health, which follows the read rule, gives those).
import { Hono } from "hono";
import { gates } from "../../monitor/health.ts";
import type { AppDeps } from "../deps.ts";
import { describe, json } from "../openapi.ts";
import { LiveBody, ReadyBody } from "../schemas/ops.ts";
import type { Body } from "../schemas/common.ts";

export function probeRoutes(deps: Pick<AppDeps, "store" | "metrics" | "health">, started: number): Hono {
  const { store, metrics, health } = deps;
  const app = new Hono();
  const live = describe({ summary: "Liveness: the process answers", tags: ["probes"], open: "probe", responses: { 200: json(LiveBody, "alive") } });
  app.get("/healthz", live, (c) => c.json({ status: "ok", uptimeSeconds: Math.round((Date.now() - started) / 1000) } satisfies Body<typeof LiveBody>));
  const ready = describe({
    summary: "Readiness: the store, and whatever else server.readiness names",
    description: "Names the dependencies and their state, never the reasons (GET /api/health gives those).",
    tags: ["probes"],
    open: "probe",
    responses: { 200: json(ReadyBody, "ready"), 503: json(ReadyBody, "Service Unavailable: not ready") },
  });
  app.get("/readyz", ready, async (c) => {
    const r = await store.ready();
    metrics.storeUp.set({ store: store.kind }, r.ok ? 1 : 0);
    const storeState = { kind: store.kind, schemaVersion: r.schemaVersion, expectedVersion: r.expectedVersion, ...(r.error ? { error: r.error } : {}) };
    // The store only (the default): no other probe runs.
    if (!health || health.readiness.every((d) => d === "store")) return c.json({ ready: r.ok, store: storeState } satisfies Body<typeof ReadyBody>, r.ok ? 200 : 503);
    const report = await health.check();
    const gating = report.dependencies.filter((d) => d.name !== "store" && gates(health.readiness, d.name));
    const ready = r.ok && gating.every((d) => d.status !== "down");
    return c.json({ ready, store: storeState, dependencies: gating.map((d) => ({ name: d.name, status: d.status })) } satisfies Body<typeof ReadyBody>, ready ? 200 : 503);
  });
  return app;
}
