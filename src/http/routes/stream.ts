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
import { describe, error, queryParameters, textBody } from "../openapi.ts";
import { SseQuery, WsQuery } from "../schemas/stream.ts";

const PROTOCOL = "The protocol: docs/stream.md (and the AsyncAPI document beside this one). Needs a token when [stream] tokens are set or with server.authReads: a stream token or any server token.";
const upgraded = { description: "Switching Protocols: the WebSocket is open" };
const notUpgrade = error("Upgrade Required: not a WebSocket upgrade request");

export function streamRoutes(hub: Hub, config: StreamConfig, security: SecurityConfig): Hono {
  const app = new Hono();
  // Stream tokens; when reads need a token, the server's tokens open the stream too.
  const auth = readGuard(security, config.tokens);
  const symbols = listGuard("symbols");
  const ws = describe({ summary: "The live feed over a WebSocket", description: PROTOCOL, tags: ["stream"], parameters: queryParameters(WsQuery), responses: { 101: upgraded, 426: notUpgrade } });
  const sse = describe({
    summary: "The live feed as Server-Sent Events",
    description: `${PROTOCOL} Last-Event-ID (header) resumes after an event, as \`since\` does.`,
    tags: ["stream"],
    parameters: queryParameters(SseQuery),
    responses: { 200: { description: "the event stream", content: { "text/event-stream": textBody("SSE frames: `id`, `event`, `data` (one JSON message)") } } },
  });
  app.get("/ws", ws, auth, symbols, wsEndpoint(hub));
  app.get("/stream", sse, auth, symbols, sseEndpoint(hub, config));
  // The replaced streaming service's protocol, when [stream.compat] path = true (docs/stream.md).
  const legacy = describe({ summary: "The replaced streaming service's protocol over a WebSocket", description: "When [stream.compat] path = true. docs/stream.md.", tags: ["stream"], parameters: queryParameters(WsQuery), responses: { 101: upgraded, 426: notUpgrade } });
  if (config.compat.path) app.get("/ws/legacy", legacy, auth, compatEndpoint(hub, hub.compat()));
  return app;
}
