// The SSE feed (GET /api/stream): the same events as the WebSocket, one-way, as Server-Sent Events
// (`events=market_status,provider_status` in the query watches those, as the WebSocket's `watch`).
// The body is a ReadableStream whose queue is measured in bytes, so the session sees how much the
// client has not read yet (the queue grows when Bun cannot write to the socket) and applies the
// same outbox and slow-client policy; `pull` is the SSE "drain".
import type { Context } from "hono";
import { normaliseSymbol } from "../domain/symbols.ts";
import type { Hub } from "./hub.ts";
import type { Session } from "./session.ts";
import type { Transport } from "./transport.ts";
import type { StreamConfig } from "./config.ts";
import { clip, errorMessage, parseStreamRequest, sseFrame, STATUS_EVENTS, type Outgoing, type StatusEventType } from "./protocol.ts";

const encoder = new TextEncoder();
/** Encoded frames, made once per message however many SSE clients receive it. */
const frames = new WeakMap<Outgoing, Uint8Array>();
const frameBytes = (m: Outgoing) => {
  let b = frames.get(m);
  if (!b) frames.set(m, (b = encoder.encode(sseFrame(m))));
  return b;
};
const HEARTBEAT = encoder.encode(": heartbeat\n\n");

export function sseEndpoint(hub: Hub, config: StreamConfig) {
  return (c: Context) => {
    const events = (c.req.query("events") ?? "").split(",").filter((e) => e.trim() !== "");
    const unknown = events.filter((e) => !(STATUS_EVENTS as readonly string[]).includes(e));
    if (unknown.length) return c.json({ error: "invalid request", issues: [{ field: "events", message: `expected events among ${STATUS_EVENTS.join(", ")} (got ${clip(unknown.join(","))})` }] }, 400);
    // Status events alone need no symbols.
    const q = parseStreamRequest({ symbols: c.req.query("symbols"), since: c.req.query("since"), lastEventId: c.req.header("last-event-id") }, (x) => normaliseSymbol(x), events.length === 0);
    if (!q.ok) return c.json({ error: "invalid request", issues: q.issues }, 400);
    const { symbols, all, since } = q.value;
    let session: Session | undefined;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let open = true;
    const end = () => {
      if (!open) return;
      open = false;
      if (session) hub.close(session);
    };
    const transport: Transport = {
      kind: "sse",
      send(m) {
        if (open) controller.enqueue(frameBytes(m));
      },
      buffered: () => (open ? Math.max(0, config.bufferBytes - (controller.desiredSize ?? 0)) : 0),
      close() {
        if (!open) return;
        end();
        try {
          controller.close();
        } catch {}
      },
      heartbeat() {
        if (open && (controller.desiredSize ?? 0) > 0) controller.enqueue(HEARTBEAT);
      },
    };
    const body = new ReadableStream<Uint8Array>(
      {
        start(ctl) {
          controller = ctl;
          // `retry` tells EventSource how soon to reconnect (it then sends Last-Event-ID).
          ctl.enqueue(encoder.encode(`retry: 2000\n: ticksync stream, last event id ${hub.lastId()}\n\n`));
          session = hub.open(transport);
          if (events.length) hub.watch(session, events as StatusEventType[], true);
          if (symbols.size || all) void session.subscribe(symbols, all, since, (e) => session?.deliver(errorMessage(`subscribe failed: ${e.message}`)));
        },
        pull() {
          session?.drain();
        },
        cancel() {
          end();
        },
      },
      { highWaterMark: config.bufferBytes, size: (chunk) => chunk?.byteLength ?? 0 },
    );
    c.req.raw.signal.addEventListener("abort", end);
    return new Response(body, {
      headers: {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache",
        Connection: "keep-alive",
        "X-Accel-Buffering": "no",
      },
    });
  };
}
