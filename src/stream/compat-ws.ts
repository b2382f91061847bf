// The compatibility protocol's WebSocket endpoint (src/stream/compat.ts): the old clients'
// `ws://host:8765` on a second listener (serve.ts), any path. Same limits as GET /api/ws: the
// message size (Bun's maxPayloadLength, via streamWebSocket), the message rate, the outbox bytes
// and the symbols per client; a client that falls `bufferMessages` behind is closed (4008) since
// the old protocol has no conflation notice.
import type { Context, MiddlewareHandler } from "hono";
import { Hono } from "hono";
import { upgradeWebSocket } from "hono/bun";
import type { Server, ServerWebSocket } from "bun";
import type { Hub } from "./hub.ts";
import type { Session } from "./session.ts";
import type { Compat, CompatClient } from "./compat.ts";
import { CLOSE } from "./protocol.ts";
import { compatError } from "./compat-messages.ts";
import { tokenBucket, wsTransport } from "./ws.ts";
import { errorText } from "../lib/errors.ts";

export function compatEndpoint(hub: Hub, compat: Compat) {
  return (c: Context) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") return c.json({ error: "expected a WebSocket upgrade request (the compatibility protocol: docs/stream.md)" }, 426);
    let session: Session | undefined;
    let client: CompatClient | undefined;
    const allowed = tokenBucket(hub.config.messagesPerSecond);
    const events: { session?: Session } & Parameters<typeof upgradeWebSocket>[1] = {
      onOpen(_e, ws) {
        session = hub.open(wsTransport(ws.raw as ServerWebSocket<unknown>, c.env as Server<unknown>), "drop");
        events.session = session;
        client = compat.open(session);
      },
      onMessage(e) {
        if (!session || !client || session.closed) return;
        session.seenAt = Date.now();
        if (!allowed()) return hub.refuse(session, "flood", CLOSE.flood, `too many messages: more than ${hub.config.messagesPerSecond} a second`);
        try {
          compat.receive(client, typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data as ArrayBuffer));
        } catch (err) {
          // A bug must not take the server down: the client is told, the connection stays.
          session.deliver(compatError(`the message could not be handled: ${errorText(err)}`, Date.now()));
        }
      },
      onClose() {
        if (client) compat.close(client);
        if (session) hub.close(session);
      },
    };
    return upgradeWebSocket(c, events);
  };
}

/** The second listener's app: every path is the compatibility endpoint, behind `guards` (host, origin, tokens). */
export function compatApp(hub: Hub, compat: Compat, guards: MiddlewareHandler[] = []): Hono {
  const app = new Hono();
  for (const g of guards) app.use("*", g);
  app.get("*", compatEndpoint(hub, compat));
  return app;
}
