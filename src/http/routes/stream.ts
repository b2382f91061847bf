// The live feed over HTTP: GET /api/ws (WebSocket), GET /api/stream (SSE) and, when configured,
// GET /api/ws/legacy (the compatibility protocol), all behind the
// stream's token rule (readGuard) and the bound on `symbols=`. The protocol is src/stream/'s.
import { Hono } from "hono";
import type { Hub } from "../../stream/hub.ts";
import type { StreamConfig } from "../../stream/config.ts";
import { wsEndpoint } from "../../stream/ws.ts";
import { sseEndpoint } from "../../stream/sse.ts";
import { compatEndpoint } from "../../stream/compat-ws.ts";
import { listGuard } from "../query.ts";
import { readGuard, type SecurityConfig } from "../security.ts";

export function streamRoutes(hub: Hub, config: StreamConfig, security: SecurityConfig): Hono {
  const app = new Hono();
  // Stream tokens; when reads need a token, the server's tokens open the stream too.
  const auth = readGuard(security, config.tokens);
  const symbols = listGuard("symbols");
  app.get("/ws", auth, symbols, wsEndpoint(hub));
  app.get("/stream", auth, symbols, sseEndpoint(hub, config));
  // The replaced streaming service's protocol, when [stream.compat] path = true (docs/stream.md).
  if (config.compat.path) app.get("/ws/legacy", auth, compatEndpoint(hub, hub.compat()));
  return app;
}
