// What carries a stream client's messages (a WebSocket or an SSE response), as the session and
// the hub see it, and the pub/sub topics of the WebSocket fast path.
import type { Outgoing } from "./protocol.ts";

/** What carries messages to one client. */
export type Transport = {
  readonly kind: "ws" | "sse";
  send(m: Outgoing): void;
  /** Bytes accepted but not yet written to the client. */
  buffered(): number;
  close(code: number, reason: string): void;
  /** A keep-alive: a WebSocket ping frame, an SSE comment. */
  heartbeat(): void;
  /**
   * Bun's pub/sub, where the transport has it (WebSocket): the fast path. A live session that keeps
   * up is subscribed to its symbols' topics and the hub publishes each event once, natively, to
   * all of them; a session that falls behind leaves the topics and is served one by one through
   * its outbox. Bun keeps a socket's published and sent messages in order, so switching is seamless.
   */
  topics?: { subscribe(topic: string): void; unsubscribe(topic: string): void; publish(topic: string, text: string): void };
};

/** The pub/sub topic of a symbol's events, and of every event. */
export const symbolTopic = (symbol: string) => `s:${symbol}`;
export const ALL_TOPIC = "*";
