// The HTTP surface: probes, Prometheus metrics, the read API and the dashboard, as one Hono app
// composed with app.route() from one module per resource (src/http/routes/). It depends on the
// store contract and the scheduler, never on a particular store. Order matters: the query-string
// bound and the security middleware come before every route.
import { Hono, type Context } from "hono";
import { matchedRoutes } from "hono/route";
import { log } from "../lib/log.ts";
import { redact } from "../lib/redact.ts";
import { createGapScanner } from "../pipeline/gaps.ts";
import { dashboardRoutes } from "./dashboard/routes.ts";
import { apiDocsPath, apiDocsRoutes } from "./api-docs.ts";
import { queryGuard } from "./query.ts";
import { securityMiddleware } from "./security.ts";
import type { AppDeps } from "./deps.ts";
import { probeRoutes } from "./routes/probes.ts";
import { gapGauge, metricsRoutes, resourceRoutes } from "./routes/metrics.ts";
import { sinkRoutes } from "./routes/sinks.ts";
import { symbolRoutes } from "./routes/symbols.ts";
import { barRoutes } from "./routes/bars.ts";
import { replayRoutes } from "./routes/replay.ts";
import { defaultReplayConfig } from "../stream/range-read.ts";
import { indicatorRoutes } from "./routes/indicators.ts";
import { gapRoutes } from "./routes/gaps.ts";
import { runRoutes } from "./routes/runs.ts";
import { quarantineRoutes } from "./routes/quarantine.ts";
import { freshnessRoutes } from "./routes/freshness.ts";
import { marketRoutes } from "./routes/markets.ts";
import { rateRoutes } from "./routes/rates.ts";
import { streamRoutes } from "./routes/stream.ts";
import { jobRoutes } from "./routes/jobs.ts";
import { auditRoutes } from "./routes/audit.ts";
import { alertRoutes } from "./routes/alerts.ts";
import { healthRoutes } from "./routes/health.ts";
import { monitoringRoutes } from "./routes/monitoring.ts";
import { createHealth } from "../monitor/health.ts";
import { createRequestStats } from "../monitor/performance.ts";
import { describe, json, openApiRoute, ref, textBody } from "./openapi.ts";
import * as v from "valibot";

export type { AppDeps, SinkInfo } from "./deps.ts";

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
/** The metric labels of a request: the endpoint's route pattern (never the raw path), bounded. */
function routeLabels(c: Context): { method: string; route: string; status: string } {
  const endpoint = matchedRoutes(c).findLast((r) => r.method !== "ALL");
  return { method: METHODS.has(c.req.method) ? c.req.method : "OTHER", route: endpoint?.path ?? "unmatched", status: String(c.res.status) };
}

export function createApp(deps: AppDeps) {
  const { store, metrics } = deps;
  const maxPage = deps.maxPageSize ?? 10_000;
  const started = Date.now();
  const app = new Hono();

  app.onError((err, c) => {
    log.error("request failed", { path: c.req.path, error: err.message });
    return c.json({ error: "internal error", message: redact(err.message) }, 500);
  });
  app.notFound((c) => c.json({ error: "not found", path: c.req.path }, 404));
  // Host, origin, tokens, body limits, CORS (src/http/security.ts); the stream endpoints check
  // tokens with the same rule (readGuard) and their own stream tokens.
  const security = deps.security ?? { tokens: [], authReads: false, corsOrigins: [], maxBodyBytes: 1 << 20 };
  // Request latency for /api/performance (the last requests' durations, in a fixed ring) and the
  // ticksync_http_request_duration_seconds histogram.
  const requests = createRequestStats();
  app.use("*", async (c, next) => {
    const t0 = performance.now();
    await next();
    const ms = performance.now() - t0;
    requests.record(ms);
    metrics.httpDuration.observe(routeLabels(c), ms / 1000);
  });
  // Every query string is bounded before a route reads it (src/http/limits.ts).
  app.use("*", queryGuard);
  // The dashboard's page and assets hold no data (they fetch it with the token the page is given),
  // so they load without one even with authReads.
  const publicPath = (p: string) => p === "/" || p.startsWith("/assets/") || apiDocsPath(p);
  const skip = (p: string) => p === "/api/ws" || p === "/api/ws/legacy" || p === "/api/stream" || publicPath(p);
  for (const mw of securityMiddleware(security, { skip, streamTokens: deps.stream?.config.tokens, limiter: deps.limiter })) app.use("*", mw);

  // The dashboard: `/` and `/assets/*`, embedded in the executable (src/http/dashboard/); documented here.
  app.get("/", describe({ summary: "The dashboard's page", tags: ["meta"], open: "page", responses: { 200: { description: "the page", content: { "text/html": textBody("the dashboard") } } } }));
  app.get(
    "/assets/:name",
    describe({
      summary: "The dashboard's script, stylesheet and chart library",
      tags: ["meta"],
      open: "page",
      responses: { 200: { description: "the file (ETag; cached an hour)", content: { "text/javascript": textBody("a script"), "text/css": textBody("a stylesheet") } }, 304: { description: "Not Modified" }, 404: ref("NotFound") },
    }),
  );
  app.route("/", dashboardRoutes(deps.version ?? "dev"));
  // This API's OpenAPI document (src/http/openapi.ts), public like the probes.
  const openapi = describe({ summary: "This document: the OpenAPI 3.1 description of the HTTP API", tags: ["meta"], open: "probe", responses: { 200: json(v.record(v.string(), v.unknown()), "the document") } });
  app.get("/openapi.json", openapi, openApiRoute(app));
  // The API reference (/docs) and the stream's AsyncAPI document (/asyncapi.json), embedded too.
  app.route("/", apiDocsRoutes(deps.version ?? "dev"));

  // One gap scanner for /api/gaps and the gap gauge /metrics sets.
  const gaps = createGapScanner(store, { now: deps.now ?? Date.now });
  // Without serve's health checks (tests, embedders): the store, the process, nothing gating but the store.
  const health = deps.health ?? createHealth({ store, sinks: [], sources: [], readiness: ["store"], cacheMs: 1000 });
  app.route("/", probeRoutes({ store, metrics, health: deps.health }, started));
  app.route("/metrics", metricsRoutes(deps, gapGauge(gaps, metrics)));
  app.route("/api/resources", resourceRoutes());
  app.route("/api/sinks", sinkRoutes(deps));
  app.route("/api/symbols", symbolRoutes(store));
  app.route("/api/bars", barRoutes(store, metrics, { maxPage, now: deps.now ?? Date.now, privateCache: security.authReads }));
  app.route("/api/replay", replayRoutes(store, deps.replay ?? defaultReplayConfig(), deps.now));
  app.route("/api/indicators", indicatorRoutes(deps, maxPage, { now: deps.now ?? Date.now, privateCache: security.authReads }));
  app.route("/api/gaps", gapRoutes(store, gaps));
  app.route("/api/runs", runRoutes(store));
  app.route("/api/quarantine", quarantineRoutes(deps));
  app.route("/api/freshness", freshnessRoutes(store));
  app.route("/api/markets", marketRoutes());
  app.route("/api/rates", rateRoutes(store));
  if (deps.stream) app.route("/api", streamRoutes(deps.stream.hub, deps.stream.config, security));
  app.route("/api/jobs", jobRoutes(deps));
  app.route("/api/audit", auditRoutes(store));
  app.route("/api/alerts", alertRoutes(deps));
  app.route("/api/health", healthRoutes({ health }));
  // The monitoring service's routes, as aliases over the native ones (docs/coming-from.md).
  app.route("/api", monitoringRoutes({ ...deps, health }, requests, started));
  return app;
}
