// The WebSocket endpoint (GET /api/ws), on Hono's Bun WebSocket helper. The protocol is described
// in protocol.ts. Each connection is one session of the hub; messages from the client are parsed
// with valibot, and a bad one gets an `error` reply while the connection stays up.
import type { Context } from "hono";
import { upgradeWebSocket, websocket } from "hono/bun";
import type { Server, ServerWebSocket, WebSocketHandler } from "bun";
import * as v from "valibot";
import { normaliseSymbol } from "../domain/symbols.ts";
import type { Hub } from "./hub.ts";
import type { Session } from "./session.ts";
import type { Transport } from "./transport.ts";
import type { StreamConfig } from "./config.ts";
import { clip, CLOSE, ClientMessageSchema, MAX_SYMBOLS_PER_MESSAGE, errorMessage, statusMessage, issueText, parseStreamRequest, parseSymbols, pongMessage, type StreamRequest } from "./protocol.ts";
import { errorText } from "../lib/errors.ts";
import { cancelReplays, startReplay } from "./range-replay.ts";

/** What Hono keeps in `ws.data`: its events object, to which the session is attached. */
type WsData = { events: { session?: Session } };

export function wsTransport(ws: ServerWebSocket<unknown>, server: Server<unknown>): Transport {
  return {
    kind: "ws",
    topics: {
      subscribe: (topic) => ws.subscribe(topic),
      unsubscribe: (topic) => ws.unsubscribe(topic),
      publish: (topic, text) => void server.publish(topic, text),
    },
    send: (m) => void ws.send(m.json),
    buffered: () => ws.getBufferedAmount(),
    close: (code, reason) => ws.close(code, reason),
    heartbeat: () => void ws.ping(),
  };
}

/** A token bucket of `rate` per second and twice that in a burst (a check per message; no library does this synchronously). */
export function tokenBucket(rate: number, now = () => performance.now()) {
  const capacity = 2 * rate;
  let tokens = capacity;
  let at = now();
  return () => {
    const t = now();
    tokens = Math.min(capacity, tokens + ((t - at) * rate) / 1000);
    at = t;
    if (tokens < 1) return false;
    tokens--;
    return true;
  };
}

/** A received value quoted back: a short string, or only its type. */
const quote = (x: unknown) => (typeof x === "string" ? clip(x) : x === null ? "null" : typeof x);

/** One message from a client: subscribe, unsubscribe, watch, unwatch or ping; anything else is an error reply. */
function receive(hub: Hub, s: Session, text: string) {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return s.deliver(errorMessage("expected a JSON object such as {\"op\":\"subscribe\",\"symbols\":[\"PKN.WA\"]}"));
  }
  // A replay of a range of stored bars, then live (src/stream/range-replay.ts validates it).
  if (typeof raw === "object" && raw !== null && (raw as { op?: unknown }).op === "replay") return startReplay(s, raw, hub.store, hub.replay, hub.lastId);
  // Refused before validation, which would check every element of a list that long first.
  const list = typeof raw === "object" && raw !== null ? (raw as { symbols?: unknown }).symbols : undefined;
  if (Array.isArray(list) && list.length > MAX_SYMBOLS_PER_MESSAGE)
    return s.deliver(errorMessage(`symbols: at most ${MAX_SYMBOLS_PER_MESSAGE} symbols per message (got ${list.length})`, { limit: MAX_SYMBOLS_PER_MESSAGE }));
  const parsed = v.safeParse(ClientMessageSchema, raw);
  if (!parsed.success) return s.deliver(errorMessage(issueText(parsed.issues), { received: typeof raw === "object" && raw && Object.hasOwn(raw, "op") ? quote((raw as { op: unknown }).op) : undefined }));
  const msg = parsed.output;
  if (msg.op === "ping") return s.deliver(pongMessage(hub.lastId()));
  if (msg.op === "watch" || msg.op === "unwatch") {
    hub.watch(s, msg.events, msg.op === "watch");
    return s.deliver(statusMessage(msg.op === "watch" ? "watching" : "unwatched", msg.op === "watch" ? "watching" : "not watching", { events: msg.events }));
  }
  const syms = parseSymbols(msg.symbols, (x) => normaliseSymbol(x));
  if (syms.bad.length)
    return s.deliver(
      errorMessage(`unknown symbols: ${syms.bad.slice(0, 5).map((b) => b.reason).join("; ")}${syms.bad.length > 5 ? ` and ${syms.bad.length - 5} more` : ""}`, {
        op: msg.op,
        symbols: syms.bad.slice(0, 20).map((b) => clip(b.symbol)),
      }),
    );
  const fail = (e: Error) => s.deliver(errorMessage(`${msg.op} failed: ${e.message}`, { op: msg.op }));
  if (msg.op === "subscribe") void s.subscribe(syms.symbols, syms.all, msg.since, fail);
  else {
    // A replay of these symbols stops now; the unsubscribe waits for it to end.
    cancelReplays(s, syms.symbols, syms.all);
    void s.unsubscribe(syms.symbols, syms.all, fail);
  }
}

