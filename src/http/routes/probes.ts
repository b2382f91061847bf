// Liveness and readiness probes: /healthz (the process answers) and /readyz (the store does).
// Both are open even when reads need a token (src/http/security.ts).
import { Hono } from "hono";
import type { Store } from "../../stores/types.ts";
import type { TicksyncMetrics } from "../../lib/metrics.ts";

export function probeRoutes(store: Store, metrics: TicksyncMetrics, started: number): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok", uptimeSeconds: Math.round((Date.now() - started) / 1000) }));
  app.get("/readyz", async (c) => {
    const r = await store.ready();
    metrics.storeUp.set({ store: store.kind }, r.ok ? 1 : 0);
    return c.json({ ready: r.ok, store: { kind: store.kind, schemaVersion: r.schemaVersion, expectedVersion: r.expectedVersion, ...(r.error ? { error: r.error } : {}) } }, r.ok ? 200 : 503);
  });
  return app;
}
