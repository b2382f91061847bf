// The `[stream]` config section: who may connect to /api/ws and /api/stream, how much a client may
// fall behind before its policy applies, heartbeats, and how long the event journal is kept.
import * as v from "valibot";
import { MARKET_CODES, type Market } from "../domain/markets/index.ts";
import { INTERVALS } from "../domain/bar.ts";

const whole = (what: string, min: number, max: number, doc: string) =>
  v.pipe(
    v.number(`expected ${what}`),
    v.integer(`expected a whole number of ${what}`),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
    v.description(doc),
  );

export const streamConfigSchema = v.strictObject({
  tokens: v.optional(
    v.pipe(
      v.array(v.pipe(v.string("expected a token string"), v.minLength(16, "a token must be at least 16 characters"))),
      v.description("API tokens. When any is set, /api/ws and /api/stream need one (`Authorization: Bearer <token>` or `?token=<token>`); without tokens the stream is open."),
    ),
    [],
  ),
  slowClient: v.optional(
    v.pipe(
      v.picklist(["conflate", "drop"], "expected conflate or drop"),
      v.description("What happens to a client whose outbox is full: keep the latest bar per series (conflate) or close it with code 4008 (drop)."),
    ),
    "conflate",
  ),
  bufferBytes: v.optional(whole("bytes", 1024, 1 << 30, "Bytes a client may have waiting in its socket before further messages wait in its outbox."), 1 << 20),
  bufferMessages: v.optional(whole("messages", 1, 1_000_000, "Messages that may wait in a client's outbox before the slowClient policy applies."), 10_000),
  outboxBytes: v.optional(
    whole("bytes", 64 * 1024, 1 << 30, "Bytes all messages waiting in a client's outbox may take, whatever their type; beyond that (after conflation) the client is closed with code 4008."),
    16 << 20,
  ),
  maxMessageBytes: v.optional(whole("bytes", 1024, 16 << 20, "Largest WebSocket message a client may send (bytes); a larger one closes the socket with code 1009."), 64 * 1024),
  messagesPerSecond: v.optional(whole("messages", 1, 100_000, "WebSocket messages a client may send per second (bursts of twice that); more close it with code 4029."), 20),
  maxSymbols: v.optional(
    whole("symbols", 1, 1_000_000, "Symbols one client may be subscribed to at once (the wildcard counts as none); a subscribe beyond it is refused with an error reply."),
    5000,
  ),
  heartbeatSeconds: v.optional(whole("seconds", 1, 3600, "Seconds between heartbeats (WebSocket ping frames, SSE comments); a WebSocket silent for two is closed."), 15),
  pollMs: v.optional(whole("milliseconds", 10, 60_000, "How often the journal is read for batches other processes committed (ms)."), 1000),
  statusPollSeconds: v.optional(
    whole("seconds", 1, 3600, "How often the run ledger is read for sources' run outcomes (provider_status events on the stream)."),
    5,
  ),
  compat: v.optional(
    v.pipe(
      v.strictObject({
        port: v.optional(
          v.pipe(
            v.number("expected a port number"),
            v.integer("expected a whole port number"),
            v.minValue(0, "must be at least 0"),
            v.maxValue(65535, "must be at most 65535"),
            v.description("Port of the second listener that speaks the replaced streaming service's protocol (its clients used 8765); absent: no such listener. 0 picks a free one."),
          ),
        ),
        host: v.optional(v.pipe(v.string(), v.nonEmpty(), v.description("Address the compatibility listener binds; 127.0.0.1 keeps it to this machine.")), "127.0.0.1"),
        path: v.optional(
          v.pipe(v.boolean("expected true or false"), v.description("Also serve the protocol on the main server at GET /api/ws/legacy (behind the same guards as /api/ws).")),
          false,
        ),
        defaultMarket: v.optional(
          v.pipe(
            v.picklist(MARKET_CODES as [Market, ...Market[]], `expected a market code: ${MARKET_CODES.join(", ")}`),
            v.description("Market of the bare tickers old clients send (`PKN` is PKN.WA with WSE); its phase is the greeting's and status's market_status."),
          ),
          "WSE",
        ),
        interval: v.optional(
          v.pipe(
            v.picklist(INTERVALS, `expected an interval: ${INTERVALS.join(", ")}`),
            v.description("Only bars of this interval make stock_updates (e.g. \"1d\" for the day's volume); absent: the latest bar of the batch whatever its interval."),
          ),
        ),
      }),
      v.description("The replaced streaming service's WebSocket protocol (connection, subscribe, stock_updates, market_status, provider_status) on a second listener: docs/stream.md#compatibility-protocol."),
    ),
    {},
  ),
  retentionDays: v.optional(
    v.pipe(
      v.number("expected a number of days"),
      v.gtValue(0, "must be more than 0"),
      v.maxValue(3650, "must be at most 3650"),
      v.description("Journal batches older than this many days are pruned; a client away longer cannot be replayed."),
    ),
    7,
  ),
});

export type StreamConfig = v.InferOutput<typeof streamConfigSchema>;

/** The defaults, for a hub made without a config file (tests, benches). */
export const defaultStreamConfig = (): StreamConfig => v.parse(streamConfigSchema, {});