/** GET /api/ws: upgrade, with optional `symbols` and `since` in the query to subscribe at once. */
export function wsEndpoint(hub: Hub) {
  return async (c: Context) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") return c.json({ error: "expected a WebSocket upgrade request" }, 426);
    const q = parseStreamRequest({ symbols: c.req.query("symbols"), since: c.req.query("since") }, (x) => normaliseSymbol(x), false);
    if (!q.ok) return c.json({ error: "invalid request", issues: q.issues }, 400);
    const initial: StreamRequest = q.value;
    let session: Session | undefined;
    const allowed = tokenBucket(hub.config.messagesPerSecond);
    const events: WsData["events"] & Parameters<typeof upgradeWebSocket>[1] = {
      onOpen(_e, ws) {
        session = hub.open(wsTransport(ws.raw as ServerWebSocket<unknown>, c.env as Server<unknown>));
        events.session = session;
        if (initial.symbols.size || initial.all)
          void session.subscribe(initial.symbols, initial.all, initial.since, (e) => session?.deliver(errorMessage(`subscribe failed: ${e.message}`)));
      },
      onMessage(e) {
        if (!session || session.closed) return;
        session.seenAt = Date.now();
        if (!allowed()) return hub.refuse(session, "flood", CLOSE.flood, `too many messages: more than ${hub.config.messagesPerSecond} a second`);
        try {
          receive(hub, session, typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data as ArrayBuffer));
        } catch (err) {
          // A bug must not take the server down: the client is told, the connection stays.
          session.deliver(errorMessage(`the message could not be handled: ${errorText(err)}`));
        }
      },
      onClose() {
        if (session) hub.close(session);
      },
    };
    return upgradeWebSocket(c, events);
  };
}

/**
 * The `websocket` handler for Bun.serve: Hono's, plus what the stream needs of Bun — `drain`
 * (the socket has room again: send the session's outbox) and `pong` (the client is alive). Bun's
 * own pings are off; the hub sends its heartbeats itself. Bun never drops a message: a session
 * sends only while its socket holds less than `bufferBytes`, well under `backpressureLimit`.
 */
export function streamWebSocket(config: StreamConfig): WebSocketHandler<WsData> {
  return {
    ...(websocket as unknown as WebSocketHandler<WsData>),
    drain(ws) {
      ws.data.events.session?.drain();
    },
    pong(ws) {
      const s = ws.data.events.session;
      if (s) s.seenAt = Date.now();
    },
    sendPings: false,
    idleTimeout: Math.min(960, config.heartbeatSeconds * 3),
    backpressureLimit: 0,
    closeOnBackpressureLimit: false,
    // Bun closes a client that sends more with code 1009.
    maxPayloadLength: config.maxMessageBytes,
  };
}
